"""Score any user videos/images with a trained detector run.

Faces are found with the same pipeline as ``forge prepare`` (``forge.data.clip.extract_clip``) at
the corpus crop resolution the run was trained on; files with no face or that cannot be decoded
are reported with a status and the batch carries on.

``run=None`` uses the shipped default detector (:mod:`detect.default`). A run whose ``metrics.json``
holds a ``calibration`` (Platt, fitted on validation) reports the calibrated P(fake) as ``score`` and
the uncalibrated aggregate as ``raw_score``; ``top_frames`` names the frames that drove the score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from detect.config import DetectConfig
from detect.detectors.base import Detector
from detect.metrics import aggregate
from detect.registry import get_detector_class
from core.common import FaceforgeError, get_logger, load_config

log = get_logger("detect.score")

FACE_MODES = ("detect", "none")   # find + crop faces, or score the centre square as is (pre-cropped input)
DEFAULT_MAX_FRAMES = 64           # frames read per user video
DEFAULT_CROP = 64                 # crop side when a run does not record its corpus resolution
STATUS_OK, STATUS_NO_FACE, STATUS_ERROR = "ok", "no_face", "error"
TOP_FRAMES = 3                    # frames named per video as the ones that drove its score
VIDEO_COLUMNS = ["file", "status", "error", "n_frames", "n_valid", "score", "label", "threshold", "raw_score",
                 "top_frames"]
FRAME_COLUMNS = ["file", "frame", "frame_index", "valid", "score"]


@dataclass
class LoadedRun:
    """A trained detector run, ready to score."""

    path: Path
    cfg: DetectConfig
    detector: Detector
    threshold: dict            # {"frame": t, "video": t} calibrated on val
    crop_resolution: int
    metrics: dict


def load_run(run: str | Path | None = None, threads: int | None = None) -> LoadedRun:
    """A finished detector run; ``None``: the shipped default detector. ``threads``: torch CPU threads for
    scoring, whatever the run (or an ensemble's members) was trained with (torch's setting is per process)."""
    if run is None:
        from detect.default import default_run

        run = default_run()
    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise FaceforgeError(f"{run} is not a detector run (no config.yaml)")
    cfg = load_config(DetectConfig, run / "config.yaml")
    metrics_path = run / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if not metrics.get("done"):
        raise FaceforgeError(f"{run} has not finished training (re-run `faceforge detect train` to resume)")
    det = get_detector_class(cfg.detector)(cfg).load(run)
    if threads is not None:
        if threads < 1:
            raise FaceforgeError(f"threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(int(threads))
    return LoadedRun(run, cfg, det, metrics.get("threshold", {"frame": 0.5, "video": 0.5}),
                     int(metrics.get("crop_resolution", DEFAULT_CROP)), metrics)


def center_crops(frames: np.ndarray, size: int) -> np.ndarray:
    """``(N, H, W, 3)`` -> the centre square of each frame resized to ``(N, size, size, 3)``."""
    from detect.detectors.base import resize_frames

    h, w = frames.shape[1:3]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return resize_frames(np.ascontiguousarray(frames[:, y0:y0 + s, x0:x0 + s]), size)


def _faces(path: Path, size: int, faces: str, max_frames: int, every: int, backend: str):
    """-> frames (N,S,S,3), landmarks (N,68,2)|None, valid (N,) bool, frame_index (N,)."""
    if faces == "detect":
        from forge.data.clip import extract_clip

        clip = extract_clip(path, resolution=size, backend=backend, every=every, max_frames=max_frames)
        return clip.frames, clip.landmarks, np.asarray(clip.valid, bool), np.asarray(clip.frame_index)
    from core.media import read_media

    frames, index, _ = read_media(path, every=every, max_frames=max_frames)
    return center_crops(frames, size), None, np.ones(len(frames), bool), index


def faces_key(path: str | Path, size: int, faces: str, max_frames: int, every: int, backend: str) -> tuple:
    """The ``faces_cache`` key of one file's faces, read at one crop side with one set of options."""
    return (str(path), size, faces, max_frames, every, backend)


def top_frames(scores: np.ndarray, valid: np.ndarray, k: int = TOP_FRAMES) -> np.ndarray:
    """Rows of the ``k`` highest-scoring valid frames, highest first ``(<=k,)``."""
    rows = np.flatnonzero(valid) if valid.any() else np.arange(len(scores))
    return rows[np.argsort(-scores[rows], kind="stable")[:k]]


