"""Signing identity, C2PA sign/verify on JPEG/PNG/MP4, the store, and "never crash, never lie"."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from core.common import FaceforgeError
from provenance import api, keys
from provenance.store import Store

GEN = {"model": "fewshot", "checkpoint_sha256": "ab" * 32, "mode": "ff", "T": 8, "source_id": "s42",
       "driver_id": "d0", "seed": 7}
INTACT = {"trusted", "valid_untrusted"}


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return keys.init_identity(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def face(sample_portrait) -> np.ndarray:
    from PIL import Image

    img = Image.open(sample_portrait).convert("RGB")
    s = min(img.size)
    return np.array(img.crop((0, 0, s, s)).resize((256, 256)))          # (256, 256, 3)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory, face) -> Path:
    """Unsigned, watermarked JPEG / PNG / MP4 (8 frames) with a known payload."""
    from PIL import Image

    from core.media import write_video
    from provenance import watermark

    d = tmp_path_factory.mktemp("media")
    marked = watermark.embed(face, PAYLOAD)
    Image.fromarray(marked).save(d / "face.jpg", quality=95)
    Image.fromarray(marked).save(d / "face.png")
    clip = np.stack([np.roll(face, i, axis=1) for i in range(8)])
    write_video(d / "face.mp4", watermark.embed(clip, PAYLOAD), fps=25, crf=18)
    return d


PAYLOAD = 0x0123456789ABCDEF


@pytest.fixture(scope="module")
def signed(media_dir, identity, tmp_path_factory) -> dict:
    """Signed copies of the three files, recorded in one store."""
    out = tmp_path_factory.mktemp("signed")
    store = Store(out / "prov.sqlite")
    files = {}
    for ext in ("jpg", "png", "mp4"):
        res = api.sign_file(media_dir / f"face.{ext}", out / f"signed.{ext}", identity=identity, generation=GEN,
                            actions=("created", "watermarked"), payload=PAYLOAD, store=store,
                            ingredients=[media_dir / "face.png"])
        files[ext] = Path(res["path"])
    store.close()
    return {"files": files, "store": out / "prov.sqlite", "dir": out}


def _mutate(src: Path, dst: Path, fn) -> Path:
    data = bytearray(src.read_bytes())
    dst.write_bytes(bytes(fn(data)))
    return dst


def _verify(path, identity=None, **kw) -> dict:
    return api.verify_file(path, trust_anchors=identity.ca_cert if identity else None, **kw)


# ---------------------------------------------------------------- keys
def test_identity_files_modes_and_certificates(identity):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    d = identity.key_dir
    for name in ("ca.key", "signer.key"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    for name in ("ca.pem", "signer.pem", "chain.pem"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o644
    ca = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate((d / "signer.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert leaf.public_key().curve.name == "secp256r1"
    assert "PRIVATE" not in repr(identity) and "PRIVATE" not in repr(identity.signer)


def test_init_refuses_overwrite_and_open_key_modes(tmp_path):
    ident = keys.init_identity(tmp_path / "k")
    before = (tmp_path / "k" / "signer.key").read_bytes()
    with pytest.raises(FaceforgeError, match="--force"):
        keys.init_identity(tmp_path / "k")
    assert (tmp_path / "k" / "signer.key").read_bytes() == before
    keys.init_identity(tmp_path / "k", force=True)
    assert (tmp_path / "k" / "signer.key").read_bytes() != before
    os.chmod(tmp_path / "k" / "signer.key", 0o644)
    with pytest.raises(FaceforgeError, match="chmod 600"):
        keys.load_identity(tmp_path / "k")
    with pytest.raises(FaceforgeError, match="not found"):
        keys.load_identity(tmp_path / "missing")
    sig = ident.signer.sign(b"claim bytes")
    assert len(sig) == 64                                              # ES256 raw r || s


# ---------------------------------------------------------------- sign + verify
@pytest.mark.parametrize("ext", ["jpg", "png", "mp4"])
def test_signed_file_verifies_and_trust_is_gated(signed, identity, ext):
    path = signed["files"][ext]
    untrusted = _verify(path)
    assert untrusted["verdict"] == "valid_untrusted"
    assert "signingCredential.untrusted" in untrusted["validation"]["failures"]
    trusted = _verify(path, identity)
    assert trusted["verdict"] == "trusted", trusted["reason"]
    man = trusted["manifest"]
    assert man["actions"][:2] == ["c2pa.created", "c2pa.watermarked"]
    assert man["digital_source_type"].endswith("trainedAlgorithmicMedia")
    assert man["generation"] == GEN
    assert man["soft_binding"]["payload"] == f"{PAYLOAD:016x}"
    assert man["ingredients"] == [{"title": "face.png", "relationship": "inputTo"}]
    if ext != "mp4":                                                   # the mp4 is tested in test_watermark
        assert trusted["watermark"]["payload"] == f"{PAYLOAD:016x}"


def test_other_ca_is_not_trusted(signed, tmp_path):
    other = keys.init_identity(tmp_path / "other")
    res = _verify(signed["files"]["jpg"], other)
    assert res["verdict"] == "valid_untrusted"


def test_transcoded_variant_names_its_parent(signed, identity, tmp_path):
    from PIL import Image

    variant = tmp_path / "variant.jpg"
    Image.open(signed["files"]["png"]).save(variant, quality=60)
    api.sign_file(variant, tmp_path / "variant_signed.jpg", identity=identity, generation=GEN,
                  ingredients=[signed["files"]["png"]], actions=("transcoded",), payload=PAYLOAD)
    res = _verify(tmp_path / "variant_signed.jpg", identity)
    assert res["verdict"] == "trusted"
    assert res["manifest"]["actions"] == ["c2pa.opened", "c2pa.transcoded"]
    assert res["manifest"]["ingredients"][0]["relationship"] == "parentOf"
    with pytest.raises(FaceforgeError, match="parent"):
        api.sign_file(variant, tmp_path / "x.jpg", identity=identity, generation=GEN, actions=("transcoded",))
    with pytest.raises(FaceforgeError, match="payload"):
        api.sign_file(variant, tmp_path / "x.jpg", identity=identity, generation=GEN,
                      actions=("created", "watermarked"))


# ---------------------------------------------------------------- never crash, never lie
def _jpeg_scan_offset(data: bytes) -> int:
    return data.index(b"\xff\xda")                                     # start of scan: pixel data follows


def test_tampered_pixels_are_tampered(signed, identity, tmp_path):
    jpg = signed["files"]["jpg"]
    data = jpg.read_bytes()
    pos = (_jpeg_scan_offset(data) + len(data)) // 2
    bad = _mutate(jpg, tmp_path / "t.jpg", lambda d: d[:pos] + bytes([d[pos] ^ 0x5A]) + d[pos + 1:])
    res = _verify(bad, identity)
    assert res["verdict"] == "tampered"
    assert any(f["code"] == "assertion.dataHash.mismatch" for f in res["validation"]["integrity_failures"])
    png = signed["files"]["png"]
    pdata = png.read_bytes()
    ppos = pdata.index(b"IDAT") + 40
    badp = _mutate(png, tmp_path / "t.png", lambda d: d[:ppos] + bytes([d[ppos] ^ 0x01]) + d[ppos + 1:])
    assert _verify(badp, identity)["verdict"] == "tampered"
    mp4 = signed["files"]["mp4"]
    mdata = mp4.read_bytes()
    mpos = mdata.index(b"mdat") + 200
    badm = _mutate(mp4, tmp_path / "t.mp4", lambda d: d[:mpos] + bytes([d[mpos] ^ 0x01]) + d[mpos + 1:])
    assert _verify(badm, identity, decode_watermark=False)["verdict"] == "tampered"


def test_tampered_manifest_is_tampered(signed, identity, tmp_path):
    jpg = signed["files"]["jpg"]
    data = jpg.read_bytes()
    pos = data.index(b'"seed"') if b'"seed"' in data else data.index(b"seed")
    bad = _mutate(jpg, tmp_path / "m.jpg", lambda d: d[:pos + 2] + bytes([d[pos + 2] ^ 0x01]) + d[pos + 3:])
    res = _verify(bad, identity)
    assert res["verdict"] == "tampered", res["reason"]


def _jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, whole segment) up to the start of scan; the rest as marker 0xDA."""
    out, i = [], 2
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2:i + 4], "big")
        out.append((data[i + 1], data[i:i + 2 + length]))
        i += 2 + length
    out.append((0xDA, data[i:]))
    return out


