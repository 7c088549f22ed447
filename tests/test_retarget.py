"""forge.retarget: driver motion/expression on the source's proportions."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from forge.retarget import (apply_transform, canonical_landmarks, fit_similarity, inter_ocular,
                            mouth_opening, neutral_frame, part_size, retarget, PARTS)

S = 64


def _similarity(deg: float, scale: float, t=(0.0, 0.0)) -> np.ndarray:
    a = np.deg2rad(deg)
    m = np.eye(3)
    m[:2, :2] = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m[:2, 2] = t
    return m


@pytest.fixture
def faces():
    """A narrow-faced source (x squeezed 0.8) and a driver clip: neutral, mouth open, open + head turn."""
    neutral, open_ = canonical_landmarks(S), canonical_landmarks(S, mouth_open=0.05)
    c = neutral.mean(0)
    source = (neutral - c) * np.array([0.8, 1.0], np.float32) + c
    turned = apply_transform(_similarity(10, 1.1, (3, -2)), open_ - c) + c
    driver = np.stack([open_, neutral, turned]).astype(np.float32)   # neutral is frame 1
    return source, driver


def test_fit_similarity_recovers_a_known_transform():
    pts = canonical_landmarks(S).astype(np.float64)
    m = _similarity(12, 0.9, (4, -3))
    assert np.allclose(fit_similarity(pts, apply_transform(m, pts)), m, atol=1e-9)


def test_neutral_frame_is_the_closed_mouth(faces):
    _, driver = faces
    assert neutral_frame(driver) == 1
    assert mouth_opening(driver[1]) == pytest.approx(0.0, abs=1e-6)


def test_keeps_source_proportions_and_transfers_mouth_opening(faces):
    source, driver = faces
    out = retarget(driver, source, expression="relative")                 # (3, 68, 2)
    assert out.shape == (3, 68, 2) and out.dtype == np.float32
    # absolute (the default): the eyes take the driver's shape at the source's size -> IOD within 1%
    assert inter_ocular(retarget(driver, source)[1]) == pytest.approx(inter_ocular(source), rel=0.01)
    # the neutral driver frame gives back the source exactly: proportions kept
    assert np.abs(out[1] - source).max() < 1e-3
    assert inter_ocular(out[0]) == pytest.approx(inter_ocular(source), rel=1e-4)   # 0.8x the driver's
    assert inter_ocular(driver[0]) / inter_ocular(out[0]) == pytest.approx(1.25, rel=1e-3)
    # the mouth opens as the driver's does (relative to face size; the mouth part is 0.87x as wide)
    assert mouth_opening(driver[0]) > 0.15
    assert mouth_opening(out[0]) == pytest.approx(mouth_opening(driver[0]), rel=0.1)
    # the head turn is carried over: out[2] is out[0] moved by the same similarity (about the source)
    m = fit_similarity(out[0], out[2])
    assert np.degrees(np.arctan2(m[1, 0], m[0, 0])) == pytest.approx(10, abs=0.5)
    assert np.hypot(m[0, 0], m[1, 0]) == pytest.approx(1.1, rel=0.01)
    assert mouth_opening(out[2]) == pytest.approx(mouth_opening(out[0]), rel=1e-3)


def test_without_retarget_driver_proportions_leak(faces):
    source, driver = faces
    # the paper's way (driver landmarks as they are) has the driver's eye distance, retarget the source's
    err_raw = abs(inter_ocular(driver[1]) - inter_ocular(source))
    err_rt = abs(inter_ocular(retarget(driver, source, expression="relative")[1]) - inter_ocular(source))
    err_abs = abs(inter_ocular(retarget(driver, source)[1]) - inter_ocular(source))
    assert err_raw > 5.0 and err_rt < 1e-3 and err_abs < 0.05 * err_raw


def test_self_retarget_is_identity(faces):
    _, driver = faces
    assert np.abs(retarget(driver, driver[1]) - driver).max() < 1e-3
    assert np.abs(retarget(driver, driver[0], driver_reference="first") - driver).max() < 1e-3


def test_part_scaling_option(faces):
    source, driver = faces
    big_mouth = source.copy()
    big_mouth[PARTS["mouth"]] = (source[PARTS["mouth"]] - source[PARTS["mouth"]].mean(0)) * 1.5 \
        + source[PARTS["mouth"]].mean(0)
    on = retarget(driver, big_mouth, expression="relative")[0]
    off = retarget(driver, big_mouth, part_scaling=False, expression="relative")[0]
    gap = lambda lm: np.linalg.norm(lm[62] - lm[66])                     # noqa: E731
    assert gap(on) / gap(off) == pytest.approx(
        part_size(big_mouth, PARTS["mouth"]) / part_size(source, PARTS["mouth"]), rel=0.02)


def test_bad_inputs(faces):
    source, driver = faces
    with pytest.raises(FaceforgeError, match="source landmarks"):
        retarget(driver, source[:10])
    with pytest.raises(FaceforgeError, match="reference"):
        retarget(driver, source, driver_reference="median")
    nan = driver.copy()
    nan[0, 0] = np.nan
    with pytest.raises(FaceforgeError, match="NaN"):
        retarget(nan, source)


def test_expression_modes_on_a_smiling_source():
    # source with its mouth open, driver closed -> open: relative adds the opening, absolute copies it
    source = canonical_landmarks(S, mouth_open=0.03)
    driver = np.stack([canonical_landmarks(S), canonical_landmarks(S, mouth_open=0.05)])
    rel = retarget(driver, source, expression="relative")
    ab = retarget(driver, source, expression="absolute")
    assert mouth_opening(rel[0]) == pytest.approx(mouth_opening(source), rel=1e-3)      # keeps its smile
    assert mouth_opening(rel[1]) > mouth_opening(driver[1]) * 1.4                        # smile + opening
    assert mouth_opening(ab[0]) == pytest.approx(0.0, abs=1e-4)                          # driver's closed mouth
    assert mouth_opening(ab[1]) == pytest.approx(mouth_opening(driver[1]), rel=0.05)
    assert inter_ocular(ab[1]) == pytest.approx(inter_ocular(source), rel=1e-4)
    with pytest.raises(FaceforgeError, match="expression mode"):
        retarget(driver, source, expression="mirror")
