"""The temporal detector selected by cross-validation over people, refitted on more people, scored on test once.

    .venv/bin/python -m benchmarks.detect_temporal_cv [--folds 5] [--test]

Why: the in-distribution stacks were selected on 11 val people (46 reals per compression), which flattered
them (val 0.99 -> test 0.93), and their members saw only the 39 train people. Here the selection set is the
train *and* val people (50 people, 220 reals per compression), split into ``--folds`` folds by person
(every dataset's people spread over the folds): each candidate recipe is trained on the other folds' people
and scores the held-out fold's videos (out of fold), and the recipe with the best rule margin
``min(AUC c23 - 0.95, AUC c40 - 0.85)`` is refitted on all 50 people and, with ``--test``, scored once on the
test people (21, 708 fake / 89 real videos per compression; cells as ``benchmarks.detect_default_bench128``).
The candidates (fixed before any fold was scored, :data:`CANDIDATES`): the booster settings and the training
augmentation of :class:`detect.detectors.temporal.TemporalBoosting`; the first is the v3 stack's temporal
member's recipe, the baseline in the same run, with seeded random scores as chance. For the winner, out of
fold: feature groups left out or alone, one row per video instead of per window, and the within-person AUC.

Reals are their watermark-matched twins (:mod:`detect.wm_reals`). Window features of every item and of its
augmented copies (H.264 CRF 30/35/45 and x0.5/x0.7 resampling of the uncompressed items, the copies
:func:`detect.detectors.base.augmented_items` makes) are computed once and cached per person
(``out/temporal_cv/features/``, resumable); a recipe then only refits the booster, on exactly the rows
``TemporalBoosting.fit`` would build. Writes ``benchmarks/results/detect_temporal_cv.json`` and the final run
``out/temporal_cv/final`` (a normal detector run: ``faceforge detect score --model``).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np

from benchmarks.detect_ens_indist2 import TARGETS                 # c23 >= 0.95, c40 >= 0.85 (issue 17)
from core.common import REPO_ROOT, FaceforgeError, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
WORK = REPO_ROOT / "out" / "temporal_cv"
BASE_RUN = REPO_ROOT / "out" / "detect_members3" / "temporal"     # the v3 stack's temporal member (its config)
AUGMENT = {"spatial": True, "augment_crf": [30, 35, 45], "augment_scale": [0.5, 0.7]}   # every copy cached
V3 = {"max_iter": 150, "learning_rate": 0.1, "max_depth": 3, "min_samples_leaf": 20, "l2_regularization": 1.0}
CANDIDATES = {                       # name -> (augmentation copies trained on, booster settings)
    "v3": ("crf+scale", V3),
    "v3_crf_only": ("crf", V3),
    "v3_no_aug": ("none", V3),
    "slow300": ("crf+scale", {**V3, "max_iter": 300, "learning_rate": 0.05}),
    "deep4": ("crf+scale", {**V3, "max_iter": 300, "learning_rate": 0.05, "max_depth": 4}),
    "shallow2": ("crf+scale", {**V3, "max_iter": 400, "learning_rate": 0.05, "max_depth": 2}),
    "leaf200": ("crf+scale", {**V3, "min_samples_leaf": 200}),
    "l2_10": ("crf+scale", {**V3, "max_iter": 300, "l2_regularization": 10.0}),
    # second round, added after the first round's folds were read: motion-compensated residuals
    # (detect.detectors.motion; its first five features) on the first round's best recipe
    "no_aug_motion5": ("none", {**V3, "motion": 5}),
    "no_aug_motion5_slow": ("none", {**V3, "motion": 5, "max_iter": 300, "learning_rate": 0.05}),
    # third round, after the second's: all eight (+ border residual, residual correlation, flow roughness)
    "no_aug_motion": ("none", {**V3, "motion": True}),
}


def dataset_of(person: str) -> str:
    """``grid_bbaf2n`` -> ``grid``; ``d10`` -> ``d``."""
    return person.split("_")[0] if "_" in person else re.sub(r"\d+$", "", person)


def person_folds(people, k: int) -> dict[str, int]:
    """Person -> fold, round-robin over the people sorted by dataset then name (each dataset spread)."""
    order = sorted(people, key=lambda p: (dataset_of(p), p))
    return {p: i % k for i, p in enumerate(order)}


def aug_tag(item_id: str) -> str:
    """An augmented copy's kind from its id suffix: "" (original), "scale", "crf", "scale+crf"."""
    scaled, crf = "@x" in item_id, "@crf" in item_id
    return "+".join(t for t, on in (("scale", scaled), ("crf", crf)) if on)


