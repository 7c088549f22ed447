"""Motion-compensated residual statistics of a clip window: what is left of a frame after the previous one
is warped onto it by dense optical flow.

A camera films one surface that moves: once the motion is undone, consecutive frames differ by noise and
coding error. A generator that renders every frame anew re-synthesises the fine texture each time, so its
residual stays large *relative to the detail it has* — a ratio that does not depend on how sharp or how
compressed the source footage was, unlike the absolute detail levels of
:func:`detect.detectors.temporal.spatial_features`.

Per window of W frames (grey, resized to :data:`MOTION_SIZE`), for each consecutive pair: the backward
Farnebäck flow (OpenCV) warps frame t onto frame t+1, and r = frame(t+1) - warp(frame t). Features (logs of
ratios, so scale-free): inner-face residual over inner-face detail (mean |Laplacian|), inner over border
residual, the residual's fine share (|Laplacian of r| over |r|), inner motion (flow magnitude, in pixels of a
:data:`MOTION_SIZE` frame), and how much the inner residual varies over the pairs (coefficient of variation);
then the border's residual over its detail, the correlation of consecutive inner residuals (a redrawn texture
that flickers back and forth anti-correlates), and the roughness of the inner flow field (mean |Laplacian of
the flow| over its mean magnitude: a warp moves the face smoothly, muscles do not). NaN when W < 2 (the
correlation: W < 3).
"""

from __future__ import annotations

import numpy as np

MOTION_SIZE = 128                 # frames are resized to this side before the flow
INNER_FRACTION = 0.5              # central square (this share of the side) counted as "inner face"
N_MOTION_FEATURES = 8
EPS = 1e-6


def _laplacian_abs(img: np.ndarray) -> np.ndarray:
    """``(S, S) float32`` -> |4-neighbour Laplacian| ``(S, S)`` (OpenCV, borders reflected)."""
    import cv2

    return np.abs(cv2.Laplacian(img, cv2.CV_32F, ksize=1))


def _pair_stats(prev: np.ndarray, nxt: np.ndarray, a: int, b: int) -> tuple[np.ndarray, list[float]]:
    """Two ``(S, S) uint8`` frames -> (the inner residual ``(b-a, b-a)``, [inner residual, border residual,
    inner detail, residual fine detail, inner flow magnitude, border detail, inner flow roughness]), means of
    absolute values."""
    import cv2

    flow = cv2.calcOpticalFlowFarneback(nxt, prev, None, 0.5, 3, 9, 3, 5, 1.1, 0)     # (S, S, 2): nxt -> prev
    s = prev.shape[0]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    warped = cv2.remap(prev.astype(np.float32), xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    r = nxt.astype(np.float32) - warped                                             # (S, S)
    ar = np.abs(r)
    inner = ar[a:b, a:b].mean()
    border = (ar.sum() - ar[a:b, a:b].sum()) / max(ar.size - (b - a) ** 2, 1)
    lap = _laplacian_abs(nxt.astype(np.float32))
    detail = lap[a:b, a:b].mean()
    border_detail = (lap.sum() - lap[a:b, a:b].sum()) / max(lap.size - (b - a) ** 2, 1)
    fine = _laplacian_abs(r).mean() / (ar.mean() + EPS)
    mag = np.linalg.norm(flow[a:b, a:b], axis=-1).mean()
    rough = sum(_laplacian_abs(np.ascontiguousarray(flow[..., k]))[a:b, a:b].mean() for k in (0, 1))
    return r[a:b, a:b], [float(v) for v in (inner, border, detail, fine, mag, border_detail, rough)]


def motion_features(frames: np.ndarray) -> np.ndarray:
    """``(W, S, S, 3) uint8`` -> ``(N_MOTION_FEATURES,)`` (see the module docstring)."""
    import cv2

    from detect.detectors.base import resize_frames

    out = np.full(N_MOTION_FEATURES, np.nan)
    if len(frames) < 2:
        return out
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in resize_frames(frames, MOTION_SIZE)]
    a, b = int(MOTION_SIZE * (1 - INNER_FRACTION) / 2), int(MOTION_SIZE * (1 + INNER_FRACTION) / 2)
    pairs = [_pair_stats(p, n, a, b) for p, n in zip(grey[:-1], grey[1:])]
    res = [r.ravel() - r.mean() for r, _ in pairs]                                    # (W-1) x ((b-a)^2,)
    inner, border, detail, fine, mag, border_detail, rough = np.array([st for _, st in pairs]).T   # (W-1,) each
    corr = [float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v) + EPS)) for u, v in zip(res[:-1], res[1:])]
    out[:] = [np.log((inner.mean() + EPS) / (detail.mean() + EPS)), np.log((inner.mean() + EPS) / (border.mean() + EPS)),
              np.log(fine.mean() + EPS), np.log(mag.mean() + EPS), inner.std() / (inner.mean() + EPS),
              np.log((border.mean() + EPS) / (border_detail.mean() + EPS)),
              np.mean(corr) if corr else np.nan, np.log((rough.mean() + EPS) / (mag.mean() + EPS))]
    return out
