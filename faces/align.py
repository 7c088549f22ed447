"""dlib's face chips (``dlib.get_face_chip``): 150 x 150, padding 0.25, from 68 or 5 landmarks.

The geometry is dlib's ``get_face_chip_details``: a least-squares similarity transform from a mean face
template (inner-face points of the 68-point layout, or the 5-point layout) scaled into the padded chip,
to the landmarks. dlib keeps its rotation ``angle`` and a square ``rect`` of side ``size * scale`` centred
on the chip centre's image position; chip pixels ``0 .. size-1`` span that rect's rotated corners
(``right - left = size * scale - 1``, dlib's ``centered_drect``).

Sampling is bilinear, and when the face is more than twice the chip size the image is first halved the
way dlib's ``extract_image_chip`` does (a pyramid), so chips of large faces are not aliased.

- :func:`chip_geometry` (numpy): dlib's chip_details (centre, side, angle).
- :func:`align_face` (numpy, uint8 in and out): the chip, for real images.
- :func:`align_faces_torch`: the same warp with ``affine_grid``/``grid_sample``, differentiable with
  respect to the images (e.g. generator outputs with their landmarks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHIP_SIZE = 150
CHIP_PADDING = 0.25

# dlib's mean face (get_face_chip_details), points 17..67 of the 68-point layout in unit coordinates.
_MEAN_FACE_X = np.array([
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689])
_MEAN_FACE_Y = np.array([
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182])
# dlib uses points 27..54 and 60..64: eyebrows (17-26), lower lip (55-59, 65-67) and the jaw are left out.
USED_68 = np.array([i for i in range(27, 68) if not (55 <= i <= 59 or 65 <= i <= 67)])
TEMPLATE_68 = np.stack([_MEAN_FACE_X, _MEAN_FACE_Y], axis=1)[USED_68 - 17]       # (33, 2)
TEMPLATE_5 = np.array([(0.8595674595992, 0.2134981538014), (0.6460604764104, 0.2289674387677),
                       (0.1205750620789, 0.2137274526848), (0.3340850613712, 0.2290642403242),
                       (0.4901123135679, 0.6277975316475)])                          # (5, 2)


@dataclass(frozen=True)
class ChipGeometry:
    """dlib's ``chip_details``: the chip's centre in the image, its side in image pixels
    (``size * scale``), its rotation (radians) and its size in chip pixels."""

    center: tuple[float, float]
    side: float
    angle: float
    size: int


def _template_and_points(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape == (68, 2):
        return TEMPLATE_68, pts[USED_68]
    if pts.shape == (5, 2):
        return TEMPLATE_5, pts
    raise ValueError(f"landmarks must be (68, 2) or (5, 2), got {pts.shape}")


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Least-squares similarity ``dst ~ [[a, -b], [b, a]] src + t`` -> ``(a, b, t)``
    (Umeyama's solution without reflection, as dlib's ``find_similarity_transform``)."""
    src_c, dst_c = src - src.mean(0), dst - dst.mean(0)
    norm = (src_c ** 2).sum()
    a = (src_c * dst_c).sum() / norm
    b = (src_c[:, 0] * dst_c[:, 1] - src_c[:, 1] * dst_c[:, 0]).sum() / norm
    t = dst.mean(0) - np.array([[a, -b], [b, a]]) @ src.mean(0)
    return float(a), float(b), t


