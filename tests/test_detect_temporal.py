"""detect.detectors.temporal: window layout, the optional spatial-detail features (values on built
frames), backward compatibility of runs saved without them, and a spatial run trains, scores, reloads."""

from __future__ import annotations

import numpy as np
import pytest

from detect.config import DetectConfig
from detect.detectors.temporal import (INNER_FRACTION, N_LANDMARK_FEATURES, N_SPATIAL_FEATURES,
                                       N_TEXTURE_FEATURES, TemporalBoosting, TemporalTextureBoosting,
                                       spatial_features, window_starts)

S = 64


def _checker(size: int, inner_only: bool = False) -> np.ndarray:
    """``(size, size, 3) uint8``: a 1-px checkerboard (everywhere, or only in the inner square)."""
    yy, xx = np.mgrid[:size, :size]
    img = (((yy + xx) % 2) * 200 + 20).astype(np.uint8)
    if inner_only:
        a, b = int(size * (1 - INNER_FRACTION) / 2), int(size * (1 + INNER_FRACTION) / 2)
        flat = np.full_like(img, 120)
        flat[a:b, a:b] = img[a:b, a:b]
        img = flat
    return np.repeat(img[..., None], 3, axis=-1)


def test_window_starts_cover_all_frames():
    assert window_starts(12, 8) == [0, 4]
    assert window_starts(5, 8) == [0]
    assert window_starts(13, 8) == [0, 4, 5]


def test_spatial_features_values():
    flat = np.full((4, S, S, 3), 120, np.uint8)
    f = spatial_features(flat)
    assert f.shape == (N_SPATIAL_FEATURES,)
    assert f[0] == pytest.approx(np.log(1e-8)) and f[3] == 0.0          # no detail, nothing varies
    sharp = np.stack([_checker(S)] * 4)
    blurred = np.stack([np.full((S, S, 3), 120, np.uint8)] * 4)
    blurred[:, ::2] = 121                                                 # faint detail
    assert spatial_features(sharp)[0] > spatial_features(blurred)[0]
    inner = spatial_features(np.stack([_checker(S, inner_only=True)] * 4))
    assert inner[2] > 10.0                                                # detail inside, flat border
    assert inner[3] == pytest.approx(0.0, abs=1e-9)                       # same frame 4 times
    varying = np.stack([_checker(S), _checker(S), flat[0], flat[0]])
    assert spatial_features(varying)[3] > 0.5


def test_spatial_features_are_resolution_agnostic():
    """A 64 px crop is scored as its upscale to SPATIAL_SIZE: the same values as that upscale given directly."""
    import cv2

    from detect.detectors.temporal import SPATIAL_SIZE

    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    up = np.stack([cv2.resize(f, (SPATIAL_SIZE, SPATIAL_SIZE), interpolation=cv2.INTER_LINEAR) for f in small])
    np.testing.assert_allclose(spatial_features(small), spatial_features(up))


@pytest.mark.parametrize("extra, width", [({}, N_LANDMARK_FEATURES + N_TEXTURE_FEATURES),
                                          ({"spatial": True}, N_LANDMARK_FEATURES + N_TEXTURE_FEATURES
                                           + N_SPATIAL_FEATURES)])
def test_feature_width_default_unchanged_and_spatial_appends(extra, width):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (12, S, S, 3), dtype=np.uint8)
    lm = rng.random((12, 68, 2)) * 40 + 12
    det = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra=extra))
    feats, members = det.features(frames, lm)
    assert feats.shape == (2, width) and members.shape == (2, 12)
    base = TemporalBoosting(DetectConfig(detector="temporal", window=8)).features(frames, lm)[0]
    np.testing.assert_array_equal(feats[:, :base.shape[1]], base)         # spatial only appends
    if extra:
        np.testing.assert_array_equal(feats[:, -N_SPATIAL_FEATURES:], np.stack(
            [spatial_features(frames[0:8]), spatial_features(frames[4:12])]))
    tex = TemporalTextureBoosting(DetectConfig(detector="temporal_texture", window=8, extra=extra)).features(frames)[0]
    assert tex.shape[1] == width - N_LANDMARK_FEATURES


def test_spatial_run_trains_scores_and_reloads(tmp_path):
    """Smooth 'fakes' vs detailed 'reals': a spatial run separates them and reloads to the same scores."""
    from detect.data import Item

    rng = np.random.default_rng(2)
    items = []
    for i in range(24):
        label = i % 2
        base = rng.integers(0, 255, (8, S, S, 3), dtype=np.uint8)
        if label:
            import cv2

            base = np.stack([cv2.GaussianBlur(f, (7, 7), 3) for f in base])
        items.append(Item(f"v{i}", label, base, rng.random((8, 68, 2)) * 40 + 12, {}))
    cfg = DetectConfig(detector="temporal", window=8, extra={"spatial": True, "max_iter": 20})
    det = TemporalBoosting(cfg)
    det.fit(items[:16], items[16:], tmp_path)
    s = np.array([det.score_clip(it.frames, it.landmarks).mean() for it in items[16:]])
    y = np.array([it.label for it in items[16:]])
    assert s[y == 1].min() > s[y == 0].max()
    again = TemporalBoosting(cfg).load(tmp_path)
    np.testing.assert_allclose(again.score_clip(items[16].frames, items[16].landmarks),
                               det.score_clip(items[16].frames, items[16].landmarks))


def test_reencode_round_trip_loses_detail_with_crf():
    from detect.detectors.base import reencode

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (6, S, S, 3), dtype=np.uint8)
    light, heavy = reencode(frames, 18), reencode(frames, 45)
    assert light.shape == heavy.shape == frames.shape and heavy.dtype == np.uint8
    err = [np.abs(x.astype(int) - frames).mean() for x in (light, heavy)]
    assert err[0] < err[1]                                                # more compression, more loss
    np.testing.assert_array_equal(reencode(frames, 45), heavy)           # deterministic


