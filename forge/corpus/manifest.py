"""The corpus tables and card: ``manifest.parquet`` (one row per file), ``errors.parquet`` (skipped
sources and jobs, with the reason) and ``corpus.json`` (spec, counts, software versions, times),
plus readers for other packages: ``load_manifest`` and ``read_item_frames``.
"""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from core.common import FaceforgeError, safe_join, write_json_atomic, write_parquet_atomic

# The contract's columns (docs/ARCHITECTURE.md), in order; extra columns follow.
MANIFEST_COLUMNS = [
    "item_id", "group_id", "path", "label", "split", "generator", "generator_version",
    "checkpoint_sha256", "mode", "T", "reenactment", "retarget", "source_identity", "source_frames",
    "driver_identity", "driver_clip", "compression", "watermarked", "resolution", "n_frames", "fps",
    "seed", "sha256", "c2pa_signed", "watermark_payload", "provenance_status", "landmarks_path",
]
EXTRA_COLUMNS = [
    "job_id",        # the render this file comes from (shared by twin / full-frame groups)
    "framing",       # "crop" (S x S face crop) | "full" (pasted back into the driver's frame)
    "twin_of",       # for an un-watermarked twin: the watermarked group it mirrors
    "source_id", "driver_id",  # source video ids (an identity may have several videos)
    "width", "height",
    "clip",          # which disjoint clip of the source (the driver's, for cross-reenactment)
    "render_resolution",  # the side the generator drew at (resized to ``resolution`` when different)
]
ERROR_COLUMNS = ["stage", "source_id", "identity", "path", "job_id", "reason"]
SOFTWARE = ["faceforge", "torch", "numpy", "av", "c2pa-python", "opencv-python", "dlib-bin",
            "pandas", "pyarrow"]

MANIFEST = "manifest.parquet"
ERRORS = "errors.parquet"
CARD = "corpus.json"


def manifest_frame(rows: list[dict[str, Any]]):
    """Rows -> DataFrame with the contract's columns first, sorted by item_id (deterministic)."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS + EXTRA_COLUMNS)
    for col in ("T", "n_frames", "resolution", "seed", "width", "height", "clip", "render_resolution"):
        df[col] = df[col].astype("Int64")
    for col in ("retarget", "watermarked", "c2pa_signed"):
        df[col] = df[col].astype(bool)
    df["fps"] = df["fps"].astype(float)
    return df.sort_values("item_id", kind="stable").reset_index(drop=True)


def errors_frame(errors: list[dict[str, Any]]):
    import pandas as pd

    df = pd.DataFrame(errors, columns=ERROR_COLUMNS)
    return df.sort_values(["stage", "source_id", "job_id"], kind="stable", na_position="first").reset_index(drop=True)


def software_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def counts(df) -> dict[str, Any]:
    """Files and renders per split / label / generator (+ per compression)."""
    def nested(frame, keys):
        out: dict = {}
        for key, n in frame.groupby(keys).size().items():
            key = key if isinstance(key, tuple) else (key,)
            node = out
            for k in key[:-1]:
                node = node.setdefault(str(k), {})
            node[str(key[-1])] = int(n)
        return out

    if len(df) == 0:
        return {"files": 0, "groups": 0}
    groups = df.drop_duplicates("group_id")
    return {
        "files": int(len(df)),
        "groups": int(len(groups)),
        "files_by_split_label_generator": nested(df, ["split", "label", "generator"]),
        "groups_by_split_label_generator": nested(groups, ["split", "label", "generator"]),
        "files_by_compression": nested(df, ["compression"]),
        "identities_by_split": {s: sorted(set(g["source_identity"]) | set(g["driver_identity"]))
                                for s, g in df.groupby("split")},
    }


def write_tables(corpus: Path, rows: list[dict], errors: list[dict], card: dict[str, Any]) -> dict[str, Any]:
    """Write manifest.parquet, errors.parquet and corpus.json (each atomically); returns the card."""
    corpus = Path(corpus)
    df = manifest_frame(rows)
    write_parquet_atomic(corpus / MANIFEST, df)
    write_parquet_atomic(corpus / ERRORS, errors_frame(errors))
    old = _read_json(corpus / CARD)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    card = {
        **card,
        "format": "faceforge-corpus/1",
        "created": old.get("created", now),
        "merged": now,
        "counts": counts(df),
        "errors": int(len(errors)),
        "software": software_versions(),
        "files": {"manifest": MANIFEST, "errors": ERRORS, "splits": "splits.json", "spec": "spec.yaml",
                  "provenance_store": "provenance.sqlite"},
    }
    write_json_atomic(corpus / CARD, card)
    return card


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def load_manifest(corpus: str | Path):
    """The corpus manifest as a DataFrame (one row per file; see MANIFEST_COLUMNS)."""
    import pandas as pd

    path = Path(corpus) / MANIFEST
    if not path.exists():
        raise FaceforgeError(f"no {MANIFEST} in {corpus} (build it with: faceforge forge corpus --out {corpus}"
                             f" [--merge])")
    return pd.read_parquet(path)


def read_item_frames(corpus: str | Path, row) -> np.ndarray:
    """Decode one manifest row's file -> (N, S, S, 3) uint8 (any compression variant)."""
    from forge.corpus.compress import read_frames

    return read_frames(safe_join(corpus, _field(row, "path")))


def read_item_landmarks(corpus: str | Path, row) -> np.ndarray:
    """The landmarks the item's frames show -> (N, 68, 2) float32."""
    return np.load(safe_join(corpus, _field(row, "landmarks_path"))).astype(np.float32)


def _field(row, name: str):
    """A column of a manifest row given as a dict, a pandas Series or an ``itertuples`` tuple."""
    return getattr(row, name) if hasattr(row, "_fields") else row[name]
