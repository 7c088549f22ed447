"""forge.corpus — labelled benchmark corpora of real and synthetic talking heads.

``build_corpus(out, spec)`` renders real clips and fakes (few-shot GAN in FF/FT at several T, self
and cross reenactment with/without retargeting, warp baseline), watermarks and C2PA-signs every fake,
derives c23/c40/jpeg variants, and writes ``manifest.parquet``, ``errors.parquet``, ``corpus.json``
and ``splits.json``. ``load_manifest`` and ``read_item_frames`` read a corpus back.

Heavy modules (torch, c2pa, PyAV) are imported lazily.
"""

from __future__ import annotations

from core.common import lazy_exports

_LAZY = {
    "build_corpus": "forge.corpus.build",
    "merge_corpus": "forge.corpus.build",
    "BuildReport": "forge.corpus.build",
    "load_manifest": "forge.corpus.manifest",
    "read_item_frames": "forge.corpus.manifest",
    "read_item_landmarks": "forge.corpus.manifest",
    "MANIFEST_COLUMNS": "forge.corpus.manifest",
    "CorpusConfig": "forge.corpus.spec",
    "GeneratorSpec": "forge.corpus.spec",
    "load_spec": "forge.corpus.spec",
    "DEFAULT_SPEC": "forge.corpus.spec",
}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports("forge.corpus", _LAZY)