def test_swapped_manifest_is_tampered(signed, identity, tmp_path, face):
    from PIL import Image

    other_src = tmp_path / "other.jpg"
    Image.fromarray(np.ascontiguousarray(face[::-1])).save(other_src, quality=95)
    other = api.sign_file(other_src, tmp_path / "other_signed.jpg", identity=identity, generation=GEN)["path"]
    a, b = signed["files"]["jpg"].read_bytes(), Path(other).read_bytes()
    manifest_a = b"".join(seg for m, seg in _jpeg_segments(a) if m == 0xEB)      # APP11 = JUMBF/C2PA
    rest_b = b"".join(seg for m, seg in _jpeg_segments(b) if m != 0xEB)
    swapped = tmp_path / "swapped.jpg"
    swapped.write_bytes(b"\xff\xd8" + manifest_a + rest_b)
    res = _verify(swapped, identity)
    assert res["verdict"] == "tampered"


def test_truncated_file_is_never_intact(signed, identity, tmp_path):
    for ext in ("jpg", "png", "mp4"):
        src = signed["files"][ext]
        cut = _mutate(src, tmp_path / f"cut.{ext}", lambda d: d[: int(len(d) * 0.8)])
        try:
            res = _verify(cut, identity)
        except FaceforgeError:
            continue
        assert res["verdict"] not in INTACT, (ext, res["verdict"])


