"""forge.data — faces, landmarks, crops and the prepared cache (issue 3).

Public API (imported lazily, so ``import forge.data`` stays light):

- media (defined in :mod:`core.media`, also importable as ``forge.data.media``): ``read_video``, ``video_info``,
  ``read_image``, ``write_video``, ``read_frames``, ``read_media``, ``VideoFrame``
- landmarks (defined in :mod:`faces.landmarks`, also importable as ``forge.data.landmarks``): ``get_detector``,
  ``Face``, ``LandmarkDetector``
- rasterize: ``draw_landmarks``, ``draw_landmarks_batch``
- crop: ``track_boxes``, ``crop_square``
- clip: ``extract_clip``, ``Clip``
- cache: ``PreparedCache``
- prepare: ``prepare``, ``PrepareConfig``
"""

from __future__ import annotations

from core.common import lazy_exports

_EXPORTS = {
    "read_video": "core.media", "video_info": "core.media", "read_image": "core.media",   # media I/O is in core
    "write_video": "core.media", "VideoFrame": "core.media", "read_frames": "core.media", "read_media": "core.media",
    "get_detector": "faces.landmarks", "Face": "faces.landmarks", "LandmarkDetector": "faces.landmarks",
    "draw_landmarks": ".rasterize", "draw_landmarks_batch": ".rasterize",
    "track_boxes": ".crop", "crop_square": ".crop",
    "extract_clip": ".clip", "Clip": ".clip",
    "PreparedCache": ".cache",
    "prepare": ".prepare", "PrepareConfig": ".prepare",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("forge.data", _EXPORTS)
