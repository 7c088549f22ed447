"""Seeded mutants of signed JPEG / PNG / MP4 files through verify: never a crash, never a changed file
read as intact, and a file that still carries (part of) its manifest always reads ``tampered``.
The large version is ``benchmarks/robustness_fuzz.py``."""

from __future__ import annotations

import collections
import struct
from pathlib import Path

import numpy as np
import pytest

from core.common import FaceforgeError
from provenance import api, container, keys, mutants

GEN = {"model": "fuzz", "seed": 1}
N_PER_KIND = 6           # mutants per kind and format (8 kinds x 3 formats = 144 verifies)
ALWAYS_TAMPERED = {"flip_manifest", "flip_container_header", "flip_media", "flip_file_header", "insert"}


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> dict:
    """A 64 px signed JPEG, PNG and 4-frame MP4, and the trust anchor."""
    from PIL import Image

    from core.media import write_video

    d = tmp_path_factory.mktemp("fuzz")
    ident = keys.init_identity(d / "keys")
    rng = np.random.default_rng(0)
    face = (rng.random((64, 64, 3)) * 255).astype(np.uint8)                  # (64, 64, 3)
    Image.fromarray(face).save(d / "f.jpg", quality=90)
    Image.fromarray(face).save(d / "f.png")
    write_video(d / "f.mp4", np.stack([np.roll(face, i, axis=1) for i in range(4)]), fps=25, crf=23)
    files = {}
    for ext in ("jpg", "png", "mp4"):
        files[ext] = Path(api.sign_file(d / f"f.{ext}", d / f"s.{ext}", identity=ident, generation=GEN)["path"])
    return {"files": files, "ca": ident.ca_cert, "dir": d}


def _verdict(path: Path, ca, **kw) -> str:
    try:
        return api.verify_file(path, trust_anchors=ca, **kw)["verdict"]
    except FaceforgeError:
        return "error"


@pytest.mark.parametrize("ext", ["jpg", "png", "mp4"])
def test_mutants_get_the_verdict_of_their_kind(signed, ext):
    data = signed["files"][ext].read_bytes()
    markers = mutants.manifest_markers(data, mutants.manifest_span(data))
    assert len(markers) >= 7                                   # store, manifest, assertions, claim, signature
    path = signed["dir"] / f"m.{ext}"
    seen = collections.Counter()
    for m in mutants.mutants(data, N_PER_KIND * len(mutants.KINDS), seed=7):
        path.write_bytes(m.data)
        verdict = _verdict(path, signed["ca"], decode_watermark=False)   # any other exception fails the test
        expected = mutants.expected_class(m.data, markers)
        if m.kind in ALWAYS_TAMPERED:
            assert expected == "tampered", (m.kind, m.detail)
        if m.kind == "random_file":
            assert expected == "not_intact"
        assert not mutants.is_wrong(expected, verdict), (m.kind, m.detail, verdict)
        seen[(m.kind, mutants.classify(verdict))] += 1
    assert sum(v for (k, _), v in seen.items() if k == "truncate") == N_PER_KIND


def _flip(data: bytes, at: int, mask: int = 0x01) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1:]


@pytest.mark.parametrize("ext, where", [
    ("mp4", "box_type"), ("mp4", "box_uuid"), ("jpg", "app11_marker"), ("png", "chunk_type"),
    ("jpg", "store_uuid"), ("png", "store_uuid"), ("mp4", "store_uuid"),
    ("jpg", "padding"), ("mp4", "ftyp_brand"), ("jpg", "box_instance"), ("png", "chunk_crc"),
])
def test_damaged_manifest_container_reads_tampered(signed, ext, where, tmp_path):
    """The issue's cases: c2pa finds no manifest (or accepts it), but manifest bytes were changed."""
    data = signed["files"][ext].read_bytes()
    span = mutants.manifest_span(data)
    at = {"box_type": span.start + 4, "box_uuid": span.start + 12, "app11_marker": span.start + 1,
          "chunk_type": span.start + 5, "store_uuid": data.index(b"jumdc2pa") + 8,
          "padding": data.index(b"cpad") + 4 + 3 + 100, "ftyp_brand": 9, "box_instance": span.start + 7,
          "chunk_crc": span.end - 1}[where]
    path = tmp_path / f"x.{ext}"
    path.write_bytes(_flip(data, at))
    res = api.verify_file(path, trust_anchors=signed["ca"])            # watermark decode on: no "error"
    assert res["verdict"] == "tampered", res["reason"]
    assert res["validation"]["integrity_failures"]


