"""Writing and reading item files: lossless H.264 (raw), H.264 CRF 23/40 (c23/c40), and the
JPEG-per-frame variant (each frame a baseline JPEG at the spec's quality, muxed into an MJPEG QuickTime file so
one file carries one C2PA manifest). All writes are atomic.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_path
from forge.corpus.spec import CRF

EXTENSION = {"raw": ".mp4", "c23": ".mp4", "c40": ".mp4", "jpeg": ".mov"}
FPS_DENOMINATOR = 1000  # fps kept to 1/1000 in the container time base


def variant_filename(compression: str) -> str:
    return f"{compression}{EXTENSION[compression]}"


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """(H, W, 3) uint8 -> baseline JPEG bytes (4:2:0, as cameras and web pipelines write)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def write_mjpeg(path: str | Path, frames: np.ndarray, fps: float, quality: int) -> None:
    """(N, H, W, 3) uint8 -> QuickTime (MJPEG) of JPEG frames encoded by Pillow at ``quality`` (no re-encode by FFmpeg)."""
    import av

    frames = _check_frames(frames)
    rate = Fraction(round(fps * FPS_DENOMINATOR), FPS_DENOMINATOR)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mov") as out:
            stream = out.add_stream("mjpeg", rate=rate)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuvj420p"
            stream.time_base = 1 / rate
            for i, frame in enumerate(frames):
                packet = av.Packet(encode_jpeg(frame, quality))
                packet.stream = stream
                packet.pts = packet.dts = i
                packet.time_base = stream.time_base
                packet.is_keyframe = True
                out.mux(packet)


def write_variant(path: str | Path, frames: np.ndarray, fps: float, compression: str,
                  jpeg_quality: int = 75) -> None:
    """Write ``frames`` (N, H, W, 3) as the given compression variant at ``path`` (atomic)."""
    from core.media import write_video

    frames = _check_frames(frames)
    if compression == "raw":
        write_video(path, frames, fps, crf=None)  # lossless (crf 0, yuv444p)
    elif compression in CRF:
        write_video(path, frames, fps, crf=CRF[compression])
    elif compression == "jpeg":
        write_mjpeg(path, frames, fps, jpeg_quality)
    else:
        raise FaceforgeError(f"unknown compression {compression!r}")


def read_frames(path: str | Path) -> np.ndarray:
    """Decode every frame of an item file (any variant) -> (N, H, W, 3) uint8."""
    from core.media import read_video

    frames = [f.image for f in read_video(path)]
    if not frames:
        raise FaceforgeError(f"no frames decoded from {path}")
    return np.stack(frames)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise FaceforgeError(f"frames must be (N, H, W, 3) uint8, got {frames.dtype} {frames.shape}")
    return np.ascontiguousarray(frames)
