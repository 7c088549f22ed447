"""The blind search: find the tile's scale and phase from the sync word, then read the payload.

Frames are averaged (the pattern is static, so a dropped frame only removes one term), resampled by
``1/scale`` for a candidate scale, high-passed, divided by their local RMS (:func:`.pattern.local_norm`:
textured regions, where the host swamps the pattern, count less) and *folded* modulo P (all tiles summed, so any crop
still contributes whole tile phases). In the folded spectrum each bin is reduced to its phase
(``F / |F|``), which whitens the host; the sync correlation for every cyclic shift of the tile is one
inverse FFT. Candidates are read out: soft code bits -> soft Viterbi -> CRC, for *both* payload
lengths (:data:`ecc.CODES`: the 64-bit payload and the 32-bit short store index).

Statistics. Under the null (no watermark, or another key) the phases are uniform, so the sync score at
one (scale, shift) is a sum of independent terms of variance 1/2: ``z = S / sqrt(n_sync / 2)``, and a
random word passes the CRC of one length with probability 2**-16, independently of the sync
dimensions; trying both lengths doubles that (``L = 2``). A read whose decoded code word correlates
strongly with the code dimensions is stronger evidence than the CRC alone: over all 2^K CRC-valid
words the chance is at most ``2^K exp(-z_code^2 / 2)`` (:func:`code_tail`, t below: the smaller).
Three families of hypotheses are tested: A, the original tile phase at six common scales (re-encoded
or resized but not cropped files), ``p_A = 6 min Q(z) L t`` over candidates whose CRC passes; C, the
same six scales at every tile phase (cropped files, M = 6 P*P); B, the full search over ~130 coarse +
refined scales and all P*P shifts. For C and B, ``p = min(1, M Q(z)) k L t`` (M pairs tested, k = 30 candidates read: the 3
best peaks at their sub-pixel position and their 3 x 3 integer neighbourhoods). The reported read is
the best CRC-passing one, ``p = 3 T p_family`` (Bonferroni over families and the T tiles searched, see
:meth:`.config.WatermarkConfig.decode_tiles`; this module works on one tile). A payload is reported only
when the CRC passes and ``p < alpha`` (1e-6): the false-positive rate is below alpha by construction,
and ``benchmarks/watermark.py`` checks it on real frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.common import FaceforgeError

from .. import ecc
from .config import WatermarkConfig
from .pattern import Pattern, code_layout, dim_values, phases, soft_bits, sync_map

ANCHOR_SCALES = (1.0, 0.5, 0.75, 2.0 / 3.0, 1.5, 2.0)  # family A: common resize factors, tile phase 0
NEIGHBOURS = ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))
LENGTHS = len(ecc.CODES)  # every read tries both payload lengths (Bonferroni factor)


def norm_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def code_tail(z_code: float | None, code: ecc.Code) -> float:
    """P(a read of an unmarked image passes this code's CRC with a code word this well supported):
    1 when the CRC fails, else ``min(2^-16, 2^K exp(-z_code^2 / 2))``.

    ``z_code`` is the decoded code word's correlation with the n code dimensions, ``sum c_d v_d /
    sqrt(n / 2)``. Under the null each ``v_d`` is the cosine of a uniform phase, whose moment generating
    function I0(l) <= exp(l^2 / 4) makes the sum sub-Gaussian: for one fixed word P(z >= t) <=
    exp(-t^2 / 2), and over all 2^K CRC-valid words (the decoder picks one) at most 2^K exp(-t^2 / 2).
    A CRC pass and this bound describe the same event, so the smaller of the two is a valid p-value."""
    if z_code is None:
        return 1.0
    log2_bound = code.payload_bits - 0.5 * max(z_code, 0.0) ** 2 / math.log(2.0)
    return min(2.0 ** -ecc.CRC_BITS, 2.0 ** log2_bound)


@dataclass(frozen=True)
class Read:
    """One (scale, shift) candidate read through Viterbi + CRC at both payload lengths."""

    z: float
    scale: float
    shift: tuple[float, float]
    payload: int | None
    bit_errors: int | None
    code: ecc.Code = ecc.LONG   # the length whose CRC passed (LONG when none did)
    raw: dict | None = None     # payload bits -> decoded bits as an int, whatever the CRC (bit statistics)
    z_code: float | None = None  # the decoded code word's correlation with the code dimensions (z units)


def read(spectrum: np.ndarray, z: float, scale: float, shift: tuple[float, float], cfg, pat) -> Read:
    raw = {}
    for code in ecc.CODES:
        soft = soft_bits(spectrum, shift, cfg, pat, code)                     # (n_coded,)
        payload, raw[code.payload_bits], recoded = ecc.decode_full(soft, code)
        if payload is not None:
            errors = int(np.sum((soft < 0) != (recoded == 1)))
            dims, bit = code_layout(cfg, code)
            values = dim_values(spectrum, shift, cfg, pat)[dims]                 # (n_code,) unweighted
            z_code = float(np.sum(values * (1.0 - 2.0 * recoded[bit]))) / math.sqrt(len(dims) / 2.0)
            return Read(z, scale, shift, payload, errors, code, raw, z_code)
    return Read(z, scale, shift, None, None, ecc.LONG, raw)


def _center(y: np.ndarray, side: int) -> np.ndarray:
    h, w = y.shape
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return y[top:top + side, left:left + side]


def _scale_grid(cfg: WatermarkConfig) -> np.ndarray:
    n = int(math.floor(math.log(cfg.scale_max / cfg.scale_min) / math.log1p(cfg.scale_step))) + 1
    grid = cfg.scale_min * (1 + cfg.scale_step) ** np.arange(n)
    return np.unique(np.round(np.concatenate([grid, [0.5, 0.75, 1.0, 1.5, 2.0]]), 5))


def anchored(y: np.ndarray, cfg: WatermarkConfig, pat: Pattern) -> tuple[float, Read, list]:
    """Family A: the tile phase (0, 0) at the common scales (no crop). p = |A| min Q(z) L t.
    Also returns each scale's (scale, phases, sync map) for family C."""
    P = cfg.tile
    best_p, best, maps = 1.0, None, []
    for s in ANCHOR_SCALES:
        if min(y.shape) / s < P / 4 or not cfg.scale_min <= s <= cfg.scale_max:
            continue
        ph = phases(y, s, cfg, pat)
        zmap = sync_map(ph, cfg, pat)
        maps.append((float(s), ph, zmap))
        z = float(zmap[0, 0])
        r = read(ph, z, s, (0, 0), cfg, pat)
        p = norm_tail(z) * LENGTHS * code_tail(r.z_code, r.code)
        if best is None or p < best_p:
            best_p, best = p, r
    return min(1.0, len(ANCHOR_SCALES) * best_p), best, maps


def subpixel(zmap: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """Sub-pixel peak of the (cyclic) sync map around (i, j): a parabola through each axis's 3 values."""
    P = zmap.shape[0]

    def vertex(a, b, c):
        den = a - 2 * b + c
        return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))

    dy = vertex(zmap[(i - 1) % P, j], zmap[i, j], zmap[(i + 1) % P, j])
    dx = vertex(zmap[i, (j - 1) % P], zmap[i, j], zmap[i, (j + 1) % P])
    return i + dy, j + dx


