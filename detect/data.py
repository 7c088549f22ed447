"""Reading a faceforge corpus (see the corpus contract in docs/ARCHITECTURE.md) for detectors.

A corpus item is a face-crop video (S x S) at ``path`` (relative to the corpus root): an MP4, an
MJPEG file, or a folder of JPEGs; ``landmarks_path`` is an ``.npy (N, 68, 2)`` of the frames shown.
Bad items are skipped and recorded, never a crash in the middle of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from core.common import FaceforgeError, get_logger, safe_join

log = get_logger("detect.data")

REQUIRED_COLUMNS = ("item_id", "path", "label", "split")
LABELS = {"real": 0, "fake": 1}
SPLITS = ("train", "val", "test")
FRAME_EXTS = (".jpg", ".jpeg", ".png")
FAKE_ONLY_VALUES = ("none", "real", "false", "nan", "")  # a real row's value for fake-only columns


@dataclass
class Item:
    """One decoded corpus item (or one scored file)."""

    item_id: str
    label: int                          # 1 = fake, 0 = real, -1 = unknown (user files)
    frames: np.ndarray                  # (N, S, S, 3) uint8
    landmarks: np.ndarray | None        # (N, 68, 2) float32 in crop pixels, or None
    meta: dict = field(default_factory=dict)


@dataclass
class LoadReport:
    items: list[Item]
    errors: list[dict]                  # {"item_id", "path", "error"} per skipped item


# ---------------------------------------------------------------- manifest
def manifest_path(corpus: str | Path) -> Path:
    root = Path(corpus)
    if not root.is_dir():
        raise FaceforgeError(f"corpus folder not found: {root}")
    p = root / "manifest.parquet"
    if not p.is_file():
        raise FaceforgeError(f"no manifest.parquet in corpus {root} (build one with `faceforge forge corpus`)")
    return p


def load_manifest(corpus: str | Path):
    """The corpus manifest as a DataFrame, validated for the columns detectors rely on."""
    import pandas as pd

    p = manifest_path(corpus)
    try:
        df = pd.read_parquet(p)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise FaceforgeError(f"cannot read {p}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise FaceforgeError(f"{p} lacks column(s) {', '.join(missing)}")
    bad = sorted(set(df["label"].astype(str)) - set(LABELS))
    if bad:
        raise FaceforgeError(f"{p}: labels must be real|fake, found {', '.join(bad)}")
    df = df.copy()
    df["item_id"] = df["item_id"].astype(str)
    return df.reset_index(drop=True)


def parse_filters(items: Iterable[str] | None) -> dict[str, tuple[str, ...]]:
    """``["generator=warp,fewshot", "T=8"]`` -> ``{"generator": ("warp", "fewshot"), "T": ("8",)}``."""
    out: dict[str, tuple[str, ...]] = {}
    for item in items or ():
        if "=" not in item:
            raise FaceforgeError(f"filter must look like column=value[,value...]: {item!r}")
        key, values = item.split("=", 1)
        vals = tuple(v.strip() for v in values.split(",") if v.strip())
        if not key.strip() or not vals:
            raise FaceforgeError(f"filter must look like column=value[,value...]: {item!r}")
        out[key.strip()] = out.get(key.strip(), ()) + vals
    return out


def _norm(v) -> str:
    """Manifest cell -> comparable lower-case string (bools, None/NaN, 8.0 -> "8")."""
    import pandas as pd

    if v is None or (not isinstance(v, (str, bytes)) and np.ndim(v) == 0 and bool(pd.isna(v))):
        return "none"  # None, NaN, pd.NA, NaT
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip().lower()


def apply_filters(df, filters: dict[str, Sequence[str]] | Sequence[str] | None, *, keep_real: bool = False):
    """Rows matching every filter (values within one column are OR-ed).

    ``keep_real=True`` keeps real rows through filters on attributes only fakes have (their value
    is "real"/None/False there: generator, mode, T, watermarked, ...), so "generator=warp" still
    has real negatives; filters on shared attributes (compression, split) apply to reals too."""
    if not isinstance(filters, dict):
        filters = parse_filters(filters)
    mask = np.ones(len(df), dtype=bool)
    for col, values in filters.items():
        if col not in df.columns:
            raise FaceforgeError(f"cannot filter on {col!r}: the manifest has no such column")
        want = {_norm(v) for v in values}
        values_norm = df[col].map(_norm)
        col_mask = np.array(values_norm.isin(want), dtype=bool)
        if keep_real and col not in ("split", "label"):
            # a real row passes a filter on a fake-only attribute (generator, mode, T, ...)
            real = (df["label"].astype(str) == "real").to_numpy()
            col_mask |= real & values_norm.isin(FAKE_ONLY_VALUES).to_numpy()
        mask &= col_mask
    return df[mask].reset_index(drop=True)


# ---------------------------------------------------------------- frames
def read_frames(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """Frames ``(N, H, W, 3) uint8`` of a video file, an image, or a folder of JPEG/PNG frames."""
    from core.media import read_image, read_media

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTS)
        if not files:
            raise FaceforgeError(f"frame folder {path} holds no JPEG/PNG frames")
        files = files[:max_frames] if max_frames else files
        return np.stack([read_image(f) for f in files])
    if not path.exists():
        raise FaceforgeError(f"file not found: {path}")
    frames, _, _ = read_media(path, max_frames=max_frames)
    return frames


def read_item(corpus: str | Path, row: dict, max_frames: int | None = None) -> Item:
    """One manifest row -> Item (frames + landmarks trimmed to the same length)."""
    frames = read_frames(safe_join(corpus, str(row["path"])), max_frames=max_frames)
    landmarks = None
    lm_rel = row.get("landmarks_path")
    if lm_rel is not None and not (isinstance(lm_rel, float) and np.isnan(lm_rel)) and str(lm_rel):
        lm_path = safe_join(corpus, str(lm_rel))
        try:
            landmarks = np.load(lm_path, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError) as e:
            raise FaceforgeError(f"cannot read landmarks {lm_path.name}: {e}") from None
        if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
            raise FaceforgeError(f"landmarks {lm_path.name} must be (N, 68, 2), got {landmarks.shape}")
        n = min(len(frames), len(landmarks))
        frames, landmarks = frames[:n], landmarks[:n]
    return Item(item_id=str(row["item_id"]), label=LABELS[str(row["label"])], frames=frames,
                landmarks=landmarks, meta=dict(row))


def load_items(corpus: str | Path, df, max_frames: int | None = None, desc: str = "items",
               progress: bool = True) -> LoadReport:
    """Decode every row of ``df``; unreadable rows are skipped and listed in ``errors``."""
    from tqdm import tqdm

    items, errors = [], []
    rows = df.to_dict("records")
    for row in tqdm(rows, desc=f"reading {desc}", unit="item", disable=not progress, leave=False):
        try:
            items.append(read_item(corpus, row, max_frames=max_frames))
        except (FaceforgeError, OSError, ValueError, KeyError) as e:  # one bad item never ends the batch
            log.warning("skipping %s: %s", row.get("item_id"), e)
            errors.append({"item_id": str(row.get("item_id")), "path": str(row.get("path")), "error": str(e)})
    return LoadReport(items, errors)


def split_rows(df, split: str, crops_only: bool = True):
    """Rows of one split; by default only face-crop items (``framing == "crop"`` when the manifest
    has a framing column: paste-back full frames are not what frame detectors are trained on)."""
    if split not in SPLITS:
        raise FaceforgeError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    keep = df["split"].astype(str) == split
    if crops_only:
        keep &= is_crop(df)
    return df[keep].reset_index(drop=True)


def is_crop(df) -> np.ndarray:
    """Per row: a face-crop item (``framing`` "crop" or unset; every row when there is no framing column)."""
    if "framing" not in df.columns:
        return np.ones(len(df), bool)
    return df["framing"].map(_norm).isin(("crop", "none")).to_numpy()
