"""The watermark's configuration and result records, and which payload length an image carries."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from .. import ecc
from ..store import SHORT_BITS, short_id  # noqa: F401  (short_id re-exported: the package API)

ALG_NAME = "org.faceforge.watermark.tiled-ss.v1"
SHORT_MASK = (1 << SHORT_BITS) - 1
assert SHORT_BITS == ecc.SHORT.payload_bits


@dataclass(frozen=True)
class WatermarkConfig:
    key: str = "faceforge-watermark-v1"   # keyed pattern; a different key reads as "no watermark"
    method: str = "classical"             # embedding: "classical" (this tiled pattern) or "learned" (.learned)
    read_learned: bool = True             # decode: also try the learned model (when installed) if this one fails
    learned_weights: str = ""             # the learned model file ("" = provenance/watermark/weights/learned128.pt)
    tile: int = 64                        # P: period of the pattern in pixels
    r_lo: float = 2.0                     # annulus of frequencies used, in cycles per tile
    r_hi: float = 14.0                    # <= P/4 so the pattern survives a 0.5x downscale
    skip_block_lines: bool = False        # drop bins on the 8 px JPEG block grid harmonics
    sync_fraction: float = 0.25           # share of the dimensions given to the known sync word
    psnr_db: float = 40.5                 # embedding strength as a PSNR target (before clipping)
    short_below: int = 224                # "small" images (sqrt(H W) below this): the 32-bit short payload
                                          # and the small tile (tile_for)
    small_tile: int = 48                  # P on small images (0 = ``tile`` everywhere): a 70 % crop of a 128 px
                                          # face keeps 2.2 tiles per side instead of 1.7 (crop 8 -> 15 of 39 reads)
    small_r_lo: float = 1.5               # its band in cycles per tile: the same cycles per pixel as r_lo at 64 px
    small_r_hi: float = 12.0              # ... and P/4 at the top (12/48; 10.5, the same as 14/64, read worse)
    clip_mask_beta: float = -0.5          # clips on the small tile: mask_beta (< 0: more pattern on flat areas,
                                          # which the normalised decoder weights most; CRF 28 clips 19 -> 27 of 39)
    informed: bool = True                 # host-aware embedding (see embedding.informed_spectrum); False = blind
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
    robust_preset: str = "medium"         # ... and its x264 preset (x264's default; was veryfast: 128 px CRF 28
                                          # clips read at tile phase 0 18 -> 21 of 26)
    hp_sigma: float = 1.5                 # high-pass (px) before folding (was 4 before the 4th pass) ...
    norm_sigma: float = 2.0               # ... then the local RMS normalisation (px; 0 = off; pattern.local_norm):
    norm_floor: float = 0.25              # local RMS floored at this x its median. 128 px crops 15 -> 39 of 39
                                          # reads, CRF 28 clips 4 -> 27 (with clip_mask_beta); old marks still read
    front_end: str = "classical"          # what a read measures: "classical" (the high-pass above) or "learned"
                                          # (+ the CNN of .frontend, phasors combined); set per read by decode
    clip_front_end: str = "learned"       # reads of clips on the small tile: "learned" (when its weights are
                                          # installed) or "classical"; CRF 28 clips 29 -> 32 of 39 (README)
    front_end_mix: float = 1.0            # weight of the classical phasor in the learned read
    front_end_weights: str = ""           # "" = provenance/watermark/weights/frontend128.pt
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
    match_margin: float = 3.5             # store match: z by which each close rival is ruled out (Q(3.5) = 2e-4)

    def tile_for(self, height: int, width: int) -> int:
        """The tile an ``height x width`` image is embedded with: ``small_tile`` on small images (the same
        threshold as the short payload, ``short_below``), ``tile`` on the others."""
        small = self.small_tile and height * width < self.short_below ** 2
        return self.small_tile if small else self.tile

    def decode_tiles(self, height: int, width: int) -> tuple[int, ...]:
        """The tiles the blind decoder searches an ``height x width`` image for, the likelier first: ``tile``
        always (large originals, and small files marked before the small tile existed); ``small_tile`` only
        when the image could be a small original resized by at most ``scale_max`` (and maybe cropped:
        sqrt(h w) < short_below scale_max). Each tile searched is one more Bonferroni factor."""
        if not self.small_tile or self.small_tile == self.tile:
            return (self.tile,)
        if height * width >= (self.short_below * self.scale_max) ** 2:
            return (self.tile,)
        both = (self.small_tile, self.tile)
        return both if height * width < self.short_below ** 2 else both[::-1]

    def front_end_for(self, tile: int, n_frames: int) -> str:
        """The front end a read of ``n_frames`` frames at ``tile`` uses: ``clip_front_end`` for clips on
        the small tile (what the learned one was trained on) when its weights are installed, else classical."""
        if n_frames < 2 or tile != self.small_tile or self.clip_front_end == "classical":
            return "classical"
        if self.clip_front_end != "learned":
            raise ValueError(f"clip_front_end must be 'learned' or 'classical', got {self.clip_front_end!r}")
        from . import frontend

        return "learned" if frontend.available(self.front_end_weights) else "classical"

    def at_tile(self, tile: int, height: int | None = None, width: int | None = None) -> "WatermarkConfig":
        """The configuration of the pattern with period ``tile``: ``self`` for ``tile``, and for
        ``small_tile`` its band; given the image size, the small tile's scale search starts where a
        small original (sqrt(H W) < short_below) could have been resized to this size."""
        if tile == self.tile:
            return self
        if tile != self.small_tile:
            raise ValueError(f"watermark tile {tile} is neither tile ({self.tile}) nor small_tile ({self.small_tile})")
        cfg = replace(self, tile=tile, r_lo=self.small_r_lo, r_hi=self.small_r_hi)
        if height is not None and width is not None:
            lowest = math.sqrt(height * width) / self.short_below
            cfg = replace(cfg, scale_min=max(self.scale_min, min(lowest, self.scale_max)))
        return cfg


def code_for(height: int, width: int, cfg: WatermarkConfig) -> ecc.Code:
    """The payload length an ``height x width`` image carries: the short 32-bit store index below
    ``cfg.short_below`` px (geometric mean side, on the small tile: ``cfg.tile_for``), the full 64-bit
    payload above."""
    return ecc.SHORT if height * width < cfg.short_below ** 2 else ecc.LONG


def payload_text(payload: int | None, bits: int = ecc.LONG.payload_bits) -> str | None:
    """Hex digits of a payload at its length (16 for 64 bits, 8 for a 32-bit short id)."""
    return None if payload is None else f"{int(payload):0{bits // 4}x}"


@dataclass(frozen=True)
class WatermarkResult:
    payload: int | None                   # the payload when detected (64 bits, or 32 when payload_bits == 32)
    detected: bool
    confidence: float                     # 1 - p_value
    p_value: float                        # probability of a score this high with no watermark
    z: float                              # sync z-score at the chosen (scale, shift)
    scale: float                          # estimated resize factor (1.0 = original size)
    shift: tuple[float, float]            # tile phase (dy, dx) in resampled pixels (sub-pixel; tile: extras)
    bit_errors: int | None                # hard code-bit errors corrected by the ECC (when decoded)
    n_frames: int
    tests: int                            # M: (scale, shift) pairs searched
    crc_ok: bool = False
    extras: dict = field(default_factory=dict)
    payload_bits: int = ecc.LONG.payload_bits   # 64: the full payload; 32: the short store index

    @property
    def is_short(self) -> bool:
        return self.payload_bits == ecc.SHORT.payload_bits

    def to_dict(self) -> dict:
        d = asdict(self)
        d["payload"] = payload_text(self.payload, self.payload_bits)
        d["shift"] = list(self.shift)
        return d
