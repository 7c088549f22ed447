"""Blend-consistency statistics: does the face agree with its own surroundings?

Every face-swap, re-enactment paste-back and lip-sync pipeline puts generated pixels inside a face
region and camera pixels outside it; SBI (:mod:`detect.sbi`) imitates exactly that. Per frame, from
the crop and its 68 landmarks, we compare regions: the inner face, a ring across the face boundary,
the surroundings just outside it, the mouth region and the eye region. Each comparison is a log
ratio (or a difference) of

- sharpness (Laplacian energy) and fine noise (residual after a 3x3 median),
- 8x8 block-grid energy (a JPEG history that pasted pixels do not share),
- mean colour (YCrCb chroma) and brightness,
- gradient energy along the boundary ring relative to both sides (a seam).

Features -> histogram gradient boosting, one row per frame. Needs landmarks (NaN rows otherwise).
"""

from __future__ import annotations

import numpy as np

from detect.detectors.base import FeatureDetector
from detect.registry import register

EPS = 1e-6
RING = 0.06                   # half-width of the boundary ring, share of the face size
OUTSIDE = 0.16                # width of the surroundings band, share of the face size
MOUTH = list(range(48, 68))
EYES = list(range(36, 48))
N_FEATURES = 22


def _masks(shape: tuple[int, int], lm: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean region masks of one crop: inner, ring, outside, mouth, eyes."""
    import cv2

    from detect.sbi import face_size, hull_mask, hull_points

    size = face_size(lm)
    face = hull_mask(shape, hull_points(lm, "face", 0.2)).astype(np.uint8)
    r = max(1, int(round(RING * size)))
    o = max(2, int(round(OUTSIDE * size)))
    k = lambda n: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * n + 1, 2 * n + 1))  # noqa: E731
    inner = cv2.erode(face, k(r))
    outer = cv2.dilate(face, k(r))
    far = cv2.dilate(face, k(r + o))
    mouth = cv2.dilate(hull_mask(shape, lm[MOUTH]).astype(np.uint8), k(r))
    eyes = cv2.dilate(hull_mask(shape, lm[EYES]).astype(np.uint8), k(r))
    return {"inner": inner > 0, "ring": (outer > 0) & (inner == 0), "outside": (far > 0) & (outer == 0),
            "mouth": mouth > 0, "eyes": eyes > 0}


def _maps(frame: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel maps of one crop ``(S, S, 3) uint8``: luma, chroma, sharpness, noise, grid, gradient."""
    import cv2

    ycc = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb).astype(np.float32)     # (S, S, 3)
    y = ycc[..., 0]
    lap = np.abs(cv2.Laplacian(y, cv2.CV_32F, ksize=3))
    noise = np.abs(y - cv2.medianBlur(ycc[..., 0].astype(np.uint8), 3).astype(np.float32))
    gx, gy = cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1)
    # 8x8 block grid: luma steps across block borders minus steps inside blocks
    dx = np.abs(np.diff(y, axis=1))                                        # (S, S-1)
    grid = np.zeros_like(y)
    cols = np.arange(dx.shape[1])
    grid[:, :-1] = np.where((cols % 8) == 7, dx, -dx / 7.0)
    return {"y": y, "cr": ycc[..., 1], "cb": ycc[..., 2], "lap": lap, "noise": noise,
            "grad": np.hypot(gx, gy), "grid": grid}


def frame_features(frame: np.ndarray, lm: np.ndarray | None) -> np.ndarray:
    """``(S, S, 3) uint8`` + ``(68, 2)`` -> ``(N_FEATURES,)`` (NaN without usable landmarks)."""
    out = np.full(N_FEATURES, np.nan)
    if lm is None or not np.all(np.isfinite(lm)):
        return out
    m = _masks(frame.shape[:2], lm)
    if min(int(v.sum()) for v in m.values()) < 4:
        return out
    mp = _maps(frame)

    def mean(name, region):
        return float(mp[name][m[region]].mean())

    def lr(name, a, b):
        return np.log((mean(name, a) + EPS) / (mean(name, b) + EPS))

    feats = []
    for name in ("lap", "noise", "grad"):
        feats += [lr(name, "inner", "outside"), lr(name, "mouth", "eyes"), lr(name, "ring", "inner"),
                  lr(name, "ring", "outside"), np.log(mean(name, "inner") + EPS)]
    feats += [mean("grid", "inner") - mean("grid", "outside"), mean("grid", "mouth") - mean("grid", "eyes")]
    for name in ("cr", "cb", "y"):
        feats.append((mean(name, "inner") - mean(name, "outside")) / 255.0)
    feats.append(float(np.std(mp["y"][m["inner"]]) / (np.std(mp["y"][m["outside"]]) + EPS)))
    feats.append(np.log(mean("lap", "mouth") + EPS) - np.log(mean("noise", "mouth") + EPS))
    out[:] = feats
    return out


@register("blend_stats")
class BlendStats(FeatureDetector):
    """Blend-consistency statistics (face vs surroundings, mouth vs eyes, boundary seam) -> boosting."""

    needs_landmarks = True

    def features(self, frames, landmarks=None):
        rows = [frame_features(f, None if landmarks is None else landmarks[i]) for i, f in enumerate(frames)]
        return np.stack(rows), np.eye(len(frames), dtype=bool)           # (N, D), (N, N)

    def make_classifier(self, n_rows):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=int(self.cfg.extra.get("max_iter", 300)), learning_rate=0.1, max_depth=4,
            min_samples_leaf=min(20, max(2, n_rows // 20)), l2_regularization=1.0, random_state=self.cfg.seed)
