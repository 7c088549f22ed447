"""Read-only access to a prepared cache (the ``forge prepare`` output), for any package.

The reading half of the layout (``forge.data.cache`` documents it in full and writes it):

```
CACHE/
  videos.parquet              one row per input file: video_id, identity, source, status, n_frames, error, ...
  videos/<video_id>.parquet   one row per kept frame: ..., landmarks (136 = 68 x (x, y), crop px), valid,
                              image (the encoded crop, JPEG or PNG)
```
:class:`PreparedReader` needs only these; ``forge.data.cache.PreparedCache`` extends it with the index,
the prepare config, landmark images and the preview. Living in ``core`` lets provenance (the learned
watermark's trainer) read a cache without importing forge. numpy, pandas, pyarrow and cv2 are imported
inside the functions that use them, so importing this module stays stdlib only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.common import FaceforgeError

VIDEOS_DIR = "videos"
CONFIG_FILE = "prepare.yaml"
VIDEOS_TABLE = "videos.parquet"
INDEX_TABLE = "index.parquet"
STATUS_OK = "ok"

if TYPE_CHECKING:
    import numpy as np


def decode_image(data: bytes) -> np.ndarray:
    """An encoded crop -> ``(S, S, 3) uint8`` RGB."""
    import cv2
    import numpy as np

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FaceforgeError("corrupt crop in the cache (re-run forge prepare)")
    return np.ascontiguousarray(bgr[..., ::-1])  # (S, S, 3) RGB


def video_paths(root: Path, video_id: str) -> tuple[Path, Path]:
    """``(frames parquet, done-record json)`` of one video."""
    base = Path(root) / VIDEOS_DIR
    return base / f"{video_id}.parquet", base / f"{video_id}.json"


class PreparedReader:
    """The videos table and the per-video frames of a prepared cache directory."""

    REQUIRED = (VIDEOS_TABLE,)   # files whose absence means "not a prepared cache"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        for name in self.REQUIRED:
            if not (self.root / name).is_file():
                raise FaceforgeError(f"{self.root} is not a prepared cache (missing {name}; run faceforge forge prepare)")
        self._videos = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, videos={len(self.video_ids())})"

    @property
    def videos(self):
        """DataFrame: video_id, identity, source, status, n_frames, error (+ n_valid, backend, fps, ...)."""
        if self._videos is None:
            import pandas as pd

            self._videos = pd.read_parquet(self.root / VIDEOS_TABLE)
        return self._videos

    def _ok(self, v, status: str | None):
        return v if status is None else v[v["status"] == status]

    def video_ids(self, status: str | None = STATUS_OK) -> list[str]:
        return sorted(self._ok(self.videos, status)["video_id"].tolist())

    def identities(self, status: str | None = STATUS_OK) -> list[str]:
        return sorted(set(self._ok(self.videos, status)["identity"].tolist()))

    def videos_of(self, identity: str, status: str | None = STATUS_OK) -> list[str]:
        v = self.videos
        return sorted(self._ok(v[v["identity"] == identity], status)["video_id"].tolist())

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

    @staticmethod
    def _landmarks(table) -> np.ndarray:
        import numpy as np

        lms = np.asarray(table.column("landmarks").to_pylist(), dtype=np.float32)
        return lms.reshape(-1, 68, 2)                                              # (N, 136) -> (N, 68, 2)

    def _decode(self, video_id: str, table, frames) -> tuple[np.ndarray, list[int]]:
        import numpy as np

        images = table.column("image").to_pylist()
        rows = range(len(images)) if frames is None else self._rows(video_id, frames, len(images))
        return np.stack([decode_image(images[i]) for i in rows]), list(rows)      # (N, S, S, 3)

    def load(self, video_id: str, frames: list[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(frames (N, S, S, 3) uint8, landmarks (N, 68, 2) float32 crop px)``; ``frames`` picks rows."""
        table = self._table(video_id, ["image", "landmarks"])
        out, rows = self._decode(video_id, table, frames)
        return out, self._landmarks(table)[rows]

    def images(self, video_id: str, frames: list[int] | np.ndarray | None = None) -> np.ndarray:
        """The crops alone ``(N, S, S, 3) uint8`` (``frames`` picks rows)."""
        return self._decode(video_id, self._table(video_id, ["image"]), frames)[0]

    def landmarks(self, video_id: str) -> np.ndarray:
        """``(N, 68, 2) float32`` crop px."""
        return self._landmarks(self._table(video_id, ["landmarks"]))

    def valid(self, video_id: str) -> np.ndarray:
        """``(N,) bool``: a face was detected in the frame (else its landmarks were interpolated)."""
        import numpy as np

        return np.asarray(self._table(video_id, ["valid"]).column("valid").to_pylist(), dtype=bool)
