"""The short (32-bit store index) watermark payload of small images: ECC, embedding, the p-value, the
store's short ids and `verify` on 128 px files."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

from benchmarks.watermark_attacks import jpeg, square
from provenance import api, ecc
from provenance import watermark as wm
from provenance.store import Store, short_id
from provenance.watermark import search

PAYLOAD = 0x0123456789ABCDEF
SHORT = PAYLOAD & 0xFFFFFFFF


@pytest.fixture(scope="module")
def frames(sample_dir) -> np.ndarray:
    """Six frames of d0 (one of the sample videos whose 128 px crops read blind; the textured HDTF
    studio shots are the misses in benchmarks/watermark.py)."""
    from core.media import read_video

    return np.stack([f.image for f in read_video(sample_dir / "videos" / "d0.mp4", every=5, max_frames=6)])


@pytest.fixture(scope="module")
def face128(frames) -> np.ndarray:
    return square(frames[0], 128)


@pytest.fixture(scope="module")
def marked128(face128) -> np.ndarray:
    return wm.embed(face128, PAYLOAD)


# ---------------------------------------------------------------- ECC and sizing
def test_short_code_roundtrip_corrects_errors():
    code = ecc.encode(SHORT, ecc.SHORT)
    assert code.shape == (ecc.SHORT.n_coded,) == ((32 + 16 + 6) * 3,)
    soft = 1.0 - 2.0 * code
    assert ecc.decode(soft, ecc.SHORT)[0] == SHORT
    rng = np.random.default_rng(0)
    noisy = soft.copy()
    noisy[rng.choice(len(soft), 20, replace=False)] *= -1          # 20 hard errors of 162
    assert ecc.decode(noisy, ecc.SHORT)[0] == SHORT
    assert np.array_equal(ecc.encode_many([PAYLOAD], ecc.SHORT)[0], code)   # wider payloads: low 32 bits
    with pytest.raises(ValueError):
        ecc.encode(1 << 32, ecc.SHORT)


def test_payload_length_follows_the_image_size():
    cfg = wm.WatermarkConfig()
    assert wm.code_for(128, 128, cfg) is ecc.SHORT and wm.code_for(64, 96, cfg) is ecc.SHORT
    assert wm.code_for(224, 224, cfg) is ecc.LONG and wm.code_for(256, 256, cfg) is ecc.LONG
    assert wm.short_id(PAYLOAD) == short_id(PAYLOAD) == 0x89ABCDEF


def test_code_tail_is_the_smaller_of_the_crc_and_the_codeword_bound():
    assert search.code_tail(None, ecc.SHORT) == 1.0
    assert search.code_tail(0.0, ecc.SHORT) == 2.0 ** -16                     # a bare CRC pass
    z = 12.0                                                                   # 2^32 exp(-72) = 8.0e-23
    assert math.isclose(search.code_tail(z, ecc.SHORT), 2.0 ** 32 * math.exp(-z * z / 2), rel_tol=1e-9)
    assert search.code_tail(z, ecc.LONG) > search.code_tail(z, ecc.SHORT)       # 2^64 words to choose from
    assert search.LENGTHS == 2                                                  # both lengths are paid for


# ---------------------------------------------------------------- embedding and decoding
def test_128px_image_carries_the_short_id(face128, marked128):
    psnr = 10 * np.log10(255.0 ** 2 / np.mean((marked128.astype(float) - face128) ** 2))
    assert 40.0 <= psnr <= 42.0
    for x in (marked128, jpeg(marked128, 50)):
        res = wm.decode(x)
        assert res.detected and res.payload_bits == 32 and res.payload == SHORT, res
        assert res.is_short and res.p_value < 1e-6
        assert res.to_dict()["payload"] == "89abcdef"


def test_256px_image_still_carries_the_full_payload(frames):
    res = wm.decode(wm.embed(square(frames[1], 256), PAYLOAD))
    assert res.detected and res.payload_bits == 64 and res.payload == PAYLOAD


def test_short_clip_reads_from_the_mean_of_its_frames(frames):
    clip = np.stack([square(f, 128) for f in frames])                        # (6, 128, 128, 3)
    marked = wm.embed(clip, PAYLOAD)
    res = wm.decode(marked[::2])                                              # half the frames dropped
    assert res.n_frames == 3 and res.detected and res.payload == SHORT


def test_no_false_positive_on_unmarked_128px_frames_and_noise(frames):
    rng = np.random.default_rng(7)
    imgs = [square(f, 128) for f in frames] + [(rng.random((128, 128, 3)) * 255).astype(np.uint8)]
    decoys = [int(v) for v in rng.integers(0, 2 ** 63, size=500)]
    for img in imgs:
        for cands in (None, decoys):
            res = wm.decode(img, candidates=cands)
            assert not res.detected and res.payload is None and res.p_value > 1e-6


def test_store_match_finds_a_short_payload(face128):
    from dataclasses import replace

    cfg = replace(wm.WatermarkConfig(), psnr_db=55.0)                          # too weak to read blind
    marked = wm.embed(face128, PAYLOAD, cfg)
    decoys = [int(v) for v in np.random.default_rng(3).integers(0, 2 ** 63, size=999)]
    assert not wm.decode(marked, cfg).detected
    res = wm.decode(marked, cfg, candidates=decoys + [PAYLOAD])
    assert res.detected and res.extras["method"] == "matched"
    assert res.payload_bits == 32 and res.payload == SHORT
    assert not wm.decode(marked, cfg, candidates=decoys).detected              # not stored: never invented


# ---------------------------------------------------------------- store and verify
def test_store_finds_renders_by_short_id_and_migrates_old_stores(tmp_path):
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)                                                  # a version-1 store
    con.executescript("""CREATE TABLE renders (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT, sha256 TEXT
        NOT NULL, phash TEXT, path TEXT NOT NULL, mime TEXT, manifest_label TEXT, manifest_json TEXT,
        generation_json TEXT, actions TEXT, ingredients TEXT, created_at REAL NOT NULL, UNIQUE (sha256, path));
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema_version', '1');""")
    con.execute("INSERT INTO renders (payload, sha256, path, actions, created_at) VALUES (?, ?, ?, ?, 0)",
                (f"{PAYLOAD:016x}", "a" * 64, "old.mp4", '["created"]'))
    con.commit()
    con.close()
    with Store(db) as st:
        assert [r["path"] for r in st.by_payload(SHORT, bits=32)] == ["old.mp4"]
        st.record(sha256="b" * 64, path="new.mp4", payload=0xFFFF000012345678, actions=("created",))
        assert [r["path"] for r in st.by_payload(0x12345678, bits=32)] == ["new.mp4"]
        assert st.by_payload(0x12345678) == []                                 # 64-bit lookups stay exact
        assert st.short_id_taken(0x12345678) and not st.short_id_taken(0x12345679)