ALLOWED = {"none": {""}, "crf": {"", "crf"}, "crf+scale": {"", "crf", "scale", "scale+crf"}}


def save_npz(path: Path, **arrays) -> None:
    """``arrays`` to ``path`` (npz), atomically (a killed run leaves no half-written cache)."""
    from core.common import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def person_features(corpus: Path, rows, det, path: Path) -> dict:
    """One person's window features (originals and augmented copies), cached at ``path`` (npz)."""
    from itertools import chain

    from detect.data import load_items
    from detect.detectors.base import augmented_items

    if path.is_file():
        return dict(np.load(path))
    items = load_items(corpus, rows, None, "cv", progress=False).items
    x, item, weight, ids, labels, comps, tags = [], [], [], [], [], [], []
    for it in chain(items, augmented_items(items, det.cfg.extra)):
        feats, members = det.features(it.frames, it.landmarks)                   # (K, D), (K, N)
        share = (members / np.maximum(members.sum(0), 1)).sum(1) / members.shape[1]   # (K,) frame-mean weight
        x.append(feats)
        item += [len(ids)] * len(feats)
        weight.append(share)
        ids.append(it.item_id)
        labels.append(it.label)
        comps.append(str(it.meta.get("compression", "raw")))
        tags.append(aug_tag(it.item_id))
    out = {"x": np.concatenate(x).astype(np.float32), "item": np.array(item), "weight": np.concatenate(weight),
           "item_id": np.array(ids), "label": np.array(labels), "compression": np.array(comps), "tag": np.array(tags)}
    save_npz(path, **out)
    return out


def person_motion(corpus: Path, rows, cfg, path: Path) -> np.ndarray:
    """One person's motion features ``(R0, N_MOTION_FEATURES)`` for the windows of the original items, in the
    row order of :func:`person_features` (originals first), cached at ``path``."""
    import dataclasses

    from detect.data import load_items
    from detect.detectors.motion import N_MOTION_FEATURES
    from detect.registry import get_detector_class

    if path.is_file():
        return np.load(path)["x"]
    det = get_detector_class(cfg.detector)(dataclasses.replace(cfg, extra={"motion": True}))
    items = load_items(corpus, rows, None, "cv motion", progress=False).items
    x = np.concatenate([det.features(it.frames, it.landmarks)[0][:, -N_MOTION_FEATURES:] for it in items])
    save_npz(path, x=x.astype(np.float32))
    return x


