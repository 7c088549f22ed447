"""faceforge's invisible watermark: a keyed, tiled, mid-frequency spread-spectrum pattern in luma.

Embedding. One ``P x P`` tile (P = 64 px) is built in the Fourier domain: every frequency bin in an
annulus ``r_lo <= |(u, v)| <= r_hi`` (cycles per tile) gives two real dimensions (cos, sin). A keyed
permutation gives some dimensions to a known *sync* word and spreads the 172 code bits of the payload
(64 bits + CRC-16, rate-1/2 K=7 convolutional code, :mod:`provenance.ecc`) over the rest, each with a
keyed random sign. The tile is repeated over the image (and over every frame of a clip, identically)
and added to R, G and B alike, which changes luma only, at an amplitude set by ``psnr_db``.

Decoding. The clip's frames are averaged (the pattern is static: averaging is the matched combination
of per-frame evidence, and a dropped frame only removes one term), high-passed, then for each
candidate scale the image is resampled by ``1/scale`` and *folded* modulo P (all tiles summed, so any
crop still contributes whole tile phases). In the folded tile's spectrum each bin is reduced to its
phase (``F / |F|``), which whitens the host image; the sync correlation for every cyclic shift of
the tile is one inverse FFT. The best (scale, shift) candidates are read out: soft code bits ->
soft Viterbi -> CRC.

Statistics. Under the null (no watermark, or another key) each phase is uniform, so the sync score
at one (scale, shift) is a sum of independent terms of variance 1/2: ``z = S / sqrt(n_sync / 2)``.
The p-value is ``min(1, M * Q(z))`` over the ``M`` (scale, shift) pairs searched (Bonferroni), times
``k * 2**-16`` when one of the ``k`` candidates read passes the CRC (a random word passes with
probability 2**-16, independently of the sync dimensions). A payload is reported as *detected* only
when the CRC passes and ``p < alpha`` (1e-6): the false-positive rate is below alpha by construction,
and ``benchmarks/watermark.py`` checks it empirically on every real frame of the sample.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from forge.common import FaceforgeError

from . import ecc

ALG_NAME = "org.faceforge.watermark.tiled-ss.v1"
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class WatermarkConfig:
    key: str = "faceforge-watermark-v1"   # keyed pattern; a different key reads as "no watermark"
    tile: int = 64                        # P: period of the pattern in pixels
    r_lo: float = 2.0                     # annulus of frequencies used, in cycles per tile
    r_hi: float = 14.0                    # <= P/4 so the pattern survives a 0.5x downscale
    skip_block_lines: bool = False        # drop bins on the 8 px JPEG block grid harmonics
    sync_fraction: float = 0.25           # share of the dimensions given to the known sync word
    psnr_db: float = 41.0                 # embedding strength as a PSNR target (before clipping)
    hp_sigma: float = 4.0                 # decoder high-pass (px, in tile units) before folding
    scale_min: float = 0.35               # search range of (attack) resize factors
    scale_max: float = 2.2
    scale_step: float = 0.01              # coarse grid step (relative), on a central window
    coarse_tiles: int = 4                 # coarse window side, in tiles
    refine_span: float = 0.012            # fine search +- around the best coarse scales ...
    refine_step: float = 0.002            # ... with this step, on the whole image
    refine_top: int = 3                   # coarse scales refined
    read_top: int = 3                     # (scale, shift) candidates read through Viterbi + CRC
    alpha: float = 1e-6                   # detection threshold on the p-value


@dataclass(frozen=True)
class WatermarkResult:
    payload: int | None                   # the 64-bit payload when detected, else None
    detected: bool
    confidence: float                     # 1 - p_value
    p_value: float                        # probability of a score this high with no watermark
    z: float                              # sync z-score at the chosen (scale, shift)
    scale: float                          # estimated resize factor (1.0 = original size)
    shift: tuple[int, int]                # tile phase (dy, dx) in resampled pixels
    bit_errors: int | None                # hard code-bit errors corrected by the ECC (when decoded)
    n_frames: int
    tests: int                            # M: (scale, shift) pairs searched
    crc_ok: bool = False
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["payload"] = None if self.payload is None else f"{self.payload:016x}"
        d["shift"] = list(self.shift)
        return d


@dataclass(frozen=True)
class _Pattern:
    tile: np.ndarray        # (P, P) float32, unit RMS: the tile for an all-zero code (used as template)
    bins_u: np.ndarray      # (B,) frequency rows of the band bins (half plane)
    bins_v: np.ndarray      # (B,) frequency columns
    dim_bin: np.ndarray     # (D,) bin index of each real dimension
    dim_part: np.ndarray    # (D,) 0 = real (cos), 1 = imaginary (sin)
    dim_sign: np.ndarray    # (D,) keyed random sign
    sync_dims: np.ndarray   # indices of sync dimensions
    sync_bits: np.ndarray   # (n_sync,) +-1 sync word
    code_dims: list         # code bit j -> indices of its dimensions
    sync_kernel: np.ndarray  # (B,) complex: w_re + i w_im of the sync dimensions


def _rng(cfg: WatermarkConfig) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(f"{cfg.key}|{cfg.tile}".encode()).digest()[:8], "big")
    return np.random.default_rng(seed)


@functools.lru_cache(maxsize=8)
def _pattern(cfg: WatermarkConfig) -> _Pattern:
    P = cfg.tile
    f = np.fft.fftfreq(P, d=1.0 / P).astype(int)                # (P,) integer frequencies
    U, V = np.meshgrid(f, f, indexing="ij")
    R = np.hypot(U, V)
    band = (R >= cfg.r_lo) & (R <= cfg.r_hi) & (U != 0) & (V != 0)
    band &= (U > 0) | ((U == 0) & (V > 0))                       # half plane: one of each +-(u, v)
    if cfg.skip_block_lines:
        band &= (U % (P // 8) != 0) & (V % (P // 8) != 0)
    bu, bv = np.nonzero(band)
    n_bins = len(bu)
    n_dims = 2 * n_bins
    rng = _rng(cfg)
    perm = rng.permutation(n_dims)
    n_sync = int(round(cfg.sync_fraction * n_dims))
    if n_dims - n_sync < ecc.N_CODED:
        raise FaceforgeError(f"watermark band too small: {n_dims - n_sync} dims for {ecc.N_CODED} code bits")
    dim_bin, dim_part = perm // 2, perm % 2
    dim_sign = rng.choice([-1.0, 1.0], size=n_dims)
    sync_dims = np.arange(n_sync)
    sync_bits = rng.choice([-1.0, 1.0], size=n_sync)
    code_dims = [np.arange(n_sync + j, n_dims, ecc.N_CODED) for j in range(ecc.N_CODED)]
    kernel = np.zeros(n_bins, dtype=np.complex128)
    w = dim_sign[sync_dims] * sync_bits
    np.add.at(kernel, dim_bin[sync_dims], np.where(dim_part[sync_dims] == 0, w, 1j * w))
    return _Pattern(tile=np.zeros((P, P), np.float32), bins_u=bu, bins_v=bv, dim_bin=dim_bin,
                    dim_part=dim_part, dim_sign=dim_sign, sync_dims=sync_dims, sync_bits=sync_bits,
                    code_dims=code_dims, sync_kernel=kernel)


@functools.lru_cache(maxsize=64)
def _tile(payload: int, cfg: WatermarkConfig) -> np.ndarray:
    """The spatial tile (P, P) float32, unit RMS, carrying sync word + coded payload."""
    pat = _pattern(cfg)
    P = cfg.tile
    symbols = np.zeros(len(pat.dim_bin))                       # +-1 per dimension
    symbols[pat.sync_dims] = pat.sync_bits
    code = 1.0 - 2.0 * ecc.encode(payload)                     # (172,) bit 0 -> +1
    for j, dims in enumerate(pat.code_dims):
        symbols[dims] = code[j]
    vals = symbols * pat.dim_sign
    spec = np.zeros((P, P), dtype=np.complex128)
    coef = np.zeros(len(pat.bins_u), dtype=np.complex128)
    np.add.at(coef, pat.dim_bin, np.where(pat.dim_part == 0, vals, 1j * vals))
    spec[pat.bins_u, pat.bins_v] = coef
    spec[(-pat.bins_u) % P, (-pat.bins_v) % P] = np.conj(coef)  # Hermitian: a real tile
    tile = np.real(np.fft.ifft2(spec))
    return (tile / np.sqrt(np.mean(tile ** 2))).astype(np.float32)


def _as_frames(frames) -> tuple[np.ndarray, bool]:
    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        raise FaceforgeError(f"watermark expects uint8 RGB frames, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return arr[None], True
    if arr.ndim == 4 and arr.shape[-1] == 3 and arr.shape[0] > 0:
        return arr, False
    raise FaceforgeError(f"watermark expects (H, W, 3) or (N, H, W, 3) RGB, got shape {arr.shape}")


def amplitude(cfg: WatermarkConfig) -> float:
    """Pattern amplitude (luma levels, RMS) for the PSNR target, leaving room for uint8 rounding."""
    mse = 255.0 ** 2 / 10 ** (cfg.psnr_db / 10) - 1.0 / 12
    return float(math.sqrt(max(mse, 0.01)))


def embed(frames, payload: int, cfg: WatermarkConfig | None = None) -> np.ndarray:
    """Watermark one image ``(H, W, 3)`` or every frame of a clip ``(N, H, W, 3)`` (uint8 RGB)."""
    cfg = cfg or WatermarkConfig()
    arr, single = _as_frames(frames)
    if not 0 <= int(payload) < (1 << ecc.PAYLOAD_BITS):
        raise FaceforgeError(f"watermark payload must be an unsigned 64-bit integer, got {payload}")
    _, H, W, _ = arr.shape
    P = cfg.tile
    tile = _tile(int(payload), cfg)
    delta = np.tile(tile, (-(-H // P), -(-W // P)))[:H, :W] * amplitude(cfg)   # (H, W) luma change
    out = np.clip(np.rint(arr.astype(np.float32) + delta[None, :, :, None]), 0, 255).astype(np.uint8)
    return out[0] if single else out


# ---------------------------------------------------------------- decoding
def _luma(arr: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> mean luma (H, W) float32 over frames."""
    acc = np.zeros(arr.shape[1:3], np.float32)
    for frame in arr:
        acc += frame.astype(np.float32) @ LUMA
    return acc / len(arr)


