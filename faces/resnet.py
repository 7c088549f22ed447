"""dlib's face-recognition ResNet (``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp``) in torch.

dlib's definition, read innermost first (its templates nest the input deepest)::

    input_rgb_image_sized<150>                      (x - mean_rgb) / 256
    con<32,7,7,2,2> affine relu max_pool<3,3,2,2>   the stem (no padding: dlib pads only stride-1 layers)
    alevel4 = 3 x ares<32>
    alevel3 = ares_down<64>,  3 x ares<64>
    alevel2 = ares_down<128>, 2 x ares<128>
    alevel1 = ares_down<256>, 2 x ares<256>
    alevel0 = ares_down<256>
    avg_pool_everything, fc_no_bias<128>

    ares<N>      = relu(x + affine(con3x3(relu(affine(con3x3(x))))))
    ares_down<N> = relu(add_prev(affine(con3x3(relu(affine(con3x3/2(x))))), avg_pool<2,2,2,2>(x)))

``affine`` is dlib's inference form of batch norm (a per-channel scale and shift). ``add_prev`` adds
tensors of different shapes the dlib way: the output takes the larger size of each dimension and a
tensor contributes zeros where it has no entry (the skip path's channels are zero-padded, and at 8 -> 4 px
the 3 x 3 block output fills the top-left of the 4 x 4 average-pooled skip).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DLIB_MEAN_RGB = (122.782, 117.001, 104.298)     # stored in the .dat's input layer record
DLIB_INPUT_SCALE = 256.0                        # input_rgb_image_sized divides by 256, not 255
DESCRIPTOR_DIM = 128
STAGES = ((32, 3, False), (64, 3, True), (128, 2, True), (256, 2, True), (256, 0, True))  # (width, ares, down first)

# A layout entry: (dlib record kind, name of the torch module holding its parameters or None).
Layout = list[tuple[str, str | None]]


def padded_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev`` for tensors of different shapes: zero-pad both (bottom/right/channels) to
    the larger size of each dimension, then add."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)  # (B, max C, max H, max W)


class Affine(nn.Module):
    """dlib's ``affine_`` (batch norm folded for inference): ``x * weight + bias`` per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias.view(1, -1, 1, 1), x, self.weight.view(1, -1, 1, 1))


class Stem(nn.Module):
    """con<32,7,7,2,2> affine relu max_pool<3,3,2,2>: (B, 3, 150, 150) -> (B, 32, 35, 35)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 7, stride=2, padding=0)
        self.affine = Affine(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.affine(self.conv(x)))      # (B, 3, 150, 150) -> (B, 32, 72, 72)
        return F.max_pool2d(x, 3, stride=2)        # -> (B, 32, 35, 35)

    def dlib_layout(self, prefix: str) -> Layout:
        return [("con", f"{prefix}.conv"), ("affine", f"{prefix}.affine"), ("relu", None), ("max_pool", None)]


class ResidualBlock(nn.Module):
    """dlib's ``ares<N>``: two 3 x 3 convolutions (padding 1) with affine, identity skip."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.affine1 = Affine(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.affine2 = Affine(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.affine1(self.conv1(x)))
        return F.relu(x + self.affine2(self.conv2(y)))  # (B, N, H, W) -> (B, N, H, W)

    def dlib_layout(self, prefix: str) -> Layout:
        # tag1, con, affine, relu, con, affine, add_prev1, relu
        return [("wrapper", None), ("con", f"{prefix}.conv1"), ("affine", f"{prefix}.affine1"), ("relu", None),
                ("con", f"{prefix}.conv2"), ("affine", f"{prefix}.affine2"), ("add_prev", None), ("relu", None)]


class ResidualDownBlock(nn.Module):
    """dlib's ``ares_down<N>``: a stride-2 3 x 3 convolution (no padding) then a 3 x 3 one; the skip is
    a 2 x 2 average pool of the input, added with dlib's zero-padding ``add_prev``."""

    def __init__(self, in_width: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_width, width, 3, stride=2, padding=0)
        self.affine1 = Affine(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.affine2 = Affine(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.affine1(self.conv1(x)))        # (B, C, H, W) -> (B, N, (H-3)//2+1, ...)
        y = self.affine2(self.conv2(y))
        skip = F.avg_pool2d(x, 2, stride=2)           # (B, C, H, W) -> (B, C, (H-2)//2+1, ...)
        return F.relu(padded_add(y, skip))            # -> (B, N, max of the two sizes)

    def dlib_layout(self, prefix: str) -> Layout:
        # tag1, con/2, affine, relu, con, affine, tag2, skip1, avg_pool, add_prev2, relu
        return [("wrapper", None), ("con", f"{prefix}.conv1"), ("affine", f"{prefix}.affine1"), ("relu", None),
                ("con", f"{prefix}.conv2"), ("affine", f"{prefix}.affine2"), ("wrapper", None), ("wrapper", None),
                ("avg_pool", None), ("add_prev", None), ("relu", None)]


class DlibFaceResNet(nn.Module):
    """The whole network: chips ``(B, 3, 150, 150)`` float RGB in 0..255 -> descriptors ``(B, 128)``."""

    feature_names = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5")

    def __init__(self):
        super().__init__()
        self.register_buffer("mean_rgb", torch.tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1))
        self.stem = Stem(STAGES[0][0])
        stages, width = [], STAGES[0][0]
        for out_width, n_ares, down in STAGES:
            blocks: list[nn.Module] = [ResidualDownBlock(width, out_width)] if down else []
            blocks += [ResidualBlock(out_width) for _ in range(n_ares)]
            stages.append(nn.Sequential(*blocks))
            width = out_width
        # stage1 35 px, stage2 17, stage3 8, stage4 4, stage5 2 (for 150 px chips)
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(width, DESCRIPTOR_DIM, bias=False)

    def normalise(self, chips: torch.Tensor) -> torch.Tensor:
        return (chips - self.mean_rgb) / DLIB_INPUT_SCALE

    def features(self, chips: torch.Tensor) -> dict[str, torch.Tensor]:
        """The activations after the stem and each stage (for perceptual losses and backbones)."""
        x = self.stem(self.normalise(chips))          # (B, 3, 150, 150) -> (B, 32, 35, 35)
        out = {"stem": x}
        for name, stage in zip(self.feature_names[1:], self.stages):
            x = stage(x)                              # stage1..5: (B, 32, 35) (64, 17) (128, 8) (256, 4) (256, 2)
            out[name] = x
        return out

    def embed(self, last: torch.Tensor) -> torch.Tensor:
        return self.fc(last.mean(dim=(2, 3)))         # avg_pool_everything: (B, 256, 2, 2) -> (B, 256) -> (B, 128)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        if chips.ndim != 4 or chips.shape[1] != 3:
            raise ValueError(f"chips must be (N, 3, H, W) RGB, got {tuple(chips.shape)}")
        return self.embed(self.features(chips)["stage5"])

    def dlib_layout(self) -> Layout:
        """The dlib records this module's parameters come from, innermost first (as
        :func:`faces.dlib_format.read_network` returns them)."""
        layout: Layout = [("input", None)] + self.stem.dlib_layout("stem")
        for i, stage in enumerate(self.stages):
            for j, block in enumerate(stage):
                layout += block.dlib_layout(f"stages.{i}.{j}")
        return layout + [("avg_pool", None), ("fc", "fc"), ("loss_metric", None)]
