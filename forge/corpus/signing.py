"""Provenance for corpus renders, through the ``provenance`` package's API only: the signing
identity (spec key dir, or ``CORPUS/keys`` created once), watermark payloads, signing with C2PA
actions and ingredients, recording in the corpus store, and verification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from core.common import get_logger
from forge.corpus.splits import file_lock
from provenance.store import payload_hex  # noqa: F401  (re-exported for the corpus builder)

log = get_logger("corpus.signing")

STORE = "provenance.sqlite"
KEYS = "keys"


class CorpusProvenance:
    """Signs and watermarks the fakes of one corpus (lazy: nothing is loaded until first use)."""

    def __init__(self, corpus: Path, key_dir: str | None, verify: bool = True):
        self.corpus = Path(corpus)
        self.key_dir = Path(key_dir).expanduser() if key_dir else self.corpus / KEYS
        self.verify_files = verify
        self._identity = None
        self._store = None

    # ------------------------------------------------------------ lazily built state
    @property
    def identity(self):
        if self._identity is None:
            from provenance.keys import ensure_identity

            with file_lock(self.corpus / ".keys.lock"):  # shards may start at once
                self._identity = ensure_identity(self.key_dir)
        return self._identity

    @property
    def store(self):
        if self._store is None:
            from provenance.api import Store

            self._store = Store(self.corpus / STORE)
        return self._store

    @property
    def trust_anchors(self) -> str | None:
        return self.identity.trust_anchor_pem()

    # ------------------------------------------------------------ operations
    def new_payload(self) -> int:
        """A fresh payload whose 32-bit short id (what a small render's watermark carries) is new to
        the corpus store."""
        from provenance.api import new_payload

        return int(new_payload(self.store))

    @staticmethod
    def embed(frames: np.ndarray, payload: int) -> np.ndarray:
        """Watermark a clip (N, H, W, 3) uint8 -> same shape."""
        from provenance.watermark import embed

        return np.asarray(embed(frames, payload), dtype=np.uint8)

    def sign(self, src: Path, dst: Path, *, generation: dict[str, Any], ingredients: Iterable[str | Path],
             actions: tuple[str, ...], payload: int | None) -> dict:
        """Sign ``src`` into ``dst`` (atomic) with a C2PA manifest and record it in the corpus store."""
        from provenance.api import sign_file

        self.store.forget(dst)  # a re-render after a kill replaces the unpublished earlier copy's record
        return sign_file(src, dst, identity=self.identity, generation=generation,  # atomic write
                         ingredients=[str(p) for p in ingredients], actions=actions, payload=payload,
                         store=self.store)

    def verify(self, path: Path, decode_watermark: bool = True) -> str:
        """The provenance verdict of a written file ("trusted", "watermark_only", "none", ...).
        A signed file's verdict comes from its manifest; the watermark decode (the slow part) only
        matters for files without one."""
        if not self.verify_files:
            return "not_checked"
        from provenance.api import verify_file

        return str(verify_file(path, trust_anchors=self.trust_anchors, store=self.store,
                               decode_watermark=decode_watermark)["verdict"])