def test_crf_augmentation_takes_raw_items_only():
    from detect.data import Item
    from detect.detectors.base import augmented_items

    rng = np.random.default_rng(4)
    fr = rng.integers(0, 255, (4, S, S, 3), dtype=np.uint8)
    lm = rng.random((4, 68, 2)).astype(np.float32)
    items = [Item("a", 1, fr, lm, {"compression": "raw", "fps": 12.5}), Item("b", 0, fr, lm, {"compression": "c23"}),
             Item("c", 0, fr, None, {})]                                  # no compression recorded: uncompressed
    aug = list(augmented_items(items, {"augment_crf": [30, 40]}))
    assert [it.item_id for it in aug] == ["a@crf30", "c@crf30", "a@crf40", "c@crf40"]
    assert [it.label for it in aug] == [1, 0, 1, 0] and aug[0].landmarks is lm and aug[1].landmarks is None
    assert aug[0].meta["compression"] == "crf30" and items[0].meta["compression"] == "raw"


def test_augment_crf_adds_training_rows_only(monkeypatch, tmp_path):
    """``extra.augment_crf`` grows the training set by the re-encoded raw items; scoring is unchanged."""
    from detect.data import Item
    from detect.detectors import base

    rng = np.random.default_rng(5)
    items = [Item(f"v{i}", i % 2, rng.integers(0, 255, (8, S, S, 3), dtype=np.uint8), rng.random((8, 68, 2)) * 40 + 12,
                  {"compression": "raw" if i < 4 else "c23"}) for i in range(8)]
    plain = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra={"spatial": True}))
    aug = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra={"spatial": True, "augment_crf": [35]}))
    x0, y0 = plain._dataset(items)
    x1, y1 = aug._dataset(items)
    assert len(x1) == len(x0) + 4 and list(y1[len(y0):]) == [0, 1, 0, 1]
    np.testing.assert_array_equal(x1[:len(x0)], x0)
    f, _ = plain.features(base.reencode(items[1].frames, 35, base.AUGMENT_FPS), items[1].landmarks)
    np.testing.assert_array_equal(x1[len(x0) + 1], f[0])
    np.testing.assert_array_equal(aug.features(items[0].frames, items[0].landmarks)[0],
                                  plain.features(items[0].frames, items[0].landmarks)[0])


def test_scale_augmentation_resamples_raw_items_of_both_classes():
    from detect.data import Item
    from detect.detectors.base import down_up
    from detect.detectors.base import augmented_items

    fr = np.stack([_checker(S)] * 4)
    lm = np.random.default_rng(6).random((4, 68, 2)).astype(np.float32)
    items = [Item("a", 1, fr, lm, {"compression": "raw"}), Item("b", 0, fr, None, {"compression": "c40"}),
             Item("c", 0, fr, lm, {})]
    aug = list(augmented_items(items, {"augment_scale": [0.5]}))
    assert [it.item_id for it in aug] == ["a@x0.5", "c@x0.5"] and [it.label for it in aug] == [1, 0]
    assert aug[0].frames.shape == fr.shape and aug[0].frames.dtype == np.uint8 and aug[0].landmarks is lm
    assert aug[0].meta["compression"] == "raw" and aug[0].meta["augment_scale"] == 0.5
    lap = [spatial_features(f)[0] for f in (fr, down_up(fr, 0.7), down_up(fr, 0.5))]
    assert lap[0] > lap[1] > lap[2]                                       # smaller factor, less fine detail
    with pytest.raises(ValueError):
        list(augmented_items(items, {"augment_scale": [1.5]}))


def test_augment_scale_adds_rows_and_feeds_crf(monkeypatch):
    """``extra.augment_scale`` adds the resampled raw items (both classes); with ``augment_crf`` they are
    re-encoded too; features (scoring) are unchanged."""
    from detect.data import Item
    from detect.detectors import base
    from detect.detectors.base import down_up

    monkeypatch.setattr(base, "reencode", lambda frames, crf, fps=25.0: frames // 2)   # no codec needed
    rng = np.random.default_rng(7)
    items = [Item(f"v{i}", i % 2, rng.integers(0, 255, (8, S, S, 3), dtype=np.uint8), rng.random((8, 68, 2)) * 40 + 12,
                  {"compression": "raw" if i < 4 else "c23"}) for i in range(8)]
    plain = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra={"spatial": True}))
    sc = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra={"spatial": True, "augment_scale": [0.5, 0.7]}))
    both = TemporalBoosting(DetectConfig(detector="temporal", window=8,
                                         extra={"spatial": True, "augment_scale": [0.5], "augment_crf": [35]}))
    x0, y0 = plain._dataset(items)
    x1, y1 = sc._dataset(items)
    assert len(x1) == len(x0) + 8 and list(y1[len(y0):]) == [0, 1, 0, 1] * 2
    np.testing.assert_array_equal(x1[:len(x0)], x0)
    f, _ = plain.features(down_up(items[1].frames, 0.5), items[1].landmarks)
    np.testing.assert_array_equal(x1[len(x0) + 1], f[0])
    x2, _ = both._dataset(items)
    assert len(x2) == len(x0) + 4 + 8                                     # 4 resampled, then 4 raw + 4 resampled re-encoded
    f, _ = plain.features(down_up(items[1].frames, 0.5) // 2, items[1].landmarks)
    np.testing.assert_array_equal(x2[-3], f[0])
    np.testing.assert_array_equal(sc.features(items[0].frames, items[0].landmarks)[0],
                                  plain.features(items[0].frames, items[0].landmarks)[0])
