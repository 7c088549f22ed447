"""Pixels for the dashboard: frames of an item decoded for display, thumbnails and browser-playable MP4s
made once into a cache folder, landmarks drawn over a frame. Files are found through ``dashboard.data``
(never outside the corpus root)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_path, safe_name
from dashboard.data import corpus_file, load_landmarks

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".mjpeg", ".mjpg")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MIN_PLAY_SIDE = 256          # face crops are upscaled to at least this for the browser player
PLAY_CRF = 23                # H.264 quality of the playback copies (display only)


def read_frames(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """Frames of an item for display: a video file (PyAV), a folder of JPEG/PNG frames, or one image.
    -> uint8 (N, H, W, 3)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FaceforgeError(f"no image frames in folder {path}")
        return np.stack([_read_image(f) for f in files[:max_frames]])
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _read_image(path)[None]
    return _decode_video(path, max_frames)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise FaceforgeError(f"cannot read image {path.name}: {e}") from None


def _decode_video(path: Path, max_frames: int | None) -> np.ndarray:
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, IndexError) as e:
        raise FaceforgeError(f"cannot decode video {path.name}: {e}") from None
    if not frames:
        raise FaceforgeError(f"video {path.name} has no frames")
    return np.stack(frames)  # (N, H, W, 3)


def video_fps(path: str | Path, default: float = 25.0) -> float:
    import av

    path = Path(path)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return default
    try:
        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate
            return float(rate) if rate else default
    except (av.error.FFmpegError, IndexError):
        return default


def encode_mp4(path: str | Path, frames: np.ndarray, fps: float, crf: int = PLAY_CRF) -> Path:
    """Browser-playable H.264 (yuv420p, even sides), written atomically. frames (N, H, W, 3) uint8."""
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    n, h, w, _ = frames.shape
    frames = frames[:, : h - h % 2, : w - w % 2]  # yuv420p needs even sides
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w") as out:
            stream = out.add_stream("libx264", rate=max(1, int(round(fps))))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast", "movflags": "+faststart"}
            for img in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")))
            out.mux(stream.encode())
    return path


def _cache_key(row: dict) -> str:
    tag = str(row.get("sha256") or row.get("path") or "")
    return f"{safe_name(str(row['item_id']), 60)}_{hashlib.sha256(tag.encode()).hexdigest()[:10]}"


def thumbnail(corpus: str | Path, row: dict, cache: str | Path, size: int = 128) -> Path:
    """A JPEG thumbnail of the item's first frame, made once into ``cache/thumbs``."""
    from PIL import Image

    out = Path(cache) / "thumbs" / f"{_cache_key(row)}_{size}.jpg"
    if out.is_file():
        return out
    frame = read_frames(corpus_file(corpus, row.get("path"), "item"), max_frames=1)[0]
    im = Image.fromarray(frame)
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    with atomic_path(out) as tmp:
        im.save(tmp, format="JPEG", quality=85)
    return out


def playable_video(corpus: str | Path, row: dict, cache: str | Path, max_frames: int | None = None,
                   landmarks: bool = False) -> Path:
    """An H.264/yuv420p copy of the item a browser can play (corpus items may be lossless 4:4:4 or
    JPEG folders), upscaled to at least ``MIN_PLAY_SIDE``, with the item's landmarks drawn when
    ``landmarks`` (and it has them); made once into ``cache/play``."""
    import cv2

    lms = load_landmarks(corpus, row) if landmarks else None
    out = Path(cache) / "play" / f"{_cache_key(row)}{'_lm' if lms is not None else ''}.mp4"
    if out.is_file():
        return out
    src = corpus_file(corpus, row.get("path"), "item")
    frames = read_frames(src, max_frames=max_frames)  # (N, H, W, 3)
    h, w = frames.shape[1:3]
    scale = max(1.0, MIN_PLAY_SIDE / min(h, w))
    if scale > 1:
        size = (int(round(w * scale)) // 2 * 2, int(round(h * scale)) // 2 * 2)
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames])
    if lms is not None:
        k = frames.shape[1] / h
        frames = np.stack([overlay_landmarks(f, lms[min(i, len(lms) - 1)] * k) for i, f in enumerate(frames)])
    fps = float(row.get("fps") or 0) or video_fps(src)
    return encode_mp4(out, frames, fps)


# the 68-point facial parts (iBUG): jaw, brows, nose, eyes, lips; closed parts loop back
_PARTS = ((0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False),
          (36, 42, True), (42, 48, True), (48, 60, True), (60, 68, True))


def overlay_landmarks(frame: np.ndarray, landmarks: np.ndarray, color=(0, 255, 0)) -> np.ndarray:
    """The frame (H, W, 3) with its 68 landmarks (68, 2) drawn as lines per facial part."""
    import cv2

    img = np.ascontiguousarray(frame.copy())
    thickness = max(1, round(min(img.shape[:2]) / 128))
    for start, end, closed in _PARTS:
        pts = np.round(landmarks[start:end]).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], closed, color, thickness, lineType=cv2.LINE_AA)
    return img


def upscale(frame: np.ndarray, min_side: int = MIN_PLAY_SIDE) -> np.ndarray:
    """Nearest-neighbour upscale of a small face crop for display (keeps pixels honest)."""
    h, w = frame.shape[:2]
    k = max(1, math.ceil(min_side / min(h, w)))
    return np.repeat(np.repeat(frame, k, axis=0), k, axis=1) if k > 1 else frame


def frame_view(frame: np.ndarray, landmarks: np.ndarray | None = None, min_side: int = MIN_PLAY_SIDE) -> np.ndarray:
    """A frame (H, W, 3) upscaled for display, with its landmarks (68, 2) drawn when given."""
    big = upscale(frame, min_side)
    if landmarks is not None:
        big = overlay_landmarks(big, landmarks * (big.shape[0] / frame.shape[0]))
    return big
