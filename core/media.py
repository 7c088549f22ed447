"""Media I/O: decode videos with PyAV, images with Pillow, encode H.264 clips.

Every image handed out is RGB ``uint8 (H, W, 3)`` in display orientation (rotation side data,
the legacy ``rotate`` tag and EXIF orientation are applied). Unreadable input raises
:class:`~core.common.FaceforgeError` with one line naming the file and the reason.

In ``core`` because every package reads or writes media (forge, detect, provenance's watermark), so none
imports forge for it; ``forge.data.media`` re-exports it under its old name. numpy, PyAV and Pillow are
imported inside the functions that use them, so importing this module stays stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from core.common import FaceforgeError, atomic_path, get_logger, require_file

if TYPE_CHECKING:
    import numpy as np

log = get_logger("media")

VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
MAX_FPS_DENOMINATOR = 1001  # NTSC-style rates (30000/1001) stay exact
# x264 settings fixed so that the same frames give the same bytes on any machine (its automatic thread
# count follows the CPUs, and frame threads change the output): resumed corpora equal uninterrupted ones.
X264_OPTIONS = {"preset": "medium", "threads": "1"}


@dataclass(frozen=True)
class VideoFrame:
    index: int          # position in the decoded stream (0-based, before ``every`` sampling)
    time: float         # presentation time in seconds from the stream start (VFR-safe)
    image: np.ndarray   # uint8 (H, W, 3) RGB, display orientation


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


# ---------------------------------------------------------------- video decode
def _open(path: Path):
    import av

    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise FaceforgeError(f"cannot read video {path.name}: {_reason(e)}") from None
    if not container.streams.video:
        container.close()
        raise FaceforgeError(f"cannot read video {path.name}: no video stream")
    if container.streams.video[0].codec_context is None:   # a damaged sample description: no decoder
        container.close()
        raise FaceforgeError(f"cannot read video {path.name}: unknown video codec")
    return container


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text.replace(str(Path.cwd()) + "/", "")


def _stream_rotation(stream) -> int:
    """Counter-clockwise display rotation in degrees from the legacy ``rotate`` tag (clockwise)."""
    tag = (stream.metadata or {}).get("rotate")
    try:
        return -int(float(tag)) if tag is not None else 0
    except ValueError:
        return 0


def _apply_rotation(image: np.ndarray, ccw_degrees: int) -> np.ndarray:
    """Rotate (H, W, 3) counter-clockwise by a multiple of 90 degrees (others are rounded)."""
    import numpy as np

    k = int(round(ccw_degrees / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, k=k)) if k else image


def _fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def video_info(path: str | Path) -> dict:
    """``dict(fps, n_frames, width, height, rotation, duration)``; width/height after rotation.

    ``n_frames`` comes from the container when it records it, else ``round(duration * fps)``.
    """
    path = require_file(path, "video")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = _fps(stream)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000.0
        else:
            duration = 0.0
        n_frames = int(stream.frames) if stream.frames else int(round(duration * fps))
        rotation = _stream_rotation(stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        try:  # the display matrix lives on frames in recent FFmpeg; peek at the first one
            first = next(container.decode(stream))
            rotation = first.rotation or rotation
        except StopIteration:
            raise FaceforgeError(f"cannot read video {path.name}: no decodable frames") from None
        except Exception as e:  # av.FFmpegError subclasses; keep one line
            raise FaceforgeError(f"cannot read video {path.name}: {_reason(e)}") from None
        if int(round(rotation / 90.0)) % 2:
            width, height = height, width
        if width <= 0 or height <= 0:
            raise FaceforgeError(f"cannot read video {path.name}: zero-sized frames")
        return dict(fps=fps, n_frames=n_frames, width=width, height=height,
                    rotation=int(rotation), duration=duration)
    finally:
        container.close()


def read_video(path: str | Path, every: int = 1, max_frames: int | None = None) -> Iterator[VideoFrame]:
    """Decode frames 0, every, 2*every, ... (at most ``max_frames`` of them) as RGB uint8.

    Times come from each frame's presentation timestamp, so variable frame rate is kept.
    A decode error mid-stream raises FaceforgeError (callers that batch over files record it).
    """
    import av

    if every < 1:
        raise FaceforgeError(f"every must be >= 1, got {every}")
    if max_frames is not None and max_frames < 1:
        raise FaceforgeError(f"max_frames must be >= 1, got {max_frames}")
    path = require_file(path, "video")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tag_rotation = _stream_rotation(stream)
        fps = _fps(stream)
        start = stream.start_time or 0
        index = yielded = 0
        try:
            for frame in container.decode(stream):
                if frame.is_corrupt:
                    log.debug("%s: skipping corrupt frame %d", path.name, index)
                    index += 1
                    continue
                if index % every == 0:
                    if frame.pts is not None and stream.time_base is not None:
                        time = float((frame.pts - start) * stream.time_base)
                    else:
                        time = index / fps
                    image = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
                    image = _apply_rotation(image, frame.rotation or tag_rotation)
                    yield VideoFrame(index=index, time=time, image=image)
                    yielded += 1
                    if max_frames is not None and yielded >= max_frames:
                        return
                index += 1
        except av.FFmpegError as e:
            raise FaceforgeError(f"cannot decode video {path.name} after {index} frames: {_reason(e)}") from None
        if index == 0:
            raise FaceforgeError(f"cannot read video {path.name}: no decodable frames")
    finally:
        container.close()


# ---------------------------------------------------------------- video encode
def write_video(path: str | Path, frames: np.ndarray, fps: float, crf: int | None = None) -> Path:
    """Encode ``frames (N, H, W, 3) uint8`` RGB as H.264 MP4, atomically.

    ``crf=None`` is lossless (x264 crf 0, yuv444p, any size). A ``crf`` gives yuv420p (players'
    format), which needs even sizes: odd frames are padded by one replicated row/column.
    Deterministic: the same frames and settings give the same bytes (:data:`X264_OPTIONS`).
    """
    import av
    import numpy as np

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise FaceforgeError(f"write_video wants frames (N, H, W, 3), got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise FaceforgeError(f"write_video wants uint8 frames, got {frames.dtype}")
    if not (fps and math.isfinite(fps) and fps > 0):
        raise FaceforgeError(f"write_video wants a positive fps, got {fps}")
    if crf is not None and not 0 <= int(crf) <= 51:
        raise FaceforgeError(f"crf must be in 0..51, got {crf}")
    if crf is not None and (frames.shape[1] % 2 or frames.shape[2] % 2):
        pad = ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0))
        frames = np.pad(frames, pad, mode="edge")  # (N, H', W', 3) with H', W' even
    n, h, w, _ = frames.shape
    rate = Fraction(fps).limit_denominator(MAX_FPS_DENOMINATOR)
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height = w, h
            stream.time_base = 1 / rate
            stream.pix_fmt = "yuv444p" if crf is None else "yuv420p"
            stream.options = {**X264_OPTIONS, "crf": str(0 if crf is None else int(crf))}
            for i in range(n):
                frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path


def read_frames(path: str | Path, every: int = 1, max_frames: int | None = None) -> np.ndarray:
    """All sampled frames of a video as one array ``(N, H, W, 3) uint8``."""
    import numpy as np

    frames = [f.image for f in read_video(path, every=every, max_frames=max_frames)]
    return np.stack(frames)


def h264_round_trip(frames: np.ndarray, crf: int, fps: float = 25.0) -> np.ndarray:
    """``(N, H, W, 3) uint8`` -> the same frames after an H.264 (yuv420p) round trip at ``crf`` through a
    temporary file, padding dropped: what a re-encoded copy looks like (deterministic, :func:`write_video`)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        back = read_frames(write_video(Path(d) / "clip.mp4", frames, fps, crf=int(crf)))
    return back[:, :frames.shape[1], :frames.shape[2]]


