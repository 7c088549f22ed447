"""The warp guide of the warp-guided generator: the source frame(s) warped to the target landmarks,
with a validity mask (ours, beyond the paper; after Geng et al. 2018's warp-then-refine).

For each target pose the fit frame with the nearest landmarks (mean point distance) is warped with the
warp baseline's piecewise-affine geometry (``forge.warp``: same triangulation, same mouth shading), so
with ``guide_sources`` 1 a generator that copies its guide renders exactly what the warp baseline
renders. With ``guide_sources`` k > 1 (ours) the k nearest fit frames are each warped and blended,
weighted by how close their landmarks are (``source_weights``). The validity mask is
1 where the warp has real source pixels and falls towards 0 where it has none: target pixels whose
source position lies outside the source frame (the border is reflected there) and a mouth opened wider
than in the source (no teeth to warp; weighted by how much wider, as ``forge.warp.opened_mouth``).

Computed in numpy per frame (~1-2 ms at 128 px): by the episode sampler for training, by the
``Talker`` for fitting and rendering.
"""

from __future__ import annotations

import numpy as np

from core.common import FaceforgeError

GUIDE_CHANNELS = 4   # warped RGB (3) + validity (1)


def nearest_sources(source_landmarks: np.ndarray, target_landmarks: np.ndarray,
                    exclude_self: bool = False) -> np.ndarray:
    """Index of the source frame with the closest landmarks for each target.

    source (T, 68, 2), target (N, 68, 2) -> (N,) int. ``exclude_self``: targets are the sources
    themselves (N == T) and each picks another frame (when T > 1)."""
    return source_weights(source_landmarks, target_landmarks, 1, exclude_self=exclude_self)[0][:, 0]


def source_weights(source_landmarks: np.ndarray, target_landmarks: np.ndarray, k: int = 1, tau: float = 0.5,
                   exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The k fit frames with the closest landmarks for each target and their blend weights.

    source (T, 68, 2), target (N, 68, 2) -> (idx (N, k'), w (N, k')), k' = min(k, usable sources); w sums
    to 1 per target: softmax of -(d - d_min) / tau over the mean landmark distances d (pixels), so a frame
    1 tau farther than the nearest weighs e^-1 of it. k = 1: the nearest frame, weight 1."""
    src = np.asarray(source_landmarks, np.float64)
    tgt = np.asarray(target_landmarks, np.float64)
    dist = np.linalg.norm(tgt[:, None] - src[None], axis=-1).mean(-1)  # (N, T)
    if exclude_self and len(src) > 1:
        if len(tgt) != len(src):
            raise FaceforgeError("exclude_self needs the targets to be the sources")
        np.fill_diagonal(dist, np.inf)
    usable = len(src) - (1 if exclude_self and len(src) > 1 else 0)
    k = max(1, min(int(k), usable))
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]                # (N, k)
    d = np.take_along_axis(dist, idx, 1)                                # (N, k), ascending
    w = np.exp(-(d - d[:, :1]) / max(float(tau), 1e-6))
    return idx, w / w.sum(1, keepdims=True)


def warp_guide(frames: np.ndarray, landmarks: np.ndarray, target_landmarks: np.ndarray,
               k: int = 1, tau: float = 0.5,
               exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Warp the nearest source frame(s) to each target pose.

    frames (T, S, S, 3) uint8, landmarks (T, 68, 2), target_landmarks (N, 68, 2) in the same pixel frame
    -> (warped (N, S, S, 3) uint8, validity (N, S, S) float32 in [0, 1]). With k > 1 the k nearest frames'
    warps (and validities) are blended with ``source_weights`` (ours: averaging several nearly-aligned
    warps cancels part of each one's landmark and resampling error)."""
    from forge.warp import control_points, darken_mouth, opened_mouth, remap, triangulate, warp_maps

    frames = np.asarray(frames)
    src_lm = np.asarray(landmarks, np.float64)
    tgt_lm = np.asarray(target_landmarks, np.float64)
    if frames.ndim != 4 or frames.dtype != np.uint8 or src_lm.shape != (len(frames), 68, 2):
        raise FaceforgeError(f"warp guide needs (T, S, S, 3) uint8 frames and (T, 68, 2) landmarks, "
                             f"got {frames.dtype} {frames.shape} and {src_lm.shape}")
    if tgt_lm.ndim != 3 or tgt_lm.shape[1:] != (68, 2) or not np.isfinite(tgt_lm).all():
        raise FaceforgeError(f"warp guide needs finite (N, 68, 2) target landmarks, got {tgt_lm.shape}")
    h, w = frames.shape[1:3]
    idx, wts = source_weights(src_lm, tgt_lm, k, tau * h / 128, exclude_self)  # tau given at 128 px
    acc = np.zeros((len(tgt_lm), h, w, 3), np.float32)
    valid = np.zeros((len(tgt_lm), h, w), np.float32)
    meshes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i in range(len(tgt_lm)):
        tgt_pts = control_points(tgt_lm[i], h, w)
        for t, a in zip(idx[i].tolist(), wts[i].tolist()):
            if t not in meshes:                                        # one triangulation per source frame
                pts = control_points(src_lm[t], h, w)                  # (P, 2)
                meshes[t] = (pts, triangulate(pts))
            src_pts, tris = meshes[t]
            map_x, map_y = warp_maps(src_pts, tgt_pts, tris, h, w)     # (S, S) each
            opened = opened_mouth((h, w), src_lm[t], tgt_lm[i])        # (S, S): as shade_mouth
            acc[i] += a * darken_mouth(remap(frames[t], map_x, map_y), opened)
            inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
            valid[i] += a * inside * (1.0 - opened)
    warped = np.clip(np.rint(acc), 0, 255).astype(np.uint8)
    return warped, valid


def guide_tensor(warped: np.ndarray, valid: np.ndarray):
    """(N, S, S, 3) uint8 + (N, S, S) float -> torch (N, 4, S, S): RGB in [-1, 1], validity in [0, 1]."""
    import torch

    from forge.data.episodes import to_tensor

    rgb = to_tensor(warped)                                             # (N, 3, S, S)
    return torch.cat([rgb, torch.from_numpy(np.ascontiguousarray(valid))[:, None]], dim=1)  # (N, 4, S, S)


__all__ = ["GUIDE_CHANNELS", "nearest_sources", "source_weights", "warp_guide", "guide_tensor"]
