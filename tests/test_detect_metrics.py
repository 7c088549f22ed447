"""detect.metrics and the detectors' pure feature functions, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detect import metrics as M

# a known ranking: one real (0.4) outscores one fake (0.35)
Y4 = [0, 0, 1, 1]
S4 = [0.1, 0.4, 0.35, 0.8]


def test_auc_known_ranking():
    assert M.auc(Y4, S4) == pytest.approx(3 / 4)          # 3 of 4 (fake, real) pairs ordered right
    assert M.auc([0, 1], [0.2, 0.9]) == 1.0
    assert M.auc([0, 1], [0.9, 0.2]) == 0.0


def test_average_precision_hand_computed():
    # ranked: fake(0.8) real(0.4) fake(0.35) real(0.1): precision 1 at recall .5, 2/3 at recall 1
    assert M.average_precision(Y4, S4) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_eer_known_splits():
    assert M.eer(Y4, S4)[0] == pytest.approx(0.5)
    y = [0] * 4 + [1] * 4
    s = [0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.8, 0.9]          # one real above one fake: FPR = FNR = 1/4
    rate, thr = M.eer(y, s)
    assert rate == pytest.approx(0.25)
    assert 0.5 <= thr <= 0.6
    assert M.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])[0] == 0.0


def test_threshold_calibration_and_accuracy():
    thr = M.calibrate_threshold([0, 0, 1, 1], [0.1, 0.2, 0.6, 0.7])
    assert thr == pytest.approx(0.4)                       # midpoint of the gap
    assert M.accuracy_at([0, 0, 1, 1], [0.1, 0.2, 0.6, 0.7], thr) == 1.0
    assert M.accuracy_at(Y4, S4, 0.5) == pytest.approx(0.75)
    assert M.balanced_accuracy_at(Y4, S4, 0.5) == pytest.approx(0.75)
    assert M.calibrate_threshold([1, 1], [0.3, 0.9]) == 0.5  # one class: default


def test_log_loss_and_ece():
    assert M.log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert math.isfinite(M.log_loss([1, 0], [0.0, 1.0]))   # clipped, not infinite
    # bins: {0.9, 0.9} -> observed 1 (gap .1, 2 samples), 0.2 -> 0 (gap .2), 0.4 -> 0 (gap .4)
    assert M.ece([1, 1, 0, 0], [0.9, 0.9, 0.2, 0.4]) == pytest.approx((2 * 0.1 + 0.2 + 0.4) / 4)
    assert M.ece([0, 1] * 50, [0.5] * 100) == pytest.approx(0.0)
    r = M.reliability([1, 1, 0, 0], [0.9, 0.9, 0.2, 0.4])
    assert r["count"].tolist() == [0, 0, 1, 0, 1, 0, 0, 0, 0, 2]


def test_single_class_gives_nan_not_crash():
    s = M.summary([1, 1, 1], [0.2, 0.5, 0.9], 0.5)
    assert math.isnan(s["auc"]) and math.isnan(s["eer"]) and s["accuracy"] == pytest.approx(2 / 3)


def test_aggregate():
    s = [0.1, 0.2, 0.3, 0.9]
    assert M.aggregate(s, "mean") == pytest.approx(0.375)
    assert M.aggregate(s, "median") == pytest.approx(0.25)
    assert M.aggregate(s, "max") == 0.9
    assert M.aggregate(s, "top25") == 0.9
    with pytest.raises(ValueError):
        M.aggregate(s, "mode")


def test_plots_write_pngs(tmp_path):
    from PIL import Image

    curves = {"video": (Y4, S4)}
    for fn, name in ((M.plot_roc, "roc.png"), (M.plot_pr, "pr.png"), (M.plot_reliability, "rel.png")):
        p = fn(curves, tmp_path / name)
        with Image.open(p) as im:
            assert im.size[0] > 100 and im.size[1] > 100


def test_azimuthal_average_and_spectrum_profile():
    from detect.detectors.frequency import azimuthal_average, spectrum_profile

    yy, xx = np.indices((32, 32))
    r = np.hypot(xx - 16, yy - 16)
    prof = azimuthal_average(r)                             # mean radius of ring k lies in [k, k+1)
    assert prof.shape == (16,)
    assert np.all(prof >= np.arange(16)) and np.all(prof < np.arange(16) + 1)
    assert np.all(spectrum_profile(np.full((32, 32), 0.5)) == 0)  # flat image: no spectrum
    # a blurred (up-sampled) image has relatively less high-frequency power than the sharp one
    rng = np.random.default_rng(0)
    sharp = rng.random((32, 32))
    blurred = np.kron(sharp[::2, ::2], np.ones((2, 2)))
    assert spectrum_profile(blurred)[-4:].mean() < spectrum_profile(sharp)[-4:].mean()


def test_dct_basis_orthonormal_and_srm_zero_sum():
    from detect.detectors.cnn import dct_basis, srm_kernels

    b = dct_basis().reshape(64, 64)
    assert np.allclose(b @ b.T, np.eye(64), atol=1e-5)
    assert np.allclose(srm_kernels().sum(axis=(1, 2, 3)), 0, atol=1e-6)  # high-pass: flat input -> 0


def test_temporal_features():
    from detect.detectors.temporal import N_LANDMARK_FEATURES, landmark_features, texture_features, window_starts
    from detect.toy import template_landmarks

    assert window_starts(20, 8) == [0, 4, 8, 12]
    assert window_starts(21, 8) == [0, 4, 8, 12, 13]
    assert window_starts(5, 8) == [0]
    still = np.repeat(template_landmarks(64)[None], 6, 0)  # (6, 68, 2)
    f_still = landmark_features(still)
    assert f_still.shape == (N_LANDMARK_FEATURES,) and np.allclose(f_still[:-1], 0, atol=1e-5)
    shaky = still + np.random.default_rng(0).normal(0, 1.0, still.shape).astype(np.float32)
    assert landmark_features(shaky)[4] > 0.01               # jaw jitter
    assert np.isnan(landmark_features(None)).all()
    frames = np.zeros((6, 32, 32, 3), np.uint8)
    assert texture_features(frames)[0] == 0                 # no change -> no difference energy
    frames[1::2] = 255
    assert texture_features(frames)[0] == pytest.approx(1.0)  # full flicker
