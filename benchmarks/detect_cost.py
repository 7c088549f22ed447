"""Per-detector inference cost on CPU: parameters and face frames/s for every registered detector
(untrained weights: speed does not depend on them) and the shipped default detector, scoring a batch
of 64 face crops of 128 px (the shipped detector's crop) with 2 torch threads.

    .venv/bin/python -m benchmarks.detect_cost [--crop 128] [--threads 2]

Frames/s is wall-clock over the best of two timed calls; on a shared machine the CPU time the
process actually got is recorded too (``cpu_frames_per_s`` = frames per CPU-second of the process,
what 1 uncontended core would give; the 2-core figure is at most twice that).
Face detection (dlib) is not included: it is the same for every detector.

Baseline in the same run: the feature detectors' feature extraction + classifier (fitted on a tiny
random set so they can predict), timed the same way. ``--run NAME=RUN`` also times trained runs (the
in-distribution stacks). Writes ``benchmarks/results/detect_cost.json``.
Training time per detector: ``seconds_this_call`` of each trained run in ``detect_studies.json``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, FaceforgeError, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
CROP = 128           # face crop side of the shipped default detector
N_FRAMES = 64        # frames per timed call (one batch)
REPEATS = 2          # timed calls after one warm-up; the best is kept


def _time(fn) -> tuple[float, float]:
    """Best (wall seconds, process CPU seconds) of REPEATS calls after a warm-up."""
    fn()
    best = (float("inf"), float("inf"))
    for _ in range(REPEATS):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
    return best


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=CROP, help="CNN input side for the registered detectors")
    ap.add_argument("--crop", type=int, default=CROP, help="face crop side fed to every detector")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--detectors", nargs="*", help="registered detectors to time (default: all but the ensemble, "
                                                   "whose cost is the sum of its members')")
    ap.add_argument("--run", action="append", default=[], metavar="NAME=RUN",
                    help="also time a trained run (e.g. an ensemble), recorded under NAME")
    args = ap.parse_args(argv)
    runs = [spec.partition("=")[::2] for spec in args.run]                 # (NAME, RUN), checked before timing
    for (name, run), spec in zip(runs, args.run):
        if not name or not run:
            raise FaceforgeError(f"--run takes NAME=RUN, got {spec!r}")
        if not (Path(run) / "config.yaml").is_file():
            raise FaceforgeError(f"{run} is not a detector run (no config.yaml)")
    import torch

    torch.set_num_threads(args.threads)
    crop = args.crop

    from detect.config import DetectConfig
    from detect.data import Item
    from detect.detectors.base import FeatureDetector
    from detect.registry import get_detector_class, list_detectors
    from detect.toy import template_landmarks

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (N_FRAMES, crop, crop, 3), dtype=np.uint8)          # (N, S, S, 3)
    lms = (np.repeat(template_landmarks(crop)[None], N_FRAMES, 0)
           + rng.normal(0, 0.5, (N_FRAMES, 68, 2))).astype(np.float32)             # (N, 68, 2)
    out = {"device": "cpu", "threads": args.threads, "crop": crop, "image_size": args.image_size,
           "frames_per_call": N_FRAMES, "machine": platform.machine(), "detectors": {}}

    def record(name, det, family):
        wall, cpu = _time(lambda: det.score_clip(frames, lms))
        out["detectors"][name] = {"params": det.n_params(), "frames_per_s": N_FRAMES / wall,
                                  "cpu_frames_per_s": N_FRAMES / max(cpu, 1e-9), "family": family}
        print(f"{name:<28} params {det.n_params():>10,d}  {N_FRAMES / wall:8.1f} frames/s "
              f"({N_FRAMES / max(cpu, 1e-9):8.1f} per CPU-s)", flush=True)

    for name in args.detectors or [n for n in list_detectors() if n != "ensemble"]:
        cfg = DetectConfig(detector=name, image_size=args.image_size, window=8, threads=args.threads)
        det = get_detector_class(name)(cfg)
        if isinstance(det, FeatureDetector):  # fit on 2 random clips so predict works
            items = [Item(f"x{i}", i % 2, frames[:16], lms[:16]) for i in range(4)]
            det.fit(items, [], REPO_ROOT / "out" / "detect_cost_tmp" / name)
        record(name, det, "features+sklearn" if isinstance(det, FeatureDetector) else "cnn")
    from detect.score import load_run

    try:
        shipped = load_run(None)
        record(f"default (shipped {shipped.cfg.detector})", shipped.detector, "shipped default")
    except FaceforgeError as e:
        out["default_error"] = str(e)
    for name, run in runs:
        lr = load_run(run, threads=args.threads)
        record(name, lr.detector, f"trained run {lr.cfg.detector}")
        out["detectors"][name]["run"] = run
    base = out["detectors"]["frequency"]["frames_per_s"]
    for v in out["detectors"].values():
        v["speed_vs_frequency"] = v["frames_per_s"] / base
    write_json_atomic(RESULTS / "detect_cost.json", out)
    return out


if __name__ == "__main__":
    from benchmarks import run_script

    run_script(main)
