"""faceforge's invisible watermark: a keyed, tiled, mid-frequency spread-spectrum pattern in luma.

Embedding. One ``P x P`` tile (P = 64 px) is defined in the Fourier domain: every frequency bin in an
annulus ``r_lo <= |(u, v)| <= r_hi`` (cycles per tile) gives two real dimensions (cos, sin). A keyed
permutation gives a quarter of the dimensions to a known *sync* word and spreads the 172 code bits of
the payload (64 bits + CRC-16, rate-1/2 K=7 convolutional code, :mod:`provenance.ecc`) over the rest,
each with a keyed random sign; so each bin has a target *direction* (a quadrant of the complex plane).
The embedding is host-aware (informed): the image (the mean frame of a clip) is folded modulo P like
the decoder will, and per bin the least energy is spent that turns the host's coefficient into one
within ``max_angle_deg`` of its target direction with a margin, cheapest bins first, until the PSNR
budget (``psnr_db``) is spent; two more rounds re-solve against the coefficients measured after a
simulated JPEG q50 (images) or H.264 CRF 28 intra frame (clips). The tile is repeated over the image
(identically on every frame) and added to R, G and B alike, which changes luma only.

Decoding. Frames are averaged (the pattern is static, so a dropped frame only removes one term),
high-passed, resampled by ``1/scale`` for a candidate scale and *folded* modulo P (all tiles summed,
so any crop still contributes whole tile phases). In the folded spectrum each bin is reduced to its
phase (``F / |F|``), which whitens the host; the sync correlation for every cyclic shift of the tile
is one inverse FFT. Candidates are read out: soft code bits -> soft Viterbi -> CRC.

Statistics. Under the null (no watermark, or another key) the phases are uniform, so the sync score at
one (scale, shift) is a sum of independent terms of variance 1/2: ``z = S / sqrt(n_sync / 2)``, and a
random word passes the CRC with probability 2**-16, independently of the sync dimensions. Three families
of hypotheses are tested: A, the original tile phase at six common scales (re-encoded or resized but
not cropped files), ``p_A = 6 min Q(z) 2**-16`` over candidates whose CRC passes; C, the same six
scales at every tile phase (cropped files, M = 6 P*P); B, the full search over ~130 coarse + refined
scales and all P*P shifts. For C and B, ``p = min(1, M Q(z)) k 2**-16`` (M pairs tested, k = 30
candidates read: the 3 best peaks at their sub-pixel position and their 3 x 3 integer neighbourhoods).
The reported read is the best CRC-passing one, ``p = 3 p_family`` (Bonferroni). A payload is reported only when the
CRC passes and ``p < alpha`` (1e-6): the false-positive rate is below alpha by construction, and
``benchmarks/watermark.py`` checks it on real frames.

Store-assisted detection (family M, ``decode(..., candidates=...)``). Blind reading needs all 80
information bits; a provenance store only asks "is one of *these* N payloads here?". Each known
payload's code word is correlated with the code dimensions at G geometries chosen from the sync
maps (so independent of those dimensions under the null): ``z = sum / sqrt(n_code / 2)``,
``p = min(1, G N Q(z))``, and the Bonferroni factor becomes 4. This uses the payload's whole energy
as one statistic (about 1.7x the sync z), so a crop or a codec that leaves the sync word but flips
15-25 % of the code bits is still recognised; a payload not in the store is never invented, and
a match is refused unless its closest rivals are ruled out on the dimensions where their code
words differ (sequential ids share ~85 % of them; see :func:`_beats_rivals`).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from core.common import FaceforgeError

from . import ecc

ALG_NAME = "org.faceforge.watermark.tiled-ss.v1"
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
N_FAMILIES = 3  # A: common scales, tile phase 0; C: common scales, any phase; B: full search (Bonferroni)
ANCHOR_SCALES = (1.0, 0.5, 0.75, 2.0 / 3.0, 1.5, 2.0)  # family A: common resize factors, tile phase 0
RIVALS = 4  # store match: next-best payloads that must be ruled out (see _beats_rivals)
NEIGHBOURS = ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1))


@dataclass(frozen=True)
class WatermarkConfig:
    key: str = "faceforge-watermark-v1"   # keyed pattern; a different key reads as "no watermark"
    tile: int = 64                        # P: period of the pattern in pixels
    r_lo: float = 2.0                     # annulus of frequencies used, in cycles per tile
    r_hi: float = 14.0                    # <= P/4 so the pattern survives a 0.5x downscale
    skip_block_lines: bool = False        # drop bins on the 8 px JPEG block grid harmonics
    sync_fraction: float = 0.25           # share of the dimensions given to the known sync word
    psnr_db: float = 40.5                 # embedding strength as a PSNR target (before clipping)
    informed: bool = True                 # host-aware embedding (see _informed_spectrum); False = blind
    max_angle_deg: float = 15.0           # informed: phase error allowed per bin after embedding
    margin: tuple = (4.0, 2.0, 1.0, 0.5, 0.25, 0.0)  # informed: margins tried (x |host bin|), largest that fits
    floor: float = 0.5                    # informed: minimum margin, x the blind per-bin amplitude
    robust_iters: int = 2                 # informed: re-solve rounds against a simulated JPEG
    robust_jpeg: int = 50                 # informed: quality of that simulated JPEG
    robust_codec: str = "jpeg"            # "jpeg" (images) or "h264" (clips: embed() picks it for N > 1)
    mask_beta: float = 0.0                # texture masking exponent (0 = uniform strength)
    mask_min: float = 0.3                 # ... clipped to [mask_min, mask_max] x RMS
    mask_max: float = 2.5
    robust_spread: bool = False           # clips: those frames spread over the clip (else the first ones)
    robust_frames: int = 8                # clips: frames sent through the simulated codec (0 = mean frame)
    robust_crf: int = 28                  # informed: CRF of the simulated H.264 intra frame
    hp_sigma: float = 4.0                 # decoder high-pass (px, in tile units) before folding
    scale_min: float = 0.35               # search range of (attack) resize factors
    scale_max: float = 2.2
    scale_step: float = 0.015             # coarse grid step (relative), on a central window
    coarse_tiles: int = 4                 # coarse window side, in tiles
    refine_span: float = 0.012            # fine search +- around the best coarse scales ...
    refine_step: float = 0.002            # ... with this step, on the whole image
    refine_top: int = 2                   # coarse scales refined
    soft_weight_gamma: float = 0.0        # code-bit soft values weighted by 1/|F|^gamma (0 = phase only)
    read_top: int = 3                     # (scale, shift) candidates read through Viterbi + CRC
    alpha: float = 1e-6                   # detection threshold on the p-value
    match_ratio: float = 0.5              # store match: share of the sync-predicted code signal required
    match_chunk: int = 65536              # store match: candidates scored per block (memory bound)
    match_margin: float = 4.0             # store match: z by which each close rival is ruled out


@dataclass(frozen=True)
class WatermarkResult:
    payload: int | None                   # the 64-bit payload when detected, else None
    detected: bool
    confidence: float                     # 1 - p_value
    p_value: float                        # probability of a score this high with no watermark
    z: float                              # sync z-score at the chosen (scale, shift)
    scale: float                          # estimated resize factor (1.0 = original size)
    shift: tuple[float, float]            # tile phase (dy, dx) in resampled pixels (sub-pixel)
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
    return _Pattern(bins_u=bu, bins_v=bv, dim_bin=dim_bin,
                    dim_part=dim_part, dim_sign=dim_sign, sync_dims=sync_dims, sync_bits=sync_bits,
                    code_dims=code_dims, sync_kernel=kernel)


@functools.lru_cache(maxsize=64)
def _directions(payload: int, cfg: WatermarkConfig) -> np.ndarray:
    """Unit complex direction of every band bin for this payload: (B,) (cos dim + i sin dim)/sqrt 2."""
    pat = _pattern(cfg)
    symbols = np.zeros(len(pat.dim_bin))                       # +-1 per dimension
    symbols[pat.sync_dims] = pat.sync_bits
    code = 1.0 - 2.0 * ecc.encode(payload)                     # (172,) bit 0 -> +1
    for j, dims in enumerate(pat.code_dims):
        symbols[dims] = code[j]
    vals = symbols * pat.dim_sign
    coef = np.zeros(len(pat.bins_u), dtype=np.complex128)
    np.add.at(coef, pat.dim_bin, np.where(pat.dim_part == 0, vals, 1j * vals))
    return coef / np.abs(coef)


def _spectrum_to_tile(coef: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    """Band-bin coefficients (B,) -> real spatial tile (P, P)."""
    pat = _pattern(cfg)
    P = cfg.tile
    spec = np.zeros((P, P), dtype=np.complex128)
    spec[pat.bins_u, pat.bins_v] = coef
    spec[(-pat.bins_u) % P, (-pat.bins_v) % P] = np.conj(coef)  # Hermitian: a real tile
    return np.real(np.fft.ifft2(spec))


@functools.lru_cache(maxsize=64)
def _tile(payload: int, cfg: WatermarkConfig) -> np.ndarray:
    """The blind spatial tile (P, P) float32, unit RMS, carrying sync word + coded payload."""
    tile = _spectrum_to_tile(_directions(payload, cfg), cfg)
    return (tile / np.sqrt(np.mean(tile ** 2))).astype(np.float32)


def _hp_gain(cfg: WatermarkConfig, pat: _Pattern) -> np.ndarray:
    """Gain of the decoder's high-pass at each band bin (Gaussian blur removed): (B,)."""
    f2 = (pat.bins_u.astype(float) ** 2 + pat.bins_v.astype(float) ** 2) / cfg.tile ** 2
    if cfg.hp_sigma <= 0:
        return np.ones_like(f2)
    return 1.0 - np.exp(-2.0 * np.pi ** 2 * cfg.hp_sigma ** 2 * f2)


