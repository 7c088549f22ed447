"""Frequency-domain detector: azimuthally averaged power spectrum + a linear/kernel classifier.

Durall, Keuper, Keuper (2020), "Watch your up-convolution: CNN based generative deep neural
networks are failing to reproduce spectral distributions": up-sampling leaves its mark in the high
frequencies of the 1-D radial spectrum profile, which a simple classifier separates.
"""

from __future__ import annotations

import numpy as np

from detect.detectors.base import FeatureDetector, resize_frames
from detect.registry import register

SPECTRUM_EPS = 1e-8        # keeps log() finite on flat images
FLAT_STD = 1e-6           # an image this flat has no spectrum to speak of
SVM_CALIBRATION_FOLDS = 3  # folds for the SVM's sigmoid (Platt) calibration


def to_gray(frames: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3) uint8`` -> ``(N, H, W) float64`` luma in [0, 1] (BT.601 weights)."""
    return frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0


def azimuthal_average(power: np.ndarray) -> np.ndarray:
    """Mean of a centred 2-D spectrum ``(H, W)`` over rings of integer radius -> ``(min(H, W) // 2,)``."""
    h, w = power.shape
    yy, xx = np.indices((h, w))
    r = np.hypot(xx - w // 2, yy - h // 2).astype(np.int64)  # (H, W) ring of each bin
    n = min(h, w) // 2
    keep = r < n
    sums = np.bincount(r[keep], weights=power[keep], minlength=n)
    counts = np.bincount(r[keep], minlength=n)
    return sums / np.maximum(counts, 1)


def spectrum_profile(gray: np.ndarray) -> np.ndarray:
    """Durall's feature of one grey image ``(S, S)``: 1-D log power profile, min-max normalised ``(S//2,)``."""
    if gray.std() < FLAT_STD:
        return np.zeros(min(gray.shape) // 2)
    f = np.fft.fftshift(np.fft.fft2(gray - gray.mean()))
    profile = azimuthal_average(20.0 * np.log(np.abs(f) + SPECTRUM_EPS))
    lo, hi = profile.min(), profile.max()
    return (profile - lo) / (hi - lo) if hi > lo else np.zeros_like(profile)


class _SpectrumDetector(FeatureDetector):
    def features(self, frames, landmarks=None):
        gray = to_gray(resize_frames(frames, self.cfg.image_size))       # (N, S, S)
        feats = np.stack([spectrum_profile(g) for g in gray])           # (N, S//2)
        return feats, np.eye(len(frames), dtype=bool)                   # one row per frame


@register("frequency")
class FrequencyLogReg(_SpectrumDetector):
    """Durall et al. 2020 azimuthal power spectrum + logistic regression (per frame)."""

    def make_classifier(self, n_rows):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        c = float(self.cfg.extra.get("C", 1.0))
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))


@register("frequency_svm")
class FrequencySVM(_SpectrumDetector):
    """Durall et al. 2020 azimuthal power spectrum + RBF SVM with Platt-scaled probabilities."""

    def make_classifier(self, n_rows):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        c = float(self.cfg.extra.get("C", 1.0))
        # Platt scaling fitted on held-out folds, then one SVM on all rows (ensemble=False)
        svm = CalibratedClassifierCV(SVC(C=c, kernel="rbf"), method="sigmoid", cv=SVM_CALIBRATION_FOLDS, ensemble=False)
        return make_pipeline(StandardScaler(), svm)
