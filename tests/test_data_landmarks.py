"""faces.landmarks (also forge.data.landmarks) / forge.data crop / rasterize on real sample frames."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from core.media import read_image, read_video
from faces.landmarks import backend_status, get_detector, resolve_backend
from forge.data import crop
from forge.data.rasterize import PARTS, default_thickness, draw_landmarks



@pytest.fixture(scope="module")
def dlib_detector():
    return get_detector("dlib")


@pytest.fixture(scope="module")
def track(sample_dir, dlib_detector):
    """Raw dlib landmarks (N, 68, 2) of 24 consecutive frames of one sample video."""
    frames = [f.image for f in read_video(sample_dir / "videos" / "hdtf_wda_katiehill.mp4", max_frames=24)]
    faces = [dlib_detector.detect(im) for im in frames]
    assert all(faces)
    return np.stack([f[0].landmarks for f in faces]), frames


def test_detection_rate_on_sample_videos(sample_dir, dlib_detector):
    found = total = 0
    videos = sorted((sample_dir / "videos").glob("*.mp4"))
    assert len(videos) == 13
    for path in videos:  # two frames of every sample video (0 and 40)
        for f in read_video(path, every=40, max_frames=2):
            faces = dlib_detector.detect(f.image)
            total += 1
            if faces:
                found += 1
                face = faces[0]
                assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
                assert face.bbox.shape == (4,) and face.score > 0
                # the 68 points sit on the face: inside the detector box grown by 30 %
                x0, y0, x1, y1 = face.bbox
                pad = 0.3 * (x1 - x0)
                assert (face.landmarks[:, 0] > x0 - pad).all() and (face.landmarks[:, 0] < x1 + pad).all()
                assert (face.landmarks[:, 1] > y0 - pad).all() and (face.landmarks[:, 1] < y1 + pad).all()
                # anatomy: eyes above the nose tip, nose tip above the mouth
                assert face.landmarks[36:48, 1].mean() < face.landmarks[33, 1] < face.landmarks[48:68, 1].mean()
    assert total == 26 and found / total >= 0.95


def test_portrait_and_no_face(sample_portrait, dlib_detector, rng):
    img = read_image(sample_portrait)
    faces = dlib_detector.detect(img)
    assert len(faces) == 1 and faces[0].area > 100 * 100
    # detection runs on a downscaled copy: the box maps back to full resolution
    big = np.kron(img, np.ones((2, 2, 1), np.uint8))  # (1024, 1024, 3)
    big_faces = dlib_detector.detect(big)
    assert len(big_faces) == 1
    assert np.abs(big_faces[0].landmarks / 2 - faces[0].landmarks).mean() < 4.0
    noise = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert dlib_detector.detect(noise) == []
    assert dlib_detector.detect(np.zeros((50, 60, 3), np.uint8)) == []
    with pytest.raises(FaceforgeError, match="uint8"):
        dlib_detector.detect(np.zeros((50, 60), np.float32))


@pytest.mark.parametrize("canvas, face_px", [((480, 640), 70), ((300, 400), 40)])  # full-res pass; upsampled pass
def test_small_faces_found(sample_portrait, dlib_detector, canvas, face_px):
    """Faces too small for the downscaled copy (and for HOG's 80 px window) are still found."""
    import cv2

    img = read_image(sample_portrait)                       # face box ~240 px of 512
    side = int(512 * face_px / 240)
    small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    frame = np.full((*canvas, 3), 90, np.uint8)
    y, x = (canvas[0] - side) // 2, (canvas[1] - side) // 3
    frame[y:y + side, x:x + side] = small
    faces = dlib_detector.detect(frame)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].bbox
    assert 0.6 * face_px < x1 - x0 < 1.4 * face_px
    assert x <= faces[0].landmarks[:, 0].mean() <= x + side


def test_backend_selection(tmp_path):
    status = backend_status(fan_path=tmp_path / "nope.pth", s3fd_path=tmp_path / "nope2.pth")
    assert status["dlib"] is None
    assert "not found" in status["face-alignment"]
    with pytest.raises(FaceforgeError, match="face-alignment backend unavailable"):
        get_detector("face-alignment", fan_path=tmp_path / "nope.pth", s3fd_path=tmp_path / "nope2.pth")
    with pytest.raises(FaceforgeError, match="unknown landmark backend"):
        get_detector("mediapipe")
    if backend_status()["face-alignment"] is not None:  # offline here: auto falls back to dlib
        assert resolve_backend("auto") == "dlib"
        assert get_detector("auto").name == "dlib"


