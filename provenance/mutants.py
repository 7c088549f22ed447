"""Seeded mutants of a signed file, and what ``verify_file`` must say about each: the robustness
suite's generator (``tests/test_fuzz_verify.py``, ``benchmarks/robustness_fuzz.py``).

The manifest's place in the file is found here by parsing the container (JPEG APP11 segments, the PNG
``caBX`` chunk, the MP4 C2PA ``uuid`` box), independently of c2pa, so the oracle does not share the
code it checks. The oracle (:func:`expected_class`):

- a mutant that still holds a piece of the original manifest's structure (any of its JUMBF description
  boxes, type UUID + label, intact) must read ``tampered``;
- any other changed file must not read as intact (``trusted`` / ``valid_untrusted``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

KINDS = ("flip_manifest", "flip_container_header", "flip_media", "flip_file_header", "truncate", "insert",
         "zero_block", "random_file")
INTACT = frozenset({"trusted", "valid_untrusted"})
NO_MANIFEST = frozenset({"stripped_recovered", "watermark_only", "none"})
MP4_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
JUMBF_TYPE_SUFFIX = bytes.fromhex("00110010800000aa00389b71")   # 12 bytes after a JUMBF type's 4CC
FILE_HEADER_BYTES = 12          # magic / ftyp: what sniffing reads
CONTAINER_HEADER_BYTES = {"image/jpeg": 20, "image/png": 16, "video/mp4": 24}  # marker/len/type(+UUID)+jumb
MAX_BLOCK = 4096                # zeroed blocks and inserts: 1 .. MAX_BLOCK bytes
MAX_FLIPS = 4


@dataclass(frozen=True)
class Span:
    start: int   # first byte of the manifest container (APP11 marker, chunk length, box size)
    end: int     # one past its last byte
    header: int  # bytes of container header at ``start`` (marker, length, type, UUID, JUMBF box header)


@dataclass(frozen=True)
class Mutant:
    kind: str
    data: bytes
    detail: str


def classify(verdict: str) -> str:
    """Verdict -> class: ``intact`` | ``tampered`` | ``no_manifest`` | ``error``."""
    if verdict in INTACT:
        return "intact"
    if verdict in NO_MANIFEST:
        return "no_manifest"
    return verdict if verdict in ("tampered", "error") else "unknown"


# ---------------------------------------------------------------- where the manifest is
def manifest_span(data: bytes) -> Span | None:
    """The manifest container of a JPEG, PNG or MP4 signed by c2pa (first to last C2PA segment)."""
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_span(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_span(data)
    if data[4:8] == b"ftyp":
        return _mp4_span(data)
    return None


def _jpeg_span(data: bytes) -> Span | None:
    pos, first, last = 2, None, None
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:                                          # start of scan: no more headers
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xEB and data[pos + 4:pos + 6] == b"JP":        # APP11 JUMBF
            first = pos if first is None else first
            last = pos + 2 + length
        pos += 2 + length
    return Span(first, last, CONTAINER_HEADER_BYTES["image/jpeg"]) if first is not None else None


def _png_span(data: bytes) -> Span | None:
    pos = 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        if data[pos + 4:pos + 8] == b"caBX":
            return Span(pos, pos + 12 + length, CONTAINER_HEADER_BYTES["image/png"])
        pos += 12 + length
    return None


def _mp4_span(data: bytes) -> Span | None:
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            return None
        if kind == b"uuid" and data[pos + 8:pos + 24] == MP4_C2PA_UUID:
            return Span(pos, pos + size, CONTAINER_HEADER_BYTES["video/mp4"])
        pos += size
    return None


def manifest_markers(data: bytes, span: Span) -> list[bytes]:
    """The manifest's JUMBF description boxes (type UUID + toggles + label): its recognisable pieces."""
    manifest = data[span.start:span.end]
    out, pos = [], manifest.find(b"jumd")
    while pos >= 0:
        body = pos + 4                                              # type (16) + toggles (1) + label\0
        end = manifest.find(b"\x00", body + 17)
        if end > 0 and manifest[body + 4:body + 16] == JUMBF_TYPE_SUFFIX:
            out.append(manifest[body:end + 1])
        pos = manifest.find(b"jumd", pos + 4)
    return out


