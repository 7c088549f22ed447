"""Sign a render: a fresh watermark payload for it, its signed C2PA manifest, its row in the store."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.common import FaceforgeError, require_file, sha256_file

from .container import ftyp_digest, strict_failures
from .manifest import PARENT_LABEL, build_manifest, jsonable
from .pixels import phash
from .store import Store, open_store, payload_hex


def new_payload(store: Store | str | os.PathLike | None = None) -> int:
    """A fresh random 64-bit watermark payload (nonzero). With a store, its low 32 bits -- the short id
    that a small image's watermark carries instead -- are also new to the store, so that a short read
    names one render."""
    if store is None:
        return secrets.randbits(64) or 1
    with open_store(store) as st:
        while True:
            payload = secrets.randbits(64) or 1
            if not st.short_id_taken(payload):
                return payload


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


def sign_file(src: str | os.PathLike, dst: str | os.PathLike, *, identity, generation: dict,
              ingredients: Sequence[Any] = (), actions: Sequence[str] = ("created",),
              payload: int | None = None, store: Store | str | os.PathLike | None = None,
              watermark_alg: str | None = None) -> dict:
    """Write ``dst`` = ``src`` + a signed C2PA manifest; record it in ``store``.

    ``ingredients``: paths (or ``{"path", "relationship", "title"}`` dicts) of the source portrait
    and driving video; for ``actions=("transcoded", ...)`` the first one is the parent file.
    ``payload``: the watermark payload embedded in the pixels (adds a ``c2pa.soft-binding``, whose
    ``alg`` is ``watermark_alg``, by default the classical pattern's).
    Returns ``{path, sha256, payload, manifest_label, mime, actions}``.
    """
    from . import c2pa_io

    src = require_file(src, "file to sign")
    dst = Path(dst)
    actions = tuple(actions)
    ings = _ingredients(ingredients, transcoded="transcoded" in actions and "created" not in actions)
    manifest = build_manifest(dst.name, generation, actions, payload,
                              has_parent=any(i.relationship == "parentOf" for i in ings),
                              watermark_alg=watermark_alg, ftyp_sha256=ftyp_digest(src))
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
        with open_store(store) as st:
            st.record(sha256=digest, path=str(dst), payload=payload, phash=phash(dst),
                      mime=result["mime"], manifest_label=report.active_label, manifest=report.active,
                      generation=jsonable(generation), actions=actions,
                      ingredients=[str(i.path) for i in ings])
    return result
