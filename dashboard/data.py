"""Data access for the dashboard: the app's config, corpus manifests, item media, thumbnails.

Pure functions (no Streamlit here; the pages wrap them in ``st.cache_data``). Every corpus file the
app shows comes through :func:`corpus_file` (and detector-run files through
``dashboard.runs.run_file``), which go through ``core.common.safe_join``: no path outside the
corpus / runs roots is ever served. Derived media (thumbnails, browser-playable MP4s) are made once
into a cache folder. Detector runs live in ``dashboard.runs``, the calls into the other packages
(provenance, detect, forge.data) in ``dashboard.checks``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.common import FaceforgeError, atomic_path, require_file, safe_join, safe_name

# The manifest contract (docs/ARCHITECTURE.md, corpus). Missing columns are added as empty so
# an older or partial corpus still opens.
MANIFEST_COLUMNS = (
    "item_id", "group_id", "path", "label", "split", "generator", "generator_version",
    "checkpoint_sha256", "mode", "T", "reenactment", "retarget", "source_identity", "source_frames",
    "driver_identity", "driver_clip", "compression", "watermarked", "resolution", "n_frames", "fps",
    "seed", "sha256", "c2pa_signed", "watermark_payload", "provenance_status", "landmarks_path",
)
COUNT_COLUMNS = ("split", "label", "generator", "mode", "T", "compression")  # the Corpus page charts
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".mjpeg", ".mjpg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MIN_PLAY_SIDE = 256          # face crops are upscaled to at least this for the browser player
PLAY_CRF = 23                # H.264 quality of the playback copies (display only)
MISSING = "(none)"           # how an empty manifest cell shows in filters


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class DashboardConfig:
    corpus: Path | None = None       # CORPUS/ (manifest.parquet, ...)
    runs: Path | None = None         # one DRUN/ or a folder of them
    results: Path | None = None      # studies results (benchmarks/results/detect_*.json)
    db: Path | None = None           # review labels (SQLite); default CORPUS/review.sqlite
    cache: Path | None = None        # thumbnails and playback copies
    max_upload_mb: int = 50          # "Check a file" upload limit
    page_size: int = 24              # thumbnails per grid page
    thumb_size: int = 160            # thumbnail side (px)

    @property
    def cache_dir(self) -> Path:
        if self.cache is not None:
            return Path(self.cache)
        key = hashlib.sha256(str(Path(self.corpus or ".").resolve()).encode()).hexdigest()[:16]
        return Path.home() / ".cache" / "faceforge" / "dashboard" / key

    @property
    def review_db(self) -> Path:
        if self.db is not None:
            return Path(self.db)
        if self.corpus is not None and _writable_dir(Path(self.corpus)):
            return Path(self.corpus) / "review.sqlite"
        return self.cache_dir / "review.sqlite"


def app_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dashboard/app.py", add_help=False)
    p.add_argument("--corpus", type=Path)
    p.add_argument("--runs", type=Path)
    p.add_argument("--results", type=Path)
    p.add_argument("--db", type=Path)
    p.add_argument("--cache", type=Path)
    p.add_argument("--max-upload-mb", type=int, default=DashboardConfig.max_upload_mb)
    return p


def parse_app_args(argv: list[str]) -> DashboardConfig:
    """The roots passed after ``--`` to ``streamlit run dashboard/app.py``; unknown args ignored."""
    ns, _ = app_arg_parser().parse_known_args(argv)
    results = ns.results
    if results is None:
        from core.common import REPO_ROOT

        results = REPO_ROOT / "benchmarks" / "results"
    return DashboardConfig(corpus=_resolved(ns.corpus), runs=_resolved(ns.runs), results=_resolved(results),
                           db=_resolved(ns.db), cache=_resolved(ns.cache), max_upload_mb=ns.max_upload_mb)


def _resolved(p: Path | None) -> Path | None:
    return None if p is None else Path(p).expanduser().resolve()


def _writable_dir(p: Path) -> bool:
    import os

    return p.is_dir() and os.access(p, os.W_OK)


# ---------------------------------------------------------------- corpus
def load_manifest(corpus: str | Path) -> "pd.DataFrame":
    """``CORPUS/manifest.parquet`` with every contract column present (missing ones empty)."""

    path = Path(corpus) / "manifest.parquet"
    require_file(path, "corpus manifest")
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types for a damaged file
        raise FaceforgeError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
    for col in ("item_id", "path", "label"):
        if col not in df.columns:
            raise FaceforgeError(f"{path} lacks the required column {col!r}")
    for col in MANIFEST_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df["item_id"] = df["item_id"].astype(str)
    if df["item_id"].duplicated().any():
        dup = df.loc[df["item_id"].duplicated(), "item_id"].iloc[0]
        raise FaceforgeError(f"{path} has duplicate item_id {dup!r}")
    return df.reset_index(drop=True)


def load_card(corpus: str | Path) -> dict:
    """``corpus.json`` (the corpus card), or {} when absent."""
    p = Path(corpus) / "corpus.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise FaceforgeError(f"{p} is not valid JSON: {e}") from None


def load_errors(corpus: str | Path):
    """``errors.parquet`` (skipped sources + reason) or None."""

    p = Path(corpus) / "errors.parquet"
    return pd.read_parquet(p) if p.is_file() else None


def counts(df, column: str):
    """Item counts per value of ``column`` (empty cells shown as ``(none)``): DataFrame[value, count]."""
    values = display_values(df[column])
    out = values.value_counts().rename_axis(column).reset_index(name="count")
    return out.sort_values(column, key=lambda s: s.astype(str)).reset_index(drop=True)


def is_missing(v: Any) -> bool:
    """None, NaN, pd.NA or NaT (a scalar cell); lists/arrays are never "missing"."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def fmt_value(v: Any) -> str:
    """One cell as display text: None/NaN/NA -> ``(none)``, 8.0 -> ``8``, True -> ``true``."""
    if is_missing(v):
        return MISSING
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def display_values(series):
    """A column as display strings (see :func:`fmt_value`), for filters and charts."""
    return series.map(fmt_value).astype(str)


