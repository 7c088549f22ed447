"""detect.cross_blend (cross-frame self-blending) and its use by the SBI trainer (cross_frame_p, init_from):
tiny real-face fixtures, real values."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from people_cache import PeopleCache

SIZE = 64


@pytest.fixture(scope="module")
def video():
    """A 6-frame 64 px 'video' of one real face: the sample portrait warped along a smooth head/mouth track."""
    import cv2

    from core.common import SAMPLE_DIR
    from detect.toy import smooth_track, template_landmarks
    from core.media import read_image
    from forge.warp import warp_render

    img = cv2.resize(read_image(SAMPLE_DIR / "portraits" / "s42.jpg"), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    lm0 = template_landmarks(SIZE)
    track = smooth_track(6, SIZE, np.random.default_rng(0))                   # (6, 68, 2)
    track[3, 48:68, 1] += np.sign(track[3, 48:68, 1] - track[3, 48:68, 1].mean()) * 3   # frame 3: mouth wide open
    frames = warp_render(np.ascontiguousarray(img), lm0, track, fill_mouth=False)      # (6, S, S, 3)
    return frames, track.astype(np.float32)


def test_similarity_recovers_a_known_transform():
    from detect.cross_blend import similarity

    rng = np.random.default_rng(1)
    src = rng.uniform(0, 60, (21, 2))
    a, s, t = np.deg2rad(7), 1.1, np.array([3.0, -2.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = similarity(src, src @ rot.T + t)
    assert m.shape == (2, 3) and np.allclose(m[:, :2], rot, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_pick_partner_takes_the_most_different_expression(video):
    from detect.cross_blend import expression, pick_partner

    _, lm = video
    assert expression(lm).shape == (6, 51, 2)
    assert np.allclose(expression(lm[0] + 5.0), expression(lm[0]), atol=1e-5)     # a shift is no expression change
    rng = np.random.default_rng(0)
    picks = [pick_partner(lm, 0, rng, candidates=40) for _ in range(5)]
    assert picks == [3] * 5                                                        # the open mouth, every time
    assert all(pick_partner(lm, 2, rng, 1) != 2 for _ in range(30))                # never the frame itself
    assert pick_partner(lm[:1], 0, rng) == 0                                       # a one-frame video


@pytest.mark.parametrize("mode_p", [0.0, 1.0])       # similarity, piecewise
def test_a_frame_blended_with_itself_unjittered_is_unchanged(video, mode_p):
    from detect.cross_blend import CrossFrameConfig, cross_blend

    frames, lm = video
    cfg = CrossFrameConfig(piecewise_p=mode_p, jitter_p=0.0)
    fake, mask = cross_blend(frames[0], lm[0], frames[0], lm[0], 0, cfg)
    assert mask.max() >= 0.25 and np.array_equal(fake, frames[0])                # identity alignment: nothing moves


@pytest.mark.parametrize("mode_p", [0.0, 1.0])
def test_cross_blend_pastes_the_other_frame_inside_the_mask_only(video, mode_p):
    import cv2

    from detect.cross_blend import CrossFrameConfig, cross_blend
    from detect.sbi import SBIConfig, face_size, hull_mask, hull_points

    frames, lm = video
    cfg, sbi = CrossFrameConfig(piecewise_p=mode_p, jitter_p=0.0), SBIConfig()
    hull = hull_mask((SIZE, SIZE), np.concatenate([hull_points(lm[0], "face", sbi.forehead),
                                                   hull_points(lm[3], "face", sbi.forehead)]))
    reach = int(np.ceil((sbi.deform + 3 * sbi.blur[1]) * face_size(lm[0]))) + 4   # + the similarity fit's offset
    grown = cv2.dilate(hull, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    changed = 0
    for seed in range(6):
        fake, mask = cross_blend(frames[0], lm[0], frames[3], lm[3], seed, cfg)
        assert fake.shape == (SIZE, SIZE, 3) and fake.dtype == np.uint8 and mask.dtype == np.float32
        assert 0.0 <= mask.min() and 0.25 <= mask.max() <= 1.0
        assert not (mask[grown == 0] > 0).any()
        assert np.array_equal(fake[mask == 0], frames[0][mask == 0])
        inside = mask >= 0.5 * mask.max()
        changed += int(np.abs(fake[inside].astype(int) - frames[0][inside]).mean() > 0.5)
    assert changed >= 4                                  # the other frame's mouth really lands in the blend
    a, ma = cross_blend(frames[0], lm[0], frames[3], lm[3], 9, cfg)
    b, mb = cross_blend(frames[0], lm[0], frames[3], lm[3], 9, cfg)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)


def test_cross_blend_frames_and_bad_input(video):
    from detect.cross_blend import align, cross_blend, cross_blend_frames

    frames, lm = video
    fakes, masks = cross_blend_frames(frames, lm, [0, 2, 5], 0)
    assert fakes.shape == (3, SIZE, SIZE, 3) and masks.shape == (3, SIZE, SIZE) and (masks.max((1, 2)) > 0).all()
    with pytest.raises(FaceforgeError, match="one size"):
        cross_blend(frames[0], lm[0], frames[1][:32], lm[1])
    with pytest.raises(FaceforgeError, match="landmarks"):
        cross_blend(frames[0], lm[0], frames[1], lm[1][:10])
    with pytest.raises(FaceforgeError, match="mode"):
        align(frames[1], lm[1], lm[0], "tps")


class VideoCache(PeopleCache):
    """3 people, each the fixture video shifted."""

    def __init__(self, video):
        self.frames, self.lm = video
        self.people = ["p_train", "p_val", "p_test"]

    def frames_of(self, k):
        return np.roll(self.frames, k, axis=2), (self.lm + [k, 0]).astype(np.float32)


def test_training_pairs_mix_cross_frame_fakes(video):
    from detect.sbi_data import load_people, training_pairs
    from detect.sbi_train import SBITrainConfig

    people = load_people(VideoCache(video), ["p_train"])
    base = SBITrainConfig(test_people=("p_test",), val_people=("p_val",))
    a = training_pairs(people, 6, np.random.default_rng(5), base)
    b = training_pairs(people, 6, np.random.default_rng(5), SBITrainConfig(**{**base.__dict__, "cross_frame_p": 0.0}))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))                     # p = 0: the SBI batches replay
    images, labels, masks = training_pairs(people, 6, np.random.default_rng(5),
                                           SBITrainConfig(**{**base.__dict__, "cross_frame_p": 1.0}))
    assert images.shape == (12, SIZE, SIZE, 3) and labels.tolist() == [0] * 6 + [1] * 6
    assert (masks[:6] == 0).all() and (masks[6:].max((1, 2)) >= 0.25).all()
    assert not np.array_equal(images[6:], a[0][6:])                            # other fakes than SBI's


def test_trainer_starts_from_a_run_and_validates_on_cross_frame_fakes(video, tmp_path):
    import torch

    from detect.sbi_train import SBITrainConfig, train_sbi

    cache = VideoCache(video)
    base = dict(image_size=32, batch_size=4, eval_every=1, val_frames=2, threads=1, val_people=("p_val",),
                test_people=("p_test",))
    train_sbi(cache, tmp_path / "a", SBITrainConfig(steps=1, **base), progress=False)
    cfg = SBITrainConfig(steps=1, lr=0.0, cross_frame_p=0.5, init_from=str(tmp_path / "a"), **base)
    m = train_sbi(cache, tmp_path / "b", cfg, progress=False)
    assert m["done"] and m["val"]["video"]["n"] == 3                           # real, SBI and cross-frame video
    wa = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    wb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    weights = [k for k in wa if "weight" in k and "bn" not in k]
    assert weights and all(torch.equal(wa[k], wb[k]) for k in weights)         # lr 0: still the init weights
    with pytest.raises(FaceforgeError, match="no trained model"):
        train_sbi(cache, tmp_path / "c", SBITrainConfig(steps=1, init_from=str(tmp_path / "none"), **base),
                  progress=False)


def test_training_pairs_degrade_both_frames_of_a_pair_alike(video):
    """degrade_p: a pair is resampled down and up by one factor, real and fake alike, so far from the blend
    the two stay equal and the pair is softer than the original frames; degrade_p = 0 replays old batches."""
    from detect.detectors.base import down_up
    from detect.sbi_data import load_people, training_pairs
    from detect.sbi_train import SBITrainConfig

    people = load_people(VideoCache(video), ["p_train"])
    base = SBITrainConfig(test_people=("p_test",), val_people=("p_val",), compress_p=0.0)
    plain = training_pairs(people, 4, np.random.default_rng(2), base)
    same = training_pairs(people, 4, np.random.default_rng(2), SBITrainConfig(**{**base.__dict__, "degrade_p": 0.0}))
    assert all(np.array_equal(x, y) for x, y in zip(plain, same))
    images, _, masks = training_pairs(people, 4, np.random.default_rng(2), SBITrainConfig(
        **{**base.__dict__, "degrade_p": 1.0, "degrade_range": (0.5, 0.5)}))
    real, fake = images[:4].astype(int), images[4:].astype(int)
    far = masks[4:] == 0                                                        # (4, S, S) outside the blend
    import cv2
    far = np.stack([cv2.erode(f.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0 for f in far])
    assert far.any() and np.abs(real - fake)[far].max() <= 1                    # the same resampling on both
    sharp = np.abs(np.diff(plain[0][:4].astype(int), axis=2)).mean()
    assert np.abs(np.diff(real, axis=2)).mean() < 0.8 * sharp                   # softer than the originals
    once = down_up(plain[0][:1], 0.5, min_side=8)
    assert once.shape == plain[0][:1].shape and once.dtype == np.uint8
