"""The learned watermark's networks: a message + host -> periodic tile encoder and a fold -> bits decoder.

Both work in *tile space*, which keeps them small enough to train on one CPU core:

* the mark is one ``T x T`` tile (T = ``tile`` px, 64) repeated over the image, like the classical
  pattern; the encoder generates it at ``grid`` x ``grid`` (32) from the 162 code bits of the short
  payload and the folded host (host-aware, as the classical informed embedding is), then upsamples it
  circularly to T, mixes in a fixed keyed sync tile (``sync_share`` of the energy) and scales it to an
  exact RMS, so the PSNR target holds by construction (:func:`amplitude`);
* the decoder high-passes the (attacked) luma, folds it modulo T (a crop only shifts the fold
  circularly), finds that shift from the sync tile (phase-only correlation, :func:`sync_map`), rolls the
  fold back, averages it down to ``grid``, normalises its RMS (brightness and contrast changes cancel)
  and reads it with a linear layer plus a small CNN. (A decoder made shift-invariant by construction —
  circular CNN + global average pooling, no sync — did not learn at all on this budget.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    tile: int = 64                 # T: period of the mark in px at the embedded size
    grid: int = 32                 # G: resolution of the tile inside the networks (T / G = 2x upsampling)
    channels: int = 32             # C: conv width of both networks
    msg_grid: int = 16             # the message is projected to (8, msg_grid, msg_grid), then upsampled to G
    n_bits: int = 162              # code bits carried (ecc.SHORT.n_coded: 32-bit id + CRC-16, rate 1/3)
    hp_sigma: float = 3.0          # px: high-pass (luma - Gaussian blur) before folding
    sync_share: float = 0.25       # share of the mark's energy in the fixed keyed sync tile (finds the phase)
    sync_band: tuple = (2.0, 14.0)  # its annulus, cycles per tile (<= T/4: survives a 0.5x downscale)
    psnr_db: float = 40.5          # embedding strength: the tile's RMS for this PSNR (before clipping)
    key: str = "faceforge-learned-v1"  # keyed XOR mask on the code bits (a different key reads as noise)


def amplitude(psnr_db: float) -> float:
    """Mark RMS (luma levels) for a PSNR target, leaving room for uint8 rounding (as the classical one)."""
    mse = 255.0 ** 2 / 10 ** (psnr_db / 10) - 1.0 / 12
    return float(math.sqrt(max(mse, 0.01)))


def _conv(cin: int, cout: int, dil: int = 1, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=dil * (k // 2), dilation=dil, padding_mode="circular")


def highpass(y: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 1, H, W): y minus its separable Gaussian blur (reflect padding)."""
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=y.dtype, device=y.device)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = (g / g.sum()).view(1, 1, 1, -1)
    pad_r = min(r, y.shape[-1] - 1, y.shape[-2] - 1)
    if pad_r < r:                                                      # tiny images: crop the kernel
        g = g[..., r - pad_r:r + pad_r + 1]
        g = g / g.sum()
        r = pad_r
    b = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), g)
    b = F.conv2d(F.pad(b, (0, 0, r, r), mode="reflect"), g.transpose(-1, -2))
    return y - b


def fold(y: torch.Tensor, tile: int) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 1, T, T): the mean of every pixel with the same (row, col) mod T."""
    B, _, H, W = y.shape
    ph, pw = (-H) % tile, (-W) % tile
    ones = torch.ones(1, 1, H, W, dtype=y.dtype, device=y.device)
    yp = F.pad(y, (0, pw, 0, ph))                                      # (B, 1, H', W'), zeros outside
    cp = F.pad(ones, (0, pw, 0, ph))
    s = yp.view(B, 1, (H + ph) // tile, tile, (W + pw) // tile, tile).sum((2, 4))   # (B, 1, T, T)
    c = cp.view(1, 1, (H + ph) // tile, tile, (W + pw) // tile, tile).sum((2, 4))
    return s / c.clamp_min(1.0)


def tiled(tile: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(B, 1, T, T) -> (B, 1, H, W): the tile repeated from the top-left corner."""
    T = tile.shape[-1]
    reps = (math.ceil(H / T), math.ceil(W / T))
    return tile.repeat(1, 1, *reps)[..., :H, :W]


def circular_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, g, g) periodic -> (B, C, size, size) periodic (bilinear, wrapped borders)."""
    g = x.shape[-1]
    if size == g:
        return x
    if size < g:
        return F.adaptive_avg_pool2d(x, size)
    f = size // g
    xp = F.pad(x, (1, 1, 1, 1), mode="circular")                       # (B, C, g+2, g+2)
    up = F.interpolate(xp, scale_factor=f, mode="bilinear", align_corners=False)
    return up[..., f:f + size, f:f + size]


def unit_rms(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit RMS per sample (B, ...)."""
    x = x - x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
    return x / x.pow(2).mean(dim=tuple(range(1, x.dim())), keepdim=True).add(1e-8).sqrt()


