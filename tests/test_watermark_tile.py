"""The tile size follows the image size: small images (below ``short_below``) are marked with a 48 px tile,
the others keep 64 px; the blind decoder searches both where an image could hold either, and pays for it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.watermark_attacks import jpeg, square
from provenance import watermark as wm

PAYLOAD = 0x0123456789ABCDEF
SHORT = PAYLOAD & 0xFFFFFFFF
CFG = wm.WatermarkConfig(read_learned=False)
ONE_TILE = replace(CFG, small_tile=0)      # the decoder before the small tile: 64 px only


@pytest.fixture(scope="module")
def frame(sample_dir) -> np.ndarray:
    from core.media import read_video

    return next(iter(read_video(sample_dir / "videos" / "d0.mp4", max_frames=1))).image


def _period_error(delta: np.ndarray, P: int) -> float:
    """RMS difference between the luma change and itself shifted by P px (both axes), relative to its RMS."""
    d = delta.astype(np.float64)
    diff = np.concatenate([(d[P:] - d[:-P]).ravel(), (d[:, P:] - d[:, :-P]).ravel()])
    return float(np.sqrt(np.mean(diff ** 2)) / np.sqrt(np.mean(d ** 2)))


# ---------------------------------------------------------------- the rule
def test_tile_follows_the_image_size():
    assert CFG.tile_for(128, 128) == 48 and CFG.tile_for(64, 96) == 48 and CFG.tile_for(200, 240) == 48
    assert CFG.tile_for(224, 224) == 64 and CFG.tile_for(256, 256) == 64
    assert ONE_TILE.tile_for(128, 128) == 64
    small = CFG.at_tile(48)
    assert (small.tile, small.r_lo, small.r_hi) == (48, 1.5, 12.0)
    assert small.r_lo / 48 == CFG.r_lo / 64 and small.r_hi == 48 / 4      # same cycles/px; P/4 on top
    assert CFG.at_tile(64) is CFG
    with pytest.raises(ValueError):
        CFG.at_tile(32)


def test_decoder_searches_the_small_tile_only_where_a_small_original_fits():
    assert CFG.decode_tiles(128, 128) == (48, 64)            # small: the new tile first, then old files' 64
    assert CFG.decode_tiles(256, 256) == (64, 48)            # could be a small face upscaled 2x
    assert CFG.decode_tiles(492, 492) == (64, 48)            # 224 x 2.2 = 492.8
    assert CFG.decode_tiles(493, 493) == (64,) and CFG.decode_tiles(720, 1280) == (64,)
    assert ONE_TILE.decode_tiles(128, 128) == (64,)
    assert CFG.at_tile(48, 256, 256).scale_min == pytest.approx(256 / 224)   # only upscaled small originals
    assert CFG.at_tile(48, 64, 64).scale_min == CFG.scale_min == 0.35


# ---------------------------------------------------------------- embedding
def test_small_image_is_marked_with_the_48px_tile():
    grey = np.full((128, 128, 3), 128, np.uint8)                         # no clipping, blind pattern
    blind = replace(CFG, informed=False)
    delta = wm.embed(grey, PAYLOAD, blind)[..., 0].astype(np.float64) - 128
    assert _period_error(delta, 48) < 0.1 < 1.0 < _period_error(delta, 64)
    delta256 = wm.embed(np.full((256, 256, 3), 128, np.uint8), PAYLOAD, blind)[..., 0].astype(np.float64) - 128
    assert _period_error(delta256, 64) < 0.1 < 1.0 < _period_error(delta256, 48)


# ---------------------------------------------------------------- decoding
def test_128px_face_reads_back_from_the_48px_tile(frame):
    face = square(frame, 128)
    marked = wm.embed(face, PAYLOAD, CFG)
    psnr = 10 * np.log10(255.0 ** 2 / np.mean((marked.astype(float) - face) ** 2))
    assert 40.0 <= psnr <= 42.0
    for x in (marked, jpeg(marked, 50)):
        res = wm.decode(x, CFG)
        assert res.detected and res.payload == SHORT and res.payload_bits == 32, res
        assert res.extras["tile"] == 48 and res.extras["tiles_searched"] == [48, 64]
    up = wm.decode(square(marked, 256), CFG)                              # the face upscaled 2x
    assert up.detected and up.payload == SHORT and up.extras["tile"] == 48 and abs(up.scale - 2.0) < 0.02
    assert not wm.decode(marked, ONE_TILE).detected                       # the 64 px decoder cannot read it


def test_256px_image_keeps_the_64px_tile_and_pays_for_two(frame):
    img = square(frame, 256)
    marked = wm.embed(img, PAYLOAD, CFG)
    res, single = wm.decode(marked, CFG), wm.decode(marked, ONE_TILE)
    assert res.detected and res.payload == PAYLOAD and res.payload_bits == 64 and res.extras["tile"] == 64
    assert res.extras["tiles_searched"] == [64, 48] and single.extras["tiles_searched"] == [64]
    assert res.p_value == pytest.approx(2 * single.p_value, rel=1e-9)    # Bonferroni over the tile family
    assert 0 < res.p_value < 1e-6


def test_old_128px_files_with_the_64px_tile_still_read(frame):
    face = square(frame, 128)
    old = wm.embed(face, PAYLOAD, ONE_TILE)                               # marked before the small tile
    res, single = wm.decode(old, CFG), wm.decode(old, ONE_TILE)
    assert res.detected and res.payload == SHORT and res.extras["tile"] == 64
    assert res.p_value == pytest.approx(2 * single.p_value, rel=1e-9)
    cands = [int(v) for v in np.random.default_rng(5).integers(0, 2 ** 63, size=200)]
    matched = wm.decode(old, CFG, candidates=cands + [PAYLOAD])
    assert matched.detected and matched.payload == SHORT


def test_store_match_at_the_small_tile(frame):
    weak = replace(CFG, psnr_db=55.0)                                     # too weak to read blind
    marked = wm.embed(square(frame, 128), PAYLOAD, weak)
    decoys = [int(v) for v in np.random.default_rng(3).integers(0, 2 ** 63, size=999)]
    assert not wm.decode(marked, weak).detected
    res = wm.decode(marked, weak, candidates=decoys + [PAYLOAD])
    assert res.detected and res.extras["method"] == "matched" and res.extras["tile"] == 48
    assert res.payload == SHORT and res.payload_bits == 32
    assert not wm.decode(marked, weak, candidates=decoys).detected        # not stored: never invented