def test_manifest_bytes_in_an_unparseable_file_read_tampered(signed, tmp_path):
    data = signed["files"]["jpg"].read_bytes()
    path = tmp_path / "x.jpg"
    path.write_bytes(b"\x00" * 4 + data[4:])                            # magic gone: not a JPEG any more
    assert api.verify_file(path)["verdict"] == "tampered"
    path.write_bytes(data[:mutants.manifest_span(data).start + 60])    # cut inside the manifest
    assert api.verify_file(path)["verdict"] == "tampered"


def test_unknown_video_codec_is_an_error_not_a_crash(signed, tmp_path):
    """Found by benchmarks/robustness_fuzz.py: a damaged sample description leaves PyAV no decoder
    (codec_context None), which crashed the watermark path with an AttributeError."""
    from core import media

    data = signed["files"]["mp4"].read_bytes()
    at = data.index(b"avc1", data.index(b"stsd"))
    path = tmp_path / "codec.mp4"
    path.write_bytes(data[:at] + b"xxx1" + data[at + 4:])
    with pytest.raises(FaceforgeError, match="unknown video codec"):
        media.video_info(path)
    res = api.verify_file(path, trust_anchors=signed["ca"])
    assert res["verdict"] == "tampered" and "watermark not checked" in res["warnings"][0]


def test_manifest_bytes_detection(signed, tmp_path):
    for ext, f in signed["files"].items():
        assert container.has_manifest_bytes(f)
        assert not container.has_manifest_bytes(signed["dir"] / f"f.{ext}")   # the unsigned original
        assert container.strict_failures(f, _active(f)) == []
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(3).integers(0, 256, 1 << 16, dtype=np.uint8).tobytes())
    assert not container.has_manifest_bytes(noise)


def _active(path: Path) -> dict:
    from provenance import c2pa_io

    return c2pa_io.read(path).active


def test_mp4_records_its_ftyp_and_mutants_are_seeded(signed):
    data = signed["files"]["mp4"].read_bytes()
    assert any(a["label"] == container.CONTAINER_LABEL for a in _active(signed["files"]["mp4"])["assertions"])
    size = struct.unpack(">I", data[:4])[0]
    assert data[4:8] == b"ftyp" and mutants.manifest_span(data).start == size
    a = mutants.mutants(data, 16, seed=5)
    b = mutants.mutants(data, 16, seed=5)
    assert [m.data for m in a] == [m.data for m in b] and all(m.data != data for m in a)
    assert [m.kind for m in a[:len(mutants.KINDS)]] == list(mutants.KINDS)


@pytest.mark.parametrize("ext, where", [("jpg", "app11_marker"), ("mp4", "box_type"), ("png", "unsigned")])
def test_verify_reads_the_bytes_once(signed, ext, where, tmp_path, monkeypatch):
    """One manifest-bytes scan and one sha256 per verify, also when c2pa finds no manifest in a damaged
    container (c2pa_io.read's own scan is not repeated)."""
    from provenance import c2pa_io, verify

    data = signed["files"][ext].read_bytes()
    span = mutants.manifest_span(data)
    path = tmp_path / f"x.{ext}"
    if where == "unsigned":
        path.write_bytes((signed["dir"] / f"f.{ext}").read_bytes())
    else:
        path.write_bytes(_flip(data, span.start + {"app11_marker": 1, "box_type": 4}[where]))
    calls = collections.Counter()

    def counted(name, fn):
        def wrapper(*a, **kw):
            calls[name] += 1
            return fn(*a, **kw)
        return wrapper

    monkeypatch.setattr(c2pa_io, "has_manifest_bytes", counted("scan", container.has_manifest_bytes))
    monkeypatch.setattr(verify, "has_manifest_bytes", counted("scan", container.has_manifest_bytes))
    monkeypatch.setattr(verify, "sha256_file", counted("sha256", verify.sha256_file))
    res = verify.verify_file(path, trust_anchors=signed["ca"], decode_watermark=False)
    assert res["verdict"] == ("none" if where == "unsigned" else "tampered"), res["reason"]
    assert calls == {"scan": 1, "sha256": 1}
