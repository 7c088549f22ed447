"""Losses of the paper, each returning a dict of named terms (weights applied, summed by the caller).

- Content loss L_CNT: perceptual L1 on VGG19 (ImageNet) and VGGFace activations when their weights are
  given by path (caffe-style input: BGR, 0-255, mean subtracted), otherwise an offline loss needing no
  pretrained network: multi-scale L1 + (1 - SSIM). ``ContentLoss.kind`` records which one ran.
- Adversarial: hinge loss for D, -D(x_hat) + lambda_FM * L_FM for G, L_MCH = lambda_MCH * |W_i - e_hat|_1.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.common import FaceforgeError, get_logger
from forge.config import ContentLossConfig

log = get_logger("losses")

# caffe means, BGR order, 0-255 scale
VGG19_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
VGGFACE_CAFFE_MEAN_BGR = (93.5940, 104.7624, 129.1863)
VGG19_LAYERS = (1, 6, 11, 20, 29)     # torchvision features indices: relu1_1 .. relu5_1 ("Conv1,6,11,20,29")
VGGFACE_LAYERS = (1, 6, 11, 18, 25)   # VGG16 layout: relu1_1 .. relu5_1 ("Conv1,6,11,18,25")
VGG_CFG = {"vgg19": "E", "vgg16": "D"}  # torchvision's layer tables


def caffe_preprocess(x: torch.Tensor, mean_bgr: tuple[float, float, float]) -> torch.Tensor:
    """(B, 3, H, W) RGB in [-1, 1] -> BGR in 0-255 with the caffe mean subtracted."""
    x = (x + 1) * 127.5  # [0, 255]
    x = x.flip(1)  # RGB -> BGR
    mean = torch.tensor(mean_bgr, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x - mean


class _VGGFeatures(nn.Module):
    """Frozen VGG ``features`` stack returning activations at ``layers``."""

    def __init__(self, arch: str, weights: str | Path, layers: tuple[int, ...], mean_bgr):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        net = nn.Module()
        net.features = make_layers(cfgs[VGG_CFG[arch]])  # conv stack only (no 100M-parameter classifier)
        path = Path(weights)
        if not path.is_file():
            raise FaceforgeError(f"{arch} weights not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        missing = net.features.load_state_dict(state, strict=False).missing_keys
        if missing:
            raise FaceforgeError(f"{path} is not a torchvision-format {arch} state dict (missing {missing[0]})")
        self.features = net.features[: max(layers) + 1].eval().requires_grad_(False)
        self.layers, self.mean_bgr = set(layers), mean_bgr

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, out = caffe_preprocess(x, self.mean_bgr), []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.layers:
                out.append(h)
        return out


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Mean SSIM of two (B, C, H, W) batches in [-1, 1] (uniform window, data range 2)."""
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    window = min(window, x.shape[-1], x.shape[-2])
    pool = lambda t: F.avg_pool2d(t, window, stride=1)  # noqa: E731
    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx * mx, pool(y * y) - my * my, pool(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()


class ContentLoss(nn.Module):
    """L_CNT. ``kind`` is "vgg" or "offline" after construction (``"auto"`` picks vgg iff both weight
    paths are given)."""

    def __init__(self, cfg: ContentLossConfig):
        super().__init__()
        self.cfg = cfg
        have = bool(cfg.vgg19_weights) and bool(cfg.vggface_weights)
        if cfg.kind not in ("auto", "vgg", "offline"):
            raise FaceforgeError(f"unknown content loss kind {cfg.kind!r} (auto, vgg, offline)")
        if cfg.kind == "vgg" and not have:
            raise FaceforgeError("content loss 'vgg' needs both content.vgg19_weights and content.vggface_weights")
        self.kind = "vgg" if (cfg.kind == "vgg" or (cfg.kind == "auto" and have)) else "offline"
        if self.kind == "vgg":
            self.vgg19 = _VGGFeatures("vgg19", cfg.vgg19_weights, VGG19_LAYERS, VGG19_CAFFE_MEAN_BGR)
            self.vggface = _VGGFeatures("vgg16", cfg.vggface_weights, VGGFACE_LAYERS, VGGFACE_CAFFE_MEAN_BGR)
        else:
            log.info("content loss: offline multi-scale L1 + SSIM (no VGG19/VGGFace weights given)")
        self.face = None
        if cfg.identity_weight or cfg.perceptual_weight:
            from forge.face_loss import FaceNetLoss

            self.face = FaceNetLoss(cfg.identity_weight, cfg.perceptual_weight)
            self.kind += "+facenet"

    @property
    def description(self) -> str:
        return self.pixel_description + (f" + {self.face.description}" if self.face is not None else "")

    @property
    def pixel_description(self) -> str:
        """The terms without the face net (what ``forward`` computes when given no landmarks)."""
        if self.kind.startswith("vgg"):
            return f"vgg19 ({self.cfg.vgg19_weights}) x {self.cfg.vgg19_weight} + vggface ({self.cfg.vggface_weights}) x {self.cfg.vggface_weight}, caffe BGR 0-255 input"
        return f"offline: {self.cfg.scales}-scale L1 x {self.cfg.l1_weight} + (1 - SSIM) x {self.cfg.ssim_weight}"

    def forward(self, fake: torch.Tensor, real: torch.Tensor, landmarks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        # fake, real (B, 3, S, S) in [-1, 1], landmarks (B, 68, 2) of the target (face-net terms) -> weighted terms
        terms = self._pixel_terms(fake, real)
        if self.face is not None and landmarks is not None:
            terms.update(self.face(fake, real, landmarks))
        return terms

    def _pixel_terms(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.kind.startswith("vgg"):
            return {
                "cnt_vgg19": self.cfg.vgg19_weight * _feature_l1(self.vgg19(fake), self.vgg19(real)),
                "cnt_vggface": self.cfg.vggface_weight * _feature_l1(self.vggface(fake), self.vggface(real)),
            }
        l1, s = fake.new_zeros(()), fake.new_zeros(())
        f, r = fake.float(), real.float()
        for level in range(self.cfg.scales):
            if level:
                f, r = F.avg_pool2d(f, 2), F.avg_pool2d(r, 2)
            l1 = l1 + (f - r).abs().mean()
            s = s + (1 - ssim(f, r))
        return {"cnt_l1": self.cfg.l1_weight * l1 / self.cfg.scales,
                "cnt_ssim": self.cfg.ssim_weight * s / self.cfg.scales}


def _feature_l1(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
    return sum(F.l1_loss(a, b.detach()) for a, b in zip(fa, fb))


def feature_matching(feats_fake: list[torch.Tensor], feats_real: list[torch.Tensor]) -> torch.Tensor:
    """L_FM: L1 between D's activations (after each residual block) on fake and real."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(feats_fake, feats_real))


def generator_adversarial(r_fake: torch.Tensor, feats_fake, feats_real, lambda_fm: float,
                          lambda_adv: float = 1.0) -> dict[str, torch.Tensor]:
    """L_ADV = -D(x_hat) + lambda_FM * L_FM."""
    return {"adv": -lambda_adv * r_fake.mean(), "fm": lambda_fm * feature_matching(feats_fake, feats_real)}


def embedding_match(w: torch.Tensor, e_hat: torch.Tensor, lambda_mch: float) -> dict[str, torch.Tensor]:
    """L_MCH = lambda_MCH * |W_i - e_hat_i|_1 (mean over elements; ours: the paper's sum rescaled)."""
    return {"mch": lambda_mch * F.l1_loss(w, e_hat)}


def discriminator_hinge(r_real: torch.Tensor, r_fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """max(0, 1 - D(x)) + max(0, 1 + D(x_hat))."""
    return {"d_real": F.relu(1 - r_real).mean(), "d_fake": F.relu(1 + r_fake).mean()}
