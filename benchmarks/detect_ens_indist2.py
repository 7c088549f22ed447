"""An in-distribution stacked detector on the benchmark corpus, selected on its val people and scored on
its test people once: per compression, video AUC with 95 % bootstrap intervals that resample people.

    .venv/bin/python -m benchmarks.detect_ens_indist2 --member temporal=out/detect_members2/temporal_spatial_all \
        --member dct_cnn=... --member default=detect/weights/default [--ensemble out/ens_indist2] [--test]

Validation (the corpus's val people, every compression, all frames of each item, reals as their
watermark-matched twins, :mod:`detect.wm_reals`):
- each member alone (its mean frame score);
- the stack, cross-fitted: the logistic stacker of :mod:`detect.detectors.ensemble` fitted on the other
  val people's frames and scored on the held-out person's, person by person (what selection reads);
- with ``--ensemble`` (a run made by ``benchmarks.detect_ensemble_default --corpus-only``, fitted on all
  val people): its in-sample val cells, for the record.
Members are trained on the train people with the reals swapped the same way
(``detect.train.train(corpus, RUN, cfg, manifest=swap_reals(corpus, load_manifest(corpus)))``, as
``benchmarks.detect_studies.train_run`` does); their configs are recorded in the results.
Test (``--test``, run once for the chosen model): the ensemble on the test split, cells as in
``benchmarks.detect_default_bench128`` (c23 and c40; FF, FT, warp against all reals). Baseline in the same
run: seeded random scores on the same val cells. Writes ``benchmarks/results/<--name>.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, FaceforgeError, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
CACHE = REPO_ROOT / "out" / "detect_bench128v2" / "val_frame_scores"
COMPRESSIONS = ("raw", "c23", "c40", "jpeg")
TEST_COMPRESSIONS = ("c23", "c40")
TARGETS = {"c23": 0.95, "c40": 0.85}


def val_items(corpus: Path):
    """The val split's items (every compression, all frames), reals as their watermarked twins, with
    their compression and person -> (items, compression (V,), person (V,))."""
    from detect.data import load_items, load_manifest, split_rows
    from detect.wm_reals import swap_reals

    rows = split_rows(swap_reals(corpus, load_manifest(corpus)), "val")
    items = load_items(corpus, rows, None, "val", progress=False).items
    meta = rows.set_index("item_id")
    ids = [it.item_id for it in items]
    return items, meta.loc[ids, "compression"].astype(str).to_numpy(), meta.loc[ids, "source_identity"].astype(str).to_numpy()


def frame_scores(run: str, items, cache: Path) -> np.ndarray:
    """``(V, N)`` P(fake) per frame of each item by the run at ``run``; cached per run (keyed by the run's
    metrics.json mtime, so a retrained run is scored again)."""
    from benchmarks.detect_studies import run_key, run_stamp
    from detect.score import load_run

    lr = load_run(run, threads=1)                                 # torch pinned to 1 thread (shared CPU)
    stamp = run_stamp(lr)
    path = cache / f"{run_key(lr)}.npz"
    ids = np.array([it.item_id for it in items])
    if path.is_file():
        z = np.load(path)
        if str(z["stamp"]) == stamp and np.array_equal(z["item_id"], ids):
            return z["scores"]
    s = np.stack([lr.detector.score_clip(it.frames, it.landmarks) for it in items])       # (V, N)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, scores=s, item_id=ids, stamp=np.array(stamp))
    return s


def member_config(run: str) -> dict:
    """A member run's DetectConfig as a dict (how it was trained: filters, window, extra)."""
    import dataclasses

    from core.common import load_config
    from detect.config import DetectConfig

    return dataclasses.asdict(load_config(DetectConfig, Path(run) / "config.yaml"))


def crossfit_stack(z: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float | None = None) -> np.ndarray:
    """Leave-one-group-out stacking: ``z (V, N, M)`` member frame logits, ``y (V,)`` -> ``(V,)`` video
    scores (mean stacked frame probability), each group's from a stacker fitted without it."""
    from detect.detectors.ensemble import STACK_C, cross_fitted

    return np.array([p.mean() for p in cross_fitted(list(z), y, groups, STACK_C if c is None else c)])


def cells_by_compression(y, s, comp, people) -> dict:
    from benchmarks.detect_studies import cell

    return {c: cell(y[comp == c], s[comp == c], people[comp == c]) for c in COMPRESSIONS if (comp == c).any()}


