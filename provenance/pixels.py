"""The pixels of an image or video file: read for the watermark decoder and the store's perceptual hash,
or rewritten with a watermark embedded in every frame."""

from __future__ import annotations

import math
import os
from pathlib import Path

from core.common import FaceforgeError, require_file

from .store import payload_hex

MAX_VERIFY_FRAMES = 48   # frames decoded per video for the watermark (evenly spaced)


def load_frames(path: Path, max_frames: int = MAX_VERIFY_FRAMES):
    """Pixels of an image or video for the watermark decoder: ``(N, H, W, 3) uint8``."""
    import numpy as np

    from core import media

    from .c2pa_io import sniff_mime

    mime = sniff_mime(path) or ""
    if mime.startswith("image/"):
        return media.read_image(path)[None]
    info = media.video_info(path)
    n = int(info.get("n_frames") or 0)
    every = max(1, math.ceil(n / max_frames)) if n > 0 else 1
    frames = [f.image for f in media.read_video(path, every=every, max_frames=max_frames)]
    if not frames:
        raise FaceforgeError(f"{path.name}: no decodable frames")
    return np.stack(frames)


def phash(path: Path) -> str | None:
    """``imagehash.phash`` of the first frame (16 hex digits), None when its pixels cannot be read."""
    try:
        import imagehash
        from PIL import Image

        return str(imagehash.phash(Image.fromarray(load_frames(path, max_frames=1)[0])))
    except FaceforgeError:
        return None


def watermark_file(src: str | os.PathLike, dst: str | os.PathLike, payload: int, *, crf: int | None = None,
                   jpeg_quality: int = 95, method: str = "classical") -> dict:
    """Embed ``payload`` in every frame of an image or video and write ``dst`` (atomically).
    ``method``: "classical" (the tiled pattern) or "learned" (:mod:`.watermark.learned`, short id only).

    Images are written as PNG or JPEG by ``dst``'s extension; videos as H.264 MP4 (``crf=None`` is
    lossless). Returns ``{path, payload, n_frames, psnr_db}``.
    """
    import numpy as np

    from core.common import atomic_path
    from core import media

    from . import watermark
    from .c2pa_io import sniff_mime

    src, dst = require_file(src, "file to watermark"), Path(dst)
    mime = sniff_mime(src) or ""
    if mime.startswith("image/"):
        frames = media.read_image(src)[None]
    else:
        frames = np.stack([f.image for f in media.read_video(src)])
        fps = float(media.video_info(src).get("fps") or 25.0)
    marked = watermark.embed(frames, payload, watermark.WatermarkConfig(method=method))
    mse = float(np.mean((marked.astype(np.float64) - frames) ** 2))
    if mime.startswith("image/"):
        from PIL import Image

        if dst.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise FaceforgeError(f"watermarked image must be written as .png or .jpg, got {dst.name}")
        with atomic_path(dst) as tmp:
            kw = {"quality": jpeg_quality} if dst.suffix.lower() in (".jpg", ".jpeg") else {}
            Image.fromarray(marked[0]).save(tmp, format="JPEG" if kw else "PNG", **kw)
    else:
        if dst.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise FaceforgeError(f"watermarked video must be written as .mp4, got {dst.name}")
        media.write_video(dst, marked, fps=fps, crf=crf)
    return {"path": str(dst), "payload": payload_hex(payload), "n_frames": int(len(marked)),
            "psnr_db": round(10 * math.log10(255.0 ** 2 / max(mse, 1e-12)), 2)}