def test_reencoded_file_is_stripped_and_recovered(signed, tmp_path):
    from PIL import Image

    stripped = tmp_path / "stripped.jpg"
    Image.open(signed["files"]["png"]).save(stripped, quality=80)       # re-encode drops the manifest
    res = api.verify_file(stripped, store=signed["store"])
    assert res["verdict"] == "stripped_recovered", res["reason"]
    assert res["store"]["record"]["payload"] == f"{PAYLOAD:016x}"
    assert res["manifest"]["generation"] == GEN                       # the original manifest, from the store
    assert api.verify_file(stripped)["verdict"] == "watermark_only"


def test_heavily_recompressed_copy_is_recovered_by_store_match(signed, tmp_path):
    # JPEG q15 of the watermarked portrait: the sync word is found but the payload bits are not
    # readable (q20 is read blind since the code-word p-value); the store's payloads are matched instead.
    from PIL import Image

    copy = tmp_path / "q15.jpg"
    Image.open(signed["files"]["png"]).save(copy, quality=15)
    alone = api.verify_file(copy)
    assert alone["verdict"] == "none" and "payload is unreadable" in alone["reason"]
    res = api.verify_file(copy, store=signed["store"])
    assert res["verdict"] == "stripped_recovered", res["reason"]
    assert res["watermark"]["extras"]["method"] == "matched" and res["watermark"]["p_value"] < 1e-6
    assert res["store"]["record"]["payload"] == f"{PAYLOAD:016x}" and "matched among" in res["reason"]
    with Store(signed["store"]) as st:
        assert st.payloads() == [PAYLOAD]


def test_unmarked_unsigned_file_has_no_provenance(face, tmp_path, signed):
    from PIL import Image

    plain = tmp_path / "plain.png"
    Image.fromarray(face).save(plain)
    res = api.verify_file(plain, store=signed["store"])
    assert res["verdict"] == "none" and res["watermark"]["detected"] is False


def test_renamed_extension_gives_same_verdict(signed, identity, tmp_path):
    renamed = tmp_path / "looks_like.png"
    renamed.write_bytes(signed["files"]["jpg"].read_bytes())
    assert _verify(renamed, identity)["verdict"] == "trusted"


def test_non_media_and_random_bytes_are_clear_errors(tmp_path):
    txt = tmp_path / "notes.jpg"
    txt.write_text("hello, not an image\n")
    rnd = tmp_path / "random.mp4"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    for p in (txt, rnd):
        with pytest.raises(FaceforgeError, match="not a supported media file"):
            api.verify_file(p)
    with pytest.raises(FaceforgeError, match="not found"):
        api.verify_file(tmp_path / "missing.jpg")