def test_new_payload_avoids_short_ids_already_in_the_store(tmp_path, monkeypatch):
    import secrets

    with Store(tmp_path / "s.sqlite") as st:
        st.record(sha256="a" * 64, path="x.png", payload=PAYLOAD)
        draws = iter([0xAAAA000000000000 | SHORT, 0x1111])                    # first draw collides
        monkeypatch.setattr(secrets, "randbits", lambda n: next(draws))
        assert api.new_payload(st) == 0x1111


def test_verify_128px_file_by_short_id(tmp_path, marked128):
    from PIL import Image

    from provenance import keys

    identity = keys.init_identity(tmp_path / "keys")
    Image.fromarray(marked128).save(tmp_path / "face.png")
    store = tmp_path / "prov.sqlite"
    signed = api.sign_file(tmp_path / "face.png", tmp_path / "signed.png", identity=identity,
                           generation={"model": "warp"}, actions=("created", "watermarked"), payload=PAYLOAD,
                           store=store)
    intact = api.verify_file(signed["path"], trust_anchors=identity.trust_anchor_pem())
    assert intact["verdict"] == "trusted" and intact["warnings"] == []        # short id agrees with the binding
    assert intact["watermark"]["payload"] == "89abcdef"
    copy = tmp_path / "copy.jpg"
    Image.open(signed["path"]).save(copy, quality=75)                          # manifest stripped
    res = api.verify_file(copy, store=store)
    assert res["verdict"] == "stripped_recovered", res["reason"]
    assert "short watermark id 89abcdef (32-bit store index)" in res["reason"]
    assert res["store"]["record"]["payload"] == f"{PAYLOAD:016x}"             # the full record, from the store
    alone = api.verify_file(copy)
    assert alone["verdict"] == "watermark_only"
    assert "short watermark id 89abcdef" in alone["reason"] and "provenance store" in alone["reason"]
