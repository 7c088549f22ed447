"""Self-blended images (SBI): pseudo-fakes made from real frames alone.

Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images" (CVPR 2022), after Face X-ray
(Li et al., CVPR 2020): a face is blended onto a slightly altered copy of itself, so the only thing
that marks the result as fake is the trace every face-swap and lip-sync pipeline leaves: a blend
boundary, a colour / sharpness / frequency mismatch inside it, and a small misalignment.

    source = jitter(image)            colour, sharpness, resampling, JPEG, small shift + scale
    mask   = blur(deform(hull(lm)))   landmark hull (face, inner face or lower face), elastic
                                      deformation, Gaussian blur, random blend ratio
    fake   = mask * source + (1 - mask) * image

``self_blend(image, landmarks, rng) -> (fake, mask)``; the mask (the pixels that changed, 0..1) is
the auxiliary target for architectures with a mask head. Pure numpy + OpenCV, deterministic given
the generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.common import FaceforgeError

# 68-point landmark groups used for the blend region
JAW = list(range(0, 17))
INNER = list(range(17, 68))                          # brows, nose, eyes, mouth
LOWER = list(range(2, 15)) + [29, 30]                # jaw below the cheekbones + nose: a lip-sync region
REGIONS = ("face", "inner", "lower")


@dataclass(frozen=True)
class SBIConfig:
    region_p: tuple[float, float, float] = (0.6, 0.2, 0.2)  # P(face hull), P(inner hull), P(lower hull)
    forehead: float = 0.25          # the face hull is raised by this share of the brow-chin height
    deform: float = 0.08            # elastic deformation amplitude, share of the face size
    deform_grid: int = 4            # control points per side of the deformation field
    blur: tuple[float, float] = (0.01, 0.06)   # mask blur sigma, share of the face size
    erode: float = 0.15             # the blurred mask is cut at a random level in [0, erode] and rescaled
    ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # blend ratio (SBI's choices)
    shift: float = 0.03             # source shift, share of the face size
    scale: tuple[float, float] = (0.95, 1.05)   # source scale around the face centre
    color: float = 0.1              # per-channel gain jitter, and brightness/contrast jitter
    hue: float = 0.04               # hue jitter, share of the hue circle
    sharpen_p: float = 0.3          # P(unsharp mask on the source)
    blur_p: float = 0.3             # P(Gaussian blur on the source)
    resample_p: float = 0.3         # P(down- then up-sampling the source: a frequency mismatch)
    jpeg_p: float = 0.3             # P(JPEG-compressing the source at quality 40-90)
    min_mask: float = 0.02          # a blend covering less than this share of the image is redrawn


def check_face(image: np.ndarray, landmarks: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise FaceforgeError(f"blending needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if landmarks.shape != (68, 2) or not np.all(np.isfinite(landmarks)):
        raise FaceforgeError(f"blending needs finite (68, 2) landmarks, got {landmarks.shape}")


def face_size(landmarks: np.ndarray) -> float:
    """Side of the landmarks' bounding box (px), at least 1."""
    span = landmarks.max(0) - landmarks.min(0)
    return float(max(span.max(), 1.0))


def hull_points(landmarks: np.ndarray, region: str, forehead: float) -> np.ndarray:
    """Points whose convex hull is the blend region ``(K, 2)``."""
    if region == "inner":
        return landmarks[INNER]
    if region == "lower":
        return landmarks[LOWER]
    if region != "face":
        raise FaceforgeError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    brows = landmarks[17:27].copy()                  # (10, 2)
    lift = forehead * (landmarks[8, 1] - brows[:, 1].mean())
    brows[:, 1] -= lift                              # raised brows close the hull over the forehead
    return np.concatenate([landmarks[JAW], brows])


def hull_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Filled convex hull of ``points`` as a float32 ``(H, W)`` mask of 0/1."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(np.float32)


