"""Train a detector on a corpus: ``RUN/{config.yaml, model.*, history.csv, metrics.json}``.

Re-running the same command resumes (CNNs from the last finished epoch); a run folder holding a
different config is refused rather than silently mixed.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from detect.config import DetectConfig
from detect.data import apply_filters, load_items, load_manifest, split_rows
from detect.detectors.base import score_items
from detect.metrics import calibrate_threshold, summary
from detect.registry import get_detector_class
from core.common import (FaceforgeError, atomic_write, get_logger, load_config, remove_stale_temps, save_config,
                         write_json_atomic)

log = get_logger("detect.train")

CONFIG_FILE, HISTORY_FILE, METRICS_FILE, ERRORS_FILE = "config.yaml", "history.csv", "metrics.json", "load_errors.json"


def _check_run_dir(out: Path, cfg: DetectConfig, corpus: Path) -> None:
    """Refuse to resume into a run made with another config (or from another corpus)."""
    cfg_path = out / CONFIG_FILE
    if cfg_path.is_file():
        old = load_config(DetectConfig, cfg_path)
        if old != cfg:
            diff = [f.name for f in dataclasses.fields(cfg) if getattr(old, f.name) != getattr(cfg, f.name)]
            raise FaceforgeError(f"{out} holds a run with a different config ({', '.join(diff)}); "
                                 "choose a new --out or delete it")
    meta = out / "corpus.txt"
    if meta.is_file() and meta.read_text().strip() != str(corpus.resolve()):
        raise FaceforgeError(f"{out} was trained on another corpus ({meta.read_text().strip()})")


def _finished_metrics(out: Path) -> dict | None:
    import json

    p = out / METRICS_FILE
    if p.is_file():
        m = json.loads(p.read_text())
        if m.get("done"):
            return m
    return None


def _write_history(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    with atomic_write(path, "w") as f:
        pd.DataFrame(rows).to_csv(f, index=False)


def select_rows(df, cfg: DetectConfig, split: str):
    """The manifest rows of ``split`` matching ``cfg.filters`` (real rows always kept as negatives)."""
    return apply_filters(split_rows(df, split), cfg.filters, keep_real=True)


def train(corpus: str | Path, out: str | Path, cfg: DetectConfig, progress: bool = True, manifest=None) -> dict:
    """Train ``cfg.detector`` on the corpus train split, select on val; returns ``metrics.json``'s dict.
    ``manifest``: the corpus's rows to use instead of its ``manifest.parquet`` (e.g. with the reals
    swapped for their watermarked twins, :func:`detect.wm_reals.swap_reals`); paths stay corpus-relative."""
    corpus, out = Path(corpus), Path(out)
    cls = get_detector_class(cfg.detector)
    df = load_manifest(corpus) if manifest is None else manifest
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out, recursive=True)      # model/checkpoint temps of a killed run
    _check_run_dir(out, cfg, corpus)
    save_config(cfg, out / CONFIG_FILE)
    with atomic_write(out / "corpus.txt", "w") as f:
        f.write(str(corpus.resolve()) + "\n")

    done = _finished_metrics(out)
    if done is not None:
        log.info("%s already holds a finished run; delete it to train again", out)
        return done

    train_rows, val_rows = select_rows(df, cfg, "train"), select_rows(df, cfg, "val")
    if train_rows.empty:
        raise FaceforgeError(f"no training items in {corpus} after filters {list(cfg.filters) or '(none)'}")
    tr = load_items(corpus, train_rows, cfg.max_frames, "train", progress)
    va = load_items(corpus, val_rows, cfg.max_frames, "val", progress)
    write_json_atomic(out / ERRORS_FILE, tr.errors + va.errors)

    history: list[dict] = []
    hist_path = out / HISTORY_FILE
    if hist_path.is_file():
        import pandas as pd

        history = pd.read_csv(hist_path).to_dict("records")

    def on_epoch(row: dict) -> None:
        history.append(row)
        _write_history(hist_path, history)
        log.info("%s epoch %s: train_loss %.4f val_auc_video %.4f val_auc_frame %.4f", cfg.detector,
                 row["epoch"], row["train_loss"], row["val_auc_video"], row["val_auc_frame"])

    det = cls(cfg)
    t0 = time.perf_counter()
    det.fit(tr.items, va.items, out, on_epoch)
    seconds = time.perf_counter() - t0

    # validation scores of the selected model -> calibrated thresholds and val metrics
    frames, videos = score_items(det, va.items, cfg.aggregate)
    thr_f = calibrate_threshold(frames["label"], frames["score"])
    thr_v = calibrate_threshold(videos["label"], videos["score"])
    metrics = {
        "detector": cfg.detector, "corpus": str(corpus.resolve()), "done": True,
        "threshold": {"frame": thr_f, "video": thr_v},
        "val": {"frame": summary(frames["label"], frames["score"], thr_f),
                "video": summary(videos["label"], videos["score"], thr_v)},
        "crop_resolution": int(sorted(it.frames.shape[1] for it in tr.items)[len(tr.items) // 2]),
        "n_train_items": len(tr.items), "n_val_items": len(va.items),
        "n_skipped_items": len(tr.errors) + len(va.errors), "params": det.n_params(),
        "train_seconds_this_call": seconds, "epochs_run": len(history),
    }
    write_json_atomic(out / METRICS_FILE, metrics)
    return metrics
