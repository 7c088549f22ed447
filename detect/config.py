"""The one config of a detector run, saved as ``RUN/config.yaml`` next to its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

BALANCE_MODES = ("sampler", "weights", "none")


@dataclass(frozen=True)
class DetectConfig:
    detector: str = "efficientnet_b0"   # a name from `faceforge detect list`
    image_size: int = 64                # CNN input side (px); crops are resized to it
    epochs: int = 10                    # CNN epochs (classical detectors fit once)
    batch_size: int = 32
    lr: float = 1e-3                    # AdamW learning rate (CNNs)
    weight_decay: float = 1e-4
    patience: int = 3                   # early stopping: epochs without a better val score
    max_frames: int = 32                # frames decoded per corpus item (from its start)
    frames_per_item: int = 8            # frames per item used to train frame detectors (evenly spaced)
    window: int = 16                    # temporal detector: frames per clip window
    balance: str = "sampler"            # class balance: "sampler" | "weights" | "none"
    aggregate: str = "mean"             # video score from frame scores: mean | median | max | top25
    filters: tuple[str, ...] = ()       # manifest filters for training items, e.g. ("generator=warp",)
    weights: str | None = None          # initial CNN weights (a timm/torch state dict) when given
    seed: int = 0
    device: str = "cpu"
    threads: int = 1                    # torch CPU threads (1: no OpenMP thrashing on a shared CPU)
    extra: dict = field(default_factory=dict)  # detector-specific options (e.g. {"C": 1.0})

    def __post_init__(self):
        from core.common import FaceforgeError
        from detect.metrics import AGGREGATES

        if self.balance not in BALANCE_MODES:
            raise FaceforgeError(f"balance must be one of {', '.join(BALANCE_MODES)}, got {self.balance!r}")
        if self.aggregate not in AGGREGATES:
            raise FaceforgeError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        for name in ("image_size", "epochs", "batch_size", "max_frames", "frames_per_item", "window"):
            if int(getattr(self, name)) < 1:
                raise FaceforgeError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 16:
            raise FaceforgeError(f"image_size must be >= 16 px, got {self.image_size}")
