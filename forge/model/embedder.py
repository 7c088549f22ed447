"""The embedder E(x, y; phi): a frame and its landmark image -> the person vector e (N-d)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from forge.config import ModelConfig
from forge.model.blocks import ResBlockDown, SelfAttention, add_spectral_norm, channel_plan


class DownsamplingNet(nn.Module):
    """Residual downsampling blocks (no normalisation) S -> 4 with self-attention at ``attn_res``,
    optionally one more residual block at 4 x 4 (D's V), global sum pooling, ReLU, linear to N.
    Shared by the embedder E and the discriminator's V."""

    def __init__(self, cfg: ModelConfig, extra_block: bool, resolution: int | None = None):
        super().__init__()
        res = resolution or cfg.resolution
        chans = channel_plan(int(math.log2(res // 4)), cfg.base_channels, cfg.max_channels)
        blocks, cin = [], 6
        for i, c in enumerate(chans):
            blocks.append(ResBlockDown(cin, c, norm="none", preact=i > 0))
            res //= 2
            if res == cfg.attn_down_res:
                blocks.append(SelfAttention(c))
            cin = c
        if extra_block:
            blocks.append(ResBlockDown(cin, cin, norm="none", down=False))
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(cin, cfg.emb_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # x, y (B, 3, S, S) -> v (B, N), features after each residual block
        h = torch.cat([x, y], dim=1)  # (B, 6, S, S)
        feats = []
        for block in self.blocks:
            h = block(h)
            if isinstance(block, ResBlockDown):
                feats.append(h)
        h = F.relu(h.sum(dim=(2, 3)))  # global sum pooling: (B, C, 4, 4) -> (B, C)
        return self.fc(h), feats  # (B, N)


class Embedder(nn.Module):
    """E: ê_i = mean_k E(x_i(s_k), y_i(s_k)). With ``embed_resolution`` below S (ours, CPU budget) the
    frames and landmark images are area-downsampled to it first: E sees the person, not fine detail."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.resolution = cfg.embed_resolution or cfg.resolution
        self.net = DownsamplingNet(cfg, extra_block=False, resolution=self.resolution)
        if cfg.spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x, y (B, K, 3, S, S) -> e_hat (B, N), the mean over the K frames
        b, k = x.shape[:2]
        x, y = x.flatten(0, 1), y.flatten(0, 1)  # (B*K, 3, S, S)
        if x.shape[-1] != self.resolution:
            x, y = (F.adaptive_avg_pool2d(t, self.resolution) for t in (x, y))  # (B*K, 3, S_E, S_E)
        e, _ = self.net(x, y)  # (B*K, N)
        return e.view(b, k, -1).mean(dim=1)  # (B, N)