def main(argv=None) -> dict:
    from detect.calibrate import logit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--member", action="append", required=True, metavar="NAME=RUN")
    ap.add_argument("--ensemble", default=None, help="the ensemble run fitted on all val people (for its val record and --test)")
    ap.add_argument("--corpus", default=str(REPO_ROOT / "out" / "bench128v2"))
    ap.add_argument("--test", action="store_true", help="also score the ensemble on the test split (once, for the chosen model)")
    ap.add_argument("--name", default="detect_ens_indist2_bench128", help="results file stem")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    corpus = Path(args.corpus)
    if not (corpus / "manifest.parquet").is_file():
        raise FaceforgeError(f"no benchmark corpus at {corpus}")
    if args.test and not args.ensemble:
        raise FaceforgeError("--test scores an --ensemble run")
    t0 = time.perf_counter()
    members = dict(m.split("=", 1) for m in args.member)
    items, comp, people = val_items(corpus)
    y = np.array([it.label for it in items], dtype=int)
    scores = {name: frame_scores(run, items, CACHE) for name, run in members.items()}          # name -> (V, N)
    z = np.stack([logit(s) for s in scores.values()], -1)                                     # (V, N, M)
    out: dict = {
        "corpus": corpus.name, "members": members, "member_configs": {n: member_config(r) for n, r in members.items()},
        "note": args.note, "wm_reals": True, "targets": TARGETS,
        "val": {"people": sorted(set(people)), "n_people": int(len(set(people))),
                "members": {n: cells_by_compression(y, s.mean(1), comp, people) for n, s in scores.items()},
                "stack_crossfit": cells_by_compression(y, crossfit_stack(z, y, people), comp, people),
                "chance": cells_by_compression(y, np.random.default_rng(0).random(len(y)), comp, people)},
    }
    if args.ensemble:
        from detect.metrics import aggregate
        from detect.score import load_run

        lr = load_run(args.ensemble, threads=1)
        s = np.array([aggregate(lr.detector.score_clip(it.frames, it.landmarks), lr.cfg.aggregate) for it in items])
        out["ensemble"] = str(Path(args.ensemble))
        out["val"]["ensemble_in_sample"] = cells_by_compression(y, s, comp, people)
    for c, cl in out["val"]["stack_crossfit"].items():
        print(f"val {c}: stack (cross-fitted) {cl['auc']:.3f} [{cl['auc_ci95'][0]:.3f}, {cl['auc_ci95'][1]:.3f}] "
              f"n={cl['n_fake']}+{cl['n_real']}; " + ", ".join(f"{n} {v[c]['auc']:.3f}" for n, v in out["val"]["members"].items()),
              flush=True)
    if args.test:
        record_test(out, corpus, args.ensemble)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(RESULTS / f"{args.name}.json", out)
    return out


def record_test(out: dict, corpus: Path, run: str) -> None:
    """``out["test"]``: the run on the test split (scored once, for the chosen model); ``out["target_met"]``:
    per compression, whether its AUC reaches :data:`TARGETS`."""
    out["test"] = test_cells(corpus, run)
    out["target_met"] = {c: bool(out["test"][c]["all"]["auc"] >= t) for c, t in TARGETS.items()}


def test_cells(corpus: Path, run: str) -> dict:
    """The ensemble on the test split at c23 and c40 (watermark-matched reals; shipped-Talker GAN rows only)."""
    from benchmarks.detect_default_bench128 import shipped_rows
    from benchmarks.detect_studies import Bench
    from core.common import sha256_file
    from detect.score import load_run
    from forge.talker import DEFAULT_CHECKPOINT

    lr = load_run(run, threads=1)                                 # torch pinned to 1 thread (shared CPU)
    bench = Bench(corpus, None, print, wm_reals=True)
    bench.df, left_out = shipped_rows(bench.df, sha256_file(DEFAULT_CHECKPOINT))
    out = {"gan_rows_of_other_checkpoints_left_out": left_out}
    for c in TEST_COMPRESSIONS:
        out[c] = bench.score(lr, c)
        a = out[c]["all"]
        print(f"test {c}: {a['auc']:.3f} [{a['auc_ci95'][0]:.3f}, {a['auc_ci95'][1]:.3f}] n={a['n_fake']}+{a['n_real']}", flush=True)
    return out


if __name__ == "__main__":
    from benchmarks import run_script

    run_script(main)
