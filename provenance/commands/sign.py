"""Watermark (optional) and sign a JPEG, PNG or MP4 with a C2PA manifest.

Examples:
  faceforge provenance sign render.mp4 --out signed.mp4 --keys keys/ --watermark --store prov.sqlite \\
      --generation '{"model": "fewshot", "seed": 0}' --ingredient portrait.jpg --ingredient driver.mp4
  faceforge provenance sign signed_c40.mp4 --out variant.mp4 --keys keys/ --action transcoded \\
      --parent signed.mp4 --payload 0123456789abcdef

--watermark embeds a fresh (or --payload) 64-bit payload in every frame first (images keep their
format; videos are re-encoded losslessly unless --crf) and records it as a c2pa.soft-binding.
Prints the result as JSON. Bring your own chain and key with --cert CHAIN.pem --key KEY.pem.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="JPEG, PNG or MP4 to sign")
    p.add_argument("--out", required=True, help="signed output file (never the input)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--keys", help="key directory made by 'faceforge provenance init'")
    who.add_argument("--cert", help="your own PEM chain (signing cert first); needs --key")
    p.add_argument("--key", help="your own ES256 (P-256) private key, PEM, mode 0600 (with --cert)")
    p.add_argument("--watermark", action="store_true", help="embed the faceforge watermark before signing")
    p.add_argument("--payload", default=None, help="64-bit payload as 16 hex digits (default: random; keep it random: sequential "
                        "ids share most of their code words, so a damaged copy cannot be told from its neighbours)")
    p.add_argument("--watermark-method", choices=("classical", "learned"), default="classical",
                   help="which watermark to embed (learned: the trained tile model, 32-bit short id)")
    p.add_argument("--crf", type=int, default=None, help="H.264 CRF when re-encoding a watermarked video")
    p.add_argument("--generation", default="{}", help="generation parameters: JSON text or @file.json")
    p.add_argument("--ingredient", action="append", default=[], help="source portrait / driving video (repeat)")
    p.add_argument("--parent", default=None, help="the file this one was transcoded from")
    p.add_argument("--action", action="append", choices=("created", "watermarked", "transcoded"), default=None,
                   help="manifest actions (default: created, + watermarked with --watermark)")
    p.add_argument("--store", default=None, help="provenance store (SQLite) to record the render in")


def _payload(text: str | None) -> int | None:
    from core.common import FaceforgeError

    if text is None:
        return None
    try:
        value = int(text, 16)
    except ValueError:
        raise FaceforgeError(f"--payload must be hex digits, got {text!r}") from None
    if not 0 <= value < 1 << 64:
        raise FaceforgeError("--payload must fit in 64 bits (16 hex digits)")
    return value


def _generation(text: str) -> dict:
    import json

    from core.common import FaceforgeError, require_file

    raw = require_file(text[1:], "generation file").read_text() if text.startswith("@") else text
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise FaceforgeError(f"--generation is not valid JSON: {e.msg} (line {e.lineno})") from None
    if not isinstance(value, dict):
        raise FaceforgeError("--generation must be a JSON object")
    return value


def run(args: argparse.Namespace) -> int:
    import json
    import tempfile
    from pathlib import Path

    from core.common import FaceforgeError
    from provenance.api import new_payload, sign_file, watermark_file
    from provenance.keys import identity_from_files, load_identity

    src, out = Path(args.file), Path(args.out)
    if src.resolve() == out.resolve():
        raise FaceforgeError("--out must differ from the input file")
    if args.keys:
        identity = load_identity(args.keys)
    elif args.key:
        identity = identity_from_files(args.cert, args.key)
    else:
        raise FaceforgeError("--cert needs --key")
    payload = _payload(args.payload)
    actions = tuple(args.action or (("created", "watermarked") if args.watermark else ("created",)))
    ingredients = ([{"path": args.parent, "relationship": "parentOf"}] if args.parent else []) + args.ingredient
    result = {}
    with tempfile.TemporaryDirectory(prefix=".ff-sign-", dir=out.parent if out.parent.exists() else None) as tmp:
        to_sign = src
        if args.watermark:
            payload = payload if payload is not None else new_payload(args.store)  # short id new to the store
            to_sign = Path(tmp) / f"marked{out.suffix or src.suffix}"
            marked = watermark_file(src, to_sign, payload, crf=args.crf, method=args.watermark_method)
            result["watermark"] = {k: v for k, v in marked.items() if k != "path"}
        result.update(sign_file(to_sign, out, identity=identity, generation=_generation(args.generation),
                                ingredients=ingredients, actions=actions, payload=payload, store=args.store,
                                watermark_alg=_alg(args.watermark_method) if args.watermark else None))
    print(json.dumps(result, indent=2))
    return 0


def _alg(method: str) -> str:
    """The soft-binding ``alg`` the manifest records for a watermark method."""
    from provenance import watermark

    if method == "learned":
        from provenance.watermark import learned

        return learned.ALG_NAME
    return watermark.ALG_NAME
