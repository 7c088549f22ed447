"""The projection discriminator D(x, y, i) = V(x, y)^T (W_i + w_0) + b, one column W_i per video."""

from __future__ import annotations

import torch
from torch import nn

from forge.config import ModelConfig
from forge.model.blocks import add_spectral_norm
from forge.model.embedder import DownsamplingNet


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.net = DownsamplingNet(cfg, extra_block=True)  # V: one more residual block at 4 x 4
        if cfg.spectral_norm:
            add_spectral_norm(self.net)
        self.W = nn.Parameter(torch.randn(max(cfg.n_videos, 1), cfg.emb_dim) * 0.02)  # (n_videos, N)
        self.w0 = nn.Parameter(torch.zeros(cfg.emb_dim))  # (N,)
        self.b = nn.Parameter(torch.zeros(()))

    def realism(self, v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # v (B, N), w (B, N) the per-sample column W_i (or FT's w') -> r (B,)
        return (v * (w + self.w0)).sum(dim=1) + self.b

    def forward(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # x, y (B, 3, S, S), w (B, N) -> r (B,), features after each residual block (for L_FM)
        v, feats = self.net(x, y)  # (B, N)
        return self.realism(v, w), feats
