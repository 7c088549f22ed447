"""faceforge's invisible watermark: a keyed, tiled, mid-frequency spread-spectrum pattern in luma.

One ``P x P`` tile (P = 64 px; 48 px on images below 224 px, :meth:`WatermarkConfig.tile_for`) is
defined in the Fourier domain: every frequency bin in an annulus ``r_lo <= |(u, v)| <= r_hi`` (cycles per
tile) gives two real dimensions (cos, sin). A keyed
permutation gives a quarter of the dimensions to a known *sync* word and spreads the code bits of the
payload over the rest, each with a keyed random sign (:mod:`.pattern`). The payload is sized to the
image (:func:`code_for`): 64 bits + CRC-16 through a rate-1/2 K=7 convolutional code (172 code bits)
on images of 224 px and more, and below that the *short* payload — a 32-bit store index (the low 32
bits of the render's payload, :func:`short_id`) + CRC-16 through the rate-1/3 K=7 code (162 code bits)
— so a 128 px face spends 1.7x the energy per information bit that the long code would, with a
stronger code (:mod:`provenance.ecc`). The store maps a short id back to its render's record. The
embedding is host-aware within a PSNR budget (:mod:`.embedding`).

Decoding (:mod:`.search`, :mod:`.decoder`) finds the tile's scale and phase from the sync word, reads
both payload lengths, and reports a payload only when its CRC passes and the p-value (Bonferroni over
hypothesis families, the two lengths *and* the tiles searched: 64 px always, 48 px where the image
could be a resized small original, :meth:`WatermarkConfig.decode_tiles`) is below ``alpha`` = 1e-6.
With a provenance store's payloads, family M (:mod:`.match`) recognises a known payload where blind reading fails.

:mod:`.learned` is the learned alternative (a trained tile encoder/decoder, 32-bit short id only):
``WatermarkConfig(method="learned")`` embeds it, and ``decode`` also reads it when the classical mark
is not found (``extras["watermark"]`` names the mark); the classical pattern stays the default.

Public: ``embed(frames, payload)``, ``decode(frames, candidates=None) -> WatermarkResult``,
``WatermarkConfig``, ``code_for``, ``short_id``, ``ALG_NAME``.
"""

from __future__ import annotations

from .config import ALG_NAME, WatermarkConfig, WatermarkResult, code_for, payload_text, short_id
from .decoder import decode
from .embedding import amplitude, embed

__all__ = ["ALG_NAME", "WatermarkConfig", "WatermarkResult", "amplitude", "code_for", "decode", "embed",
           "payload_text", "short_id"]