def _highpass(z: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    hp = z - cv2.GaussianBlur(z, (0, 0), sigma)
    lim = 3.0 * 1.4826 * np.median(np.abs(hp)) + 1e-3          # clip strong edges (robust 3 sigma)
    return np.clip(hp, -lim, lim)


def _fold(z: np.ndarray, P: int) -> np.ndarray:
    h, w = z.shape
    hp, wp = -(-h // P) * P, -(-w // P) * P
    pad = np.zeros((hp, wp), np.float32)
    pad[:h, :w] = z
    return pad.reshape(hp // P, P, wp // P, P).sum(axis=(0, 2))  # (P, P)


def _resample(y: np.ndarray, scale: float) -> np.ndarray:
    """Undo a resize by ``scale``: resample by ``1/scale``."""
    import cv2

    if abs(scale - 1.0) < 1e-9:
        return y
    h, w = y.shape
    size = (max(1, int(round(w / scale))), max(1, int(round(h / scale))))
    return cv2.resize(y, size, interpolation=cv2.INTER_LINEAR if scale < 1 else cv2.INTER_AREA)


def _phases(y: np.ndarray, scale: float, cfg: WatermarkConfig, pat: _Pattern) -> np.ndarray:
    """Phase-only spectrum at the band bins of the folded, high-passed, resampled image: (B,)."""
    z = _highpass(_resample(y, scale), cfg.hp_sigma)
    F = np.fft.fft2(_fold(z, cfg.tile))[pat.bins_u, pat.bins_v]
    return F / np.maximum(np.abs(F), 1e-9)


def _sync_map(phases: np.ndarray, cfg: WatermarkConfig, pat: _Pattern) -> np.ndarray:
    """z-score of the sync word for every cyclic shift (dy, dx) of the tile: (P, P)."""
    P = cfg.tile
    G = np.zeros((P, P), np.complex128)
    G[pat.bins_u, pat.bins_v] = phases * np.conj(pat.sync_kernel)
    S = np.real(np.fft.ifft2(G)) * P * P                        # sum_b Re(G_b e^{+2 pi i (u dy + v dx) / P})
    return S / math.sqrt(len(pat.sync_dims) / 2.0)


def _soft_bits(phases: np.ndarray, shift: tuple[int, int], cfg: WatermarkConfig, pat: _Pattern) -> np.ndarray:
    P = cfg.tile
    dy, dx = shift
    aligned = phases * np.exp(2j * np.pi * (pat.bins_u * dy + pat.bins_v * dx) / P)   # undo the shift
    per_dim = np.where(pat.dim_part == 0, aligned[pat.dim_bin].real, aligned[pat.dim_bin].imag) * pat.dim_sign
    return np.array([per_dim[d].sum() for d in pat.code_dims])                         # (172,)


def _norm_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _center(y: np.ndarray, side: int) -> np.ndarray:
    h, w = y.shape
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return y[top:top + side, left:left + side]


def _scale_grid(cfg: WatermarkConfig) -> np.ndarray:
    n = int(math.floor(math.log(cfg.scale_max / cfg.scale_min) / math.log1p(cfg.scale_step))) + 1
    grid = cfg.scale_min * (1 + cfg.scale_step) ** np.arange(n)
    return np.unique(np.round(np.concatenate([grid, [0.5, 0.75, 1.0, 1.5, 2.0]]), 5))


def decode(frames, cfg: WatermarkConfig | None = None) -> WatermarkResult:
    """Search for our watermark in one image or a clip; see the module docstring for the statistics."""
    cfg = cfg or WatermarkConfig()
    arr, _ = _as_frames(frames)
    pat = _pattern(cfg)
    P = cfg.tile
    y = _luma(arr)
    y -= y.mean()

    coarse = []  # (z, scale, shift)
    for s in _scale_grid(cfg):
        win = _center(y, int(math.ceil(cfg.coarse_tiles * P * s)))
        if min(win.shape) / s < P / 4:                          # too little left at this scale
            continue
        zmap = _sync_map(_phases(win, s, cfg, pat), cfg, pat)
        i = int(np.argmax(zmap))
        coarse.append((float(zmap.flat[i]), float(s)))
    tests = len(coarse)
    coarse.sort(reverse=True)
    refine = {s for _, s in coarse[:cfg.refine_top]}
    fine = set()
    for s0 in refine:
        k = int(round(cfg.refine_span / cfg.refine_step))
        fine.update(np.round(s0 * (1 + cfg.refine_step * np.arange(-k, k + 1)), 6).tolist())
    cands = []  # (z, scale, shift, phases)
    for s in sorted(fine):
        if s < cfg.scale_min * 0.98 or s > cfg.scale_max * 1.02:
            continue
        ph = _phases(y, s, cfg, pat)
        zmap = _sync_map(ph, cfg, pat)
        i = int(np.argmax(zmap))
        cands.append((float(zmap.flat[i]), float(s), (i // P, i % P), ph))
        tests += 1
    if not cands:
        raise FaceforgeError(f"image too small for the watermark decoder: {y.shape}")
    m_tests = tests * P * P
    cands.sort(key=lambda c: -c[0])
    best = cands[0]
    p_sync = min(1.0, m_tests * _norm_tail(best[0]))
    # Read the strongest distinct candidates; the first whose CRC checks wins.
    read, seen = [], set()
    for c in cands:
        key = (round(c[1], 2), c[2])
        if key not in seen:
            seen.add(key)
            read.append(c)
        if len(read) >= cfg.read_top:
            break
    for z, s, shift, ph in read:
        soft = _soft_bits(ph, shift, cfg, pat)
        payload, recoded = ecc.decode(soft)
        if payload is not None:
            p = min(1.0, m_tests * _norm_tail(z)) * len(read) * 2.0 ** -ecc.CRC_BITS
            errors = int(np.sum((soft < 0) != (recoded == 1)))
            detected = p < cfg.alpha
            return WatermarkResult(payload=payload if detected else None, detected=detected,
                                   confidence=1.0 - p, p_value=p, z=z, scale=s, shift=shift,
                                   bit_errors=errors, n_frames=len(arr), tests=m_tests, crc_ok=True,
                                   extras={"candidate_payload": f"{payload:016x}"} if not detected else {})
    z, s, shift, _ = best
    return WatermarkResult(payload=None, detected=False, confidence=1.0 - p_sync, p_value=p_sync, z=z,
                           scale=s, shift=shift, bit_errors=None, n_frames=len(arr), tests=m_tests)
