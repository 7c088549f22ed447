"""Store-assisted detection (family M): is one of N *known* payloads in the image?

Blind reading needs every information bit; a provenance store only asks "is one of *these* N
payloads here?". Each known payload's code word — at both lengths: the 64-bit payload, and its 32-bit
short store index (:func:`config.short_id`) — is correlated with the code dimensions at G geometries
chosen from the sync maps (so independent of those dimensions under the null): ``z = sum /
sqrt(n_code / 2)``, ``p = min(1, G (N_long + N_short) Q(z))``. This uses the payload's whole energy
as one statistic (about 1.7x the sync z), so a crop or a codec that leaves the sync word but flips
15-25 % of the code bits is still recognised; a payload not in the store is never invented, and a
match is refused unless its closest rivals are ruled out on the dimensions where their code words
differ (sequential ids share ~85 % of them; see :func:`beats_rivals`). The decoder first tests the one
geometry of a re-encoded copy (scale 1, tile phase 0: G = 1), then all of them (two families).
"""

from __future__ import annotations

import math

import numpy as np

from .. import ecc
from .config import SHORT_MASK, WatermarkConfig
from .pattern import Pattern, code_layout, dim_values, phases, sync_map
from .search import Read, norm_tail, subpixel

RIVALS = 4  # next-best payloads that must be ruled out (see beats_rivals)


def code_symbols(payloads: np.ndarray, bit: np.ndarray, code: ecc.Code = ecc.LONG) -> np.ndarray:
    """+-1 symbol each payload puts on each code dimension (before the keyed sign): (n, n_code)."""
    return 1.0 - 2.0 * ecc.encode_many(payloads, code)[:, bit].astype(np.float32)


def candidate_sets(candidates: np.ndarray) -> list[tuple[ecc.Code, np.ndarray]]:
    """The payloads to test at each length: the 64-bit payloads, and their distinct 32-bit short ids."""
    return [(ecc.LONG, candidates),
            (ecc.SHORT, np.unique(candidates & np.uint64(SHORT_MASK)))]


def _best(V: np.ndarray, candidates: np.ndarray, bit: np.ndarray, code: ecc.Code,
          cfg: WatermarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """The RIVALS + 1 best (z, index) per geometry, best first: two (k, G) arrays."""
    k = RIVALS + 1
    top_z, top_i = [], []                                        # per chunk: the k best per geometry
    for start in range(0, len(candidates), cfg.match_chunk):
        Z = code_symbols(candidates[start:start + cfg.match_chunk], bit, code) @ V        # (n, G) z-scores
        kk = min(k, len(Z))
        idx = np.argpartition(-Z, kk - 1, axis=0)[:kk]                                  # (<=k, G), unordered
        top_z.append(np.take_along_axis(Z, idx, axis=0))
        top_i.append(idx + start)
    top_z, top_i = np.concatenate(top_z), np.concatenate(top_i)                         # (m, G)
    order = np.argsort(-top_z, axis=0)[:k]
    return np.take_along_axis(top_z, order, axis=0), np.take_along_axis(top_i, order, axis=0)


def matched(geoms: list, candidates: np.ndarray, cfg: WatermarkConfig,
            pat: Pattern) -> tuple[float, Read | None, int]:
    """Family M over ``geoms`` [(scale, shift, phases, sync z)]: (p, the matched read or None, G).

    Under the null (no watermark) the code-dimension phases are uniform and independent of the sync
    dimensions that chose the geometries, so each score is N(0, 1) and ``p = min(1, G N Q(z))`` with N
    the candidates tested at both lengths. As a guard, the match must also carry at least
    ``match_ratio`` of the code signal that the sync word at that geometry predicts."""
    sets = candidate_sets(candidates)
    m_tests = len(geoms) * sum(len(c) for _, c in sets)
    best = None                                                  # (z, g, code, top_z, top_payloads, V, bit)
    for code, cands in sets:
        dims, bit = code_layout(cfg, code)
        V = np.stack([dim_values(ph, shift, cfg, pat)[dims] for _, shift, ph, _ in geoms], axis=1)
        V = V.astype(np.float32) / math.sqrt(len(dims) / 2.0)                            # (n_code, G)
        top_z, top_i = _best(V, cands, bit, code, cfg)
        g = int(np.argmax(top_z[0]))
        if best is None or top_z[0, g] > best[0]:
            best = (float(top_z[0, g]), g, code, top_z[:, g], cands[top_i[:, g]], V[:, g], bit)
    z, g, code, zs, payloads, v, bit = best
    s, shift, _, z_sync = geoms[g]
    expect = z_sync * math.sqrt(len(bit) / len(pat.sync_dims))   # code z that the sync word predicts
    if z < cfg.match_ratio * expect or not beats_rivals(v, payloads, zs, bit, code, cfg):
        return 1.0, None, len(geoms)                             # an echo of, or a tie with, another payload
    return min(1.0, m_tests * norm_tail(z)), Read(z_sync, s, shift, int(payloads[0]), None, code), len(geoms)


def beats_rivals(v: np.ndarray, payloads: np.ndarray, z: np.ndarray, bit: np.ndarray, code: ecc.Code,
                 cfg: WatermarkConfig) -> bool:
    """Could one of the next-best payloads (``payloads[1:]``, z-scores ``z[1:]``) be the embedded one
    instead of the best (``payloads[0]``)?

    On the dimensions D where the two code words differ, the best's score ``T`` (in z units) would
    be about ``-A sqrt(|D| / n)`` if the rival were embedded with strength A (estimated by the
    rival's own z). The rival is ruled out when ``T + A sqrt(|D| / n) >= match_margin``. Random
    payloads differ on half the dimensions and are ruled out easily; sequential ids share ~85 % of
    their code words, and a weak copy of one is then refused rather than pinned on a neighbour."""
    sym = code_symbols(payloads, bit, code)                                               # (1 + r, n_code)
    best = sym[0]
    for z_rival, other in zip(z[1:], sym[1:]):
        diff = best != other
        share = max(int(diff.sum()), 1) / len(v)                                         # |D| / n
        t = float(np.sum(v[diff] * best[diff])) / math.sqrt(share)                       # z on D
        if t + max(float(z_rival), 0.0) * math.sqrt(share) < cfg.match_margin:
            return False
    return True


def geometries(y: np.ndarray, maps: list, reads: list, cfg: WatermarkConfig, pat: Pattern) -> list:
    """(scale, shift, phases, sync z) to test the known payloads at: each common scale at tile phase
    0, at its sync peak's integer and sub-pixel position, and the geometries of the blind reads."""
    P = cfg.tile
    out, seen = [], set()

    def add(s, shift, ph, zmap):
        key = (round(s, 5), round(float(shift[0]), 2), round(float(shift[1]), 2))
        if key not in seen:
            seen.add(key)
            out.append((s, (float(shift[0]), float(shift[1])), ph,
                        float(zmap[int(round(shift[0])) % P, int(round(shift[1])) % P])))

    for s, ph, zmap in maps:
        i = int(np.argmax(zmap))
        add(s, (0, 0), ph, zmap)
        add(s, (i // P, i % P), ph, zmap)
        add(s, subpixel(zmap, i // P, i % P), ph, zmap)
    for _, r in reads:
        if r is not None and not any(abs(r.scale - s) < 1e-9 for s, _, _ in maps):
            ph = phases(y, r.scale, cfg, pat)
            zmap = sync_map(ph, cfg, pat)
            add(r.scale, r.shift, ph, zmap)
            add(r.scale, (round(r.shift[0]) % P, round(r.shift[1]) % P), ph, zmap)
    return out
