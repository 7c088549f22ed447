"""Verify the provenance of files: C2PA manifest, faceforge watermark, provenance store.

Examples:
  faceforge provenance verify out/*.mp4 --trust keys/ca.pem --store corpus/provenance.sqlite
  faceforge provenance verify suspicious.jpg --json

One verdict per file:
  trusted             signed, intact, and the chain ends in a --trust anchor
  valid_untrusted     signed and intact, but no configured anchor vouches for the signer
  tampered            a manifest is present but a hash/signature check failed (codes listed)
  stripped_recovered  no manifest; the watermark led to the original record in --store (its payload
                      read blind, or, for a copy too damaged to read, recognised among the store's)
  watermark_only      no manifest; a faceforge watermark was found, nothing to recover it from
  none                no manifest and no readable watermark (the reason says when a watermark's sync
                      word is present but its payload is not)
  error               not a media file / unreadable

Exit status (the worst file wins): 0 all trusted; 1 provenance found but not trusted
(valid_untrusted, stripped_recovered, watermark_only); 3 some file has no provenance (none);
4 some file could not be read (error); 5 some file is tampered. 2 is a usage error.
"""

from __future__ import annotations

import argparse

EXIT_CODES = {"trusted": 0, "valid_untrusted": 1, "stripped_recovered": 1, "watermark_only": 1,
              "none": 3, "error": 4, "tampered": 5}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="JPEG, PNG or MP4 files")
    p.add_argument("--trust", action="append", default=[], help="trust anchor PEM (e.g. keys/ca.pem); repeat")
    p.add_argument("--store", default=None, help="provenance store (SQLite) to recover stripped manifests")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    p.add_argument("--no-watermark", action="store_true", help="skip watermark decoding (faster)")


def verify_many(files, trust, store, decode_watermark=True) -> list[dict]:
    from core.common import FaceforgeError
    from provenance.api import verify_file

    results = []
    for f in files:
        try:
            results.append(verify_file(f, trust_anchors=trust or None, store=store,
                                       decode_watermark=decode_watermark))
        except FaceforgeError as e:
            results.append({"path": str(f), "verdict": "error", "reason": str(e)})
    return results


def _row(r: dict) -> tuple[str, str, str, str, str]:
    man = r.get("manifest") or {}
    wm = r.get("watermark") or {}
    who = (man.get("signer") or {}).get("common_name") or ""
    if man.get("generation") and man["generation"].get("model"):
        who = f"{who} / {man['generation']['model']}".strip(" /")
    mark = f"{wm['payload']} p={wm['p_value']:.0e}" if wm.get("detected") else ("-" if wm else "n/a")
    if (wm.get("extras") or {}).get("method") == "matched":
        mark += " (store match)"
    return (r["path"], r["verdict"], who or "-", mark, r.get("reason", ""))


def run(args: argparse.Namespace) -> int:
    import json

    from provenance.store import Store

    store = Store(args.store) if args.store else None
    try:
        results = verify_many(args.files, args.trust, store, decode_watermark=not args.no_watermark)
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        rows = [("FILE", "VERDICT", "SIGNER / MODEL", "WATERMARK", "REASON")] + [_row(r) for r in results]
        widths = [min(max(len(row[i]) for row in rows), cap) for i, cap in enumerate((48, 18, 32, 38, 200))]
        for row in rows:
            print("  ".join(cell[:w].ljust(w) for cell, w in zip(row, widths)).rstrip())
        for r in results:
            for w in r.get("warnings", []):
                print(f"warning: {r['path']}: {w}")
    return max(EXIT_CODES[r["verdict"]] for r in results)
