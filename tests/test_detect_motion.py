"""Motion-compensated residual features (detect.detectors.motion) and their place in the temporal detector."""

from __future__ import annotations

import numpy as np

from detect.config import DetectConfig
from detect.detectors.motion import N_MOTION_FEATURES, motion_features
from detect.detectors.temporal import TemporalBoosting

S = 64


def _texture(rng, size: int) -> np.ndarray:
    """A smooth random texture ``(size, size) uint8`` (blurred noise: something flow can lock onto)."""
    import cv2

    noise = rng.random((size, size)).astype(np.float32)
    return (cv2.GaussianBlur(noise, (0, 0), 2.0) * 255 / max(cv2.GaussianBlur(noise, (0, 0), 2.0).max(), 1e-6)).astype(np.uint8)


def _moving(rng, n: int) -> np.ndarray:
    """One texture translated by one pixel a frame (a camera filming a moving surface) -> ``(n, S, S, 3)``."""
    big = _texture(rng, S + n + 2)
    return np.stack([np.repeat(big[1:S + 1, 1 + t:S + 1 + t, None], 3, -1) for t in range(n)])


def test_motion_features_shape_and_short_windows():
    rng = np.random.default_rng(0)
    f = motion_features(_moving(rng, 6))
    assert f.shape == (N_MOTION_FEATURES,) and np.all(np.isfinite(f))
    assert np.all(np.isnan(motion_features(_moving(rng, 1))))


def test_residual_is_small_for_moved_texture_and_large_for_resynthesised_texture():
    rng = np.random.default_rng(1)
    moved = motion_features(_moving(rng, 6))
    fresh = np.stack([np.repeat(_texture(rng, S)[..., None], 3, -1) for _ in range(6)])   # new texture each frame
    redrawn = motion_features(fresh)
    # residual over detail: the flow undoes a translation, not a redrawn texture
    assert moved[0] < redrawn[0] - 1.0
    assert 1.5 < np.exp(moved[3]) < 2.5                   # one pixel a frame at S = 64 is two at MOTION_SIZE 128


def test_temporal_detector_appends_motion_features():
    rng = np.random.default_rng(2)
    frames = _moving(rng, 12)
    lm = rng.random((12, 68, 2)) * 40 + 12
    plain = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra={"spatial": True})).features(frames, lm)[0]
    det = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra={"spatial": True, "motion": True}))
    feats, _ = det.features(frames, lm)
    assert feats.shape == (2, plain.shape[1] + N_MOTION_FEATURES)
    np.testing.assert_array_equal(feats[:, :plain.shape[1]], plain)
    np.testing.assert_allclose(feats[1, -N_MOTION_FEATURES:], motion_features(frames[4:12]))


def test_motion_count_reads_the_config():
    from detect.detectors.temporal import motion_count

    assert motion_count({}) == 0 and motion_count({"motion": False}) == 0
    assert motion_count({"motion": True}) == N_MOTION_FEATURES and motion_count({"motion": 5}) == 5
    det = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra={"motion": 5}))
    frames = _moving(np.random.default_rng(3), 8)
    full = TemporalBoosting(DetectConfig(detector="temporal", window=8, extra={"motion": True})).features(frames)[0]
    np.testing.assert_array_equal(det.features(frames)[0], full[:, :-(N_MOTION_FEATURES - 5)])
