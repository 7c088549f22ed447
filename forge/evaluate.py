"""The paper's evaluation on held-out identities, plus the retargeting measurement (ours).

Self-reenactment (``evaluate``): for each held-out video, ``n_eval_frames`` frames evenly spread over
the video are the targets; T fit frames (T = 1, 8, 32) are taken evenly from the *other* frames. Each
method renders the targets from their landmarks: the few-shot GAN fitted FF or FT, and the warp
baseline (each target warped from the fit frame with the nearest landmarks). Outputs are compared with
the real frames: SSIM, PSNR, CSIM (dlib descriptor, boxes from the driving landmarks), landmark error
(detector on the output vs driving landmarks / inter-ocular distance), FD-face (Frechet distance of
real vs rendered descriptors) and FID when Inception weights are present. A "real" row gives the landmark detector's own error on the real frames (the floor).

Cross-reenactment (``evaluate_retarget``): a source face driven by another person's video, with and
without retargeting: identity (CSIM of outputs to the source), identity leak (CSIM to the driver),
expression transfer (mouth/eye opening of the output vs the driver's) and face-shape error (the
output's aligned jaw/nose/eye-corner points vs the source's).

Per-row results are cached in ``OUT/rows/`` so an interrupted run resumes.

The metrics live in ``forge.eval_scores`` (per-rendering scores and the summary tables: SSIM, PSNR,
CSIM, landmark error, FID, FD-face) and ``forge.eval_cross`` (cross-reenactment metrics).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_path, get_logger, remove_stale_temps, save_config, write_json_atomic
from forge.eval_cross import SHAPE_POINTS, cross_metrics, eye_opening, shape_error  # noqa: F401 (API)
from forge.eval_scores import FD_FACE_NOTE, METRICS, Scorer, real_rows, summarise  # noqa: F401 (API)

log = get_logger("evaluate")

EVAL_VERSION = 3          # bump when rendering/metrics change: cached rows of older versions are redone
METHODS = ("warp", "guide", "ff", "ft")
GRID_UPSCALE = 2
PERSON_SENSITIVITY_MIN = 1.0   # grey levels: below this FF renders of two different people are "the same"
RETARGET_VARIANTS = ("none", "relative", "absolute")


@dataclass(frozen=True)
class EvalConfig:
    holdout: tuple[str, ...] = ("d12", "d18", "hdtf_wda_katiehill")  # identities (or video ids) to evaluate
    t_values: tuple[int, ...] = (1, 8, 32)   # fit frames T (paper)
    methods: tuple[str, ...] = ("warp", "ff", "ft")  # "warp" baseline, few-shot "ff", fine-tuned "ft"; "guide":
                                             # the warp-guided G's input alone (its k-frame blended warp)
    ft_t_values: tuple[int, ...] = ()        # T values fine-tuned (empty: all t_values); FT is slow on CPU
    n_eval_frames: int = 8                   # target frames per video (CPU budget; paper: all others)
    ft_steps: int = 20                       # FT steps (paper: a few hundred; CPU budget)
    seed: int = 0
    landmark_backend: str = "auto"           # detector for the landmark error
    csim: bool = True
    landmark_error: bool = True
    fid_weights: str | None = None           # Inception-v3 state dict (else torch's cache, else unavailable)
    grid_t: int = 8                          # T shown in the picture grid

    def __post_init__(self):
        bad = sorted(set(self.methods) - set(METHODS))
        if bad:
            raise FaceforgeError(f"unknown eval method(s) {bad}; choose from {', '.join(METHODS)}")
        if not self.t_values or min(self.t_values) < 1 or self.n_eval_frames < 1:
            raise FaceforgeError("t_values and n_eval_frames must be >= 1")

    def fine_tuned(self, t: int) -> bool:
        return t in (self.ft_t_values or self.t_values)


# ---------------------------------------------------------------- frame selection and resizing
def split_frames(valid: np.ndarray, t: int, n_eval: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spread target frames and T fit frames taken from the remaining valid frames.

    valid (N,) bool -> (fit indices (<= T,), eval indices (<= n_eval,)); disjoint."""
    ok = np.flatnonzero(valid)
    if len(ok) < 2:
        raise FaceforgeError(f"only {len(ok)} frames with a face")
    n_eval = min(n_eval, len(ok) - 1)
    ev = ok[np.unique(np.linspace(0, len(ok) - 1, n_eval + 2).round().astype(int)[1:-1])]
    pool = np.setdiff1d(ok, ev)
    fit = pool[np.unique(np.linspace(0, len(pool) - 1, min(t, len(pool))).round().astype(int))]
    return fit, ev


