"""What every detector is: fit on corpus items, score the frames of one clip, save/load a run.

Two families share this interface: torch CNNs trained for epochs (``TorchFrameDetector`` in
``cnn.py``) and feature + scikit-learn detectors fitted once (``FeatureDetector`` below).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator

import numpy as np

from detect.config import DetectConfig
from detect.data import Item
from detect.metrics import aggregate, auc, log_loss
from core.common import FaceforgeError, atomic_path, get_logger

log = get_logger("detect.detectors")

EpochCallback = Callable[[dict], None]  # gets one history row per epoch
AUGMENT_FPS = 25.0           # frame rate written when an item records none (rate control only)


class Detector:
    """Base class; subclasses register with ``@register(name)`` and fill in the hooks."""

    name: ClassVar[str] = "?"
    artifact: ClassVar[str] = "model.pt"      # file in RUN/ holding the trained parameters
    needs_landmarks: ClassVar[bool] = False   # uses item landmarks when present

    def __init__(self, cfg: DetectConfig):
        self.cfg = cfg

    # -- hooks
    def fit(self, train: list[Item], val: list[Item], run_dir: Path, on_epoch: EpochCallback | None = None) -> None:
        raise NotImplementedError

    def score_clip(self, frames: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """``frames (N, S, S, 3) uint8`` (+ ``landmarks (N, 68, 2)``) -> P(fake) per frame ``(N,)``."""
        raise NotImplementedError

    def save(self, run_dir: Path) -> Path:
        raise NotImplementedError

    def load(self, run_dir: Path) -> "Detector":
        raise NotImplementedError

    def n_params(self) -> int:
        raise NotImplementedError


def score_items(det: Detector, items: list[Item], how: str = "mean", progress: bool = False):
    """Frame and video scores of decoded items -> ``(frames_df, videos_df)``."""
    import pandas as pd
    from tqdm import tqdm

    frame_rows, video_rows = [], []
    for it in tqdm(items, desc="scoring", unit="item", disable=not progress, leave=False):
        s = det.score_clip(it.frames, it.landmarks)  # (N,)
        for i, v in enumerate(s):
            frame_rows.append({"item_id": it.item_id, "frame": i, "label": it.label, "score": float(v)})
        video_rows.append({"item_id": it.item_id, "label": it.label, "n_frames": len(s), "score": aggregate(s, how)})
    cols_f, cols_v = ["item_id", "frame", "label", "score"], ["item_id", "label", "n_frames", "score"]
    return pd.DataFrame(frame_rows, columns=cols_f), pd.DataFrame(video_rows, columns=cols_v)


def val_summary(det: Detector, val: list[Item], how: str) -> dict:
    """Validation AUC (frame and video) and log loss for model selection."""
    if not val:
        return {"val_auc_video": float("nan"), "val_auc_frame": float("nan"), "val_loss": float("nan")}
    f, v = score_items(det, val, how)
    return {"val_auc_video": auc(v["label"], v["score"]), "val_auc_frame": auc(f["label"], f["score"]),
            "val_loss": log_loss(f["label"], f["score"])}


def selection_key(row: dict) -> tuple:
    """Higher is better: video AUC, then frame AUC, then lower val loss (nan ranks lowest)."""
    def f(x, sign=1.0):
        return sign * x if np.isfinite(x) else -np.inf
    return (f(row["val_auc_video"]), f(row["val_auc_frame"]), f(row["val_loss"], -1.0))


def even_indices(n: int, k: int) -> np.ndarray:
    """``k`` frame indices spread evenly over ``n`` frames (all when n <= k)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """``(N, H, W, 3) uint8`` -> ``(N, size, size, 3) uint8`` (area/bilinear via OpenCV)."""
    import cv2

    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    interp = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def down_up(frames: np.ndarray, factor: float, min_side: int = 1) -> np.ndarray:
    """``(N, H, W, 3) uint8`` downscaled by ``factor`` (area, each side at least ``min_side``) and back to its
    size (bilinear): the detail a face filmed small or re-uploaded at a lower resolution has lost."""
    import cv2

    h, w = frames.shape[1:3]
    small = (max(min_side, int(round(w * factor))), max(min_side, int(round(h * factor))))
    return np.stack([cv2.resize(cv2.resize(f, small, interpolation=cv2.INTER_AREA), (w, h),
                                interpolation=cv2.INTER_LINEAR) for f in frames])


