"""The keyed pattern (sync word + code word in the Fourier bins of one tile) and the spectral
measurements that embedding and decoding share (luma, high-pass, fold, resample, phases)."""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from core.common import FaceforgeError

from .. import ecc
from .config import WatermarkConfig

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Pattern:
    bins_u: np.ndarray      # (B,) frequency rows of the band bins (half plane)
    bins_v: np.ndarray      # (B,) frequency columns
    dim_bin: np.ndarray     # (D,) bin index of each real dimension
    dim_part: np.ndarray    # (D,) 0 = real (cos), 1 = imaginary (sin)
    dim_sign: np.ndarray    # (D,) keyed random sign
    sync_dims: np.ndarray   # indices of sync dimensions (the first n_sync; the rest carry the code)
    sync_bits: np.ndarray   # (n_sync,) +-1 sync word
    sync_kernel: np.ndarray  # (B,) complex: w_re + i w_im of the sync dimensions


def _rng(cfg: WatermarkConfig) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(f"{cfg.key}|{cfg.tile}".encode()).digest()[:8], "big")
    return np.random.default_rng(seed)


@functools.lru_cache(maxsize=8)
def pattern(cfg: WatermarkConfig) -> Pattern:
    """Band bins, the keyed dimension permutation and signs, and the sync word (shared by both codes)."""
    P = cfg.tile
    f = np.fft.fftfreq(P, d=1.0 / P).astype(int)                # (P,) integer frequencies
    U, V = np.meshgrid(f, f, indexing="ij")
    R = np.hypot(U, V)
    band = (R >= cfg.r_lo) & (R <= cfg.r_hi) & (U != 0) & (V != 0)
    band &= (U > 0) | ((U == 0) & (V > 0))                       # half plane: one of each +-(u, v)
    if cfg.skip_block_lines:
        band &= (U % (P // 8) != 0) & (V % (P // 8) != 0)
    bu, bv = np.nonzero(band)
    n_dims = 2 * len(bu)
    rng = _rng(cfg)
    perm = rng.permutation(n_dims)
    n_sync = int(round(cfg.sync_fraction * n_dims))
    need = max(c.n_coded for c in ecc.CODES)
    if n_dims - n_sync < need:
        raise FaceforgeError(f"watermark band too small: {n_dims - n_sync} dims for {need} code bits")
    dim_bin, dim_part = perm // 2, perm % 2
    dim_sign = rng.choice([-1.0, 1.0], size=n_dims)
    sync_dims = np.arange(n_sync)
    sync_bits = rng.choice([-1.0, 1.0], size=n_sync)
    kernel = np.zeros(len(bu), dtype=np.complex128)
    w = dim_sign[sync_dims] * sync_bits
    np.add.at(kernel, dim_bin[sync_dims], np.where(dim_part[sync_dims] == 0, w, 1j * w))
    return Pattern(bins_u=bu, bins_v=bv, dim_bin=dim_bin, dim_part=dim_part, dim_sign=dim_sign,
                   sync_dims=sync_dims, sync_bits=sync_bits, sync_kernel=kernel)


@functools.lru_cache(maxsize=8)
def code_dims(cfg: WatermarkConfig, code: ecc.Code) -> tuple[np.ndarray, ...]:
    """Code bit j -> the dimensions carrying it (the non-sync dimensions dealt out in turn)."""
    n_dims, n_sync = len(pattern(cfg).dim_bin), len(pattern(cfg).sync_dims)
    return tuple(np.arange(n_sync + j, n_dims, code.n_coded) for j in range(code.n_coded))


@functools.lru_cache(maxsize=8)
def code_layout(cfg: WatermarkConfig, code: ecc.Code) -> tuple[np.ndarray, np.ndarray]:
    """(dims carrying code bits, the code bit each of them carries): two (n_code,) int arrays."""
    dims = code_dims(cfg, code)
    return np.concatenate(dims), np.concatenate([np.full(len(d), j) for j, d in enumerate(dims)])


@functools.lru_cache(maxsize=64)
def directions(payload: int, cfg: WatermarkConfig, code: ecc.Code = ecc.LONG) -> np.ndarray:
    """Unit complex direction of every band bin for this payload: (B,) (cos dim + i sin dim)/sqrt 2."""
    pat = pattern(cfg)
    symbols = np.zeros(len(pat.dim_bin))                       # +-1 per dimension
    symbols[pat.sync_dims] = pat.sync_bits
    bits = 1.0 - 2.0 * ecc.encode(payload, code)              # (n_coded,) bit 0 -> +1
    for j, dims in enumerate(code_dims(cfg, code)):
        symbols[dims] = bits[j]
    vals = symbols * pat.dim_sign
    coef = np.zeros(len(pat.bins_u), dtype=np.complex128)
    np.add.at(coef, pat.dim_bin, np.where(pat.dim_part == 0, vals, 1j * vals))
    return coef / np.abs(coef)


def spectrum_to_tile(coef: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    """Band-bin coefficients (B,) -> real spatial tile (P, P)."""
    pat = pattern(cfg)
    P = cfg.tile
    spec = np.zeros((P, P), dtype=np.complex128)
    spec[pat.bins_u, pat.bins_v] = coef
    spec[(-pat.bins_u) % P, (-pat.bins_v) % P] = np.conj(coef)  # Hermitian: a real tile
    return np.real(np.fft.ifft2(spec))


def hp_gain(cfg: WatermarkConfig, pat: Pattern) -> np.ndarray:
    """Gain of the decoder's high-pass at each band bin (Gaussian blur removed): (B,)."""
    f2 = (pat.bins_u.astype(float) ** 2 + pat.bins_v.astype(float) ** 2) / cfg.tile ** 2
    if cfg.hp_sigma <= 0:
        return np.ones_like(f2)
    return 1.0 - np.exp(-2.0 * np.pi ** 2 * cfg.hp_sigma ** 2 * f2)


# ---------------------------------------------------------------- measurements
def as_frames(frames) -> tuple[np.ndarray, bool]:
    """(H, W, 3) or (N, H, W, 3) uint8 -> ((N, H, W, 3), was a single image)."""
    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        raise FaceforgeError(f"watermark expects uint8 RGB frames, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return arr[None], True
    if arr.ndim == 4 and arr.shape[-1] == 3 and arr.shape[0] > 0:
        return arr, False
    raise FaceforgeError(f"watermark expects (H, W, 3) or (N, H, W, 3) RGB, got shape {arr.shape}")


def luma(arr: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> mean luma (H, W) float32 over frames."""
    acc = np.zeros(arr.shape[1:3], np.float32)
    for frame in arr:
        acc += frame.astype(np.float32) @ LUMA
    return acc / len(arr)


def tiled(tile: np.ndarray, H: int, W: int) -> np.ndarray:
    """(P, P) -> (H, W): the tile repeated from the top-left corner."""
    P = tile.shape[0]
    return np.tile(tile, (-(-H // P), -(-W // P)))[:H, :W]


def highpass(z: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    if sigma <= 0:
        return z
    hp = z - cv2.GaussianBlur(z, (0, 0), sigma)
    lim = 3.0 * 1.4826 * np.median(np.abs(hp[::4, ::4])) + 1e-3  # clip strong edges (robust 3 sigma)
    return np.clip(hp, -lim, lim)


def fold(z: np.ndarray, P: int) -> np.ndarray:
    """(H, W) -> (P, P): every tile summed (zero-padded to whole tiles)."""
    h, w = z.shape
    hp, wp = -(-h // P) * P, -(-w // P) * P
    pad = np.zeros((hp, wp), np.float32)
    pad[:h, :w] = z
    return pad.reshape(hp // P, P, wp // P, P).sum(axis=(0, 2))


def resample(y: np.ndarray, scale: float) -> np.ndarray:
    """Undo a resize by ``scale``: resample by ``1/scale`` (Lanczos up, area down). Upsampling a
    downscaled copy with Lanczos instead of bilinear interpolation keeps the band's upper rings from
    aliasing: 128 px faces resized 0.5x read 28 instead of 25 of 39, after JPEG q50 too 25 instead of 19
    (256 px unchanged)."""
    import cv2

    if abs(scale - 1.0) < 1e-9:
        return y
    h, w = y.shape
    size = (max(1, int(round(w / scale))), max(1, int(round(h / scale))))
    return cv2.resize(y, size, interpolation=cv2.INTER_LANCZOS4 if scale < 1 else cv2.INTER_AREA)


def local_norm(z: np.ndarray, sigma: float, floor: float) -> np.ndarray:
    """``z`` divided by its local RMS (Gaussian window ``sigma`` px, at least ``floor`` x the median
    local RMS), rescaled to mean weight 1: textured regions, where the host swamps the pattern, count
    less in the fold than flat ones, where the pattern is most of what the high-pass leaves."""
    import cv2

    if sigma <= 0:
        return z
    rms = np.sqrt(np.maximum(cv2.GaussianBlur(z * z, (0, 0), sigma), 0.0))
    w = 1.0 / np.maximum(rms, floor * float(np.median(rms)) + 1e-6)
    return (z * (w / w.mean())).astype(np.float32)


def phases(y: np.ndarray, scale: float, cfg: WatermarkConfig, pat: Pattern) -> np.ndarray:
    """Complex spectrum at the band bins of the folded, high-passed, resampled image: (B,). With
    ``cfg.front_end == "learned"`` the learned mark estimate's, combined with it (:mod:`.frontend`)."""
    yr = resample(y, scale)
    z = local_norm(highpass(yr, cfg.hp_sigma), cfg.norm_sigma, cfg.norm_floor)
    spec = np.fft.fft2(fold(z, cfg.tile))[pat.bins_u, pat.bins_v]
    if cfg.front_end == "learned":
        from . import frontend

        mark = frontend.estimate(yr, z, cfg.front_end_weights)                  # (H', W')
        spec = frontend.combined(np.fft.fft2(fold(mark, cfg.tile))[pat.bins_u, pat.bins_v], spec,
                                 cfg.front_end_mix)
    elif cfg.front_end != "classical":
        raise FaceforgeError(f"watermark front_end must be 'classical' or 'learned', got {cfg.front_end!r}")
    return spec


def unit(spectrum: np.ndarray) -> np.ndarray:
    """Each bin reduced to its phase, ``F / |F|`` (0 stays 0): the decoder reads phases only."""
    return spectrum / np.maximum(np.abs(spectrum), 1e-12)


def sync_map(spectrum: np.ndarray, cfg: WatermarkConfig, pat: Pattern) -> np.ndarray:
    """z-score of the sync word for every cyclic shift (dy, dx) of the tile: (P, P)."""
    P = cfg.tile
    G = np.zeros((P, P), np.complex128)
    G[pat.bins_u, pat.bins_v] = unit(spectrum) * np.conj(pat.sync_kernel)
    S = np.real(np.fft.ifft2(G)) * P * P                        # sum_b Re(G_b e^{+2 pi i (u dy + v dx) / P})
    return S / math.sqrt(len(pat.sync_dims) / 2.0)


def shift_ramp(shift: tuple[float, float], cfg: WatermarkConfig, pat: Pattern) -> np.ndarray:
    """exp(+2 pi i (u dy + v dx) / P) per band bin, with *signed* frequencies so that a sub-pixel
    shift is undone correctly (bin indices P - f stand for -f): (B,) complex."""
    P = cfg.tile
    fu = np.where(pat.bins_u > P // 2, pat.bins_u - P, pat.bins_u)
    fv = np.where(pat.bins_v > P // 2, pat.bins_v - P, pat.bins_v)
    return np.exp(2j * np.pi * (fu * shift[0] + fv * shift[1]) / P)


def dim_values(spectrum: np.ndarray, shift: tuple[float, float], cfg: WatermarkConfig, pat: Pattern,
               weight: np.ndarray | float = 1.0) -> np.ndarray:
    """Every real dimension's value, signed so that +1 is the embedded symbol: (D,). Each bin is
    reduced to its phase (times ``weight``) and the tile shift is undone."""
    aligned = unit(spectrum) * weight * shift_ramp(shift, cfg, pat)
    return np.where(pat.dim_part == 0, aligned[pat.dim_bin].real, aligned[pat.dim_bin].imag) * pat.dim_sign


def soft_bits(spectrum: np.ndarray, shift: tuple[float, float], cfg: WatermarkConfig, pat: Pattern,
              code: ecc.Code = ecc.LONG) -> np.ndarray:
    """Soft code bits (n_coded,) at one (scale, shift). Bins are weighted by 1/|F|^gamma on top of the
    phase: after host-aware embedding the bins the embedder could align are the quiet ones. (The CRC and
    the code-word bound, on unweighted values, control false positives: weights cannot bias them.)"""
    mag = np.abs(spectrum)
    w = 1.0 / np.maximum(mag, 1e-9 * mag.max() + 1e-12) ** cfg.soft_weight_gamma
    per_dim = dim_values(spectrum, shift, cfg, pat, w / w.mean())
    return np.array([per_dim[d].sum() for d in code_dims(cfg, code)])

