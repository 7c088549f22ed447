"""Data access for the dashboard: corpus manifests, detector runs, thumbnails, provenance.

Pure functions (no Streamlit here; the pages wrap them in ``st.cache_data``). Every file the app
shows comes through :func:`corpus_file` / :func:`run_file`, which go through
``forge.common.safe_join``: no path outside the corpus / runs roots is ever served.
Derived media (thumbnails, browser-playable MP4s) are made once into a cache folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from forge.common import FaceforgeError, atomic_path, get_logger, require_file, safe_join, safe_name

log = get_logger("dashboard")

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
EVAL_IMAGES = ("roc.png", "pr.png", "reliability.png")
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
        from forge.common import REPO_ROOT

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
    if relpath is None or str(relpath) == "":
        raise FaceforgeError(f"{what}: no path in the manifest")
    p = safe_join(corpus, relpath)
    if not p.exists():
        raise FaceforgeError(f"{what} not found: {relpath}")
    return p


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
    if not rel:
        return None
    p = safe_join(corpus, rel)
    if not p.is_file():
        return None
    lm = np.load(p, allow_pickle=False).astype(np.float32)
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


# ---------------------------------------------------------------- detector runs
@dataclass(frozen=True)
class RunInfo:
    name: str            # path relative to the runs root ("." when the root is the run)
    path: Path
    config: dict
    metrics: dict
    evals: tuple[str, ...]


def _is_run(d: Path) -> bool:
    return (d / "metrics.json").is_file() or (d / "config.yaml").is_file() or (d / "eval").is_dir()


def find_runs(runs_root: str | Path | None, max_depth: int = 2) -> list[RunInfo]:
    """Detector runs under ``runs_root`` (the root itself or sub-folders up to ``max_depth``)."""
    if runs_root is None or not Path(runs_root).is_dir():
        return []
    root = Path(runs_root).resolve()
    found, frontier = [], [(root, 0)]
    while frontier:
        d, depth = frontier.pop(0)
        if _is_run(d):
            found.append(load_run_info(root, d))
            continue
        if depth < max_depth:
            frontier += [(c, depth + 1) for c in sorted(d.iterdir()) if c.is_dir() and not c.name.startswith(".")]
    return found


def load_run_info(root: Path, run: Path) -> RunInfo:
    import yaml

    config: dict = {}
    if (run / "config.yaml").is_file():
        try:
            config = yaml.safe_load((run / "config.yaml").read_text()) or {}
        except yaml.YAMLError as e:
            config = {"error": f"config.yaml unreadable: {str(e).splitlines()[0]}"}
    metrics = _read_json(run / "metrics.json")
    evals = tuple(sorted(d.name for d in (run / "eval").iterdir() if d.is_dir())) if (run / "eval").is_dir() else ()
    name = "." if run == root else str(run.relative_to(root))
    return RunInfo(name=name, path=run, config=config if isinstance(config, dict) else {}, metrics=metrics, evals=evals)


def _read_json(p: Path) -> dict:
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        return {"error": f"{p.name} unreadable: {e}"}
    return data if isinstance(data, dict) else {"value": data}


def run_file(runs_root: str | Path, relpath: str | Path) -> Path | None:
    """A file inside the runs root (never outside), or None when absent."""
    p = safe_join(runs_root, relpath)
    return p if p.is_file() else None


def flatten_metrics(metrics: dict, prefix: str = "") -> dict[str, Any]:
    """``{"auc": .9, "by": {"warp": {"auc": .8}}}`` -> ``{"auc": .9, "by.warp.auc": .8}`` (scalars only)."""
    flat: dict[str, Any] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten_metrics(v, key + "."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            flat[key] = v
    return flat


def metrics_table(runs: Iterable[RunInfo]):
    """One row per (run, eval) with its scalar metrics (val metrics as eval ``val``)."""

    rows = []
    for run in runs:
        evals = [("val", run.metrics)] if run.metrics else []
        evals += [(ev, _read_json(run.path / "eval" / ev / "metrics.json")) for ev in run.evals]
        for ev, m in evals:
            flat = flatten_metrics(m)
            rows.append({"run": run.name, "eval": ev, **{k: v for k, v in flat.items() if k not in ("run", "eval")}})
    return pd.DataFrame(rows)


def eval_breakdowns(run: RunInfo, eval_name: str) -> dict[str, pd.DataFrame]:
    """``metrics.json["by"]`` of an evaluation ({column: {value: {"auc", "n_fake", ...}}}) as one table
    per column: DataFrame[value, auc, n_fake, ...]."""
    by = _read_json(run.path / "eval" / eval_name / "metrics.json").get("by") or {}
    out = {}
    for col, groups in by.items():
        if isinstance(groups, dict) and groups and all(isinstance(g, dict) for g in groups.values()):
            out[col] = pd.DataFrame([{col: k, **v} for k, v in groups.items()])
    return out


# score CSVs: the column names other packages might use for the same thing
_ID_COLS = ("item_id", "video_id", "id", "path", "file")
_FRAME_COLS = ("frame", "frame_index", "index", "t")
_SCORE_COLS = ("score", "p_fake", "prob_fake", "prob", "prediction", "logit")
_LABEL_COLS = ("label", "y_true", "target", "is_fake")


def normalize_scores(df):
    """Score CSV -> columns ``item_id``, (``frame``), ``score`` (higher = more fake), (``y``: 1 fake)."""

    def pick(cands):
        return next((c for c in cands if c in df.columns), None)

    idc, sc = pick(_ID_COLS), pick(_SCORE_COLS)
    if idc is None or sc is None:
        raise FaceforgeError(f"score table needs an id column and a score column, has {list(df.columns)}")
    out = pd.DataFrame({"item_id": df[idc].astype(str), "score": pd.to_numeric(df[sc], errors="coerce")})
    if idc in ("path", "file") and "item_id" not in df.columns:
        out["item_id"] = out["item_id"].map(lambda s: Path(s).stem if "/" in s or "." in s else s)
        out["path"] = df[idc].astype(str)
    fc = pick(_FRAME_COLS)
    if fc is not None:
        out["frame"] = pd.to_numeric(df[fc], errors="coerce")
    lc = pick(_LABEL_COLS)
    if lc is not None:
        lab = df[lc]
        out["y"] = (lab.astype(str).str.lower().isin(["fake", "1", "true", "1.0"])).astype(int)
    return out


def load_scores(run: RunInfo, eval_name: str, kind: str = "videos"):
    """``eval/<name>/scores_<kind>.csv`` normalized, or None when absent."""

    p = run.path / "eval" / eval_name / f"scores_{kind}.csv"
    if not p.is_file():
        return None
    return normalize_scores(pd.read_csv(p))


def item_frame_scores(runs: Iterable[RunInfo], item_id: str, loader=None):
    """Per-frame scores of one item across all runs/evals: DataFrame[frame, score, series].
    ``loader(run, eval_name, kind)`` defaults to :func:`load_scores` (the app passes a cached one)."""
    loader = loader or load_scores
    parts = []
    for run in runs:
        for ev in run.evals:
            s = loader(run, ev, "frames")
            if s is None or "frame" not in s:
                continue
            hit = s[s["item_id"] == str(item_id)]
            if len(hit):
                parts.append(hit.assign(series=f"{run.name}/{ev}")[["frame", "score", "series"]])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["frame", "score", "series"])


def with_truth(scores, manifest):
    """Video scores joined with the manifest (label, generator, compression, ...); ``y`` from labels."""
    cols = ["item_id", "label", "generator", "mode", "T", "compression", "split", "source_identity"]
    merged = scores.drop(columns=[c for c in ("y",) if c in scores]).merge(manifest[cols], on="item_id", how="inner")
    merged["y"] = (merged["label"] == "fake").astype(int)
    return merged


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC, NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y, s = np.asarray(y), np.asarray(s, dtype=float)
    ok = ~np.isnan(s)
    y, s = y[ok], s[ok]
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def cross_matrix(merged, rows: str = "generator", cols: str = "compression"):
    """AUC of each fake ``rows`` value vs the reals, per ``cols`` value: DataFrame (rows x cols).
    Reals are matched on the column value when that column applies to reals (e.g. compression)."""

    reals, fakes = merged[merged["y"] == 0], merged[merged["y"] == 1]
    rvals = sorted(display_values(fakes[rows]).unique())
    cvals = sorted(display_values(merged[cols]).unique())
    table = pd.DataFrame(index=rvals, columns=cvals, dtype=float)
    fr, fc = display_values(fakes[rows]), display_values(fakes[cols])
    rc = display_values(reals[cols])
    for r in rvals:
        for c in cvals:
            f = fakes[(fr == r) & (fc == c)]
            neg = reals[rc == c] if (rc == c).any() else reals
            if len(f) and len(neg):
                table.loc[r, c] = auc(np.r_[np.zeros(len(neg)), np.ones(len(f))], np.r_[neg["score"], f["score"]])
    table.index.name, table.columns.name = rows, cols
    return table


def worst_errors(merged, k: int = 5, threshold: float = 0.5):
    """The ``k`` most confident mistakes: reals with the highest scores (false positives) and fakes
    with the lowest (false negatives), at ``threshold``."""
    fp = merged[(merged["y"] == 0) & (merged["score"] >= threshold)].nlargest(k, "score")
    fn = merged[(merged["y"] == 1) & (merged["score"] < threshold)].nsmallest(k, "score")
    return fp, fn


def study_matrices(results_dir: str | Path | None) -> list[tuple[str, "pd.DataFrame"]]:
    """Heatmap-shaped tables found in ``results_dir/detect_*.json``: every nested dict of the form
    ``{row: {col: number}}`` (e.g. train-generator x test-generator AUC), titled by file and key."""

    out = []
    if results_dir is None or not Path(results_dir).is_dir():
        return out
    for p in sorted(Path(results_dir).glob("detect_*.json")):
        data = _read_json(p)
        for key, table in _matrices_in(data):
            out.append((f"{p.stem}: {key}" if key else p.stem, pd.DataFrame(table).T.astype(float)))
    return out


MATRIX_METRIC = "auc"  # the cell value taken from dict cells ({"auc": .9, "n": 40})


_NO_CELL = object()


def _cell(x: Any) -> Any:
    """A matrix cell's value: a number, or a dict's ``MATRIX_METRIC`` (None there = an empty cell, NaN)."""
    if isinstance(x, dict):
        if MATRIX_METRIC not in x:
            return _NO_CELL
        x = x[MATRIX_METRIC]
        if x is None:
            return float("nan")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    return _NO_CELL


def _matrices_in(node: Any, key: str = "") -> Iterable[tuple[str, dict]]:
    if not isinstance(node, dict) or not node:
        return
    values = list(node.values())
    if len(node) >= 2 and all(isinstance(v, dict) and v for v in values):
        cells = {r: {c: _cell(x) for c, x in v.items()} for r, v in node.items()}
        flat = [x for row in cells.values() for x in row.values()]
        if all(x is not _NO_CELL for x in flat) and any(x == x for x in flat):  # x == x: not NaN
            yield key, cells
            return
    for k, v in node.items():
        yield from _matrices_in(v, f"{key}.{k}" if key else str(k))


def study_curves(results_dir: str | Path | None) -> list[tuple[str, pd.DataFrame]]:
    """Curves in ``results_dir/detect_*.json``: lists of ``{"level": x, "auc": y}`` (robustness studies),
    as DataFrame[level, auc] titled by file and key."""
    out = []
    if results_dir is None or not Path(results_dir).is_dir():
        return out
    for p in sorted(Path(results_dir).glob("detect_*.json")):
        out += [(f"{p.stem}: {k}", df) for k, df in _curves_in(_read_json(p))]
    return out


def _curves_in(node: Any, key: str = "") -> Iterable[tuple[str, pd.DataFrame]]:
    if isinstance(node, list) and len(node) >= 2 and all(isinstance(x, dict) and "level" in x and MATRIX_METRIC in x
                                                          for x in node):
        df = pd.DataFrame({"level": [fmt_value(x["level"]) for x in node],
                           MATRIX_METRIC: [np.nan if x[MATRIX_METRIC] is None else x[MATRIX_METRIC] for x in node]})
        yield key, df
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _curves_in(v, f"{key}.{k}" if key else str(k))


# ---------------------------------------------------------------- other packages (built concurrently)
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


def score_with_runs(runs: Iterable[RunInfo], path: str | Path, faces: str = "detect") -> tuple["pd.DataFrame | None", list[str]]:
    """``detect.score_files(run, [path], faces=...)`` for every run; (table, problems).
    ``faces``: "detect" (find and crop faces) or "none" (the file is already a face crop)."""
    problems: list[str] = []
    try:
        from detect import score_files
    except ImportError as e:
        return None, [f"detector package unavailable ({e})"]
    rows = []
    for run in runs:
        try:
            df = score_files(run.path, [Path(path)], faces=faces, progress=False)
        except FaceforgeError as e:
            problems.append(f"{run.name}: {e}")
            continue
        except Exception as e:  # shown to the user, page stays up
            log.warning("score_files failed for run %s: %r", run.name, e)
            problems.append(f"{run.name}: {type(e).__name__}: {e}")
            continue
        rows.append(df.assign(run=run.name))
    return (pd.concat(rows, ignore_index=True) if rows else None), problems


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