def reencode(frames: np.ndarray, crf: int, fps: float = AUGMENT_FPS) -> np.ndarray:
    """``(N, S, S, 3) uint8`` -> the same frames after an H.264 round trip at ``crf`` (deterministic;
    :func:`core.media.h264_round_trip`)."""
    from core.media import h264_round_trip

    return h264_round_trip(frames, crf, fps)


def _uncompressed(items: Iterable[Item]) -> Iterator[Item]:
    return (it for it in items if str(it.meta.get("compression", "raw")) == "raw")


def reencoded_items(items: Iterable[Item], crf: int) -> Iterator[Item]:
    """The uncompressed items of ``items`` re-encoded at ``crf``, one at a time (labels and landmarks kept)."""
    for it in _uncompressed(items):
        fps = float(it.meta.get("fps") or AUGMENT_FPS)
        yield Item(f"{it.item_id}@crf{crf}", it.label, reencode(it.frames, crf, fps), it.landmarks,
                   {**it.meta, "compression": f"crf{crf}"})


def scaled_items(items: Iterable[Item], factor: float) -> Iterator[Item]:
    """The uncompressed items of ``items`` resampled down by ``factor`` and back up, one at a time (labels
    and landmarks kept; still uncompressed, so a CRF augmentation after this re-encodes them too)."""
    if not 0 < float(factor) < 1:
        raise ValueError(f"augment_scale factors must be in (0, 1), got {factor}")
    for it in _uncompressed(items):
        yield Item(f"{it.item_id}@x{factor}", it.label, down_up(it.frames, factor), it.landmarks,
                   {**it.meta, "augment_scale": float(factor)})


def augmented_items(items: list[Item], extra: dict) -> Iterator[Item]:
    """Training-only copies of the uncompressed items of ``items``, made lazily (a caller that keeps a few
    frames of each never holds them all): with ``extra["augment_scale"]`` (factors in (0, 1)) each one
    resampled down and up by every factor, real and fake alike; then with ``extra["augment_crf"]`` (H.264
    CRFs) the uncompressed items and those resampled copies re-encoded at every CRF. Order: resampled (by
    factor, then item), then per CRF the originals and the resampled copies."""
    factors = tuple(extra.get("augment_scale") or ())
    crfs = tuple(extra.get("augment_crf") or ())

    def scaled() -> Iterator[Item]:
        return (x for fac in factors for x in scaled_items(items, fac))

    yield from scaled()
    for crf in crfs:
        yield from reencoded_items(items, crf)
        yield from reencoded_items(scaled(), crf)


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weights giving both classes equal total weight ``(N,)``."""
    labels = np.asarray(labels)
    w = np.ones(len(labels), dtype=np.float64)
    for c in (0, 1):
        n = int((labels == c).sum())
        if n:
            w[labels == c] = len(labels) / (2.0 * n)
    return w


def check_two_classes(labels: np.ndarray, what: str = "training") -> None:
    labels = np.asarray(labels)
    if labels.size == 0:
        raise FaceforgeError(f"no {what} samples: check the corpus split and --filter options")
    if len(np.unique(labels)) < 2:
        kind = "fake" if labels[0] == 1 else "real"
        raise FaceforgeError(f"{what} data holds only {kind} items: a detector needs real and fake")


# ---------------------------------------------------------------- feature + sklearn detectors
def frame_means(p: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Row scores ``p (K,)`` of rows covering the frames ``members (K, N) bool`` -> per-frame mean ``(N,)``."""
    return (p @ members.astype(np.float64)) / np.maximum(members.sum(0), 1)


