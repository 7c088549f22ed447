"""Part 2 of ``benchmarks/robustness_fuzz.py``: broken media through ``forge prepare`` and ``detect score``.

``make_broken`` damages real sample clips and portraits (the mutation kinds of ``provenance.mutants``,
plus empty and renamed files); ``fuzz_media`` runs both CLI batches on them (a ``frequency`` detector
trained on a toy corpus by ``train_detector``) and records return codes, hangs and per-file statuses.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BATCH_TIMEOUT_S = 3600    # prepare / detect score of all broken files


def make_broken(folder: Path, n: int, seed: int) -> list[Path]:
    """``n`` damaged media files from real sample clips (160 px, 10 frames) and portraits."""
    import cv2

    from core.common import SAMPLE_DIR
    from core.media import read_frames, write_video
    from provenance import mutants

    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.iterdir():
        p.unlink()
    rng = np.random.default_rng(seed)
    originals = []
    for name in ("hdtf_wda_katiehill", "d0", "d18"):
        frames = read_frames(SAMPLE_DIR / "videos" / f"{name}.mp4", max_frames=10)
        p = folder.parent / f"orig_{name}.mp4"
        write_video(p, np.stack([cv2.resize(f, (160, 160)) for f in frames]), fps=25, crf=20)
        originals.append(p)
    originals += [SAMPLE_DIR / "portraits" / "s42.jpg"]
    kinds = ("truncate", "flip_media", "insert", "zero_block", "random_file", "flip_file_header")
    out = []
    for i in range(n):
        src = originals[i % len(originals)]
        data = bytearray(src.read_bytes())
        kind = kinds[(i // len(originals)) % len(kinds)]
        if i % 20 == 19:
            blob, kind = b"", "empty"
        elif i % 20 == 9:
            blob, kind = bytes(data), "renamed"           # a good video named .jpg / a good image named .mp4
        else:
            span = mutants.Span(len(data) // 3, len(data) // 3, 0)     # no manifest: flips anywhere
            blob = bytes(mutants.MUTATORS[kind](data, span, rng)[0])
        ext = {"renamed": ".jpg" if src.suffix == ".mp4" else ".mp4"}.get(kind, src.suffix)
        p = folder / f"{i:03d}-{kind}-{src.stem}{ext}"
        p.write_bytes(blob)
        out.append(p)
    return out


def _batch(args: list[str], log) -> tuple[int | None, float, str]:
    t0 = time.perf_counter()
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=BATCH_TIMEOUT_S,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        return r.returncode, time.perf_counter() - t0, (r.stderr or "")[-600:]
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, "timeout"


def fuzz_media(files: list[Path], work: Path, log) -> dict:
    import json

    import pandas as pd

    cli = [sys.executable, "-m", "forge.cli"]
    cache = work / "cache"
    if cache.exists():
        shutil.rmtree(cache)
    rc, secs, err = _batch(cli + ["forge", "prepare", str(files[0].parent), "--out", str(cache), "--quiet"], log)
    log(f"prepare: rc {rc} in {secs:.0f} s")
    prep = {"returncode": rc, "seconds": round(secs, 1), "hang": rc is None,
            "crash": rc not in (0, None) or "Traceback" in err, "stderr_tail": err if rc else ""}
    if (cache / "videos.parquet").exists():
        videos = pd.read_parquet(cache / "videos.parquet")
        prep["recorded"] = int(len(videos))
        prep["statuses"] = {str(k): int(v) for k, v in videos["status"].value_counts().items()}
    run = train_detector(work, log)
    scores = work / "scores"
    rc, secs, err = _batch(cli + ["detect", "score", "--model", str(run), "--out", str(scores), "--max-frames", "16",
                                  *map(str, files)], log)
    log(f"detect score: rc {rc} in {secs:.0f} s")
    score = {"returncode": rc, "seconds": round(secs, 1), "hang": rc is None,
             "crash": rc not in (0, 1, None) or "Traceback" in err, "stderr_tail": err if rc not in (0, 1) else ""}
    if (scores / "scores.json").exists():
        videos = pd.DataFrame(json.loads((scores / "scores.json").read_text())["videos"])
        score["recorded"] = int(len(videos))
        score["statuses"] = {str(k): int(v) for k, v in videos["status"].value_counts().items()}
    return {"n_files": len(files), "kinds": dict(collections.Counter(f.name.split("-")[1] for f in files)),
            "prepare": prep, "detect_score": score}


def train_detector(work: Path, log) -> Path:
    """A ``frequency`` detector on a toy corpus (seconds on one core): something for ``detect score``."""
    from detect.config import DetectConfig
    from detect.toy import ToyCorpusConfig, build_toy_corpus
    from detect.train import train

    corpus = build_toy_corpus(work / "toy_corpus", ToyCorpusConfig(size=32, n_frames=8))
    run = work / "detector"
    train(corpus, run, DetectConfig(detector="frequency", image_size=32, frames_per_item=4), progress=False)
    log(f"detector trained: {run}")
    return run