def resize_clip(frames: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S, 3), (N, 68, 2) -> (N, size, size, 3), landmarks scaled to match."""
    import cv2

    s = frames.shape[1]
    if s == size:
        return frames, landmarks
    interp = cv2.INTER_AREA if size < s else cv2.INTER_CUBIC
    out = np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])
    return out, (landmarks * (size / s)).astype(np.float32)


# ---------------------------------------------------------------- renderers
def render_method(method: str, talker, fit_frames, fit_lm, eval_lm, cfg: EvalConfig, t: int) -> np.ndarray:
    """Render eval landmarks (N, 68, 2) with one method fitted on (T, S, S, 3) frames -> (N, S, S, 3)."""
    from forge.animate import Source, render_warp

    if method == "warp":
        return render_warp(Source(frames=fit_frames, landmarks=fit_lm), eval_lm)
    if method == "guide":
        return talker.guide_images(fit_frames, fit_lm, eval_lm)[0]
    person = talker.fit(fit_frames, fit_lm, mode=method, steps=cfg.ft_steps if method == "ft" else None,
                        seed=cfg.seed + t)
    return talker.render(person, eval_lm)


def _row_key(video_id: str, method: str, t: int) -> str:
    return f"{video_id}__{method}_T{t}"


def _config_hash(cfg: EvalConfig, checkpoint_sha: str | None, cache_root: Path) -> str:
    payload = json.dumps([EVAL_VERSION, dataclasses.asdict(cfg), checkpoint_sha, str(cache_root.resolve())],
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def resolve_videos(cache, holdout: tuple[str, ...]) -> list[str]:
    """Held-out identities (or video ids) -> video ids in the cache."""
    known_ids = set(cache.video_ids())
    out: list[str] = []
    for name in holdout:
        vids = cache.videos_of(name) or ([name] if name in known_ids else [])
        if not vids:
            raise FaceforgeError(f"held-out id {name!r} is not in cache {cache.root} "
                                 f"(identities: {', '.join(cache.identities()[:20])})")
        out += [v for v in vids if v not in out]
    return out


def _valid_mask(cache, video_id: str, n: int) -> np.ndarray:
    from forge.data.cache import FLAG_NO_FACE

    idx = cache.index[cache.index["video_id"] == video_id].sort_values("frame")
    if len(idx) != n:
        return np.ones(n, bool)
    return idx["valid"].to_numpy(bool) & ((idx["flags"].to_numpy() & FLAG_NO_FACE) == 0)


# ---------------------------------------------------------------- the protocol
def _talker_or_note(cfg: EvalConfig, checkpoint, talker, notes: list[str]):
    """The talker for the GAN methods, or None (+ a note) when it cannot be loaded."""
    if talker is not None or not any(m != "warp" for m in cfg.methods):
        return talker
    from forge.animate import load_talker

    try:
        return load_talker(checkpoint)
    except FaceforgeError as e:
        notes.append(f"few-shot methods skipped: {e}")
        return None


def _cached_row(row_path: Path, chash: str):
    """(row, preview) saved by an earlier run with the same config hash, else None."""
    prev_path = row_path.with_suffix(".npz")
    if not (row_path.exists() and prev_path.exists()):
        return None
    saved = json.loads(row_path.read_text())
    if saved.get("config_hash") != chash:
        return None
    with np.load(prev_path) as z:
        return saved, (z["fake"], z["real"], z["eval_frames"], z["landmarks"])


def _run_jobs(cache, out: Path, jobs, talker, size: int, cfg: EvalConfig, chash: str, scorer: Scorer):
    """Render + score every (video, method, T) job, resuming from OUT/rows/.
    Returns rows, skipped, previews {key: (fake, real, eval idx, landmarks)}."""
    from tqdm import tqdm

    rows, skipped, previews, loaded = [], [], {}, {}
    for video_id, method, t in tqdm(jobs, desc="eval", unit="fit"):
        key, row_path = (video_id, method, t), out / "rows" / f"{_row_key(video_id, method, t)}.json"
        cached = _cached_row(row_path, chash)
        if cached is not None:
            rows.append(cached[0])
            previews[key] = cached[1]
            continue
        try:
            if video_id not in loaded:
                frames, lms = resize_clip(*cache.load(video_id), size)
                loaded = {video_id: (frames, lms, _valid_mask(cache, video_id, len(frames)))}
            frames, lms, valid = loaded[video_id]
            fit, ev = split_frames(valid, t, cfg.n_eval_frames)
            t0 = time.perf_counter()
            fake = render_method(method, talker, frames[fit], lms[fit], lms[ev], cfg, t)
            row = {"video_id": video_id, "method": method, "T": int(t), "T_used": int(len(fit)),
                   "n_eval": int(len(ev)), "fit_seconds": round(time.perf_counter() - t0, 2),
                   "config_hash": chash, **scorer.score(fake, frames[ev], lms[ev])}
        except FaceforgeError as e:
            skipped.append({"video_id": video_id, "method": method, "T": t, "reason": str(e)})
            log.warning("eval: skipped %s %s T=%d: %s", video_id, method, t, e)
            continue
        write_json_atomic(row_path, row)
        with atomic_path(row_path.with_suffix(".npz")) as tmp:
            np.savez_compressed(tmp, fake=fake, real=frames[ev], eval_frames=ev, landmarks=lms[ev])
        rows.append(row)
        previews[key] = (fake, frames[ev], ev, lms[ev])
    rows += real_rows(list(dict.fromkeys(j[0] for j in jobs)), previews, scorer, cfg)
    return rows, skipped, previews


def person_sensitivity(cache, videos: list[str], talker, size: int, n: int = 4) -> float | None:
    """Mean absolute pixel difference (0..255) between renders of the same landmarks by people fitted
    (FF, 8 frames) on two different videos; ~0 means the generator ignores who it renders."""
    if talker is None or len(videos) < 2:
        return None
    (fa, la), (fb, lb) = (resize_clip(*cache.load(v, list(range(min(8, cache.n_frames(v))))), size)
                          for v in videos[:2])
    ra = talker.render(talker.fit(fa, la, mode="ff"), la[:n])
    rb = talker.render(talker.fit(fb, lb, mode="ff"), la[:n])
    return float(np.abs(ra.astype(np.float64) - rb).mean())


def evaluate(cache_root: str | Path, out: str | Path, cfg: EvalConfig = EvalConfig(), *,
             checkpoint: str | Path | None = None, talker=None) -> dict:
    """Self-reenactment on held-out videos; writes OUT/{results.json, results.csv, summary.csv, grid.png,
    eval_config.yaml, rows/}; returns the results dict."""
    import pandas as pd

    from forge.data import PreparedCache

    cache = PreparedCache(cache_root)
    out = Path(out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out, recursive=True)      # row temps of a killed run
    notes: list[str] = []
    talker = _talker_or_note(cfg, checkpoint, talker, notes)
    uses_guide = talker is not None and talker.uses_guide
    methods = [m for m in cfg.methods if m == "warp" or (talker is not None and (m != "guide" or uses_guide))]
    size = talker.resolution if talker is not None else cache.resolution
    sha = getattr(talker, "checkpoint_sha256", None)
    save_config(cfg, out / "eval_config.yaml")
    videos = resolve_videos(cache, cfg.holdout)
    jobs = [(v, m, t) for v in videos for t in cfg.t_values for m in methods if m != "ft" or cfg.fine_tuned(t)]
    scorer = Scorer(cfg)
    rows, skipped, previews = _run_jobs(cache, out, jobs, talker, size, cfg, _config_hash(cfg, sha, cache.root),
                                        scorer)
    table = pd.DataFrame(rows).drop(columns=["config_hash"], errors="ignore")
    if table.empty:
        raise FaceforgeError(f"nothing was evaluated ({len(skipped)} skipped: "
                             f"{skipped[0]['reason'] if skipped else 'no jobs'})")
    summary, fid_note = summarise(table, previews, cfg, scorer.encoder)   # the scorer's encoder: loaded once
    sensitivity = person_sensitivity(cache, videos, talker, size)
    if sensitivity is not None and sensitivity < PERSON_SENSITIVITY_MIN:
        notes.append(f"FF renders barely depend on the fitted person (mean |difference| {sensitivity:.2f} "
                     f"of 255 between two people): the embedder/AdaIN path has collapsed")
    with atomic_path(out / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    grid = write_grid(out / "grid.png", previews, videos, methods, cfg, size)
    result = {
        "cache": str(cache.root), "resolution": size, "checkpoint": str(getattr(talker, "path", None) or ""),
        "checkpoint_sha256": sha, "generator_version": getattr(talker, "version", None),
        "checkpoint_meta": getattr(talker, "meta", None), "config": dataclasses.asdict(cfg),
        "videos": videos, "summary": summary.replace({np.nan: None}).to_dict(orient="records"),
        "rows": table.replace({np.nan: None}).to_dict(orient="records"),
        "skipped": skipped, "notes": notes, "fid_note": fid_note, "grid": str(grid),
        "ff_person_sensitivity": sensitivity,
        "csim_note": "dlib ResNet descriptor (offline), boxes from the driving landmarks; not the paper's network",
        "fd_face_note": FD_FACE_NOTE if cfg.csim else "not computed (csim off)",
    }
    write_json_atomic(out / "results.json", result)
    return result


def write_grid(path: Path, previews: dict, videos: list[str], methods: list[str], cfg: EvalConfig,
               size: int) -> Path:
    """Picture grid: one row per held-out video (its first target frame): real | landmarks | each method
    at each T. Header labels on top."""
    import cv2
    from PIL import Image

    from forge.data.rasterize import draw_landmarks

    cols = [(m, t) for m in methods for t in cfg.t_values if (m, t) in {(k[1], k[2]) for k in previews}]
    labels = ["real", "landmarks"] + [f"{m} T={t}" for m, t in cols]
    u = size * GRID_UPSCALE
    header = np.full((18, u * len(labels), 3), 255, np.uint8)
    for i, text in enumerate(labels):
        cv2.putText(header, text, (i * u + 3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for video_id in videos:
        keys = [k for k in previews if k[0] == video_id]
        if not keys:
            continue
        _, real, _, lms = previews[keys[0]]
        tiles = [real[0], draw_landmarks(lms[0], size)]
        for m, t in cols:
            p = previews.get((video_id, m, t))
            tiles.append(p[0][0] if p is not None else np.zeros_like(real[0]))
        row = np.concatenate(tiles, axis=1)
        rows.append(cv2.resize(row, (row.shape[1] * GRID_UPSCALE, row.shape[0] * GRID_UPSCALE),
                               interpolation=cv2.INTER_NEAREST))
    with atomic_path(path) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
    return path


# ---------------------------------------------------------------- cross-reenactment: retarget or not
def evaluate_retarget(cache_root: str | Path, pairs: list[tuple[str, str]], *, methods=("warp",), talker=None,
                      n_frames: int = 16, t_fit: int = 8, landmark_backend: str = "auto", seed: int = 0,
                      variants: tuple[str, ...] = RETARGET_VARIANTS) -> list[dict]:
    """Cross-reenactment (source video id, driver video id) pairs, each rendered by each method ("warp",
    "ff", "ft") with each retargeting variant ("none": the driver's landmarks as they are, as in the
    paper; "relative"/"absolute": ``forge.retarget`` expression modes); one metrics row per
    pair x method x variant.
    Source: its first valid frame (warp, T = 1) or ``t_fit`` frames (GAN); driver: ``n_frames`` frames
    evenly spread over its video."""
    from tqdm import tqdm

    from forge.animate import Source, render_warp, target_landmarks
    from forge.data import PreparedCache, get_detector
    from forge.metrics import IdentityEncoder

    cache = PreparedCache(cache_root)
    encoder, detector = IdentityEncoder(), get_detector(landmark_backend)
    size = talker.resolution if talker is not None else cache.resolution
    rows = []
    for src_id, drv_id in tqdm(pairs, desc="cross-reenactment", unit="pair"):
        s_frames, s_lm = resize_clip(*cache.load(src_id), size)
        d_frames, d_lm = resize_clip(*cache.load(drv_id), size)
        s_ok = np.flatnonzero(_valid_mask(cache, src_id, len(s_frames)))
        d_ok = np.flatnonzero(_valid_mask(cache, drv_id, len(d_frames)))
        s_pick = s_ok[np.unique(np.linspace(0, len(s_ok) - 1, t_fit).round().astype(int))]
        d_pick = d_ok[np.unique(np.linspace(0, len(d_ok) - 1, n_frames).round().astype(int))]
        src = Source(frames=s_frames[s_pick], landmarks=s_lm[s_pick])
        people = {}
        for variant in variants:
            lms, _ = target_landmarks(d_lm[d_pick], src.landmarks[0], variant != "none",
                                      expression="relative" if variant == "none" else variant)
            for method in methods:
                if method == "warp":
                    fake = render_warp(Source(frames=src.frames[:1], landmarks=src.landmarks[:1]), lms)
                else:
                    if method not in people:
                        people[method] = talker.fit(src.frames, src.landmarks, mode=method, seed=seed)
                    fake = talker.render(people[method], lms)
                rows.append({"source": src_id, "driver": drv_id, "method": method, "retarget": variant,
                             **cross_metrics(fake, src.frames[0], src.landmarks[0], d_frames[d_pick],
                                             d_lm[d_pick], lms, encoder, detector)})
    return rows
