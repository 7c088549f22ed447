"""Sign a render and verify any file: the calls the corpus, the dashboard and the CLI use.

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

import base64
import math
import os
import secrets
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.common import FaceforgeError, get_logger, require_file, sha256_file

from .container import CONTAINER_LABEL, ftyp_digest, has_manifest_bytes, strict_failures
from .store import Store, payload_hex

log = get_logger("provenance.api")

VERDICTS = ("trusted", "valid_untrusted", "tampered", "stripped_recovered", "watermark_only", "none")
ACTIONS = ("created", "watermarked", "transcoded")
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_LABEL = "org.faceforge.generation"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
PARENT_LABEL = "parent"
MAX_VERIFY_FRAMES = 48   # frames decoded per video for the watermark (evenly spaced)


def new_payload(store: Store | str | os.PathLike | None = None) -> int:
    """A fresh random 64-bit watermark payload (nonzero). With a store, its low 32 bits -- the short id
    that a small image's watermark carries instead -- are also new to the store, so that a short read
    names one render."""
    if store is None:
        return secrets.randbits(64) or 1
    with _open_store(store) as st:
        while True:
            payload = secrets.randbits(64) or 1
            if not st.short_id_taken(payload):
                return payload


def _software_agent() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("faceforge")
    except PackageNotFoundError:  # pragma: no cover
        v = "0"
    return {"name": "faceforge", "version": v}


def _ingredients(items: Iterable[Any], transcoded: bool):
    from .c2pa_io import Ingredient

    out = []
    for i, item in enumerate(items):
        if isinstance(item, Ingredient):
            ing = item
        elif isinstance(item, dict):
            ing = Ingredient(path=Path(item["path"]), relationship=item.get("relationship", "inputTo"),
                             title=item.get("title"))
        else:
            ing = Ingredient(path=Path(item), relationship="inputTo")
        if transcoded and i == 0:  # a transcode's first ingredient is the file it was made from
            ing = Ingredient(path=ing.path, relationship="parentOf", title=ing.title, label=PARENT_LABEL)
        elif ing.relationship == "parentOf" and ing.label is None:
            ing = Ingredient(path=ing.path, relationship="parentOf", title=ing.title, label=PARENT_LABEL)
        out.append(ing)
    if sum(ing.relationship == "parentOf" for ing in out) > 1:
        raise FaceforgeError("at most one ingredient can be the parent (parentOf)")
    return out


def build_manifest(title: str, generation: dict, actions: Sequence[str], payload: int | None,
                   has_parent: bool, watermark_alg: str | None = None, ftyp_sha256: str | None = None) -> dict:
    """The c2pa ManifestDefinition for one render (pure: no I/O). ``ftyp_sha256``: an MP4's ``ftyp``
    box, which the BMFF hash leaves out, recorded so that verify sees a changed one."""
    unknown = sorted(set(actions) - set(ACTIONS))
    if unknown or not actions:
        raise FaceforgeError(f"actions must be a non-empty subset of {ACTIONS}, got {list(actions)}")
    agent = _software_agent()
    acts: list[dict] = []
    if "created" in actions:
        if has_parent:
            raise FaceforgeError("a 'created' render has no parent ingredient (use 'transcoded' for variants)")
        acts.append({"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                     "softwareAgent": agent})
    elif has_parent:
        acts.append({"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT_LABEL]}})
    else:
        raise FaceforgeError("a 'transcoded' variant needs its parent file as the first ingredient")
    if "transcoded" in actions:
        acts.append({"action": "c2pa.transcoded", "softwareAgent": agent})
    if "watermarked" in actions:
        if payload is None:
            raise FaceforgeError("action 'watermarked' needs the payload that was embedded")
        acts.append({"action": "c2pa.watermarked", "softwareAgent": agent})
    assertions: list[dict] = [{"label": "c2pa.actions", "data": {"actions": acts}},
                              {"label": GENERATION_LABEL, "data": _jsonable(generation)}]
    if payload is not None:
        from .watermark import ALG_NAME

        assertions.append({"label": SOFT_BINDING_LABEL, "data": {
            "alg": watermark_alg or ALG_NAME,
            "blocks": [{"scope": {}, "value": base64.b64encode(int(payload).to_bytes(8, "big")).decode()}]}})
    if ftyp_sha256 is not None:
        assertions.append({"label": CONTAINER_LABEL, "data": {"ftyp_sha256": ftyp_sha256}})
    return {"claim_generator_info": [agent], "title": title, "assertions": assertions}


def _jsonable(obj: Any) -> Any:
    import json

    from core.common import _json_default

    try:
        return json.loads(json.dumps(obj, default=_json_default))
    except (TypeError, ValueError) as e:
        raise FaceforgeError(f"generation parameters must be JSON-serialisable: {e}") from None


def sign_file(src: str | os.PathLike, dst: str | os.PathLike, *, identity, generation: dict,
              ingredients: Sequence[Any] = (), actions: Sequence[str] = ("created",),
              payload: int | None = None, store: Store | str | os.PathLike | None = None) -> dict:
    """Write ``dst`` = ``src`` + a signed C2PA manifest; record it in ``store``.

    ``ingredients``: paths (or ``{"path", "relationship", "title"}`` dicts) of the source portrait
    and driving video; for ``actions=("transcoded", ...)`` the first one is the parent file.
    ``payload``: the watermark payload embedded in the pixels (adds a ``c2pa.soft-binding``).
    Returns ``{path, sha256, payload, manifest_label, mime, actions}``.
    """
    from . import c2pa_io

    src = require_file(src, "file to sign")
    dst = Path(dst)
    actions = tuple(actions)
    ings = _ingredients(ingredients, transcoded="transcoded" in actions and "created" not in actions)
    manifest = build_manifest(dst.name, generation, actions, payload,
                              has_parent=any(i.relationship == "parentOf" for i in ings),
                              ftyp_sha256=ftyp_digest(src))
    c2pa_io.sign(src, dst, manifest, identity.signer, ings)
    report = c2pa_io.read(dst)  # read back: proves the file verifies, gives the label for the store
    failures = (list(report.integrity_failures) or strict_failures(dst, report.active)) if report else None
    if report is None or failures:
        dst.unlink(missing_ok=True)  # never leave a signed-looking file that does not verify
        raise FaceforgeError(f"signed {dst.name} does not verify: "
                             f"{[f['code'] for f in failures] if report else 'no manifest'}")
    digest = sha256_file(dst)
    result = {"path": str(dst), "sha256": digest, "payload": payload_hex(payload),
              "manifest_label": report.active_label, "mime": c2pa_io.sniff_mime(dst), "actions": list(actions)}
    if store is not None:
        with _open_store(store) as st:
            st.record(sha256=digest, path=str(dst), payload=payload, phash=_phash(dst),
                      mime=result["mime"], manifest_label=report.active_label, manifest=report.active,
                      generation=_jsonable(generation), actions=actions,
                      ingredients=[str(i.path) for i in ings])
    return result


class _open_store:
    """Use a Store as given, or open (and close) one from a path."""

    def __init__(self, store):
        self._own = not isinstance(store, Store)
        self.store = Store(store) if self._own else store

    def __enter__(self) -> Store:
        return self.store

    def __exit__(self, *exc) -> None:
        if self._own:
            self.store.close()


def load_frames(path: Path, max_frames: int = MAX_VERIFY_FRAMES):
    """Pixels of an image or video for the watermark decoder: ``(N, H, W, 3) uint8``."""
    import numpy as np

    from forge.data import media

    from .c2pa_io import sniff_mime

    mime = sniff_mime(path) or ""
    if mime.startswith("image/"):
        return media.read_image(path)[None]
    info = media.video_info(path)
    n = int(info.get("n_frames") or 0)
    every = max(1, math.ceil(n / max_frames)) if n > 0 else 1
    frames = [f.image for f in media.read_video(path, every=every, max_frames=max_frames)]
    if not frames:
        raise FaceforgeError(f"{path.name}: no decodable frames")
    return np.stack(frames)


def _phash(path: Path) -> str | None:
    try:
        import imagehash
        from PIL import Image

        return str(imagehash.phash(Image.fromarray(load_frames(path, max_frames=1)[0])))
    except FaceforgeError:
        return None


def _summary(active: dict) -> dict:
    """The parts of a manifest a person reads: who signed, what was done, how it was made."""
    assertions = {a.get("label"): a.get("data") for a in active.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}).get("actions", [])
    soft = assertions.get(SOFT_BINDING_LABEL) or {}
    sb_payload = None
    try:
        sb_payload = base64.b64decode(soft["blocks"][0]["value"]).hex()
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return {"label": active.get("label"), "title": active.get("title"),
            "claim_generator": [g.get("name") for g in active.get("claim_generator_info", [])],
            "signer": active.get("signature_info", {}),
            "actions": [a.get("action") for a in actions],
            "digital_source_type": next((a.get("digitalSourceType") for a in actions
                                         if a.get("digitalSourceType")), None),
            "generation": assertions.get(GENERATION_LABEL),
            "soft_binding": {"alg": soft.get("alg"), "payload": sb_payload} if soft else None,
            "ingredients": [{"title": i.get("title"), "relationship": i.get("relationship")}
                            for i in active.get("ingredients", [])]}


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
            return _unreadable_manifest(path, None, "C2PA manifest bytes in a file that no longer parses as "
                                                    "JPEG, PNG or MP4")
        raise FaceforgeError(f"{path.name}: not a supported media file (JPEG, PNG or MP4)")
    out: dict[str, Any] = {"path": str(path), "mime": mime, "sha256": sha256_file(path), "verdict": "none",
                           "reason": "", "manifest": None, "validation": None, "watermark": None,
                           "store": None, "warnings": []}
    report = None
    try:
        report = c2pa_io.read(path, _read_anchors(trust_anchors))
    except c2pa_io.C2paIoError as e:
        if has_manifest_bytes(path):  # a manifest is there, but c2pa cannot read or verify it
            out.update(_unreadable_manifest(path, mime, f"C2PA manifest present but unreadable ({e})"))
        else:                         # damaged media that never carried a manifest: not "tampered"
            out["warnings"].append(f"c2pa could not parse the file: {e}")

    wm = None
    if decode_watermark:                # no manifest + a store: its payloads may be matched (family M)
        wm = _decode_watermark(path, out, store if report is None else None)
    if report is not None:
        integrity = list(report.integrity_failures) or strict_failures(path, report.active)
        out["manifest"] = _summary(report.active)
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


def _unreadable_manifest(path: Path, mime: str | None, reason: str) -> dict:
    """The ``tampered`` result for a file whose manifest bytes c2pa cannot read or verify."""
    return {"path": str(path), "mime": mime, "sha256": sha256_file(path), "verdict": "tampered",
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
        with _open_store(store) as st:
            candidates = st.payloads()
    wm = watermark.decode(frames, candidates=candidates)
    out["watermark"] = wm.to_dict()
    return wm


def _verdict_without_manifest(out: dict, wm, store, path: Path) -> None:
    records, hints = [], []
    if store is not None:
        with _open_store(store) as st:
            if wm is not None and wm.detected:
                records = st.by_payload(wm.payload, bits=wm.payload_bits)
            ph = _phash(path)
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
            out["manifest"] = _summary(rec.get("manifest") or {})
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


def watermark_file(src: str | os.PathLike, dst: str | os.PathLike, payload: int, *, crf: int | None = None,
                   jpeg_quality: int = 95) -> dict:
    """Embed ``payload`` in every frame of an image or video and write ``dst`` (atomically).

    Images are written as PNG or JPEG by ``dst``'s extension; videos as H.264 MP4 (``crf=None`` is
    lossless). Returns ``{path, payload, n_frames, psnr_db}``.
    """
    import numpy as np

    from core.common import atomic_path
    from forge.data import media

    from . import watermark
    from .c2pa_io import sniff_mime

    src, dst = require_file(src, "file to watermark"), Path(dst)
    mime = sniff_mime(src) or ""
    if mime.startswith("image/"):
        frames = media.read_image(src)[None]
    else:
        frames = np.stack([f.image for f in media.read_video(src)])
        fps = float(media.video_info(src).get("fps") or 25.0)
    marked = watermark.embed(frames, payload)
    mse = float(np.mean((marked.astype(np.float64) - frames) ** 2))
    if mime.startswith("image/"):
        from PIL import Image

        if dst.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise FaceforgeError(f"watermarked image must be written as .png or .jpg, got {dst.name}")
        with atomic_path(dst) as tmp:
            kw = {"quality": jpeg_quality} if dst.suffix.lower() in (".jpg", ".jpeg") else {}
            Image.fromarray(marked[0]).save(tmp, format="JPEG" if kw else "PNG", **kw)
    else:
        if dst.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise FaceforgeError(f"watermarked video must be written as .mp4, got {dst.name}")
        media.write_video(dst, marked, fps=fps, crf=crf)
    return {"path": str(dst), "payload": payload_hex(payload), "n_frames": int(len(marked)),
            "psnr_db": round(10 * math.log10(255.0 ** 2 / max(mse, 1e-12)), 2)}
