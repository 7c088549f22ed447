"""Speed and quality of the data foundation (``forge prepare``) on this machine.

    python -m benchmarks.prepare [--frames-per-video 12] [--videos 4]

1. Landmark backends, frames/s on sample frames: decoding alone (the floor), dlib on the full frame
   (the naive baseline) and dlib on a downscaled copy (what prepare uses), face-alignment when its
   weights are cached (else the reason it is not). Agreement: mean landmark distance between two
   runs, normalised by the inter-ocular distance (NME); between face-alignment and dlib when both exist.
   Tracking: ``--detect-every 5`` (detector on every 5th frame, landmarks fitted in a carried box in
   between) vs detection on every frame, on consecutive sampled frames: frames/s and NME between them.
2. Crop stability: per-frame crop boxes (baseline) vs the tracked, smoothed boxes, as the mean
   absolute second difference of centre/side in % of the side (shake), on consecutive frames.
3. End to end: ``prepare`` of the whole sample at 128 px (every 2nd frame, at most 120 a video),
   with ``detect_every`` 1 (default) and 5: frames/s and cache size (the 64 MiB carry limit), and
   bytes a frame per crop encoding.

Writes benchmarks/results/prepare.json and prepare.png.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent
VIDEOS = ROOT / "data" / "sample" / "videos"
RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)
CARRY_LIMIT_MIB = 64


def nme(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance / inter-ocular distance of ``b`` for (68, 2) landmark sets."""
    iod = np.linalg.norm(b[RIGHT_EYE].mean(0) - b[LEFT_EYE].mean(0))
    return float(np.linalg.norm(a - b, axis=1).mean() / iod)


