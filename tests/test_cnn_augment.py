"""Training augmentation of the frame CNNs (``extra.augment_scale`` / ``extra.augment_crf``, shared with the
temporal detector through ``detect.detectors.base.augmented_items``): which copies are made, in which
order, with which pixels, and that scoring is unchanged."""

from __future__ import annotations

import types

import numpy as np

from detect.config import DetectConfig
from detect.data import Item
from detect.detectors import base
from detect.detectors.base import augmented_items, down_up
from detect.detectors.cnn import DCTCNN

S = 16          # crop side
N = 4           # frames per clip


def _items() -> list[Item]:
    """Two raw items (a fake, a real), one c23 real: only the raw ones are augmented."""
    rng = np.random.default_rng(0)
    clip = lambda: rng.integers(0, 255, (N, S, S, 3), dtype=np.uint8)  # noqa: E731
    return [Item("f", 1, clip(), None, {"compression": "raw"}), Item("r", 0, clip(), None, {"compression": "raw"}),
            Item("c", 0, clip(), None, {"compression": "c23"})]


def _halve(frames, crf, fps=25.0):
    return frames // 2                      # stands in for the codec: cheap and exact


def test_augmented_items_order_values_and_laziness(monkeypatch):
    monkeypatch.setattr(base, "reencode", _halve)
    items = _items()
    gen = augmented_items(items, {"augment_scale": [0.5], "augment_crf": [35]})
    assert isinstance(gen, types.GeneratorType)                       # made one at a time
    aug = list(gen)
    assert [it.item_id for it in aug] == ["f@x0.5", "r@x0.5", "f@crf35", "r@crf35", "f@x0.5@crf35", "r@x0.5@crf35"]
    assert [it.label for it in aug] == [1, 0, 1, 0, 1, 0]
    np.testing.assert_array_equal(aug[1].frames, down_up(items[1].frames, 0.5))
    np.testing.assert_array_equal(aug[2].frames, items[0].frames // 2)
    np.testing.assert_array_equal(aug[5].frames, down_up(items[1].frames, 0.5) // 2)
    assert aug[5].meta == {"compression": "crf35", "augment_scale": 0.5}
    assert list(augmented_items(items, {})) == []


def test_dct_cnn_training_frames_add_augmented_rows(monkeypatch):
    monkeypatch.setattr(base, "reencode", _halve)
    items = _items()
    plain = DCTCNN(DetectConfig(detector="dct_cnn", image_size=16, frames_per_item=2))
    aug = DCTCNN(DetectConfig(detector="dct_cnn", image_size=16, frames_per_item=2,
                              extra={"augment_scale": [0.5, 0.7], "augment_crf": [30]}))
    x0, y0 = plain._training_frames(items)
    x1, y1 = aug._training_frames(items)
    # 3 items; + 2 raw x 2 factors resampled; + (2 raw + 4 resampled) re-encoded at one CRF: 13 items of 2 frames
    assert x0.shape == (6, S, S, 3) and x1.shape == (26, S, S, 3) and x1.dtype == np.uint8
    np.testing.assert_array_equal(x1[:6], x0)
    assert list(y1) == list(y0) + [1, 1, 0, 0] * 2 + [1, 1, 0, 0] * 3
    first = [0, N - 1]                                                           # even_indices(4, 2)
    np.testing.assert_array_equal(x1[8:10], down_up(items[1].frames, 0.5)[first])     # r@x0.5
    np.testing.assert_array_equal(x1[16:18], items[1].frames[first] // 2)            # r@crf30
    np.testing.assert_array_equal(x1[24:26], down_up(items[1].frames, 0.7)[first] // 2)  # r@x0.7@crf30


def test_augmentation_leaves_scoring_unchanged():
    items = _items()
    plain = DCTCNN(DetectConfig(detector="dct_cnn", image_size=16))
    aug = DCTCNN(DetectConfig(detector="dct_cnn", image_size=16, extra={"augment_crf": [30], "augment_scale": [0.5]}))
    np.testing.assert_allclose(aug.score_clip(items[0].frames), plain.score_clip(items[0].frames))


def test_real_codec_copies_lose_detail():
    """One CRF through the real H.264 round trip: the copy keeps shape and dtype and differs from the input."""
    items = _items()[:1]
    (copy,) = augmented_items(items, {"augment_crf": [45]})
    assert copy.frames.shape == items[0].frames.shape and copy.frames.dtype == np.uint8
    assert np.abs(copy.frames.astype(int) - items[0].frames).mean() > 5.0   # random noise does not survive CRF 45


def test_cnn_without_validation_items_keeps_the_last_epoch(tmp_path):
    """No val items (a cross-validation fold spends none on epoch selection): every epoch is kept in turn,
    so the saved weights are the last epoch's, and training runs all epochs."""
    import torch

    det = DCTCNN(DetectConfig(detector="dct_cnn", image_size=16, frames_per_item=2, epochs=3, patience=1))
    rows = []
    det.fit(_items(), [], tmp_path, rows.append)
    assert [r["best"] for r in rows] == [True, True, True]
    last = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    saved = torch.load(tmp_path / det.artifact, weights_only=True)
    assert all(torch.equal(last[k], saved[k]) for k in saved)
