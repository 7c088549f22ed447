"""The generator G(y, psi_hat; psi, P): landmark image -> frame, with person-specific AdaIN params
psi_hat = P e_hat (Johnson-style image-to-image net with BigGAN residual blocks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forge.config import ModelConfig
from forge.model.blocks import ResBlockAdaIN, ResBlockUp, SelfAttention, add_spectral_norm, channel_plan, down_path


class Generator(nn.Module):
    uses_guide = False

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        chans = channel_plan(cfg.g_down_blocks, cfg.base_channels, cfg.max_channels)
        # encoder of the landmark image: residual down blocks with (non-adaptive) instance norm
        self.down, res = down_path(3, chans, cfg.resolution, cfg.attn_down_res, preact_first=False)
        cin = chans[-1]
        # bottleneck and decoder: AdaIN residual blocks, then up blocks back to S
        self.res = nn.ModuleList(ResBlockAdaIN(cin) for _ in range(cfg.g_res_blocks))
        up, ups_out = [], list(reversed(chans[:-1])) + [chans[0]]
        for c in ups_out:
            up.append(ResBlockUp(cin, c))
            res *= 2
            if res == cfg.attn_up_res:
                up.append(SelfAttention(c))
            cin = c
        self.up = nn.ModuleList(up)
        self.to_rgb = nn.Conv2d(cin, 3, 3, padding=1)
        adain_blocks = [*self.res, *(b for b in self.up if isinstance(b, ResBlockUp))]
        self.psi_sizes = [b.n_params for b in adain_blocks]
        self.n_psi = sum(self.psi_sizes)
        self.projection = nn.Linear(cfg.emb_dim, self.n_psi, bias=False)  # the matrix P
        if cfg.spectral_norm:
            add_spectral_norm(self)

    def project(self, e_hat: torch.Tensor) -> torch.Tensor:
        # e_hat (B, N) -> psi_hat (B, n_psi)
        return self.projection(e_hat)

    def forward(self, y: torch.Tensor, psi: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        # y (B, 3, S, S) landmark image, psi (B, n_psi) -> x_hat (B, 3, S, S) in [-1, 1]
        if guide is not None:
            raise ValueError("the paper's generator takes no warp guide (use generator: warp_guided)")
        h = y
        for block in self.down:
            h = block(h)  # (B, C, S/2^i, S/2^i)
        chunks = iter(psi.split(self.psi_sizes, dim=1))
        for block in self.res:
            h = block(h, next(chunks))  # (B, C, s, s)
        for block in self.up:
            h = block(h, next(chunks)) if isinstance(block, ResBlockUp) else block(h)  # (B, C', 2s, 2s)
        return torch.tanh(self.to_rgb(F.relu(h)))  # (B, 3, S, S)
