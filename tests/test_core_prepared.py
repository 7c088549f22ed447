"""core.prepared.PreparedReader: the read-only prepared-cache reader any package may use (tiny fixture)."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from core.prepared import PreparedReader


def _png(image: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))[1].tobytes()      # RGB -> BGR PNG


@pytest.fixture()
def cache(tmp_path):
    """Two ok videos of person ``a`` (3 and 2 frames, 8 px, lossless), one of ``b`` with status error
    (no frame file). Frame i of video v is filled with 10 * (v + 1) + i; landmarks hold 100 v + i."""
    import pandas as pd

    (tmp_path / "videos").mkdir()
    frames = {}
    for v, (vid, n) in enumerate((("a1", 3), ("a2", 2))):
        imgs = [np.full((8, 8, 3), 10 * (v + 1) + i, np.uint8) for i in range(n)]
        imgs[0][0, 0] = (255, 0, 0)                                          # red top-left: checks RGB order
        frames[vid] = np.stack(imgs)
        pd.DataFrame({"valid": [True, False, True][:n], "image": [_png(x) for x in imgs],
                      "landmarks": [np.full(136, 100 * v + i, np.float32) for i in range(n)]}
                     ).to_parquet(tmp_path / "videos" / f"{vid}.parquet")
    pd.DataFrame({"video_id": ["a1", "a2", "b1"], "identity": ["a", "a", "b"],
                  "status": ["ok", "ok", "error"]}).to_parquet(tmp_path / "videos.parquet")
    return tmp_path, frames


def test_videos_table_queries(cache):
    root, _ = cache
    r = PreparedReader(root)
    assert r.video_ids() == ["a1", "a2"] and r.video_ids(None) == ["a1", "a2", "b1"]
    assert r.identities() == ["a"] and r.identities(None) == ["a", "b"]
    assert r.videos_of("a") == ["a1", "a2"] and r.videos_of("b") == [] and r.videos_of("b", None) == ["b1"]
    assert repr(r).endswith("videos=2)")


def test_load_images_landmarks_valid(cache):
    root, frames = cache
    r = PreparedReader(root)
    imgs, lms = r.load("a1")
    assert imgs.dtype == np.uint8 and imgs.shape == (3, 8, 8, 3) and np.array_equal(imgs, frames["a1"])
    assert tuple(imgs[0, 0, 0]) == (255, 0, 0) and imgs[2, 4, 4, 1] == 12
    assert lms.dtype == np.float32 and lms.shape == (3, 68, 2) and lms[:, 0, 0].tolist() == [0, 1, 2]
    imgs, lms = r.load("a2", frames=[-1, 0])                                   # rows picked, negative ok
    assert imgs[:, 4, 4, 0].tolist() == [21, 20] and lms[:, 5, 1].tolist() == [101, 100]
    assert np.array_equal(r.images("a1", np.array([2])), frames["a1"][2:])
    assert r.landmarks("a2")[:, 67, 1].tolist() == [100, 101]
    assert r.valid("a1").tolist() == [True, False, True] and r.valid("a1").dtype == bool


def test_errors(cache, tmp_path_factory):
    root, _ = cache
    r = PreparedReader(root)
    with pytest.raises(FaceforgeError, match="no frame 3"):
        r.load("a1", frames=[3])
    with pytest.raises(FaceforgeError, match="has no frames"):
        r.load("b1")                                                           # error video: no frame file
    with pytest.raises(FaceforgeError, match="not a prepared cache"):
        PreparedReader(tmp_path_factory.mktemp("empty"))


def test_prepared_cache_extends_the_core_reader():
    from forge.data.cache import PreparedCache, decode_image, video_paths
    from core import prepared

    assert issubclass(PreparedCache, PreparedReader)
    assert decode_image is prepared.decode_image and video_paths is prepared.video_paths


# core.prepared stays stdlib-only at import and the watermark trainer loads no forge: tests/test_layers.py
