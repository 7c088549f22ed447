"""Watermark-matched real controls for a benchmark corpus.

Every fake of a faceforge corpus carries the invisible watermark (``provenance.watermark``); its real
items do not. A detector trained or scored on such a corpus can separate the two by the watermark
alone, which no fake from the wild carries. This module writes, once per corpus, each real video again
with a watermark embedded (one payload per video, derived from its group id) *before* the same
compression variants the corpus wrote (raw / c23 / c40 / JPEG), under ``CORPUS/controls/wm_reals/``,
and swaps them in for the reals of a manifest: with the control, real and fake differ in generation
only. Resumable (a video whose files all exist is skipped), atomic writes.

    .venv/bin/python -m detect.wm_reals out/bench128v2
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, get_logger, safe_join

log = get_logger("detect.wm_reals")

CONTROL = "controls/wm_reals"


def payload_of(group_id: str) -> int:
    """A fixed 64-bit payload per real video (seeded by its group id)."""
    return int.from_bytes(hashlib.blake2b(group_id.encode(), digest_size=8).digest(), "big")


def control_path(row) -> str:
    """Corpus-relative path of a real row's watermarked twin."""
    from forge.corpus.compress import variant_filename

    return f"{CONTROL}/{row['group_id']}/{variant_filename(str(row['compression']))}"


def _real_rows(df):
    return df[df["label"].astype(str) == "real"]


def build(corpus: str | Path, progress: bool = True) -> dict:
    """Write the watermarked twin of every real item of ``corpus`` -> counts ``{"written", "skipped", "errors"}``."""
    from tqdm import tqdm

    from detect.data import load_manifest
    from forge.corpus.compress import read_frames, write_variant
    from forge.corpus.spec import load_spec
    from provenance.watermark import embed

    corpus = Path(corpus)
    df = _real_rows(load_manifest(corpus))
    spec = corpus / "spec.yaml"
    quality = load_spec(spec).jpeg_quality if spec.is_file() else 75
    counts = {"written": 0, "skipped": 0, "errors": []}
    for group, rows in tqdm(df.groupby("group_id", sort=True), desc="watermarking reals", disable=not progress):
        dsts = {r["compression"]: safe_join(corpus, control_path(r)) for r in rows.to_dict("records")}
        if all(p.is_file() for p in dsts.values()):
            counts["skipped"] += 1
            continue
        try:
            raw = rows[rows["compression"].astype(str) == "raw"]
            src = raw.iloc[0] if len(raw) else rows.iloc[0]          # lossless when the corpus has it
            frames = read_frames(safe_join(corpus, str(src["path"])))  # (N, S, S, 3) uint8
            marked = np.asarray(embed(frames, payload_of(str(group))), np.uint8)
            for comp, dst in dsts.items():
                dst.parent.mkdir(parents=True, exist_ok=True)
                write_variant(dst, marked, float(src["fps"]), str(comp), quality)
            counts["written"] += 1
        except (FaceforgeError, OSError, ValueError) as e:            # one bad video never ends the batch
            log.warning("skipping %s: %s", group, e)
            counts["errors"].append({"group_id": str(group), "error": str(e)})
    return counts


def swap_reals(corpus: str | Path, df):
    """``df`` (manifest rows) with each real row pointing at its watermarked twin (``watermarked`` True).
    Raises when a twin is missing (run :func:`build` first)."""
    df = df.copy()
    real = df["label"].astype(str) == "real"
    paths = [control_path(r) for r in df[real].to_dict("records")]
    missing = [p for p in paths if not safe_join(corpus, p).is_file()]
    if missing:
        raise FaceforgeError(f"{corpus}: {len(missing)} watermarked real control(s) missing, e.g. {missing[0]} "
                             f"(run: python -m detect.wm_reals {corpus})")
    df.loc[real, "path"] = paths
    df.loc[real, "watermarked"] = True
    return df


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", help="a benchmark corpus folder (manifest.parquet)")
    args = ap.parse_args(argv)
    try:
        counts = build(args.corpus)
    except FaceforgeError as e:                      # a user error: one line, not a traceback
        raise SystemExit(f"faceforge: error: {e}") from None
    print(f"{args.corpus}: {counts['written']} written, {counts['skipped']} already there, "
          f"{len(counts['errors'])} errors")
    return 1 if counts["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
