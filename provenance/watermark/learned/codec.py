"""Embed and read the learned watermark (numpy uint8 frames in, like the classical ``embed``/``decode``).

The learned mark always carries the 32-bit short store index (:func:`provenance.watermark.short_id`)
as 162 code bits (:mod:`.payload`). Reading tries each scale hypothesis in ``scales`` (1: the file as
embedded, re-encoded or cropped; 2: a 0.5x downscaled copy, upsampled bicubic), reports the best
CRC-passing read, and Bonferroni-multiplies its p-value by the number of hypotheses; with a store's
payloads, the stored short ids are matched when blind reading is not conclusive (Bonferroni over both).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "learned128.pt"
ALG_NAME = "org.faceforge.watermark.learned-tile.v1"


@dataclass(frozen=True)
class LearnedConfig:
    weights: str = ""                      # the model file ("" = the shipped provenance/watermark/weights/learned128.pt)
    scales: tuple = (1.0, 2.0)             # decoder scale hypotheses (x the file's size)
    alpha: float = 1e-6                    # detection threshold on the (Bonferroni) p-value
    rival_margin: int = 6                  # store match: agreement by which the best stored id must lead the next
    psnr_db: float = 0.0                   # embedding strength; 0 = the model's own (its training target)


def weights_path(cfg: LearnedConfig | None = None) -> Path:
    return Path(cfg.weights) if cfg and cfg.weights else WEIGHTS


def available(cfg: LearnedConfig | None = None) -> bool:
    """Whether the learned model's weights are installed."""
    return weights_path(cfg).is_file()


@functools.lru_cache(maxsize=4)
def _load(path: str):
    import torch

    from core.common import config_from_dict

    from .model import LearnedWatermark, ModelConfig

    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        model = LearnedWatermark(config_from_dict(ModelConfig, blob["config"]))
        model.load_state_dict({k: v.float() for k, v in blob["state"].items()})
    except Exception as e:  # noqa: BLE001  (unreadable, truncated or foreign file: one clear error)
        raise FaceforgeError(f"cannot load the learned watermark model {path}: {e}") from None
    return model.eval()


def load_model(cfg: LearnedConfig | None = None):
    """The :class:`.model.LearnedWatermark` of ``cfg.weights`` (cached); FaceforgeError when missing."""
    path = weights_path(cfg)
    if not path.is_file():
        raise FaceforgeError(f"the learned watermark's weights are not installed: {path}")
    return _load(str(path))


def _luma(arr: np.ndarray) -> np.ndarray:
    from ..pattern import luma

    return luma(arr)                                                   # (H, W) mean luma over frames


def embed(frames, payload: int, cfg: LearnedConfig | None = None, model=None) -> np.ndarray:
    """Watermark one image (H, W, 3) or every frame of a clip (N, H, W, 3) (uint8 RGB) with the learned
    tile carrying ``short_id(payload)``; the same luma change on every frame and on R, G and B."""
    import torch

    from ..pattern import as_frames
    from ..config import short_id
    from .model import amplitude
    from .payload import carried_bits

    cfg = cfg or LearnedConfig()
    model = model or load_model(cfg)
    arr, single = as_frames(frames)
    if not 0 <= int(payload) < 2 ** 64:
        raise FaceforgeError(f"watermark payload must be an unsigned 64-bit integer, got {payload}")
    _, H, W, _ = arr.shape
    if min(H, W) < model.cfg.tile:
        raise FaceforgeError(f"image too small for the learned watermark: {W}x{H} px (needs {model.cfg.tile})")
    y = torch.from_numpy(_luma(arr))[None, None]                               # (1, 1, H, W)
    bits = torch.from_numpy(carried_bits([short_id(payload)], model.cfg.key))  # (1, 162)
    with torch.no_grad():
        delta = model.residual(y, bits)[0, 0].numpy()                          # (H, W) luma change
    if cfg.psnr_db:
        delta = delta * amplitude(cfg.psnr_db) / amplitude(model.cfg.psnr_db)
    out = np.clip(np.rint(arr.astype(np.float32) + delta[None, :, :, None]), 0, 255).astype(np.uint8)
    return out[0] if single else out


def _logits(model, y: np.ndarray, scale: float) -> tuple[np.ndarray, float, tuple]:
    """Luma (H, W) at one scale hypothesis -> (logits (162,), sync z, (dy, dx) phase in the T-tile)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))[None, None]   # (1, 1, H, W)
    if scale != 1.0:
        t = F.interpolate(t, scale_factor=scale, mode="bicubic", align_corners=False)
    with torch.no_grad():
        g, zmap = model.decoder.aligned(t)                                        # (1,1,G,G), (1, T*T)
        logits = model.decoder.read(g)[0].numpy()                                 # (162,)
    i, T = int(zmap[0].argmax()), model.cfg.tile
    return logits, float(zmap[0, i]), (float(i // T), float(i % T))


def decode(frames, cfg: LearnedConfig | None = None, candidates=None, model=None):
    """Look for the learned watermark in one image or a clip (frames averaged) -> ``WatermarkResult``
    (``payload_bits`` 32, ``extras['watermark'] == 'learned'``)."""
    from ... import ecc
    from ..config import WatermarkResult, payload_text
    from ..pattern import as_frames
    from .payload import read, store_match

    cfg = cfg or LearnedConfig()
    model = model or load_model(cfg)
    arr, _ = as_frames(frames)
    y = _luma(arr)
    if min(y.shape) < model.cfg.tile // 2:
        raise FaceforgeError(f"image too small for the learned watermark decoder: {y.shape[1]}x{y.shape[0]} px")
    scales = [s for s in cfg.scales if min(y.shape) * s >= model.cfg.tile // 2]
    reads = []
    for s in scales:
        logits, z, shift = _logits(model, y, s)
        reads.append((read(logits, model.cfg.key), logits, z, shift, s))
    n_hyp = len(scales) * (2 if candidates is not None else 1)
    best = min(reads, key=lambda r: (r[0]["payload"] is None, r[0]["blind_p"]))
    r, logits, z, shift, scale = best
    p, payload, method, extras = min(1.0, n_hyp * r["blind_p"]), r["payload"], "blind", {}
    if not (payload is not None and p < cfg.alpha) and candidates is not None and len(candidates):
        matches = [(store_match(lg, candidates, model.cfg.key), lg, zz, sh, s) for _, lg, zz, sh, s in reads]
        m, logits, z, shift, scale = min(matches, key=lambda m: m[0]["store_p"])
        extras.update(match_candidates=len(candidates), match_agree=m["agree"], match_second=m["second"])
        p_m = min(1.0, n_hyp * m["store_p"])
        if p_m < cfg.alpha and m["agree"] - m["second"] >= cfg.rival_margin:
            p, payload, method = p_m, m["payload"], "matched"
            r = {**r, "agree": m["agree"]}
    detected = payload is not None and p < cfg.alpha
    extras.update({"method": method if detected else None, "watermark": "learned", "agree": r["agree"],
                   "n_bits": r["n"], "raw_short": payload_text(r["raw"], 32)})
    return WatermarkResult(payload=payload if detected else None, detected=detected, confidence=1.0 - p,
                           p_value=p, z=z, scale=1.0 / scale, shift=shift,
                           bit_errors=(r["n"] - r["agree"]) if detected else None, n_frames=len(arr),
                           tests=len(scales), crc_ok=r["payload"] is not None, extras=extras,
                           payload_bits=ecc.SHORT.payload_bits if detected else ecc.LONG.payload_bits)
