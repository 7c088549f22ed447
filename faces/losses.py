"""Identity and perceptual losses on the face network (small pure functions).

Chips are float ``(N, 3, 150, 150)`` RGB in 0..255 (see :func:`faces.align.align_faces_torch` for
generator outputs). ``net`` defaults to the shared frozen :class:`faces.identity.IdentityNet` on the
chips' device; gradients flow to the chips.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PERCEPTUAL_LAYERS = ("stem", "stage1", "stage2", "stage3", "stage4")
DLIB_SAME_PERSON = 0.6  # dlib's threshold on the Euclidean distance between descriptors


def descriptor_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Per-pair distance of descriptors ``(N, 128)`` -> ``(N,)``: ``"cosine"`` (1 - cos, 0..2) or
    ``"euclidean"`` (dlib's distance; below 0.6 dlib calls it the same person)."""
    if kind == "cosine":
        return 1 - F.cosine_similarity(a, b, dim=1)
    if kind == "euclidean":
        return torch.linalg.vector_norm(a - b, dim=1)
    raise ValueError(f"kind must be 'cosine' or 'euclidean', got {kind!r}")


def _net(net, chips: torch.Tensor):
    if net is not None:
        return net
    from faces.identity import IdentityNet

    return IdentityNet.load(chips.device)


def identity_loss(a_chips: torch.Tensor, b_chips: torch.Tensor, net=None, kind: str = "cosine") -> torch.Tensor:
    """Mean descriptor distance between paired chips ``(N, 3, 150, 150)`` -> scalar."""
    net = _net(net, a_chips)
    return descriptor_distance(net(a_chips), net(b_chips), kind).mean()


def _unit_channels(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each position's channel vector scaled to unit length: ``(N, C, H, W)``, as LPIPS does."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + eps)


def perceptual_loss(a_chips: torch.Tensor, b_chips: torch.Tensor, net=None,
                    layers: tuple[str, ...] = PERCEPTUAL_LAYERS) -> torch.Tensor:
    """Sum over ``layers`` of the mean L1 between channel-normalised activations -> scalar."""
    net = _net(net, a_chips)
    return feature_distance(net.features(a_chips), net.features(b_chips), layers)


def feature_distance(a_features: dict[str, torch.Tensor], b_features: dict[str, torch.Tensor],
                     layers: tuple[str, ...] = PERCEPTUAL_LAYERS) -> torch.Tensor:
    """The perceptual loss on precomputed ``net.features`` of both sides -> scalar."""
    return sum(F.l1_loss(_unit_channels(a_features[name]), _unit_channels(b_features[name])) for name in layers)
