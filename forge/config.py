"""Frozen configs of the talking-head GAN: ``ModelConfig``, ``TrainConfig``, ``FitConfig``.

Built from ``forge/configs/*.yaml`` (+ ``key=value`` overrides) with ``core.common.load_config`` and
saved next to every run. Values marked (paper) follow Zakharov et al. 2019; (ours) are choices where the
paper is silent or where the CPU budget forces a change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
GENERATORS = ("paper", "warp_guided")
FIT_IDENTITY_WEIGHT = 1.0      # FT fitting's face-net loss weights (used when the fit frames' landmarks are known)
FIT_PERCEPTUAL_WEIGHT = 0.2


@dataclass(frozen=True)
class ModelConfig:
    resolution: int = 64            # image side S (paper: 256)
    emb_dim: int = 512              # N, size of e_hat, of V's output and of W's columns (paper: 512)
    base_channels: int = 64         # channels of the first block (paper: min channels 64)
    max_channels: int = 512         # channel cap (paper: 512)
    g_down_blocks: int = 4          # G's residual downsampling blocks (instance norm)
    g_res_blocks: int = 4           # G's AdaIN residual blocks at the bottleneck (ours: paper says "residual blocks")
    attn_down_res: int = 32         # self-attention after the down block reaching this size (paper: 32 at 256 px)
    attn_up_res: int = 64           # self-attention in G's upsampling part at this size (paper: 64 at 256 px)
    spectral_norm: bool = True      # on every conv/linear of E, G, D (paper); exports bake it in
    n_videos: int = 0               # columns of D's W (one per training video); set by training
    embed_resolution: int = 0       # E's input side (0: S); below S the K frames are downsampled for E (ours, CPU)
    generator: str = "paper"        # "paper": G(y, psi) as the paper; "warp_guided": G also gets the warp guide (ours)
    mask_init_logit: float = -4.0   # warp_guided: initial blend-mask logit (sigmoid(-4) = 0.018: starts as the warp)
    guide_sources: int = 1          # warp_guided: fit frames blended into the guide (1: the nearest, as the warp; ours)
    guide_tau: float = 0.5          # warp_guided: blend temperature, mean landmark distance in px at 128 px (ours)

    def __post_init__(self):
        s = self.resolution
        if s < 16 or s & (s - 1):
            raise ValueError(f"resolution must be a power of two >= 16, got {s}")
        if self.g_down_blocks < 1 or s >> self.g_down_blocks < 4:
            raise ValueError(f"g_down_blocks={self.g_down_blocks} too many for {s} px")
        e = self.embed_resolution
        if e and (e < 16 or e & (e - 1) or e > s):
            raise ValueError(f"embed_resolution must be 0 or a power of two in 16..{s}, got {e}")
        if self.guide_sources < 1 or self.guide_tau <= 0:
            raise ValueError(f"guide_sources must be >= 1 and guide_tau > 0, got {self.guide_sources}, {self.guide_tau}")
        if self.generator not in GENERATORS:
            raise ValueError(f"unknown generator {self.generator!r}; choose {', '.join(GENERATORS)}")

    @property
    def n_down(self) -> int:
        """Downsampling blocks of E and V: S -> 4 x 4."""
        return int(math.log2(self.resolution // 4))


@dataclass(frozen=True)
class ContentLossConfig:
    kind: str = "auto"              # "vgg" (VGG19 + VGGFace by path), "offline" (multi-scale L1 + SSIM), "auto"
    vgg19_weights: str | None = None   # torchvision-format VGG19 state dict (caffe-converted weights)
    vggface_weights: str | None = None  # VGGFace (VGG16 layout) state dict, converted from caffe
    vgg19_weight: float = 1.5e-1    # (paper)
    vggface_weight: float = 2.5e-2  # (paper)
    l1_weight: float = 1.0          # offline: multi-scale L1 (ours)
    ssim_weight: float = 1.0        # offline: 1 - SSIM (ours)
    scales: int = 3                 # offline: pyramid levels
    identity_weight: float = 0.0    # face net (faces port): identity (CSIM) loss 1 - cos (ours; 0: off)
    perceptual_weight: float = 0.0  # face net: perceptual loss on its stages (ours, in place of VGGFace; 0: off)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    content: ContentLossConfig = field(default_factory=ContentLossConfig)
    k_shot: int = 8                 # K frames per episode (paper)
    batch_size: int = 8             # episodes per step (paper: 48 over 8 GPUs)
    steps: int = 100_000
    lr_g: float = 5e-5              # E, G, P (paper)
    lr_d: float = 2e-4              # D (paper)
    betas: tuple[float, float] = (0.5, 0.999)  # (ours: the paper says only "Adam")
    d_steps: int = 2                # D updates per G update (paper, after SAGAN)
    lambda_fm: float = 10.0         # (paper)
    lambda_mch: float = 80.0        # (paper)
    lambda_adv: float = 1.0
    holdout: tuple[str, ...] = ("d12", "d18", "hdtf_wda_katiehill")  # identities never trained on
    guide_single_p: float = 0.0     # warp_guided: share of episodes whose guide is warped from ONE random source
                                    # frame (the T = 1 regime: far poses, big warp errors; ours)
    cross_batch: int = 0            # warp_guided: cross-identity episodes per step (another person's motion
                                    # retargeted onto the source; no ground truth; forge.data.cross; ours)
    cross_identity_weight: float = 2.0  # their loss: face-net 1 - cos to the mean of the source frames' descriptors
    cross_anchor_weight: float = 1.0    # + L1 to their own warp guide where it is valid (keeps them the warp's face)
    seed: int = 0
    init_from: str | None = None    # a run's checkpoint.pt to start a NEW run from (weights, optimisers, step;
                                    # e.g. a second phase with other losses); ignored once OUT has a checkpoint
    amp: bool = True                # bf16 autocast on CUDA (ignored on CPU)
    compile: bool = False           # torch.compile E, G, D
    num_threads: int = 0            # torch.set_num_threads (0: leave as is)
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200     # steps
    checkpoint_minutes: float = 5.0  # also save at least this often
    max_nan_skips: int = 20         # consecutive non-finite steps before giving up


@dataclass(frozen=True)
class FitConfig:
    ft_steps: int = 100             # fine-tuning steps (paper: "a few hundred"; ours: CPU budget)
    lr_g: float = 2e-4              # (ours: the shipped cpu64 run's rates; SSIM after 30 FT steps on a
    lr_d: float = 4e-4              #  held-out video 0.47 vs 0.37 at the paper's meta-learning 5e-5 / 2e-4)
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 4
    lambda_fm: float = 10.0
    lambda_adv: float = 1.0
    content: ContentLossConfig = field(default_factory=lambda: ContentLossConfig(identity_weight=FIT_IDENTITY_WEIGHT,
                                                                                 perceptual_weight=FIT_PERCEPTUAL_WEIGHT))


def load_train_config(path=None, overrides: dict | None = None) -> TrainConfig:
    """``TrainConfig`` from a YAML path or a bundled name (``"64"``, ``"128"``, ``"256"``, ``"cpu64"``)."""
    from core.common import load_config

    if path is not None and not Path(path).exists() and (CONFIG_DIR / f"{path}.yaml").exists():
        path = CONFIG_DIR / f"{path}.yaml"
    return load_config(TrainConfig, path, overrides)
