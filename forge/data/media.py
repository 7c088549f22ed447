"""Media I/O lives in :mod:`core.media` (every package reads and writes media, so it is ground-level);
this module re-exports it so ``forge.data.media`` keeps working."""

from core.media import (  # noqa: F401
    IMAGE_EXTS, MAX_FPS_DENOMINATOR, VIDEO_EXTS, X264_OPTIONS, VideoFrame, is_image, is_video, read_frames,
    read_image, read_media, read_video, video_info, write_video,
)
