"""The dashboard's calls into the other packages, each one optional: ``provenance.verify_file``,
``detect.score_files`` and ``forge.data.clip.extract_clip``. A missing or failing package gives a
result that says so (the app shows "... unavailable"), never an exception that takes a page down."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from dashboard.media import overlay_landmarks
from dashboard.runs import RunInfo
from core.common import FaceforgeError, get_logger

log = get_logger("dashboard")


def provenance_verdict(path: str | Path, corpus: str | Path | None = None) -> dict:
    """``provenance.verify_file`` on one file with the corpus store when there is one.

    Returns the verdict dict plus ``available: True``, or ``{"available": False, "reason": ...}`` when
    the provenance package is missing or cannot verify (the app shows "provenance unavailable")."""
    try:
        from provenance.api import verify_file
    except ImportError as e:
        return {"available": False, "reason": f"provenance package unavailable ({e})"}
    kwargs: dict[str, Any] = {}
    store_path = Path(corpus) / "provenance.sqlite" if corpus is not None else None
    try:
        if store_path is not None and store_path.is_file():
            from provenance.api import Store

            kwargs["store"] = Store(store_path)
        anchors = _trust_anchors(corpus)
        if anchors is not None:
            kwargs["trust_anchors"] = anchors
        result = dict(verify_file(path, **kwargs))
    except FaceforgeError as e:
        return {"available": False, "reason": str(e)}
    except Exception as e:  # another package's failure must not take the page down; shown to the user
        log.warning("provenance verify failed on %s: %r", path, e)
        return {"available": False, "reason": f"verify failed: {type(e).__name__}: {e}"}
    result["available"] = True
    return result


def _trust_anchors(corpus: str | Path | None) -> str | None:
    """The corpus signer's CA certificate (PEM text): ``CORPUS/keys/ca.pem`` or ``ca.pem`` in the spec's
    ``key_dir``; None when there is none (signed items then verify as ``valid_untrusted``)."""
    if corpus is None:
        return None
    dirs = [Path(corpus) / "keys"]
    spec = Path(corpus) / "spec.yaml"
    if spec.is_file():
        import yaml

        try:
            key_dir = (yaml.safe_load(spec.read_text()) or {}).get("key_dir")
        except (yaml.YAMLError, AttributeError):
            key_dir = None
        if key_dir:
            dirs.insert(0, Path(key_dir).expanduser())
    for d in dirs:
        if (d / "ca.pem").is_file():
            return (d / "ca.pem").read_text()
    return None


def score_with_runs(runs: Iterable[RunInfo], path: str | Path, faces: str = "detect",
                    faces_cache: dict | None = None) -> tuple["pd.DataFrame | None", list[str]]:
    """``detect.score_files(run, [path], faces=...)`` for every run; (table, problems).
    ``faces``: "detect" (find and crop faces) or "none" (the file is already a face crop).
    ``faces_cache``: ``detect.score``'s faces cache, shared by the runs (and the default detector), so
    that the file's faces are found once for every run that reads them alike (same crop side)."""
    problems: list[str] = []
    try:
        from detect import score_files
    except ImportError as e:
        return None, [f"detector package unavailable ({e})"]
    rows = []
    for run in runs:
        try:
            df = score_files(run.path, [Path(path)], faces=faces, progress=False, faces_cache=faces_cache)
        except FaceforgeError as e:
            problems.append(f"{run.name}: {e}")
            continue
        except Exception as e:  # shown to the user, page stays up
            log.warning("score_files failed for run %s: %r", run.name, e)
            problems.append(f"{run.name}: {type(e).__name__}: {e}")
            continue
        rows.append(df.assign(run=run.name))
    return (pd.concat(rows, ignore_index=True) if rows else None), problems


def score_with_default(path: str | Path, faces: str = "detect", faces_cache: dict | None = None) -> dict:
    """The shipped default detector on one file: {available, row (the video row), frames: [(frame_index,
    score, crop)] of the frames that drove the score, reliability (its measured held-out figures, one
    sentence, or None)}; ``available: False`` + reason when it cannot run.
    ``faces_cache``: as in :func:`score_with_runs`."""
    try:
        from detect.score import load_run, score_file
    except ImportError as e:
        return {"available": False, "reason": f"detector package unavailable ({e})"}
    try:
        lr = load_run(None)
        crops: list = []
        row, _ = score_file(lr, Path(path), faces=faces, crops=crops, faces_cache=faces_cache)
    except FaceforgeError as e:
        return {"available": False, "reason": str(e)}
    except Exception as e:  # shown to the user, page stays up
        log.warning("default detector failed on %s: %r", path, e)
        return {"available": False, "reason": f"{type(e).__name__}: {e}"}
    from detect.default import reliability

    return {"available": True, "detector": lr.cfg.detector, "row": row, "frames": crops,
            "reliability": reliability(lr.metrics)}


def find_faces(path: str | Path, resolution: int = 128, max_frames: int = 16) -> dict:
    """Faces found by ``forge.data.clip.extract_clip``: {available, n_frames, n_faces, crops (K,S,S,3), backend}."""
    try:
        from forge.data.clip import extract_clip
    except ImportError as e:
        return {"available": False, "reason": f"face finder unavailable ({e})"}
    try:
        clip = extract_clip(path, resolution=resolution, max_frames=max_frames)
    except FaceforgeError as e:
        return {"available": True, "n_frames": 0, "n_faces": 0, "reason": str(e), "crops": None}
    valid = np.asarray(clip.valid, dtype=bool)
    crops = np.asarray(clip.frames)[valid]
    lms = np.asarray(clip.landmarks)[valid]
    shown = np.stack([overlay_landmarks(c, lm) for c, lm in zip(crops[:4], lms[:4])]) if len(crops) else None
    return {"available": True, "n_frames": int(len(valid)), "n_faces": int(valid.sum()),
            "backend": getattr(clip, "backend", "?"), "crops": shown}
