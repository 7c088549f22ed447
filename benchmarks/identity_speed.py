"""Face descriptors per second: the torch port of dlib's ResNet (``faces``) against dlib itself.

    python -m benchmarks.identity_speed [--threads 1] [--min-seconds 2] [--repeats 3]

On real 150 px chips (``dlib.get_face_chip`` on the embedded sample videos): dlib's
``compute_face_descriptor`` one chip at a time (batch 1) and on a list of 32 (its batch call), against
the port at batch 1 and 32 on the CPU with the same number of threads (and on CUDA at 1, 32 and 256 when
a GPU is present). Also: the port's agreement with dlib on those chips (max L2), the time to convert
the ``.dat`` into the cached state dict (cold) and to load that cache (warm), and dlib's own load time.
Timings are wall-clock medians on a shared machine (load average recorded).

Writes benchmarks/results/identity_speed.json and identity_speed.png.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # thread pools are sized when numpy/torch/dlib load: set the limits first
    _threads = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "1")
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VIDEOS = ("d0", "d3", "d6", "d9", "d10", "d11", "d12", "d18", "hdtf_wda_katiehill")
FRAMES_PER_VIDEO = 4
BATCH = 32
CUDA_BATCHES = (1, 32, 256)


def sample_chips(n: int = BATCH) -> np.ndarray:
    """``n`` real face chips (N, 150, 150, 3) uint8 cut by dlib from the embedded sample videos."""
    import dlib

    from core.common import SAMPLE_DIR
    from faces.landmarks import dlib_models_dir
    from core.media import read_video

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_models_dir() / "shape_predictor_68_face_landmarks.dat"))
    chips = []
    for name in VIDEOS:
        for frame in read_video(SAMPLE_DIR / "videos" / f"{name}.mp4", every=10, max_frames=FRAMES_PER_VIDEO):
            image = np.ascontiguousarray(frame.image)
            found = detector(image, 0)
            if found:
                chips.append(dlib.get_face_chip(image, predictor(image, found[0]), 150, 0.25))
    if not chips:
        raise SystemExit("no face found in the sample videos")
    return np.stack([chips[i % len(chips)] for i in range(n)])        # (n, 150, 150, 3)


def rate(fn, n_faces: int, min_seconds: float, repeats: int) -> float:
    """Median faces/s of ``fn`` (which describes ``n_faces`` faces), each repeat running >= min_seconds."""
    fn()                                                               # warm-up
    rates = []
    for _ in range(repeats):
        calls, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < min_seconds or calls == 0:
            fn()
            calls += 1
        rates.append(calls * n_faces / elapsed)
    return float(np.median(rates))


def load_times() -> dict:
    """Seconds: dlib's own model load; the port's cold conversion into an empty cache; a warm load."""
    import dlib

    from faces.weights import default_dat_path, load_state_dict

    t0 = time.perf_counter()
    dlib.face_recognition_model_v1(str(default_dat_path()))
    dlib_load = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        _, cold = load_state_dict(cache_dir=cache)
        cold_total = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, warm = load_state_dict(cache_dir=cache)
        warm_total = time.perf_counter() - t0
        cache_mb = cold.cache_file.stat().st_size / 2**20 if cold.cache_file else None
    assert not cold.from_cache and warm.from_cache
    return {"dlib_load_s": round(dlib_load, 3), "port_convert_cold_s": round(cold_total, 3),
            "port_convert_parse_s": round(cold.seconds, 3), "port_cached_load_s": round(warm_total, 3),
            "cache_file_mb": None if cache_mb is None else round(cache_mb, 1)}


def main(argv: list[str] | None = None) -> int:
    import dlib
    import torch

    from core.common import write_json_atomic
    from faces import IdentityNet, chips_to_tensor
    from faces.weights import default_dat_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    chips = sample_chips(BATCH)
    rec = dlib.face_recognition_model_v1(str(default_dat_path()))
    net = IdentityNet.load("cpu")
    x = chips_to_tensor(chips)                                         # (32, 3, 150, 150)
    with torch.inference_mode():
        ours = net(x).numpy()
    ref = np.array([np.asarray(d) for d in rec.compute_face_descriptor(list(chips))], np.float32)
    max_l2 = float(np.linalg.norm(ours - ref, axis=1).max())

    def port(batch: torch.Tensor, device_net=net):
        with torch.inference_mode():
            out = device_net(batch)
        if out.is_cuda:
            torch.cuda.synchronize()

    single = list(chips[:1])
    rows = [
        {"impl": "dlib", "device": "cpu", "batch": 1,
         "faces_per_s": rate(lambda: rec.compute_face_descriptor(single[0]), 1, args.min_seconds, args.repeats)},
        {"impl": "dlib", "device": "cpu", "batch": BATCH,
         "faces_per_s": rate(lambda: rec.compute_face_descriptor(list(chips)), BATCH, args.min_seconds, args.repeats)},
        {"impl": "port", "device": "cpu", "batch": 1,
         "faces_per_s": rate(lambda: port(x[:1]), 1, args.min_seconds, args.repeats)},
        {"impl": "port", "device": "cpu", "batch": BATCH,
         "faces_per_s": rate(lambda: port(x), BATCH, args.min_seconds, args.repeats)},
    ]
    cuda_note = "no CUDA device on this machine"
    if torch.cuda.is_available():
        gpu = IdentityNet.load("cuda")
        for b in CUDA_BATCHES:
            xb = x.repeat((b + BATCH - 1) // BATCH, 1, 1, 1)[:b].cuda()
            rows.append({"impl": "port", "device": "cuda", "batch": b,
                         "faces_per_s": rate(lambda: port(xb, gpu), b, args.min_seconds, args.repeats)})
        cuda_note = torch.cuda.get_device_name(0)
    for r in rows:
        r["faces_per_s"] = round(r["faces_per_s"], 1)
    base = {r["batch"]: r["faces_per_s"] for r in rows if r["impl"] == "dlib"}
    for r in rows:
        if r["impl"] == "port" and r["device"] == "cpu":
            r["speedup_vs_dlib_same_batch"] = round(r["faces_per_s"] / base[r["batch"]], 2)
    out = {"rows": rows, "max_l2_vs_dlib": max_l2, "n_chips": int(len(chips)), "threads": args.threads,
           **load_times(), "torch": torch.__version__, "dlib": dlib.__version__, "cpu": platform.machine(),
           "cpu_count": os.cpu_count(), "cuda": cuda_note, "load_average_before": load_before,
           "load_average_after": os.getloadavg(),
           "note": "median wall-clock faces/s on a shared machine; dlib's batch call takes a list of chips; "
                   "the port runs torch inference_mode in float32"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / "identity_speed.json", out)
    plot(rows, RESULTS / "identity_speed.png", args.threads)
    for r in rows:
        print(f"{r['impl']:>4} {r['device']:>4} batch {r['batch']:>3}: {r['faces_per_s']:8.1f} faces/s")
    print(f"max L2 vs dlib {max_l2:.2e}; convert {out['port_convert_cold_s']} s cold, "
          f"cached load {out['port_cached_load_s']} s, dlib load {out['dlib_load_s']} s")
    return 0


def plot(rows: list[dict], path: Path, threads: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.common import atomic_path

    labels = [f"{r['impl']}\n{r['device']} b{r['batch']}" for r in rows]
    colours = ["#888888" if r["impl"] == "dlib" else ("#1f77b4" if r["device"] == "cpu" else "#2ca02c") for r in rows]
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.2))
    bars = ax.bar(labels, [r["faces_per_s"] for r in rows], color=colours)
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_ylabel("faces / s")
    ax.set_yscale("log")
    ax.set_title(f"dlib ResNet face descriptor: dlib vs torch port ({threads} CPU thread{'s' * (threads > 1)})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
