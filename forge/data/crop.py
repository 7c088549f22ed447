"""Square head crops around landmarks, tracked stably over a clip.

A frame's square is the landmarks' bounding box, centred, grown by ``margin`` of its long side on
each side and moved up by ``HEAD_LIFT`` (landmarks stop at the brows; the head does not). Over a
clip the centre and size are smoothed in time (running median to drop outliers, then a Gaussian),
so the crop follows the head without per-frame jitter. Frames without a face get values
interpolated from their neighbours.
"""

from __future__ import annotations

import numpy as np

from core.common import FaceforgeError

DEFAULT_MARGIN = 0.40      # extra side of the square on each side, as a fraction of the landmark box
HEAD_LIFT = 0.15           # move the centre up by this fraction of the landmark box height (forehead)
CENTER_MEDIAN = 5          # frames; running median window on the box centre
CENTER_SIGMA = 2.0         # frames; Gaussian smoothing of the box centre
SIZE_MEDIAN = 9            # frames; the size changes slower than the position
SIZE_SIGMA = 4.0


def square_from_landmarks(landmarks: np.ndarray, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """``(..., 68, 2)`` -> ``(..., 3)`` = centre x, centre y, side of the head square."""
    lo, hi = landmarks.min(axis=-2), landmarks.max(axis=-2)      # (..., 2)
    wh = hi - lo
    side = wh.max(axis=-1) * (1.0 + 2.0 * margin)                # (...,)
    cx = (lo[..., 0] + hi[..., 0]) / 2.0
    cy = (lo[..., 1] + hi[..., 1]) / 2.0 - HEAD_LIFT * wh[..., 1]
    return np.stack([cx, cy, side], axis=-1).astype(np.float64)


def interpolate_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill rows ``values[~valid]`` (N, ...) linearly from valid neighbours in time (nearest at the ends)."""
    valid = np.asarray(valid, dtype=bool)
    if valid.all():
        return values.copy()
    if not valid.any():
        raise FaceforgeError("cannot interpolate: no valid frame")
    n = len(values)
    flat = values.reshape(n, -1).astype(np.float64)               # (N, D)
    t, tv = np.arange(n), np.flatnonzero(valid)
    out = np.stack([np.interp(t, tv, flat[tv, d]) for d in range(flat.shape[1])], axis=1)
    return out.reshape(values.shape).astype(values.dtype)


def running_median(x: np.ndarray, window: int) -> np.ndarray:
    """Centred running median along axis 0 of ``(N, ...)`` with edge padding (window forced odd)."""
    n = len(x)
    if n < 3 or window < 3:
        return x.copy()
    half = min(window // 2, (n - 1) // 2)
    padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)])
    windows = np.stack([padded[i:i + n] for i in range(2 * half + 1)])  # (W, N, ...)
    return np.median(windows, axis=0)


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 of ``(N, ...)`` with edge padding."""
    n = len(x)
    if n < 2 or sigma <= 0:
        return x.copy()
    half = max(1, int(round(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)])
    return sum(w * padded[i:i + n] for i, w in enumerate(k))


def smooth_landmarks(landmarks: np.ndarray, sigma: float = 0.8) -> np.ndarray:
    """Light temporal smoothing of ``(N, 68, 2)`` landmarks (dlib jitter), keeping mouth motion."""
    return gaussian_smooth(landmarks.astype(np.float64), sigma).astype(np.float32)


def track_boxes(landmarks: np.ndarray, valid: np.ndarray | None = None, margin: float = DEFAULT_MARGIN,
                smooth: bool = True) -> np.ndarray:
    """Stable square crops ``(N, 4)`` x0, y0, x1, y1 (integer-valued floats) for ``(N, 68, 2)`` landmarks."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise FaceforgeError(f"track_boxes wants landmarks (N, 68, 2), got {landmarks.shape}")
    valid = np.ones(len(landmarks), bool) if valid is None else np.asarray(valid, bool)
    squares = interpolate_invalid(square_from_landmarks(landmarks, margin), valid)  # (N, 3)
    if smooth:
        centre = gaussian_smooth(running_median(squares[:, :2], CENTER_MEDIAN), CENTER_SIGMA)
        side = gaussian_smooth(running_median(squares[:, 2:], SIZE_MEDIAN), SIZE_SIGMA)
        squares = np.concatenate([centre, side], axis=1)
    side = np.maximum(np.round(squares[:, 2]), 2.0)
    x0 = np.round(squares[:, 0] - side / 2.0)
    y0 = np.round(squares[:, 1] - side / 2.0)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1).astype(np.float32)


def crop_square(image: np.ndarray, box: np.ndarray, resolution: int) -> np.ndarray:
    """Cut ``box`` (x0, y0, x1, y1; may leave the image, padded black) out of ``(H, W, 3)`` and
    resize it to ``(resolution, resolution, 3)`` (area filter when shrinking)."""
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise FaceforgeError(f"empty crop box {box}")
    patch = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)                  # (side, side, 3)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if patch.shape[0] > resolution else cv2.INTER_CUBIC
    return cv2.resize(patch, (resolution, resolution), interpolation=interp)   # (S, S, 3)


def to_crop_coords(landmarks: np.ndarray, boxes: np.ndarray, resolution: int) -> np.ndarray:
    """Source-pixel landmarks ``(N, 68, 2)`` -> pixel coords of the ``(S, S)`` crops ``boxes (N, 4)``."""
    boxes = np.asarray(boxes, dtype=np.float64)
    origin = boxes[:, None, :2]                                                # (N, 1, 2)
    scale = resolution / (boxes[:, 2] - boxes[:, 0])                           # (N,)
    return ((landmarks - origin) * scale[:, None, None]).astype(np.float32)