def sample_frames(names: list[str], per_video: int) -> list[np.ndarray]:
    from core.media import read_video, video_info

    frames = []
    for name in names:
        n = video_info(VIDEOS / name)["n_frames"]
        every = max(1, n // per_video)
        frames += [f.image for f in read_video(VIDEOS / name, every=every, max_frames=per_video)]
    return frames


def time_decode(names: list[str], per_video: int) -> dict:
    from core.media import read_video

    t0, n = time.perf_counter(), 0
    for name in names:
        for _ in read_video(VIDEOS / name, max_frames=per_video):
            n += 1
    dt = time.perf_counter() - t0
    return dict(frames=n, seconds=round(dt, 3), fps=round(n / dt, 1))


def time_detector(detector, frames: list[np.ndarray]) -> tuple[dict, list]:
    detector.detect(frames[0])  # warm-up
    t0 = time.perf_counter()
    faces = [detector.detect(f) for f in frames]
    dt = time.perf_counter() - t0
    found = sum(1 for f in faces if f)
    return dict(frames=len(frames), seconds=round(dt, 3), fps=round(len(frames) / dt, 1),
                detection_rate=round(found / len(frames), 3)), faces


def agreement(faces_a: list, faces_b: list) -> dict:
    errs = [nme(a[0].landmarks, b[0].landmarks) for a, b in zip(faces_a, faces_b) if a and b]
    return dict(pairs=len(errs), nme_mean=round(float(np.mean(errs)), 4) if errs else None,
                nme_max=round(float(np.max(errs)), 4) if errs else None)


def backends(names: list[str], per_video: int) -> dict:
    from faces.landmarks import DlibDetector, backend_status, get_detector

    frames = sample_frames(names, per_video)
    out: dict = {"frames": len(frames), "frame_size": list(frames[0].shape[:2]),
                 "decode_only": time_decode(names, per_video * 10)}
    full = DlibDetector(detect_size=100_000)  # never downscale: the naive baseline
    out["dlib_fullres"], faces_full = time_detector(full, frames)
    out["dlib"], faces_dlib = time_detector(get_detector("dlib"), frames)
    out["dlib_vs_fullres"] = agreement(faces_dlib, faces_full)
    out["dlib_speedup_vs_fullres"] = round(out["dlib"]["fps"] / out["dlib_fullres"]["fps"], 2)
    reason = backend_status()["face-alignment"]
    if reason is None:
        out["face-alignment"], faces_fa = time_detector(get_detector("face-alignment"), frames)
        out["face-alignment_vs_dlib"] = agreement(faces_dlib, faces_fa)
    else:
        out["face-alignment"] = dict(available=False, reason=reason)
        out["face-alignment_vs_dlib"] = "not measured: only dlib is available on this machine"
    return out


def tracking(names: list[str], n_frames: int, every: int = 2, detect_every: int = 5) -> dict:
    from forge.data.clip import detect_track
    from faces.landmarks import get_detector

    det = get_detector("dlib")
    per_video, t_full, t_track, n_total, errs, tracked = {}, 0.0, 0.0, 0, [], []
    for name in names:
        t0 = time.perf_counter()
        full, _ = detect_track(VIDEOS / name, det, every=every, max_frames=n_frames, keep_frames=False)
        t1 = time.perf_counter()
        fast, _ = detect_track(VIDEOS / name, det, every=every, max_frames=n_frames, keep_frames=False,
                               detect_every=detect_every)
        t2 = time.perf_counter()
        both = full.valid & fast.valid
        e = [nme(fast.landmarks[i], full.landmarks[i]) for i in np.flatnonzero(both)]
        per_video[name] = dict(frames=len(full.valid), tracked_fraction=round(float(fast.tracked.mean()), 3),
                               nme_mean=round(float(np.mean(e)), 4), nme_max=round(float(np.max(e)), 4),
                               speedup=round((t1 - t0) / (t2 - t1), 2))
        t_full, t_track, n_total = t_full + t1 - t0, t_track + t2 - t1, n_total + len(full.valid)
        errs += e
        tracked += fast.tracked.tolist()
    return dict(every=every, detect_every=detect_every, frames=n_total,
                fps_detect_every_frame=round(n_total / t_full, 1), fps_tracking=round(n_total / t_track, 1),
                speedup=round(t_full / t_track, 2), tracked_fraction=round(float(np.mean(tracked)), 3),
                nme_vs_every_frame_mean=round(float(np.mean(errs)), 4),
                nme_vs_every_frame_max=round(float(np.max(errs)), 4), per_video=per_video,
                note="decode time included in both; NME = mean landmark distance / inter-ocular distance")


def stability(names: list[str], n_frames: int) -> tuple[dict, dict]:
    from forge.data import crop
    from faces.landmarks import get_detector
    from core.media import read_video

    det = get_detector("dlib")

    def shake(boxes):
        side = boxes[:, 2] - boxes[:, 0]
        c = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, side[:, None]], axis=1)
        return float(np.abs(np.diff(c, n=2, axis=0)).mean() / side.mean() * 100)

    out, trace = {}, {}
    for name in names:
        lms = []
        for f in read_video(VIDEOS / name, max_frames=n_frames):
            faces = det.detect(f.image)
            if faces:
                lms.append(faces[0].landmarks)
        lms = np.stack(lms)
        raw, smooth = crop.track_boxes(lms, smooth=False), crop.track_boxes(lms, smooth=True)
        out[name] = dict(frames=len(lms), shake_per_frame_pct=round(shake(raw), 3),
                         shake_tracked_pct=round(shake(smooth), 3),
                         reduction=round(shake(raw) / max(shake(smooth), 1e-9), 1))
        trace[name] = ((raw[:, 0] + raw[:, 2]) / 2, (smooth[:, 0] + smooth[:, 2]) / 2)
    return out, trace


