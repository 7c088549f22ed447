"""The locally normalised read (issue 18, fourth pass): the high-passed luma is divided by its local RMS
before folding, so textured regions (where the host swamps the pattern) count less than flat ones; small
clips put more of the pattern on flat areas (``clip_mask_beta``). Marks made before still read."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.watermark_attacks import crop, jpeg, square
from provenance import watermark as wm
from provenance.watermark.embedding import texture_mask
from provenance.watermark.pattern import local_norm

PAYLOAD = 0x0123456789ABCDEF
SHORT = PAYLOAD & 0xFFFFFFFF
CFG = wm.WatermarkConfig(read_learned=False)
BEFORE = replace(CFG, hp_sigma=4.0, norm_sigma=0.0, clip_mask_beta=0.0,   # the third pass's read and clips
                 robust_preset="veryfast")


def _half_textured(seed: int = 0) -> np.ndarray:
    """(64, 64) float32: left half flat (noise RMS 1), right half textured (noise RMS 20)."""
    z = np.random.default_rng(seed).normal(0, 1, (64, 64)).astype(np.float32)
    z[:, 32:] *= 20
    return z


def _frames(sample_dir, video: str, n: int = 10) -> list[np.ndarray]:
    from core.media import read_video

    return [f.image for f in read_video(sample_dir / "videos" / f"{video}.mp4", max_frames=n)]


def _crf28(tmp_path, clip: np.ndarray) -> np.ndarray:
    from core.media import read_video, write_video

    keep = np.ones(len(clip), bool)
    keep[3] = False                                                       # 10 % frame drop
    path = write_video(tmp_path / "c.mp4", clip[keep], fps=25, crf=28)
    return np.stack([f.image for f in read_video(path)])


# ---------------------------------------------------------------- the pieces
def test_local_norm_evens_out_flat_and_textured_regions():
    z = _half_textured()

    def textured_over_flat(x):
        return np.sqrt(np.mean(x[8:56, 40:56] ** 2)) / np.sqrt(np.mean(x[8:56, 8:24] ** 2))

    assert textured_over_flat(z) > 15
    assert 0.5 < textured_over_flat(local_norm(z, 2.0, 0.01)) < 2.0
    assert 2.0 < textured_over_flat(local_norm(z, 2.0, 0.25)) < 5.0      # flat RMS floored at 1/4 the median
    assert local_norm(z, 0.0, 0.25) is z                                  # off
    floored = local_norm(z, 2.0, 10.0)                                    # floor above every local RMS
    assert np.allclose(floored, z, rtol=1e-4, atol=1e-4)                  # = a constant weight (mean 1)


def test_negative_mask_beta_puts_the_pattern_on_flat_areas():
    y = 128 + _half_textured()
    mask = texture_mask(y, replace(CFG, mask_beta=-0.5))
    assert mask.shape == y.shape and np.mean(mask ** 2) == pytest.approx(1.0, rel=1e-3)
    assert mask[:, 4:24].mean() > 1.5 * mask[:, 40:60].mean()
    assert np.all(texture_mask(y, CFG) == 1.0)                            # images: uniform strength


def test_only_small_clips_get_the_flat_area_mask():
    img = np.full((128, 128, 3), 128, np.uint8)
    img[:, 64:] = np.clip(128 + np.random.default_rng(1).normal(0, 30, (128, 64, 3)), 0, 255).astype(np.uint8)
    blind = replace(CFG, informed=False)

    def flat_over_textured(x):                                            # RMS of the luma change per half
        d = wm.embed(x, PAYLOAD, blind).astype(np.float64) - x
        d = d[..., 0] if d.ndim == 3 else d[0, ..., 0]
        return np.sqrt(np.mean(d[8:-8, 8:56] ** 2)) / np.sqrt(np.mean(d[8:-8, 72:-8] ** 2))

    clip = np.stack([img] * 3)
    assert flat_over_textured(clip) > 1.5                                 # a 128 px clip
    assert 0.8 < flat_over_textured(img) < 1.25                           # an image
    big = np.stack([np.kron(img, np.ones((2, 2, 1), np.uint8))] * 3)      # a 256 px clip: 64 px tile
    assert 0.8 < flat_over_textured(big) < 1.25


# ---------------------------------------------------------------- reads
def test_128px_crop_of_a_textured_studio_frame_reads_blind(sample_dir):
    face = square(_frames(sample_dir, "hdtf_wda_edmarkey0", 1)[0], 128)
    x = crop(wm.embed(face, PAYLOAD, CFG), 0.7)                           # 107 x 107 px
    res = wm.decode(x, CFG)
    assert res.detected and res.payload == SHORT and res.extras["tile"] == 48 and res.p_value < 1e-15, res
    assert abs(res.scale - 1.0) < 0.01
    assert not wm.decode(crop(wm.embed(face, PAYLOAD, BEFORE), 0.7), BEFORE).detected   # the third pass


def test_128px_clip_reads_blind_after_crf28(tmp_path, sample_dir):
    clip = np.stack([square(f, 128) for f in _frames(sample_dir, "d10")])
    res = wm.decode(_crf28(tmp_path, wm.embed(clip, PAYLOAD, CFG)), CFG)
    assert res.n_frames == 9 and res.detected and res.payload == SHORT and res.p_value < 1e-15, res
    old = wm.decode(_crf28(tmp_path, wm.embed(clip, PAYLOAD, BEFORE)), BEFORE)
    assert not old.detected


def test_marks_made_before_still_read(sample_dir):
    frame = _frames(sample_dir, "d0", 1)[0]
    for size, want in ((128, SHORT), (256, PAYLOAD)):
        old = wm.embed(square(frame, size), PAYLOAD, BEFORE)
        for x in (old, jpeg(old, 50)):
            res = wm.decode(x, CFG)
            assert res.detected and res.payload == want, (size, res)
