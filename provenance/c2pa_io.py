"""The one module that imports ``c2pa`` (c2pa-python): sign a file with a manifest, read one back.

Everything c2pa raises is turned into :class:`C2paIoError` (a ``FaceforgeError``) or, when a
manifest is present but cannot be parsed/verified at all, :class:`ManifestCorrupt`. The file
format is sniffed from the bytes, never from the extension, so a renamed file reads the same.

Signing works offline: no timestamp authority is used (the claim carries the signing time only),
and thumbnails are off (face crops are 64-256 px; a 1024 px thumbnail would dwarf them).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from core.common import FaceforgeError, atomic_path, require_file

from .container import has_manifest_bytes
from .keys import Signer

MIME_BY_MAGIC = (  # (offset, magic bytes, mime)
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
)
BMFF_BRANDS_QT = (b"qt  ",)
TRUST_CODE_UNTRUSTED = "signingCredential.untrusted"
# Status codes that say nothing about integrity (trust is judged separately; OCSP is offline).
NON_INTEGRITY_CODES = frozenset({TRUST_CODE_UNTRUSTED, "signingCredential.ocsp.skipped",
                                 "signingCredential.ocsp.inaccessible", "timeStamp.untrusted"})
_BASE_SETTINGS = {"builder": {"thumbnail": {"enabled": False}},
                  "verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}


class C2paIoError(FaceforgeError):
    """c2pa could not sign or read a file (unsupported format, I/O, bad certificate, ...)."""


class ManifestCorrupt(C2paIoError):
    """A C2PA manifest is present but its structure cannot be read or verified."""


class ManifestContainerDamaged(ManifestCorrupt):
    """c2pa finds no manifest, but the file's bytes hold one (``container.has_manifest_bytes`` said so)."""


def sniff_mime(path: str | os.PathLike) -> str | None:
    """MIME type from the file's first bytes: JPEG, PNG, MP4 (ISO BMFF) or QuickTime; else None."""
    with open(path, "rb") as f:
        head = f.read(16)
    for offset, magic, mime in MIME_BY_MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return mime
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] in BMFF_BRANDS_QT else "video/mp4"
    return None


def _c2pa():
    try:
        import c2pa
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise C2paIoError(f"c2pa-python is not installed: {e}") from None
    return c2pa