def chip_geometry(landmarks: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> ChipGeometry:
    """dlib's ``get_face_chip_details(landmarks, size, padding)`` for 68 or 5 landmarks."""
    template, pts = _template_and_points(landmarks)
    chip_pts = (padding + template) / (2 * padding + 1) * size              # (P, 2) chip pixels
    a, b, t = similarity(chip_pts, pts)
    center = np.array([[a, -b], [b, a]]) @ np.array([size / 2, size / 2]) + t
    return ChipGeometry((float(center[0]), float(center[1])), size * float(np.hypot(a, b)),
                        float(np.arctan2(b, a)), size)


# ---------------------------------------------------------------- dlib's extract_image_chip
Rect = tuple[float, float, float, float]  # dlib drectangle (left, top, right, bottom), width = right - left + 1


def chip_rect(geometry: ChipGeometry) -> Rect:
    """dlib's ``centered_drect(center, side, side)``."""
    (cx, cy), half = geometry.center, (geometry.side - 1) / 2
    return cx - half, cy - half, cx + half, cy + half


def _rect_down(rect: Rect) -> Rect:
    """dlib's ``pyramid_down<2>::rect_down``: ``p / 2 - (1.25, 0.75)`` for both corners."""
    left, top, right, bottom = rect
    return left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75


def _area(rect: Rect) -> float:
    return max(0.0, rect[2] - rect[0] + 1) * max(0.0, rect[3] - rect[1] + 1)


def pyramid_levels(geometry: ChipGeometry) -> int:
    """How many times ``extract_image_chip`` halves the image first: while the halved rect still has
    more pixels than the chip (bilinear sampling alone would alias)."""
    rect, levels = _rect_down(chip_rect(geometry)), 0
    while _area(rect) > geometry.size * geometry.size:
        rect, levels = _rect_down(rect), levels + 1
    return levels


def _rotate(center: tuple[float, float], point: tuple[float, float], angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = point[0] - center[0], point[1] - center[1]
    return np.array([c * dx - s * dy + center[0], s * dx + c * dy + center[1]])


def _corners(rect: Rect, angle: float) -> np.ndarray:
    """The rect's top-left, top-right and bottom-left corners rotated about its centre -> (3, 2)."""
    left, top, right, bottom = rect
    center = ((left + right) / 2, (top + bottom) / 2)
    return np.stack([_rotate(center, p, angle) for p in ((left, top), (right, top), (left, bottom))])


def _sub_image_box(rect: Rect, angle: float, levels: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The integer box dlib crops before building its pyramid: the rotated rect grown by a border
    (2 px, doubled plus 2 per level), clipped to the image, rounded."""
    left, top, right, bottom = rect
    center = ((left + right) / 2, (top + bottom) / 2)
    pts = np.stack([_rotate(center, p, angle) for p in ((left, top), (right, top), (left, bottom), (right, bottom))])
    grow = 2
    for _ in range(levels):
        grow = grow * 2 + 2
    box = (max(pts[:, 0].min() - grow, 0), max(pts[:, 1].min() - grow, 0),
           min(pts[:, 0].max() + grow, shape[1] - 1), min(pts[:, 1].max() + grow, shape[0] - 1))
    return tuple(int(np.floor(v + 0.5)) for v in box)  # type: ignore[return-value]


def _pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` for RGB: a [1 4 6 4 1] filter on rows and columns, every second
    pixel kept (output pixel (c, r) sits at input (2c + 2, 2r + 2)), integer sums divided by 256."""
    h, w = image.shape[:2]
    if h <= 8 or w <= 8:
        raise ValueError("image too small for a pyramid level")
    x = image.astype(np.int64)
    nc, nr = (w - 3) // 2, (h - 3) // 2
    k = (1, 4, 6, 4, 1)
    rows = sum(k[i] * x[:, i:i + 2 * nc:2] for i in range(5))                       # (H, nc, 3)
    down = sum(k[j] * rows[j:j + 2 * nr:2] for j in range(5))                       # (nr, nc, 3)
    return (down // 256).astype(np.uint8)


def _bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample ``image (H, W, C)`` at float points ``xy (..., 2)``; points without four neighbours
    inside the image are black (as dlib's ``transform_image``)."""
    h, w = image.shape[:2]
    x, y = xy[..., 0], xy[..., 1]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    x0c, y0c = np.clip(x0, 0, w - 2), np.clip(y0, 0, h - 2)
    fx, fy = (x - x0c)[..., None], (y - y0c)[..., None]
    img = image.astype(np.float64)
    top = img[y0c, x0c] * (1 - fx) + img[y0c, x0c + 1] * fx
    bottom = img[y0c + 1, x0c] * (1 - fx) + img[y0c + 1, x0c + 1] * fx
    return np.where(inside[..., None], top * (1 - fy) + bottom * fy, 0.0)


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = CHIP_SIZE,
               padding: float = CHIP_PADDING) -> np.ndarray:
    """The face chip ``(size, size, 3) uint8`` of ``image (H, W, 3) uint8``, as ``dlib.get_face_chip``
    (dlib's ``extract_image_chip``: crop, pyramid, bilinear)."""
    geometry = chip_geometry(landmarks, size, padding)
    rect, levels = chip_rect(geometry), pyramid_levels(geometry)
    x0, y0, x1, y1 = _sub_image_box(rect, geometry.angle, levels, image.shape)
    sub = image[y0:y1 + 1, x0:x1 + 1]
    rect = (rect[0] - x0, rect[1] - y0, rect[2] - x0, rect[3] - y0)
    for _ in range(levels):
        sub, rect = _pyramid_down(sub), _rect_down(rect)
    tl, tr, bl = _corners(rect, geometry.angle)                                      # (2,) each, image px
    u = np.arange(size, dtype=np.float64) / (size - 1)
    xy = tl + u[None, :, None] * (tr - tl) + u[:, None, None] * (bl - tl)           # (S, S, 2): [row y, col x]
    return _bilinear(sub, xy).astype(np.uint8)


# ---------------------------------------------------------------- differentiable (torch)
def _similarity_torch(src, dst):
    """Batched :func:`similarity`: ``src, dst (B, P, 2)`` -> ``a, b (B,)``, ``t (B, 2)``."""
    src_c, dst_c = src - src.mean(1, keepdim=True), dst - dst.mean(1, keepdim=True)
    norm = (src_c ** 2).sum((1, 2))
    a = (src_c * dst_c).sum((1, 2)) / norm
    b = (src_c[..., 0] * dst_c[..., 1] - src_c[..., 1] * dst_c[..., 0]).sum(1) / norm
    rot = _rotation_matrix(a, b)                                                      # (B, 2, 2)
    t = dst.mean(1) - (rot @ src.mean(1).unsqueeze(-1)).squeeze(-1)
    return a, b, t


def _rotation_matrix(a, b):
    import torch

    return torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)      # (B, 2, 2)


def _pyramid_down_torch(images):
    """dlib's pyramid_down<2> as a strided depthwise convolution (no integer truncation)."""
    import torch
    import torch.nn.functional as F

    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=images.dtype, device=images.device) / 16
    kernel = (k1[:, None] * k1[None, :]).expand(images.shape[1], 1, 5, 5)
    return F.conv2d(images, kernel, stride=2, groups=images.shape[1])                 # (B, C, (H-3)//2, (W-3)//2)


def align_faces_torch(images, landmarks, size: int = CHIP_SIZE, padding: float = CHIP_PADDING):
    """Chips ``(B, C, size, size)`` from float images ``(B, C, H, W)`` (any value range, e.g. a
    generator's output) and their landmarks ``(B, 68|5, 2)`` in pixels, with dlib's geometry and
    pyramid; differentiable with respect to the images and the landmarks. It differs from
    :func:`align_face` only by rounding, the pyramid's pixel phase (dlib crops first) and edge
    pixels (here blended with zeros, in dlib black)."""
    import torch
    import torch.nn.functional as F

    if images.ndim != 4 or landmarks.ndim != 3 or landmarks.shape[0] != images.shape[0]:
        raise ValueError(f"need images (B, C, H, W) and landmarks (B, P, 2), got {tuple(images.shape)} "
                         f"and {tuple(landmarks.shape)}")
    pts = landmarks.to(images.dtype)
    if pts.shape[1:] == (68, 2):
        template, pts = TEMPLATE_68, pts[:, torch.as_tensor(USED_68, device=pts.device)]
    elif pts.shape[1:] == (5, 2):
        template = TEMPLATE_5
    else:
        raise ValueError(f"landmarks must be (B, 68, 2) or (B, 5, 2), got {tuple(landmarks.shape)}")
    b = images.shape[0]
    chip_pts = torch.as_tensor((padding + template) / (2 * padding + 1) * size, dtype=images.dtype,
                               device=images.device).expand(b, -1, -1)                # (B, P, 2)
    a, bb, t = _similarity_torch(chip_pts, pts)
    scale = torch.sqrt(a * a + bb * bb)                                               # image px per template px
    centre = (_rotation_matrix(a, bb) @ chip_pts.new_full((b, 2, 1), size / 2)).squeeze(-1) + t  # (B, 2)
    half = (size * scale - 1) / 2                                                     # rect half side
    unit = _rotation_matrix(a / scale, bb / scale)                                    # (B, 2, 2) rotation
    rects = torch.stack([centre[:, 0] - half, centre[:, 1] - half, centre[:, 0] + half, centre[:, 1] + half], -1)

    out = images.new_zeros(b, images.shape[1], size, size)
    levels = [pyramid_levels(ChipGeometry((0.0, 0.0), float(s), 0.0, size)) for s in (size * scale).tolist()]
    for level in sorted(set(levels)):
        idx = torch.as_tensor([i for i, lv in enumerate(levels) if lv == level], device=images.device)
        img, rect = images[idx], rects[idx]
        shift = rect.new_tensor([1.25, 0.75, 1.25, 0.75])
        for _ in range(level):
            img, rect = _pyramid_down_torch(img), rect / 2 - shift                     # dlib's rect_down
        h, w = img.shape[-2:]
        c = torch.stack([(rect[:, 0] + rect[:, 2]) / 2, (rect[:, 1] + rect[:, 3]) / 2], -1)   # (b, 2)
        half_side = (rect[:, 2] - rect[:, 0]) / 2                                     # rect corners at +-half
        # chip pixel (u, v) in 0..size-1 -> image p = c + unit @ (half_side * (2 u / (size-1) - 1, ...));
        # in affine_grid's normalised coordinates (align_corners=True) both sides live in [-1, 1].
        to_norm = rect.new_tensor([2.0 / (w - 1), 2.0 / (h - 1)])
        lin = unit[idx] * half_side[:, None, None] * to_norm[None, :, None]            # (b, 2, 2)
        theta = torch.cat([lin, (c * to_norm - 1).unsqueeze(-1)], dim=-1)             # (b, 2, 3)
        grid = F.affine_grid(theta, (len(idx), img.shape[1], size, size), align_corners=True)
        out = out.index_copy(0, idx, F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros",
                                                    align_corners=True))
    return out                                                                        # (B, C, size, size)