@pytest.mark.parametrize("ext", ["jpg", "png", "mp4"])
def test_fuzz_mutations_never_crash_or_lie(signed, identity, tmp_path, ext):
    rng = np.random.default_rng({"jpg": 1, "png": 2, "mp4": 3}[ext])
    src = signed["files"][ext].read_bytes()
    for i in range(12):
        data = bytearray(src)
        kind = i % 4
        if kind == 0:                                                   # flip a few bytes anywhere
            for pos in rng.integers(0, len(data), 3):
                data[pos] ^= int(rng.integers(1, 256))
        elif kind == 1:                                                 # truncate
            data = data[: int(rng.integers(16, len(data)))]
        elif kind == 2:                                                 # insert junk
            pos = int(rng.integers(0, len(data)))
            data[pos:pos] = rng.bytes(int(rng.integers(1, 64)))
        else:                                                           # overwrite a block with zeros
            pos = int(rng.integers(0, len(data) - 32))
            data[pos:pos + 32] = bytes(32)
        path = tmp_path / f"fuzz{i}.{ext}"
        path.write_bytes(bytes(data))
        try:
            res = _verify(path, identity, decode_watermark=(ext != "mp4"))
        except FaceforgeError as e:
            assert str(e) and "\n" not in str(e)
            continue
        assert res["verdict"] in api.VERDICTS
        if bytes(data) != src and res["verdict"] in INTACT:
            # c2pa hashes every byte but the manifest's own box; an "intact" verdict is only honest
            # if the pixels decode the same as the original's.
            from core.media import read_image, read_video

            orig = signed["files"][ext]
            if ext == "mp4":
                same = all(np.array_equal(a.image, b.image) for a, b in zip(read_video(orig), read_video(path)))
            else:
                same = np.array_equal(read_image(orig), read_image(path))
            assert same, f"mutation {i} of {ext} reported {res['verdict']}"


# ---------------------------------------------------------------- store + CLI
def test_store_lookups_and_idempotent_record(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        st.record(sha256="a" * 64, path="x.mp4", payload=5, phash="ff00ff00ff00ff00", actions=("created",))
        st.record(sha256="b" * 64, path="x_c40.mp4", payload=5, phash="ff00ff00ff00ff01", actions=("transcoded",))
        st.record(sha256="a" * 64, path="x.mp4", payload=5, phash="ff00ff00ff00ff00", actions=("created",))
        assert len(st) == 2
        recs = st.by_payload(5)
        assert [r["path"] for r in recs] == ["x.mp4", "x_c40.mp4"] and recs[0]["actions"] == ["created"]
        assert st.by_payload(6) == []
        assert st.by_sha256("b" * 64)[0]["path"] == "x_c40.mp4"
        near = st.near_phash("ff00ff00ff00ff03")
        assert [h["phash_distance"] for h in near] == [1, 2]
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FaceforgeError, match="not usable"):
        Store(bad)


