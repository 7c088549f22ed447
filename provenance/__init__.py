"""faceforge.provenance — C2PA manifests, an invisible watermark, and verification of any file.

Public API (imported lazily, so ``import provenance`` pulls in neither c2pa nor cv2)::

    init_identity(key_dir, force=False) -> Identity      load_identity(key_dir) -> Identity
    new_payload(store=None) -> int                        (with a store: its 32-bit short id is new there)
    sign_file(src, dst, *, identity, generation, ingredients=(), actions=("created",), payload=None, store=None)
    verify_file(path, *, trust_anchors=None, store=None) -> dict   (key "verdict", see provenance.verify)
    embed(frames, payload) -> frames                     decode(frames) -> WatermarkResult
    Store(sqlite_path)                                   WatermarkConfig, VERDICTS
"""

from __future__ import annotations

from core.common import lazy_exports

_EXPORTS = {
    "init_identity": ".keys", "load_identity": ".keys", "identity_from_files": ".keys", "Identity": ".keys",
    "Signer": ".keys", "LocalKeySigner": ".keys",
    "new_payload": ".sign", "sign_file": ".sign", "verify_file": ".verify", "VERDICTS": ".verify",
    "embed": ".watermark", "decode": ".watermark", "WatermarkConfig": ".watermark", "WatermarkResult": ".watermark",
    "Store": ".store",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("provenance", _EXPORTS)
