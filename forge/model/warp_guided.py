"""The warp-guided generator (ours, beyond the paper): G(y, guide, psi_hat) refines the warp baseline.

Inputs: the target landmark image y, the warp guide (the nearest fit frame(s) warped to the target
landmarks, blended when ``guide_sources`` > 1, + its validity mask, ``forge.guide``) and the person's
AdaIN parameters psi_hat = P e_hat.
Body: the paper's G layout (residual down blocks with instance norm, AdaIN residual blocks at the
bottleneck, AdaIN up blocks, self-attention) plus additive U-Net skips from the encoder, so that full-
resolution detail of the warp reaches the output. Output head, per pixel (W the warped frame):

    x_hat = clamp(W + delta + m * (g - W), -1, 1)

- delta (3 ch): a residual over the warp (colour, blending, eyes, small pose corrections); its conv is
  zero-initialised, so it starts at 0;
- g (3 ch, tanh): a generated frame for what the warp cannot show (mouth interior, teeth, disoccluded or
  out-of-frame regions);
- m (1 ch, sigmoid): the blend mask towards g; its conv has zero weights and bias ``mask_init_logit``
  (-4: m = 0.018).

At initialisation x_hat = 0.982 W + 0.018 g: the generator starts as good as the warp (SSIM within
~0.01 of it) and learns where to depart from it. E and P carry the person exactly as in the paper's G
(FF and FT work unchanged). The head is excluded from spectral normalisation (a zero weight has no
spectral norm; FT re-adds spectral norm to the rest).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forge.config import ModelConfig
from forge.guide import GUIDE_CHANNELS
from forge.model.blocks import (ResBlockAdaIN, ResBlockDown, ResBlockUp, SelfAttention, add_spectral_norm,
                                channel_plan, conv1, down_path)

LANDMARK_CHANNELS = 3
DESIGN = ("warp_guided G: input = landmark image + the guide: the guide_sources nearest fit frames piecewise-affine-"
          "warped to the target landmarks, blended by landmark distance (softmax, temperature guide_tau px at 128 px), "
          "+ validity mask; U-Net (instance-norm down blocks, AdaIN bottleneck/up blocks from P e_hat, "
          "additive skips); output x_hat = clamp(W + delta + m * (g - W)), delta zero-initialised, "
          "m = sigmoid(mask logit, bias init mask_init_logit), g = tanh RGB: starts as the warp")


class WarpHead(nn.Module):
    """Features (B, C, S, S) + warp (B, 3, S, S) -> x_hat, and the blend mask m for logging."""

    no_spectral_norm = True

    def __init__(self, channels: int, mask_init_logit: float):
        super().__init__()
        self.delta = nn.Conv2d(channels, 3, 3, padding=1)
        self.rgb = nn.Conv2d(channels, 3, 3, padding=1)
        self.mask = nn.Conv2d(channels, 1, 3, padding=1)
        for conv in (self.delta, self.mask):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.mask.bias, mask_init_logit)

    def forward(self, h: torch.Tensor, warped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # h (B, C, S, S), warped (B, 3, S, S) -> x_hat (B, 3, S, S), m (B, 1, S, S)
        h = F.relu(h)
        m = torch.sigmoid(self.mask(h))                                 # (B, 1, S, S)
        g = torch.tanh(self.rgb(h))                                     # (B, 3, S, S)
        x = warped + self.delta(h) + m * (g - warped)
        return x.clamp(-1, 1), m


class WarpGuidedGenerator(nn.Module):
    uses_guide = True

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        chans = channel_plan(cfg.g_down_blocks, cfg.base_channels, cfg.max_channels)
        cin = LANDMARK_CHANNELS + GUIDE_CHANNELS
        self.stem = ResBlockDown(cin, chans[0], norm="instance", preact=False, down=False)  # full-res features
        self.down, res = down_path(chans[0], chans, cfg.resolution, cfg.attn_down_res)
        cin = chans[-1]
        self.res = nn.ModuleList(ResBlockAdaIN(cin) for _ in range(cfg.g_res_blocks))
        up, skips = [], []
        skip_chans = [chans[0], *chans[:-1]][::-1]                      # encoder features at each up output size
        for c_skip in skip_chans:
            up.append(ResBlockUp(cin, c_skip))
            skips.append(conv1(c_skip, c_skip))
            res *= 2
            if res == cfg.attn_up_res:
                up.append(SelfAttention(c_skip))
            cin = c_skip
        self.up, self.skips = nn.ModuleList(up), nn.ModuleList(skips)
        adain_blocks = [*self.res, *(b for b in self.up if isinstance(b, ResBlockUp))]
        self.psi_sizes = [b.n_params for b in adain_blocks]
        self.n_psi = sum(self.psi_sizes)
        self.projection = nn.Linear(cfg.emb_dim, self.n_psi, bias=False)  # the matrix P
        self.head = WarpHead(cin, cfg.mask_init_logit)
        if cfg.spectral_norm:
            add_spectral_norm(self)                                     # skips the head (no_spectral_norm)

    def project(self, e_hat: torch.Tensor) -> torch.Tensor:
        # e_hat (B, N) -> psi_hat (B, n_psi)
        return self.projection(e_hat)

    def forward(self, y: torch.Tensor, psi: torch.Tensor, guide: torch.Tensor | None = None,
                return_mask: bool = False):
        # y (B, 3, S, S), psi (B, n_psi), guide (B, 4, S, S) -> x_hat (B, 3, S, S) in [-1, 1] (+ m (B, 1, S, S))
        if guide is None:
            raise ValueError("the warp-guided generator needs the warp guide (forge.guide.warp_guide)")
        warped = guide[:, :3]                                           # (B, 3, S, S)
        h = self.stem(torch.cat([y, guide], dim=1))                     # (B, C0, S, S)
        feats = [h]
        for block in self.down:
            h = block(h)                                                # (B, C, S/2^i, S/2^i)
            if isinstance(block, ResBlockDown):
                feats.append(h)
        feats = feats[:-1][::-1]                                        # skip sources, bottleneck excluded
        chunks = iter(psi.split(self.psi_sizes, dim=1))
        for block in self.res:
            h = block(h, next(chunks))                                  # (B, C, s, s)
        skips = iter(zip(self.skips, feats))
        for block in self.up:
            if isinstance(block, ResBlockUp):
                conv, f = next(skips)
                h = block(h, next(chunks)) + conv(f)                    # (B, C', 2s, 2s)
            else:
                h = block(h)
        x, m = self.head(h, warped)
        return (x, m) if return_mask else x
