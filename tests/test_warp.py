"""forge.warp: the piecewise-affine baseline generator."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from forge.retarget import canonical_landmarks
from forge.warp import control_points, triangulate, warp_render

S = 64


@pytest.fixture
def image(rng) -> np.ndarray:
    return (rng.random((S, S, 3)) * 255).astype(np.uint8)   # (S, S, 3) noise: every pixel distinct


def test_identity_landmarks_return_the_source(image):
    lm = canonical_landmarks(S)
    out = warp_render(image, lm, np.stack([lm, lm]))
    assert out.shape == (2, S, S, 3) and out.dtype == np.uint8
    assert np.array_equal(out[0], image) and np.array_equal(out[1], image)


def test_closed_mouth_source_still_triangulates_every_point():
    pts = control_points(canonical_landmarks(S), S, S)        # inner lips coincide when closed
    tris = triangulate(pts)
    assert set(np.unique(tris)) == set(range(len(pts)))


@pytest.mark.parametrize("shift", [(3, 2), (-2, 4)])
def test_translated_landmarks_move_face_pixels(image, shift):
    lm = canonical_landmarks(S)
    out = warp_render(image, lm, lm + np.array(shift, np.float32))[0]
    dx, dy = shift
    # inside the face (well within the landmark hull) out(x, y) == src(x - dx, y - dy)
    ys, xs = np.mgrid[24:44, 22:42]
    assert np.array_equal(out[ys, xs], image[ys - dy, xs - dx])


def test_affine_motion_of_a_gradient_image():
    # a linear image f(x, y) = 2x + y: under a warp that rotates+scales the face by a known similarity
    # the value at output p must equal f(A^-1 p) inside the face (bilinear interpolation is exact on it)
    ys, xs = np.mgrid[0:S, 0:S].astype(np.float64)
    img = np.repeat((2 * xs + ys)[..., None], 3, axis=2).astype(np.uint8)   # values 0..189
    lm = canonical_landmarks(S).astype(np.float64)
    a, s, c = np.deg2rad(5), 1.05, np.array([32.0, 40.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    target = (lm - c) @ rot.T + c
    out = warp_render(img, lm, target[None])[0].astype(np.float64)
    p = np.stack([xs, ys], axis=-1)[28:44, 26:38]                        # (h, w, 2) inside the face
    q = (p - c) @ np.linalg.inv(rot).T + c                               # source positions
    expect = 2 * q[..., 0] + q[..., 1]
    assert np.abs(out[28:44, 26:38, 0] - expect).max() <= 1.0


def test_open_mouth_changes_only_the_lower_face(image):
    lm = canonical_landmarks(S)
    target = canonical_landmarks(S, mouth_open=0.04)
    plain = warp_render(image, lm, target[None], fill_mouth=False)[0]
    out = warp_render(image, lm, target[None])[0]
    assert np.array_equal(out[:30], image[:30])                          # eyes and above untouched
    assert not np.array_equal(plain[44:52, 24:40], image[44:52, 24:40])   # the mouth moved
    # the newly opened mouth (source closed) is shaded: its centre is ~MOUTH_DARKEN as bright
    centre = (slice(46, 49), slice(29, 35))
    ratio = out[centre].astype(float).sum() / plain[centre].astype(float).sum()
    assert 0.25 < ratio < 0.5
    assert np.array_equal(out[:40], plain[:40])                          # nothing else shaded


def test_bad_inputs(image):
    lm = canonical_landmarks(S)
    with pytest.raises(FaceforgeError, match="uint8"):
        warp_render(image.astype(np.float32), lm, lm[None])
    with pytest.raises(FaceforgeError, match="68"):
        warp_render(image, lm[:60], lm[None])
    bad = lm.copy()
    bad[3] = np.nan
    with pytest.raises(FaceforgeError, match="NaN"):
        warp_render(image, lm, bad[None])
