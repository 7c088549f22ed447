"""Image and face metrics for the paper's evaluation: SSIM, PSNR, CSIM, landmark error, FID.

- ``ssim``/``psnr``: pure numpy functions (Wang et al. 2004 SSIM with an 11-tap Gaussian window,
  sigma 1.5, K1=0.01, K2=0.03, per channel then averaged, borders excluded like scikit-image).
- ``IdentityEncoder``: dlib's ResNet face descriptor (128-d, from the ``face_recognition_models``
  package, no download) on crops upsampled to a size it was trained for, computed in batches by the
  torch port (``faces``; dlib's own network with ``backend="dlib"``, the reference: they agree within
  1e-5); ``csim`` is the cosine similarity of two descriptors. The paper used a different
  face-recognition network, so absolute CSIM values are not comparable with its table (dlib
  descriptors of different people still have a cosine around 0.8-0.9; identical faces give 1).
- ``fd_face``: the Frechet distance between two sets of those descriptors (FD-face: a realism
  measure on a face-recognition embedding; not FID, whose Inception features are not available).
- ``landmark_error``: the landmark detector run on generated frames vs the driving landmarks,
  normalised by the driving inter-ocular distance (pose fidelity).
- ``fid``: Frechet Inception distance when Inception-v3 weights are given by path or sit in torch's
  cache; otherwise reported as unavailable (never downloaded).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, get_logger

log = get_logger("metrics")

SSIM_SIGMA = 1.5
SSIM_WIN = 11
SSIM_K1, SSIM_K2 = 0.01, 0.03
DESCRIBE_MIN_SIZE = 200          # crops are upsampled to at least this many pixels before dlib runs
FID_SIZE = 299
INCEPTION_CACHE_GLOB = "inception_v3_google-*.pth"


# ---------------------------------------------------------------- SSIM, PSNR
def _as_float_batch(a: np.ndarray) -> np.ndarray:
    """(H, W) | (H, W, C) | (N, H, W, C) -> (N, H, W, C) float64."""
    a = np.asarray(a, np.float64)
    if a.ndim == 2:
        a = a[None, :, :, None]
    elif a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise FaceforgeError(f"expected an image or a batch of images, got shape {a.shape}")
    return a


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Per-pixel SSIM (N, H, W, C) of two same-shaped images/batches, before border cropping."""
    from scipy.ndimage import gaussian_filter

    x, y = _as_float_batch(a), _as_float_batch(b)
    if x.shape != y.shape:
        raise FaceforgeError(f"ssim: shapes differ {x.shape} vs {y.shape}")
    truncate = ((SSIM_WIN - 1) / 2) / SSIM_SIGMA
    sig = (0, SSIM_SIGMA, SSIM_SIGMA, 0)                               # blur H and W only

    def blur(z):
        return gaussian_filter(z, sigma=sig, truncate=truncate, mode="reflect")

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, per_image: bool = False):
    """Mean SSIM of two images (H, W[, C]) or batches (N, H, W, C); per_image -> (N,) array."""
    m = ssim_map(a, b, data_range)
    pad = (SSIM_WIN - 1) // 2
    if m.shape[1] > 2 * pad and m.shape[2] > 2 * pad:
        m = m[:, pad:-pad, pad:-pad]
    per = m.mean(axis=(1, 2, 3))
    return per if per_image else float(per.mean())


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, per_image: bool = False):
    """PSNR in dB, 10 log10(R^2 / MSE); identical images give inf. per_image -> (N,) array."""
    x, y = _as_float_batch(a), _as_float_batch(b)
    if x.shape != y.shape:
        raise FaceforgeError(f"psnr: shapes differ {x.shape} vs {y.shape}")
    mse = ((x - y) ** 2).mean(axis=(1, 2, 3))                          # (N,)
    with np.errstate(divide="ignore"):
        per = 10.0 * np.log10(data_range ** 2 / mse)
    if per_image:
        return per
    # a batch's PSNR is the mean of per-image PSNRs (finite ones; inf only if all are identical)
    finite = per[np.isfinite(per)]
    return float(finite.mean()) if len(finite) else math.inf


