"""Frame-level CNN detectors: timm backbones (from scratch, or from a weights file) and two small
forensic CNNs (a fixed high-pass residual front end, and an 8x8 block-DCT front end).

All share one training loop: AdamW + BCE, class balance by sampler or loss weight, horizontal flip,
validation AUC every epoch, best checkpoint by validation AUC (the last epoch when no validation items are
given), early stopping, and ``RUN/last.pt`` to resume from the last finished epoch. Optional training
augmentation, as the temporal detector's (off by default, so saved runs replay): ``extra.augment_scale``
(factors in (0, 1)) adds every uncompressed training item of either class resampled down and back up, and
``extra.augment_crf`` (H.264 CRFs) adds the uncompressed items and those resampled copies re-encoded at each
CRF (``base.augmented_items``); each added item contributes ``frames_per_item`` frames like any other.
"""

from __future__ import annotations

import time
from itertools import chain
from pathlib import Path
from typing import ClassVar

import numpy as np

from detect.detectors.base import (Detector, augmented_items, check_two_classes, class_weights, even_indices,
                                   selection_key, val_summary)
from detect.registry import register
from core.common import FaceforgeError, atomic_path, get_logger

log = get_logger("detect.cnn")

LAST_CHECKPOINT = "last.pt"
SCORE_BATCH = 64            # frames per forward pass when scoring
TRUNK_WIDTH = 32            # channels of the small forensic CNNs
DCT_BLOCK = 8               # JPEG block size for the DCT front end


