"""forge.data.clip.extract_clip on short real clips and single images."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from forge.data.clip import extract_clip
from core.media import read_frames, write_video


@pytest.fixture(scope="module")
def short_video(tmp_path_factory, sample_video):
    """12 real frames (256 px) of one sample video, frame 6 blacked out (no face there)."""
    import cv2

    frames = read_frames(sample_video, max_frames=12)
    frames = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames])
    frames[6] = 0
    return write_video(tmp_path_factory.mktemp("clip") / "short.mp4", frames, fps=25, crf=18)


def test_extract_clip_video(short_video):
    clip = extract_clip(short_video, resolution=64, backend="dlib")
    n = 12
    assert clip.frames.shape == (n, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.landmarks.shape == (n, 68, 2) and clip.landmarks.dtype == np.float32
    assert clip.landmark_images.shape == (n, 64, 64, 3)
    assert clip.frame_index.tolist() == list(range(n))
    assert clip.valid.tolist() == [True] * 6 + [False] + [True] * 5
    assert clip.scores[6] == 0 and (clip.scores[clip.valid] > 0).all()
    assert (clip.fps, clip.source_size, clip.backend) == (25.0, (256, 256), "dlib")
    # the frame without a face gets landmarks between its neighbours' and a box like theirs
    between = (clip.source_landmarks[5] + clip.source_landmarks[7]) / 2
    assert np.abs(clip.source_landmarks[6] - between).max() < 2.0
    assert np.abs(clip.boxes[6] - clip.boxes[5]).max() <= 4
    # landmarks fill the crop with margin: inside, and spanning a good part of it
    lm = clip.landmarks[clip.valid]
    assert (lm > 0).all() and (lm < 64).all()
    assert 0.45 < (lm[..., 0].max(1) - lm[..., 0].min(1)).mean() / 64 < 0.85
    # the face is in the crop: skin-ish centre, brighter than the blacked-out frame
    assert clip.frames[0, 24:40, 24:40].mean() > 60
    assert (clip.landmark_images.reshape(n, -1).max(1) == 255).all()


def test_extract_clip_redecodes_when_frames_do_not_fit(short_video, monkeypatch):
    from forge.data import clip as clip_mod

    kept = extract_clip(short_video, resolution=32, backend="dlib", max_frames=5)
    monkeypatch.setattr(clip_mod, "FRAME_MEMORY_BUDGET", 1)  # nothing fits: second decode pass
    again = extract_clip(short_video, resolution=32, backend="dlib", max_frames=5)
    assert np.array_equal(kept.frames, again.frames) and np.array_equal(kept.boxes, again.boxes)


def test_extract_clip_sampling_and_image(short_video, sample_portrait):
    clip = extract_clip(short_video, resolution=64, backend="dlib", every=4, max_frames=2, smooth=False)
    assert clip.frame_index.tolist() == [0, 4]
    img = extract_clip(sample_portrait, resolution=128, backend="dlib")
    assert img.frames.shape == (1, 128, 128, 3) and img.valid.tolist() == [True]
    assert img.source_size == (512, 512)
    x0, y0, x1, y1 = img.boxes[0]
    assert x1 - x0 == y1 - y0 > 150


def test_extract_clip_no_face(tmp_path):
    path = write_video(tmp_path / "black.mp4", np.zeros((3, 64, 64, 3), np.uint8), fps=25, crf=30)
    with pytest.raises(FaceforgeError, match="no face found in black.mp4"):
        extract_clip(path, backend="dlib")
    with pytest.raises(FaceforgeError, match="not found"):
        extract_clip(tmp_path / "missing.mp4", backend="dlib")


def test_detect_every_tracks_between_detections(short_video):
    from forge.data.clip import detect_track
    from faces.landmarks import get_detector

    det = get_detector("dlib")
    full, _ = detect_track(short_video, det, keep_frames=False)
    fast, _ = detect_track(short_video, det, keep_frames=False, detect_every=4)
    assert not full.tracked.any()
    # detector on frames 0, 4, 8; the black frame 6 loses the track, so 7 is detected again
    assert fast.tracked.tolist() == [False, True, True, True, False, True, False, False, False, True, True, True]
    assert fast.valid.tolist() == full.valid.tolist()
    both = full.valid
    iod = np.linalg.norm(full.landmarks[both, 36:42].mean(1) - full.landmarks[both, 42:48].mean(1), axis=1)
    nme = np.linalg.norm(full.landmarks[both] - fast.landmarks[both], axis=2).mean(1) / iod
    assert nme.max() < 0.05  # tracked landmarks agree with per-frame detection within 5 % of the eye distance
    clip = extract_clip(short_video, resolution=32, backend="dlib", detect_every=4)
    assert clip.valid.tolist() == full.valid.tolist()
