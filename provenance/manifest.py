"""The faceforge C2PA manifest: the definition a render is signed with (:func:`build_manifest`, pure) and
the parts of a read-back manifest a person reads (:func:`summary`)."""

from __future__ import annotations

import base64
from typing import Any, Sequence

from core.common import FaceforgeError

from .container import CONTAINER_LABEL

ACTIONS = ("created", "watermarked", "transcoded")
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_LABEL = "org.faceforge.generation"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
PARENT_LABEL = "parent"


def _software_agent() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("faceforge")
    except PackageNotFoundError:  # pragma: no cover
        v = "0"
    return {"name": "faceforge", "version": v}


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
                              {"label": GENERATION_LABEL, "data": jsonable(generation)}]
    if payload is not None:
        from .watermark import ALG_NAME

        assertions.append({"label": SOFT_BINDING_LABEL, "data": {
            "alg": watermark_alg or ALG_NAME,
            "blocks": [{"scope": {}, "value": base64.b64encode(int(payload).to_bytes(8, "big")).decode()}]}})
    if ftyp_sha256 is not None:
        assertions.append({"label": CONTAINER_LABEL, "data": {"ftyp_sha256": ftyp_sha256}})
    return {"claim_generator_info": [agent], "title": title, "assertions": assertions}


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (what the manifest and the store hold); FaceforgeError if it is not."""
    import json

    from core.common import _json_default

    try:
        return json.loads(json.dumps(obj, default=_json_default))
    except (TypeError, ValueError) as e:
        raise FaceforgeError(f"generation parameters must be JSON-serialisable: {e}") from None


def summary(active: dict) -> dict:
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

