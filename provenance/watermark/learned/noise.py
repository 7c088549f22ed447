"""The noise layer the learned watermark is trained through: the benchmark's attacks, on luma batches.

Every attack maps marked luma (B, 1, H, W) in 0..255 (float) to what the decoder is given. The real
codecs (JPEG via OpenCV, H.264 CRF via PyAV/libx264, uint8 rounding) run in the forward pass with a
straight-through gradient (``x + (codec(x) - x).detach()``); the geometric and photometric attacks
are differentiable. ``resize_0.5`` returns the 2x2-area downscale already brought back by the decoder's
2x scale hypothesis (bicubic), as :func:`provenance.watermark.learned.codec.decode` reads it; ``crop``
keeps a random 60-95 % window of each side at a random offset, not resized (the fold absorbs the offset).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

ATTACKS = ("none", "jpeg", "resize_0.5", "crop", "brightness", "contrast", "blur", "noise", "h264",
           "jpeg+resize", "crop+jpeg", "crop+h264")


def straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The value of ``y``, the gradient of ``x``."""
    return x + (y - x).detach()


def quantize(x: torch.Tensor) -> torch.Tensor:
    """uint8 rounding and clipping, straight-through: (B, 1, H, W) -> same."""
    return straight_through(x, x.detach().clamp(0, 255).round())


def _per_image(x: torch.Tensor, fn) -> torch.Tensor:
    """Apply a numpy (H, W) float -> (H, W) float codec to every image of (B, 1, H, W), straight-through."""
    planes = x.detach().clamp(0, 255).round().cpu().numpy()[:, 0]     # (B, H, W)
    out = np.stack([fn(p) for p in planes])[:, None]                  # (B, 1, H, W)
    return straight_through(x, torch.from_numpy(out.astype(np.float32)).to(x))


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    from ..embedding import jpeg_luma

    return _per_image(x, lambda p: jpeg_luma(p, quality))


def h264(x: torch.Tensor, crf: int) -> torch.Tensor:
    """Each image as a 2-frame clip through libx264 (yuv420p, ``crf``), the decoded frames averaged."""
    from ..embedding import h264_luma

    return _per_image(x, lambda p: h264_luma(np.stack([p, p]), crf))


def resize_half(x: torch.Tensor) -> torch.Tensor:
    """0.5x (area) then the decoder's 2x hypothesis (bicubic): (B, 1, H, W) -> (B, 1, 2*(H//2), 2*(W//2))."""
    small = quantize(F.avg_pool2d(x, 2))
    return F.interpolate(small, scale_factor=2, mode="bicubic", align_corners=False)


def crop(x: torch.Tensor, rng: np.random.Generator, lo: float = 0.6, hi: float = 0.95) -> torch.Tensor:
    """A random window (same size for the batch, its own offset per image): (B, 1, h, w)."""
    _, _, H, W = x.shape
    h, w = int(H * rng.uniform(lo, hi)), int(W * rng.uniform(lo, hi))
    outs = []
    for img in x:
        t, l = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        outs.append(img[:, t:t + h, l:l + w])
    return torch.stack(outs)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from .model import highpass

    return x - highpass(x, sigma)


def gain(x: torch.Tensor, f: float, contrast: bool = False) -> torch.Tensor:
    mean = x.mean((2, 3), keepdim=True)
    return ((x - mean) * f + mean if contrast else x * f).clamp(0, 255)


def attack(x: torch.Tensor, name: str, rng: np.random.Generator) -> torch.Tensor:
    """Marked luma (B, 1, H, W) -> attacked luma (sizes may change) for one of :data:`ATTACKS`."""
    x = quantize(x)
    if name == "none":
        return x
    if name == "jpeg":
        return jpeg(x, int(rng.integers(40, 76)))
    if name == "resize_0.5":
        return resize_half(x)
    if name == "crop":
        return crop(x, rng)
    if name == "brightness":
        return quantize(gain(x, float(rng.uniform(0.7, 1.3))))
    if name == "contrast":
        return quantize(gain(x, float(rng.uniform(0.7, 1.3)), contrast=True))
    if name == "blur":
        return blur(x, float(rng.uniform(0.5, 1.2)))
    if name == "noise":
        return quantize(x + torch.randn_like(x) * float(rng.uniform(1.0, 4.0)))
    if name == "h264":
        return h264(x, int(rng.integers(24, 33)))
    if name == "jpeg+resize":
        return resize_half(jpeg(x, int(rng.integers(40, 76))))
    if name == "crop+jpeg":
        return jpeg(crop(x, rng), int(rng.integers(40, 76)))
    if name == "crop+h264":
        c = crop(x, rng)
        return h264(c[..., :c.shape[-2] // 2 * 2, :c.shape[-1] // 2 * 2], int(rng.integers(24, 33)))
    raise ValueError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