class TorchFrameDetector(Detector):
    """Base of the CNNs: subclasses implement ``build() -> nn.Module`` mapping (B,3,H,W) -> (B,1)."""

    artifact = "model.pt"

    def __init__(self, cfg):
        super().__init__(cfg)
        import torch

        torch.set_num_threads(max(1, int(cfg.threads)))
        torch.manual_seed(cfg.seed)
        self.device = torch.device(cfg.device)
        self.net = self.build().to(self.device)
        if cfg.weights:
            self._load_initial_weights(Path(cfg.weights))

    def build(self):
        raise NotImplementedError

    # -- tensors
    def to_tensor(self, frames: np.ndarray):
        """``(B, S, S, 3) uint8`` -> ``(B, 3, H, W)`` float in [-1, 1] at ``cfg.image_size``."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)      # (B, 3, S, S)
        size = self.cfg.image_size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x

    def _load_initial_weights(self, path: Path) -> None:
        import torch

        if not path.is_file():
            raise FaceforgeError(f"weights file not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for a bad file
            raise FaceforgeError(f"cannot load weights {path.name}: {type(e).__name__}") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        own = self.net.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not usable:
            raise FaceforgeError(f"weights {path.name} share no tensor with {self.name}")
        self.net.load_state_dict(usable, strict=False)
        log.info("%s: loaded %d/%d tensors from %s (the rest, e.g. the classifier head, stay fresh)",
                 self.name, len(usable), len(own), path)

    # -- training
    def _training_frames(self, items) -> tuple[np.ndarray, np.ndarray]:
        """``frames_per_item`` frames of every item, then of every augmented copy (``extra.augment_*``; made
        one at a time; indexing copies the kept frames, so the rest are freed) -> ``(M, S, S, 3) uint8``,
        labels ``(M,)``."""
        xs, ys = [], []
        for it in chain(items, augmented_items(items, self.cfg.extra)):
            idx = even_indices(len(it.frames), self.cfg.frames_per_item)
            xs.append(it.frames[idx])
            ys.append(np.full(len(idx), it.label, dtype=np.float32))
        if len(xs) > len(items):
            log.info("%s: %d training items + %d augmented copies", self.name, len(items), len(xs) - len(items))
        return np.concatenate(xs), np.concatenate(ys)  # (M, S, S, 3), (M,)

    def fit(self, train, val, run_dir, on_epoch=None):
        import torch
        from tqdm import tqdm

        cfg = self.cfg
        x, y = self._training_frames(train)
        check_two_classes(y)
        opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        state = self._resume(run_dir, opt)
        if state["finished"]:
            log.info("%s: training already finished in %s", self.name, run_dir)
            self.load(run_dir)
            return
        pos_weight = None
        if cfg.balance == "weights":
            pos_weight = torch.tensor([(y == 0).sum() / max((y == 1).sum(), 1)], device=self.device)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        gen = np.random.default_rng(cfg.seed)
        for epoch in range(state["epoch"], cfg.epochs):
            t0 = time.perf_counter()
            # a fresh generator per epoch keeps a resumed run on the same sample sequence
            gen = np.random.default_rng([cfg.seed, epoch])
            if cfg.balance == "sampler":
                w = class_weights(y)
                order = gen.choice(len(y), size=len(y), replace=True, p=w / w.sum())
            else:
                order = gen.permutation(len(y))
            self.net.train()
            total, count = 0.0, 0
            bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"{self.name} epoch {epoch + 1}/{cfg.epochs}",
                       unit="batch", leave=False, disable=None)  # None: no bar when stderr is not a terminal
            for start in bar:
                idx = order[start:start + cfg.batch_size]
                xb = self.to_tensor(x[idx])                                   # (B, 3, H, W)
                flip = torch.from_numpy(gen.random(len(idx)) < 0.5).to(self.device)
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                yb = torch.from_numpy(y[idx]).to(self.device)[:, None]        # (B, 1)
                loss = loss_fn(self.net(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                count += len(idx)
                bar.set_postfix(loss=f"{total / count:.4f}")
            row = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "train_rows": int(len(y)),
                   "seconds": time.perf_counter() - t0, **val_summary(self, val, cfg.aggregate)}
            # no validation items: every epoch counts as better, so the last one is kept
            better = not val or state["best"] is None or selection_key(row) > tuple(state["best"])
            row["best"] = bool(better)
            if better:
                state["best"], state["bad"] = list(selection_key(row)), 0
                self.save(run_dir)
            else:
                state["bad"] += 1
            state["epoch"] = epoch + 1
            state["finished"] = state["bad"] >= cfg.patience or state["epoch"] >= cfg.epochs
            self._checkpoint(run_dir, opt, state)
            if on_epoch:
                on_epoch(row)
            if state["bad"] >= cfg.patience:
                log.info("%s: early stop after epoch %d (%d epochs without a better val score)",
                         self.name, epoch + 1, state["bad"])
                break
        self.load(run_dir)  # the best epoch

    def _resume(self, run_dir: Path, opt) -> dict:
        import torch

        fresh = {"epoch": 0, "best": None, "bad": 0, "finished": False}
        path = Path(run_dir) / LAST_CHECKPOINT
        if not path.is_file():
            return fresh
        ck = torch.load(path, map_location=self.device, weights_only=True)
        self.net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        log.info("%s: resuming after epoch %d from %s", self.name, ck["state"]["epoch"], path)
        return dict(ck["state"])

    def _checkpoint(self, run_dir: Path, opt, state: dict) -> None:
        import torch

        with atomic_path(Path(run_dir) / LAST_CHECKPOINT) as tmp:
            torch.save({"model": self.net.state_dict(), "optimizer": opt.state_dict(), "state": state}, tmp)

    # -- inference and persistence
    def score_clip(self, frames, landmarks=None):
        import torch

        self.net.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(frames), SCORE_BATCH):
                logits = self.net(self.to_tensor(frames[start:start + SCORE_BATCH]))  # (B, 1)
                out.append(torch.sigmoid(logits)[:, 0].cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def save(self, run_dir):
        import torch

        path = Path(run_dir) / self.artifact
        with atomic_path(path) as tmp:
            torch.save(self.net.state_dict(), tmp)
        return path

    def load(self, run_dir):
        import torch

        path = Path(run_dir) / self.artifact
        if not path.is_file():
            raise FaceforgeError(f"no trained model in {run_dir} ({self.artifact} missing)")
        self.net.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
        self.net.eval()
        return self

    def n_params(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))


# ---------------------------------------------------------------- timm backbones
class TimmDetector(TorchFrameDetector):
    timm_name: ClassVar[str] = ""

    def build(self):
        import timm

        # pretrained=False: no model hub here; pass --weights PATH to start from a checkpoint
        return timm.create_model(self.timm_name, pretrained=False, num_classes=1)


@register("xception")
class Xception(TimmDetector):
    """Xception (timm legacy_xception), the FaceForensics++ baseline; from scratch or --weights."""

    timm_name = "legacy_xception"


@register("efficientnet_b0")
class EfficientNetB0(TimmDetector):
    """EfficientNet-B0 (timm); from scratch or --weights."""

    timm_name = "efficientnet_b0"


@register("efficientnet_b4")
class EfficientNetB4(TimmDetector):
    """EfficientNet-B4 (timm); from scratch or --weights."""

    timm_name = "efficientnet_b4"


@register("resnet18")
class ResNet18(TimmDetector):
    """ResNet-18 (timm); from scratch or --weights."""

    timm_name = "resnet18"


# ---------------------------------------------------------------- small forensic CNNs
def _trunk(in_ch: int, n_down: int):
    """Conv-BN-ReLU stages, each halving the resolution, then global average pool -> (B, 1)."""
    import torch.nn as nn

    layers, ch = [], in_ch
    for i in range(n_down):
        out = TRUNK_WIDTH * (2 ** min(i, 2))
        layers += [nn.Conv2d(ch, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                   nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        ch = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(ch, 1)]
    return nn.Sequential(*layers)


def srm_kernels() -> np.ndarray:
    """Three classic SRM high-pass residual filters (Fridrich & Kodovsky 2012) ``(3, 1, 5, 5)``."""
    k1 = np.zeros((5, 5))
    k1[1:4, 1:4] = [[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]
    k1 /= 4.0
    k2 = np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                   [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]], dtype=np.float64) / 12.0
    k3 = np.zeros((5, 5))
    k3[2, 1:4] = [1, -2, 1]
    k3 /= 2.0
    return np.stack([k1, k2, k3])[:, None].astype(np.float32)


def dct_basis(n: int = DCT_BLOCK) -> np.ndarray:
    """Orthonormal 2-D DCT-II basis as conv filters ``(n*n, 1, n, n)``."""
    k = np.arange(n)
    c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))  # (n, n) [freq, pos]
    c[0] /= np.sqrt(2.0)
    basis = np.einsum("ui,vj->uvij", c, c).reshape(n * n, 1, n, n)
    return basis.astype(np.float32)


def _gray(x):
    """``(B, 3, H, W)`` in [-1, 1] -> ``(B, 1, H, W)`` luma."""
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _n_down(size: int, floor: int) -> int:
    return max(1, min(4, int(np.log2(max(size // floor, 2)))))


@register("residual_cnn")
class ResidualCNN(TorchFrameDetector):
    """Small CNN on fixed SRM high-pass residuals (noise-level traces of resampling and blending)."""

    def build(self):
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, size: int):
                super().__init__()
                self.register_buffer("srm", torch.from_numpy(srm_kernels()))  # (3, 1, 5, 5), fixed
                self.trunk = _trunk(3 + 3, _n_down(size, 4))

            def forward(self, x):                                    # (B, 3, H, W)
                r = nn.functional.conv2d(_gray(x), self.srm, padding=2)  # (B, 3, H, W) residuals
                return self.trunk(torch.cat([r * 4.0, x], dim=1))    # (B, 6, H, W) -> (B, 1)

        return Net(self.cfg.image_size)


@register("dct_cnn")
class DCTCNN(TorchFrameDetector):
    """Small CNN on log-magnitude 8x8 block-DCT coefficients (64 channels at 1/8 resolution)."""

    def build(self):
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, size: int):
                super().__init__()
                self.register_buffer("basis", torch.from_numpy(dct_basis()))  # (64, 1, 8, 8), fixed
                self.trunk = _trunk(DCT_BLOCK * DCT_BLOCK, _n_down(size // DCT_BLOCK, 2))

            def forward(self, x):                                     # (B, 3, H, W)
                c = nn.functional.conv2d(_gray(x), self.basis, stride=DCT_BLOCK)  # (B, 64, H/8, W/8)
                return self.trunk(torch.log1p(c.abs() * 32.0))         # -> (B, 1)

        return Net(self.cfg.image_size)
