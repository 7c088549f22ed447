"""Calibration of video scores on validation: Platt scaling (a temperature and a bias on the logit).

``fit_platt(labels, scores) -> {"method": "platt", "a": a, "b": b}``;
``apply_calibration(cal, scores) -> sigmoid(a * logit(score) + b)``. ``a = 1 / T`` is the inverse
temperature; the bias moves the 0.5 point to where validation puts it. ``None`` is the identity.
"""

from __future__ import annotations

import numpy as np

LOGIT_CLIP = 1e-6          # scores are clipped to [eps, 1 - eps] before the logit
MIN_SLOPE = 1e-3           # a calibration never inverts or flattens the ranking


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def fit_platt(labels, scores, l2: float = 1e-3, iters: int = 200) -> dict:
    """Fit ``a, b`` minimising the log loss of ``sigmoid(a * logit(s) + b)`` (Newton steps, small L2)."""
    y = np.asarray(labels, np.float64)
    z = logit(scores)
    if len(np.unique(y)) < 2:
        return {"method": "platt", "a": 1.0, "b": 0.0, "n": int(len(y))}
    a, b = 1.0, 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(a * z + b)))
        g = np.array([np.sum((p - y) * z) + l2 * a, np.sum(p - y)])
        w = p * (1.0 - p)
        h = np.array([[np.sum(w * z * z) + l2, np.sum(w * z)], [np.sum(w * z), np.sum(w) + 1e-9]])
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-9:
            break
    return {"method": "platt", "a": float(max(a, MIN_SLOPE)), "b": float(b), "n": int(len(y))}


def apply_calibration(cal: dict | None, scores) -> np.ndarray:
    """Calibrated P(fake) of raw scores (identity when ``cal`` is None)."""
    s = np.asarray(scores, np.float64)
    if not cal:
        return s
    return 1.0 / (1.0 + np.exp(-(cal["a"] * logit(s) + cal["b"])))
