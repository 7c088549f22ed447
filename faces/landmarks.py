"""Face detection + 68-point landmarks behind one interface, two backends.

- ``"dlib"`` (offline default): dlib's HOG frontal face detector and the 68-point shape predictor
  shipped in the ``face-recognition-models`` package (no network, no hub).
- ``"face-alignment"`` (the paper's landmark source): S3FD detector + 2D-FAN-4. Available only when
  both weight files are in the torch hub cache (``<hub>/checkpoints/``) or given by path; otherwise
  :func:`backend_status` says why and ``"auto"`` falls back to dlib.

Detection runs on a downscaled copy of big frames (``detect_size``) and boxes are mapped back;
landmarks are always fitted on the full-resolution image. Faces come biggest (then most confident)
first. Landmarks are ``float32 (68, 2)`` pixel ``(x, y)``; boxes ``float32 (4,)`` ``x0, y0, x1, y1``.

In ``faces`` (face analysis, beside the identity network that finds faces with it), so faces never
imports forge; ``forge.data.landmarks`` re-exports it under its old name.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, get_logger

log = get_logger("faces.landmarks")

BACKENDS = ("dlib", "face-alignment")
N_LANDMARKS = 68
DETECT_SIZE = 320          # long side of the copy the face detector sees (speed on big frames)
DLIB_UPSAMPLE_RETRY = 1    # pyramid upsampling when nothing is found at scale 1 (small faces)
UPSAMPLE_MAX_SIDE = 1280   # upsample the full frame only up to this size (else the downscaled copy)
MAX_FAN_FACES = 4          # landmarks for at most this many (most confident) S3FD boxes
FAN_WEIGHTS = "2DFAN4-11f355bf06.pth.tar"   # file names face-alignment 1.x stores in the hub cache
S3FD_WEIGHTS = "s3fd-619a316812.pth"


@dataclass(frozen=True)
class Face:
    bbox: np.ndarray        # float32 (4,) x0, y0, x1, y1 in source pixels
    score: float            # detector confidence (dlib: SVM margin, ~0..3; S3FD: probability)
    landmarks: np.ndarray   # float32 (68, 2) pixel (x, y)

    @property
    def area(self) -> float:
        return float(max(0.0, self.bbox[2] - self.bbox[0]) * max(0.0, self.bbox[3] - self.bbox[1]))


class LandmarkDetector:
    """Interface: ``name`` and ``detect(image uint8 (H, W, 3) RGB) -> list[Face]``."""

    name: str = "?"

    def detect(self, image: np.ndarray) -> list[Face]:
        raise NotImplementedError

    def landmarks_at(self, image: np.ndarray, bbox: np.ndarray, score: float = 0.0) -> Face:
        """Fit the 68 landmarks inside a given detector-style box (no detection): for tracking."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise FaceforgeError(f"detect wants an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def _downscale(image: np.ndarray, detect_size: int) -> tuple[np.ndarray, float]:
    """A copy whose long side is at most ``detect_size``; returns it and the scale factor (<= 1)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, detect_size / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return small, scale


def _sorted(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: (-f.area, -f.score))


# ---------------------------------------------------------------- dlib
def dlib_models_dir() -> Path:
    """The ``models/`` folder of ``face_recognition_models``, found without importing it
    (its ``__init__`` imports pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceforgeError("dlib backend needs the 'face-recognition-models' package (pip install face-recognition-models)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class DlibDetector(LandmarkDetector):
    name = "dlib"

    def __init__(self, detect_size: int = DETECT_SIZE, upsample_retry: int = DLIB_UPSAMPLE_RETRY):
        try:
            import dlib
        except ImportError:
            raise FaceforgeError("dlib backend needs the 'dlib-bin' package") from None
        predictor = dlib_models_dir() / "shape_predictor_68_face_landmarks.dat"
        if not predictor.is_file():
            raise FaceforgeError(f"dlib shape predictor missing: {predictor}")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(predictor))
        self.detect_size = detect_size
        self.upsample_retry = upsample_retry

    def _find(self, image: np.ndarray):
        """HOG boxes: on the downscaled copy first (fast), then for small faces on the full frame,
        then with pyramid upsampling (dlib's HOG window is 80 px; upsampling once finds ~40 px faces)."""
        small, scale = _downscale(image, self.detect_size)
        attempts = [(small, scale, 0)]
        if scale < 1.0:
            attempts.append((image, 1.0, 0))
        if self.upsample_retry:
            big_enough = max(image.shape[:2]) <= UPSAMPLE_MAX_SIDE
            attempts.append((image, 1.0, self.upsample_retry) if big_enough else (small, scale, self.upsample_retry))
        for img, s, up in attempts:
            rects, scores, _ = self._detector.run(img, up, 0.0)
            if rects:
                return rects, scores, s
        return [], [], 1.0

    def detect(self, image: np.ndarray) -> list[Face]:
        image = _check_image(image)
        rects, scores, scale = self._find(image)
        faces = []
        for rect, score in zip(rects, scores):
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float64) / scale
            faces.append(self._fit(image, box, float(score)))
        return _sorted(faces)

    def _fit(self, image: np.ndarray, box: np.ndarray, score: float) -> Face:
        full = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self._predictor(image, full)
        pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)  # (68, 2)
        return Face(bbox=np.asarray(box, dtype=np.float32), score=score, landmarks=pts)

    def landmarks_at(self, image: np.ndarray, bbox: np.ndarray, score: float = 0.0) -> Face:
        return self._fit(_check_image(image), np.asarray(bbox, dtype=np.float64), float(score))