# ---------------------------------------------------------------- images
def centre_square(img: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` -> its centre square resized (area) to ``(size, size, 3)``: the 128 px "faces" of
    the watermark benchmark and of the watermark front end's selection clips."""
    import cv2

    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image as RGB ``uint8 (H, W, 3)``: EXIF orientation applied, grey/palette expanded,
    alpha composited over white, 16-bit and float samples scaled to 8 bits."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = require_file(path, "image")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb8(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise FaceforgeError(f"cannot read image {path.name}: {_reason(e)}") from None


def _to_rgb8(img) -> np.ndarray:
    import numpy as np
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if (mode.startswith("I;16") or arr.max(initial=0) > 255) else 255.0
        if mode == "F" and arr.max(initial=0) <= 1.0:
            top = 1.0
        grey = np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8)  # (H, W)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def read_media(path: str | Path, every: int = 1, max_frames: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames ``(N, H, W, 3)``, their source indices ``(N,)`` and fps of a video or image (N=1)."""
    import numpy as np

    path = Path(path)
    if is_image(path):
        return read_image(path)[None], np.zeros(1, dtype=np.int64), 0.0
    frames, indices = [], []
    for f in read_video(path, every=every, max_frames=max_frames):
        frames.append(f.image)
        indices.append(f.index)
    return np.stack(frames), np.asarray(indices, dtype=np.int64), video_info(path)["fps"]