def score_file(lr: LoadedRun, path: str | Path, *, faces: str = "detect", max_frames: int = DEFAULT_MAX_FRAMES,
               every: int = 1, backend: str = "auto", crops: list | None = None,
               faces_cache: dict | None = None) -> tuple[dict, list[dict]]:
    """One file -> (video row, frame rows). Never raises for a bad file: the status says why.

    ``crops``: a list that receives ``(frame_index, score, face crop (S, S, 3))`` of the top frames."""
    from detect.calibrate import apply_calibration

    path = Path(path)
    row = {"file": str(path), "status": STATUS_OK, "error": "", "n_frames": 0, "n_valid": 0,
           "score": float("nan"), "label": "", "threshold": float(lr.threshold.get("video", 0.5)),
           "raw_score": float("nan"), "top_frames": ""}
    try:
        if not path.is_file():
            raise FaceforgeError(f"file not found: {path}")
        key = faces_key(path, lr.crop_resolution, faces, max_frames, every, backend)
        found = faces_cache.get(key) if faces_cache is not None else None
        if found is None:
            found = _faces(path, lr.crop_resolution, faces, max_frames, every, backend)
            if faces_cache is not None:  # several runs scoring the same files find their faces once
                faces_cache[key] = found
        frames, landmarks, valid, index = found
        scores = lr.detector.score_clip(frames, landmarks)  # (N,)
    except FaceforgeError as e:
        row["status"] = STATUS_NO_FACE if "no face" in str(e).lower() else STATUS_ERROR
        row["error"] = str(e)
        return row, []
    except Exception as e:  # a decoder/library failure on one file must not end the batch: record it
        log.exception("unexpected failure scoring %s", path)
        row["status"], row["error"] = STATUS_ERROR, f"{path.name}: {type(e).__name__}: {e}"
        return row, []
    use = scores[valid] if valid.any() else scores
    raw = aggregate(use, lr.cfg.aggregate)
    score = float(apply_calibration(lr.metrics.get("calibration"), [raw])[0]) if np.isfinite(raw) else raw
    top = top_frames(scores, valid)
    row.update(n_frames=int(len(scores)), n_valid=int(valid.sum()), score=score, raw_score=raw,
               top_frames=" ".join(str(int(index[i])) for i in top))
    row["label"] = "fake" if row["score"] >= row["threshold"] else "real"
    if crops is not None:
        crops.extend((int(index[i]), float(scores[i]), frames[i]) for i in top)
    frames_rows = [{"file": str(path), "frame": i, "frame_index": int(index[i]), "valid": bool(valid[i]),
                    "score": float(scores[i])} for i in range(len(scores))]
    return row, frames_rows


def score_files(run: str | Path | LoadedRun | None, files: Iterable[str | Path], *, faces: str = "detect",
                max_frames: int = DEFAULT_MAX_FRAMES, every: int = 1, backend: str = "auto",
                return_frames: bool = False, progress: bool = True, faces_cache: dict | None = None):
    """Per-video scores of ``files`` as a DataFrame (``VIDEO_COLUMNS``); with ``return_frames=True``
    a ``(videos, frames)`` pair. ``label`` uses the video threshold calibrated on validation.
    ``faces_cache``: a dict kept by the caller, so that several runs scoring the same files extract
    their faces once (keyed by file, crop side and reading options)."""
    import pandas as pd
    from tqdm import tqdm

    if faces not in FACE_MODES:
        raise FaceforgeError(f"faces must be one of {', '.join(FACE_MODES)}, got {faces!r}")
    lr = run if isinstance(run, LoadedRun) else load_run(run)
    files = list(files)
    videos, frames = [], []
    for f in tqdm(files, desc="scoring files", unit="file", disable=not progress, leave=False):
        v, fr = score_file(lr, f, faces=faces, max_frames=max_frames, every=every, backend=backend,
                           faces_cache=faces_cache)
        if v["status"] != STATUS_OK:
            log.warning("%s: %s", f, v["error"])
        videos.append(v)
        frames.extend(fr)
    vdf = pd.DataFrame(videos, columns=VIDEO_COLUMNS)
    fdf = pd.DataFrame(frames, columns=FRAME_COLUMNS)
    return (vdf, fdf) if return_frames else vdf


def write_scores(out: str | Path, videos, frames, run: Path, measured: dict | None = None) -> dict[str, Path]:
    """``out/{videos.csv, frames.csv, scores.json}``, atomically; ``measured``: the run's held-out figures
    (``metrics["measured"]``), kept in scores.json beside the scores they qualify."""
    from core.common import atomic_write, write_json_atomic

    out = Path(out)
    paths = {"videos": out / "videos.csv", "frames": out / "frames.csv", "json": out / "scores.json"}
    with atomic_write(paths["videos"], "w") as f:
        videos.to_csv(f, index=False)
    with atomic_write(paths["frames"], "w") as f:
        frames.to_csv(f, index=False)
    write_json_atomic(paths["json"], {"run": str(run), **({"measured": measured} if measured else {}),
                                      "videos": json.loads(videos.to_json(orient="records")),
                                      "frames": json.loads(frames.to_json(orient="records"))})
    return paths
