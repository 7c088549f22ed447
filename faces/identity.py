"""The public face-identity API: the ported network with dlib's weights, and 128-d descriptors.

- ``IdentityNet.load(device="cpu")`` -> the network (converted from dlib's ``.dat`` on first use, then
  read from the cache; one shared frozen instance per device unless ``shared=False``).
  ``net(chips)``: float chips ``(N, 3, 150, 150)``, RGB 0..255 -> ``(N, 128)`` (dlib's descriptor);
  ``net.features(chips)`` -> ``{"stem", "stage1", ..., "stage5"}`` activations.
- ``chip_descriptors(chips)``: uint8 chips ``(N, 150, 150, 3)`` (e.g. ``dlib.get_face_chip``) -> ``(N, 128)``.
- ``face_descriptors(images, landmarks=None)``: uint8 images -> ``(N, 128)``, aligned like dlib
  (detected with dlib when no landmarks are given; a row of NaN where no face is found).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch

from core.common import FaceforgeError, get_logger
from faces.align import CHIP_SIZE, align_face
from faces.resnet import DESCRIPTOR_DIM, DlibFaceResNet
from faces.weights import WeightsInfo, default_dat_path, load_state_dict

DEFAULT_BATCH = 32
log = get_logger("faces.identity")


class IdentityNet(DlibFaceResNet):
    """:class:`faces.resnet.DlibFaceResNet` with dlib's trained weights."""

    _shared: ClassVar[dict[tuple, "IdentityNet"]] = {}
    weights_info: WeightsInfo | None = None

    @classmethod
    def load(cls, device: str | torch.device = "cpu", *, dat: str | os.PathLike | None = None,
             cache_dir: str | os.PathLike | None = None, shared: bool = True) -> "IdentityNet":
        """The network on ``device`` in eval mode. ``shared=True`` returns one cached instance per
        (file, device) with frozen parameters (gradients still flow to the input); ``shared=False``
        returns a fresh trainable copy (e.g. a detector backbone to fine-tune)."""
        device = torch.device(device)
        dat = Path(dat) if dat is not None else default_dat_path()
        key = (str(dat.resolve()), str(cache_dir) if cache_dir else None, str(device))
        if shared and key in cls._shared:
            return cls._shared[key]
        state, info = load_state_dict(dat, cache_dir)
        net = cls()
        net.load_state_dict(state)
        net.weights_info = info
        net.eval().to(device)
        if shared:
            net.requires_grad_(False)
            cls._shared[key] = net
        return net

    @classmethod
    def clear_shared(cls) -> None:
        cls._shared.clear()


def chips_to_tensor(chips: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 chips ``(N, S, S, 3)`` -> float ``(N, 3, S, S)`` in 0..255 (the network's input)."""
    chips = np.asarray(chips)
    if chips.ndim != 4 or chips.shape[-1] != 3:
        raise FaceforgeError(f"chips must be (N, H, W, 3) RGB, got {chips.shape}")
    return torch.from_numpy(np.ascontiguousarray(chips)).to(device).permute(0, 3, 1, 2).float()


@torch.no_grad()
def chip_descriptors(chips: np.ndarray, net: IdentityNet | None = None, batch_size: int = DEFAULT_BATCH,
                     device: str | torch.device = "cpu") -> np.ndarray:
    """Descriptors of aligned uint8 chips ``(N, 150, 150, 3)`` -> float32 ``(N, 128)``."""
    net = net or IdentityNet.load(device)
    device = next(net.parameters()).device
    out = [net(chips_to_tensor(chips[i:i + batch_size], device)).float().cpu()
           for i in range(0, len(chips), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, DESCRIPTOR_DIM), np.float32)


def _landmarks_by_detection(image: np.ndarray, detector) -> np.ndarray | None:
    faces = detector.detect(image)
    return faces[0].landmarks if faces else None


def face_descriptors(images: Sequence[np.ndarray] | np.ndarray, landmarks: Sequence[np.ndarray] | None = None,
                     *, net: IdentityNet | None = None, batch_size: int = DEFAULT_BATCH,
                     device: str | torch.device = "cpu", detector=None) -> np.ndarray:
    """Descriptors ``(N, 128)`` float32 of the (biggest) face in each uint8 image ``(H, W, 3)``.

    ``landmarks``: one ``(68, 2)`` or ``(5, 2)`` array per image in its pixels; when None, faces are
    found with dlib (``faces.landmarks``). Images without a face give a row of NaN."""
    if landmarks is not None and len(landmarks) != len(images):
        raise FaceforgeError(f"{len(images)} images but {len(landmarks)} landmark sets")
    if landmarks is None and detector is None:
        from faces.landmarks import get_detector

        detector = get_detector("dlib")
    chips, rows = [], []
    for i, image in enumerate(images):
        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise FaceforgeError(f"image {i} must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        pts = landmarks[i] if landmarks is not None else _landmarks_by_detection(image, detector)
        if pts is None:
            log.warning("no face found in image %d", i)
            continue
        chips.append(align_face(image, pts, CHIP_SIZE))
        rows.append(i)
    out = np.full((len(images), DESCRIPTOR_DIM), np.nan, dtype=np.float32)
    if chips:
        out[rows] = chip_descriptors(np.stack(chips), net, batch_size, device)
    return out
