"""The v3 stack's recipe (temporal + dct_cnn, a logistic stacker on frame logits) under person-level
cross-validation over the train and val people, refitted on all of them, scored on test once.

    .venv/bin/python -m benchmarks.detect_stack_cv [--test]       # after benchmarks.detect_temporal_cv

Same people, folds, watermark-matched reals and rule as :mod:`benchmarks.detect_temporal_cv` (whose results
file names the temporal recipe it chose). Per fold: the dct_cnn member (the v3 member's config: c23 items and
every real, 64 px, 3 epochs, the last kept: no validation people are spent on it) is trained on the other
folds' people and scores every frame of the held-out people's videos; the temporal member likewise, from the
cached window features. Two candidates are compared out of fold: the temporal member alone, and the stack,
its stacker itself cross-fitted fold by fold on the out-of-fold frame logits (as
:func:`detect.detectors.ensemble.cross_fitted`). The better rule margin is refitted on all 50 people (the
stacker on every out-of-fold frame) as ``out/temporal_cv/stack`` (an ``ensemble`` run) or kept as
``out/temporal_cv/final``. Writes ``benchmarks/results/detect_stack_cv.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.detect_temporal_cv import (ALLOWED, CANDIDATES, RESULTS, TARGETS, WORK, Table, fit_booster, margin,
                                           save_npz)
from core.common import REPO_ROOT, FaceforgeError, write_json_atomic

CNN_RUN = REPO_ROOT / "out" / "detect_members" / "dct_cnn"      # the v3 stack's dct_cnn member (its config)
N_FRAMES = 12                                                    # every corpus item's length


def cnn_run(corpus: Path, df, people: list[str], folder: Path):
    """The dct_cnn member trained on ``people``'s rows of ``df`` at ``folder`` (resumable; no val items)."""
    from core.common import load_config, save_config
    from detect.config import DetectConfig
    from detect.data import load_items
    from detect.registry import get_detector_class
    from detect.score import load_run
    from detect.train import select_rows

    if (folder / "metrics.json").is_file():
        return load_run(folder, threads=1).detector
    cfg = load_config(DetectConfig, CNN_RUN / "config.yaml")
    m = df.copy()
    m["split"] = np.where(m["source_identity"].astype(str).isin(people), "train", "test")
    items = load_items(corpus, select_rows(m, cfg, "train"), cfg.max_frames, "cnn", progress=False).items
    folder.mkdir(parents=True, exist_ok=True)
    save_config(cfg, folder / "config.yaml")
    det = get_detector_class(cfg.detector)(cfg)
    t0 = time.perf_counter()
    det.fit(items, [], folder)
    write_json_atomic(folder / "metrics.json", {
        "detector": cfg.detector, "corpus": str(corpus.resolve()), "done": True, "threshold": {"frame": 0.5, "video": 0.5},
        "crop_resolution": 128, "people": people, "n_train_items": len(items),
        "train_seconds_this_call": time.perf_counter() - t0})
    return det


def cnn_frame_scores(corpus: Path, df, det, people: list[str], path: Path) -> dict[str, np.ndarray]:
    """Item id -> ``(N_FRAMES,)`` P(fake) of every frame of ``people``'s videos (cached at ``path``)."""
    from detect.data import load_items

    if path.is_file():
        z = np.load(path)
        return dict(zip(z["item_id"], z["scores"]))
    rows = df[df["source_identity"].astype(str).isin(people)]
    items = load_items(corpus, rows, None, "cnn oof", progress=False).items
    out = {it.item_id: det.score_clip(it.frames) for it in items}
    save_npz(path, item_id=np.array(list(out)), scores=np.stack(list(out.values())))
    return out


def temporal_frame_scores(table: Table, model, people, params: dict, window: int) -> dict[str, np.ndarray]:
    """Item id -> ``(N_FRAMES,)`` frame P(fake) of ``people``'s original items, the windows' P(fake) averaged
    per frame as the detector's ``score_clip`` does."""
    from detect.detectors.base import frame_means
    from detect.detectors.temporal import window_members

    rows = table.rows(people, {""})
    p, items = model.predict_proba(table.design(rows, params))[:, 1], table.item[rows]
    members = window_members(N_FRAMES, window)                                          # (K, N_FRAMES)
    out = {}
    for i in np.unique(items):
        pw = p[items == i]
        if len(pw) != len(members):
            raise FaceforgeError(f"item {table.item_id[i]}: {len(pw)} windows, expected {len(members)}")
        out[table.item_id[i]] = frame_means(pw, members)
    return out


