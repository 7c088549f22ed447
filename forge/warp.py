"""The classical second generator: landmark-driven piecewise-affine warping of the source image.

The 68 landmarks, a few virtual forehead points (extrapolated above the brows, so the top of the
head moves with the face) and fixed points around the frame are triangulated once (Delaunay on the
source). For every target pose each output pixel finds its triangle in the target mesh and is mapped
back into the source through that triangle's affine transform (a vectorised barycentric remap: one
``cv2.remap`` per frame). The background outside the face is stretched, the mouth interior is whatever
the source shows, darkened where the mouth opens wider than in the source (no teeth are invented):
a baseline, and a second kind of fake for the corpus.
"""

from __future__ import annotations

import numpy as np

from core.common import FaceforgeError

N_LANDMARKS = 68
BROWS = slice(17, 27)
NOSE_TIP = 30
BORDER_MARGIN = 0.25     # fixed frame points sit this fraction of the image size outside the frame
BORDER_PER_SIDE = 4      # fixed points per image side (corners included once)
FOREHEAD_LIFT = 0.6      # forehead points: brows lifted by this fraction of the brow-to-nose-tip distance
MIN_AREA = 1e-3          # target triangles smaller than this (px^2) are not drawn
INNER_LIPS = slice(60, 68)
MOUTH_DARKEN = 0.3       # a newly opened mouth shows the warped lips darkened to this fraction


def forehead_points(landmarks: np.ndarray) -> np.ndarray:
    """Virtual forehead points: the 10 brow points lifted along the face's up direction.

    landmarks: (..., 68, 2) -> (..., 10, 2). They move rigidly with the brows and scale with the face.
    """
    brows = landmarks[..., BROWS, :]                                   # (..., 10, 2)
    up = brows.mean(axis=-2) - landmarks[..., NOSE_TIP, :]             # (..., 2) nose tip -> brow centre
    return brows + FOREHEAD_LIFT * up[..., None, :]


def border_points(height: int, width: int) -> np.ndarray:
    """Fixed points on a rectangle slightly outside the frame: (4 * (BORDER_PER_SIDE - 1), 2)."""
    mx, my = BORDER_MARGIN * width, BORDER_MARGIN * height
    xs = np.linspace(-mx, width - 1 + mx, BORDER_PER_SIDE)
    ys = np.linspace(-my, height - 1 + my, BORDER_PER_SIDE)
    top = [(x, ys[0]) for x in xs[:-1]]
    right = [(xs[-1], y) for y in ys[:-1]]
    bottom = [(x, ys[-1]) for x in xs[:0:-1]]
    left = [(xs[0], y) for y in ys[:0:-1]]
    return np.array(top + right + bottom + left, np.float64)


