"""The cross-generator protocol on a labelled folder: score every clip a ``MANIFEST.csv`` lists with a
trained detector and report video AUC overall and per generator family (bootstrap 95 % intervals),
the average over families, EER, AP, and per compression when the manifest has that column.

A labelled folder (e.g. ``../shared/data/external/``) is read in place, never copied::

    FOLDER/MANIFEST.csv     file,label,generator[,compression,...]   label: real | fake
    FOLDER/<file>           the clips (any video or image the scorer reads)

The decision threshold comes from the run's own validation split: nothing is tuned on the folder.
Outputs, atomically: ``OUT/{metrics.json, scores_videos.csv, scores_frames.csv, roc.png}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_write, get_logger, safe_join, safe_name, write_json_atomic
from detect import metrics as M

log = get_logger("detect.folder")

MANIFEST_FILE = "MANIFEST.csv"
REQUIRED = ("file", "label", "generator")
LABELS = {"real": 0, "fake": 1}
CLUSTER_COLUMNS = ("source_repo", "source_path")   # clips cut from one source file are not independent


@dataclass(frozen=True)
class FolderEvalConfig:
    """How a labelled folder is scored and summarised (saved in ``metrics.json``)."""

    n_boot: int = M.DEFAULT_BOOTSTRAP     # bootstrap resamples for the 95 % intervals
    seed: int = 0                         # bootstrap seed
    faces: str = "detect"                 # "detect": find and crop faces; "none": inputs are face crops
    max_frames: int = 64                  # frames read per clip
    every: int = 1                        # use every k-th frame
    cluster: bool = True                  # resample whole source files (CLUSTER_COLUMNS) when present


def read_manifest(folder: str | Path):
    """``FOLDER/MANIFEST.csv`` validated -> DataFrame with ``path`` (absolute) and ``y`` (0/1)."""
    import pandas as pd

    folder = Path(folder)
    if not folder.is_dir():
        raise FaceforgeError(f"labelled folder not found: {folder}")
    mpath = folder / MANIFEST_FILE
    if not mpath.is_file():
        raise FaceforgeError(f"{folder} has no {MANIFEST_FILE} (columns: {', '.join(REQUIRED)})")
    try:
        df = pd.read_csv(mpath, dtype=str, keep_default_na=False)
    except (ValueError, OSError) as e:
        raise FaceforgeError(f"cannot read {mpath}: {e}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise FaceforgeError(f"{mpath} lacks column(s) {', '.join(missing)}")
    df["label"] = df["label"].str.strip().str.lower()
    bad = sorted(set(df["label"]) - set(LABELS))
    if bad:
        raise FaceforgeError(f"{mpath}: labels must be real|fake, found {', '.join(bad)}")
    if df.empty:
        raise FaceforgeError(f"{mpath} lists no clips")
    if df["file"].duplicated().any():
        raise FaceforgeError(f"{mpath} lists {df['file'][df['file'].duplicated()].iloc[0]} twice")
    df["path"] = [str(safe_join(folder, f)) for f in df["file"]]   # refuses ../ escapes
    df["y"] = df["label"].map(LABELS).astype(int)
    df["generator"] = np.where(df["y"] == 1, df["generator"].str.strip(), "real")
    return df.reset_index(drop=True)


def cluster_columns(videos, use: bool = True) -> list[str]:
    return [c for c in CLUSTER_COLUMNS if c in videos.columns] if use else []


def _clusters(videos, use: bool):
    cols = cluster_columns(videos, use)
    return videos[cols].astype(str).agg("/".join, axis=1).to_numpy() if cols else None


def _cell(y, s, n_boot: int, seed: int, clusters=None) -> dict:
    """One table cell: counts, AUC with its interval, AP, EER."""
    y, s = np.asarray(y, int), np.asarray(s, float)
    e, _ = M.eer(y, s)
    return {"n": int(y.size), "n_fake": int(y.sum()), "n_real": int(y.size - y.sum()),
            "auc": M.auc(y, s), "auc_ci95": _bounds(M.bootstrap_ci(y, s, n_boot=n_boot, seed=seed, clusters=clusters)),
            "ap": M.average_precision(y, s), "eer": e}


def _bounds(ci: dict) -> list[float]:
    return [ci["low"], ci["high"]]


def folder_metrics(videos, threshold: float, n_boot: int = M.DEFAULT_BOOTSTRAP, seed: int = 0,
                   cluster: bool = True) -> dict:
    """The protocol's numbers from scored clips (pure: no model, no files).

    ``videos``: one row per clip with ``y`` (1 fake), ``score`` (P(fake); NaN = not scored),
    ``generator`` and optionally ``compression`` and the cluster columns. Clips without a score are
    counted as skipped, not silently dropped from the counts."""
    ok = videos[np.isfinite(videos["score"].astype(float))]
    y, s, fam = ok["y"].to_numpy(int), ok["score"].to_numpy(float), ok["generator"].to_numpy(object)
    cl = _clusters(ok, cluster)
    overall = _cell(y, s, n_boot, seed, cl)
    overall.update(M.summary(y, s, threshold))      # adds the thresholded metrics, log loss, ECE
    by_gen = {g: _cell(y[m], s[m], n_boot, seed, None if cl is None else cl[m])
              for g, m in M.family_masks(y, fam).items()}
    avg = M.bootstrap_ci(y, s, M.average_family_auc, n_boot=n_boot, seed=seed, clusters=cl, families=fam)
    out = {"video": overall, "by_generator": by_gen,
           "family_average_auc": {"auc": avg["value"], "auc_ci95": _bounds(avg), "n_families": len(by_gen)},
           "n_listed": int(len(videos)), "n_scored": int(len(ok)), "n_skipped": int(len(videos) - len(ok)),
           "bootstrap": {"n_boot": int(n_boot), "seed": int(seed), "level": M.CI_LEVEL,
                         "stratified": True, "clusters": cluster_columns(ok, cluster) or None}}
    if "compression" in ok.columns:
        comp = ok["compression"].astype(str).to_numpy()
        out["by_compression"] = {c: _cell(y[comp == c], s[comp == c], n_boot, seed,
                                          None if cl is None else cl[comp == c]) for c in sorted(set(comp))}
    return out


def evaluate_folder(run, folder: str | Path, cfg: FolderEvalConfig = FolderEvalConfig(), out: str | Path | None = None,
                    name: str | None = None, progress: bool = True, faces_cache: dict | None = None) -> dict:
    """Score every clip of a labelled folder with ``run`` and write the protocol's outputs
    (default ``RUN/eval/folder_<name>/``). Returns ``metrics.json``'s dict plus ``out``.
    ``faces_cache`` (a dict the caller keeps) lets several runs share one face extraction."""
    import dataclasses

    from detect.score import LoadedRun, load_run, score_files

    folder = Path(folder)
    table = read_manifest(folder)            # bad input fails before the model is loaded
    lr = run if isinstance(run, LoadedRun) else load_run(run)
    videos, frames = score_files(lr, table["path"], faces=cfg.faces, max_frames=cfg.max_frames, every=cfg.every,
                                 return_frames=True, progress=progress, faces_cache=faces_cache)  # row per file
    keep = [c for c in table.columns if c not in ("path", "label")]
    videos = videos.rename(columns={"label": "predicted"}).drop(columns=["file"])
    videos = table[["path", "label", *keep]].join(videos)
    videos.loc[videos["status"] != "ok", "score"] = np.nan
    threshold = float(lr.threshold.get("video", 0.5))
    metrics = folder_metrics(videos, threshold, cfg.n_boot, cfg.seed, cfg.cluster)
    metrics.update({"run": str(lr.path), "detector": lr.cfg.detector, "folder": str(folder.resolve()),
                    "threshold_from": "the run's validation split", "config": dataclasses.asdict(cfg),
                    "skipped_items": videos.loc[videos["status"] != "ok", ["file", "status", "error"]]
                    .to_dict("records")})
    out = Path(out) if out else lr.path / "eval" / safe_name(f"folder_{name or folder.name}")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "scores_videos.csv", "w") as f:
        videos.drop(columns=["path"]).to_csv(f, index=False)
    with atomic_write(out / "scores_frames.csv", "w") as f:
        frames.to_csv(f, index=False)
    plot_family_roc(videos, out / "roc.png", title=f"ROC: {lr.cfg.detector} on {folder.name}")
    write_json_atomic(out / "metrics.json", metrics)
    return {**metrics, "out": str(out)}


def plot_family_roc(videos, path: Path, title: str) -> Path:
    """One ROC curve for all clips and one per fake family (against all reals)."""
    ok = videos[np.isfinite(videos["score"].astype(float))]
    curves = {"all": (ok["y"], ok["score"])}
    real = ok[ok["y"] == 0]
    for g, fakes in ok[ok["y"] == 1].groupby("generator"):
        both = np.concatenate([real["y"], fakes["y"]]), np.concatenate([real["score"], fakes["score"]])
        curves[str(g)] = both
    return M.plot_roc(curves, path, title=title)