def main(argv=None) -> dict:
    from benchmarks.detect_studies import cell
    from benchmarks.detect_temporal_cv import person_features, person_folds, person_motion
    from core.common import load_config
    from detect.calibrate import logit
    from detect.config import DetectConfig
    from detect.data import is_crop, load_manifest
    from detect.detectors.ensemble import STACK_C, _stacker, cross_fitted
    from detect.registry import get_detector_class
    from detect.wm_reals import swap_reals

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(REPO_ROOT / "out" / "bench128v2"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cnn-only", action="store_true", help="only train and score the dct_cnn folds and the refit")
    ap.add_argument("--test", action="store_true", help="score the chosen model on the test split (once)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    corpus = Path(args.corpus)
    t0 = time.perf_counter()
    df = swap_reals(corpus, load_manifest(corpus))
    df = df[df["split"].astype(str).isin(["train", "val"]) & is_crop(df)]
    if (df["n_frames"].astype(int) != N_FRAMES).any():
        raise FaceforgeError(f"every item must have {N_FRAMES} frames")
    people = sorted(df["source_identity"].astype(str).unique())
    folds, k = person_folds(people, args.folds), args.folds
    if args.cnn_only:
        for f in range(k):
            held = [p for p in people if folds[p] == f]
            c = cnn_run(corpus, df, [p for p in people if folds[p] != f], WORK / f"cnn_fold{f}")
            cnn_frame_scores(corpus, df, c, held, WORK / f"cnn_fold{f}" / "oof.npz")
            print(f"cnn fold {f} done ({time.perf_counter() - t0:.0f} s)", flush=True)
        cnn_run(corpus, df, people, WORK / "cnn_final")
        return {"seconds": round(time.perf_counter() - t0, 1)}
    prev_path = RESULTS / "detect_temporal_cv.json"
    if not prev_path.is_file():
        raise FaceforgeError("run benchmarks.detect_temporal_cv first")
    prev = json.loads(prev_path.read_text())
    if prev["folds"] != folds:
        raise FaceforgeError("the folds differ from benchmarks.detect_temporal_cv's: use the same --folds")
    chosen = prev["chosen"]
    base = load_config(DetectConfig, WORK / "final" / "config.yaml")
    det = get_detector_class(base.detector)(base)
    missing = [p for p in people for d in ("features", "motion") if not (WORK / d / f"{p}.npz").is_file()]
    if missing:
        raise FaceforgeError(f"no cached window features for {len(missing)} people: run benchmarks.detect_temporal_cv first")
    aug, params = CANDIDATES[chosen]
    motion = {p: person_motion(corpus, None, base, WORK / "motion" / f"{p}.npz") for p in people} if params.get("motion") else None
    table = Table({p: person_features(corpus, None, det, WORK / "features" / f"{p}.npz") for p in people}, motion)

    temporal, cnn = {}, {}                                                 # item id -> (N_FRAMES,) OOF
    for f in range(k):
        held = [p for p in people if folds[p] == f]
        rest = [p for p in people if folds[p] != f]
        temporal.update(temporal_frame_scores(table, fit_booster(table, table.rows(rest, ALLOWED[aug]), params), held, params,
                                              base.window))
        c = cnn_run(corpus, df, rest, WORK / f"cnn_fold{f}")
        cnn.update(cnn_frame_scores(corpus, df, c, held, WORK / f"cnn_fold{f}" / "oof.npz"))
        print(f"fold {f}: {len(held)} people scored ({time.perf_counter() - t0:.0f} s)", flush=True)
    idx = np.flatnonzero(table.tag == "")                                   # the original items
    ids = [table.item_id[i] for i in idx]
    y, comp, person = table.label[idx], table.compression[idx], table.person[idx]
    fold = np.array([folds[p] for p in person])
    z = [np.stack([logit(temporal[i]), logit(cnn[i])], -1) for i in ids]                  # (N_FRAMES, 2) each
    stacked = np.array([p.mean() for p in cross_fitted(z, y, fold, STACK_C)])
    videos = {"temporal": np.array([temporal[i].mean() for i in ids]), "dct_cnn": np.array([cnn[i].mean() for i in ids]),
              "stack": stacked}

    def cells_of(s):
        return {c: cell(y[comp == c], s[comp == c], person[comp == c]) for c in ("raw", "c23", "c40", "jpeg")}

    out: dict = {"corpus": corpus.name, "temporal_recipe": chosen, "people": people, "folds": folds, "targets": TARGETS,
                 "rule": prev["rule"], "cnn_config": str(CNN_RUN.relative_to(REPO_ROOT)), "oof": {}}
    for name, s in videos.items():
        cl = cells_of(s)
        out["oof"][name] = {"cells": cl, "margin": margin(cl)}
        print(f"{name}: c23 {cl['c23']['auc']:.3f} c40 {cl['c40']['auc']:.3f} margin {margin(cl):+.3f}", flush=True)
    best = max(("temporal", "stack"), key=lambda n: out["oof"][n]["margin"])
    out["chosen"] = best
    run = WORK / "final"
    if best == "stack":
        from core.common import save_config
        from detect.detectors.ensemble import assemble

        from detect.metrics import calibrate_threshold

        cnn_run(corpus, df, people, WORK / "cnn_final")                # all 50 people (cached after the first call)
        lr = _stacker(np.concatenate(z), np.concatenate([np.full(N_FRAMES, v) for v in y]))
        run = WORK / "stack"
        ens_cfg = dataclasses.replace(base, detector="ensemble", extra={"members": ["temporal", "dct_cnn"]})
        members = {"temporal": WORK / "final", "dct_cnn": WORK / "cnn_final"}
        ens = assemble(members, [], run, ens_cfg, stack={"members": list(members), "weights": lr.coef_[0].tolist(),
                                                         "bias": float(lr.intercept_[0]), "fitted": True})
        save_config(ens_cfg, run / "config.yaml")
        thr = calibrate_threshold(y, stacked)
        write_json_atomic(run / "metrics.json", {"detector": "ensemble", "corpus": str(corpus.resolve()), "done": True,
                                                  "threshold": {"frame": thr, "video": thr}, "crop_resolution": 128,
                                                  "people": people, "selection": "benchmarks/detect_stack_cv.py",
                                                  "stack": ens.stack, "cv": out["oof"]["stack"]["cells"]})
    out["final_run"] = str(run.relative_to(REPO_ROOT))
    if args.test:
        from benchmarks.detect_ens_indist2 import record_test

        record_test(out, corpus, str(run))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(RESULTS / "detect_stack_cv.json", out)
    return out


if __name__ == "__main__":
    from benchmarks import run_script

    run_script(main)