def test_forge_data_keeps_the_landmark_names():
    """faces.landmarks moved out of forge.data: the old module, forge.data's and faces' names are the same
    objects, and the per-process detector cache is shared."""
    import faces
    import forge.data
    from faces import landmarks
    from forge.data import landmarks as old

    for name in ("get_detector", "Face", "LandmarkDetector"):
        assert getattr(faces, name) is getattr(forge.data, name) is getattr(old, name) is getattr(landmarks, name)
    assert old.dlib_models_dir is landmarks.dlib_models_dir and old.BACKENDS == ("dlib", "face-alignment")
    assert old.get_detector("dlib") is landmarks.get_detector("dlib")


def test_track_boxes_stable_on_real_frames(track):
    landmarks, _ = track
    raw = crop.track_boxes(landmarks, smooth=False)
    smooth = crop.track_boxes(landmarks, smooth=True)
    side = smooth[:, 2] - smooth[:, 0]
    assert (smooth[:, 2] - smooth[:, 0] == smooth[:, 3] - smooth[:, 1]).all()  # squares

    def jitter(b):  # mean |second difference| of centre and side: per-frame shake, not motion
        c = np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:3] - b[:, :1]], axis=1)
        return np.abs(np.diff(c, n=2, axis=0)).mean()

    assert jitter(smooth) < 0.5 * jitter(raw)
    assert jitter(smooth) < 0.01 * side.mean()
    # frame to frame the crop moves by at most 2 % of its side (12 px of ~450)
    assert np.abs(np.diff(smooth, axis=0)).max() <= 0.02 * side.mean() + 1
    # it still follows the head: centred on the landmarks within 10 % of the side
    centre = (smooth[:, :2] + smooth[:, 2:]) / 2
    lm_centre = (landmarks.min(1) + landmarks.max(1)) / 2
    assert np.abs(centre[:, 0] - lm_centre[:, 0]).max() < 0.05 * side.mean()
    assert 0 < (lm_centre[:, 1] - centre[:, 1]).mean() < 0.15 * side.mean()  # lifted towards the forehead


def test_crop_square_and_coords(track):
    landmarks, frames = track
    boxes = crop.track_boxes(landmarks)
    patch = crop.crop_square(frames[0], boxes[0], 64)
    assert patch.shape == (64, 64, 3) and patch.dtype == np.uint8
    lm = crop.to_crop_coords(landmarks[:1], boxes[:1], 64)[0]
    assert (lm > 0).all() and (lm < 64).all()
    # a box hanging off the top-left corner is padded black
    img = np.full((100, 100, 3), 200, np.uint8)
    out = crop.crop_square(img, np.array([-50, -50, 50, 50]), 20)
    assert out[:8, :8].max() == 0 and out[-8:, -8:].min() == 200


def test_interpolate_and_smoothing():
    values = np.array([[0.0], [np.nan], [np.nan], [3.0], [np.nan]])
    valid = np.isfinite(values[:, 0])
    assert crop.interpolate_invalid(values, valid)[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 3.0]
    x = np.zeros((9, 1))
    x[4] = 10.0  # a single-frame outlier is removed by the running median
    assert crop.running_median(x, 5).max() == 0.0
    g = crop.gaussian_smooth(np.arange(10.0)[:, None], 1.0)
    assert g[3:7, 0] == pytest.approx(np.arange(3.0, 7.0))  # linear motion is kept


def test_rasterize_shape_and_part_colours(track):
    landmarks, _ = track
    boxes = crop.track_boxes(landmarks)
    lm = crop.to_crop_coords(landmarks[:1], boxes[:1], 128)[0]
    img = draw_landmarks(lm, 128)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    expected = {colour for _, _, _, colour in PARTS}
    assert colours <= expected | {(0, 0, 0)}           # only part colours on black
    assert expected - {(0, 128, 255)} <= colours       # every part visible (nostrils may hide under the bridge)
    assert (img.sum(-1) == 0).mean() > 0.8              # mostly black background
    # each part's colour lies on its own points: check the jaw's and the outer lips' first point
    for name, idx, _, colour in PARTS:
        if name in ("jaw", "outer_lips", "right_eye"):
            x, y = np.round(lm[idx[0]]).astype(int)
            patch = img[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)
            assert any(tuple(p) == colour for p in patch), name
    # line width grows with size
    assert default_thickness(64) == 1 and default_thickness(256) == 4
    ink64 = (draw_landmarks(lm / 2, 64).sum(-1) > 0).mean()
    ink256 = (draw_landmarks(lm * 2, 256).sum(-1) > 0).mean()
    assert ink256 == pytest.approx(ink64, rel=0.5)       # same share of ink at every size
    with pytest.raises(FaceforgeError):
        draw_landmarks(np.zeros((5, 2)), 64)