def filter_kinds(df) -> dict[str, str]:
    """How each column is filtered: ``choice`` (multiselect over values) or ``text`` (substring)."""
    kinds = {}
    for col in df.columns:
        n_unique = df[col].astype(str).nunique(dropna=False)
        kinds[col] = "choice" if n_unique <= 50 else "text"
    return kinds


def apply_filters(df, choices: dict[str, list[str]] | None = None, text: dict[str, str] | None = None):
    """Rows matching every filter: ``choices[col]`` = allowed display values (empty = any),
    ``text[col]`` = case-insensitive substring."""
    mask = np.ones(len(df), dtype=bool)
    for col, allowed in (choices or {}).items():
        if allowed:
            mask &= display_values(df[col]).isin([str(a) for a in allowed]).to_numpy()
    for col, needle in (text or {}).items():
        if needle:
            mask &= display_values(df[col]).str.contains(needle, case=False, regex=False).to_numpy()
    return df[mask]


def page_slice(df, page: int, page_size: int):
    """Rows of 1-based ``page``; (rows, n_pages)."""
    n_pages = max(1, math.ceil(len(df) / page_size))
    page = min(max(1, page), n_pages)
    return df.iloc[(page - 1) * page_size: page * page_size], n_pages


def get_row(df, item_id: str) -> dict:
    hit = df[df["item_id"] == str(item_id)]
    if hit.empty:
        raise FaceforgeError(f"no item {item_id!r} in the manifest")
    return clean_row(hit.iloc[0].to_dict())


