"""Evaluate a trained run on a corpus split: ``RUN/eval/<name>/{metrics.json, scores_frames.csv,
scores_videos.csv, roc.png, pr.png, reliability.png}``.

Thresholds for accuracy come from the run's validation split (``RUN/metrics.json``), never from
the split being evaluated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from detect.data import apply_filters, load_items, load_manifest, parse_filters, split_rows
from detect.detectors.base import score_items
from detect.metrics import auc, plot_pr, plot_reliability, plot_roc, summary
from detect.score import LoadedRun, load_run
from core.common import FaceforgeError, atomic_write, get_logger, safe_name, write_json_atomic

log = get_logger("detect.evaluate")

BREAKDOWN_COLUMNS = ("generator", "mode", "T", "reenactment", "compression", "watermarked")


def eval_name(split: str, filters: Sequence[str]) -> str:
    return safe_name("_".join([split, *filters]).replace("=", "-").replace(",", "+"))


def breakdown(videos, column: str) -> dict[str, float]:
    """Video AUC of each fake subgroup (by ``column``) against all real videos scored."""
    out = {}
    if column not in videos.columns:
        return out
    real = videos[videos["label"] == 0]
    for value, fakes in videos[videos["label"] == 1].groupby(videos[column].astype(str)):
        both = np.concatenate([real["label"].to_numpy(), fakes["label"].to_numpy()])
        s = np.concatenate([real["score"].to_numpy(), fakes["score"].to_numpy()])
        out[str(value)] = {"auc": auc(both, s), "n_fake": int(len(fakes)), "mean_score": float(fakes["score"].mean())}
    return out


def score_split(lr: LoadedRun, corpus: str | Path, split: str = "test", filters: Sequence[str] = (),
                progress: bool = True, transform=None, wm_reals: bool = False):
    """Score the (filtered) split -> (frames_df, videos_df with manifest columns, load errors).

    ``transform`` optionally maps each item's frames ``(N,S,S,3) -> (N,S,S,3)`` before scoring
    (robustness studies). ``wm_reals``: the reals read as their watermarked twins
    (:func:`detect.wm_reals.swap_reals`; every corpus fake carries our watermark)."""
    df = load_manifest(corpus)
    if wm_reals:
        from detect.wm_reals import swap_reals

        df = swap_reals(corpus, df)
    rows = apply_filters(split_rows(df, split), parse_filters(filters), keep_real=True)
    if rows.empty:
        raise FaceforgeError(f"no {split} items in {corpus} after filters {list(filters) or '(none)'}")
    rep = load_items(corpus, rows, lr.cfg.max_frames, split, progress)
    if transform is not None:
        for it in rep.items:
            it.frames = transform(it.frames)
    frames, videos = score_items(lr.detector, rep.items, lr.cfg.aggregate, progress)
    meta = rows[[c for c in rows.columns if c in ("item_id", "group_id", *BREAKDOWN_COLUMNS)]]
    videos = videos.merge(meta, on="item_id", how="left")
    return frames, videos, rep.errors


def evaluate(run: str | Path | LoadedRun, corpus: str | Path, split: str = "test", filters: Sequence[str] = (),
             name: str | None = None, progress: bool = True, wm_reals: bool = False) -> dict:
    lr = run if isinstance(run, LoadedRun) else load_run(run)
    name = safe_name(name) if name else eval_name(split, filters)
    out = lr.path / "eval" / name
    frames, videos, errors = score_split(lr, corpus, split, filters, progress, wm_reals=wm_reals)
    thr = lr.threshold
    metrics = {
        "run": str(lr.path), "detector": lr.cfg.detector, "corpus": str(Path(corpus).resolve()),
        "split": split, "filters": list(filters), "aggregate": lr.cfg.aggregate, "wm_reals": wm_reals,
        "frame": summary(frames["label"], frames["score"], thr.get("frame", 0.5)),
        "video": summary(videos["label"], videos["score"], thr.get("video", 0.5)),
        "by": {c: breakdown(videos, c) for c in BREAKDOWN_COLUMNS if c in videos.columns},
        "skipped_items": errors,
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "scores_frames.csv", "w") as f:
        frames.to_csv(f, index=False)
    with atomic_write(out / "scores_videos.csv", "w") as f:
        videos.to_csv(f, index=False)
    curves = {"video": (videos["label"], videos["score"]), "frame": (frames["label"], frames["score"])}
    plot_roc(curves, out / "roc.png", title=f"ROC: {lr.cfg.detector} on {name}")
    plot_pr(curves, out / "pr.png")
    plot_reliability(curves, out / "reliability.png")
    write_json_atomic(out / "metrics.json", metrics)
    metrics["out"] = str(out)
    return metrics
