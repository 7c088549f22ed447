"""Embedding: the host-aware (informed) tile spectrum, spent within a PSNR budget, tiled over the image.

The image (the mean frame of a clip) is folded modulo P like the decoder will, and per bin the least
energy is spent that turns the host's coefficient into one within ``max_angle_deg`` of its target
direction with a margin, cheapest bins first, until the PSNR budget (``psnr_db``) is spent; two more
rounds re-solve against the coefficients measured after a simulated JPEG q50 (images) or H.264 CRF 28
(clips). The tile is repeated over the image (identically on every frame) and added to R, G and B
alike, which changes luma only. Clips on the small tile are masked (``clip_mask_beta``: more pattern on
flat areas, which the locally normalised decoder weights most). Small images carry the 32-bit short
payload (:func:`config.code_for`) on a 48 px tile with the same band in cycles per pixel
(:meth:`config.WatermarkConfig.tile_for`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from core.common import FaceforgeError

from .. import ecc
from .config import WatermarkConfig, code_for, short_id
from .pattern import LUMA, as_frames, directions, hp_gain, luma, pattern, phases, spectrum_to_tile, tiled


def amplitude(cfg: WatermarkConfig) -> float:
    """Pattern amplitude (luma levels, RMS) for the PSNR target, leaving room for uint8 rounding."""
    mse = 255.0 ** 2 / 10 ** (cfg.psnr_db / 10) - 1.0 / 12
    return float(math.sqrt(max(mse, 0.01)))


def texture_mask(y: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    """Spatial strength map (H, W), mean square 1: with mask_beta > 0 more pattern where the host is
    textured (where codecs keep detail and eyes notice less), less on flat skin and sky; with mask_beta
    < 0 the reverse (where a locally normalised decoder, pattern.local_norm, weights the pattern most);
    ones when mask_beta = 0."""
    import cv2

    if cfg.mask_beta == 0:
        return np.ones_like(y, dtype=np.float32)
    mu = cv2.GaussianBlur(y, (0, 0), 3.0)
    local_sd = np.sqrt(np.maximum(cv2.GaussianBlur(y * y, (0, 0), 3.0) - mu * mu, 0.0)) + 1.0
    m = local_sd ** cfg.mask_beta
    m = np.clip(m / np.sqrt(np.mean(m * m)), cfg.mask_min, cfg.mask_max)
    return (m / np.sqrt(np.mean(m * m))).astype(np.float32)


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


def solve_bins(host: np.ndarray, gain: np.ndarray, D: np.ndarray, cfg: WatermarkConfig) -> np.ndarray:
    """The budget-limited cone projection of every bin (see informed_spectrum): (B,) complex."""
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


def informed_spectrum(y: np.ndarray, payload: int, cfg: WatermarkConfig, code: ecc.Code = ecc.LONG,
                      mask: np.ndarray | None = None, clip: np.ndarray | None = None) -> np.ndarray:
    """Host-aware tile spectrum (B,) for luma ``y`` (H, W) carrying ``payload`` in ``code``.

    Per bin, the least energy that turns the folded host coefficient into one whose phase lies
    within ``max_angle_deg`` of the payload's direction with a margin; bins are fixed cheapest first
    until the PSNR budget is spent. Then ``robust_iters`` rounds re-solve against the *effective*
    host measured after a simulated JPEG (``robust_jpeg``) of the marked image, or the real H.264
    round trip of ``clip`` (K, H, W), so that energy goes where compression would otherwise flip a bin.
    """
    pat = pattern(cfg)
    P = cfg.tile
    H, W = y.shape
    y0 = y - y.mean()
    host = phases(y0, 1.0, cfg, pat)                             # folded host spectrum (B,)
    gain = H * W / P ** 2 * hp_gain(cfg, pat)                    # folded change per unit of tile spectrum
    D = directions(payload, cfg, code)
    E = solve_bins(host, gain, D, cfg)
    eff = host
    for _ in range(cfg.robust_iters):
        marks = tiled(spectrum_to_tile(E, cfg), H, W)
        marks = marks if mask is None else marks * mask
        if clip is not None and cfg.robust_codec == "h264":      # the real frames through the codec
            attacked = h264_luma(clip + marks[None], cfg.robust_crf, cfg.robust_preset)
        elif cfg.robust_codec == "h264":
            attacked = h264_luma(y0 + marks + y.mean(), cfg.robust_crf, cfg.robust_preset)
        else:
            attacked = jpeg_luma(y0 + marks + y.mean(), cfg.robust_jpeg)
        measured = phases(attacked - attacked.mean(), 1.0, cfg, pat)
        eff = 0.5 * eff + 0.5 * (measured - gain * E)            # host + model error + attack noise
        E = solve_bins(eff, gain, D, cfg)
    return E


def h264_luma(y: np.ndarray, crf: int, preset: str = "veryfast") -> np.ndarray:
    """H.264 (yuv420p, ``crf``, x264 ``preset``) round trip of a luma plane (H, W) or sequence (K, H, W),
    in memory; returns the mean decoded luma (H, W)."""
    import io

    import av

    seq = np.clip(np.rint(y if y.ndim == 3 else y[None]), 0, 255).astype(np.uint8)
    _, h, w = seq.shape
    seq = np.pad(seq, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = seq.shape[2], seq.shape[1], "yuv420p"
        st.options = {"crf": str(int(crf)), "preset": preset}
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


def jpeg_luma(y: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a luma plane (the luma channel of a colour JPEG at the same quality)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.clip(np.rint(y), 0, 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)


def embed(frames, payload: int, cfg: WatermarkConfig | None = None, code: ecc.Code | None = None) -> np.ndarray:
    """Watermark one image ``(H, W, 3)`` or every frame of a clip ``(N, H, W, 3)`` (uint8 RGB).

    ``payload`` is the render's 64-bit payload; images below ``cfg.short_below`` px carry only its
    32-bit :func:`short_id` (``code`` overrides the choice), on the 48 px tile (``cfg.tile_for``).
    ``cfg.method == "learned"`` embeds the learned tile instead (:mod:`.learned`; always the short id)."""
    cfg = cfg or WatermarkConfig()
    if cfg.method == "learned":
        from . import learned

        return learned.embed(frames, payload, learned.LearnedConfig(weights=cfg.learned_weights))
    if cfg.method != "classical":
        raise FaceforgeError(f"unknown watermark method {cfg.method!r} (classical or learned)")
    arr, single = as_frames(frames)
    if not 0 <= int(payload) < (1 << ecc.LONG.payload_bits):
        raise FaceforgeError(f"watermark payload must be an unsigned 64-bit integer, got {payload}")
    _, H, W, _ = arr.shape
    code = code or code_for(H, W, cfg)
    cfg = cfg.at_tile(cfg.tile_for(H, W))                                     # 48 px on small images
    if len(arr) > 1 and cfg.small_tile and cfg.tile == cfg.small_tile:        # small clips: flat areas
        cfg = replace(cfg, mask_beta=cfg.clip_mask_beta)
    carried = short_id(payload) if code is ecc.SHORT else int(payload)
    y = luma(arr)                                                             # (H, W)
    mask = texture_mask(y, cfg)                                               # (H, W)
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
        spectrum = informed_spectrum(y, carried, cfg, code, mask, clip)
    else:
        spectrum = directions(carried, cfg, code)
    tile = spectrum_to_tile(spectrum, cfg)                                    # (P, P)
    if not cfg.informed:
        tile = tile / np.sqrt(np.mean(tile ** 2)) * amplitude(cfg)
    delta = tiled(tile.astype(np.float32), H, W) * mask                       # (H, W) luma change
    out = np.clip(np.rint(arr.astype(np.float32) + delta[None, :, :, None]), 0, 255).astype(np.uint8)
    return out[0] if single else out