# ---------------------------------------------------------------- face-alignment (FAN + S3FD)
def _hub_checkpoints() -> Path:
    """torch hub's checkpoint folder, computed like ``torch.hub.get_dir()`` without importing torch."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "torch" / "hub" / "checkpoints"


def face_alignment_weights(fan_path: str | os.PathLike | None = None,
                           s3fd_path: str | os.PathLike | None = None) -> tuple[Path | None, Path | None, str | None]:
    """``(fan, s3fd, reason)``: the weight files when both exist, else a reason why not."""
    if importlib.util.find_spec("face_alignment") is None:
        return None, None, "the 'face-alignment' package is not installed"
    hub = _hub_checkpoints()
    fan = Path(fan_path) if fan_path else hub / FAN_WEIGHTS
    s3fd = Path(s3fd_path) if s3fd_path else hub / S3FD_WEIGHTS
    missing = [str(p) for p in (fan, s3fd) if not p.is_file()]
    if missing:
        return None, None, f"face-alignment weights not found (offline, no download): {', '.join(missing)}"
    return fan, s3fd, None


class FaceAlignmentDetector(LandmarkDetector):
    name = "face-alignment"

    def __init__(self, fan_path: str | os.PathLike | None = None, s3fd_path: str | os.PathLike | None = None,
                 device: str = "cpu", detect_size: int = DETECT_SIZE, flip_input: bool = False,
                 max_faces: int = MAX_FAN_FACES):
        fan, s3fd, reason = face_alignment_weights(fan_path, s3fd_path)
        if reason:
            raise FaceforgeError(f"face-alignment backend unavailable: {reason}")
        import torch
        from face_alignment.api import FaceAlignment, LandmarksType
        from face_alignment.detection.sfd.sfd_detector import SFDDetector
        from face_alignment.models import FAN

        try:
            net = FAN(4)
            state = torch.load(fan, map_location=device, weights_only=True)
            net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
            net.to(device).eval()
            sfd = SFDDetector(device=device, path_to_detector=str(s3fd))
        except (RuntimeError, OSError, KeyError, ValueError) as e:
            raise FaceforgeError(f"face-alignment weights could not be loaded: {str(e).splitlines()[0]}") from None
        # Assemble face-alignment's pipeline around our loaded networks (its __init__ downloads).
        fa = FaceAlignment.__new__(FaceAlignment)
        fa.device, fa.flip_input, fa.landmarks_type = device, flip_input, LandmarksType.TWO_D
        fa.verbose, fa.dtype, fa.max_batch_size = False, torch.float32, 1
        fa.face_detector, fa.face_alignment_net = sfd, net
        self._fa = fa
        self.detect_size = detect_size
        self.max_faces = max_faces

    def detect(self, image: np.ndarray) -> list[Face]:
        import warnings

        image = _check_image(image)
        small, scale = _downscale(image, self.detect_size)
        boxes = self._fa.face_detector.detect_from_image(small.copy())
        if len(boxes) == 0:
            return []
        boxes = sorted(boxes, key=lambda b: -float(b[4]))[:self.max_faces]  # FAN costs ~0.3 s a face on CPU
        boxes = [np.concatenate([np.asarray(b[:4], dtype=np.float64) / scale, [b[4]]]) for b in boxes]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            landmarks, _, _ = self._fa.get_landmarks_from_image(image, detected_faces=boxes, return_bboxes=True)
        faces = [Face(bbox=np.asarray(b[:4], dtype=np.float32), score=float(b[4]),
                      landmarks=np.asarray(lm[:, :2], dtype=np.float32))
                 for b, lm in zip(boxes, landmarks or [])]
        return _sorted(faces)

    def landmarks_at(self, image: np.ndarray, bbox: np.ndarray, score: float = 0.0) -> Face:
        import warnings

        box = np.concatenate([np.asarray(bbox, dtype=np.float64)[:4], [score]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            landmarks, _, _ = self._fa.get_landmarks_from_image(_check_image(image), detected_faces=[box],
                                                                return_bboxes=True)
        return Face(bbox=box[:4].astype(np.float32), score=float(score),
                    landmarks=np.asarray(landmarks[0][:, :2], dtype=np.float32))


# ---------------------------------------------------------------- selection
def backend_status(fan_path: str | os.PathLike | None = None,
                   s3fd_path: str | os.PathLike | None = None) -> dict[str, str | None]:
    """``{backend: None if usable else the reason}`` without loading any model."""
    status: dict[str, str | None] = {}
    try:
        import dlib  # noqa: F401

        status["dlib"] = None if (dlib_models_dir() / "shape_predictor_68_face_landmarks.dat").is_file() \
            else "shape_predictor_68_face_landmarks.dat missing"
    except (ImportError, FaceforgeError) as e:
        status["dlib"] = str(e)
    status["face-alignment"] = face_alignment_weights(fan_path, s3fd_path)[2]
    return status


@functools.lru_cache(maxsize=8)
def _cached(backend: str, fan_path: str | None, s3fd_path: str | None, device: str, detect_size: int) -> LandmarkDetector:
    if backend == "dlib":
        return DlibDetector(detect_size=detect_size)
    return FaceAlignmentDetector(fan_path, s3fd_path, device=device, detect_size=detect_size)


def resolve_backend(backend: str = "auto", fan_path=None, s3fd_path=None) -> str:
    """The concrete backend ``"auto"`` (or a name) stands for; a bad/unavailable name raises."""
    if backend not in ("auto", *BACKENDS):
        raise FaceforgeError(f"unknown landmark backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    status = backend_status(fan_path, s3fd_path)
    if backend == "auto":
        for name in ("face-alignment", "dlib"):
            if status[name] is None:
                if name == "dlib":
                    log.info("landmarks: using dlib (face-alignment unavailable: %s)", status["face-alignment"])
                return name
        raise FaceforgeError(f"no landmark backend available: {status}")
    if status[backend] is not None:
        raise FaceforgeError(f"{backend} backend unavailable: {status[backend]}")
    return backend


def get_detector(backend: str = "auto", *, fan_path: str | None = None, s3fd_path: str | None = None,
                 device: str = "cpu", detect_size: int = DETECT_SIZE) -> LandmarkDetector:
    """A (per-process cached) detector; ``.name`` reports the backend ``"auto"`` picked."""
    name = resolve_backend(backend, fan_path, s3fd_path)
    return _cached(name, str(fan_path) if fan_path else None, str(s3fd_path) if s3fd_path else None,
                   device, int(detect_size))
