"""A learned front end for reading the classical pattern in H.264 clips (decoder side only).

The classical decoder measures the pattern in the high-passed, locally normalised luma
(:func:`.pattern.phases`); in a 128 px clip re-encoded at CRF 28 the codec has smoothed the pattern and
left block and ringing noise that the Gaussian high-pass keeps. A small CNN (:class:`FrontEnd`) trained
to estimate the embedded mark from the decoded mean luma (:mod:`.frontend_train`) removes more of the
host. Its folded band spectrum is combined with the classical one per bin as unit phasors,
``F / |F| + mix F_c / |F_c|``: the decoder reads phases only, and with no watermark both phases are
host-driven and rotation-symmetric, so the combination keeps the null distribution the p-values assume
(``benchmarks/watermark.py`` measures the false detections). Used on clips (N > 1) on the small tile,
the case it was trained for (:meth:`.config.WatermarkConfig.front_end_for`); the embedding is unchanged,
so every mark ever made reads with it.

Weights: ``provenance/watermark/weights/frontend128.pt`` (its card: ``weights/README.md``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from core.common import FaceforgeError

WEIGHTS = Path(__file__).resolve().parent / "weights" / "frontend128.pt"
IN_SCALE = 64.0          # luma levels -> network input units


def weights_path(path: str = "") -> Path:
    return Path(path) if path else WEIGHTS


def build(channels: int = 16, dilations: tuple[int, ...] = (1, 2, 4, 8, 1)):
    """The network: (B, 1, H, W) luma levels + (B, 1, H, W) classical residual -> (B, 1, H, W) mark
    estimate in luma levels. Dilated 3x3 convs (receptive field 35 px), reflect padding (no absolute
    position: the tile phase cannot be learned), a learned multiple of the classical residual plus a
    correction whose head starts at zero (training starts from the classical read)."""
    import torch
    from torch import nn

    class FrontEnd(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [], 2
            for d in dilations:
                layers += [nn.Conv2d(c, channels, 3, padding=d, dilation=d, padding_mode="reflect"),
                           nn.ReLU(inplace=True)]
                c = channels
            self.net = nn.Sequential(*layers)
            self.head = nn.Conv2d(c, 1, 3, padding=1, padding_mode="reflect")
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            self.a = nn.Parameter(torch.tensor(0.5))

        def forward(self, y, r):                               # (B, 1, H, W) each
            x = torch.cat([(y - y.mean(dim=(2, 3), keepdim=True)) / IN_SCALE, r], 1)
            return self.a * r + self.head(self.net(x))

    return FrontEnd()


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float):
    import torch

    blob = torch.load(path, map_location="cpu", weights_only=False)
    model = build(**blob.get("arch", {}))
    model.load_state_dict({k: v.float() for k, v in blob["state"].items()})
    model.eval()
    return model


def load(path: str = ""):
    """The front end at ``path`` ("" = the shipped weights), cached; FaceforgeError when missing."""
    p = weights_path(path)
    if not p.is_file():
        raise FaceforgeError(f"the watermark front end's weights are not installed: {p}")
    return _load(str(p), p.stat().st_mtime)


def available(path: str = "") -> bool:
    return weights_path(path).is_file()


def estimate(y: np.ndarray, r: np.ndarray, path: str = "") -> np.ndarray:
    """The mark estimated from luma ``y`` (H, W) and its classical residual ``r`` (H, W): (H, W) float32."""
    import torch

    model = load(path)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]
    with torch.inference_mode():
        return model(t(y), t(r))[0, 0].numpy()


def combined(learned: np.ndarray, classical: np.ndarray, mix: float) -> np.ndarray:
    """Per band bin, the unit phasor of the learned read plus ``mix`` times the classical one: (B,)."""
    from .pattern import unit

    return unit(learned) + mix * unit(classical)
