"""Train a frame detector on self-blended pseudo-fakes of real people (no fake data needed).

Input: a prepared cache (``forge prepare``: real videos, frames + landmarks). People are split by
identity: ``test_people`` (never read here), ``val_people`` (model selection and calibration), the
rest train. Every training batch holds real frames and their self-blended twins (SBI's paired
batches); both go through the same flip and compression, so only the blend tells them apart.
Validation: per val video, ``val_frames`` real frames against the same frames self-blended with a
fixed seed (video AUC of the mean score, frame AUC, log loss); the best step by
:func:`detect.detectors.base.selection_key` is kept, and its video scores calibrate P(fake) (Platt).

Output: a standard detector run (``load_run`` and ``detect score`` read it): ``config.yaml``
(DetectConfig), ``sbi_train.yaml`` (this config), ``model.pt`` (best), ``last.pt`` (resume),
``history.csv``, ``metrics.json`` (val metrics, calibration, thresholds). Re-running resumes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_path, get_logger, load_config, save_config, write_json_atomic
from detect.cross_blend import CrossFrameConfig
from detect.sbi_data import (TEST_PEOPLE, VAL_PEOPLE, People, load_people, people_split, score_videos, split_people,
                             training_pairs, validation_set)

log = get_logger("detect.sbi_train")


RUNTIME_FIELDS = ("max_minutes", "threads", "steps")   # may change when a run is resumed (steps: extend it)


@dataclass(frozen=True)
class SBITrainConfig:
    detector: str = "blend_cnn"
    image_size: int = 128
    batch_size: int = 32             # half real frames, half their self-blended twins
    steps: int = 6000                # schedule length (cosine learning rate over it)
    max_minutes: float = 40.0        # wall-clock cap of one call (the run resumes from last.pt)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    mask_weight: float = 0.5         # weight of the blend-mask loss (0: none, or no mask head)
    compress_p: float = 0.5          # P(JPEG quality 50-95 on a training pair, both frames alike)
    degrade_p: float = 0.0           # P(a training pair downscaled and upscaled back, both frames alike) ...
    degrade_range: tuple = (0.35, 0.9)   # ... by a factor drawn here (low-resolution / re-uploaded faces)
    eval_every: int = 250
    feature_pairs: int = 4000        # feature detectors: real frames (+ as many SBI twins) fitted once
    corpus: str | None = None        # a benchmark corpus: its items of train people join training (detect.corpus_mix)
    corpus_frames: int = 4           # frames per corpus training item (evenly spaced)
    corpus_batch: int = 16           # torch detectors: corpus frames per batch (half real, half fake) beside the pairs
    corpus_splits: bool = True       # with a corpus: val / test people are the corpus's own (test never read)
    watermark_reals: bool = True     # with a corpus: its reals read as watermarked twins (detect.wm_reals)
    val_corpus_frames: int = 4       # frames per corpus val item
    val_frames: int = 12             # frames per val video (evenly spaced)
    cross_frame_p: float = 0.0       # P(a training fake is cross-frame blended, detect.cross_blend) else SBI
    cross_frame: CrossFrameConfig = field(default_factory=CrossFrameConfig)
    init_from: str | None = None     # a detector run (same detector + extra) whose model.pt starts a new run
    test_people: tuple[str, ...] = TEST_PEOPLE
    val_people: tuple[str, ...] = VAL_PEOPLE
    seed: int = 0
    threads: int = 2
    extra: dict = field(default_factory=dict)   # the detector's options (e.g. {"backbone": "efficientnet_b0"})



def detect_config(cfg: SBITrainConfig):
    from detect.config import DetectConfig

    return DetectConfig(detector=cfg.detector, image_size=cfg.image_size, batch_size=cfg.batch_size, lr=cfg.lr,
                        weight_decay=cfg.weight_decay, aggregate="mean", seed=cfg.seed, threads=cfg.threads,
                        extra=dict(cfg.extra))


def _loss(net, x, y, m, mask_weight: float, n_mask: int | None = None) -> dict:
    """Named loss terms of one batch: ``cls`` (BCE) and ``mask`` (BCE on the 1/8-size blend mask of the
    first ``n_mask`` rows, those with a mask target; all by default)."""
    import torch
    import torch.nn.functional as F

    if mask_weight > 0 and hasattr(net, "with_mask"):
        logit, mask_logit = net.with_mask(x)                                   # (B, 1), (B, 1, h, w)
        target = F.adaptive_avg_pool2d(m[:, None], mask_logit.shape[-2:])      # (M, S, S) -> (M, 1, h, w)
        terms = {"cls": F.binary_cross_entropy_with_logits(logit[:, 0], y),
                 "mask": F.binary_cross_entropy_with_logits(mask_logit[:n_mask], target)}
    else:
        terms = {"cls": F.binary_cross_entropy_with_logits(net(x)[:, 0], y), "mask": torch.zeros(())}
    terms["total"] = terms["cls"] + mask_weight * terms["mask"]
    return terms


def _resume(out: Path, det, opt, init_from: str | None = None) -> dict:
    import torch

    path = out / "last.pt"
    if not path.is_file():
        if init_from:                                  # a new run starts from another run's weights
            try:
                det.load(Path(init_from))
            except RuntimeError as e:                  # load_state_dict: another architecture
                raise FaceforgeError(f"init_from {init_from} holds another model: {str(e).splitlines()[0]}") from None
            log.info("starting from the weights of %s", init_from)
        return {"step": 0, "best": None, "history": []}
    ck = torch.load(path, map_location="cpu", weights_only=True)
    det.net.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    log.info("resuming at step %d from %s", ck["state"]["step"], path)
    return dict(ck["state"])


def _finish(out: Path, det, cfg: SBITrainConfig, val_videos, state: dict, n_train: int, n_val: int) -> dict:
    """Best model -> val scores -> Platt calibration, thresholds, metrics.json (done)."""
    from detect.calibrate import apply_calibration, fit_platt
    from detect.metrics import summary

    det.load(out)
    v = score_videos(det, val_videos)
    cal = fit_platt(v["video_labels"], v["video_scores"])
    calibrated = apply_calibration(cal, v["video_scores"])
    val_people, test_people = people_split(cfg)
    metrics = {
        "detector": cfg.detector, "source": "self-blended images (detect.sbi) of real people"
        + (f" + the items of {Path(cfg.corpus).name} (our generators' fakes and its reals)" if cfg.corpus else ""), "done": True,
        "threshold": {"frame": 0.5, "video": 0.5}, "calibration": cal,
        "val": {"video": summary(v["video_labels"], calibrated, 0.5),
                "video_raw": summary(v["video_labels"], v["video_scores"], 0.5),
                "frame_auc": v["val_auc_frame"],
                **{k: v[k] for k in v if k.startswith("val_auc_video_")}},
        "crop_resolution": cfg.image_size, "n_train_videos": n_train, "n_val_videos": n_val,
        "val_people": list(val_people), "test_people": list(test_people),
        "params": det.n_params(), "steps": state["step"], "best_step": state["best_step"],
        "train_seconds": state["seconds"],
    }
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def train_sbi(cache, out: str | Path, cfg: SBITrainConfig = SBITrainConfig(), progress: bool = True) -> dict:
    """Train ``cfg.detector`` on SBI from the train people of ``cache`` (a path or a PreparedCache);
    select and calibrate on the val people. Returns ``metrics.json``'s dict."""
    from detect.detectors.base import FeatureDetector
    from detect.registry import get_detector_class
    from forge.data.cache import PreparedCache

    cache = cache if hasattr(cache, "videos_of") else PreparedCache(cache)   # or any object with its methods
    out = Path(out)
    train_people, val_people = split_people(cache, cfg)          # a bad split or corpus fails before any write
    out.mkdir(parents=True, exist_ok=True)
    if (out / "sbi_train.yaml").is_file():
        old = load_config(SBITrainConfig, out / "sbi_train.yaml")
        if dataclasses.replace(old, **{k: getattr(cfg, k) for k in RUNTIME_FIELDS}) != cfg:
            raise FaceforgeError(f"{out} holds an SBI run with a different config; choose a new --out")
    save_config(cfg, out / "sbi_train.yaml")
    save_config(detect_config(cfg), out / "config.yaml")
    tr, va = load_people(cache, train_people), load_people(cache, val_people)
    val_videos = validation_set(va, cfg)
    if cfg.corpus:
        from detect.corpus_mix import corpus_items, val_videos as corpus_val

        val_videos += corpus_val(corpus_items(cfg.corpus, set(val_people), cfg.val_corpus_frames, cfg.watermark_reals))
    det = get_detector_class(cfg.detector)(detect_config(cfg))
    if isinstance(det, FeatureDetector):
        state = _fit_features(det, tr, val_videos, cfg, out, train_people)
    else:
        state = _train_torch(det, tr, val_videos, cfg, out, progress, train_people)
    return _finish(out, det, cfg, val_videos, state, len(tr.names), len(va.names))