def end_to_end(resolution: int, every: int, max_frames: int, detect_every: int = 1) -> dict:
    from forge.data.cache import PreparedCache, encode_image
    from forge.data.prepare import PrepareConfig, prepare

    tmp = Path(tempfile.mkdtemp(prefix="bench_prepare_", dir=ROOT / "out" if (ROOT / "out").is_dir() else None))
    try:
        cfg = PrepareConfig(resolution=resolution, backend="auto", every=every, max_frames=max_frames,
                            detect_every=detect_every)
        t0 = time.perf_counter()
        report = prepare([VIDEOS], tmp / "cache", cfg, progress=False)
        dt = time.perf_counter() - t0
        cache = PreparedCache(tmp / "cache")
        vid = cache.video_ids()[0]
        frames, _ = cache.load(vid)
        per_format = {"jpeg_q95": float(np.mean([len(encode_image(f, "jpeg", 95)) for f in frames])),
                      "png": float(np.mean([len(encode_image(f, "png")) for f in frames])),
                      "uint8_npy": float(frames[0].nbytes)}
        return dict(resolution=resolution, every=every, max_frames=max_frames, detect_every=detect_every,
                    backend=report["backend"],
                    videos=report["n_inputs"], ok=report["n_ok"], frames=report["n_frames"],
                    seconds=round(dt, 1), frames_per_second=round(report["n_frames"] / dt, 1),
                    cache_mib=report["size_mib"], cache_bytes_per_frame=round(report["size_bytes"] / report["n_frames"]),
                    fits_carry_limit=report["size_mib"] < CARRY_LIMIT_MIB,
                    frames_that_fit_64mib=int(CARRY_LIMIT_MIB * 2**20 / (report["size_bytes"] / report["n_frames"])),
                    crop_bytes_per_frame={k: round(v) for k, v in per_format.items()})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def plot(result: dict, trace: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = result["backends"]
    t = result["tracking"]
    labels = ["dlib full-res\n(baseline)", "dlib downscaled\n(prepare)", "+ tracking\n(--detect-every 5)"]
    fps = [b["dlib_fullres"]["fps"], b["dlib"]["fps"], round(b["dlib"]["fps"] * t["speedup"], 1)]
    if isinstance(b.get("face-alignment"), dict) and "fps" in b["face-alignment"]:
        labels.append("face-alignment")
        fps.append(b["face-alignment"]["fps"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].bar(labels, fps, color=["#c66", "#4a4", "#6c6", "#46c"][:len(fps)])
    axes[0].set_ylabel("frames / s (1 process, landmarks only)")
    axes[0].set_title(f"landmark speed, {b['frame_size'][0]} px frames")
    name = next(iter(trace))
    raw, smooth = trace[name]
    axes[1].plot(raw, label="per-frame box (baseline)", color="#c66", lw=1)
    axes[1].plot(smooth, label="tracked + smoothed (prepare)", color="#4a4", lw=2)
    axes[1].set_xlabel("frame")
    axes[1].set_ylabel("crop centre x (px)")
    axes[1].set_title(f"crop stability, {name}")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from core.common import write_json_atomic

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=4, help="sample videos for the backend timing")
    ap.add_argument("--frames-per-video", type=int, default=12)
    ap.add_argument("--stability-frames", type=int, default=60)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--max-frames", type=int, default=120)
    args = ap.parse_args(argv)

    names = sorted(p.name for p in VIDEOS.glob("*.mp4"))
    t0 = time.perf_counter()
    result: dict = {"machine": dict(cpus=os.cpu_count(), load_average_1m=round(os.getloadavg()[0], 2),
                                    note="shared 2-core machine: absolute fps vary with other users' load")}
    result["backends"] = backends(names[: args.videos], args.frames_per_video)
    print("backends:", result["backends"], flush=True)
    result["tracking"] = tracking(names[:: max(1, len(names) // 5)][:5], args.stability_frames // 2)
    print("tracking:", {k: v for k, v in result["tracking"].items() if k != "per_video"}, flush=True)
    result["crop_stability"], trace = stability(["hdtf_wda_katiehill.mp4", "d3.mp4"], args.stability_frames)
    print("stability:", result["crop_stability"], flush=True)
    result["prepare_sample"] = end_to_end(args.resolution, args.every, args.max_frames)
    print("prepare:", result["prepare_sample"], flush=True)
    result["prepare_sample_detect_every_5"] = end_to_end(args.resolution, args.every, args.max_frames, detect_every=5)
    print("prepare --detect-every 5:", result["prepare_sample_detect_every_5"], flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / "prepare.json", result)
    plot(result, trace, RESULTS / "prepare.png")
    print(f"wrote {RESULTS / 'prepare.json'} and prepare.png in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
