"""Perturbations of decoded clips for robustness studies: ``perturb(kind, level)`` -> a function
``(N, S, S, 3) uint8 -> (N, S, S, 3) uint8``, or ``None`` for the unperturbed level."""

from __future__ import annotations

from pathlib import Path

import numpy as np

KINDS = ("jpeg_quality", "downscale", "blur_sigma", "noise_sigma", "h264_crf")
NOISE_SEED = 0


def perturb(kind: str, level):
    import cv2

    if kind not in KINDS:
        raise ValueError(f"unknown perturbation {kind!r}; choose from {', '.join(KINDS)}")
    if level is None or (kind == "downscale" and level == 1.0) or (kind in ("blur_sigma", "noise_sigma") and level == 0):
        return None

    def jpeg(frames):
        out = []
        for f in frames:
            ok, buf = cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(level)])
            out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        return np.stack(out)

    def downscale(frames):
        s = frames.shape[1]
        small = max(4, int(round(s * level)))
        return np.stack([cv2.resize(cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA), (s, s),
                                    interpolation=cv2.INTER_LINEAR) for f in frames])

    def blur(frames):
        return np.stack([cv2.GaussianBlur(f, (0, 0), sigmaX=float(level)) for f in frames])

    def noise(frames):
        rng = np.random.default_rng(NOISE_SEED)
        return np.clip(frames + rng.normal(0, level, frames.shape), 0, 255).round().astype(np.uint8)

    def h264(frames):
        import tempfile

        from core.media import read_frames, write_video

        with tempfile.TemporaryDirectory() as d:
            p = write_video(Path(d) / "x.mp4", frames, 25.0, crf=int(level))
            back = read_frames(p)
        return back[:, :frames.shape[1], :frames.shape[2]]

    return {"jpeg_quality": jpeg, "downscale": downscale, "blur_sigma": blur, "noise_sigma": noise,
            "h264_crf": h264}[kind]
