"""Blend detectors: a frame CNN with a classification head and a blend-mask head.

Face X-ray (Li et al. 2020) and SBI (Shiohara & Yamasaki 2022): trained on self-blended pseudo-fakes
(:mod:`detect.sbi`), the network learns the blend boundary itself; the mask head (the blended pixels,
predicted at 1/8 resolution) is an auxiliary target that makes it look at the right place.

- ``blend_cnn``: any timm backbone (``extra.backbone``, default MobileNetV3-Large: it trains about 4x
  faster than EfficientNet-B0 on 2 CPU cores) from scratch, or from ``--weights``.
- ``blend_identity``: the face-pretrained identity network (package ``faces``) as the backbone, frozen
  (``extra.freeze: true``: only the heads learn) or fine-tuned.
- ``identity_features``: the frozen identity network's pooled activations (mean and std per channel of
  three stages) -> logistic regression: the cheap "frozen features + head" variant.

``net(x)`` returns the fake logit ``(B, 1)`` like every other frame CNN, so the corpus training loop
of :mod:`detect.detectors.cnn` trains them too; ``net.with_mask(x)`` adds the mask logits.
"""

from __future__ import annotations

import numpy as np

from detect.detectors.base import FeatureDetector
from detect.detectors.cnn import TorchFrameDetector
from detect.registry import register

DEFAULT_BACKBONE = "mobilenetv3_large_100"
MASK_STRIDE = 8              # the mask head predicts at 1/8 of the input side
HEAD_DROPOUT = 0.2
IDENTITY_CHIP = 150          # the identity network's input side (dlib's chip)
IDENTITY_MASK_STAGE = "stage2"   # 17 px at 150: about 1/8 of the input, like MASK_STRIDE
IDENTITY_CLS_STAGE = "stage5"    # the last stage (what the descriptor pools)
IDENTITY_FEATURE_STAGES = ("stage2", "stage3", "stage4")   # pooled for the frozen-feature detector
FEATURE_BATCH = 32


def _heads(cls_ch: int, mask_ch: int):
    import torch.nn as nn

    cls = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(HEAD_DROPOUT), nn.Linear(cls_ch, 1))
    mask = nn.Sequential(nn.Conv2d(mask_ch, 32, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(32, 1, 1))
    return cls, mask


def build_timm_blendnet(backbone: str):
    """timm ``features_only`` backbone -> BlendNet: ``(B,3,H,W) -> (B,1)``; ``with_mask`` adds ``(B,1,H/8,W/8)``."""
    import timm
    import torch.nn as nn

    class BlendNet(nn.Module):
        def __init__(self):
            super().__init__()
            # pretrained=False: no model hub here; --weights PATH starts from a checkpoint
            self.body = timm.create_model(backbone, pretrained=False, features_only=True)
            strides = self.body.feature_info.reduction()
            self.mask_at = strides.index(MASK_STRIDE) if MASK_STRIDE in strides else len(strides) // 2
            chans = self.body.feature_info.channels()
            self.cls, self.mask = _heads(chans[-1], chans[self.mask_at])

        def with_mask(self, x):                          # (B, 3, H, W)
            feats = self.body(x)                         # [(B, C_i, H/s_i, W/s_i)]
            return self.cls(feats[-1]), self.mask(feats[self.mask_at])  # (B, 1), (B, 1, H/8, W/8)

        def forward(self, x):
            return self.with_mask(x)[0]                  # (B, 1)

    return BlendNet()


def build_identity_blendnet(freeze: bool):
    """The face-pretrained identity network as a BlendNet backbone (input resized to its 150 px chip)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from faces import IdentityNet

    class IdentityBlendNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = IdentityNet.load(shared=False)   # a trainable copy with dlib's weights
            self.frozen = freeze
            if freeze:
                self.body.requires_grad_(False)
            with torch.no_grad():
                probe = self._maps(torch.zeros(1, 3, IDENTITY_CHIP, IDENTITY_CHIP))
            self.cls, self.mask = _heads(probe[-1].shape[1], probe[0].shape[1])

        def _maps(self, x):                              # (B, 3, 150, 150) in [-1, 1]
            chips = (x + 1.0) * 127.5                    # the identity net wants RGB 0..255
            maps = self.body.features(chips)             # {stage: (B, C, h, w)}
            return maps[IDENTITY_MASK_STAGE], maps[IDENTITY_CLS_STAGE]  # (B, 64, 17, 17), (B, 256, 2, 2)

        def with_mask(self, x):                          # (B, 3, H, W)
            x = F.interpolate(x, size=(IDENTITY_CHIP, IDENTITY_CHIP), mode="bilinear", align_corners=False)
            if self.frozen:
                self.body.eval()
            maps = self._maps(x)
            return self.cls(maps[-1]), self.mask(maps[0])

        def forward(self, x):
            return self.with_mask(x)[0]

    return IdentityBlendNet()


@register("blend_cnn")
class BlendCNN(TorchFrameDetector):
    """timm backbone + classification and blend-mask heads (SBI / Face X-ray); extra.backbone picks it."""

    def build(self):
        return build_timm_blendnet(str(self.cfg.extra.get("backbone", DEFAULT_BACKBONE)))


@register("blend_identity")
class BlendIdentity(TorchFrameDetector):
    """Face-pretrained identity network (faces/) + blend heads; extra.freeze: frozen features or fine-tuned."""

    def build(self):
        return build_identity_blendnet(bool(self.cfg.extra.get("freeze", False)))


@register("identity_features")
class IdentityFeatures(FeatureDetector):
    """Frozen face-pretrained identity network (faces/): pooled mid/late activations -> logistic regression."""

    def features(self, frames, landmarks=None):
        import torch
        import torch.nn.functional as F

        from faces import IdentityNet

        net = IdentityNet.load()                                   # shared, frozen, eval mode
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()   # (N, 3, S, S) 0..255
        x = F.interpolate(x, size=(IDENTITY_CHIP, IDENTITY_CHIP), mode="bilinear", align_corners=False)
        rows = []
        with torch.no_grad():
            for start in range(0, len(x), FEATURE_BATCH):
                maps = net.features(x[start:start + FEATURE_BATCH])
                pooled = [torch.cat([maps[s].mean((2, 3)), maps[s].std((2, 3))], 1) for s in IDENTITY_FEATURE_STAGES]
                rows.append(torch.cat(pooled, 1).numpy())          # (B, 2 * (64 + 128 + 256))
        return np.concatenate(rows).astype(np.float64), np.eye(len(frames), dtype=bool)

    def make_classifier(self, n_rows):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=float(self.cfg.extra.get("C", 0.1)), max_iter=2000))