class Table:
    """Every selection person's window rows and items (originals and copies), concatenated."""

    def __init__(self, per_person: dict[str, dict], motion: dict[str, np.ndarray] | None = None):
        xs, items, ws, ms = [], [], [], []
        self.item_id, self.label, self.compression, self.tag, self.person = [], [], [], [], []
        for p, d in per_person.items():
            offset = len(self.item_id)
            xs.append(d["x"])
            items.append(d["item"] + offset)
            ws.append(d["weight"])
            self.item_id += list(d["item_id"])
            self.label += list(d["label"])
            self.compression += list(d["compression"])
            self.tag += list(d["tag"])
            self.person += [p] * len(d["item_id"])
            if motion is not None:                       # originals' rows come first; copies get NaN
                m = np.full((len(d["x"]), motion[p].shape[1]), np.nan, np.float32)
                n0 = int(np.isin(d["item"], np.flatnonzero(d["tag"] == "")).sum())
                if len(motion[p]) != n0:
                    raise FaceforgeError(f"{p}: {len(motion[p])} motion rows for {n0} original windows")
                m[:n0] = motion[p]
                ms.append(m)
        self.x, self.item, self.weight = np.concatenate(xs), np.concatenate(items), np.concatenate(ws)   # (R, D), (R,), (R,)
        self.label, self.compression = np.array(self.label, int), np.array(self.compression)
        self.tag, self.person = np.array(self.tag), np.array(self.person)                  # per item
        self.x_motion = np.concatenate(ms) if ms else None                                  # (R, M) or None

    def design(self, rows: np.ndarray, params: dict) -> np.ndarray:
        """The booster's input for ``rows``: the window features, + the motion ones with ``params["motion"]``."""
        from detect.detectors.temporal import motion_count

        k = motion_count(params)
        if not k:
            return self.x[rows]
        if self.x_motion is None:
            raise FaceforgeError("this table has no motion features")
        return np.hstack([self.x[rows], self.x_motion[rows, :k]])

    def rows(self, people, allowed: set[str]) -> np.ndarray:
        """Row mask: rows of ``people``'s items whose copy kind is in ``allowed``."""
        ok = np.isin(self.person, list(people)) & np.isin(self.tag, list(allowed))        # per item
        return ok[self.item]


def booster(x: np.ndarray, y: np.ndarray, params: dict):
    """The temporal detector's classifier with booster settings ``params`` fitted on rows ``x``, ``y``, as its
    own ``fit`` does (:meth:`detect.detectors.base.FeatureDetector.fit_rows`; seed 0, classes balanced)."""
    from detect.config import DetectConfig
    from detect.detectors.temporal import TemporalBoosting

    return TemporalBoosting(DetectConfig(detector="temporal", extra=params)).fit_rows(x, y)


def fit_booster(table: Table, rows: np.ndarray, params: dict):
    return booster(table.design(rows, params), table.label[table.item[rows]], params)


def video_scores(table: Table, model, rows: np.ndarray, params: dict | None = None) -> dict[int, float]:
    """Item index -> video score (frame mean of the windows' P(fake), as ``score_clip`` + mean)."""
    p = model.predict_proba(table.design(rows, params or {}))[:, 1]
    items = table.item[rows]
    s = np.bincount(items, weights=p * table.weight[rows], minlength=len(table.label))
    return {int(i): float(s[i]) for i in np.unique(items)}


def cells(table: Table, scores: dict[int, float]) -> dict:
    from benchmarks.detect_studies import cell

    idx = np.array(sorted(scores))
    s = np.array([scores[i] for i in idx])
    y, comp, people = table.label[idx], table.compression[idx], table.person[idx]
    return {c: cell(y[comp == c], s[comp == c], people[comp == c]) for c in ("raw", "c23", "c40", "jpeg")}


def out_of_fold(table: Table, people, folds: dict[str, int], aug: str, params: dict) -> dict[int, float]:
    """Item index -> video score of every original item, each from the booster fitted without its fold."""
    oof: dict[int, float] = {}
    for f in sorted(set(folds.values())):
        rest = [p for p in people if folds[p] != f]
        model = fit_booster(table, table.rows(rest, ALLOWED[aug]), params)
        oof.update(video_scores(table, model, table.rows([p for p in people if folds[p] == f], {""}), params))
    return oof


