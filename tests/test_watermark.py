"""The faceforge watermark: ECC, embedding quality, robustness to the target attacks, false positives."""

from __future__ import annotations

import io

import numpy as np
import pytest

from core.common import FaceforgeError
from provenance import ecc
from provenance import watermark as wm

PAYLOAD = 0xF00DFACE12345678


def _square(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w, _ = img.shape
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def real_frames(sample_video) -> np.ndarray:
    from core.media import read_video

    return np.stack([f.image for f in read_video(sample_video, every=5, max_frames=10)])  # (10, H, W, 3)


@pytest.fixture(scope="module")
def frame256(real_frames) -> np.ndarray:
    return _square(real_frames[0], 256)


@pytest.fixture(scope="module")
def marked256(frame256) -> np.ndarray:
    return wm.embed(frame256, PAYLOAD)


def _psnr(a, b) -> float:
    return 10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def _jpeg(x: np.ndarray, q: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=q)
    return np.array(Image.open(buf).convert("RGB"))


# ---------------------------------------------------------------- ECC
def test_ecc_roundtrip_corrects_errors_and_rejects_noise():
    code = ecc.encode(PAYLOAD)
    assert code.shape == (ecc.N_CODED,) == (172,)
    soft = 1.0 - 2.0 * code
    assert ecc.decode(soft)[0] == PAYLOAD
    rng = np.random.default_rng(0)
    noisy = soft.copy()
    noisy[rng.choice(len(soft), 10, replace=False)] *= -1          # 10 hard errors, spread out
    assert ecc.decode(noisy)[0] == PAYLOAD
    # Random soft values almost never pass Viterbi + CRC-16 (2^-16 per word).
    assert sum(ecc.decode(rng.normal(size=172))[0] is not None for _ in range(100)) == 0
    with pytest.raises(ValueError):
        ecc.encode(1 << 64)


def test_encode_many_matches_encode():
    rng = np.random.default_rng(4)
    payloads = [0, 1, PAYLOAD, (1 << 64) - 1] + [int(v) for v in rng.integers(0, 2 ** 63, size=20)]
    many = ecc.encode_many(payloads)
    assert many.shape == (24, ecc.N_CODED) and many.dtype == np.uint8

    def scalar(p):  # the reference: the scalar CRC and convolutional encoder, bit by bit
        pbits = np.array([(p >> (63 - i)) & 1 for i in range(64)], np.uint8)
        crc = ecc.crc16(pbits)
        cbits = np.array([(crc >> (15 - i)) & 1 for i in range(16)], np.uint8)
        return ecc.conv_encode(np.concatenate([pbits, cbits, np.zeros(ecc.TAIL, np.uint8)]))

    assert all(np.array_equal(many[i], scalar(p)) for i, p in enumerate(payloads))
    assert np.array_equal(ecc.encode(PAYLOAD), scalar(PAYLOAD))


def test_crc16_known_value():
    # CRC-16/CCITT-FALSE of ASCII "123456789" is 0x29B1.
    bits = np.unpackbits(np.frombuffer(b"123456789", dtype=np.uint8))
    assert ecc.crc16(bits) == 0x29B1


# ---------------------------------------------------------------- embedding
def test_embed_keeps_shape_and_psnr(frame256, marked256):
    assert marked256.shape == frame256.shape and marked256.dtype == np.uint8
    assert 40.0 <= _psnr(frame256, marked256) <= 43.0
    clip = np.stack([frame256[:128, :128]] * 3)
    out = wm.embed(clip, PAYLOAD)
    assert out.shape == clip.shape
    assert np.array_equal(out[0], out[2])                          # the same pattern on every frame


def test_embed_rejects_bad_input(frame256):
    with pytest.raises(FaceforgeError, match="uint8"):
        wm.embed(frame256.astype(np.float32), PAYLOAD)
    with pytest.raises(FaceforgeError, match="shape"):
        wm.embed(frame256[..., 0], PAYLOAD)
    with pytest.raises(FaceforgeError, match="64-bit"):
        wm.embed(frame256, -1)


def _resize(x, f):
    import cv2

    return cv2.resize(x, (int(x.shape[1] * f), int(x.shape[0] * f)), interpolation=cv2.INTER_AREA)


def _crop(x, area):
    h, w, _ = x.shape
    s = np.sqrt(area)
    return x[9:9 + int(h * s), 13:13 + int(w * s)]


def _gain(x, f, contrast=False):
    x = x.astype(float)
    x = (x - x.mean()) * f + x.mean() if contrast else x * f
    return np.clip(x, 0, 255).astype(np.uint8)


ATTACKS = {
    "none": lambda x: x,
    "jpeg_q50": lambda x: _jpeg(x, 50),
    "resize_0.5": lambda x: _resize(x, 0.5),
    "crop_70pct": lambda x: _crop(x, 0.7),
    "brightness_+20": lambda x: _gain(x, 1.2),
    "brightness_-20": lambda x: _gain(x, 0.8),
    "contrast_+20": lambda x: _gain(x, 1.2, contrast=True),
    "contrast_-20": lambda x: _gain(x, 0.8, contrast=True),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_payload_survives_attack_at_256px(marked256, attack):
    res = wm.decode(ATTACKS[attack](marked256))
    assert res.detected and res.payload == PAYLOAD, res
    assert res.p_value < 1e-6 and res.confidence > 1 - 1e-6
    if attack == "resize_0.5":
        assert abs(res.scale - 0.5) < 0.02


def test_shift_ramp_uses_signed_frequencies():
    # A bin stored at index P - f stands for frequency -f: a half-pixel shift turns it by -pi f / P.
    from provenance.watermark import pattern

    cfg = wm.WatermarkConfig()
    pat = pattern.pattern(cfg)
    P = cfg.tile
    ramp = pattern.shift_ramp((0.0, 0.5), cfg, pat)
    b = int(np.nonzero(pat.bins_v > P // 2)[0][0])
    f = int(pat.bins_v[b]) - P                                        # negative frequency
    assert np.isclose(ramp[b], np.exp(1j * np.pi * f / P))
    assert np.allclose(pattern.shift_ramp((3.0, 5.0), cfg, pat),          # integer shifts: index form is fine
                       np.exp(2j * np.pi * (pat.bins_u * 3 + pat.bins_v * 5) / P))


def test_store_match_finds_a_watermark_too_weak_to_read_blind(frame256):
    # At 52 dB the 80 payload bits cannot be read, but one of 1,000 known payloads can be recognised
    # (48 dB before the locally normalised read, which now reads that blind).
    from dataclasses import replace

    cfg = replace(wm.WatermarkConfig(), psnr_db=52.0)
    marked = wm.embed(frame256, PAYLOAD, cfg)
    decoys = [int(v) for v in np.random.default_rng(1).integers(0, 2 ** 63, size=999)]
    blind = wm.decode(marked, cfg)
    assert not blind.detected and blind.extras["method"] is None
    res = wm.decode(marked, cfg, candidates=decoys + [PAYLOAD])
    assert res.detected and res.payload == PAYLOAD and res.extras["method"] == "matched"
    assert res.p_value < 1e-9 and res.extras["match_candidates"] == 1000
    absent = wm.decode(marked, cfg, candidates=decoys)                # the true payload is not registered
    assert not absent.detected and absent.payload is None
    plain = wm.decode(frame256, cfg, candidates=decoys + [PAYLOAD])   # nothing embedded
    assert not plain.detected and plain.p_value > 1e-6
    strong = wm.decode(wm.embed(frame256, PAYLOAD), candidates=decoys)   # readable blind: not replaced
    assert strong.detected and strong.payload == PAYLOAD and strong.extras["method"] == "blind"


def test_store_match_never_names_a_neighbouring_payload(frame256):
    # Sequential ids share ~85 % of their code words: a weak copy must not be pinned on a neighbour.
    from dataclasses import replace

    cfg = replace(wm.WatermarkConfig(), psnr_db=52.0)                     # (50 dB before the normalised read)
    base = 1000
    for k, payload in enumerate((base, base + 7)):
        marked = wm.embed(np.roll(frame256, 40 * k, axis=1), payload, cfg)
        res = wm.decode(marked, cfg, candidates=range(base - 20, base + 30))
        assert not wm.decode(marked, cfg).detected                     # too weak to read blind
        assert not res.detected or res.payload == payload, res


def test_video_h264_crf28_with_frame_drop(tmp_path, sample_dir):
    # One of the 11 of 13 sample videos that pass at 256 px (benchmarks/watermark.py has all 13).
    from core.media import read_video, write_video

    frames = [f.image for f in read_video(sample_dir / "videos" / "d0.mp4", max_frames=10)]
    clip = np.stack([_square(f, 256) for f in frames])                # (10, 256, 256, 3)
    marked = wm.embed(clip, PAYLOAD)
    keep = np.ones(len(marked), bool)
    keep[3] = False                                                   # drop 10 % of the frames
    path = write_video(tmp_path / "c.mp4", marked[keep], fps=25, crf=28)
    decoded = np.stack([f.image for f in read_video(path)])
    res = wm.decode(decoded)
    assert res.n_frames == 9
    assert res.detected and res.payload == PAYLOAD, res


def test_no_false_positive_on_real_frames_and_other_key(real_frames, marked256):
    for frame in real_frames[:4]:
        res = wm.decode(_square(frame, 192))
        assert not res.detected and res.payload is None
        assert res.p_value > 1e-6
    other = wm.decode(marked256, wm.WatermarkConfig(key="someone-else"))
    assert not other.detected and other.p_value > 1e-6


def test_null_p_values_on_noise_are_not_small():
    rng = np.random.default_rng(3)
    ps = [wm.decode((rng.random((96, 96, 3)) * 255).astype(np.uint8)).p_value for _ in range(5)]
    assert min(ps) > 1e-3


def test_result_to_dict_is_json_ready(marked256):
    import json

    d = wm.decode(marked256).to_dict()
    assert d["payload"] == f"{PAYLOAD:016x}"
    json.dumps(d)


def test_benchmark_runs_trustmark_only_from_local_weights(tmp_path, monkeypatch):
    # A trustmark package without its weights must be reported, not downloaded or half-run.
    import sys

    from benchmarks import watermark_methods as bench

    pkg = tmp_path / "trustmark"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported without weights')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "trustmark", raising=False)
    with pytest.raises(RuntimeError, match="weights not on disk"):
        bench.TrustMarkMethod()
    methods, notes = bench.make_methods(10)
    assert "weights not on disk" in notes["TrustMark"]
    assert [m.name for m in methods][:2] == ["faceforge", "faceforge+store"]
    assert all(not m.name.startswith("TrustMark") for m in methods)


def test_benchmark_merge_keeps_the_config_of_the_classical_rows():
    # A partial refresh of the classical rows records the configuration that produced them; one of other
    # methods' rows leaves the recorded configuration alone.
    from argparse import Namespace

    from benchmarks.watermark_report import merged

    row = {"method": "faceforge", "size": 128, "attack": "none", "exact_payload_rate": 1.0}
    old = {"rows": [dict(row, exact_payload_rate=0.5)], "watermark_config": {"hp_sigma": 4.0}, "notes": {}}
    new = {"rows": [row], "watermark_config": {"hp_sigma": 1.5}, "notes": {}, "false_positives": None,
           "false_positives_small": {}, "false_positives_learned": {}, "runtime_s": 1.0}
    out = merged(old, new, Namespace(merge=True))
    assert out["rows"] == [row] and out["watermark_config"] == {"hp_sigma": 1.5}
    other = dict(new, rows=[dict(row, method="dwtDct")])
    assert merged(old, other, Namespace(merge=True))["watermark_config"] == {"hp_sigma": 4.0}
