"""Data access for the dashboard: the app's config and the corpus (manifest rows, filters, item files).

Pure functions (no Streamlit here; the pages wrap them in ``st.cache_data``). Every corpus file the
app shows comes through :func:`corpus_file` (and detector-run files through
``dashboard.runs.run_file``), which go through ``core.common.safe_join``: no path outside the
corpus / runs roots is ever served. The pixels shown (frames, thumbnails, browser-playable MP4s) are
made in ``dashboard.media``, detector runs live in ``dashboard.runs``, the calls into the other
packages (provenance, detect, forge.data) in ``dashboard.checks``.
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

from core.common import FaceforgeError, require_file, safe_join

# The manifest contract (docs/ARCHITECTURE.md, corpus). Missing columns are added as empty so
# an older or partial corpus still opens.
MANIFEST_COLUMNS = (
    "item_id", "group_id", "path", "label", "split", "generator", "generator_version",
    "checkpoint_sha256", "mode", "T", "reenactment", "retarget", "source_identity", "source_frames",
    "driver_identity", "driver_clip", "compression", "watermarked", "resolution", "n_frames", "fps",
    "seed", "sha256", "c2pa_signed", "watermark_payload", "provenance_status", "landmarks_path",
)
COUNT_COLUMNS = ("split", "label", "generator", "mode", "T", "compression")  # the Corpus page charts
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