def elastic(mask: np.ndarray, amplitude: float, grid: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacement of ``mask`` (``amplitude`` px at most per control point)."""
    import cv2

    h, w = mask.shape
    field = rng.uniform(-amplitude, amplitude, size=(2, grid, grid)).astype(np.float32)  # (2, g, g)
    dx = cv2.resize(field[0], (w, h), interpolation=cv2.INTER_CUBIC)                     # (H, W)
    dy = cv2.resize(field[1], (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(mask, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def blend_mask(image_shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator,
               cfg: SBIConfig = SBIConfig(), also: np.ndarray | None = None) -> np.ndarray:
    """The random soft blend mask ``(H, W)`` float32 in [0, 1] for one face; ``also`` (68, 2): a second
    landmark set (a pasted face's) whose region joins the hull."""
    import cv2

    size = face_size(landmarks)
    region = REGIONS[rng.choice(len(REGIONS), p=np.asarray(cfg.region_p) / sum(cfg.region_p))]
    points = hull_points(landmarks, region, cfg.forehead)                 # (K, 2)
    if also is not None:
        points = np.concatenate([points, hull_points(also, region, cfg.forehead)])
    mask = hull_mask(image_shape, points)
    mask = elastic(mask, cfg.deform * size, cfg.deform_grid, rng)
    sigma = rng.uniform(*cfg.blur) * size
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=max(sigma, 0.5))
    if mask.max() <= 0:
        return mask
    mask /= mask.max()
    cut = rng.uniform(0.0, cfg.erode)                # an eroded, re-normalised soft edge
    mask = np.clip((mask - cut) / (1.0 - cut), 0.0, 1.0)
    return (mask * rng.choice(cfg.ratios)).astype(np.float32)


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of ``(B, S, S, 3) uint8`` at one quality."""
    import cv2

    out = []
    for im in images:
        ok, buf = cv2.imencode(".jpg", im[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else im)
    return np.ascontiguousarray(np.stack(out))


def jitter_source(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                  cfg: SBIConfig = SBIConfig()) -> np.ndarray:
    """A slightly altered copy of ``image`` (colour, sharpness, frequency, shift and scale) ``(H, W, 3)`` uint8."""
    import cv2

    h, w = image.shape[:2]
    x = image.astype(np.float32)
    x *= 1.0 + rng.uniform(-cfg.color, cfg.color, size=3)                  # per-channel gain
    mean = x.mean()
    x = (x - mean) * (1.0 + rng.uniform(-cfg.color, cfg.color)) + mean    # contrast
    x += rng.uniform(-cfg.color, cfg.color) * 255.0 * 0.5                  # brightness
    x = np.clip(x, 0, 255).astype(np.uint8)
    if cfg.hue > 0:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        shift = int(round(rng.uniform(-cfg.hue, cfg.hue) * 180))
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 180).astype(np.uint8)
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < cfg.sharpen_p:
        soft = cv2.GaussianBlur(x, (0, 0), sigmaX=rng.uniform(0.6, 1.5))
        x = cv2.addWeighted(x, 1.0 + rng.uniform(0.3, 1.0), soft, -rng.uniform(0.3, 1.0), 0)
        x = np.clip(x, 0, 255).astype(np.uint8)
    elif rng.random() < cfg.blur_p:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=rng.uniform(0.5, 1.5))
    if rng.random() < cfg.resample_p:
        f = rng.uniform(0.4, 0.8)
        small = cv2.resize(x, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.jpeg_p:
        x = jpeg(x[None], int(rng.integers(40, 91)))[0]
    size = face_size(landmarks)
    cx, cy = landmarks.mean(0)
    s = rng.uniform(*cfg.scale)
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * size
    affine = np.array([[s, 0, (1 - s) * cx + tx], [0, s, (1 - s) * cy + ty]], np.float32)  # scale about the centre
    return cv2.warpAffine(x, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def self_blend(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator | int | None = None,
               cfg: SBIConfig = SBIConfig()) -> tuple[np.ndarray, np.ndarray]:
    """One self-blended pseudo-fake of ``image (H, W, 3) uint8`` with ``landmarks (68, 2)`` in its pixels.

    Returns ``(fake (H, W, 3) uint8, mask (H, W) float32 in [0, 1])``; where the mask is 0 the fake
    equals the image exactly."""
    check_face(image, landmarks)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    landmarks = np.asarray(landmarks, np.float32)
    mask = draw_mask(image.shape[:2], landmarks, rng, cfg)
    return paste(image, jitter_source(image, landmarks, rng, cfg), mask), mask


def draw_mask(shape: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator, cfg: SBIConfig = SBIConfig(),
              also: np.ndarray | None = None) -> np.ndarray:
    """``blend_mask`` redrawn (up to 4 times) while it covers less than ``cfg.min_mask`` of the image."""
    for _ in range(4):                               # a mask pushed off the image is redrawn
        mask = blend_mask(shape, landmarks, rng, cfg, also)
        if mask.mean() >= cfg.min_mask:
            break
    return mask


def paste(image: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask * source + (1 - mask) * image``, rounded; exactly ``image`` where the mask is 0.
    ``(H, W, 3) uint8`` x2, ``(H, W)`` float32 -> ``(H, W, 3) uint8``."""
    m = mask[..., None]                                                    # (H, W, 1)
    fake = m * source.astype(np.float32) + (1.0 - m) * image.astype(np.float32)
    return np.where(m > 0, np.clip(np.round(fake), 0, 255), image).astype(np.uint8)


def self_blend_batch(images: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator | int | None = None,
                     cfg: SBIConfig = SBIConfig()) -> tuple[np.ndarray, np.ndarray]:
    """``(B, H, W, 3) uint8`` + ``(B, 68, 2)`` -> fakes ``(B, H, W, 3) uint8``, masks ``(B, H, W) float32``."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pairs = [self_blend(im, lm, rng, cfg) for im, lm in zip(images, landmarks)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def self_blend_clip(frames: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator | int | None = None,
                    cfg: SBIConfig = SBIConfig(), flicker: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended *clip*: one draw of the blend (region, mask deformation, blur, ratio, colour,
    sharpness, shift, scale) applied to every frame, the mask following each frame's landmarks, so the
    blend moves with the face as a face-swap or lip-sync render does (``self_blend_batch`` draws anew
    per frame, which flickers). ``flicker`` > 0 adds per-frame wobble on top of the shared draw: the
    blend ratio scaled by ``1 + flicker N(0, 1)`` and the source shifted by ``flicker x 2 px N(0, 1)``,
    the frame-to-frame instability of a generator that renders each frame on its own.

    ``(T, H, W, 3) uint8`` + ``(T, 68, 2)`` -> fakes ``(T, H, W, 3) uint8``, masks ``(T, H, W) float32``."""
    import cv2

    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    seed = int(rng.integers(1 << 62))
    fakes, masks = [], []
    for image, lm in zip(frames, landmarks):
        check_face(image, lm)
        lm = np.asarray(lm, np.float32)
        shared = np.random.default_rng(seed)                              # the same draws for every frame
        mask = draw_mask(image.shape[:2], lm, shared, cfg)
        source = jitter_source(image, lm, shared, cfg)
        if flicker > 0:
            mask = np.clip(mask * (1.0 + flicker * rng.normal()), 0.0, 1.0).astype(np.float32)
            dx, dy = flicker * 2.0 * rng.normal(size=2)
            source = cv2.warpAffine(source, np.float32([[1, 0, dx], [0, 1, dy]]), image.shape[1::-1],
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        fakes.append(paste(image, source, mask))
        masks.append(mask)
    return np.stack(fakes), np.stack(masks)