class FeatureDetector(Detector):
    """Hand-made features per row (a frame or a clip window) -> a scikit-learn classifier."""

    artifact = "model.joblib"

    def __init__(self, cfg: DetectConfig):
        super().__init__(cfg)
        self.model = None

    def features(self, frames: np.ndarray, landmarks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """-> ``(feats (K, D) float, members (K, N) bool)``: row k describes the frames members[k]."""
        raise NotImplementedError

    def make_classifier(self, n_rows: int):
        raise NotImplementedError

    def _dataset(self, items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for it in items:
            feats, _ = self.features(it.frames, it.landmarks)
            xs.append(feats)
            ys.append(np.full(len(feats), it.label))
        return np.concatenate(xs), np.concatenate(ys)

    def fit_rows(self, x: np.ndarray, y: np.ndarray):
        """Fit the classifier on feature rows ``x (M, D)`` (changed in place: a feature missing in every row is
        set to 0) and labels ``y (M,)``, classes balanced unless ``cfg.balance`` is "none" -> the classifier."""
        check_two_classes(y)
        x[:, np.isnan(x).all(0)] = 0.0  # a feature missing everywhere (no landmarks in the corpus) is constant
        self.model = self.make_classifier(len(y))
        weights = class_weights(y) if self.cfg.balance != "none" else None
        step = self.model.steps[-1][0] if hasattr(self.model, "steps") else None
        kw = {f"{step}__sample_weight": weights} if step else {"sample_weight": weights}
        self.model.fit(x, y, **(kw if weights is not None else {}))
        return self.model

    def fit(self, train, val, run_dir, on_epoch=None):
        import time

        t0 = time.perf_counter()
        x, y = self._dataset(train)  # (M, D), (M,)
        self.fit_rows(x, y)
        p = self.model.predict_proba(x)[:, 1]
        row = {"epoch": 0, "train_loss": log_loss(y, p), "train_rows": int(len(y)),
               "seconds": time.perf_counter() - t0, **val_summary(self, val, self.cfg.aggregate)}
        row["best"] = True
        self.save(run_dir)
        if on_epoch:
            on_epoch(row)

    def score_clip(self, frames, landmarks=None):
        if self.model is None:
            raise FaceforgeError(f"detector {self.name} is not trained")
        feats, members = self.features(frames, landmarks)
        return frame_means(self.model.predict_proba(feats)[:, 1], members)

    def save(self, run_dir):
        import joblib

        path = Path(run_dir) / self.artifact
        with atomic_path(path) as tmp:
            joblib.dump({"detector": self.name, "model": self.model}, tmp)
        return path

    def load(self, run_dir):
        import joblib

        path = Path(run_dir) / self.artifact
        if not path.is_file():
            raise FaceforgeError(f"no trained model in {run_dir} ({self.artifact} missing)")
        blob = joblib.load(path)
        if blob.get("detector") != self.name:
            raise FaceforgeError(f"{path} holds a {blob.get('detector')!r} model, not {self.name!r}")
        self.model = blob["model"]
        return self

    def n_params(self) -> int:
        """Learned scalars of the fitted classifier (coefficients, or tree nodes)."""
        if self.model is None:
            return 0
        est = self.model.steps[-1][1] if hasattr(self.model, "steps") else self.model
        if hasattr(est, "calibrated_classifiers_"):  # CalibratedClassifierCV around an SVM
            est = est.calibrated_classifiers_[0].estimator
        if hasattr(est, "coef_"):
            return int(est.coef_.size + np.size(est.intercept_))
        if hasattr(est, "support_vectors_"):
            return int(est.support_vectors_.size + est.dual_coef_.size)
        if hasattr(est, "_predictors"):  # HistGradientBoosting: nodes of every tree
            return int(sum(len(p.nodes) for preds in est._predictors for p in preds))
        return 0
