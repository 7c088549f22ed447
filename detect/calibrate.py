"""Calibration of video scores on validation: Platt scaling (a temperature and a bias on the logit).

``fit_platt(labels, scores) -> {"method": "platt", "a": a, "b": b}``;
``apply_calibration(cal, scores) -> sigmoid(a * logit(score) + b)`` (a scikit-learn logistic fit on
the logit). ``a = 1 / T`` is the inverse
temperature; the bias moves the 0.5 point to where validation puts it. ``None`` is the identity.
"""

from __future__ import annotations

import numpy as np

LOGIT_CLIP = 1e-6          # scores are clipped to [eps, 1 - eps] before the logit
MIN_SLOPE = 1e-3           # a calibration never inverts or flattens the ranking


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def fit_platt(labels, scores, c: float = 100.0) -> dict:
    """Fit ``a, b`` minimising the log loss of ``sigmoid(a * logit(s) + b)`` (weak L2, ``C = c``)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, np.int64)
    z = logit(scores)[:, None]                                     # (N, 1)
    if len(np.unique(y)) < 2:
        return {"method": "platt", "a": 1.0, "b": 0.0, "n": int(len(y))}
    lr = LogisticRegression(C=c, max_iter=1000).fit(z, y)
    return {"method": "platt", "a": float(max(lr.coef_[0, 0], MIN_SLOPE)), "b": float(lr.intercept_[0]),
            "n": int(len(y))}


def apply_calibration(cal: dict | None, scores) -> np.ndarray:
    """Calibrated P(fake) of raw scores (identity when ``cal`` is None)."""
    s = np.asarray(scores, np.float64)
    if not cal:
        return s
    return 1.0 / (1.0 + np.exp(-(cal["a"] * logit(s) + cal["b"])))
