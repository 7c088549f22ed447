"""Landmark retargeting: the driver's motion and expression on the source face's proportions.

The paper feeds another person's landmarks to the generator as they are, so a source with a narrow face
driven by a wide-faced driver gets the driver's face shape (identity leaks from the driver). Here:

1. a driver *reference* frame is picked (the most neutral one: the least open mouth; or the first),
2. each driver frame t is split into a head pose S_t (a similarity transform fitted on stable points:
   eye corners, nose, upper jaw) and an expression displacement d_t = S_t^-1(D_t) - D_ref,
3. d_t is carried into the source's frame by the similarity Q (D_ref -> source) and scaled per facial
   part (jaw, brows, nose, eyes, mouth) by the ratio of the source part's size to the driver's,
4. the head pose moves the result: out_t = (Q S_t Q^-1)(src + k_part * Q_lin d_t).

``expression="absolute"`` (default) gives the brows, eyes and mouth the driver's (pose-normalised,
size-scaled) shape, placed where the source's parts are; ``"relative"`` adds the driver's expression
*change* to the source's own expression (a smiling portrait keeps its smile on top). Measured in
``benchmarks/forge_eval.py`` (cross-reenactment, warp): both beat no retargeting on identity and face
shape; "absolute" also transfers the mouth better, "relative" keeps identity best.

When the source *is* the driver's reference frame the output equals the driver's landmarks exactly.
"""

from __future__ import annotations

import numpy as np

from core.common import FaceforgeError

N_LANDMARKS = 68
# Facial parts of the 68-point (iBUG) layout; the mouth's outer and inner lips share one scale.
PARTS: dict[str, np.ndarray] = {
    "jaw": np.arange(0, 17),
    "right_brow": np.arange(17, 22),
    "left_brow": np.arange(22, 27),
    "nose": np.arange(27, 36),
    "right_eye": np.arange(36, 42),
    "left_eye": np.arange(42, 48),
    "mouth": np.arange(48, 68),
}
# Points that move with the head but hardly with expression: upper jaw, nose, eye corners.
STABLE = np.array([0, 1, 15, 16, 27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])
PART_SCALE_RANGE = (0.5, 2.0)   # per-part size ratios are clipped to this range
# parts whose *shape* is the expression (used by expression="absolute"); jaw and nose stay relative
EXPRESSIVE = ("right_brow", "left_brow", "right_eye", "left_eye", "mouth")
EXPRESSIONS = ("relative", "absolute")
INNER_LIP_TOP, INNER_LIP_BOTTOM = np.array([61, 62, 63]), np.array([67, 66, 65])
OUTER_EYE_CORNERS = (36, 45)


# ---------------------------------------------------------------- similarity transforms
def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping src to dst.

    src, dst: (..., K, 2) -> (..., 3, 3) homogeneous matrices (Umeyama 1991).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src, dst = np.broadcast_arrays(src, dst)
    mu_s, mu_d = src.mean(axis=-2, keepdims=True), dst.mean(axis=-2, keepdims=True)   # (..., 1, 2)
    xs, xd = src - mu_s, dst - mu_d
    cov = np.swapaxes(xd, -1, -2) @ xs / src.shape[-2]                 # (..., 2, 2)
    u, sig, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))                                 # (...,) avoid reflections
    fix = np.ones(sig.shape)
    fix[..., -1] = d
    rot = u @ (fix[..., :, None] * vt)                                 # (..., 2, 2)
    var = (xs ** 2).sum(axis=(-1, -2)) / src.shape[-2]                 # (...,)
    scale = (sig * fix).sum(axis=-1) / np.maximum(var, 1e-12)          # (...,)
    m = np.zeros(src.shape[:-2] + (3, 3))
    m[..., :2, :2] = scale[..., None, None] * rot
    m[..., :2, 2] = mu_d[..., 0, :] - (m[..., :2, :2] @ mu_s[..., 0, :, None])[..., 0]
    m[..., 2, 2] = 1.0
    return m