def test_cli_init_sign_verify(tmp_path, media_dir, capsys):
    from forge.cli import main

    kd = tmp_path / "k"
    assert main(["provenance", "init", str(kd)]) == 0
    assert main(["provenance", "init", str(kd)]) == 2                  # refuses to overwrite
    out = tmp_path / "o.png"
    assert main(["provenance", "sign", str(media_dir / "face.png"), "--out", str(out), "--keys", str(kd),
                 "--generation", json.dumps(GEN), "--store", str(tmp_path / "p.sqlite")]) == 0
    capsys.readouterr()
    assert main(["provenance", "verify", str(out), "--trust", str(kd / "ca.pem"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["verdict"] == "trusted"
    assert main(["provenance", "verify", str(out)]) == 1                # valid but untrusted
    own = tmp_path / "own.png"                                         # bring your own chain + key
    assert main(["provenance", "sign", str(media_dir / "face.png"), "--out", str(own),
                 "--cert", str(kd / "chain.pem"), "--key", str(kd / "signer.key")]) == 0
    assert main(["provenance", "verify", str(own), "--trust", str(kd / "ca.pem")]) == 0
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"junk")
    assert main(["provenance", "verify", str(out), str(junk), "--trust", str(kd / "ca.pem")]) == 4
    table = capsys.readouterr().out
    assert "trusted" in table and "error" in table
    private = (kd / "signer.key").read_text().splitlines()[1]
    assert private not in table


def test_import_is_lazy():
    import subprocess
    import sys

    code = ("import sys, provenance, provenance.commands.verify, provenance.commands.sign; "
            "print(any(m in sys.modules for m in ('c2pa', 'cv2', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_sign_with_watermark_then_strip(tmp_path, face, capsys):
    from PIL import Image

    from forge.cli import main

    src = tmp_path / "render.png"
    Image.fromarray(face).save(src)
    kd = tmp_path / "k"
    keys.init_identity(kd)
    out, db = tmp_path / "render_signed.png", tmp_path / "p.sqlite"
    assert main(["provenance", "sign", str(src), "--out", str(out), "--keys", str(kd), "--watermark",
                 "--payload", "00000000deadbeef", "--store", str(db)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["payload"] == "00000000deadbeef" and res["watermark"]["psnr_db"] >= 40.0
    assert res["actions"] == ["created", "watermarked"]
    Image.open(out).convert("RGB").resize((192, 192)).save(tmp_path / "screenshot.jpg", quality=75)
    assert main(["provenance", "verify", str(tmp_path / "screenshot.jpg"), "--store", str(db), "--json"]) == 1
    row = json.loads(capsys.readouterr().out)[0]
    assert row["verdict"] == "stripped_recovered" and row["watermark"]["payload"] == "00000000deadbeef"
    with pytest.raises(FaceforgeError):                                 # --out must not be the input
        from provenance.commands import sign as sign_cmd

        sign_cmd.run(type("A", (), dict(file=str(out), out=str(out), keys=str(kd), payload=None,
                                        watermark=False, crf=None, generation="{}", ingredient=[], cert=None, key=None,
                                        parent=None, action=None, store=None))())


@pytest.mark.parametrize("ext", ["jpg", "png", "mp4"])
def test_damaged_unsigned_file_is_never_called_tampered(media_dir, tmp_path, ext):
    data = (media_dir / f"face.{ext}").read_bytes()
    for i, bad in enumerate((data[: len(data) // 2], data[:16] + bytes(range(256)) * 8)):
        path = tmp_path / f"bad{i}.{ext}"
        path.write_bytes(bad)
        try:
            res = api.verify_file(path)
        except FaceforgeError as e:
            assert "unreadable media" in str(e) or "not a supported" in str(e)
            continue
        assert res["verdict"] in ("none", "watermark_only"), res    # it never had a manifest


def test_ensure_identity_creates_once_then_loads(tmp_path):
    import stat

    from provenance.keys import CA_CERT, SIGNER_KEY, ensure_identity

    key_dir = tmp_path / "keys"
    first = ensure_identity(key_dir)
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((key_dir / SIGNER_KEY).stat().st_mode) == 0o600
    ca = (key_dir / CA_CERT).read_bytes()
    second = ensure_identity(key_dir)  # loads, never overwrites
    assert (key_dir / CA_CERT).read_bytes() == ca and second.subject == first.subject


def test_store_forget_drops_every_record_of_a_path(tmp_path):
    with Store(tmp_path / "s.sqlite") as st:
        st.record(sha256="a" * 64, path="items/g1/raw.mp4", payload=1)
        st.record(sha256="b" * 64, path="items/g1/raw.mp4", payload=2)     # a re-render of the same file
        st.record(sha256="c" * 64, path="items/g2/raw.mp4", payload=3)
        assert st.forget("items/g1/raw.mp4") == 2 and st.forget("items/none.mp4") == 0
        assert len(st) == 1 and st.by_payload(3)[0]["path"] == "items/g2/raw.mp4"


def _record_many(path: str, start: int, n: int) -> None:
    with Store(path) as st:
        for i in range(start, start + n):
            st.record(sha256=f"{i:064x}", path=f"items/{i}/raw.mp4", payload=i + 1)


def test_store_is_shared_by_concurrent_shards(tmp_path):
    import multiprocessing as mp

    path = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_record_many, args=(path, k * 40, 40)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with Store(path) as st:
        assert len(st) == 120 and sorted(st.payloads()) == list(range(1, 121))