def _read_peaks(cands: list, m_tests: int, cfg: WatermarkConfig, pat: Pattern) -> tuple[float, Read]:
    """Read the ``read_top`` strongest distinct (scale, peak) candidates through Viterbi + CRC: each
    at its sub-pixel peak, then its 3 x 3 integer neighbourhood (the sync peak is broad). p =
    min(1, M Q(z)), times k L code_tail when one of the k reads passes a CRC (the best such read)."""
    P = cfg.tile
    cands = sorted(cands, key=lambda c: -c[0])
    chosen, seen = [], set()
    for c in cands:                                             # strongest distinct candidates ...
        key = (round(c[1], 2), c[2])
        if key not in seen:
            seen.add(key)
            chosen.append(c)
        if len(chosen) >= cfg.read_top:
            break
    k = len(chosen) * (1 + len(NEIGHBOURS))
    first, best = None, None                                    # the strongest peak's sub-pixel read; best pass
    for _, s, (sy, sx), ph, zmap in chosen:
        shifts = [subpixel(zmap, sy, sx)] + [((sy + dy) % P, (sx + dx) % P) for dy, dx in NEIGHBOURS]
        for shift in shifts:
            z = float(zmap[int(round(shift[0])) % P, int(round(shift[1])) % P])
            r = read(ph, z, s, shift, cfg, pat)
            first = first or r
            if r.payload is not None:
                p = min(1.0, m_tests * norm_tail(z)) * k * LENGTHS * code_tail(r.z_code, r.code)
                best = min(best or (p, r), (p, r), key=lambda pr: pr[0])
                if best[0] < cfg.alpha * 1e-3:                  # conclusive by far: stop reading
                    return best
    return best or (min(1.0, m_tests * norm_tail(first.z)), first)


def _peak(s: float, ph: np.ndarray, zmap: np.ndarray) -> tuple:
    """The sync map's maximum as a read candidate (z, scale, (dy, dx), phases, zmap)."""
    i = int(np.argmax(zmap))
    P = zmap.shape[0]
    return float(zmap.flat[i]), float(s), (i // P, i % P), ph, zmap


def cropped(maps: list, cfg: WatermarkConfig, pat: Pattern) -> tuple[float, Read, int]:
    """Family C: the common scales (as family A) but every tile phase (cropped, maybe resized files)."""
    m_tests = len(maps) * cfg.tile ** 2
    return (*_read_peaks([_peak(s, ph, zmap) for s, ph, zmap in maps], m_tests, cfg, pat), m_tests)


def searched(y: np.ndarray, cfg: WatermarkConfig, pat: Pattern) -> tuple[float, Read, int]:
    """Family B: every scale of the grid (coarse, then refined) and every tile phase."""
    P = cfg.tile
    coarse = []  # (z, scale)
    for s in _scale_grid(cfg):
        win = _center(y, int(math.ceil(cfg.coarse_tiles * P * s)))
        if min(win.shape) / s < P / 4:                          # too little left at this scale
            continue
        coarse.append((float(sync_map(phases(win, s, cfg, pat), cfg, pat).max()), float(s)))
    tests = len(coarse)
    coarse.sort(reverse=True)
    fine = set()
    k = int(round(cfg.refine_span / cfg.refine_step))
    for _, s0 in coarse[:cfg.refine_top]:
        fine.update(np.round(s0 * (1 + cfg.refine_step * np.arange(-k, k + 1)), 6).tolist())
        fine.update(a for a in ANCHOR_SCALES if abs(a / s0 - 1) <= cfg.refine_span)
    cands = []
    for s in sorted(fine):
        if min(y.shape) / s < P / 4:
            continue
        ph = phases(y, s, cfg, pat)
        cands.append(_peak(s, ph, sync_map(ph, cfg, pat)))
        tests += 1
    if not cands:
        raise FaceforgeError(f"image too small for the watermark decoder: {y.shape[1]}x{y.shape[0]} px")
    m_tests = tests * P * P
    return (*_read_peaks(cands, m_tests, cfg, pat), m_tests)
