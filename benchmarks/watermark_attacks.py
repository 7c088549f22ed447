"""The image side of ``benchmarks/watermark.py``: centre squares and the attacks every method is measured
after (JPEG, resize, crop, brightness/contrast gain), and the PSNR of a marked image."""

from __future__ import annotations

import io
import math

import numpy as np


def square(img: np.ndarray, size: int) -> np.ndarray:
    """The centre square at ``size`` px (:func:`core.media.centre_square`)."""
    from core.media import centre_square

    return centre_square(img, size)


def jpeg(x: np.ndarray, q: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=q)
    return np.array(Image.open(buf).convert("RGB"))


def resize(x: np.ndarray, f: float) -> np.ndarray:
    import cv2

    return cv2.resize(x, (max(1, round(x.shape[1] * f)), max(1, round(x.shape[0] * f))),
                      interpolation=cv2.INTER_AREA)


def crop(x: np.ndarray, area: float) -> np.ndarray:
    h, w, _ = x.shape
    s = math.sqrt(area)
    top, left = int(h * 0.07), int(w * 0.11)
    return x[top:top + int(h * s), left:left + int(w * s)]


def gain(x: np.ndarray, f: float, contrast: bool = False) -> np.ndarray:
    x = x.astype(np.float64)
    x = (x - x.mean()) * f + x.mean() if contrast else x * f
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


ATTACKS = {  # name -> (attack, changes the size)
    "none": (lambda x: x, False),
    "jpeg_q50": (lambda x: jpeg(x, 50), False),
    "resize_0.5": (lambda x: resize(x, 0.5), True),
    "crop_70pct_area": (lambda x: crop(x, 0.7), True),
    "brightness_+20": (lambda x: gain(x, 1.2), False),
    "brightness_-20": (lambda x: gain(x, 0.8), False),
    "contrast_+20": (lambda x: gain(x, 1.2, True), False),
    "contrast_-20": (lambda x: gain(x, 0.8, True), False),
    "jpeg_q50+resize_0.5": (lambda x: resize(jpeg(x, 50), 0.5), True),
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * math.log10(255.0 ** 2 / max(mse, 1e-12)))
