"""forge.metrics: SSIM/PSNR against hand-computed values, CSIM, landmark error, Frechet distance."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from core.common import FaceforgeError
from forge.metrics import (IdentityEncoder, csim, fd_face, fid, frechet_distance, landmark_error, psnr, ssim)
from forge.retarget import canonical_landmarks


def test_ssim_of_an_image_with_itself_is_one(rng):
    a = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_constant_images_is_the_luminance_term():
    # sigma = 0 for both, so SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2 = 6.5025
    a, b = np.full((24, 24), 100.0), np.full((24, 24), 120.0)
    assert ssim(a, b) == pytest.approx((24000 + 6.5025) / (24400 + 6.5025), abs=1e-12)   # 0.983611


def test_ssim_of_inverted_contrast_is_negative():
    # a zero-mean-ish pattern against its mirror image around 127.5: structure term ~ -1
    x = np.tile(np.array([0.0, 255.0]), (16, 8))                        # (16, 16) stripes
    assert ssim(x, 255.0 - x) < -0.9


def test_ssim_matches_scikit_image(rng):
    from skimage.metrics import structural_similarity

    a = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-9)
    assert ssim(np.stack([a, a]), np.stack([a, b]), per_image=True) == pytest.approx([1.0, ref], abs=1e-9)


def test_psnr_hand_computed():
    a = np.zeros((4, 4, 3))
    assert psnr(a, a + 10) == pytest.approx(10 * math.log10(255 ** 2 / 100), abs=1e-9)   # 28.1308 dB
    b = a.copy()
    b[0, 0, 0] = 48                                                      # MSE = 48^2 / 48 = 48
    assert psnr(a, b) == pytest.approx(10 * math.log10(65025 / 48), abs=1e-9)           # 31.318 dB
    assert psnr(a, a) == math.inf
    with pytest.raises(FaceforgeError, match="shapes"):
        psnr(a, a[:2])


def test_frechet_distance_of_gaussians():
    assert frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(0, abs=1e-9)
    # mean shift (1, 1) -> 2; covariances I and 4I -> tr(I + 4I - 2 * 2I) = 2
    assert frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2)) == pytest.approx(4.0)


def test_fid_reports_unavailable_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))                     # an empty hub cache
    out = fid(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.uint8))
    assert out["fid"] is None and "unavailable" in out["fid_note"]
    with pytest.raises(FaceforgeError, match="Inception weights not found"):
        fid(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.uint8), weights=tmp_path / "x.pth")


@pytest.fixture(scope="module")
def encoder() -> IdentityEncoder:
    return IdentityEncoder()


@pytest.fixture(scope="module")
def portraits(sample_dir):
    """Two different people's face crops at 64 px (the eval resolution)."""
    from forge.data import extract_clip

    a = extract_clip(sample_dir / "portraits" / "s42.jpg", resolution=64, backend="dlib")
    b = extract_clip(sample_dir / "portraits" / "s0.jpg", resolution=64, backend="dlib")
    return a, b


def test_csim_same_face_is_one_and_beats_another_person(encoder, portraits):
    a, b = portraits
    fa, fb = a.frames[0], b.frames[0]
    assert csim(encoder, fa, fa) == pytest.approx(1.0, abs=1e-6)
    darker = (fa * 0.85).astype(np.uint8)
    same, other = csim(encoder, fa, darker), csim(encoder, fa, fb)
    assert same > 0.95 and other < same
    per = csim(encoder, fa, np.stack([fa, fb]), per_image=True)          # one reference vs N frames
    assert per.shape == (2,) and per[0] == pytest.approx(1.0, abs=1e-6)


def test_identity_encoder_port_matches_dlib_reference(encoder, portraits):
    """CSIM's descriptors come from the torch port in batches; dlib's own network is the reference."""
    a, b = portraits
    frames = np.concatenate([a.frames[:3], b.frames[:1]])                # (4, 64, 64, 3) two people
    lms = np.concatenate([a.landmarks[:3], b.landmarks[:1]])
    reference = IdentityEncoder(backend="dlib")
    for landmarks in (lms, None):                                        # boxes from landmarks / detector
        ours, ref = encoder.describe_batch(frames, landmarks), reference.describe_batch(frames, landmarks)
        assert np.linalg.norm(ours - ref, axis=1).max() <= 1e-3
    with pytest.raises(FaceforgeError, match="unknown identity backend"):
        IdentityEncoder(backend="vggface")


def test_fd_face_hand_computed():
    # four points on the axes: mean 0, sample covariance diag(2/3, 2/3)
    a = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert fd_face(a, a) == pytest.approx(0.0, abs=1e-9)
    assert fd_face(a, a + [3.0, 4.0]) == pytest.approx(25.0)           # |mean shift|^2 = 9 + 16
    # covariances S and 4S: tr(S + 4S - 2 (4 S^2)^(1/2)) = tr(S) = 4/3
    assert fd_face(a, 2 * a) == pytest.approx(4 / 3)
    with pytest.raises(FaceforgeError, match="at least 2"):
        fd_face(a[:1], a)


@dataclass
class _Face:
    landmarks: np.ndarray


class _FakeDetector:
    """Returns fixed landmarks (scaled to the upsampled image) or nothing."""

    def __init__(self, lms):
        self.lms, self.i = lms, 0

    def detect(self, image):
        lm, self.i = self.lms[self.i], self.i + 1
        return [] if lm is None else [_Face(lm * image.shape[0] / 64)]


def test_landmark_error_hand_computed():
    target = canonical_landmarks(64)                                     # inter-ocular 0.5 * 63 = 31.5
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    det = _FakeDetector([target + np.array([3.0, 4.0]), None, target])  # 5 px off, missing, exact
    err = landmark_error(frames, np.stack([target] * 3), det)
    assert err.nme == pytest.approx((5 / 31.5 + 0) / 2, rel=1e-5)
    assert err.detected == pytest.approx(2 / 3) and np.isnan(err.per_frame[1])


def test_landmark_error_real_detector_on_a_real_crop(portraits):
    from forge.data import get_detector

    a, _ = portraits
    err = landmark_error(a.frames, a.landmarks, get_detector("dlib"))
    assert err.detected == 1.0 and err.nme < 0.1



def test_fid_plumbing_when_weights_are_given(tmp_path, rng, monkeypatch):
    """With a weights file present fid() extracts features and returns the Frechet distance (the
    Inception net itself is replaced by per-channel means + stds: too slow for this machine's tests)."""
    import forge.metrics as m

    class _Feats:
        def __init__(self, weights, device="cpu"):
            self.weights = weights

        def __call__(self, frames):                                      # (N, H, W, 3) -> (N, 6)
            f = frames.astype(np.float64)
            return np.concatenate([f.mean(axis=(1, 2)), f.std(axis=(1, 2))], axis=1)

    monkeypatch.setattr(m, "InceptionFeatures", _Feats)
    path = tmp_path / "inception.pth"
    path.write_bytes(b"weights")
    a = (rng.random((12, 16, 16, 3)) * 255).astype(np.uint8)
    b = (rng.random((12, 16, 16, 3)) * 128).astype(np.uint8)
    same, diff = fid(a, a, weights=path), fid(a, b, weights=path)
    assert abs(same["fid"]) < 1e-6 and diff["fid"] > 100 and "inception.pth" in diff["fid_note"]
