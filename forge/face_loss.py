"""Content-loss terms on the face identity network (``faces``, dlib's ResNet ported to torch).

Both images are aligned into 150 px face chips with the differentiable dlib alignment
(``faces.align_faces_torch``, from the target's landmarks: the fake is drawn to them) and compared by
- ``cnt_id``: identity (CSIM) loss, 1 - cos of the 128-d descriptors (``faces.identity_loss``);
- ``cnt_face``: perceptual loss, L1 of channel-normalised activations of the network's stages
  (``faces.perceptual_loss``; the paper's VGGFace term, with the network we have offline).
The network is frozen; gradients reach the fake through the chips.
"""

from __future__ import annotations

import torch
from torch import nn


def to_chips(images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) in [-1, 1] + (B, 68, 2) pixels -> chips (B, 3, 150, 150) in 0..255."""
    from faces import align_faces_torch

    return align_faces_torch((images.float() + 1) * 127.5, landmarks.float())


class FaceNetLoss(nn.Module):
    def __init__(self, identity_weight: float, perceptual_weight: float, device=None):
        super().__init__()
        from faces import IdentityNet

        self.identity_weight, self.perceptual_weight = identity_weight, perceptual_weight
        self._net = [IdentityNet.load(device or "cpu")]  # in a list: a frozen shared net, not a submodule

    @property
    def net(self):
        return self._net[0]

    @property
    def description(self) -> str:
        return (f"face net (faces port of dlib's ResNet, 150 px chips): identity 1 - cos x {self.identity_weight:g} "
                f"+ perceptual x {self.perceptual_weight:g}")

    def forward(self, fake: torch.Tensor, real: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        # fake, real (B, 3, S, S) in [-1, 1], landmarks (B, 68, 2) of the target -> weighted terms
        from faces.losses import descriptor_distance, feature_distance

        if self.net.mean_rgb.device != fake.device:
            from faces import IdentityNet

            self._net = [IdentityNet.load(fake.device)]
        fa = self.net.features(to_chips(fake, landmarks))              # chips (B, 3, 150, 150) -> stages
        with torch.no_grad():
            fb = self.net.features(to_chips(real, landmarks))
        terms = {}
        if self.identity_weight:  # faces.identity_loss, sharing the features with the perceptual term
            d = descriptor_distance(self.net.embed(fa["stage5"]), self.net.embed(fb["stage5"]), "cosine")
            terms["cnt_id"] = self.identity_weight * d.mean()
        if self.perceptual_weight:  # faces.perceptual_loss on the same features (feature_distance)
            terms["cnt_face"] = self.perceptual_weight * feature_distance(fa, fb)
        return terms

    def _descriptors(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        # (N, 3, S, S) in [-1, 1] + (N, 68, 2) -> (N, 128), through 150 px chips
        return self.net.embed(self.net.features(to_chips(images, landmarks))["stage5"])

    def describe(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Descriptors of face images, no gradient: (N, 3, S, S) in [-1, 1] + (N, 68, 2) -> (N, 128)."""
        with torch.no_grad():
            return self._descriptors(images, landmarks)

    def identity_to(self, fake: torch.Tensor, landmarks: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean 1 - cos between the fakes' descriptors and given ones: (B, 3, S, S) + (B, 68, 2), target
        (B, 128) -> scalar (unweighted; gradients reach the fake)."""
        from faces.losses import descriptor_distance

        return descriptor_distance(self._descriptors(fake, landmarks), target, "cosine").mean()