def ablations(table: Table, people, folds: dict[str, int], aug: str, params: dict, oof: dict[int, float]) -> dict:
    """Out of fold, for the chosen recipe: groups of the window features left out or alone (its motion
    features, if any, kept in every row); one row per video (the mean and absolute difference of the windows'
    features, motion features not included) instead of per window; and the within-person AUC (each person's
    reals vs that person's fakes, averaged over people), which separates "which person" from "which class".
    ``oof``: the recipe's own out-of-fold video scores."""
    import copy

    from detect.detectors.temporal import N_LANDMARK_FEATURES as L, N_TEXTURE_FEATURES as T
    from detect.metrics import auc

    d = table.x.shape[1]
    groups = {"no_landmarks": range(L, d), "no_spatial": range(L + T), "texture_only": range(L, L + T),
              "spatial_only": range(L + T, d), "landmarks_only": range(L)}
    out = {}
    for name, cols in groups.items():
        sub = copy.copy(table)                           # the same rows and items, fewer window features
        sub.x = table.x[:, list(cols)]
        c = cells(sub, out_of_fold(sub, people, folds, aug, params))
        out[name] = {k: c[k] for k in TARGETS}
    idx = np.array(sorted(oof))
    s, y, comp, person = np.array([oof[i] for i in idx]), table.label[idx], table.compression[idx], table.person[idx]
    within = {}
    for c in TARGETS:
        a = [auc(y[m], s[m]) for p in people for m in [(comp == c) & (person == p)] if len(set(y[m])) == 2]
        within[c] = {"mean": float(np.mean(a)), "min": float(np.min(a)), "n_people": len(a)}
    out["within_person_auc"] = within
    out["per_video"] = {k: v for k, v in per_video_cells(table, people, folds, params).items() if k in TARGETS}
    return out


def per_video_cells(table: Table, people, folds: dict[str, int], params: dict) -> dict:
    """One row per original video: the mean of its windows' features and their mean absolute difference."""
    orig = table.tag[table.item] == ""
    items = np.unique(table.item[orig])
    feats = []
    for i in items:
        w = table.x[table.item == i]                                      # (K, D)
        diff = np.abs(np.diff(w, axis=0)).mean(0) if len(w) > 1 else np.zeros(w.shape[1])
        feats.append(np.concatenate([w.mean(0), diff]))
    v, y, fold = np.stack(feats), table.label[items], np.array([folds[p] for p in table.person[items]])
    scores = {}
    for f in np.unique(fold):
        m = booster(v[fold != f], y[fold != f], params)
        scores.update(zip(items[fold == f].tolist(), m.predict_proba(v[fold == f])[:, 1].tolist()))
    return cells(table, scores)


def margin(c: dict) -> float:
    return min(c[k]["auc"] - t for k, t in TARGETS.items())