def _fit_features(det, tr: People, val_videos, cfg: SBITrainConfig, out: Path, tr_people=()) -> dict:
    """A feature + scikit-learn detector: one fit on ``feature_pairs`` real frames and their SBI twins."""
    from detect.data import Item

    t0 = time.perf_counter()
    rng = np.random.default_rng([cfg.seed, 2])
    images, labels, _, lms = training_pairs(tr, cfg.feature_pairs, rng, cfg, with_landmarks=True)
    items = [Item("sbi_train", int(y), im[None], lm[None]) for im, y, lm in zip(images, labels, lms)]
    if cfg.corpus:
        from detect.corpus_mix import corpus_items

        items += corpus_items(cfg.corpus, set(tr_people), cfg.corpus_frames, cfg.watermark_reals)
    val_items = [Item(name, label, frames, lm) for name, label, frames, lm in val_videos]
    rows: list[dict] = []
    det.fit(items, val_items, out, on_epoch=rows.append)
    row = {**rows[0], "step": 1}
    import pandas as pd

    with atomic_path(out / "history.csv") as tmp:
        pd.DataFrame([row]).to_csv(tmp, index=False)
    return {"step": 1, "best_step": 1, "seconds": time.perf_counter() - t0, "history": [row]}


def _train_torch(det, tr: People, val_videos, cfg: SBITrainConfig, out: Path, progress: bool, tr_people=()) -> dict:
    """A torch frame CNN: paired real/SBI batches, the mask loss when the net has a mask head; with a
    corpus, ``corpus_batch`` of its frames (half real, half fake; no mask target) join every batch."""
    import pandas as pd
    import torch

    from detect.detectors.base import selection_key

    torch.set_num_threads(cfg.threads)
    params = [p for p in det.net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = _resume(out, det, opt, cfg.init_from)
    state.setdefault("seconds", 0.0)
    state.setdefault("best_step", 0)
    t_start = time.perf_counter()
    half = cfg.batch_size // 2
    pool = None
    if cfg.corpus and cfg.corpus_batch > 0:
        from detect.corpus_mix import CorpusFrames, corpus_items

        pool = CorpusFrames.of(corpus_items(cfg.corpus, set(tr_people), cfg.corpus_frames, cfg.watermark_reals),
                               cfg.image_size)
    while state["step"] < cfg.steps and (time.perf_counter() - t_start) < cfg.max_minutes * 60:
        det.net.train()
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        n = 0                                                          # steps since the last evaluation
        for _ in range(cfg.eval_every):
            step = state["step"]
            rng = np.random.default_rng([cfg.seed, step])              # a resumed run sees the same batches
            images, labels, masks = training_pairs(tr, half, rng, cfg)  # (B, S, S, 3), (B,), (B, S, S)
            n_mask = len(images)                                       # rows with a blend-mask target
            if pool is not None:
                extra, extra_y = pool.sample(cfg.corpus_batch, rng)    # (C, S, S, 3), (C,)
                images, labels = np.concatenate([images, extra]), np.concatenate([labels, extra_y])
            lr = float(cfg.lr * 0.5 * (1 + np.cos(np.pi * min(step / cfg.steps, 1.0))))
            for g in opt.param_groups:
                g["lr"] = lr
            terms = _loss(det.net, det.to_tensor(images), torch.from_numpy(labels), torch.from_numpy(masks),
                          cfg.mask_weight, n_mask)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            state["step"] += 1
            n += 1
            if state["step"] >= cfg.steps:
                break
        v = score_videos(det, val_videos)
        row = {"step": state["step"], "lr": lr, **{f"train_{k}": s / n for k, s in sums.items()},
               "val_auc_video": v["val_auc_video"], "val_auc_frame": v["val_auc_frame"], "val_loss": v["val_loss"],
               **{k: v[k] for k in v if k.startswith("val_auc_video_")},
               "seconds": time.perf_counter() - t0}
        better = state["best"] is None or selection_key(row) > tuple(state["best"])
        row["best"] = bool(better)
        if better:
            state["best"], state["best_step"] = list(selection_key(row)), state["step"]
            det.save(out)
        state["seconds"] += row["seconds"]
        state["history"].append(row)
        plain = json.loads(json.dumps(state, default=float))            # numpy scalars -> floats (weights_only)
        with atomic_path(out / "last.pt") as tmp:
            torch.save({"model": det.net.state_dict(), "optimizer": opt.state_dict(), "state": plain}, tmp)
        with atomic_path(out / "history.csv") as tmp:
            pd.DataFrame(state["history"]).to_csv(tmp, index=False)
        if progress:
            log.info("step %d: cls %.4f mask %.4f | val video AUC %.4f frame AUC %.4f loss %.4f%s", row["step"],
                     row["train_cls"], row["train_mask"], row["val_auc_video"], row["val_auc_frame"], row["val_loss"],
                     " (best)" if better else "")
    if state["step"] < cfg.steps:
        log.info("time cap: stopped at step %d of %d; the best step so far is kept", state["step"], cfg.steps)
    return state