def clean_row(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if is_missing(v):
            v = None
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def corpus_file(corpus: str | Path, relpath: str | Path | None, what: str = "file") -> Path:
    """A file or folder named in the manifest, resolved under the corpus root (never outside)."""
    if is_missing(relpath) or str(relpath) == "":
        raise FaceforgeError(f"{what}: no path in the manifest")
    p = safe_join(corpus, relpath)   # NUL bytes, non-text values, escapes: FaceforgeError
    if not _exists(p):
        raise FaceforgeError(f"{what} not found: {relpath}")
    return p


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:              # e.g. a name too long for the file system
        return False


def related_items(df, row: dict) -> dict[str, Any]:
    """For the side-by-side view: the source identity's real items, the driver's real item,
    and the other compression variants of the same render (same ``group_id``)."""
    reals = df[df["label"] == "real"]
    src_id, drv_id = row.get("source_identity"), row.get("driver_identity")
    source = reals[reals["source_identity"] == src_id] if src_id is not None else reals.iloc[:0]
    if row.get("label") == "real":
        source = source[source["item_id"] != row["item_id"]]
    driver = reals.iloc[:0]
    if drv_id is not None and row.get("label") == "fake":
        driver = reals[(reals["source_identity"] == drv_id) | (reals["driver_identity"] == drv_id)]
        clip = row.get("driver_clip")
        if clip is not None and len(driver):
            same_clip = driver[(driver["driver_clip"] == clip) | (driver["item_id"] == clip)]
            driver = same_clip if len(same_clip) else driver
    variants = df.iloc[:0]
    if row.get("group_id") is not None:
        variants = df[(df["group_id"] == row["group_id"]) & (df["item_id"] != row["item_id"])]
    return {"source": _prefer_raw(source), "driver": _prefer_raw(driver), "variants": variants}


def _prefer_raw(df):
    if "compression" in df and (df["compression"] == "raw").any():
        return df[df["compression"] == "raw"]
    return df


# ---------------------------------------------------------------- media
def read_frames(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """Frames of an item for display: a video file (PyAV), a folder of JPEG/PNG frames, or one image.
    -> uint8 (N, H, W, 3)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FaceforgeError(f"no image frames in folder {path}")
        return np.stack([_read_image(f) for f in files[:max_frames]])
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _read_image(path)[None]
    return _decode_video(path, max_frames)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise FaceforgeError(f"cannot read image {path.name}: {e}") from None


def _decode_video(path: Path, max_frames: int | None) -> np.ndarray:
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, IndexError) as e:
        raise FaceforgeError(f"cannot decode video {path.name}: {e}") from None
    if not frames:
        raise FaceforgeError(f"video {path.name} has no frames")
    return np.stack(frames)  # (N, H, W, 3)


def video_fps(path: str | Path, default: float = 25.0) -> float:
    import av

    path = Path(path)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return default
    try:
        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate
            return float(rate) if rate else default
    except (av.error.FFmpegError, IndexError):
        return default


def encode_mp4(path: str | Path, frames: np.ndarray, fps: float, crf: int = PLAY_CRF) -> Path:
    """Browser-playable H.264 (yuv420p, even sides), written atomically. frames (N, H, W, 3) uint8."""
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    n, h, w, _ = frames.shape
    frames = frames[:, : h - h % 2, : w - w % 2]  # yuv420p needs even sides
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w") as out:
            stream = out.add_stream("libx264", rate=max(1, int(round(fps))))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast", "movflags": "+faststart"}
            for img in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
            out.mux(stream.encode())
    return path


def _cache_key(row: dict) -> str:
    tag = str(row.get("sha256") or row.get("path") or "")
    return f"{safe_name(str(row['item_id']), 60)}_{hashlib.sha256(tag.encode()).hexdigest()[:10]}"


def thumbnail(corpus: str | Path, row: dict, cache: str | Path, size: int = 128) -> Path:
    """A JPEG thumbnail of the item's first frame, made once into ``cache/thumbs``."""
    from PIL import Image

    out = Path(cache) / "thumbs" / f"{_cache_key(row)}_{size}.jpg"
    if out.is_file():
        return out
    frame = read_frames(corpus_file(corpus, row.get("path"), "item"), max_frames=1)[0]
    im = Image.fromarray(frame)
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    with atomic_path(out) as tmp:
        im.save(tmp, format="JPEG", quality=85)
    return out


def playable_video(corpus: str | Path, row: dict, cache: str | Path, max_frames: int | None = None,
                   landmarks: bool = False) -> Path:
    """An H.264/yuv420p copy of the item a browser can play (corpus items may be lossless 4:4:4 or
    JPEG folders), upscaled to at least ``MIN_PLAY_SIDE``, with the item's landmarks drawn when
    ``landmarks`` (and it has them); made once into ``cache/play``."""
    import cv2

    lms = load_landmarks(corpus, row) if landmarks else None
    out = Path(cache) / "play" / f"{_cache_key(row)}{'_lm' if lms is not None else ''}.mp4"
    if out.is_file():
        return out
    src = corpus_file(corpus, row.get("path"), "item")
    frames = read_frames(src, max_frames=max_frames)  # (N, H, W, 3)
    h, w = frames.shape[1:3]
    scale = max(1.0, MIN_PLAY_SIDE / min(h, w))
    if scale > 1:
        size = (int(round(w * scale)) // 2 * 2, int(round(h * scale)) // 2 * 2)
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames])
    if lms is not None:
        k = frames.shape[1] / h
        frames = np.stack([overlay_landmarks(f, lms[min(i, len(lms) - 1)] * k) for i, f in enumerate(frames)])
    fps = float(row.get("fps") or 0) or video_fps(src)
    return encode_mp4(out, frames, fps)


def load_landmarks(corpus: str | Path, row: dict) -> np.ndarray | None:
    """The item's landmarks float32 (N, 68, 2) (``landmarks_path``), or None when it has none."""
    rel = row.get("landmarks_path")
    if is_missing(rel) or str(rel) == "":       # None, NaN (a parquet null), ""
        return None
    p = safe_join(corpus, rel)
    if not _exists(p) or not p.is_file():
        return None
    try:
        lm = np.load(p, allow_pickle=False).astype(np.float32)
    except (OSError, ValueError, EOFError) as e:
        raise FaceforgeError(f"landmarks {rel} unreadable: {str(e).splitlines()[0] if str(e) else e}") from None
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise FaceforgeError(f"landmarks {rel} must have shape (N, 68, 2), got {lm.shape}")
    return lm


# the 68-point facial parts (iBUG): jaw, brows, nose, eyes, lips; closed parts loop back
_PARTS = ((0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False),
          (36, 42, True), (42, 48, True), (48, 60, True), (60, 68, True))


def overlay_landmarks(frame: np.ndarray, landmarks: np.ndarray, color=(0, 255, 0)) -> np.ndarray:
    """The frame (H, W, 3) with its 68 landmarks (68, 2) drawn as lines per facial part."""
    import cv2

    img = np.ascontiguousarray(frame.copy())
    thickness = max(1, round(min(img.shape[:2]) / 128))
    for start, end, closed in _PARTS:
        pts = np.round(landmarks[start:end]).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], closed, color, thickness, lineType=cv2.LINE_AA)
    return img


def upscale(frame: np.ndarray, min_side: int = MIN_PLAY_SIDE) -> np.ndarray:
    """Nearest-neighbour upscale of a small face crop for display (keeps pixels honest)."""
    h, w = frame.shape[:2]
    k = max(1, math.ceil(min_side / min(h, w)))
    return np.repeat(np.repeat(frame, k, axis=0), k, axis=1) if k > 1 else frame


def frame_view(frame: np.ndarray, landmarks: np.ndarray | None = None, min_side: int = MIN_PLAY_SIDE) -> np.ndarray:
    """A frame (H, W, 3) upscaled for display, with its landmarks (68, 2) drawn when given."""
    big = upscale(frame, min_side)
    if landmarks is not None:
        big = overlay_landmarks(big, landmarks * (big.shape[0] / frame.shape[0]))
    return big
