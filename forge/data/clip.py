"""One video or image file -> aligned head crops, their landmarks and landmark images, in memory.

Steps: decode (sampled) frames -> detect faces + 68 landmarks per frame -> follow one face
(the biggest in the first frame with a face, then the one overlapping it most) -> fill frames
without a face from neighbours -> optional light landmark smoothing -> stable square crops ->
resize to ``resolution`` and rasterize the landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, require_file
from core.media import is_image, read_image, read_video, video_info
from faces.landmarks import Face, LandmarkDetector, get_detector

from . import crop as crop_mod
from .rasterize import draw_landmarks_batch

IMAGE_FPS = 25.0                 # fps reported for a single image (N = 1)
FRAME_MEMORY_BUDGET = 256 << 20  # bytes of decoded frames kept between the two passes; else re-decode
MIN_TRACK_IOU = 0.2              # below this overlap with the tracked face, take the biggest face
MIN_FOLLOW_IOU = 0.5             # a tracked (not detected) fit must overlap the last face this much
MIN_FOLLOW_NCC = 0.85            # ... and look like it (normalised correlation of grey face patches): on the
                                 # sample, fast head motion and cuts fall back to detection; tracked frames
                                 # stay within 6 % of the eye distance of per-frame detection
FACE_PATCH = 24                  # px side of the grey patch compared for that


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray            # uint8 (N, S, S, 3) head crops
    landmarks: np.ndarray         # float32 (N, 68, 2) in crop pixels
    landmark_images: np.ndarray   # uint8 (N, S, S, 3) rasterized landmarks
    frame_index: np.ndarray       # int64 (N,) index of each frame in the source
    boxes: np.ndarray             # float32 (N, 4) crop square x0, y0, x1, y1 in source pixels
    scores: np.ndarray            # float32 (N,) detector score (0 where no face)
    valid: np.ndarray             # bool (N,) a face was found in this frame
    fps: float
    source_size: tuple[int, int]  # (H, W) of the source frames
    backend: str
    source: str
    times: np.ndarray | None = None            # float64 (N,) seconds
    source_landmarks: np.ndarray | None = None  # float32 (N, 68, 2) in source pixels (interpolated where invalid)

    @property
    def resolution(self) -> int:
        return int(self.frames.shape[1])

    def __len__(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class Detections:
    """Per-frame tracked detections of one file (source pixels)."""
    frame_index: np.ndarray   # int64 (N,)
    times: np.ndarray         # float64 (N,)
    landmarks: np.ndarray     # float32 (N, 68, 2), NaN where no face
    bboxes: np.ndarray        # float32 (N, 4) detector boxes, NaN where no face
    scores: np.ndarray        # float32 (N,)
    valid: np.ndarray         # bool (N,)
    n_faces: np.ndarray       # int (N,) faces detected in the frame (tracked frames: as last detected)
    tracked: np.ndarray       # bool (N,) landmarks fitted in a box carried over from the last frame
    source_size: tuple[int, int]
    fps: float


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def pick_face(faces: list[Face], previous_bbox: np.ndarray | None) -> Face | None:
    """The face overlapping the tracked one most, else the biggest (faces are biggest-first)."""
    if not faces:
        return None
    if previous_bbox is not None:
        best = max(faces, key=lambda f: _iou(f.bbox, previous_bbox))
        if _iou(best.bbox, previous_bbox) >= MIN_TRACK_IOU:
            return best
    return faces[0]


def _landmark_box(landmarks: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks.min(0), landmarks.max(0)]).astype(np.float64)  # (4,) x0, y0, x1, y1


def face_patch(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm grey ``(FACE_PATCH, FACE_PATCH)`` patch of the landmark box (zeros if flat)."""
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = _landmark_box(landmarks)
    x0, y0, x1, y1 = int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(y1, h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return np.zeros((FACE_PATCH, FACE_PATCH), np.float32)
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    g = cv2.resize(grey, (FACE_PATCH, FACE_PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)
    g -= g.mean()
    norm = float(np.linalg.norm(g))
    return g / norm if norm > 1e-3 else np.zeros_like(g)


def follow_box(face: Face, anchor: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A detector-style box for the next frame: the last face's landmark box, mapped by the
    box/landmark-box relation measured at the last real detection (``anchor``)."""
    det_box, det_lbox = anchor
    lbox = _landmark_box(face.landmarks)
    lsize, dsize = lbox[2:] - lbox[:2], np.maximum(det_lbox[2:] - det_lbox[:2], 1e-6)
    rel0, rel1 = (det_box[:2] - det_lbox[:2]) / dsize, (det_box[2:] - det_lbox[:2]) / dsize
    return np.concatenate([lbox[:2] + rel0 * lsize, lbox[:2] + rel1 * lsize])


def _frames(path: Path, every: int, max_frames: int | None):
    """Yields (index, time, image) of a video or the single image (index 0)."""
    if is_image(path):
        yield 0, 0.0, read_image(path)
        return
    for f in read_video(path, every=every, max_frames=max_frames):
        yield f.index, f.time, f.image


def detect_track(path: str | Path, detector: LandmarkDetector, every: int = 1, max_frames: int | None = None,
                 keep_frames: bool = True, detect_every: int = 1) -> tuple[Detections, list[np.ndarray] | None]:
    """First pass: detect and track one face per frame. Returns the detections and the decoded
    frames when they fit in ``FRAME_MEMORY_BUDGET`` (else None: the caller decodes again).

    ``detect_every=k > 1`` runs the face detector on every k-th frame only; in between, landmarks
    are fitted in a box carried over from the previous frame (falls back to detection when the
    fit drifts off the last face)."""
    if detect_every < 1:
        raise FaceforgeError(f"detect_every must be >= 1, got {detect_every}")
    path = Path(path)
    indices, times, lms, boxes, scores, counts, follows = [], [], [], [], [], [], []
    last_face, anchor, last_count, last_patch = None, None, 0, None
    kept: list[np.ndarray] | None = [] if keep_frames else None
    kept_bytes, size, previous = 0, None, None
    nan_lm, nan_box = np.full((68, 2), np.nan, np.float32), np.full(4, np.nan, np.float32)
    for i, (index, time, image) in enumerate(_frames(path, every, max_frames)):
        size = size or image.shape[:2]
        face, followed = None, False
        if detect_every > 1 and last_face is not None and i % detect_every:
            face = detector.landmarks_at(image, follow_box(last_face, anchor), last_face.score)
            patch = face_patch(image, face.landmarks)
            followed = (_iou(_landmark_box(face.landmarks), _landmark_box(last_face.landmarks)) >= MIN_FOLLOW_IOU
                        and float((patch * last_patch).sum()) >= MIN_FOLLOW_NCC)
            face = face if followed else None
        if followed:
            n_faces = last_count
        else:
            faces = detector.detect(image)
            n_faces = last_count = len(faces)
            face = pick_face(faces, previous)
            if face is not None:
                anchor = (face.bbox.astype(np.float64), _landmark_box(face.landmarks))
        if face is not None:
            previous = face.bbox
            if detect_every > 1:
                last_patch = face_patch(image, face.landmarks)
        last_face = face
        follows.append(followed)
        indices.append(index)
        times.append(time)
        lms.append(face.landmarks if face is not None else nan_lm)
        boxes.append(face.bbox if face is not None else nan_box)
        scores.append(face.score if face is not None else 0.0)
        counts.append(n_faces)
        if kept is not None:
            kept_bytes += image.nbytes
            if kept_bytes <= FRAME_MEMORY_BUDGET:
                kept.append(image)
            else:
                kept = None  # over budget: drop them, the caller decodes again
    if not indices:
        raise FaceforgeError(f"no frames decoded from {path.name}")
    fps = IMAGE_FPS if is_image(path) else video_info(path)["fps"]
    det = Detections(frame_index=np.asarray(indices, np.int64), times=np.asarray(times, np.float64),
                     landmarks=np.stack(lms).astype(np.float32), bboxes=np.stack(boxes).astype(np.float32),
                     scores=np.asarray(scores, np.float32), valid=np.isfinite(np.stack(lms)[:, 0, 0]),
                     n_faces=np.asarray(counts, np.int64), tracked=np.asarray(follows, bool),
                     source_size=(int(size[0]), int(size[1])), fps=float(fps))
    return det, kept


def extract_clip(path: str | Path, resolution: int = 64, backend: str = "auto", every: int = 1,
                 max_frames: int | None = None, smooth: bool = True, *, margin: float = crop_mod.DEFAULT_MARGIN,
                 detector: LandmarkDetector | None = None, detect_every: int = 1) -> Clip:
    """Aligned head crops of one video or image (N = 1) file; see :class:`Clip`.

    Raises ``FaceforgeError("no face found in ...")`` when no frame has a face."""
    return extract_clip_detailed(path, resolution, backend, every, max_frames, smooth,
                                 margin=margin, detector=detector, detect_every=detect_every)[0]


def extract_clip_detailed(path: str | Path, resolution: int = 64, backend: str = "auto", every: int = 1,
                          max_frames: int | None = None, smooth: bool = True, *,
                          margin: float = crop_mod.DEFAULT_MARGIN, detector: LandmarkDetector | None = None,
                          detect_every: int = 1) -> tuple[Clip, Detections]:
    """:func:`extract_clip` plus the raw per-frame detections (detector boxes, face counts)."""
    path = require_file(path, "input")
    if int(resolution) < 8:
        raise FaceforgeError(f"resolution must be >= 8, got {resolution}")
    detector = detector or get_detector(backend)
    det, images = detect_track(path, detector, every=every, max_frames=max_frames, detect_every=detect_every)
    if not det.valid.any():
        raise FaceforgeError(f"no face found in {path.name} ({len(det.valid)} frames checked)")
    landmarks = crop_mod.interpolate_invalid(det.landmarks, det.valid)             # (N, 68, 2) source px
    if smooth and len(landmarks) > 1:
        landmarks = crop_mod.smooth_landmarks(landmarks)
    boxes = crop_mod.track_boxes(landmarks, det.valid, margin=margin, smooth=smooth)  # (N, 4)
    if images is None:  # too many frames to keep: decode again (same sampling, same order)
        images = (image for _, _, image in _frames(path, every, max_frames))
    frames = np.stack([crop_mod.crop_square(image, box, resolution)
                       for image, box in zip(images, boxes)])                    # (N, S, S, 3)
    if len(frames) != len(boxes):
        raise FaceforgeError(f"{path.name} decoded differently on the second pass")
    crop_lm = crop_mod.to_crop_coords(landmarks, boxes, resolution)              # (N, 68, 2) crop px
    clip = Clip(frames=frames, landmarks=crop_lm, landmark_images=draw_landmarks_batch(crop_lm, resolution),
                frame_index=det.frame_index, boxes=boxes, scores=det.scores, valid=det.valid, fps=det.fps,
                source_size=det.source_size, backend=detector.name, source=str(path), times=det.times,
                source_landmarks=landmarks.astype(np.float32))
    return clip, det
