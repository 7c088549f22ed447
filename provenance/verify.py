"""Verify any file: its provenance verdict with the evidence (manifest, watermark, store record).

Verdicts of :func:`verify_file` (``result["verdict"]``), from strongest to weakest:

=====================  ==========================================================================
``trusted``            manifest valid, content hashes match, chain ends in a configured anchor
``valid_untrusted``    manifest valid and content intact, but the chain ends in no trusted anchor
``tampered``           a manifest is present but a hash / signature failed, or it is unreadable
``stripped_recovered`` no manifest; our watermark decoded (or matched to a store payload) and the store
                       returned the original record
``watermark_only``     no manifest; our watermark decoded, but no store (or no record) to recover from
``none``               no manifest and no watermark: no provenance found
=====================  ==========================================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.common import FaceforgeError, require_file, sha256_file

from .container import has_manifest_bytes, strict_failures
from .manifest import summary
from .pixels import load_frames, phash
from .store import Store, open_store

VERDICTS = ("trusted", "valid_untrusted", "tampered", "stripped_recovered", "watermark_only", "none")


def _read_anchors(trust_anchors) -> str | None:
    if trust_anchors is None:
        return None
    if isinstance(trust_anchors, (list, tuple)):
        texts = [_read_anchors(t) for t in trust_anchors]
        return "\n".join(t for t in texts if t) or None
    text = str(trust_anchors)
    if "-----BEGIN CERTIFICATE-----" not in text:
        text = require_file(trust_anchors, "trust anchor file").read_text()
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise FaceforgeError(f"trust anchors must be PEM certificates: {trust_anchors}")
    return text


def verify_file(path: str | os.PathLike, *, trust_anchors=None, store: Store | str | os.PathLike | None = None,
                decode_watermark: bool = True) -> dict:
    """The provenance verdict for one file (see the module docstring) with its evidence.

    ``trust_anchors``: PEM text, a PEM file path, or a list of them. ``store``: a Store or its path,
    used to recover the manifest of a file whose manifest was stripped. Raises FaceforgeError only
    for files that are not media at all (missing, not JPEG/PNG/MP4).
    """
    from . import c2pa_io

    path = require_file(path)
    mime = c2pa_io.sniff_mime(path)
    if mime is None:
        if has_manifest_bytes(path):   # a damaged header, but a manifest is still in the bytes
            return _unreadable_manifest(path, None, sha256_file(path), "C2PA manifest bytes in a file that no "
                                                                       "longer parses as JPEG, PNG or MP4")
        raise FaceforgeError(f"{path.name}: not a supported media file (JPEG, PNG or MP4)")
    out: dict[str, Any] = {"path": str(path), "mime": mime, "sha256": sha256_file(path), "verdict": "none",
                           "reason": "", "manifest": None, "validation": None, "watermark": None,
                           "store": None, "warnings": []}
    report = None
    try:
        report = c2pa_io.read(path, _read_anchors(trust_anchors))
    except c2pa_io.C2paIoError as e:
        # a manifest is there, but c2pa cannot read or verify it (read's own byte scan may have found it)
        if isinstance(e, c2pa_io.ManifestContainerDamaged) or has_manifest_bytes(path):
            out.update(_unreadable_manifest(path, mime, out["sha256"], f"C2PA manifest present but unreadable ({e})"))
        else:                         # damaged media that never carried a manifest: not "tampered"
            out["warnings"].append(f"c2pa could not parse the file: {e}")

    wm = None
    if decode_watermark:                # no manifest + a store: its payloads may be matched (family M)
        wm = _decode_watermark(path, out, store if report is None else None)
    if report is not None:
        integrity = list(report.integrity_failures) or strict_failures(path, report.active)
        out["manifest"] = summary(report.active)
        out["validation"] = {"state": report.state if not integrity else "Invalid",
                             "failures": sorted(set(report.failures) | {f["code"] for f in integrity}),
                             "integrity_failures": integrity}
        if integrity:
            codes = ", ".join(sorted({f["code"] for f in integrity}))
            out.update(verdict="tampered", reason=f"manifest present but validation failed: {codes}")
        elif report.trusted:
            out.update(verdict="trusted", reason=f"signed by {_signer_name(report.active)}, intact, trusted chain")
        else:
            out.update(verdict="valid_untrusted",
                       reason=f"signed by {_signer_name(report.active)}, intact, chain not in the trust anchors")
        sb = (out["manifest"].get("soft_binding") or {}).get("payload")
        if wm is not None and wm.detected and sb and int(sb, 16) & ((1 << wm.payload_bits) - 1) != wm.payload:
            out["warnings"].append(f"watermark payload {_wm_hex(wm)} differs from the manifest's "
                                   f"soft binding {sb}")
    elif out["verdict"] != "tampered":
        if decode_watermark and wm is None:
            raise FaceforgeError(f"{path.name}: unreadable media (no C2PA manifest, pixels not decodable)")
        _verdict_without_manifest(out, wm, store, path)
    return out


def _unreadable_manifest(path: Path, mime: str | None, sha256: str, reason: str) -> dict:
    """The ``tampered`` result for a file whose manifest bytes c2pa cannot read or verify."""
    return {"path": str(path), "mime": mime, "sha256": sha256, "verdict": "tampered",
            "reason": reason, "manifest": None, "watermark": None, "store": None, "warnings": [],
            "validation": {"state": "Invalid", "failures": ["manifest.unreadable"],
                           "integrity_failures": [{"code": "manifest.unreadable", "explanation": reason}]}}


def _signer_name(active: dict) -> str:
    info = active.get("signature_info", {})
    return info.get("common_name") or info.get("issuer") or "an unknown signer"


def _decode_watermark(path: Path, out: dict, store=None):
    """Blind decode; with a store, also test the payloads it holds (found where blind reading fails)."""
    from . import watermark

    try:
        frames = load_frames(path)
    except FaceforgeError as e:
        out["warnings"].append(f"pixels not decodable, watermark not checked: {e}")
        return None
    candidates = None
    if store is not None:
        with open_store(store) as st:
            candidates = st.payloads()
    wm = watermark.decode(frames, candidates=candidates)
    out["watermark"] = wm.to_dict()
    return wm


def _verdict_without_manifest(out: dict, wm, store, path: Path) -> None:
    records, hints = [], []
    if store is not None:
        with open_store(store) as st:
            if wm is not None and wm.detected:
                records = st.by_payload(wm.payload, bits=wm.payload_bits)
            ph = phash(path)
            hints = st.near_phash(ph) if ph else []
    if wm is not None and wm.detected:
        if records:
            rec = records[0]
            how = (f"matches the stored render {Path(rec['path']).name}" if wm.extras.get("method") != "matched"
                   else f"(matched among the store's {_plural(wm.extras.get('match_candidates'), 'payload')}) "
                        f"is the stored render {Path(rec['path']).name}")
            out.update(verdict="stripped_recovered",
                       reason=f"no manifest; {_wm_name(wm)} (p={wm.p_value:.1e}) {how}",
                       store={"matched_by": "watermark_payload", "record": _record_view(rec),
                              "n_records": len(records)})
            out["manifest"] = summary(rec.get("manifest") or {})
        else:
            short = ("; a short id names a render only through the provenance store that recorded it"
                     if wm.payload_bits < 64 else "")
            out.update(verdict="watermark_only",
                       reason=f"no manifest; faceforge {_wm_name(wm)} "
                              f"(p={wm.p_value:.1e}) found" + ("" if store is not None else ", no store given")
                              + (", no record for it in the store" if store is not None else "") + short)
    elif wm is not None and wm.p_value < _alpha():               # the sync word is there, the payload not
        out.update(verdict="none", reason=f"no C2PA manifest; a faceforge watermark is present (p={wm.p_value:.1e}) "
                                          "but its payload is unreadable"
                                          + (", and it matches none of the store's payloads" if store is not None
                                             else "; a store of the signed renders might still match it"))
    else:
        out.update(verdict="none", reason="no C2PA manifest and no faceforge watermark")
    if hints and out["verdict"] != "stripped_recovered":
        out["store"] = {"matched_by": None, "phash_hints": [
            {"path": h["path"], "phash_distance": h["phash_distance"], "payload": h["payload"]} for h in hints]}


def _wm_hex(wm) -> str:
    """The payload a watermark result carries, in hex (8 digits for a 32-bit short store index)."""
    from .watermark import payload_text

    return payload_text(wm.payload, wm.payload_bits)


def _wm_name(wm) -> str:
    """'watermark 0123456789abcdef', or for a small image's short payload 'short watermark id 01234567
    (32-bit store index)'."""
    if wm.payload_bits < 64:
        return f"short watermark id {_wm_hex(wm)} ({wm.payload_bits}-bit store index)"
    return f"watermark {_wm_hex(wm)}"


def _plural(n, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _alpha() -> float:
    from .watermark import WatermarkConfig

    return WatermarkConfig().alpha


def _record_view(rec: dict) -> dict:
    return {k: rec.get(k) for k in ("id", "path", "sha256", "payload", "mime", "manifest_label", "generation",
                                    "actions", "ingredients", "created_at")}
