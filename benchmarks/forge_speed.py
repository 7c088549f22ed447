"""Speed of the few-shot talking-head GAN on this machine (CPU; GPU when present).

- Training: images/s (K source + 1 target frames per episode) and peak RSS of one meta-learning step per
  config (the bundled 64/128/256 configs at batch 1, K=2 to keep the run short on a shared CPU; the
  shipped ``cpu128wg`` and its paper-G twin ``cpu128paper`` at their own batch 4, K = 8).
- Rendering (``Talker.render``, fit + warp guide included for the warp-guided G; the shipped export for
  ``cpu128wg``, fitted on 8 frames so its 3-frame blended guide is timed): batch-1 latency
  (ms/frame) and batch-16 throughput (frames/s) on 1 and 2 threads, against the classical
  piecewise-affine warp baseline measured in the same run.
  Anchor: LivePortrait reports 12.8 ms/frame on an RTX 4090.

Each measurement runs in its own subprocess (so peak memory is per resolution).
    .venv/bin/python -m benchmarks.forge_speed          -> benchmarks/results/forge_speed.json
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "forge_speed.json"
CONFIGS = ("cpu128wg", "cpu128paper", "cpu64", "64", "128", "256")  # cpu128wg is the shipped talker128.pt
OWN_BATCH = ("cpu128wg", "cpu128paper")  # trained at their config's batch / K (the rest: batch 1, K = 2)
RENDER_THREADS = (1, 2)
TRAIN_STEPS, RENDER_REPS, BATCH = 2, 5, 16
SHIPPED_CONFIG = "cpu128wg"   # rendered with forge/weights/talker128.pt, not random weights
GUIDE_T = 8                   # fit frames for the warp-guided G's render (so a multi-frame guide is timed)
WORKER_TIMEOUT_S = 900


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_train(name: str) -> dict:
    import numpy as np
    import torch

    from forge.config import load_train_config
    from forge.data.episodes import ArrayCache
    from forge.train import MetaTrainer

    torch.set_num_threads(1)
    small = {} if name in OWN_BATCH else {"batch_size": 1, "k_shot": 2}
    cfg = load_train_config(name, {**small, "log_every": 10**6, "sample_every": 0, "num_threads": 1})
    res = cfg.model.resolution
    rng = np.random.default_rng(0)
    n = cfg.k_shot + 2
    lms = _mean_face(res)[None] + rng.normal(0, res / 100, (n, 68, 2)).astype(np.float32)   # (n, 68, 2)
    clips = {f"v{i}": (rng.integers(0, 255, (n, res, res, 3), dtype=np.uint8), lms,
                       rng.integers(0, 255, (n, res, res, 3), dtype=np.uint8)) for i in range(2)}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tr = MetaTrainer(cfg, ArrayCache(clips), tmp)
        tr.train_step()  # warm-up
        t0 = time.perf_counter()
        for _ in range(TRAIN_STEPS):
            tr.train_step()
        dt = (time.perf_counter() - t0) / TRAIN_STEPS
    imgs = cfg.batch_size * (cfg.k_shot + 1)
    return {"config": name, "threads": 1, "generator": cfg.model.generator, "resolution": res,
            "sec_per_step": round(dt, 3), "images_per_s": round(imgs / dt, 3),
            "batch_size": cfg.batch_size, "k_shot": cfg.k_shot, "d_steps": cfg.d_steps, "peak_rss_mb": round(_peak_mb())}


def worker_render(name: str, threads: int = 1) -> dict:
    import tempfile

    import numpy as np
    import torch

    from forge.checkpoint import export_random
    from forge.config import load_train_config
    from forge.talker import Talker

    torch.set_num_threads(threads)
    cfg = load_train_config(name).model
    res = cfg.resolution
    rng = np.random.default_rng(0)
    if name == SHIPPED_CONFIG:            # the shipped export itself (its guide blends GUIDE_T fit frames)
        t = Talker.load()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            export_random(Path(tmp) / "t.pt", cfg)
            t = Talker.load(Path(tmp) / "t.pt")
    n_fit = GUIDE_T if t.uses_guide else 1
    img = rng.integers(0, 255, (n_fit, res, res, 3), dtype=np.uint8)
    src_lm = _mean_face(res)
    fit_lm = src_lm[None] + rng.normal(0, res / 100, (n_fit, 68, 2)).astype(np.float32)
    person = t.fit(img, fit_lm, mode="ff")
    lms = src_lm[None] + rng.normal(0, res / 100, (BATCH, 68, 2)).astype(np.float32)   # (BATCH, 68, 2) targets
    t.render(person, lms[:1])  # warm-up
    lat = []
    for i in range(RENDER_REPS):
        t0 = time.perf_counter()
        t.render(person, lms[i:i + 1])
        lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    t.render(person, lms, batch_size=BATCH)
    fps = BATCH / (time.perf_counter() - t0)
    # baseline: piecewise-affine warp of a source frame to BATCH target landmark sets
    from forge.warp import warp_render

    warp_render(img[0], src_lm, lms[:1])
    t0 = time.perf_counter()
    warp_render(img[0], src_lm, lms)
    warp_fps = BATCH / (time.perf_counter() - t0)
    return {"config": name, "threads": threads, "generator": cfg.generator, "resolution": res,
            "g_params_m": round(sum(p.numel() for p in t.G.parameters()) / 1e6, 2),
            "batch1_ms_per_frame": round(1000 * float(np.median(lat)), 2), f"batch{BATCH}_fps": round(fps, 2),
            "warp_baseline_fps": round(warp_fps, 2), "peak_rss_mb": round(_peak_mb())}


def _mean_face(res: int):
    """A plausible 68-point layout (ellipse jaw, brows, eyes, nose, mouth) scaled to ``res``."""
    import numpy as np

    pts = []
    for i in range(17):  # jaw
        a = np.pi * (0.05 + 0.9 * i / 16)
        pts.append((0.5 - 0.32 * np.cos(a), 0.45 + 0.4 * np.sin(a)))
    pts += [(0.22 + 0.05 * i, 0.33 - 0.02 * np.sin(np.pi * i / 4)) for i in range(5)]
    pts += [(0.58 + 0.05 * i, 0.33 - 0.02 * np.sin(np.pi * i / 4)) for i in range(5)]
    pts += [(0.5, 0.40 + 0.04 * i) for i in range(4)] + [(0.44 + 0.03 * i, 0.58) for i in range(5)]
    for cx in (0.33, 0.67):
        pts += [(cx + 0.05 * np.cos(a), 0.42 + 0.02 * np.sin(a)) for a in np.linspace(np.pi, 3 * np.pi, 6, endpoint=False)]
    pts += [(0.5 + 0.12 * np.cos(a), 0.72 + 0.05 * np.sin(a)) for a in np.linspace(np.pi, 3 * np.pi, 12, endpoint=False)]
    pts += [(0.5 + 0.07 * np.cos(a), 0.72 + 0.02 * np.sin(a)) for a in np.linspace(np.pi, 3 * np.pi, 8, endpoint=False)]
    return (np.array(pts, np.float32) * res)[:68]


def _run_worker(kind: str, name: str, threads: int) -> dict:
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.forge_speed", "--worker", kind, name, str(threads)],
                              capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"config": name, "error": f"timed out after {WORKER_TIMEOUT_S} s on the shared CPU"}
    if proc.returncode != 0:
        return {"config": name, "error": proc.stderr.strip().splitlines()[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from tqdm import tqdm

    from core.common import write_json_atomic

    jobs = [("render", c, th) for c in CONFIGS for th in RENDER_THREADS if th == 1 or c in OWN_BATCH]
    jobs += [("train", c, 1) for c in CONFIGS]
    done = {}  # resumable: rows measured (without error) by an earlier run are kept
    if RESULTS.exists():
        old = json.loads(RESULTS.read_text())
        done = {(k, r["config"], r.get("threads", 1)): {**r, "threads": r.get("threads", 1)}
                for k in ("render", "train") for r in old.get(k, [])
                if "error" not in r and (r["config"] not in OWN_BATCH or "generator" in r)}
    rows = {k: [] for k in ("render", "train")}
    for kind, name, threads in tqdm(jobs, desc="forge_speed"):
        if (kind, name, threads) not in done:
            done[(kind, name, threads)] = dict(_run_worker(kind, name, threads),
                                               load_average_1min=round(os.getloadavg()[0], 1))
        rows[kind].append(done[(kind, name, threads)])
    import torch

    result = {"device": "cpu", "torch_threads": "per row", "cpu": platform.processor() or platform.machine(),
              "note": ("shared 2-core CPU with other engineers' jobs running (load_average_1min per row): numbers are "
                       "pessimistic; train uses batch 1, K=2 and each config's d_steps, except cpu128wg / cpu128paper "
                       "(their own batch 4, K = 8); render includes the warp guide for the warp-guided G"),
              "anchor_liveportrait_rtx4090_ms_per_frame": 12.8, "cuda_available": torch.cuda.is_available(),
              "render": rows["render"], "train": rows["train"]}
    write_json_atomic(RESULTS, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        kind, name, threads = sys.argv[2], sys.argv[3], int(sys.argv[4])
        print(json.dumps(worker_train(name) if kind == "train" else worker_render(name, threads)))
    else:
        main()
