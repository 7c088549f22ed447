"""Building blocks of the paper's networks: residual down/up blocks (BigGAN style), AdaIN,
self-attention (SAGAN), and spectral normalisation of every conv/linear layer.

Shapes: ``B`` batch, ``C`` channels, ``H x W`` spatial size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral-normalise every Conv2d / Linear inside ``module`` (the paper: all layers of E, G, D).

    Registering the parametrisation runs 15 power iterations, so applying it to weights that were
    already normalised (a baked export) leaves them unchanged (sigma ~= 1). Modules flagged
    ``no_spectral_norm = True`` (and everything inside them) are left alone: the warp-guided generator's
    zero-initialised output head (sigma = 0 cannot be normalised)."""
    from torch.nn.utils.parametrizations import spectral_norm

    skip = {id(m) for sub in module.modules() if getattr(sub, "no_spectral_norm", False) for m in sub.modules()}
    for sub in list(module.modules()):
        if isinstance(sub, (nn.Conv2d, nn.Linear)) and not _has_sn(sub) and id(sub) not in skip:
            spectral_norm(sub)
    return module


def bake_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace each spectral-norm parametrisation by its current normalised weight (for export)."""
    from torch.nn.utils import parametrize

    for sub in list(module.modules()):
        if _has_sn(sub):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)
    return module


def _has_sn(m: nn.Module) -> bool:
    return hasattr(m, "parametrizations") and "weight" in m.parametrizations


def conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


def conv1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


class AdaIN(nn.Module):
    """Adaptive instance normalisation: IN(x) * (1 + gamma) + beta, with (gamma, beta) taken from the
    person-specific vector psi_hat = P e_hat (the scale is stored as an offset from 1 so that a
    zero projection is the identity)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.n_params = 2 * channels

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        # x (B, C, H, W), params (B, 2C) -> (B, C, H, W)
        gamma, beta = params.chunk(2, dim=1)  # (B, C) each
        x = F.instance_norm(x, eps=1e-5)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + gamma * softmax(Q^T K) V, gamma initialised to 0."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = conv1(channels, inner)
        self.key = conv1(channels, inner)
        self.value = conv1(channels, channels // 2 or 1)
        self.out = conv1(channels // 2 or 1, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (B, C/8, HW)
        k = self.key(x).flatten(2)  # (B, C/8, HW)
        v = self.value(x).flatten(2)  # (B, C/2, HW)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, HW, HW)
        o = (v @ attn.transpose(1, 2)).view(b, -1, h, w)  # (B, C/2, H, W)
        return x + self.gamma * self.out(o)  # (B, C, H, W)


class ResBlockDown(nn.Module):
    """Residual downsampling block (BigGAN discriminator block). ``norm="instance"`` in G's encoder,
    ``"none"`` in E and D. ``preact=False`` for the first block (no ReLU on the raw image)."""

    def __init__(self, cin: int, cout: int, norm: str = "none", preact: bool = True, down: bool = True):
        super().__init__()
        if norm not in ("none", "instance"):
            raise ValueError(f"unknown norm {norm!r}")
        self.norm, self.preact, self.down = norm, preact, down
        self.conv_a = conv3(cin, cout)
        self.conv_b = conv3(cout, cout)
        self.skip = conv1(cin, cout) if (cin != cout or down) else None

    def _n(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, eps=1e-5) if self.norm == "instance" else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, Cin, H, W) -> (B, Cout, H/2, W/2)   (H, W when down=False)
        h = self._n(x)
        h = F.relu(h) if self.preact else h
        h = self.conv_b(F.relu(self._n(self.conv_a(h))))
        s = self.skip(x) if self.skip is not None else x
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class ResBlockAdaIN(nn.Module):
    """Residual block with AdaIN at constant resolution (G's bottleneck)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm_a, self.norm_b = AdaIN(channels), AdaIN(channels)
        self.conv_a, self.conv_b = conv3(channels, channels), conv3(channels, channels)
        self.n_params = self.norm_a.n_params + self.norm_b.n_params

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        # x (B, C, H, W), psi (B, 4C) -> (B, C, H, W)
        pa, pb = psi.split([self.norm_a.n_params, self.norm_b.n_params], dim=1)
        h = self.conv_a(F.relu(self.norm_a(x, pa)))
        h = self.conv_b(F.relu(self.norm_b(h, pb)))
        return x + h


class ResBlockUp(nn.Module):
    """Residual upsampling block with AdaIN (BigGAN generator block, BN -> AdaIN)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm_a, self.norm_b = AdaIN(cin), AdaIN(cout)
        self.conv_a, self.conv_b = conv3(cin, cout), conv3(cout, cout)
        self.skip = conv1(cin, cout)
        self.n_params = self.norm_a.n_params + self.norm_b.n_params

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        # x (B, Cin, H, W), psi (B, 2Cin + 2Cout) -> (B, Cout, 2H, 2W)
        pa, pb = psi.split([self.norm_a.n_params, self.norm_b.n_params], dim=1)
        h = F.interpolate(F.relu(self.norm_a(x, pa)), scale_factor=2, mode="nearest")
        h = self.conv_b(F.relu(self.norm_b(self.conv_a(h), pb)))
        s = self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))
        return h + s


def down_path(cin: int, chans: list[int], resolution: int, attn_res: int,
              preact_first: bool = True) -> tuple[nn.ModuleList, int]:
    """G's encoder: one instance-norm residual down block per entry of ``chans`` (from ``cin`` channels at
    ``resolution``), self-attention after the block whose output is ``attn_res``. ``preact_first=False``
    when the first block sees the raw input. Returns the blocks and the resolution after them."""
    down, res = [], resolution
    for i, c in enumerate(chans):
        down.append(ResBlockDown(cin, c, norm="instance", preact=preact_first or i > 0))
        res //= 2
        if res == attn_res:
            down.append(SelfAttention(c))
        cin = c
    return nn.ModuleList(down), res


def channel_plan(n_blocks: int, base: int, maximum: int) -> list[int]:
    """Output channels of ``n_blocks`` successive downsampling blocks: base, 2 base, ... capped."""
    return [min(base * 2**i, maximum) for i in range(n_blocks)]


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