# ---------------------------------------------------------------- identity (CSIM)
def _upsample(image: np.ndarray, min_size: int) -> tuple[np.ndarray, float]:
    import cv2

    h, w = image.shape[:2]
    f = max(1.0, min_size / min(h, w))
    if f == 1.0:
        return np.ascontiguousarray(image), 1.0
    return cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC), f


class IdentityEncoder:
    """dlib's ResNet face descriptor (128-d) on face crops.

    The face box comes from given landmarks, else dlib's HOG detector, else (a face crop is assumed)
    the central 80% of the image; ``last_box_source`` says which was used for the last image. dlib's
    5-point landmarks in that box place the 150 px chip (``dlib.get_face_chip``'s geometry); the chips
    go through the torch port in batches (``backend="port"``) or dlib one by one (``"dlib"``).
    """

    name = "dlib_resnet_v1"
    backends = ("port", "dlib")

    def __init__(self, models_dir: str | os.PathLike | None = None, min_size: int = DESCRIBE_MIN_SIZE,
                 backend: str = "port", device: str = "cpu", batch_size: int = 32):
        import dlib

        from faces.landmarks import dlib_models_dir

        if backend not in self.backends:
            raise FaceforgeError(f"unknown identity backend {backend!r}; choose from {', '.join(self.backends)}")
        root = Path(models_dir) if models_dir else dlib_models_dir()
        rec = root / "dlib_face_recognition_resnet_model_v1.dat"
        sp = root / "shape_predictor_5_face_landmarks.dat"
        for f in (rec, sp):
            if not f.exists():
                raise FaceforgeError(f"dlib model file missing: {f}")
        if backend == "port":
            from faces import IdentityNet

            self._net = IdentityNet.load(device, dat=rec)
        else:
            self._rec = dlib.face_recognition_model_v1(str(rec))
        self.backend, self.batch_size = backend, batch_size
        self._sp = dlib.shape_predictor(str(sp))
        self._det = dlib.get_frontal_face_detector()
        self.min_size = min_size
        self.last_box_source = ""

    def _box(self, img: np.ndarray, landmarks: np.ndarray | None, f: float):
        import dlib

        h, w = img.shape[:2]
        if landmarks is not None:
            x0, y0 = np.min(landmarks, axis=0) * f
            x1, y1 = np.max(landmarks, axis=0) * f
            self.last_box_source = "landmarks"
            return dlib.rectangle(int(x0), int(y0), int(math.ceil(x1)), int(math.ceil(y1)))
        dets = self._det(img, 0)
        if len(dets):
            self.last_box_source = "detector"
            return max(dets, key=lambda r: r.area())
        self.last_box_source = "centre"
        return dlib.rectangle(int(0.1 * w), int(0.1 * h), int(0.9 * w), int(0.9 * h))

    def chip(self, image: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """One RGB uint8 image (H, W, 3) (+ optional (68, 2) landmarks) -> its (150, 150, 3) chip."""
        import dlib

        from faces.align import align_face

        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise FaceforgeError(f"describe needs a uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
        big, f = _upsample(img, self.min_size)
        shape = self._sp(big, self._box(big, landmarks, f))
        if self.backend == "dlib":
            return dlib.get_face_chip(big, shape, 150, 0.25)
        return align_face(big, np.array([(p.x, p.y) for p in shape.parts()], np.float64))

    def describe(self, image: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """One RGB uint8 image (H, W, 3) (+ optional (68, 2) landmarks) -> (128,) float32."""
        return self.describe_batch(np.asarray(image)[None], None if landmarks is None else landmarks[None])[0]

    def describe_batch(self, frames: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W, 3) (+ (N, 68, 2)) -> (N, 128) float32."""
        chips = np.stack([self.chip(fr, None if landmarks is None else landmarks[i])
                          for i, fr in enumerate(frames)])               # (N, 150, 150, 3)
        if self.backend == "dlib":
            return np.array([np.asarray(d) for d in self._rec.compute_face_descriptor(list(chips))], np.float32)
        from faces import chip_descriptors

        return chip_descriptors(chips, self._net, self.batch_size)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity along the last axis (broadcasting): (..., D), (..., D) -> (...)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(axis=-1) / np.maximum(den, 1e-12)


def csim(encoder: IdentityEncoder, a: np.ndarray, b: np.ndarray, per_image: bool = False):
    """CSIM between images a and b ((H, W, 3) each, or (N, H, W, 3) pairs; or one reference image
    against N frames): mean cosine of their identity descriptors."""
    a, b = np.asarray(a), np.asarray(b)
    da = encoder.describe_batch(a if a.ndim == 4 else a[None])        # (Na, 128)
    db = encoder.describe_batch(b if b.ndim == 4 else b[None])        # (Nb, 128)
    per = cosine(da, db)                                               # (max(Na, Nb),) broadcast
    return per if per_image else float(np.mean(per))


# ---------------------------------------------------------------- landmark error
@dataclass(frozen=True)
class LandmarkError:
    nme: float               # mean point error / driving inter-ocular distance, over detected frames
    per_frame: np.ndarray    # (N,) NaN where no face was detected
    detected: float          # fraction of frames where the detector found a face

    def as_dict(self) -> dict:
        return {"landmark_nme": self.nme, "landmark_detected": self.detected}


def landmark_error(frames: np.ndarray, target_landmarks: np.ndarray, detector,
                   min_size: int = DESCRIBE_MIN_SIZE) -> LandmarkError:
    """Detect landmarks on generated frames (N, S, S, 3) and compare with the driving ones (N, 68, 2).

    ``detector`` has ``.detect(image) -> [Face(landmarks (68, 2), ...)]`` (``faces.landmarks``);
    small crops are upsampled before detection and the landmarks scaled back.
    """
    from forge.retarget import inter_ocular

    target = np.asarray(target_landmarks, np.float64)
    if len(frames) != len(target):
        raise FaceforgeError(f"landmark_error: {len(frames)} frames vs {len(target)} landmark sets")
    per = np.full(len(frames), np.nan)
    for i, fr in enumerate(frames):
        big, f = _upsample(np.asarray(fr), min_size)
        faces = detector.detect(big)
        if not faces:
            continue
        found = np.asarray(faces[0].landmarks, np.float64) / f       # (68, 2) in crop pixels
        err = np.linalg.norm(found - target[i], axis=-1).mean()
        per[i] = err / max(float(inter_ocular(target[i])), 1e-6)
    ok = np.isfinite(per)
    return LandmarkError(nme=float(per[ok].mean()) if ok.any() else math.nan, per_frame=per,
                         detected=float(ok.mean()) if len(per) else math.nan)


# ---------------------------------------------------------------- FID
MOUTH = slice(48, 68)
MOUTH_BOX_MARGIN = 0.15           # the mouth box: the lips' bounding box grown by this fraction of its size per side


def mouth_box(landmarks: np.ndarray, size: int, margin: float = MOUTH_BOX_MARGIN) -> tuple[int, int, int, int]:
    """(68, 2) landmarks -> (x0, y0, x1, y1) integer box around the lips (points 48-67), clipped to the image."""
    pts = np.asarray(landmarks, np.float64)[MOUTH]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    box = np.array([x0 - mx, y0 - my, x1 + mx, y1 + my])
    box = np.clip(np.round(box), 0, size).astype(int)
    return int(box[0]), int(box[1]), max(int(box[2]), int(box[0]) + 1), max(int(box[3]), int(box[1]) + 1)


def mouth_l1(a: np.ndarray, b: np.ndarray, landmarks: np.ndarray, per_image: bool = False):
    """Mean absolute difference (0..255) inside the target's mouth box: a, b (N, S, S, 3), landmarks
    (N, 68, 2) of the target (the driving landmarks) -> float (or (N,) with per_image)."""
    a, b = _as_float_batch(a), _as_float_batch(b)
    out = []
    for fa, fb, lm in zip(a, b, np.asarray(landmarks).reshape(-1, 68, 2)):
        x0, y0, x1, y1 = mouth_box(lm, fa.shape[0])
        out.append(float(np.abs(fa[y0:y1, x0:x1] - fb[y0:y1, x0:x1]).mean()))
    out = np.array(out)
    return out if per_image else float(out.mean())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():                                 # near-singular: regularise
        off = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fd_face(real: np.ndarray, fake: np.ndarray) -> float:
    """FD-face: the Frechet distance between Gaussians fitted to two sets of face descriptors
    ``(N, D)`` and ``(M, D)`` (e.g. ``IdentityEncoder``'s 128-d; sample covariances). Needs N, M >= 2.
    Not FID: a face-recognition embedding, comparable only with other FD-face values."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise FaceforgeError(f"fd_face needs (N, D) and (M, D) descriptors, got {real.shape} and {fake.shape}")
    if len(real) < 2 or len(fake) < 2:
        raise FaceforgeError(f"fd_face needs at least 2 descriptors per set, got {len(real)} and {len(fake)}")
    return frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))


def find_inception_weights(path: str | os.PathLike | None = None) -> Path | None:
    """An Inception-v3 state dict: the given path, else torchvision's file in torch's hub cache."""
    if path:
        return require_weights(path)
    try:
        import torch

        cache = Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # noqa: BLE001 - torch missing or hub dir unreadable: FID is simply unavailable
        return None
    found = sorted(cache.glob(INCEPTION_CACHE_GLOB)) if cache.is_dir() else []
    return found[0] if found else None


def require_weights(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FaceforgeError(f"Inception weights not found: {p}")
    return p


class InceptionFeatures:
    """torchvision Inception-v3 pool features (2048-d). Note: torchvision's ImageNet weights, not the
    TF FID graph, so values are FID-like and comparable within this project only."""

    def __init__(self, weights: str | os.PathLike, device: str = "cpu"):
        import torch
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.fc = torch.nn.Identity()
        self.net = net.eval().to(device)
        self.device = device

    def __call__(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, 2048) float64."""
        import torch
        import torch.nn.functional as F

        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        feats = []
        with torch.no_grad():
            for i in range(0, len(frames), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(frames[i:i + batch_size])).permute(0, 3, 1, 2)
                x = x.float().div(255.0)                               # (B, 3, H, W) in [0, 1]
                x = F.interpolate(x, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
                x = ((x - mean) / std).to(self.device)
                feats.append(self.net(x).double().cpu().numpy())      # (B, 2048)
        return np.concatenate(feats)


def fid(real: np.ndarray, fake: np.ndarray, weights: str | os.PathLike | None = None) -> dict:
    """FID between two frame sets (N, H, W, 3), or ``{"fid": None, "fid_note": why}``."""
    path = find_inception_weights(weights)
    if path is None:
        return {"fid": None, "fid_note": "unavailable: no Inception-v3 weights (give a path or put "
                                         "torchvision's file in torch's hub cache)"}
    if len(real) < 2 or len(fake) < 2:
        return {"fid": None, "fid_note": "unavailable: fewer than 2 frames"}
    net = InceptionFeatures(path)
    fr, ff = net(real), net(fake)
    value = frechet_distance(fr.mean(0), np.cov(fr, rowvar=False), ff.mean(0), np.cov(ff, rowvar=False))
    return {"fid": value, "fid_note": f"torchvision Inception-v3 ({path.name}), {len(real)} vs {len(fake)} "
                                      "frames (few frames: biased upwards)"}
