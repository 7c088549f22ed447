"""Temporal detector: what a landmark-driven generator gets wrong over time.

Per clip window of ``cfg.window`` frames (stride half a window):
- landmark dynamics (from the item's landmarks, normalised by the inter-ocular distance): per facial
  region, speed, acceleration and jitter (residual after a 3-frame moving average) statistics, and
  the stability of the face scale;
- texture dynamics (from the pixels): frame-difference energy statistics, flicker of the fine
  (Laplacian) detail, inner-face vs border motion, and the high-frequency share of the temporal
  spectrum;
- spatial detail (``cfg.extra["spatial"]``, off by default so runs saved before it load unchanged): the
  fine (Laplacian) detail of the inner face and of the border at a fixed size, their ratio, and how
  much the inner detail varies over the window (a generator's faces are smoother than the camera's,
  and the blend with the border shows);
- motion-compensated residuals (``cfg.extra["motion"]``: ``true`` for all, an int k for the first k; off
  by default): :mod:`detect.detectors.motion`, appended after the spatial ones.
Features -> histogram gradient boosting (missing landmark features are NaN, which it handles; its settings
:data:`HGB_DEFAULTS`, each overridable in ``cfg.extra``).
Training augmentation (``cfg.extra["augment_crf"]``, a list of H.264 CRFs; none by default): every
uncompressed training item (``meta["compression"]`` "raw", or no compression recorded) is also
re-encoded at each CRF and added, so the booster sees compression levels between and beyond the
corpus's own (c23, c40). With ``cfg.extra["augment_scale"]`` (a list of factors in (0, 1); none by
default) every uncompressed training item of either class is also resampled down by each factor and back
up to its own size (area down, bilinear up) and added as another uncompressed item, before the CRF
augmentation (which re-encodes these too), so soft, low-resolution footage is seen as real as often as fake.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from detect.detectors.base import FeatureDetector, augmented_items, resize_frames
from detect.detectors.frequency import to_gray
from detect.detectors.motion import N_MOTION_FEATURES, motion_features
from detect.registry import register

REGIONS = {"jaw": slice(0, 17), "brows": slice(17, 27), "nose": slice(27, 36), "eyes": slice(36, 48),
           "mouth": slice(48, 68)}
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)
MIN_IOD = 1e-3               # inter-ocular distance floor (degenerate landmarks)
TEXTURE_SIZE = 32            # frames are resized to this before texture statistics (resolution-agnostic)
INNER_FRACTION = 0.5         # central square (this share of the side) counted as "inner face"
N_LANDMARK_FEATURES = len(REGIONS) * 5 + 2
N_TEXTURE_FEATURES = 8
SPATIAL_SIZE = 128           # frames are resized to this before spatial detail statistics
N_SPATIAL_FEATURES = 4
EPS = 1e-8


HGB_DEFAULTS = {"max_iter": 150, "learning_rate": 0.1, "max_depth": 3, "min_samples_leaf": 20, "l2_regularization": 1.0}


def hgb_params(extra: dict, n_rows: int) -> dict:
    """The booster's settings: :data:`HGB_DEFAULTS`, each overridable by the same key in ``cfg.extra``
    (``max_depth: null`` for unlimited depth); ``min_samples_leaf`` is capped at a twentieth of the rows."""
    p = {k: extra.get(k, v) for k, v in HGB_DEFAULTS.items()}
    p["max_iter"], p["learning_rate"] = int(p["max_iter"]), float(p["learning_rate"])
    p["l2_regularization"] = float(p["l2_regularization"])
    p["max_depth"] = None if p["max_depth"] is None else int(p["max_depth"])
    p["min_samples_leaf"] = min(int(p["min_samples_leaf"]), max(2, n_rows // 20))
    return p


def motion_count(extra: dict) -> int:
    """How many motion features ``extra["motion"]`` asks for: all with ``true``, none with ``false`` / absent,
    else the first ``k`` (an int: the leading features a run was selected with)."""
    m = extra.get("motion", False)
    return N_MOTION_FEATURES if m is True else int(m or 0)


def window_starts(n: int, window: int) -> list[int]:
    """Window starts with stride window//2 covering all ``n`` frames (one short window if n < window)."""
    if n <= window:
        return [0]
    stride = max(1, window // 2)
    starts = list(range(0, n - window + 1, stride))
    if starts[-1] + window < n:
        starts.append(n - window)
    return starts


def window_members(n: int, window: int) -> np.ndarray:
    """Which of ``n`` frames each window of :func:`window_starts` covers -> ``(K, n) bool``."""
    starts = window_starts(n, window)
    members = np.zeros((len(starts), n), dtype=bool)
    for k, s0 in enumerate(starts):
        members[k, s0:min(s0 + window, n)] = True
    return members


def landmark_features(lm: np.ndarray | None) -> np.ndarray:
    """``(W, 68, 2)`` -> ``(N_LANDMARK_FEATURES,)``; NaN when landmarks are missing or W < 3."""
    out = np.full(N_LANDMARK_FEATURES, np.nan)
    if lm is None or len(lm) < 3 or not np.all(np.isfinite(lm)):
        return out
    iod = np.linalg.norm(lm[:, LEFT_EYE].mean(1) - lm[:, RIGHT_EYE].mean(1), axis=-1)  # (W,)
    lm = lm / max(float(iod.mean()), MIN_IOD)
    speed = np.linalg.norm(np.diff(lm, axis=0), axis=-1)          # (W-1, 68)
    acc = np.linalg.norm(np.diff(lm, n=2, axis=0), axis=-1)       # (W-2, 68)
    smooth = (lm[:-2] + lm[1:-1] + lm[2:]) / 3.0                  # (W-2, 68, 2)
    jitter = np.linalg.norm(lm[1:-1] - smooth, axis=-1)           # (W-2, 68)
    feats = []
    for sl in REGIONS.values():
        feats += [speed[:, sl].mean(), speed[:, sl].std(), acc[:, sl].mean(), acc[:, sl].max(), jitter[:, sl].mean()]
    feats += [iod.std() / max(float(iod.mean()), MIN_IOD),        # face-scale stability
              float(np.mean(acc) / (np.mean(speed) + EPS))]        # how jerky the motion is
    out[:] = feats
    return out


def _laplacian(gray: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian of ``(W, S, S)`` (edges replicated)."""
    p = np.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="edge")
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:] - 4 * gray


def texture_features(frames: np.ndarray) -> np.ndarray:
    """``(W, S, S, 3) uint8`` -> ``(N_TEXTURE_FEATURES,)``; NaN when W < 3."""
    out = np.full(N_TEXTURE_FEATURES, np.nan)
    if len(frames) < 3:
        return out
    g = to_gray(resize_frames(frames, TEXTURE_SIZE))              # (W, s, s)
    d = np.abs(np.diff(g, axis=0))                                # (W-1, s, s)
    e = d.mean(axis=(1, 2))                                       # (W-1,) difference energy per step
    s = g.shape[1]
    a, b = int(s * (1 - INNER_FRACTION) / 2), int(s * (1 + INNER_FRACTION) / 2)
    inner = d[:, a:b, a:b].mean()
    border = (d.sum() - d[:, a:b, a:b].sum()) / max(d[0].size - (b - a) ** 2, 1) / len(d)
    lap = _laplacian(g)                                           # (W, s, s) fine detail
    detail_flicker = np.abs(np.diff(lap, axis=0)).mean() / (np.abs(lap).mean() + EPS)
    spec = np.abs(np.fft.rfft(g - g.mean(0), axis=0)) ** 2        # (W//2+1, s, s) temporal spectrum
    band = spec.mean(axis=(1, 2))[1:]                             # drop DC
    high_share = band[len(band) // 2:].sum() / (band.sum() + EPS)
    out[:] = [e.mean(), e.std(), e.max() / (e.mean() + EPS), np.abs(np.diff(e)).mean() / (e.mean() + EPS),
              inner / (border + EPS), detail_flicker, high_share, np.log(e.mean() + EPS)]
    return out


def spatial_features(frames: np.ndarray) -> np.ndarray:
    """``(W, S, S, 3) uint8`` -> ``(N_SPATIAL_FEATURES,)``: log inner and border detail (mean |Laplacian|
    at ``SPATIAL_SIZE``), inner / border detail, and the inner detail's coefficient of variation over W."""
    lap = np.abs(_laplacian(to_gray(resize_frames(frames, SPATIAL_SIZE))))   # (W, s, s)
    s = lap.shape[1]
    a, b = int(s * (1 - INNER_FRACTION) / 2), int(s * (1 + INNER_FRACTION) / 2)
    inner = lap[:, a:b, a:b].mean(axis=(1, 2))                                # (W,)
    border = (lap.sum(axis=(1, 2)) - lap[:, a:b, a:b].sum(axis=(1, 2))) / max(s * s - (b - a) ** 2, 1)
    return np.array([np.log(inner.mean() + EPS), np.log(border.mean() + EPS),
                     inner.mean() / (border.mean() + EPS), inner.std() / (inner.mean() + EPS)])


@register("temporal")
class TemporalBoosting(FeatureDetector):
    """Landmark + texture dynamics (+ spatial detail with ``extra.spatial``) over clip windows ->
    histogram gradient boosting."""

    needs_landmarks = True

    @property
    def spatial(self) -> bool:
        return bool(self.cfg.extra.get("spatial", False))

    def features(self, frames, landmarks=None):
        n, w = len(frames), self.cfg.window
        n_motion = motion_count(self.cfg.extra)
        feats = []
        for s0 in window_starts(n, w):
            sl = slice(s0, min(s0 + w, n))
            lm = None if landmarks is None else landmarks[sl]
            parts = [landmark_features(lm), texture_features(frames[sl])]
            if self.spatial:
                parts.append(spatial_features(frames[sl]))
            if n_motion:
                parts.append(motion_features(frames[sl])[:n_motion])
            feats.append(np.concatenate(parts))
        return np.stack(feats), window_members(n, w)               # (K, D), (K, N)

    def _dataset(self, items):
        """Training rows; with ``extra.augment_scale`` also those of the resampled uncompressed items, and
        with ``extra.augment_crf`` those of the re-encoded uncompressed items (resampled ones included)."""
        return super()._dataset(chain(items, augmented_items(items, self.cfg.extra)))

    def make_classifier(self, n_rows):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(**hgb_params(self.cfg.extra, n_rows), random_state=self.cfg.seed)


@register("temporal_texture")
class TemporalTextureBoosting(TemporalBoosting):
    """Texture dynamics only (no landmarks) over clip windows -> histogram gradient boosting.

    A control for ``temporal``: corpus landmarks of fakes are the generator's *target* landmarks
    while scoring re-detects them on the video, so a gap between the two flags a landmark shortcut."""

    needs_landmarks = False

    def features(self, frames, landmarks=None):
        feats, members = super().features(frames, None)
        return feats[:, N_LANDMARK_FEATURES:], members             # (K, N_TEXTURE_FEATURES [+ N_SPATIAL]), (K, N)
