"""Where a C2PA manifest sits in a JPEG, PNG or MP4, read from the bytes (no c2pa here).

Two questions c2pa does not answer for us:

- :func:`has_manifest_bytes`: does a file still carry (part of) a manifest, even when c2pa finds none
  (a flipped APP11 marker, MP4 ``uuid`` box type or UUID)? Such a file is ``tampered``, not ``stripped``.
- :func:`strict_failures`: for a manifest c2pa accepts, were bytes changed that C2PA leaves unsigned by
  design? The manifest container's header (APP11 ``JP``/sequence fields, the JUMBF superbox length, the
  PNG chunk CRC), the COSE ``pad`` bytes of the signature (zeros when written), and the MP4 ``ftyp`` box
  (excluded from the BMFF hash; faceforge records it in :data:`CONTAINER_LABEL` when signing).
  A signed file whose bytes changed must never read as intact.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import zlib

CONTAINER_LABEL = "org.faceforge.container"     # assertion: {"ftyp_sha256": hex} of a signed MP4
MP4_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
_JUMBF_SUFFIX = bytes.fromhex("00110010800000aa00389b71")   # the 12 bytes after a JUMBF type's 4CC
_C2PA_TYPES = (b"c2pa", b"c2ma", b"c2um", b"c2as", b"c2cl", b"c2cs")  # store, manifests, parts
MARKERS = tuple(t + _JUMBF_SUFFIX for t in _C2PA_TYPES) + (
    MP4_C2PA_UUID, b"c2pa.claim", b"c2pa.signature", b"c2pa.assertions", b"c2pa.hash.", b"c2pa.actions",
    b"urn:c2pa:")
_OVERLAP = max(len(m) for m in MARKERS) - 1
_PAD_KEYS = (b"\x63pad", b"\x64pad2")           # CBOR text keys of the COSE unprotected padding
_MP4_PURPOSE = b"manifest\x00"
JPEG_BOX_INSTANCE = b"\x02\x11"               # APP11 ``En`` as c2pa-rs writes it (checked on our files only)


def has_manifest_bytes(path: str | os.PathLike, chunk: int = 1 << 20) -> bool:
    """True if any C2PA manifest structure (JUMBF C2PA box type, C2PA box label, MP4 C2PA UUID) is
    in the file's bytes, wherever it sits and whether or not its container still parses."""
    tail = b""
    with open(path, "rb") as f:
        while block := f.read(chunk):
            data = tail + block
            if any(m in data for m in MARKERS):
                return True
            tail = data[-_OVERLAP:]
    return False


def ftyp_digest(path: str | os.PathLike) -> str | None:
    """sha256 of an MP4/QuickTime file's leading ``ftyp`` box (None for other files)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return None
        size = struct.unpack(">I", head[:4])[0]
        return hashlib.sha256(head + f.read(max(0, size - 8))).hexdigest()


def strict_failures(path: str | os.PathLike, active: dict) -> list[dict]:
    """Changes c2pa's validation cannot see (see the module docstring), as c2pa-style failures."""
    ours = any(g.get("name") == "faceforge" for g in active.get("claim_generator_info", []))
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            segments = None
        else:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:   # only the headers are read
                segments = _container(data, ours)
    fails: list[dict] = []
    if segments is None:
        fails.append(_fail("container.unparsed", "the manifest's container could not be located"))
        return fails
    jumbf, problem = segments
    if problem:
        fails.append(_fail("container.header", problem))
    if not _padding_is_zero(jumbf):
        fails.append(_fail("signature.padding", "the signature's padding bytes were changed"))
    recorded = _assertion(active, CONTAINER_LABEL).get("ftyp_sha256")
    if recorded and recorded != ftyp_digest(path):
        fails.append(_fail("container.ftyp", "the MP4 ftyp box differs from the one signed"))
    return fails


def _fail(code: str, explanation: str) -> dict:
    return {"code": f"faceforge.{code}", "url": None, "explanation": explanation}


def _assertion(active: dict, label: str) -> dict:
    for a in active.get("assertions", []):
        if a.get("label") == label and isinstance(a.get("data"), dict):
            return a["data"]
    return {}


# ---------------------------------------------------------------- containers -> (JUMBF bytes, problem)
def _container(data: bytes, ours: bool) -> tuple[bytes, str] | None:
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg(data, ours)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data)
    if data[4:8] == b"ftyp":
        return _mp4(data)
    return None


def _jumbf_problem(jumbf: bytes) -> str:
    if len(jumbf) < 8 or jumbf[4:8] != b"jumb":
        return "the JUMBF superbox header is damaged"
    if struct.unpack(">I", jumbf[:4])[0] != len(jumbf):
        return "the JUMBF superbox length does not match its container"
    return ""


def _jpeg(data: bytes, ours: bool) -> tuple[bytes, str] | None:
    """APP11 segments: ``FFEB len 'JP' En(2) Z(4) JUMBF``; continuation segments repeat the box header."""
    pos, parts, problem = 2, [], ""
    while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] != 0xDA:
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if data[pos + 1] == 0xEB:
            seg = data[pos + 4:pos + 2 + length]                    # CI En Z payload
            if (seg[:2] != b"JP" or struct.unpack(">I", seg[4:8])[0] != len(parts) + 1
                    or (ours and seg[2:4] != JPEG_BOX_INSTANCE)):
                problem = "an APP11 (JUMBF) segment header is damaged"
            parts.append(seg[8:] if not parts else seg[16:])        # later segments repeat LBox + TBox
        pos += 2 + length
    if not parts:
        return None
    jumbf = b"".join(parts)
    return jumbf, problem or _jumbf_problem(jumbf)


def _png(data: bytes) -> tuple[bytes, str] | None:
    pos = 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"caBX":
            body = data[pos + 8:pos + 8 + length]
            crc = data[pos + 8 + length:pos + 12 + length]
            if crc != struct.pack(">I", zlib.crc32(kind + body)):
                return body, "the caBX chunk's CRC does not match"
            return body, _jumbf_problem(body)
        pos += 12 + length
    return None


def _mp4(data: bytes) -> tuple[bytes, str] | None:
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = len(data) - pos
        if size < head:
            return None
        if kind == b"uuid" and data[pos + head:pos + head + 16] == MP4_C2PA_UUID:
            body = data[pos + head + 16:pos + size]                 # version/flags, purpose, offset, JUMBF
            start = 4 + len(_MP4_PURPOSE) + 8
            if body[:4] != b"\x00\x00\x00\x00" or body[4:4 + len(_MP4_PURPOSE)] != _MP4_PURPOSE:
                return body[start:], "the C2PA uuid box header is damaged"
            return body[start:], _jumbf_problem(body[start:])
        pos += size
    return None


def _padding_is_zero(jumbf: bytes) -> bool:
    """Every COSE ``pad``/``pad2`` byte string in the signature box is zeros, as c2pa writes it."""
    sig = jumbf.find(b"c2pa.signature")
    if sig < 0:
        return True
    for key in _PAD_KEYS:
        pos = jumbf.find(key, sig)
        while pos >= 0:
            at = pos + len(key)
            n_len = {0x58: 1, 0x59: 2, 0x5A: 4}.get(jumbf[at] if at < len(jumbf) else -1)
            if n_len is not None:
                n = int.from_bytes(jumbf[at + 1:at + 1 + n_len], "big")
                if any(jumbf[at + 1 + n_len:at + 1 + n_len + n]):
                    return False
            pos = jumbf.find(key, pos + 1)
    return True