class Encoder(nn.Module):
    """(message (B, n_bits) in +-1, folded high-passed host (B, 1, G, G) in units of the mark's RMS)
    -> unit-RMS tile (B, 1, T, T): the learned part plus the fixed sync tile (``sync_share`` of the energy)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        C, m = cfg.channels, cfg.msg_grid
        self.msg = nn.Linear(cfg.n_bits, 8 * m * m)
        self.host = nn.Sequential(_conv(1, 8), nn.ReLU())
        self.body = nn.Sequential(_conv(16, C), nn.ReLU(), _conv(C, C, 2), nn.ReLU(), _conv(C, C, 4), nn.ReLU(),
                                  _conv(C, 1, 1))
        self.skip = nn.Conv2d(8, 1, 1)                                 # linear path: message -> tile
        self.register_buffer("sync", sync_tile(cfg), persistent=False)   # (T, T)

    def forward(self, bits: torch.Tensor, host: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        m = self.msg(bits).view(-1, 8, cfg.msg_grid, cfg.msg_grid)     # (B, 8, m, m)
        m = circular_resize(m, cfg.grid)                               # (B, 8, G, G)
        h = self.host(host)                                            # (B, 8, G, G)
        t = self.body(torch.cat([m, h], 1)) + self.skip(m)             # (B, 1, G, G)
        t = unit_rms(circular_resize(t, cfg.tile))                     # (B, 1, T, T)
        return unit_rms(math.sqrt(1 - cfg.sync_share) * t + math.sqrt(cfg.sync_share) * self.sync)


def sync_tile(cfg: ModelConfig) -> torch.Tensor:
    """(T, T) keyed sync pattern, unit RMS: random phases on the annulus ``sync_band`` (cycles per tile)."""
    import hashlib

    import numpy as np

    T = cfg.tile
    seed = int.from_bytes(hashlib.sha256(f"sync|{cfg.key}|{T}".encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    u = np.fft.fftfreq(T) * T
    r = np.hypot(u[:, None], u[None, :])                                  # (T, T) cycles per tile
    band = (r >= cfg.sync_band[0]) & (r <= cfg.sync_band[1])
    spec = np.where(band, np.exp(2j * np.pi * rng.random((T, T))), 0)
    t = np.real(np.fft.ifft2(spec))                                       # (T, T) real part: symmetric band
    return torch.from_numpy((t / np.sqrt(np.mean(t ** 2))).astype(np.float32))


def sync_map(f: torch.Tensor, sync: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """Folded tiles (B, 1, T, T) -> (B, T*T) z-scores of the phase-only correlation with the sync tile
    (T, T) over the band (T, T), one per circular shift (index dy * T + dx; 0 = as embedded)."""
    F_ = torch.fft.fft2(f[:, 0])                                          # (B, T, T)
    S = torch.fft.fft2(sync)
    cross = F_ * torch.conj(S) / F_.abs().detach().clamp_min(1e-6) * band  # PHAT on the band
    corr = torch.fft.ifft2(cross).real.flatten(1)                         # (B, T*T)
    return (corr - corr.mean(1, keepdim=True)) / corr.std(1, keepdim=True).clamp_min(1e-9)


class Decoder(nn.Module):
    """Luma (B, 1, H, W) in 0..255 (any size >= a few tiles' worth) -> bit logits (B, n_bits).

    Fold (B, 1, T, T) -> sync phase (argmax of ``sync_map``) -> fold rolled to the embedded phase -> averaged to
    (B, 1, G, G) -> a linear read plus a small CNN read (strided to G/4, flattened)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        C, G = cfg.channels, cfg.grid
        self.register_buffer("sync", sync_tile(cfg), persistent=False)
        T = cfg.tile
        u = torch.fft.fftfreq(T) * T
        r = torch.hypot(u[:, None], u[None, :])
        self.register_buffer("band", ((r >= cfg.sync_band[0]) & (r <= cfg.sync_band[1])).float(), persistent=False)
        self.body = nn.Sequential(_conv(1, C), nn.ReLU(), nn.Conv2d(C, C, 3, 2, 1, padding_mode="circular"),
                                  nn.ReLU(), nn.Conv2d(C, C, 3, 2, 1, padding_mode="circular"), nn.ReLU())
        self.head = nn.Linear(C * (G // 4) ** 2, cfg.n_bits)               # CNN read
        self.linear = nn.Linear(G * G, cfg.n_bits)                         # linear read (a learned correlator)

    def folded(self, y: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) luma -> (B, 1, T, T) folded high-pass, unit RMS."""
        return unit_rms(fold(highpass(y, self.cfg.hp_sigma), self.cfg.tile))

    def aligned(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, H, W) -> (the fold rolled to the sync's best phase and downsampled (B, 1, G, G), the
        sync z map (B, T*T))."""
        f = self.folded(y)                                                 # (B, 1, T, T)
        zmap = sync_map(f, self.sync, self.band)                           # (B, T*T)
        idx = zmap.detach().argmax(1).tolist()
        T = self.cfg.tile
        f = torch.stack([torch.roll(fi, (-(i // T), -(i % T)), (1, 2)) for fi, i in zip(f, idx)])
        return unit_rms(circular_resize(f, self.cfg.grid)), zmap           # (B, 1, G, G), (B, T*T)

    def read(self, g: torch.Tensor) -> torch.Tensor:
        """Aligned folds (B, 1, G, G) -> logits (B, n_bits)."""
        return self.head(self.body(g).flatten(1)) + self.linear(g.flatten(1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.read(self.aligned(y)[0])


class LearnedWatermark(nn.Module):
    """Encoder + decoder; ``mark(y, bits)`` returns the marked luma (float, unclipped)."""

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)

    def residual(self, y: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """Host luma (B, 1, H, W) + bits (B, n_bits) in +-1 -> mark (B, 1, H, W) at the PSNR's RMS."""
        A = amplitude(self.cfg.psnr_db)
        with torch.no_grad():                                          # the folded host in mark units
            host = circular_resize(fold(highpass(y, self.cfg.hp_sigma), self.cfg.tile), self.cfg.grid) / A
        tile = self.encoder(bits, host)                                # (B, 1, T, T)
        return tiled(tile, y.shape[-2], y.shape[-1]) * A

    def forward(self, y: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        return y + self.residual(y, bits)