def expected_class(mutant: bytes, markers: list[bytes]) -> str:
    """``tampered`` if a piece of the manifest is still there, else ``not_intact``."""
    return "tampered" if any(m in mutant for m in markers) else "not_intact"


def is_wrong(expected: str, verdict: str) -> bool:
    got = classify(verdict)
    return got != "tampered" if expected == "tampered" else got == "intact"


# ---------------------------------------------------------------- mutants
def mutants(data: bytes, n: int, seed: int, kinds=KINDS) -> list[Mutant]:
    """``n`` seeded mutants of ``data`` (a signed file), cycling through ``kinds``; never the original."""
    span = manifest_span(data)
    if span is None:
        raise ValueError("no C2PA manifest container found in the file")
    rng = np.random.default_rng(seed)
    out: list[Mutant] = []
    while len(out) < n:
        kind = kinds[len(out) % len(kinds)]
        data2, detail = MUTATORS[kind](bytearray(data), span, rng)
        if bytes(data2) != data:
            out.append(Mutant(kind, bytes(data2), detail))
    return out


def _flip(buf: bytearray, lo: int, hi: int, rng, n_max: int = MAX_FLIPS) -> str:
    return _flip_at(buf, rng.integers(lo, hi, size=int(rng.integers(1, n_max + 1))), rng)


def _flip_at(buf: bytearray, offs, rng) -> str:
    """XOR a random nonzero byte into ``buf`` at each offset; the mutant's detail."""
    for o in offs:
        buf[o] ^= int(rng.integers(1, 256))
    return "flip@" + ",".join(str(int(o)) for o in sorted(offs))


def _flip_manifest(buf, span, rng):
    return buf, _flip(buf, span.start + span.header, span.end, rng)


def _flip_container_header(buf, span, rng):
    return buf, _flip(buf, span.start, span.start + span.header, rng, n_max=2)


def _flip_media(buf, span, rng):
    outside = np.r_[FILE_HEADER_BYTES:span.start, span.end:len(buf)]    # (M,) offsets outside the manifest
    return buf, _flip_at(buf, rng.choice(outside, size=int(rng.integers(1, MAX_FLIPS + 1))), rng)


def _flip_file_header(buf, span, rng):
    return buf, _flip(buf, 0, FILE_HEADER_BYTES, rng, n_max=2)


def _truncate(buf, span, rng):
    cut = int(rng.integers(1, len(buf)))
    return buf[:cut], f"truncate@{cut}"


def _insert(buf, span, rng):
    at, k = int(rng.integers(0, len(buf) + 1)), int(rng.integers(1, MAX_BLOCK + 1))
    return buf[:at] + bytearray(rng.integers(0, 256, k, dtype=np.uint8).tobytes()) + buf[at:], f"insert@{at}+{k}"


def _zero_block(buf, span, rng):
    k = int(rng.integers(1, MAX_BLOCK + 1))
    at = int(rng.integers(0, max(1, len(buf) - k)))
    buf[at:at + k] = bytes(min(k, len(buf) - at))
    return buf, f"zero@{at}+{k}"


def _random_file(buf, span, rng):
    """Random bytes behind the original's first bytes (so the file still sniffs as its format)."""
    k = int(rng.integers(0, 4 * MAX_BLOCK))
    keep = FILE_HEADER_BYTES if rng.random() < 0.75 else 0
    return bytearray(bytes(buf[:keep]) + rng.integers(0, 256, k, dtype=np.uint8).tobytes()), f"random+{k}"


MUTATORS = {"flip_manifest": _flip_manifest, "flip_container_header": _flip_container_header,
            "flip_media": _flip_media, "flip_file_header": _flip_file_header, "truncate": _truncate,
            "insert": _insert, "zero_block": _zero_block, "random_file": _random_file}
