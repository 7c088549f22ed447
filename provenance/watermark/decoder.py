"""``decode``: the blind families (:mod:`.search`), then the store's payloads (:mod:`.match`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.common import FaceforgeError

from .. import ecc
from .config import WatermarkConfig, WatermarkResult, payload_text
from .match import geometries, matched
from .pattern import as_frames, luma, pattern
from .search import Read, anchored, cropped, searched

N_FAMILIES = 3  # A: common scales, tile phase 0; C: common scales, any phase; B: full search (Bonferroni)
# (each per tile searched: WatermarkConfig.decode_tiles)
N_MATCH_FAMILIES = 2  # with store candidates: M1, the file as embedded (scale 1, phase 0); M, every geometry


def decode(frames, cfg: WatermarkConfig | None = None, search: bool = True,
           candidates=None) -> WatermarkResult:
    """Look for our watermark in one image or a clip (frames averaged); see :mod:`.search`.

    Three hypothesis families are tested and Bonferroni-combined: A, the original tile phase at a few
    common scales (re-encoded or resized files); C, those scales at every tile phase (cropped files);
    B, the full scale x phase search. Later families are skipped once an earlier one is conclusive.
    Every read tries both payload lengths (64-bit payload, 32-bit short store index); the result's
    ``payload_bits`` says which one was found. ``candidates`` (the payloads a provenance store knows,
    any number) adds two families, tried only when blind decoding is not conclusive: is one of *those*
    payloads (or their short ids) present (see :func:`.match.matched`), M1 in the file as embedded
    (scale 1, tile phase 0: a re-encoded copy, one geometry) and M at every geometry the sync maps
    suggest? Bonferroni over 5 families then. All of this is done for each tile the image could carry
    (:meth:`WatermarkConfig.decode_tiles`: 64 px, and 48 px where the image could be a small original),
    the likelier tile first, and the Bonferroni factor is the number of families times the number of
    tiles. ``extras['method']`` says which way the payload was found, ``extras['tile']`` with which tile.
    When none of this is conclusive and ``cfg.read_learned``, the learned watermark is read too (when its
    weights are installed); ``extras['watermark']`` says which mark a detected payload came from.
    """
    cfg = cfg or WatermarkConfig()
    arr, _ = as_frames(frames)
    y = luma(arr)                                                # (H, W) mean luma over frames
    y -= y.mean()
    cand = None
    if candidates is not None:
        cand = np.unique(np.asarray([int(c) for c in candidates], dtype=np.uint64))
    tiles = cfg.decode_tiles(*y.shape)
    n_hyp = len(tiles) * (N_FAMILIES + N_MATCH_FAMILIES * (cand is not None))   # Bonferroni factor

    def conclusive(p: float, r: Read) -> bool:                  # a CRC-passing payload below alpha
        return r.payload is not None and n_hyp * p < cfg.alpha

    best, tests = None, 0                                        # best: (p, read, method, extras, tile)
    front_ends = {}
    for tile in tiles:
        front_ends[tile] = cfg.front_end_for(tile, len(arr))                # learned on small-tile clips
        tcfg = replace(cfg.at_tile(tile, *y.shape), front_end=front_ends[tile])
        found = _decode_tile(y, tcfg, search, cand, conclusive)
        if found is None:                                        # too small for this tile
            continue
        tests += found[-1]
        if best is None or (found[1].payload is None, found[0]) < (best[1].payload is None, best[0]):
            best = (*found[:4], tile)
        if conclusive(best[0], best[1]):
            break
    if best is None:
        raise FaceforgeError(f"image too small for the watermark decoder: {y.shape[1]}x{y.shape[0]} px")
    p_r, r, method, extras, tile = best
    p = min(1.0, n_hyp * p_r)
    detected = conclusive(p_r, r)
    raw = r.raw or {}
    extras = {"method": method if detected else None, "tile": tile, "tiles_searched": list(tiles),
              "front_end": front_ends[tile],
              "raw_payload": payload_text(raw.get(64), 64), "raw_short": payload_text(raw.get(32), 32), **extras}
    if r.payload is not None and not detected:
        extras["candidate_payload"] = payload_text(r.payload, r.code.payload_bits)
    if detected:
        extras["watermark"] = "classical"
    elif cfg.read_learned:
        learned = _learned(frames, cfg, candidates)
        if learned is not None and learned.detected:
            return learned
    return WatermarkResult(payload=r.payload if detected else None, detected=detected, confidence=1.0 - p,
                           p_value=p, z=r.z, scale=r.scale, shift=tuple(round(float(v), 2) for v in r.shift),
                           bit_errors=r.bit_errors if detected else None, n_frames=len(arr), tests=tests,
                           crc_ok=r.payload is not None, extras=extras,
                           payload_bits=r.code.payload_bits if r.payload is not None else ecc.LONG.payload_bits)


def _decode_tile(y: np.ndarray, cfg: WatermarkConfig, search: bool, cand: np.ndarray | None,
                 conclusive) -> tuple[float, Read, str, dict, int] | None:
    """The blind families, then the store's, for one tile (``cfg`` at that tile): (p of the best family,
    its read, "blind" | "matched", extras, tests), or None when the image is too small for the tile."""
    pat = pattern(cfg)
    p_r, r, maps = anchored(y, cfg, pat)                        # (p, read) of the best family so far
    if r is None:
        return None
    tests = len(maps)
    reads = [(p_r, r)]
    families = (lambda: cropped(maps, cfg, pat), lambda: searched(y, cfg, pat)) if search else ()
    for family in families:
        if conclusive(p_r, r):
            break                                               # no need to search further
        p_f, r_f, m = family()
        tests += m
        reads.append((p_f, r_f))
        p_r, r = min(reads, key=lambda pr: (pr[1].payload is None, pr[0]))   # CRC-passing first
    method, extras = "blind", {}
    if cand is not None and len(cand) and not conclusive(p_r, r):
        geoms = geometries(y, maps, reads, cfg, pat)
        extras.update(match_candidates=int(len(cand)), match_geometries=len(geoms))
        as_embedded = [g for g in geoms if g[0] == 1.0 and g[1] == (0.0, 0.0)]
        for subset in (as_embedded, geoms):                     # M1: as embedded (a re-encode); M: all
            if not subset:
                continue
            p_m, r_m, m = matched(subset, cand, cfg, pat)
            tests += m
            if r_m is not None and conclusive(p_m, r_m):
                p_r, r, method = p_m, r_m, "matched"
                break
    return p_r, r, method, extras, tests


def _learned(frames, cfg: WatermarkConfig, candidates) -> WatermarkResult | None:
    """The learned watermark's read (:mod:`.learned`) when its model is installed and the image is large
    enough; None otherwise. Its own alpha: a file is tested for both marks, so the false-alarm rate of
    ``decode`` is at most twice ``alpha``."""
    from . import learned

    lcfg = learned.LearnedConfig(weights=cfg.learned_weights, alpha=cfg.alpha)
    if not learned.available(lcfg):
        return None
    arr, _ = as_frames(frames)
    if min(arr.shape[1:3]) < 32:
        return None
    return learned.decode(arr, lcfg, candidates=candidates)