def apply_transform(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(..., 3, 3) x (..., K, 2) -> (..., K, 2)."""
    return points @ np.swapaxes(m[..., :2, :2], -1, -2) + m[..., None, :2, 2]


# ---------------------------------------------------------------- measurements
def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance: (..., 68, 2) -> (...)."""
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(landmarks[..., a, :] - landmarks[..., b, :], axis=-1)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mean inner-lip gap over inter-ocular distance: (..., 68, 2) -> (...); ~0 closed, ~0.3 wide open."""
    gap = np.linalg.norm(landmarks[..., INNER_LIP_TOP, :] - landmarks[..., INNER_LIP_BOTTOM, :], axis=-1)
    return gap.mean(axis=-1) / np.maximum(inter_ocular(landmarks), 1e-6)


def part_size(landmarks: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """RMS distance of a part's points from their centroid: (..., 68, 2) -> (...)."""
    pts = landmarks[..., idx, :]
    return np.sqrt(((pts - pts.mean(axis=-2, keepdims=True)) ** 2).sum(axis=-1).mean(axis=-1))


def neutral_frame(landmarks: np.ndarray) -> int:
    """Index of the most neutral frame of a clip (N, 68, 2): the least open mouth (first on ties)."""
    return int(np.argmin(np.round(mouth_opening(landmarks), 4)))


# ---------------------------------------------------------------- retargeting
def _check(name: str, lm: np.ndarray, shape: tuple) -> np.ndarray:
    lm = np.asarray(lm, np.float64)
    if lm.shape[-2:] != (N_LANDMARKS, 2) or lm.ndim != len(shape):
        raise FaceforgeError(f"retarget: {name} must be {shape}, got {lm.shape}")
    if not np.isfinite(lm).all():
        raise FaceforgeError(f"retarget: {name} contain NaN/inf (fill missing frames first)")
    return lm


def retarget(driver_landmarks: np.ndarray, source_landmarks: np.ndarray,
             driver_reference: np.ndarray | int | str | None = None, *,
             part_scaling: bool = True, expression: str = "absolute") -> np.ndarray:
    """The driver's head motion and expression on the source face's proportions.

    driver_landmarks (N, 68, 2), source_landmarks (68, 2) (both in the pixel frame of the rendered
    crop), driver_reference: None or "neutral" (least open mouth), "first", a frame index, or a
    (68, 2) array -> (N, 68, 2) float32 in the source's frame.
    """
    if expression not in EXPRESSIONS:
        raise FaceforgeError(f"retarget: unknown expression mode {expression!r} (relative|absolute)")
    drv = _check("driver landmarks", driver_landmarks, ("N", 68, 2))
    src = _check("source landmarks", source_landmarks, (68, 2))
    if len(drv) == 0:
        raise FaceforgeError("retarget: the driver has no frames")
    if driver_reference is None or (isinstance(driver_reference, str) and driver_reference == "neutral"):
        ref = drv[neutral_frame(drv)]
    elif isinstance(driver_reference, str) and driver_reference == "first":
        ref = drv[0]
    elif isinstance(driver_reference, (int, np.integer)):
        ref = drv[int(driver_reference)]
    elif isinstance(driver_reference, str):
        raise FaceforgeError(f"retarget: unknown driver reference {driver_reference!r} (neutral|first|index)")
    else:
        ref = _check("driver reference", driver_reference, (68, 2))

    pose = fit_similarity(ref[STABLE], drv[:, STABLE])                 # (N, 3, 3) ref -> frame t
    normalised = apply_transform(np.linalg.inv(pose), drv)             # (N, 68, 2) in ref coords
    delta = normalised - ref                                           # (N, 68, 2) expression

    q = fit_similarity(ref[STABLE], src[STABLE])                       # (3, 3) ref -> source
    delta_src = delta @ q[:2, :2].T                                    # (N, 68, 2) in source scale
    ref_in_src = apply_transform(q, ref)                               # (68, 2)
    scale = {name: float(np.clip(part_size(src, idx) / max(part_size(ref_in_src, idx), 1e-6), *PART_SCALE_RANGE))
             if part_scaling else 1.0 for name, idx in PARTS.items()}
    expressed = src + delta_src                                        # (N, 68, 2)
    for name, idx in PARTS.items():
        if expression == "absolute" and name in EXPRESSIVE:
            # the driver's part shape about its centroid, scaled, at the source part's (moved) centroid
            shape = normalised[:, idx] - normalised[:, idx].mean(axis=1, keepdims=True)   # (N, k, 2)
            shift = delta_src[:, idx].mean(axis=1, keepdims=True)                          # (N, 1, 2)
            expressed[:, idx] = src[idx].mean(axis=0) + shift + scale[name] * (shape @ q[:2, :2].T)
        else:
            expressed[:, idx] = src[idx] + scale[name] * delta_src[:, idx]
    motion = q @ pose @ np.linalg.inv(q)                               # (N, 3, 3) conjugated head pose
    return apply_transform(motion, expressed).astype(np.float32)


def canonical_landmarks(size: int = 64, mouth_open: float = 0.0) -> np.ndarray:
    """A synthetic frontal 68-point face filling a (size x size) crop: (68, 2) float32.

    mouth_open: inner-lip half-gap as a fraction of the crop (0 = closed). For tests and demos.
    """
    pts: list[tuple[float, float]] = []
    th = np.linspace(np.pi, 0, 17)                                     # jaw: ear -> chin -> ear
    pts += list(zip(0.5 + 0.4 * np.cos(th), 0.35 + 0.6 * np.sin(th)))
    for x0, x1 in ((0.2, 0.42), (0.58, 0.8)):                         # brows
        xs = np.linspace(x0, x1, 5)
        pts += [(x, 0.28 - 0.03 * np.sin(np.pi * (x - x0) / (x1 - x0))) for x in xs]
    pts += [(0.5, y) for y in np.linspace(0.35, 0.55, 4)]              # nose bridge
    pts += [(x, 0.6 + 0.02 * (1 - abs(x - 0.5) / 0.08)) for x in np.linspace(0.42, 0.58, 5)]
    th = np.array([np.pi, 4 * np.pi / 3, 5 * np.pi / 3, 0, np.pi / 3, 2 * np.pi / 3])
    for cx in (0.32, 0.68):                                            # eyes: corner, top, corner, bottom
        pts += list(zip(cx + 0.07 * np.cos(th), 0.38 + 0.025 * np.sin(th)))
    th = np.concatenate([np.pi + np.pi / 6 * np.arange(7), np.pi / 6 * np.arange(1, 6)])
    pts += list(zip(0.5 + 0.12 * np.cos(th), 0.75 + 0.04 * np.sin(th)))  # outer lips
    th = np.concatenate([np.pi + np.pi / 4 * np.arange(5), np.pi / 4 * np.arange(1, 4)])
    pts += list(zip(0.5 + 0.08 * np.cos(th), 0.75 + mouth_open * np.sin(th)))  # inner lips
    return (np.array(pts, np.float32) * (size - 1)).astype(np.float32)
