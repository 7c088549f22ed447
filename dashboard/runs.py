"""Detector runs for the dashboard: ``DRUN/`` folders (config, metrics, eval/<name>/ scores and
curves), score tables joined with the manifest, cross-generator/compression AUC matrices, the worst
mistakes, and the studies results files (``benchmarks/results/detect_*.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from dashboard.data import display_values, fmt_value
from core.common import FaceforgeError, safe_join

EVAL_IMAGES = ("roc.png", "pr.png", "reliability.png")


@dataclass(frozen=True)
class RunInfo:
    name: str            # path relative to the runs root ("." when the root is the run)
    path: Path
    config: dict
    metrics: dict
    evals: tuple[str, ...]


def _is_run(d: Path) -> bool:
    return (d / "metrics.json").is_file() or (d / "config.yaml").is_file() or (d / "eval").is_dir()


def find_runs(runs_root: str | Path | None, max_depth: int = 2) -> list[RunInfo]:
    """Detector runs under ``runs_root`` (the root itself or sub-folders up to ``max_depth``)."""
    if runs_root is None or not Path(runs_root).is_dir():
        return []
    root = Path(runs_root).resolve()
    found, frontier = [], [(root, 0)]
    while frontier:
        d, depth = frontier.pop(0)
        if _is_run(d):
            found.append(load_run_info(root, d))
            continue
        if depth < max_depth:
            for c in sorted(d.iterdir()):
                real = _resolved_dir(c)
                if real is None or c.name.startswith("."):
                    continue
                if not _under(root, real):                      # a symlink out of the root: not read
                    found.append(RunInfo(name=str(c.relative_to(root)), path=c, config={}, evals=(), metrics={
                        "error": f"links outside the runs root ({real}); not read"}))
                    continue
                frontier.append((c, depth + 1))
    return found


def _inside(root: Path, p: Path) -> bool:
    """True when ``p`` (followed through symlinks) stays under ``root`` (or does not exist)."""
    try:
        real = p.resolve()
    except (OSError, RuntimeError):
        return False
    return _under(root, real)


def _under(root: Path, real: Path) -> bool:
    """True when the resolved path ``real`` is ``root`` or inside it."""
    return real == root or root in real.parents


def _resolved_dir(p: Path) -> Path | None:
    """Where a folder (or a symlink to one) really is; None for files, broken links and loops."""
    try:
        real = p.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_dir() else None


def load_run_info(root: Path, run: Path) -> RunInfo:
    import yaml

    config: dict = {}
    if _inside(root, run / "config.yaml") and (run / "config.yaml").is_file():
        try:
            config = yaml.safe_load((run / "config.yaml").read_text()) or {}
        except yaml.YAMLError as e:
            config = {"error": f"config.yaml unreadable: {str(e).splitlines()[0]}"}
    metrics = _read_json(run / "metrics.json") if _inside(root, run / "metrics.json") else {
        "error": "metrics.json links outside the runs root; not read"}
    evals = ()
    if _inside(root, run / "eval") and (run / "eval").is_dir():
        evals = tuple(sorted(d.name for d in (run / "eval").iterdir() if _resolved_dir(d) and _inside(root, d)))
    name = "." if run == root else str(run.relative_to(root))
    return RunInfo(name=name, path=run, config=config if isinstance(config, dict) else {}, metrics=metrics, evals=evals)


def _read_json(p: Path) -> dict:
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        return {"error": f"{p.name} unreadable: {e}"}
    return data if isinstance(data, dict) else {"value": data}


def run_file(runs_root: str | Path, relpath: str | Path) -> Path | None:
    """A file inside the runs root (never outside), or None when absent."""
    p = safe_join(runs_root, relpath)
    return p if p.is_file() else None


def flatten_metrics(metrics: dict, prefix: str = "") -> dict[str, Any]:
    """``{"auc": .9, "by": {"warp": {"auc": .8}}}`` -> ``{"auc": .9, "by.warp.auc": .8}`` (scalars only)."""
    flat: dict[str, Any] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten_metrics(v, key + "."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            flat[key] = v
    return flat


def metrics_table(runs: Iterable[RunInfo]):
    """One row per (run, eval) with its scalar metrics (val metrics as eval ``val``)."""

    rows = []
    for run in runs:
        evals = [("val", run.metrics)] if run.metrics else []
        evals += [(ev, _read_json(run.path / "eval" / ev / "metrics.json")) for ev in run.evals]
        for ev, m in evals:
            flat = flatten_metrics(m)
            rows.append({"run": run.name, "eval": ev, **{k: v for k, v in flat.items() if k not in ("run", "eval")}})
    return pd.DataFrame(rows)


def eval_breakdowns(run: RunInfo, eval_name: str) -> dict[str, pd.DataFrame]:
    """``metrics.json["by"]`` of an evaluation ({column: {value: {"auc", "n_fake", ...}}}) as one table
    per column: DataFrame[value, auc, n_fake, ...]."""
    by = _read_json(run.path / "eval" / eval_name / "metrics.json").get("by") or {}
    out = {}
    for col, groups in by.items():
        if isinstance(groups, dict) and groups and all(isinstance(g, dict) for g in groups.values()):
            out[col] = pd.DataFrame([{col: k, **v} for k, v in groups.items()])
    return out


# score CSVs: the column names other packages might use for the same thing
_ID_COLS = ("item_id", "video_id", "id", "path", "file")
_FRAME_COLS = ("frame", "frame_index", "index", "t")
_SCORE_COLS = ("score", "p_fake", "prob_fake", "prob", "prediction", "logit")
_LABEL_COLS = ("label", "y_true", "target", "is_fake")


def normalize_scores(df):
    """Score CSV -> columns ``item_id``, (``frame``), ``score`` (higher = more fake), (``y``: 1 fake)."""

    def pick(cands):
        return next((c for c in cands if c in df.columns), None)

    idc, sc = pick(_ID_COLS), pick(_SCORE_COLS)
    if idc is None or sc is None:
        raise FaceforgeError(f"score table needs an id column and a score column, has {list(df.columns)}")
    out = pd.DataFrame({"item_id": df[idc].astype(str), "score": pd.to_numeric(df[sc], errors="coerce")})
    if idc in ("path", "file") and "item_id" not in df.columns:
        out["item_id"] = out["item_id"].map(lambda s: Path(s).stem if "/" in s or "." in s else s)
        out["path"] = df[idc].astype(str)
    fc = pick(_FRAME_COLS)
    if fc is not None:
        out["frame"] = pd.to_numeric(df[fc], errors="coerce")
    lc = pick(_LABEL_COLS)
    if lc is not None:
        lab = df[lc]
        out["y"] = (lab.astype(str).str.lower().isin(["fake", "1", "true", "1.0"])).astype(int)
    return out


def load_scores(run: RunInfo, eval_name: str, kind: str = "videos"):
    """``eval/<name>/scores_<kind>.csv`` normalized, or None when absent."""

    p = run.path / "eval" / eval_name / f"scores_{kind}.csv"
    if not p.is_file():
        return None
    return normalize_scores(pd.read_csv(p))


def item_frame_scores(runs: Iterable[RunInfo], item_id: str, loader=None):
    """Per-frame scores of one item across all runs/evals: DataFrame[frame, score, series].
    ``loader(run, eval_name, kind)`` defaults to :func:`load_scores` (the app passes a cached one)."""
    loader = loader or load_scores
    parts = []
    for run in runs:
        for ev in run.evals:
            s = loader(run, ev, "frames")
            if s is None or "frame" not in s:
                continue
            hit = s[s["item_id"] == str(item_id)]
            if len(hit):
                parts.append(hit.assign(series=f"{run.name}/{ev}")[["frame", "score", "series"]])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["frame", "score", "series"])


def with_truth(scores, manifest):
    """Video scores joined with the manifest (label, generator, compression, ...); ``y`` from labels."""
    cols = ["item_id", "label", "generator", "mode", "T", "compression", "split", "source_identity"]
    merged = scores.drop(columns=[c for c in ("y",) if c in scores]).merge(manifest[cols], on="item_id", how="inner")
    merged["y"] = (merged["label"] == "fake").astype(int)
    return merged


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC, NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y, s = np.asarray(y), np.asarray(s, dtype=float)
    ok = ~np.isnan(s)
    y, s = y[ok], s[ok]
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def cross_matrix(merged, rows: str = "generator", cols: str = "compression"):
    """AUC of each fake ``rows`` value vs the reals, per ``cols`` value: DataFrame (rows x cols).
    Reals are matched on the column value when that column applies to reals (e.g. compression)."""

    reals, fakes = merged[merged["y"] == 0], merged[merged["y"] == 1]
    rvals = sorted(display_values(fakes[rows]).unique())
    cvals = sorted(display_values(merged[cols]).unique())
    table = pd.DataFrame(index=rvals, columns=cvals, dtype=float)
    fr, fc = display_values(fakes[rows]), display_values(fakes[cols])
    rc = display_values(reals[cols])
    for r in rvals:
        for c in cvals:
            f = fakes[(fr == r) & (fc == c)]
            neg = reals[rc == c] if (rc == c).any() else reals
            if len(f) and len(neg):
                table.loc[r, c] = auc(np.r_[np.zeros(len(neg)), np.ones(len(f))], np.r_[neg["score"], f["score"]])
    table.index.name, table.columns.name = rows, cols
    return table


def worst_errors(merged, k: int = 5, threshold: float = 0.5):
    """The ``k`` most confident mistakes: reals with the highest scores (false positives) and fakes
    with the lowest (false negatives), at ``threshold``."""
    fp = merged[(merged["y"] == 0) & (merged["score"] >= threshold)].nlargest(k, "score")
    fn = merged[(merged["y"] == 1) & (merged["score"] < threshold)].nsmallest(k, "score")
    return fp, fn


def study_matrices(results_dir: str | Path | None) -> list[tuple[str, "pd.DataFrame"]]:
    """Heatmap-shaped tables found in ``results_dir/detect_*.json``: every nested dict of the form
    ``{row: {col: number}}`` (e.g. train-generator x test-generator AUC), titled by file and key."""

    out = []
    if results_dir is None or not Path(results_dir).is_dir():
        return out
    for p in sorted(Path(results_dir).glob("detect_*.json")):
        data = _read_json(p)
        for key, table in _matrices_in(data):
            out.append((f"{p.stem}: {key}" if key else p.stem, pd.DataFrame(table).T.astype(float)))
    return out


MATRIX_METRIC = "auc"  # the cell value taken from dict cells ({"auc": .9, "n": 40})


_NO_CELL = object()


def _cell(x: Any) -> Any:
    """A matrix cell's value: a number, or a dict's ``MATRIX_METRIC`` (None there = an empty cell, NaN)."""
    if isinstance(x, dict):
        if MATRIX_METRIC not in x:
            return _NO_CELL
        x = x[MATRIX_METRIC]
        if x is None:
            return float("nan")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    return _NO_CELL


def _matrices_in(node: Any, key: str = "") -> Iterable[tuple[str, dict]]:
    if not isinstance(node, dict) or not node:
        return
    values = list(node.values())
    if len(node) >= 2 and all(isinstance(v, dict) and v for v in values):
        cells = {r: {c: _cell(x) for c, x in v.items()} for r, v in node.items()}
        flat = [x for row in cells.values() for x in row.values()]
        if all(x is not _NO_CELL for x in flat) and any(x == x for x in flat):  # x == x: not NaN
            yield key, cells
            return
    for k, v in node.items():
        yield from _matrices_in(v, f"{key}.{k}" if key else str(k))


def study_curves(results_dir: str | Path | None) -> list[tuple[str, pd.DataFrame]]:
    """Curves in ``results_dir/detect_*.json``: lists of ``{"level": x, "auc": y}`` (robustness studies),
    as DataFrame[level, auc] titled by file and key."""
    out = []
    if results_dir is None or not Path(results_dir).is_dir():
        return out
    for p in sorted(Path(results_dir).glob("detect_*.json")):
        out += [(f"{p.stem}: {k}", df) for k, df in _curves_in(_read_json(p))]
    return out


def _curves_in(node: Any, key: str = "") -> Iterable[tuple[str, pd.DataFrame]]:
    if isinstance(node, list) and len(node) >= 2 and all(isinstance(x, dict) and "level" in x and MATRIX_METRIC in x
                                                          for x in node):
        df = pd.DataFrame({"level": [fmt_value(x["level"]) for x in node],
                           MATRIX_METRIC: [np.nan if x[MATRIX_METRIC] is None else x[MATRIX_METRIC] for x in node]})
        yield key, df
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _curves_in(v, f"{key}.{k}" if key else str(k))
