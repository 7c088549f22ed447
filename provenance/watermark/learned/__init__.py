"""The learned watermark (issue 18): a HiDDeN / StegaStamp-style encoder and decoder trained end to end
through a noise layer of the benchmark's attacks, an *option* beside the classical tiled pattern.

* :mod:`.model` — networks in tile space: the encoder maps (162 code bits of the 32-bit short store
  index, the folded host) to one 64 px tile (a learned part + a fixed keyed sync share) at an exact RMS
  (PSNR by construction), repeated over the image; the decoder folds the image modulo the tile, finds
  the phase from the sync (phase-only correlation), and reads the bits (linear + small CNN).
* :mod:`.noise` — the differentiable noise layer (real JPEG / H.264 with straight-through gradients).
* :mod:`.payload` — the keyed code bits and the p-value (CRC + binomial union bound over 2^32 words).
* :mod:`.codec` — ``embed`` / ``decode`` on uint8 frames, like the classical API.
* :mod:`.train` — the CPU training run (frozen config saved, checkpoints, resume, ``--max-minutes``).

Public (lazy; torch is imported on first use): ``embed``, ``decode``, ``available``, ``LearnedConfig``,
``ModelConfig``, ``LearnedWatermark``.
"""

from __future__ import annotations

from core.common import lazy_exports

_LAZY = {"embed": ".codec", "decode": ".codec", "available": ".codec", "LearnedConfig": ".codec",
         "load_model": ".codec", "ALG_NAME": ".codec", "ModelConfig": ".model", "LearnedWatermark": ".model"}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports("provenance.watermark.learned", _LAZY)
