"""The prepared cache (``forge prepare`` output) — layout, per-video writer, and reader
(:class:`PreparedCache`, over the read-only ``core.prepared.PreparedReader`` that other packages use).

```
CACHE/
  prepare.yaml            PrepareConfig used (resolution, backend, sampling, margin, format)
  videos.parquet          one row per input file: video_id, identity, source, status, n_frames, error, ...
  index.parquet           one row per kept frame (no pixels): identity, video_id, frame, frame_index, time,
                          crop_box (4), bbox (4, detector), landmarks (136 = 68 x (x, y), crop px),
                          source_landmarks (136, source px), score, valid, n_faces, flags, backend
  videos/<video_id>.parquet   the same rows plus ``image``: the encoded crop (JPEG q95 or PNG)
  videos/<video_id>.json      the video's record; written last, so its presence means "done"
  preview.png             contact sheet: a crop with its landmarks per video (first 16)
  report.json             the last run's summary
```
Per-video files are written atomically; ``index.parquet`` and ``videos.parquet`` are rebuilt from
them at the end of every run, so an interrupted run leaves no finished-looking partial video.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_path
from core.prepared import (CONFIG_FILE, INDEX_TABLE, STATUS_OK, VIDEOS_DIR, VIDEOS_TABLE,  # noqa: F401 (re-exported)
                           PreparedReader, decode_image, video_paths)

PREVIEW_FILE = "preview.png"
PREVIEW_MAX_VIDEOS = 16
STATUS_NO_FACE, STATUS_FEW_FACES, STATUS_ERROR = "no_face", "few_faces", "error"

# index ``flags`` bits
FLAG_NO_FACE = 1        # no face detected: landmarks/box interpolated from neighbouring frames
FLAG_MULTI_FACE = 2     # more than one face detected (the tracked one was kept)
FLAG_CROP_OUTSIDE = 4   # the crop square leaves the source frame (black padding)
FLAG_TRACKED = 8        # landmarks fitted in a box carried from the previous frame (detect_every > 1)


# ---------------------------------------------------------------- image codec
def encode_image(image: np.ndarray, fmt: str = "jpeg", quality: int = 95) -> bytes:
    import cv2

    bgr = np.ascontiguousarray(image[..., ::-1])
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    else:
        raise FaceforgeError(f"unknown image format {fmt!r}; choose jpeg or png")
    if not ok:
        raise FaceforgeError(f"could not encode a {image.shape} crop as {fmt}")
    return buf.tobytes()



# ---------------------------------------------------------------- per-video files
def frame_schema():
    """Arrow schema of a per-video frame table (float32 landmarks keep the cache small)."""
    import pyarrow as pa

    return pa.schema([
        ("identity", pa.string()), ("video_id", pa.string()),
        ("frame", pa.int32()),                          # row position in the video's cache
        ("frame_index", pa.int64()),                    # frame number in the source
        ("time", pa.float64()),                         # seconds
        ("crop_box", pa.list_(pa.float32(), 4)),        # x0, y0, x1, y1 source px (square)
        ("bbox", pa.list_(pa.float32(), 4)),            # detector box, NaN where no face
        ("landmarks", pa.list_(pa.float32(), 136)),     # 68 x (x, y) crop px
        ("source_landmarks", pa.list_(pa.float32(), 136)),  # 68 x (x, y) source px
        ("score", pa.float32()), ("valid", pa.bool_()), ("n_faces", pa.int16()), ("flags", pa.int16()),
        ("backend", pa.string()),
        ("image", pa.binary()),                         # encoded crop (JPEG / PNG)
    ])


def write_video_frames(root: Path, video_id: str, rows: dict[str, list]) -> Path:
    """Write one video's frame table (``rows``: column -> values, includes ``image`` bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, _ = video_paths(root, video_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(rows, schema=frame_schema())
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def write_video_record(root: Path, video_id: str, record: dict) -> None:
    from core.common import write_json_atomic

    write_json_atomic(video_paths(root, video_id)[1], record)


def read_video_record(root: Path, video_id: str) -> dict | None:
    path = video_paths(root, video_id)[1]
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------- reader
class PreparedCache(PreparedReader):
    """Read access to a ``forge prepare`` cache directory: :class:`core.prepared.PreparedReader`
    (``videos``, ``video_ids``, ``identities``, ``videos_of``, ``load``, ``images``, ``landmarks``,
    ``valid``) plus the frame index, the prepare config, landmark images and the preview."""

    REQUIRED = (CONFIG_FILE, VIDEOS_TABLE, INDEX_TABLE)

    def __init__(self, root: str | Path):
        super().__init__(root)
        self._index = None
        self._config = None

    def __repr__(self) -> str:
        return f"PreparedCache({str(self.root)!r}, resolution={self.resolution}, videos={len(self.video_ids())})"

    @property
    def config(self):
        if self._config is None:
            from core.common import load_config
            from forge.data.prepare import PrepareConfig

            self._config = load_config(PrepareConfig, self.root / CONFIG_FILE)
        return self._config

    @property
    def resolution(self) -> int:
        return int(self.config.resolution)

    @property
    def index(self):
        """Frames DataFrame (no pixels), sorted by video_id, frame."""
        if self._index is None:
            import pandas as pd

            self._index = pd.read_parquet(self.root / INDEX_TABLE)
        return self._index

    def landmark_images(self, video_id: str, frames: list[int] | np.ndarray | None = None) -> np.ndarray:
        """The rasterized landmarks ``(N, S, S, 3) uint8`` (drawn on demand, not stored)."""
        from forge.data.rasterize import draw_landmarks_batch

        lms = self.landmarks(video_id)
        if frames is not None:
            lms = lms[self._rows(video_id, frames, len(lms))]
        return draw_landmarks_batch(lms, self.resolution)

    def n_frames(self, video_id: str) -> int:
        return int((self.index["video_id"] == video_id).sum())

    def preview(self, max_videos: int = PREVIEW_MAX_VIDEOS) -> np.ndarray:
        """A contact sheet ``(rows*S, 2*cols*S, 3) uint8``: per ok video its middle crop with the
        landmark image blended over it, next to the landmark image alone."""
        ids = self.video_ids()[:max_videos]
        if not ids:
            raise FaceforgeError(f"cache {self.root} has no prepared video to preview")
        s = self.resolution
        tiles = []
        for vid in ids:
            mid = self.n_frames(vid) // 2
            frame, _ = self.load(vid, frames=[mid])
            limg = self.landmark_images(vid, frames=[mid])[0]
            overlay = np.where(limg.any(-1, keepdims=True), limg, frame[0])         # (S, S, 3)
            tiles.append(np.concatenate([overlay, limg], axis=1))                   # (S, 2S, 3)
        cols = max(1, int(np.ceil(np.sqrt(len(tiles) / 2))))                      # about square
        rows = -(-len(tiles) // cols)
        sheet = np.zeros((rows * s, cols * 2 * s, 3), np.uint8)
        for i, tile in enumerate(tiles):
            r, c = divmod(i, cols)
            sheet[r * s:(r + 1) * s, c * 2 * s:(c + 1) * 2 * s] = tile
        return sheet

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
