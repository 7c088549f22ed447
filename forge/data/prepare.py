"""``forge prepare``: videos/images -> the prepared cache (see :mod:`forge.data.cache` for the layout).

Inputs: folders (searched recursively; a file directly in a given folder is its own identity, a file
deeper down takes its identity from its first folder, so VoxCeleb2's ``id*/video_id/*.mp4`` and
``alice/*.jpg`` identity folders both work) and single files. Each file becomes one ``video_id``
(a unique safe name from its relative path). Work is parallel over files, resumable (finished files
are skipped, unfinished ones redone), deterministic, and a bad file is recorded, never fatal.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from core.common import (FaceforgeError, get_logger, remove_stale_temps, safe_name, save_config,
                         write_parquet_atomic)
from core.media import is_image, is_video

from . import cache as cache_mod

log = get_logger("data.prepare")

RESOLUTIONS = (64, 128, 256)
ID_MAX_LEN = 80
# Config fields that change the cache contents: a resumed run must match them.
CONTENT_FIELDS = ("resolution", "backend", "every", "max_frames", "margin", "smooth", "image_format", "jpeg_quality",
                  "detect_every")


@dataclass(frozen=True)
class PrepareConfig:
    resolution: int = 64            # crop side in pixels (64 | 128 | 256)
    backend: str = "auto"           # landmark backend: auto | dlib | face-alignment ("auto" resolved before saving)
    every: int = 1                  # keep every n-th decoded frame
    max_frames: int | None = None   # at most this many kept frames per video
    margin: float = 0.40            # crop square margin (fraction of the landmark box, each side)
    smooth: bool = True             # temporal smoothing of landmarks and crop boxes
    image_format: str = "jpeg"      # jpeg (q=jpeg_quality) | png (lossless)
    jpeg_quality: int = 95
    min_face_fraction: float = 0.5  # videos with fewer frames with a face get status "few_faces"
    detect_every: int = 1           # run the face detector on every k-th kept frame, track in between (~3x at 5)
    workers: int = 1                # processes over videos (not part of the cache contents)
    fan_weights: str | None = None  # face-alignment 2D-FAN-4 weights file (default: torch hub cache)
    s3fd_weights: str | None = None # face-alignment S3FD weights file (default: torch hub cache)

    def __post_init__(self):
        if int(self.resolution) < 16:
            raise ValueError(f"resolution must be >= 16, got {self.resolution}")
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if not 0.0 <= self.margin <= 3.0:
            raise ValueError(f"margin must be in [0, 3], got {self.margin}")
        if self.image_format not in ("jpeg", "png"):
            raise ValueError(f"image_format must be jpeg or png, got {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class Item:
    path: str        # the file (as given / found)
    source: str      # printable path (non-UTF-8 bytes escaped) stored in the tables
    identity: str
    video_id: str
    kind: str        # "video" | "image"
    fingerprint: str # size and mtime of the file: a changed file is prepared again on resume


# ---------------------------------------------------------------- input discovery
def ascii_id(text: str) -> str:
    """An ASCII file-system-safe id (``safe_name`` after replacing non-ASCII characters)."""
    return safe_name("".join(c if c.isascii() else "_" for c in text), ID_MAX_LEN)


def _printable(path: Path) -> str:
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def _walk(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not name.startswith(".") and (is_video(p) or is_image(p)):
                found.append(p)
    return found


def discover_inputs(inputs: list[str | os.PathLike]) -> list[Item]:
    """Expand folders/files into items with identities and unique safe video ids, sorted by id."""
    if not inputs:
        raise FaceforgeError("no inputs given")
    raw: list[tuple[Path, str, str]] = []  # (path, identity, relative key)
    for given in inputs:
        p = Path(given)
        if not p.exists():
            raise FaceforgeError(f"input not found: {_printable(p)}")
        if p.is_dir():
            for f in _walk(p):
                rel = f.relative_to(p)
                identity = rel.parts[0] if len(rel.parts) > 1 else rel.stem
                raw.append((f, identity, str(rel.with_suffix(""))))
        elif p.is_file():
            raw.append((p, p.stem, p.stem))
        else:
            raise FaceforgeError(f"input is not a file or folder: {_printable(p)}")
    if not raw:
        raise FaceforgeError(f"no video or image files found in {', '.join(map(str, inputs))}")
    items, seen = [], set()
    for path, identity, key in sorted(raw, key=lambda r: _printable(r[0])):
        base = ascii_id(key.replace(os.sep, "__"))
        vid = base
        if vid in seen:  # collision after sanitising/truncation: disambiguate by the path's hash
            vid = f"{base[:ID_MAX_LEN - 9]}-{hashlib.sha1(os.fsencode(str(path))).hexdigest()[:8]}"
        if vid in seen:
            continue  # the same file given twice
        seen.add(vid)
        st = path.stat()
        items.append(Item(path=str(path), source=_printable(path), identity=ascii_id(identity),
                          fingerprint=f"{st.st_size}:{st.st_mtime_ns}",
                          video_id=vid, kind="image" if is_image(path) else "video"))
    return sorted(items, key=lambda it: it.video_id)


# ---------------------------------------------------------------- one video
def _frame_rows(item: Item, clip, det, cfg: PrepareConfig) -> dict[str, list]:
    h, w = clip.source_size
    flags = np.where(clip.valid, 0, cache_mod.FLAG_NO_FACE) | np.where(det.n_faces > 1, cache_mod.FLAG_MULTI_FACE, 0)
    outside = (clip.boxes[:, 0] < 0) | (clip.boxes[:, 1] < 0) | (clip.boxes[:, 2] > w) | (clip.boxes[:, 3] > h)
    flags = flags | np.where(outside, cache_mod.FLAG_CROP_OUTSIDE, 0) | np.where(det.tracked, cache_mod.FLAG_TRACKED, 0)
    n = len(clip)
    return {
        "identity": [item.identity] * n,
        "video_id": [item.video_id] * n,
        "frame": list(range(n)),
        "frame_index": clip.frame_index.tolist(),
        "time": (clip.times if clip.times is not None else clip.frame_index / clip.fps).astype(float).tolist(),
        "crop_box": clip.boxes.astype(np.float32).tolist(),
        "bbox": det.bboxes.astype(np.float32).tolist(),                   # NaN where no face
        "landmarks": clip.landmarks.reshape(n, 136).astype(np.float32).tolist(),
        "source_landmarks": clip.source_landmarks.reshape(n, 136).astype(np.float32).tolist(),
        "score": clip.scores.astype(np.float32).tolist(),
        "valid": clip.valid.tolist(),
        "n_faces": det.n_faces.astype(np.int16).tolist(),
        "flags": flags.astype(np.int16).tolist(),
        "backend": [clip.backend] * n,
        "image": [cache_mod.encode_image(f, cfg.image_format, cfg.jpeg_quality) for f in clip.frames],
    }


def process_item(item: Item, out: str, cfg: PrepareConfig) -> dict:
    """Prepare one file into ``out/videos/``; returns its record (status ok / no_face / few_faces / error)."""
    from .clip import extract_clip_detailed
    from faces.landmarks import get_detector

    t0 = time.perf_counter()
    record = dict(video_id=item.video_id, identity=item.identity, source=item.source, kind=item.kind,
                  fingerprint=item.fingerprint,
                  status=cache_mod.STATUS_ERROR, n_frames=0, n_valid=0, error="", backend=cfg.backend,
                  fps=0.0, width=0, height=0, seconds=0.0)
    try:
        detector = get_detector(cfg.backend, fan_path=cfg.fan_weights, s3fd_path=cfg.s3fd_weights)
        clip, det = extract_clip_detailed(item.path, resolution=cfg.resolution, every=cfg.every,
                                              max_frames=cfg.max_frames, smooth=cfg.smooth, margin=cfg.margin,
                                              detector=detector, detect_every=cfg.detect_every)
        cache_mod.write_video_frames(Path(out), item.video_id, _frame_rows(item, clip, det, cfg))
        n_valid = int(clip.valid.sum())
        few = n_valid < cfg.min_face_fraction * len(clip)
        record.update(status=cache_mod.STATUS_FEW_FACES if few else cache_mod.STATUS_OK, n_frames=len(clip),
                      n_valid=n_valid, backend=clip.backend, fps=float(clip.fps),
                      height=int(clip.source_size[0]), width=int(clip.source_size[1]),
                      error=f"face in only {n_valid}/{len(clip)} frames" if few else "")
    except FaceforgeError as e:
        msg = str(e)
        record.update(status=cache_mod.STATUS_NO_FACE if msg.startswith("no face found") else cache_mod.STATUS_ERROR,
                      error=msg)
    except Exception as e:  # noqa: BLE001 - a batch job records any per-file failure and goes on
        record.update(error=f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
    record["seconds"] = round(time.perf_counter() - t0, 3)
    cache_mod.write_video_record(Path(out), item.video_id, record)
    return record


# ---------------------------------------------------------------- the batch
def _check_resume(out: Path, cfg: PrepareConfig) -> None:
    from core.common import load_config

    saved_path = out / cache_mod.CONFIG_FILE
    if not saved_path.is_file():
        return
    saved = load_config(PrepareConfig, saved_path)
    diff = [f"{k}: {getattr(saved, k)} -> {getattr(cfg, k)}" for k in CONTENT_FIELDS if getattr(saved, k) != getattr(cfg, k)]
    if diff:
        raise FaceforgeError(f"{out} was prepared with other settings ({'; '.join(diff)}); use another --out")


def _done(out: Path, item: Item) -> dict | None:
    """The record of a finished item (its frames file exists when it says ok), else None."""
    record = cache_mod.read_video_record(out, item.video_id)
    if record is None or record.get("fingerprint") != item.fingerprint:
        return None
    if record.get("status") in (cache_mod.STATUS_OK, cache_mod.STATUS_FEW_FACES):
        if not cache_mod.video_paths(out, item.video_id)[0].is_file():
            return None
    return record


def merge_tables(out: Path, records: list[dict]) -> tuple:
    """Rebuild ``videos.parquet`` and ``index.parquet`` from the per-video files."""
    import pandas as pd
    import pyarrow.parquet as pq

    videos = pd.DataFrame(records).sort_values("video_id").reset_index(drop=True)
    frames = []
    for rec in records:
        if rec["status"] in (cache_mod.STATUS_OK, cache_mod.STATUS_FEW_FACES):
            path, _ = cache_mod.video_paths(out, rec["video_id"])
            names = [n for n in pq.read_schema(path).names if n != "image"]
            frames.append(pq.read_table(path, columns=names).to_pandas())
    index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["identity", "video_id", "frame", "frame_index", "time", "crop_box", "bbox", "landmarks",
                 "source_landmarks", "score", "valid", "n_faces", "flags", "backend"])
    if len(index):
        index = index.sort_values(["video_id", "frame"]).reset_index(drop=True)
    write_parquet_atomic(out / cache_mod.VIDEOS_TABLE, videos)
    write_parquet_atomic(out / cache_mod.INDEX_TABLE, index)
    return videos, index


def prepare(inputs: list[str | os.PathLike] | str | os.PathLike, out: str | os.PathLike,
            cfg: PrepareConfig = PrepareConfig(), progress: bool = True) -> dict:
    """Build (or resume) the prepared cache at ``out``; returns a report dict (also ``report.json``)."""
    from tqdm import tqdm

    from core.common import write_json_atomic

    from faces.landmarks import resolve_backend

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if int(cfg.resolution) not in RESOLUTIONS:
        log.warning("resolution %s is not one of the paper's %s", cfg.resolution, RESOLUTIONS)
    cfg = replace(cfg, backend=resolve_backend(cfg.backend, cfg.fan_weights, cfg.s3fd_weights))  # what "auto" picked
    items = discover_inputs(inputs)
    out = Path(out)
    _check_resume(out, cfg)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out, recursive=True)   # what a killed run left (live workers' temps are kept)
    save_config(cfg, out / cache_mod.CONFIG_FILE)

    t0 = time.perf_counter()
    records: dict[str, dict] = {}
    todo = []
    for item in items:
        rec = _done(out, item)
        if rec is not None:
            records[item.video_id] = rec
        else:
            todo.append(item)
    skipped = len(records)
    bar = tqdm(total=len(items), initial=skipped, desc=f"prepare {cfg.resolution}px ({cfg.backend})",
               unit="file", disable=not progress, dynamic_ncols=True)
    try:
        for rec in _run(todo, str(out), cfg):
            records[rec["video_id"]] = rec
            bar.set_postfix_str(f"{rec['video_id'][:24]}: {rec['status']}")
            bar.update(1)
    finally:
        bar.close()
    videos, index = merge_tables(out, [records[it.video_id] for it in items])
    _write_preview(out)
    report = _report(out, cfg, videos, index, skipped=skipped, seconds=time.perf_counter() - t0)
    write_json_atomic(out / "report.json", report)
    return report


def _write_preview(out: Path) -> None:
    """``preview.png``: what the crops and landmarks look like (skipped when nothing was prepared)."""
    from PIL import Image

    from core.common import atomic_path

    cache = cache_mod.PreparedCache(out)
    if not cache.video_ids():
        return
    with atomic_path(out / cache_mod.PREVIEW_FILE) as tmp:
        Image.fromarray(cache.preview()).save(tmp, format="PNG")


def _run(todo: list[Item], out: str, cfg: PrepareConfig):
    """Yield records as items finish: in this process (workers=1) or a spawn process pool."""
    if cfg.workers == 1 or len(todo) <= 1:
        for item in todo:
            yield process_item(item, out, cfg)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from core.processes import stop_pool, worker_init

    with ProcessPoolExecutor(max_workers=min(cfg.workers, len(todo)), mp_context=mp.get_context("spawn"),
                             initializer=worker_init) as pool:
        futures = [pool.submit(process_item, item, out, cfg) for item in todo]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BaseException:  # Ctrl-C, SIGTERM (core.processes.Terminated), an error: no worker outlives us
            stop_pool(pool)
            raise


def _report(out: Path, cfg: PrepareConfig, videos, index, skipped: int, seconds: float) -> dict:
    ok = videos["status"] == cache_mod.STATUS_OK
    bad = videos[~ok]
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    processed = videos["seconds"].sum() if len(videos) else 0.0
    return dict(
        out=str(out), config=asdict(cfg), backend=cfg.backend, n_inputs=int(len(videos)), n_ok=int(ok.sum()),
        n_skipped_done=int(skipped), n_identities=int(videos.loc[ok, "identity"].nunique()),
        n_frames=int(len(index)), n_valid_frames=int(index["valid"].sum()) if len(index) else 0,
        failed=[dict(video_id=r.video_id, source=r.source, status=r.status, error=r.error) for r in bad.itertuples()],
        size_bytes=int(size), size_mib=round(size / 2**20, 3), seconds=round(seconds, 2),
        frames_per_second=round(len(index) / processed, 2) if processed else None,
    )