def main(argv=None) -> dict:
    import dataclasses

    from core.common import load_config, save_config
    from detect.config import DetectConfig
    from detect.data import load_manifest
    from detect.metrics import calibrate_threshold
    from detect.registry import get_detector_class
    from detect.wm_reals import swap_reals

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(REPO_ROOT / "out" / "bench128v2"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default=str(WORK))
    ap.add_argument("--test", action="store_true", help="score the refitted winner on the test split (once)")
    args = ap.parse_args(argv)
    corpus, work = Path(args.corpus), Path(args.out)
    if not (corpus / "manifest.parquet").is_file():
        raise FaceforgeError(f"no benchmark corpus at {corpus}")
    if args.folds < 2:
        raise FaceforgeError(f"--folds must be >= 2, got {args.folds}")
    t0 = time.perf_counter()
    base = load_config(DetectConfig, BASE_RUN / "config.yaml")
    cfg = dataclasses.replace(base, extra={**base.extra, **AUGMENT})
    det = get_detector_class(cfg.detector)(cfg)

    from detect.data import is_crop

    df = swap_reals(corpus, load_manifest(corpus))
    df = df[df["split"].astype(str).isin(["train", "val"]) & is_crop(df)]
    people = sorted(df["source_identity"].astype(str).unique())
    per_person = {}
    for i, p in enumerate(people):
        t1 = time.perf_counter()
        per_person[p] = person_features(corpus, df[df["source_identity"].astype(str) == p], det,
                                        work / "features" / f"{p}.npz")
        print(f"features {i + 1}/{len(people)} {p}: {len(per_person[p]['x'])} rows ({time.perf_counter() - t1:.0f} s)", flush=True)
    motion = None
    if any(params.get("motion") for _, params in CANDIDATES.values()):
        motion = {}
        for i, p in enumerate(people):
            t1 = time.perf_counter()
            motion[p] = person_motion(corpus, df[df["source_identity"].astype(str) == p], cfg, work / "motion" / f"{p}.npz")
            print(f"motion {i + 1}/{len(people)} {p}: {len(motion[p])} rows ({time.perf_counter() - t1:.0f} s)", flush=True)
    table = Table(per_person, motion)
    folds = person_folds(people, args.folds)

    out: dict = {"corpus": corpus.name, "people": people, "n_people": len(people), "folds": folds,
                 "base_config": dataclasses.asdict(cfg), "targets": TARGETS, "wm_reals": True,
                 "rule": "min(AUC c23 - 0.95, AUC c40 - 0.85) out of fold", "candidates": {}}
    oofs = {}                                                        # name -> out-of-fold video scores
    for name, (aug, params) in CANDIDATES.items():
        oofs[name] = out_of_fold(table, people, folds, aug, params)
        c = cells(table, oofs[name])
        out["candidates"][name] = {"augment": aug, "params": params, "cells": c, "margin": margin(c)}
        print(f"{name}: c23 {c['c23']['auc']:.3f} c40 {c['c40']['auc']:.3f} raw {c['raw']['auc']:.3f} "
              f"jpeg {c['jpeg']['auc']:.3f} margin {margin(c):+.3f}", flush=True)
    rng = np.random.default_rng(0)
    out["chance"] = cells(table, {int(i): float(rng.random()) for i in np.flatnonzero(table.tag == "")})
    best = max(out["candidates"], key=lambda n: out["candidates"][n]["margin"])   # first wins ties (v3 first)
    out["chosen"] = best
    print(f"chosen: {best}", flush=True)

    # refit the winner on all selection people -> a normal temporal run
    aug, params = CANDIDATES[best]
    model = fit_booster(table, table.rows(people, ALLOWED[aug]), params)
    extra = {**base.extra, "spatial": True, **params,
             "augment_crf": AUGMENT["augment_crf"] if "crf" in aug else [],
             "augment_scale": AUGMENT["augment_scale"] if "scale" in aug else []}
    run = work / "final"
    run.mkdir(parents=True, exist_ok=True)
    final_cfg = dataclasses.replace(cfg, extra=extra)
    final = get_detector_class(final_cfg.detector)(final_cfg)
    final.model = model
    final.save(run)
    save_config(final_cfg, run / "config.yaml")
    oof_best = out["candidates"][best]
    vid = oofs[best]                                                 # the winner's -> the video threshold
    idx = np.array(sorted(vid))
    thr = calibrate_threshold(table.label[idx], np.array([vid[i] for i in idx]))
    write_json_atomic(run / "metrics.json", {
        "detector": final_cfg.detector, "corpus": str(corpus.resolve()), "done": True,
        "threshold": {"frame": thr, "video": thr}, "crop_resolution": 128,
        "n_train_items": int((table.tag == "").sum()), "n_train_rows": int(table.rows(people, ALLOWED[aug]).sum()),
        "people": people, "selection": "benchmarks/detect_temporal_cv.py", "cv": oof_best["cells"]})
    (run / "corpus.txt").write_text(str(corpus.resolve()) + "\n")
    out["ablations"] = ablations(table, people, folds, aug, params, vid)
    print("ablations: " + ", ".join(f"{k} {v['c23']['auc']:.3f}/{v['c40']['auc']:.3f}"
                                    for k, v in out["ablations"].items() if k != "within_person_auc"), flush=True)
    out["final_run"] = str(run.relative_to(REPO_ROOT)) if run.is_relative_to(REPO_ROOT) else str(run)
    if args.test:
        from benchmarks.detect_ens_indist2 import record_test

        record_test(out, corpus, str(run))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(RESULTS / "detect_temporal_cv.json", out)
    return out


if __name__ == "__main__":
    from benchmarks import run_script

    run_script(main)
