"""Per-detector inference cost on CPU: parameters and frames/s for every registered CNN detector
(untrained weights: speed does not depend on them), at the benchmark input size, 1 torch thread.

    .venv/bin/python -m benchmarks.detect_cost

Baseline in the same run: the feature detectors' feature extraction + classifier (fitted on a tiny
random set so they can predict), timed the same way. Writes ``benchmarks/results/detect_cost.json``.
Training time per detector lives in ``detect_studies.json`` (``cost.train_seconds``).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from core.common import REPO_ROOT, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
CROP = 64            # corpus crop side (the sample corpus is 64 px)
N_FRAMES = 64        # frames per timed call
REPEATS = 2          # timed calls after one warm-up; the best is kept


def _time(fn) -> float:
    fn()
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args(argv)

    from detect.config import DetectConfig
    from detect.data import Item
    from detect.detectors.base import FeatureDetector
    from detect.registry import get_detector_class, list_detectors
    from detect.toy import template_landmarks

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (N_FRAMES, CROP, CROP, 3), dtype=np.uint8)          # (N, S, S, 3)
    lms = np.repeat(template_landmarks(CROP)[None], N_FRAMES, 0) + rng.normal(0, 0.5, (N_FRAMES, 68, 2))
    out = {"device": "cpu", "threads": 1, "crop": CROP, "image_size": args.image_size, "frames_per_call": N_FRAMES,
           "machine": platform.machine(), "detectors": {}}
    for name in list_detectors():
        cfg = DetectConfig(detector=name, image_size=args.image_size, window=8, threads=1)
        det = get_detector_class(name)(cfg)
        if isinstance(det, FeatureDetector):  # fit on 2 random clips so predict works
            items = [Item(f"x{i}", i % 2, frames[:16], lms[:16].astype(np.float32)) for i in range(4)]
            det.fit(items, [], REPO_ROOT / "out" / "detect_cost_tmp" / name)
        secs = _time(lambda: det.score_clip(frames, lms.astype(np.float32)))
        out["detectors"][name] = {"params": det.n_params(), "cpu_frames_per_s": N_FRAMES / secs,
                                  "family": "features+sklearn" if isinstance(det, FeatureDetector) else "cnn"}
        print(f"{name:<18} params {det.n_params():>10,d}  {N_FRAMES / secs:8.1f} frames/s", flush=True)
    base = out["detectors"]["frequency"]["cpu_frames_per_s"]
    for v in out["detectors"].values():
        v["speed_vs_frequency"] = v["cpu_frames_per_s"] / base
    write_json_atomic(RESULTS / "detect_cost.json", out)
    return out


if __name__ == "__main__":
    main()