def control_points(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Landmarks + forehead + border points: (..., 68, 2) -> (..., 68 + 10 + B, 2), float64."""
    lm = np.asarray(landmarks, np.float64)
    border = np.broadcast_to(border_points(height, width), lm.shape[:-2] + (4 * (BORDER_PER_SIDE - 1), 2))
    return np.concatenate([lm, forehead_points(lm), border], axis=-2)


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles over (P, 2) points -> (K, 3) int indices; every point is used (joggled
    input, so coincident landmarks such as a closed inner lip still get their own triangles)."""
    from scipy.spatial import Delaunay

    return Delaunay(points, qhull_options="QJ Qbb Qc").simplices.astype(np.int64)


def _affine_target_to_source(tgt_tris: np.ndarray, src_tris: np.ndarray) -> np.ndarray:
    """Per-triangle affine maps from target to source: (K, 3, 2), (K, 3, 2) -> (K, 2, 3)."""
    ones = np.ones(tgt_tris.shape[:2] + (1,))
    t = np.concatenate([tgt_tris, ones], axis=2).transpose(0, 2, 1)    # (K, 3, 3) columns [x, y, 1]
    s = src_tris.transpose(0, 2, 1)                                    # (K, 2, 3)
    return s @ np.linalg.pinv(t)                                       # (K, 2, 3)


def _triangle_areas(tris: np.ndarray) -> np.ndarray:
    """(K, 3, 2) -> (K,) signed areas."""
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def _triangle_id_map(tgt_tris: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise the target mesh: (K, 3, 2) -> (H, W) int32 triangle index, -1 where uncovered."""
    import cv2

    shift = 4                                                          # sub-pixel vertex precision
    ids = np.zeros((height, width), np.int32)                          # 0 = uncovered, k + 1 = triangle k
    areas = np.abs(_triangle_areas(tgt_tris))
    fixed = np.round(tgt_tris * (1 << shift)).astype(np.int32)
    for k in np.argsort(-areas):                                       # small triangles drawn last, on top
        if areas[k] < MIN_AREA:
            continue
        cv2.fillConvexPoly(ids, fixed[k], int(k) + 1, lineType=cv2.LINE_8, shift=shift)
    return ids - 1


def _fill_uncovered(ids: np.ndarray, tgt_tris: np.ndarray) -> None:
    """Give pixels no triangle covered (rasterisation gaps) the triangle they are least outside of."""
    ys, xs = np.nonzero(ids < 0)
    if len(ys) == 0:
        return
    p = np.stack([xs, ys], axis=1).astype(np.float64)                  # (U, 2)
    a, b, c = tgt_tris[:, 0], tgt_tris[:, 1], tgt_tris[:, 2]           # (K, 2) each
    v0, v1 = b - a, c - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]                    # (K,)
    ok = np.abs(den) > MIN_AREA
    den = np.where(ok, den, 1.0)
    d = p[:, None, :] - a[None]                                        # (U, K, 2)
    l1 = (d[..., 0] * v1[:, 1] - v1[:, 0] * d[..., 1]) / den           # (U, K)
    l2 = (v0[:, 0] * d[..., 1] - d[..., 0] * v0[:, 1]) / den
    worst = np.minimum(np.minimum(l1, l2), 1.0 - l1 - l2)              # (U, K) >= 0 inside
    worst[:, ~ok] = -np.inf
    ids[ys, xs] = np.argmax(worst, axis=1)


def warp_maps(src_points: np.ndarray, tgt_points: np.ndarray, triangles: np.ndarray, height: int,
              width: int) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates of every target pixel: control points (P, 2) source -> target, (K, 3)
    triangles -> (map_x, map_y), each (H, W) float32 (may fall outside the source frame)."""
    src_tris, tgt_tris = src_points[triangles], tgt_points[triangles]  # (K, 3, 2)
    affine = _affine_target_to_source(tgt_tris, src_tris)              # (K, 2, 3)
    ids = _triangle_id_map(tgt_tris, height, width)                    # (H, W)
    _fill_uncovered(ids, tgt_tris)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    a = affine[ids]                                                    # (H, W, 2, 3)
    map_x = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]       # (H, W) source x per output pixel
    map_y = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    return map_x.astype(np.float32), map_y.astype(np.float32)


def remap(source_image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Sample (H, W, 3) at the (H, W) source coordinates (bilinear, reflected at the border)."""
    import cv2

    return cv2.remap(source_image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def warp_image(source_image: np.ndarray, src_points: np.ndarray, tgt_points: np.ndarray,
               triangles: np.ndarray) -> np.ndarray:
    """Piecewise-affine warp of one image: control points (P, 2) source -> target, (K, 3) triangles."""
    h, w = source_image.shape[:2]
    return remap(source_image, *warp_maps(src_points, tgt_points, triangles, h, w))


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def opened_mouth(shape: tuple[int, int], source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
    """Where the target's inner mouth is open wider than the source's, weighted by how much wider:
    (H, W) float32 in [0, 1] (0 everywhere when the target mouth is not wider)."""
    import cv2

    mask = np.zeros(shape, np.float32)
    a_src = _polygon_area(source_landmarks[INNER_LIPS])
    a_tgt = _polygon_area(target_landmarks[INNER_LIPS])
    if a_tgt <= a_src or a_tgt < 1.0:
        return mask
    strength = (a_tgt - a_src) / a_tgt                                 # 0 (same) .. 1 (source closed)
    cv2.fillPoly(mask, [np.round(target_landmarks[INNER_LIPS] * 16).astype(np.int32)], 1.0,
                 lineType=cv2.LINE_AA, shift=4)
    return strength * cv2.GaussianBlur(mask, (0, 0), sigmaX=max(0.5, 0.01 * shape[1]))


def shade_mouth(image: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray) -> np.ndarray:
    """Darken the inner-mouth polygon of a warped frame by how much wider it is than the source's
    (a closed source mouth stretched open would otherwise show smeared lips). (H, W, 3) -> (H, W, 3)."""
    return darken_mouth(image, opened_mouth(image.shape[:2], source_landmarks, target_landmarks))


def darken_mouth(image: np.ndarray, opened: np.ndarray) -> np.ndarray:
    """``shade_mouth`` with its ``opened_mouth`` mask (H, W) already computed. (H, W, 3) -> (H, W, 3)."""
    if not opened.any():
        return image
    factor = 1.0 - (1.0 - MOUTH_DARKEN) * opened[..., None]            # (H, W, 1)
    return np.clip(image * factor + 0.5, 0, 255).astype(np.uint8)


def warp_render(source_image: np.ndarray, source_landmarks: np.ndarray,
                target_landmarks: np.ndarray, fill_mouth: bool = True) -> np.ndarray:
    """Render the source face in each target pose.

    source_image (H, W, 3) uint8, source_landmarks (68, 2), target_landmarks (N, 68, 2) in the same
    pixel frame -> (N, H, W, 3) uint8. Target landmarks equal to the source give back the source.
    fill_mouth: darken a mouth opened wider than the source's (see ``shade_mouth``).
    """
    img = np.asarray(source_image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise FaceforgeError(f"warp source must be a uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    src_lm = np.asarray(source_landmarks, np.float64)
    tgt_lm = np.asarray(target_landmarks, np.float64)
    if tgt_lm.ndim == 2:
        tgt_lm = tgt_lm[None]
    if src_lm.shape != (N_LANDMARKS, 2) or tgt_lm.shape[1:] != (N_LANDMARKS, 2):
        raise FaceforgeError(f"warp needs (68, 2) source and (N, 68, 2) target landmarks, "
                             f"got {src_lm.shape} and {tgt_lm.shape}")
    if not (np.isfinite(src_lm).all() and np.isfinite(tgt_lm).all()):
        raise FaceforgeError("warp landmarks contain NaN/inf (fill missing frames first)")
    h, w = img.shape[:2]
    src_pts = control_points(src_lm, h, w)                             # (P, 2)
    tgt_pts = control_points(tgt_lm, h, w)                             # (N, P, 2)
    triangles = triangulate(src_pts)                                   # (K, 3)
    out = np.empty((len(tgt_lm), h, w, 3), np.uint8)
    for i, pts in enumerate(tgt_pts):
        out[i] = warp_image(img, src_pts, pts, triangles)
        if fill_mouth:
            out[i] = shade_mouth(out[i], src_lm, tgt_lm[i])
    return out
