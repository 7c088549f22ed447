"""Train the learned watermark end to end through the noise layer, on 128 px face crops, on CPU.

    python -m provenance.watermark.learned.train --cache out/cache128_all --out out/wm_learned/run1 \
        --max-minutes 75 [--export provenance/watermark/weights/learned128.pt]

The training frames are the luma of every ``every``-th face crop of the prepared cache's people minus
the benchmark's 13 sample-video people and the forge evaluation's held-out people (``exclude``); a few
of the rest are kept for validation (bit accuracy per attack, ``val.jsonl``). Each step: random short
ids -> masked code bits -> marked batch (PSNR by construction) -> one attack of the noise layer drawn
by weight (none only for the first ``warmup`` steps) -> decoder -> BCE on the 162 bits. The run folder
holds ``config.yaml`` (the frozen :class:`TrainConfig`), ``frames.npz`` (extracted once), ``log.jsonl``,
``ckpt.pt`` (every ``ckpt_minutes``; a rerun resumes from it) and ``weights.pt`` (the shippable model).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, _plain, atomic_path, load_config, run_main, save_config
from core.prepared import PreparedReader

from .model import ModelConfig

BENCH_PEOPLE = ("d0", "d10", "d11", "d12", "d18", "d3", "d6", "d9", "hdtf_rd_radio2", "hdtf_rd_radio34",
                "hdtf_wda_bobmenendez", "hdtf_wda_edmarkey0", "hdtf_wda_katiehill")
HOLDOUT = ("vox2_00086", "vox2_620900105", "grid_lbax4n", "styletalk_reagan", "mead_w011", "latentsync_demo2",
           "eamm_happy")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    exclude: tuple = BENCH_PEOPLE + HOLDOUT    # identities never trained on (benchmark + forge holdout)
    n_val_people: int = 4
    every: int = 2                             # every n-th prepared frame of a person
    batch: int = 24
    lr: float = 1e-3
    lr_final: float = 2e-4                     # linear decay to this over max_minutes
    warmup: int = 300                          # steps with no attack
    sync_weight: float = 0.03                  # + this x CE of the sync z map at the embedded phase
    attacks: tuple = (("none", 1.0), ("jpeg", 2.0), ("resize_0.5", 1.5), ("crop", 2.0), ("brightness", 0.5),
                      ("contrast", 0.5), ("blur", 0.5), ("noise", 0.5), ("h264", 1.5), ("jpeg+resize", 1.0),
                      ("crop+jpeg", 1.0), ("crop+h264", 1.0))
    max_minutes: float = 75.0
    ckpt_minutes: float = 4.0
    log_every: int = 25
    val_images: int = 48
    threads: int = 1
    seed: int = 0


def extract_frames(cache: Path, cfg: TrainConfig) -> dict:
    """{train, val: (N, 128, 128) uint8 luma, people}: decoded once from the prepared cache."""
    import cv2

    reader = PreparedReader(cache)
    videos = reader.videos
    people = sorted(set(reader.identities()) - set(cfg.exclude))
    if len(people) <= cfg.n_val_people:
        raise FaceforgeError(f"{cache}: only {len(people)} usable people after the exclusions")
    rng = np.random.default_rng(cfg.seed)
    val_people = set(rng.choice(people, cfg.n_val_people, replace=False).tolist())
    out = {"train": [], "val": []}
    for vid, ident in videos[videos.identity.isin(people)][["video_id", "identity"]].itertuples(index=False):
        rows = np.flatnonzero(reader.valid(vid))[::cfg.every]                          # face-found frames
        if not len(rows):
            continue
        for img in reader.images(vid, rows):                                              # (h, w, 3) RGB
            img = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
            y = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            out["val" if ident in val_people else "train"].append(np.clip(np.rint(y), 0, 255).astype(np.uint8))
    return {"train": np.stack(out["train"]), "val": np.stack(out["val"]), "people": np.array(people),
            "val_people": np.array(sorted(val_people))}


def _batch(frames: np.ndarray, n: int, rng: np.random.Generator, key: str):
    import torch

    from .payload import carried_bits

    idx = rng.integers(0, len(frames), n)
    y = frames[idx].astype(np.float32)                                                   # (B, 128, 128)
    flip = rng.random(n) < 0.5
    y[flip] = y[flip, :, ::-1]
    ids = rng.integers(0, 2 ** 32, n, dtype=np.uint64)
    bits = carried_bits(ids, key)                                                        # (B, 162) +-1
    return torch.from_numpy(y[:, None].copy()), torch.from_numpy(bits)


def validate(model, frames: np.ndarray, cfg: TrainConfig) -> dict:
    """Bit accuracy per attack on the validation people (fixed draws)."""
    import torch

    from .noise import attack

    rng = np.random.default_rng(12345)
    y, bits = _batch(frames, min(cfg.val_images, len(frames)), rng, cfg.model.key)
    out = {}
    with torch.no_grad():
        marked = model(y, bits)
        for name in ("none", "jpeg", "resize_0.5", "crop", "brightness", "h264", "jpeg+resize"):
            logits = model.decoder(attack(marked, name, np.random.default_rng(7)))
            out[name] = round(float(((logits > 0) == (bits > 0)).float().mean()), 4)
    return out


def train(cache: Path, out: Path, cfg: TrainConfig, export: Path | None = None) -> Path:
    import torch

    from .model import LearnedWatermark
    from .noise import attack

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "config.yaml").exists():
        saved = load_config(TrainConfig, out / "config.yaml")
        if _plain({**asdict(saved), "max_minutes": 0}) != _plain({**asdict(cfg), "max_minutes": 0}):
            raise FaceforgeError(f"{out} holds a run with another config; use a new --out "
                                 "(only --max-minutes may change on a resume)")
    save_config(cfg, out / "config.yaml")
    if not (out / "frames.npz").exists():
        with atomic_path(out / "frames.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **extract_frames(cache, cfg))
    data = np.load(out / "frames.npz")
    train_frames, val_frames = data["train"], data["val"]
    model = LearnedWatermark(cfg.model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, spent = 0, 0.0
    ckpt = out / "ckpt.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, spent = state["step"], state["spent_s"]
    rng = np.random.default_rng(cfg.seed + step)
    names = [a for a, _ in cfg.attacks]
    weights = np.array([w for _, w in cfg.attacks], float)
    weights /= weights.sum()
    log = open(out / "log.jsonl", "a")
    t0, last_ckpt = time.time() - spent, time.time()
    acc = {}

    def save() -> None:
        with atomic_path(ckpt) as tmp:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "spent_s": time.time() - t0}, tmp)
        with atomic_path(out / "weights.pt") as tmp:
            torch.save({"config": asdict(cfg.model), "state": model.state_dict(), "step": step}, tmp)
        model.eval()
        val = validate(model, val_frames, cfg)
        model.train()
        with open(out / "val.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "minutes": round((time.time() - t0) / 60, 1), **val}) + "\n")

    print(f"train {len(train_frames)} frames, val {len(val_frames)}; starting at step {step}", flush=True)
    while (time.time() - t0) / 60 < cfg.max_minutes:
        frac = (time.time() - t0) / 60 / cfg.max_minutes
        for g in opt.param_groups:
            g["lr"] = cfg.lr + (cfg.lr_final - cfg.lr) * frac
        y, bits = _batch(train_frames, cfg.batch, rng, cfg.model.key)                    # (B,1,128,128), (B,162)
        name = "none" if step < cfg.warmup else names[rng.choice(len(names), p=weights)]
        g, zmap = model.decoder.aligned(attack(model(y, bits), name, rng))               # (B,1,G,G), (B, T*T)
        logits = model.decoder.read(g)                                                   # (B, 162)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, (bits > 0).float())
        if "crop" not in name:                                       # the phase is known: as embedded (0)
            target = torch.zeros(len(zmap), dtype=torch.long)
            loss = loss + cfg.sync_weight * torch.nn.functional.cross_entropy(zmap, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        a = acc.setdefault(name, [])
        a.append(float(((logits > 0) == (bits > 0)).float().mean()))
        if step % cfg.log_every == 0:
            rec = {"step": step, "minutes": round((time.time() - t0) / 60, 2), "loss": round(loss.item(), 4),
                   **{k: round(float(np.mean(v[-20:])), 3) for k, v in sorted(acc.items())}}
            log.write(json.dumps(rec) + "\n")
            log.flush()
        if time.time() - last_ckpt > cfg.ckpt_minutes * 60:
            save()
            last_ckpt = time.time()
    save()
    if export:
        export.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(export) as tmp:
            torch.save({"config": asdict(cfg.model), "state": {k: v.half() for k, v in model.state_dict().items()},
                        "step": step, "train_minutes": round((time.time() - t0) / 60, 1)}, tmp)
    return out / "weights.pt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="out/cache128_all")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-minutes", type=float, default=TrainConfig.max_minutes)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--export", default=None, help="also write the fp16 weights here at the end")
    args = ap.parse_args(argv)
    cfg = TrainConfig(max_minutes=args.max_minutes, batch=args.batch)
    cache = Path(args.cache)
    PreparedReader(cache)                       # not a prepared cache: fail before the run folder is made
    train(cache, Path(args.out), cfg, Path(args.export) if args.export else None)
    return 0


if __name__ == "__main__":
    run_main(main)