def _context(trust_anchors: str | None = None):
    """A c2pa Context: our base settings, plus the user's trust anchors (PEM bundle) if any."""
    c2pa = _c2pa()
    settings = json.loads(json.dumps(_BASE_SETTINGS))
    if trust_anchors:
        settings["trust"] = {"user_anchors": trust_anchors}
    try:
        return c2pa.Context.from_dict(settings)
    except c2pa.C2paError as e:
        raise C2paIoError(f"bad c2pa settings (trust anchors must be PEM): {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


@contextlib.contextmanager
def _typed_errors(what: str) -> Iterator[None]:
    c2pa = _c2pa()
    try:
        yield
    except c2pa.C2paError as e:
        name = type(e).__name__.lstrip("_").replace("C2pa", "")
        if name in ("Verify", "Decoding", "Json", "Manifest", "Signature", "Assertion", "Other"):
            raise ManifestCorrupt(f"{what}: {name}: {_one_line(e)}") from None
        raise C2paIoError(f"{what}: {name}: {_one_line(e)}") from None
    except (OSError, ValueError) as e:
        raise C2paIoError(f"{what}: {_one_line(e)}") from None


@dataclass(frozen=True)
class Ingredient:
    """A file this asset was made from. ``relationship``: parentOf | componentOf | inputTo."""

    path: Path
    relationship: str = "inputTo"
    title: str | None = None
    label: str | None = None   # referenced from actions' parameters.ingredientIds


def sign(src: str | os.PathLike, dst: str | os.PathLike, manifest: dict[str, Any], signer: Signer,
         ingredients: Sequence[Ingredient] = ()) -> bytes:
    """Embed a signed manifest built from ``manifest`` (c2pa ManifestDefinition JSON) into a copy of
    ``src`` written atomically to ``dst``. Returns the manifest bytes."""
    c2pa = _c2pa()
    src = require_file(src, "file to sign")
    mime = sniff_mime(src)
    if mime is None:
        raise C2paIoError(f"cannot sign {src.name}: not a JPEG, PNG or MP4 file")
    alg = {"es256": c2pa.C2paSigningAlg.ES256}.get(signer.alg.lower())
    if alg is None:
        raise C2paIoError(f"unsupported signing algorithm {signer.alg!r} (use es256)")
    chain = signer.certificate_chain().decode("ascii", errors="replace")
    with _typed_errors(f"cannot sign {src.name}"), atomic_path(dst) as tmp:
        c2pa_signer = c2pa.Signer.from_callback(signer.sign, alg, chain, None)  # no TSA: offline
        with c2pa_signer, _context() as ctx, c2pa.Builder(manifest, ctx) as builder:
            for ing in ingredients:
                ing_path = require_file(ing.path, "ingredient")
                ing_mime = sniff_mime(ing_path)
                if ing_mime is None:
                    raise C2paIoError(f"ingredient {ing_path.name} is not a JPEG, PNG or MP4 file")
                ing_json = {"title": ing.title or ing_path.name, "relationship": ing.relationship}
                if ing.label:
                    ing_json["label"] = ing.label
                with open(ing_path, "rb") as f:
                    builder.add_ingredient(ing_json, ing_mime, f)
            with open(src, "rb") as s, open(tmp, "w+b") as d:
                return builder.sign(c2pa_signer, mime, s, d)


@dataclass(frozen=True)
class ManifestReport:
    """What c2pa says about a file's active manifest."""

    state: str                            # "Valid" | "Trusted" | "Invalid"
    active_label: str | None
    active: dict[str, Any]                # the active manifest (assertions, ingredients, signature_info)
    failures: tuple[str, ...]             # failure codes of the active manifest
    integrity_failures: tuple[dict, ...]  # failures other than trust/OCSP (code, url, explanation)
    successes: tuple[str, ...]
    informational: tuple[str, ...]
    store: dict[str, Any] = field(repr=False, default_factory=dict)  # the whole manifest store JSON

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"


def read(path: str | os.PathLike, trust_anchors: str | None = None,
         check_bytes: bool = True) -> ManifestReport | None:
    """Read and validate the manifest of ``path``; None when the file carries no C2PA manifest.

    ``trust_anchors``: PEM bundle of roots to trust (the state is "Trusted" only if the signing
    chain ends in one of them). Raises :class:`ManifestCorrupt` when a manifest is present but
    unreadable (:class:`ManifestContainerDamaged` when c2pa finds none but manifest bytes are in the
    file), :class:`C2paIoError` for files c2pa cannot parse at all. ``check_bytes=False``: c2pa's own
    answer only (None whenever it finds no manifest), the baseline of ``benchmarks/robustness_fuzz.py``.
    """
    c2pa = _c2pa()
    path = require_file(path)
    mime = sniff_mime(path)
    if mime is None:
        raise C2paIoError(f"{path.name}: not a JPEG, PNG or MP4 file")
    with _typed_errors(f"cannot read the manifest of {path.name}"), _context(trust_anchors) as ctx, \
            open(path, "rb") as f:
        reader = c2pa.Reader.try_create(mime, f, None, ctx)
        if reader is None:
            if check_bytes and has_manifest_bytes(path):  # e.g. a flipped APP11 marker or uuid box
                raise ManifestContainerDamaged(f"{path.name}: C2PA manifest bytes are present but their "
                                               "container is damaged (c2pa finds no manifest)")
            return None
        with reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state() or "Invalid"
            results = reader.get_validation_results() or {}
    active_label = store.get("active_manifest")
    active = store.get("manifests", {}).get(active_label, {}) if active_label else {}
    am = results.get("activeManifest", {}) if isinstance(results, dict) else {}
    failures = [x for x in am.get("failure", [])]
    if not am and store.get("validation_status"):  # older layout: a flat list of failures
        failures = list(store["validation_status"])
    integrity = tuple({k: x.get(k) for k in ("code", "url", "explanation")}
                      for x in failures if x.get("code") not in NON_INTEGRITY_CODES)
    return ManifestReport(state=state, active_label=active_label, active=active,
                          failures=tuple(x.get("code", "") for x in failures),
                          integrity_failures=integrity,
                          successes=tuple(x.get("code", "") for x in am.get("success", [])),
                          informational=tuple(x.get("code", "") for x in am.get("informational", [])),
                          store=store)
