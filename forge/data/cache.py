"""The prepared cache (``forge prepare`` output) — layout, per-video writer, and reader.

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

VIDEOS_DIR = "videos"
CONFIG_FILE = "prepare.yaml"
VIDEOS_TABLE = "videos.parquet"
INDEX_TABLE = "index.parquet"
PREVIEW_FILE = "preview.png"
PREVIEW_MAX_VIDEOS = 16
STATUS_OK, STATUS_NO_FACE, STATUS_FEW_FACES, STATUS_ERROR = "ok", "no_face", "few_faces", "error"

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


def decode_image(data: bytes) -> np.ndarray:
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FaceforgeError("corrupt crop in the cache (re-run forge prepare)")
    return np.ascontiguousarray(bgr[..., ::-1])  # (S, S, 3) RGB


# ---------------------------------------------------------------- per-video files
def video_paths(root: Path, video_id: str) -> tuple[Path, Path]:
    base = Path(root) / VIDEOS_DIR
    return base / f"{video_id}.parquet", base / f"{video_id}.json"


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
class PreparedCache:
    """Read access to a ``forge prepare`` cache directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        for name in (CONFIG_FILE, VIDEOS_TABLE, INDEX_TABLE):
            if not (self.root / name).is_file():
                raise FaceforgeError(f"{self.root} is not a prepared cache (missing {name}; run faceforge forge prepare)")
        self._index = None
        self._videos = None
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

    @property
    def videos(self):
        """DataFrame: video_id, identity, source, status, n_frames, error (+ n_valid, backend, fps, ...)."""
        if self._videos is None:
            import pandas as pd

            self._videos = pd.read_parquet(self.root / VIDEOS_TABLE)
        return self._videos

    def video_ids(self, status: str | None = "ok") -> list[str]:
        v = self.videos
        if status is not None:
            v = v[v["status"] == status]
        return sorted(v["video_id"].tolist())

    def identities(self, status: str | None = "ok") -> list[str]:
        v = self.videos
        if status is not None:
            v = v[v["status"] == status]
        return sorted(set(v["identity"].tolist()))

    def videos_of(self, identity: str, status: str | None = "ok") -> list[str]:
        v = self.videos
        v = v[v["identity"] == identity]
        if status is not None:
            v = v[v["status"] == status]
        return sorted(v["video_id"].tolist())

    def _table(self, video_id: str, columns: list[str]):
        import pyarrow.parquet as pq

        path, _ = video_paths(self.root, video_id)
        if not path.is_file():
            raise FaceforgeError(f"video {video_id!r} has no frames in cache {self.root}")
        return pq.read_table(path, columns=columns)

    @staticmethod
    def _rows(video_id: str, frames, n: int) -> list[int]:
        rows = [int(i) for i in frames]
        bad = [i for i in rows if not -n <= i < n]
        if bad:
            raise FaceforgeError(f"video {video_id!r} has {n} frames in the cache; no frame {bad[0]}")
        return rows

    def load(self, video_id: str, frames: list[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(frames (N, S, S, 3) uint8, landmarks (N, 68, 2) float32 crop px)``; ``frames`` picks rows."""
        table = self._table(video_id, ["image", "landmarks"])
        images = table.column("image").to_pylist()
        lms = np.asarray(table.column("landmarks").to_pylist(), dtype=np.float32).reshape(-1, 68, 2)
        rows = range(len(images)) if frames is None else self._rows(video_id, frames, len(images))
        out = np.stack([decode_image(images[i]) for i in rows])                  # (N, S, S, 3)
        return out, lms[list(rows)]

    def landmarks(self, video_id: str) -> np.ndarray:
        table = self._table(video_id, ["landmarks"])
        return np.asarray(table.column("landmarks").to_pylist(), dtype=np.float32).reshape(-1, 68, 2)

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
