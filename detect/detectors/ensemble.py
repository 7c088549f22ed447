"""An ensemble of detectors: each member's frame logit, combined by a logistic regression fitted on
validation frames (stacking). Members are whole detectors saved under ``RUN/members/<name>/``
(their own ``config.yaml`` and weights), so any registered detector can be a member.

``extra.members``: detector names trained by ``fit`` (default: ``blend_stats`` and ``frequency``,
both fast); :func:`assemble` builds an ensemble from runs trained elsewhere (e.g. by ``train-sbi``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_write, load_config, save_config
from detect.calibrate import logit
from detect.detectors.base import Detector, val_summary
from detect.registry import get_detector_class, register

DEFAULT_MEMBERS = ("blend_stats", "frequency")
STACK_FILE = "ensemble.json"
STACK_C = 1.0                 # L2 strength of the stacker (few validation frames)


def load_member(folder: Path) -> Detector:
    from detect.config import DetectConfig

    cfg = load_config(DetectConfig, folder / "config.yaml")
    return get_detector_class(cfg.detector)(cfg).load(folder)


def member_logits(members: dict[str, Detector], frames: np.ndarray, landmarks) -> np.ndarray:
    """``(N, S, S, 3)`` -> ``(N, M)`` logits of every member's frame score."""
    return np.stack([logit(m.score_clip(frames, landmarks)) for m in members.values()], 1)


def _stacker(z: np.ndarray, y: np.ndarray, c: float = STACK_C):
    """The stacking logistic regression fitted on ``z (F, M)`` member frame logits and ``y (F,)`` labels."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=1000).fit(z, y)


def cross_fitted(logits: list[np.ndarray], labels, folds, c: float = STACK_C) -> list[np.ndarray]:
    """Stacked frame P(fake) ``(N_i,)`` per item from member logits ``(N_i, M)``, each fold's items scored by
    a stacker fitted on the frames of every other fold's items (validation without in-sample fitting)."""
    labels, folds = np.asarray(labels), np.asarray(folds)
    out: list[np.ndarray | None] = [None] * len(logits)
    for f in np.unique(folds):
        fit = np.flatnonzero(folds != f)
        lr = _stacker(np.concatenate([logits[i] for i in fit]),
                      np.concatenate([np.full(len(logits[i]), labels[i]) for i in fit]), c)
        for i in np.flatnonzero(folds == f):
            out[i] = lr.predict_proba(logits[i])[:, 1]
    return out


def fit_stack(members: dict[str, Detector], val: list) -> dict:
    """Stacker weights from validation items (objects with frames, landmarks, label)."""
    names = list(members)
    y = np.concatenate([np.full(len(it.frames), it.label) for it in val]) if val else np.zeros(0)   # (F,)
    if len(np.unique(y)) < 2:        # no val, or one class: equal weights (members are not run)
        return {"members": names, "weights": [1.0 / len(names)] * len(names), "bias": 0.0, "fitted": False}
    z = np.concatenate([member_logits(members, it.frames, it.landmarks) for it in val])      # (F, M)
    lr = _stacker(z, y)
    return {"members": names, "weights": lr.coef_[0].tolist(), "bias": float(lr.intercept_[0]), "fitted": True}


@register("ensemble")
class Ensemble(Detector):
    """Stacked detectors (extra.members): member frame logits -> logistic regression fitted on val."""

    artifact = STACK_FILE

    def __init__(self, cfg):
        super().__init__(cfg)
        self.members: dict[str, Detector] = {}
        self.stack: dict | None = None

    def fit(self, train, val, run_dir, on_epoch=None):
        import time

        t0 = time.perf_counter()
        run_dir = Path(run_dir)
        for name in self.cfg.extra.get("members", DEFAULT_MEMBERS):
            sub = dataclasses.replace(self.cfg, detector=name, extra=dict(self.cfg.extra.get(name, {})))
            folder = run_dir / "members" / name
            folder.mkdir(parents=True, exist_ok=True)
            save_config(sub, folder / "config.yaml")
            det = get_detector_class(name)(sub)
            det.fit(train, val, folder)
            self.members[name] = det
        self.stack = fit_stack(self.members, val)
        self.save(run_dir)
        row = {"epoch": 0, "train_loss": float("nan"), "train_rows": len(train), "best": True,
               "seconds": time.perf_counter() - t0, **val_summary(self, val, self.cfg.aggregate)}
        if on_epoch:
            on_epoch(row)

    def score_clip(self, frames, landmarks=None):
        if not self.members or self.stack is None:
            raise FaceforgeError("the ensemble is not trained")
        z = member_logits(self.members, frames, landmarks) @ np.asarray(self.stack["weights"]) + self.stack["bias"]
        return 1.0 / (1.0 + np.exp(-z))                                   # (N,)

    def save(self, run_dir):
        path = Path(run_dir) / STACK_FILE
        with atomic_write(path, "w") as f:
            json.dump(self.stack, f, indent=1)
        return path

    def load(self, run_dir):
        path = Path(run_dir) / STACK_FILE
        if not path.is_file():
            raise FaceforgeError(f"no trained ensemble in {run_dir} ({STACK_FILE} missing)")
        self.stack = json.loads(path.read_text())
        self.members = {n: load_member(Path(run_dir) / "members" / n) for n in self.stack["members"]}
        return self

    def n_params(self) -> int:
        return int(sum(m.n_params() for m in self.members.values()) + len(self.members) + 1)


def assemble(member_runs: dict[str, Path], val: list, out: Path, cfg, stack: dict | None = None) -> Ensemble:
    """An ensemble run at ``out`` from finished runs (copied into ``out/members``), stacked on ``val``, or
    with ``stack`` (weights fitted elsewhere, e.g. on out-of-fold scores; its members in ``member_runs``'s order)."""
    out = Path(out)
    if stack is not None and list(stack["members"]) != list(member_runs):      # before anything is written
        raise FaceforgeError(f"stack members {stack['members']} differ from {list(member_runs)}")
    for name, run in member_runs.items():
        dst = out / "members" / name
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(run, dst, ignore=shutil.ignore_patterns("last.pt", "eval", "scores", "oof.npz"))
    ens = Ensemble(cfg)
    ens.members = {n: load_member(out / "members" / n) for n in member_runs}
    ens.stack = fit_stack(ens.members, val) if stack is None else dict(stack)
    ens.save(out)
    return ens
