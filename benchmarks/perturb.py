"""Perturbations of decoded clips for robustness studies: ``perturb(kind, level)`` -> a function
``(N, S, S, 3) uint8 -> (N, S, S, 3) uint8``, or ``None`` for the unperturbed level."""

from __future__ import annotations

import numpy as np

KINDS = ("jpeg_quality", "downscale", "blur_sigma", "noise_sigma", "h264_crf")
NOISE_SEED = 0


def perturb(kind: str, level):
    import cv2

    from detect.detectors.base import down_up
    from detect.sbi import jpeg as sbi_jpeg

    if kind not in KINDS:
        raise ValueError(f"unknown perturbation {kind!r}; choose from {', '.join(KINDS)}")
    if level is None or (kind == "downscale" and level == 1.0) or (kind in ("blur_sigma", "noise_sigma") and level == 0):
        return None

    def jpeg(frames):
        return sbi_jpeg(frames, int(level))

    def downscale(frames):
        return down_up(frames, level, min_side=4)

    def blur(frames):
        return np.stack([cv2.GaussianBlur(f, (0, 0), sigmaX=float(level)) for f in frames])

    def noise(frames):
        rng = np.random.default_rng(NOISE_SEED)
        return np.clip(frames + rng.normal(0, level, frames.shape), 0, 255).round().astype(np.uint8)

    def h264(frames):
        from core.media import h264_round_trip

        return h264_round_trip(frames, int(level), 25.0)

    return {"jpeg_quality": jpeg, "downscale": downscale, "blur_sigma": blur, "noise_sigma": noise,
            "h264_crf": h264}[kind]