def _cone_projection(h_par, h_perp, m, t):
    """Closest point (a, b) to (h_par, h_perp) with a >= m and |b| <= t a (vectorised)."""
    inside = (h_par >= m) & (np.abs(h_perp) <= t * h_par)
    sgn = np.where(h_perp >= 0, 1.0, -1.0)
    L = (h_par + sgn * t * h_perp) / (1 + t * t)                 # projection onto the ray b = sgn t a
    a1, b1 = L, sgn * t * L
    a2, b2 = m, np.clip(h_perp, -t * m, t * m)                    # or onto the segment a = m
    d1 = np.where(a1 >= m, (a1 - h_par) ** 2 + (b1 - h_perp) ** 2, np.inf)
    d2 = (a2 - h_par) ** 2 + (b2 - h_perp) ** 2
    a = np.where(inside, h_par, np.where(d1 < d2, a1, a2))
    b = np.where(inside, h_perp, np.where(d1 < d2, b1, b2))
    return a, b


def _texture_mask(y: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    """Spatial strength map (H, W), mean square 1: more pattern where the host is textured (where
    codecs keep detail and eyes notice less), less on flat skin and sky; ones when mask_beta = 0."""
    import cv2

    if cfg.mask_beta <= 0:
        return np.ones_like(y, dtype=np.float32)
    mu = cv2.GaussianBlur(y, (0, 0), 3.0)
    local_sd = np.sqrt(np.maximum(cv2.GaussianBlur(y * y, (0, 0), 3.0) - mu * mu, 0.0)) + 1.0
    m = local_sd ** cfg.mask_beta
    m = np.clip(m / np.sqrt(np.mean(m * m)), cfg.mask_min, cfg.mask_max)
    return (m / np.sqrt(np.mean(m * m))).astype(np.float32)


def _informed_spectrum(y: np.ndarray, payload: int, cfg: WatermarkConfig,
                       mask: np.ndarray | None = None, clip: np.ndarray | None = None) -> np.ndarray:
    """Host-aware tile spectrum (B,) for luma ``y`` (H, W).

    Per bin, the least energy that turns the folded host coefficient into one whose phase lies
    within ``max_angle_deg`` of the payload's direction with a margin; bins are fixed cheapest first
    until the PSNR budget is spent. Then ``robust_iters`` rounds re-solve against the *effective*
    host measured after a simulated JPEG (``robust_jpeg``) of the marked image, so that energy goes
    where compression would otherwise flip a bin (and the fold's exact geometry is accounted for).
    """
    pat = _pattern(cfg)
    P = cfg.tile
    H, W = y.shape
    y0 = y - y.mean()
    host = _phases(y0, 1.0, cfg, pat)                            # folded host spectrum (B,)
    gain = H * W / P ** 2 * _hp_gain(cfg, pat)                   # folded change per unit of tile spectrum
    D = _directions(payload, cfg)
    E = _solve_bins(host, gain, D, cfg)
    eff = host
    for _ in range(cfg.robust_iters):
        pattern = _tiled(_spectrum_to_tile(E, cfg), H, W)
        pattern = pattern if mask is None else pattern * mask
        if clip is not None and cfg.robust_codec == "h264":      # the real frames through the codec
            attacked = _h264_luma(clip + pattern[None], cfg.robust_crf)
        else:
            attacked = _simulate_attack(y0 + pattern + y.mean(), cfg)
        measured = _phases(attacked - attacked.mean(), 1.0, cfg, pat)
        eff = 0.5 * eff + 0.5 * (measured - gain * E)            # host + model error + attack noise
        E = _solve_bins(eff, gain, D, cfg)
    return E


def _tiled(tile: np.ndarray, H: int, W: int) -> np.ndarray:
    P = tile.shape[0]
    return np.tile(tile, (-(-H // P), -(-W // P)))[:H, :W]


def _simulate_attack(y: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    if cfg.robust_codec == "h264":
        return _h264_luma(y, cfg.robust_crf)
    return _jpeg_luma(y, cfg.robust_jpeg)


def _h264_luma(y: np.ndarray, crf: int) -> np.ndarray:
    """H.264 (yuv420p, ``crf``) round trip of a luma plane (H, W) or sequence (K, H, W), in memory;
    returns the mean decoded luma (H, W)."""
    import io

    import av

    seq = np.clip(np.rint(y if y.ndim == 3 else y[None]), 0, 255).astype(np.uint8)
    _, h, w = seq.shape
    seq = np.pad(seq, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = seq.shape[2], seq.shape[1], "yuv420p"
        st.options = {"crf": str(int(crf)), "preset": "veryfast"}
        for img in seq:
            for packet in st.encode(av.VideoFrame.from_ndarray(img, format="gray")):
                out.mux(packet)
        for packet in st.encode():
            out.mux(packet)
    buf.seek(0)
    acc, n = np.zeros((h, w), np.float64), 0
    with av.open(buf, mode="r") as inp:
        for frame in inp.decode(video=0):
            acc += frame.to_ndarray(format="gray")[:h, :w]
            n += 1
    return (acc / max(n, 1)).astype(np.float32)


def _jpeg_luma(y: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a luma plane (the luma channel of a colour JPEG at the same quality)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.clip(np.rint(y), 0, 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)


def _solve_bins(host: np.ndarray, gain: np.ndarray, D: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    """The budget-limited cone projection of every bin (see _informed_spectrum): (B,) complex."""
    P = cfg.tile
    h_par = np.real(host * np.conj(D))
    h_perp = np.imag(host * np.conj(D))
    budget = amplitude(cfg) ** 2 * P ** 4 / 2.0                  # sum_b |E_b|^2 allowed (Parseval)
    blind = math.sqrt(budget / len(D))                           # blind per-bin amplitude
    t = math.tan(math.radians(cfg.max_angle_deg))
    for kappa in cfg.margin:                                     # largest margin that fixes every bin
        m = np.maximum(kappa * np.abs(host), cfg.floor * blind * gain)
        a, b = _cone_projection(h_par, h_perp, m, t)
        E = ((a - h_par) + 1j * (b - h_perp)) * D / gain
        cost = np.abs(E) ** 2
        if cost.sum() <= budget:
            break
    order = np.argsort(cost)
    keep = np.zeros(len(D), bool)
    keep[order[np.cumsum(cost[order]) <= budget]] = True        # cheapest bins first
    E = np.where(keep, E, 0)
    spare = budget - np.sum(np.abs(E) ** 2)
    if spare > 0:                                                # leftover energy: blind on every bin
        # |E + c D|^2 = budget:  len(D) c^2 + 2 c sum Re(E conj D) - spare = 0
        q = float(np.sum(np.real(E * np.conj(D))))
        c = (-q + math.sqrt(q * q + len(D) * spare)) / len(D)
        E = E + c * D
    return E


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
    y = _luma(arr)
    mask = _texture_mask(y, cfg)                                              # (H, W)
    if cfg.informed:
        if len(arr) > 1 and cfg.robust_codec == "jpeg":                        # clips: simulate H.264
            cfg = replace(cfg, robust_codec="h264")
        clip = None
        if len(arr) > 1 and cfg.robust_frames > 0:                             # (K, H, W) luma of K frames
            if cfg.robust_spread:
                idx = np.unique(np.linspace(0, len(arr) - 1, min(len(arr), cfg.robust_frames)).round().astype(int))
            else:
                idx = np.arange(min(len(arr), cfg.robust_frames))
            clip = np.stack([arr[i].astype(np.float32) @ LUMA for i in idx])
        tile = _spectrum_to_tile(_informed_spectrum(y, int(payload), cfg, mask, clip), cfg).astype(np.float32)
    else:
        tile = _tile(int(payload), cfg) * amplitude(cfg)
    delta = _tiled(tile, H, W) * mask                                          # (H, W) luma change
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

    if sigma <= 0:
        return z
    hp = z - cv2.GaussianBlur(z, (0, 0), sigma)
    lim = 3.0 * 1.4826 * np.median(np.abs(hp[::4, ::4])) + 1e-3  # clip strong edges (robust 3 sigma)
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
    """Complex spectrum at the band bins of the folded, high-passed, resampled image: (B,)."""
    z = _highpass(_resample(y, scale), cfg.hp_sigma)
    return np.fft.fft2(_fold(z, cfg.tile))[pat.bins_u, pat.bins_v]


def _sync_map(phases: np.ndarray, cfg: WatermarkConfig, pat: _Pattern) -> np.ndarray:
    """z-score of the sync word for every cyclic shift (dy, dx) of the tile: (P, P)."""
    P = cfg.tile
    G = np.zeros((P, P), np.complex128)
    G[pat.bins_u, pat.bins_v] = phases / np.maximum(np.abs(phases), 1e-12) * np.conj(pat.sync_kernel)
    S = np.real(np.fft.ifft2(G)) * P * P                        # sum_b Re(G_b e^{+2 pi i (u dy + v dx) / P})
    return S / math.sqrt(len(pat.sync_dims) / 2.0)


def _soft_bits(spectrum: np.ndarray, shift: tuple[float, float], cfg: WatermarkConfig, pat: _Pattern) -> np.ndarray:
    """Soft code bits at one (scale, shift). Bins are weighted by 1/|F|^gamma on top of the phase:
    after host-aware embedding the bins the embedder could align are the quiet ones. (The CRC, not
    these weights, controls false positives, so the weighting cannot bias the p-value.)"""
    mag = np.abs(spectrum)
    w = 1.0 / np.maximum(mag, 1e-9 * mag.max() + 1e-12) ** cfg.soft_weight_gamma
    per_dim = _dim_values(spectrum, shift, cfg, pat, w / w.mean())
    return np.array([per_dim[d].sum() for d in pat.code_dims])                         # (172,)


def _dim_values(spectrum: np.ndarray, shift: tuple[float, float], cfg: WatermarkConfig, pat: _Pattern,
                weight: np.ndarray | float = 1.0) -> np.ndarray:
    """Every real dimension's value, signed so that +1 is the embedded symbol: (D,). Each bin is
    reduced to its phase (times ``weight``) and the tile shift is undone."""
    aligned = spectrum / np.maximum(np.abs(spectrum), 1e-12) * weight * _shift_ramp(shift, cfg, pat)
    return np.where(pat.dim_part == 0, aligned[pat.dim_bin].real, aligned[pat.dim_bin].imag) * pat.dim_sign


def _shift_ramp(shift: tuple[float, float], cfg: WatermarkConfig, pat: _Pattern) -> np.ndarray:
    """exp(+2 pi i (u dy + v dx) / P) per band bin, with *signed* frequencies so that a sub-pixel
    shift is undone correctly (bin indices P - f stand for -f): (B,) complex."""
    P = cfg.tile
    fu = np.where(pat.bins_u > P // 2, pat.bins_u - P, pat.bins_u)
    fv = np.where(pat.bins_v > P // 2, pat.bins_v - P, pat.bins_v)
    return np.exp(2j * np.pi * (fu * shift[0] + fv * shift[1]) / P)


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


@dataclass(frozen=True)
class _Read:
    """One (scale, shift) candidate read through Viterbi + CRC."""

    z: float
    scale: float
    shift: tuple[float, float]
    payload: int | None
    bit_errors: int | None
    raw: int | None = None      # decoded payload bits even when the CRC fails (bit-accuracy stats)


def _read(phases: np.ndarray, z: float, scale: float, shift: tuple[float, float], cfg, pat) -> _Read:
    soft = _soft_bits(phases, shift, cfg, pat)
    payload, raw, recoded = ecc.decode_full(soft)
    errors = int(np.sum((soft < 0) != (recoded == 1))) if payload is not None else None
    return _Read(z, scale, shift, payload, errors, raw)


def _anchored(y: np.ndarray, cfg: WatermarkConfig, pat: _Pattern) -> tuple[float, _Read, list]:
    """Family A: the tile phase (0, 0) at the common scales (no crop). p = |A| min Q(z) 2^-16.
    Also returns each scale's (scale, phases, sync map) for family C."""
    P = cfg.tile
    best_p, best, maps = 1.0, None, []
    for s in ANCHOR_SCALES:
        if min(y.shape) / s < P / 4:
            continue
        ph = _phases(y, s, cfg, pat)
        zmap = _sync_map(ph, cfg, pat)
        maps.append((float(s), ph, zmap))
        z = float(zmap[0, 0])
        r = _read(ph, z, s, (0, 0), cfg, pat)
        p = _norm_tail(z) * (2.0 ** -ecc.CRC_BITS if r.payload is not None else 1.0)
        if best is None or p < best_p:
            best_p, best = p, r
    return min(1.0, len(ANCHOR_SCALES) * best_p), best, maps


def _subpixel(zmap: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """Sub-pixel peak of the (cyclic) sync map around (i, j): a parabola through each axis's 3 values."""
    P = zmap.shape[0]

    def vertex(a, b, c):
        den = a - 2 * b + c
        return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))

    dy = vertex(zmap[(i - 1) % P, j], zmap[i, j], zmap[(i + 1) % P, j])
    dx = vertex(zmap[i, (j - 1) % P], zmap[i, j], zmap[i, (j + 1) % P])
    return i + dy, j + dx


def _read_peaks(cands: list, m_tests: int, cfg: WatermarkConfig, pat: _Pattern) -> tuple[float, _Read]:
    """Read the ``read_top`` strongest distinct (scale, peak) candidates through Viterbi + CRC: each
    at its sub-pixel peak, then its 3 x 3 integer neighbourhood (the sync peak is broad). p =
    min(1, M Q(z)), times k 2^-16 when one of the k reads passes the CRC."""
    P = cfg.tile
    cands = sorted(cands, key=lambda c: -c[0])
    read, seen = [], set()
    for c in cands:                                             # strongest distinct candidates ...
        key = (round(c[1], 2), c[2])
        if key not in seen:
            seen.add(key)
            read.append(c)
        if len(read) >= cfg.read_top:
            break
    k = len(read) * (1 + len(NEIGHBOURS))
    first = None                                                # the strongest peak's sub-pixel read
    for _, s, (sy, sx), ph, zmap in read:
        shifts = [_subpixel(zmap, sy, sx)] + [((sy + dy) % P, (sx + dx) % P) for dy, dx in NEIGHBOURS]
        for shift in shifts:
            z = float(zmap[int(round(shift[0])) % P, int(round(shift[1])) % P])
            r = _read(ph, z, s, shift, cfg, pat)
            first = first or r
            if r.payload is not None:
                return min(1.0, m_tests * _norm_tail(z)) * k * 2.0 ** -ecc.CRC_BITS, r
    return min(1.0, m_tests * _norm_tail(first.z)), first


def _peak(s: float, ph: np.ndarray, zmap: np.ndarray) -> tuple:
    i = int(np.argmax(zmap))
    P = zmap.shape[0]
    return float(zmap.flat[i]), float(s), (i // P, i % P), ph, zmap


def _cropped(maps: list, cfg: WatermarkConfig, pat: _Pattern) -> tuple[float, _Read, int]:
    """Family C: the common scales (as family A) but every tile phase (cropped, maybe resized files)."""
    m_tests = len(maps) * cfg.tile ** 2
    return (*_read_peaks([_peak(s, ph, zmap) for s, ph, zmap in maps], m_tests, cfg, pat), m_tests)


def _searched(y: np.ndarray, cfg: WatermarkConfig, pat: _Pattern) -> tuple[float, _Read, int]:
    """Family B: every scale of the grid (coarse, then refined) and every tile phase."""
    P = cfg.tile
    coarse = []  # (z, scale)
    for s in _scale_grid(cfg):
        win = _center(y, int(math.ceil(cfg.coarse_tiles * P * s)))
        if min(win.shape) / s < P / 4:                          # too little left at this scale
            continue
        coarse.append((float(_sync_map(_phases(win, s, cfg, pat), cfg, pat).max()), float(s)))
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
        ph = _phases(y, s, cfg, pat)
        cands.append(_peak(s, ph, _sync_map(ph, cfg, pat)))
        tests += 1
    if not cands:
        raise FaceforgeError(f"image too small for the watermark decoder: {y.shape[1]}x{y.shape[0]} px")
    m_tests = tests * P * P
    return (*_read_peaks(cands, m_tests, cfg, pat), m_tests)


@functools.lru_cache(maxsize=8)
def _code_layout(cfg: WatermarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(dims carrying code bits, the code bit each of them carries): two (n_code,) int arrays."""
    pat = _pattern(cfg)
    dims = np.concatenate(pat.code_dims)
    bit = np.concatenate([np.full(len(d), j) for j, d in enumerate(pat.code_dims)])
    return dims, bit


def _matched(geoms: list, candidates: np.ndarray, cfg: WatermarkConfig,
             pat: _Pattern) -> tuple[float, _Read | None, int]:
    """Family M (store-assisted): is one of N *known* payloads in the image?

    Instead of decoding 80 unknown bits, every candidate's code word is correlated with the code
    dimensions at a few geometries G (each common scale at tile phase 0 and at its sync peak, and
    the full search's best read), which uses the whole payload energy as one detection statistic.
    Under the null (no watermark) the code-dimension phases are uniform and independent of the sync
    dimensions that chose the geometries, so each score is N(0, 1) and ``p = min(1, G N Q(z))``.
    A payload other than the candidate's would correlate with it by chance only (the codes of random
    64-bit payloads are near-orthogonal); as a guard, the match must also carry at least
    ``match_ratio`` of the code signal that the sync word at that geometry predicts."""
    dims, bit = _code_layout(cfg)
    n_code, n_sync = len(dims), len(pat.sync_dims)
    values, expect = [], []                                      # per geometry: (n_code,), predicted z
    for s, shift, ph, z_sync in geoms:
        values.append(_dim_values(ph, shift, cfg, pat)[dims])
        expect.append(z_sync * math.sqrt(n_code / n_sync))
    V = np.stack(values, axis=1).astype(np.float32) / math.sqrt(n_code / 2.0)           # (n_code, G)
    k = RIVALS + 1
    top_z, top_i = [], []                                        # per chunk: the k best (z, index) per geometry
    for start in range(0, len(candidates), cfg.match_chunk):
        Z = _code_symbols(candidates[start:start + cfg.match_chunk], bit) @ V          # (n, G) z-scores
        kk = min(k, len(Z))
        idx = np.argpartition(-Z, kk - 1, axis=0)[:kk]                                 # (<=k, G), unordered
        top_z.append(np.take_along_axis(Z, idx, axis=0))
        top_i.append(idx + start)
    top_z, top_i = np.concatenate(top_z), np.concatenate(top_i)                        # (m, G)
    order = np.argsort(-top_z, axis=0)[:k]
    top_z, top_i = np.take_along_axis(top_z, order, axis=0), np.take_along_axis(top_i, order, axis=0)
    g = int(np.argmax(top_z[0]))
    z, i = float(top_z[0, g]), int(top_i[0, g])
    m_tests = len(geoms) * len(candidates)
    p = min(1.0, m_tests * _norm_tail(z))
    s, shift, _, z_sync = geoms[g]
    if z < cfg.match_ratio * expect[g] or not _beats_rivals(V[:, g], candidates[top_i[:, g]], top_z[:, g], bit, cfg):
        return 1.0, None, len(geoms)                             # an echo of, or a tie with, another payload
    return p, _Read(z_sync, s, shift, int(candidates[i]), None, None), len(geoms)


def _beats_rivals(v: np.ndarray, payloads: np.ndarray, z: np.ndarray, bit: np.ndarray, cfg: WatermarkConfig) -> bool:
    """Could one of the next-best payloads (``payloads[1:]``, z-scores ``z[1:]``) be the embedded one
    instead of the best (``payloads[0]``)?

    On the dimensions D where the two code words differ, the best's score ``T`` (in z units) would
    be about ``-A sqrt(|D| / n)`` if the rival were embedded with strength A (estimated by the
    rival's own z). The rival is ruled out when ``T + A sqrt(|D| / n) >= match_margin``. Random
    payloads differ on half the dimensions and are ruled out easily; sequential ids share ~85 % of
    their code words, and a weak copy of one is then refused rather than pinned on a neighbour."""
    sym = _code_symbols(payloads, bit)                                                    # (1 + r, n_code)
    best = sym[0]
    for z_rival, other in zip(z[1:], sym[1:]):
        diff = best != other
        share = max(int(diff.sum()), 1) / len(v)                                         # |D| / n
        t = float(np.sum(v[diff] * best[diff])) / math.sqrt(share)                       # z on D
        if t + max(float(z_rival), 0.0) * math.sqrt(share) < cfg.match_margin:
            return False
    return True


def _code_symbols(payloads: np.ndarray, bit: np.ndarray) -> np.ndarray:
    """+-1 symbol each payload puts on each code dimension (before the keyed sign): (n, n_code)."""
    return 1.0 - 2.0 * ecc.encode_many(payloads)[:, bit].astype(np.float32)


def _match_geometries(y: np.ndarray, maps: list, reads: list, cfg: WatermarkConfig, pat: _Pattern) -> list:
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
        add(s, _subpixel(zmap, i // P, i % P), ph, zmap)
    for _, r in reads:
        if r is not None and not any(abs(r.scale - s) < 1e-9 for s, _, _ in maps):
            ph = _phases(y, r.scale, cfg, pat)
            zmap = _sync_map(ph, cfg, pat)
            add(r.scale, r.shift, ph, zmap)
            add(r.scale, (round(r.shift[0]) % P, round(r.shift[1]) % P), ph, zmap)
    return out


def decode(frames, cfg: WatermarkConfig | None = None, search: bool = True,
           candidates=None) -> WatermarkResult:
    """Look for our watermark in one image or a clip (frames averaged); see the module docstring.

    Three hypothesis families are tested and Bonferroni-combined (see the module docstring): A, the
    original tile phase at a few common scales (re-encoded or resized files); C, those scales at every
    tile phase (cropped files); B, the full scale x phase search. Later families are skipped once an
    earlier one is conclusive. ``candidates`` (the payloads a provenance store knows, any number)
    adds family M, tried only when blind decoding is not conclusive: is one of *those* payloads
    present (see :func:`_matched`)? ``extras['method']`` says which way the payload was found.
    """
    cfg = cfg or WatermarkConfig()
    arr, _ = _as_frames(frames)
    pat = _pattern(cfg)
    y = _luma(arr)
    y -= y.mean()
    cand = None
    if candidates is not None:
        cand = np.unique(np.asarray([int(c) for c in candidates], dtype=np.uint64))
    n_families = N_FAMILIES + (cand is not None)

    def conclusive(p: float, read: _Read) -> bool:             # a CRC-passing payload below alpha
        return read.payload is not None and n_families * p < cfg.alpha

    p_r, r, maps = _anchored(y, cfg, pat)                      # (p, read) of the best family so far
    if r is None:
        raise FaceforgeError(f"image too small for the watermark decoder: {y.shape[1]}x{y.shape[0]} px")
    tests = len(maps)
    reads = [(p_r, r)]
    families = (lambda: _cropped(maps, cfg, pat), lambda: _searched(y, cfg, pat)) if search else ()
    for family in families:
        if conclusive(p_r, r):
            break                                               # no need to search further
        p_f, r_f, m = family()
        tests += m
        reads.append((p_f, r_f))
        p_r, r = min(reads, key=lambda pr: (pr[1].payload is None, pr[0]))   # CRC-passing first
    method = "blind"
    extras = {}
    if cand is not None and len(cand) and not conclusive(p_r, r):
        geoms = _match_geometries(y, maps, reads, cfg, pat)
        p_m, r_m, m = _matched(geoms, cand, cfg, pat)
        tests += m
        extras.update(match_candidates=int(len(cand)), match_geometries=len(geoms))
        if r_m is not None and conclusive(p_m, r_m):
            p_r, r, method = p_m, r_m, "matched"
    p = min(1.0, n_families * p_r)
    detected = conclusive(p_r, r)
    extras = {"method": method if detected else None,
              "raw_payload": None if r.raw is None else f"{r.raw:016x}", **extras}
    if r.payload is not None and not detected:
        extras["candidate_payload"] = f"{r.payload:016x}"
    return WatermarkResult(payload=r.payload if detected else None, detected=detected, confidence=1.0 - p,
                           p_value=p, z=r.z, scale=r.scale, shift=tuple(round(float(v), 2) for v in r.shift),
                           bit_errors=r.bit_errors if detected else None, n_frames=len(arr), tests=tests,
                           crc_ok=r.payload is not None, extras=extras)
