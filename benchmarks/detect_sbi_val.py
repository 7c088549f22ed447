"""Model selection for the shipped default detector, on validation people only (never the external
folder): every candidate detector trained by ``faceforge detect train-sbi``, and their stacked ensemble.

    .venv/bin/python -m benchmarks.detect_sbi_val --run NAME=RUN [--run ...] [--corpus out/bench128]

Two validation sets, both from the 8 validation people of :mod:`detect.sbi_data` (identity-disjoint
from the training and test people):
- ``sbi``: ``--frames`` real frames per val video against the same frames self-blended (2 draws);
- ``own_generator``: when a benchmark corpus is given, its items whose source person is a val person
  (our Talker and warp fakes, every compression) against its real items of val people;
- ``cross_frame`` (``--cross-frame``, a diagnostic outside the selection rule): the same real frames
  against cross-frame blends (:mod:`detect.cross_blend`, partners from the same video).
The ensemble (logistic stacking of member frame logits) is cross-fitted: one stacker over all the
sets at once (as a shipped ensemble has one), fitted on half of the val people and scored on the
other half, and vice versa, the halves split by identity in every set. (Until 2026-12-01 each set had its
own stacker, which flattered members that rank one set inverted; ``detect_val_bench128v2.json`` was re-run
with one stacker: default + temporal 0.905 -> 0.602.) Baseline in the same run: each member alone. Every
AUC is also given per video aggregate (mean, median, max, top 25 %: ``selection_by_aggregate``). ``selection`` is the rule: the mean of the ``sbi`` and ``own_generator`` video AUCs.
Writes ``benchmarks/results/detect_sbi_val.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
CACHE = REPO_ROOT / "out" / "cache128_all"


def sbi_items(frames_per_video: int, draws: int = 2, val_people=None):
    """Real val frames and their SBI twins as detect Items (meta: person, the identity, as corpus items)."""
    from detect.data import Item
    from detect.detectors.base import even_indices
    from detect.sbi import self_blend_batch
    from detect.sbi_data import VAL_PEOPLE, load_people
    from forge.data.cache import PreparedCache

    people = load_people(PreparedCache(CACHE), list(val_people or VAL_PEOPLE))
    rng = np.random.default_rng(1234)
    items = []
    for name, person, frames, lm in zip(people.names, people.persons, people.frames, people.landmarks):
        idx = even_indices(len(frames), frames_per_video)
        items.append(Item(f"{name}/real", 0, frames[idx], lm[idx], {"person": person}))
        for d in range(draws):
            fake, _ = self_blend_batch(frames[idx], lm[idx], rng)
            items.append(Item(f"{name}/sbi{d}", 1, fake, lm[idx], {"person": person}))
    return items


def cross_frame_items(frames_per_video: int, val_people=None):
    """Real val frames and their cross-frame blends (one draw) as detect Items (meta: person)."""
    from detect.cross_blend import cross_blend_frames
    from detect.data import Item
    from detect.detectors.base import even_indices
    from detect.sbi_data import VAL_PEOPLE, load_people
    from forge.data.cache import PreparedCache

    people = load_people(PreparedCache(CACHE), list(val_people or VAL_PEOPLE))
    rng = np.random.default_rng(4321)
    items = []
    for name, person, frames, lm in zip(people.names, people.persons, people.frames, people.landmarks):
        idx = even_indices(len(frames), frames_per_video)
        fake, _ = cross_blend_frames(frames, lm, idx, rng)
        items += [Item(f"{name}/real", 0, frames[idx], lm[idx], {"person": person}),
                  Item(f"{name}/xframe", 1, fake, lm[idx], {"person": person})]
    return items


def corpus_items(corpus: Path, val_people=None, wm_reals: bool = False):
    """Benchmark-corpus items of the val people (any split label of that corpus; all compressions);
    reals as their watermarked twins with ``wm_reals`` (:mod:`detect.wm_reals`)."""
    from detect.data import is_crop, load_items, load_manifest
    from detect.sbi_data import VAL_PEOPLE

    df = load_manifest(corpus)
    rows = df[df["source_identity"].isin(list(val_people or VAL_PEOPLE)) & is_crop(df)]
    if wm_reals:
        from detect.wm_reals import swap_reals

        rows = swap_reals(corpus, rows)
    rep = load_items(corpus, rows, None, "val people", progress=False)
    for it in rep.items:
        it.meta["person"] = str(it.meta.get("source_identity"))
    return rep.items


def frame_scores(det, items) -> list[np.ndarray]:
    return [det.score_clip(it.frames, it.landmarks) for it in items]


def metrics_of(items, scores) -> dict:
    """Video AUC (mean of the frame scores, as shipped) and frame AUC; ``video_auc_by_aggregate``: the video
    AUC under each of :data:`detect.metrics.AGGREGATES` (a diagnostic for choosing a run's ``aggregate``)."""
    from detect.metrics import AGGREGATES, aggregate, auc

    y = [it.label for it in items]
    fy = np.concatenate([np.full(len(s), it.label) for it, s in zip(items, scores)])
    return {"video_auc": auc(y, [float(np.mean(s)) for s in scores]), "frame_auc": auc(fy, np.concatenate(scores)),
            "video_auc_by_aggregate": {a: auc(y, [aggregate(s, a) for s in scores]) for a in AGGREGATES},
            "n_fake": int(sum(y)), "n_real": int(len(y) - sum(y))}


def cross_fitted_stack(items, member_scores: dict[str, list[np.ndarray]]) -> list[np.ndarray]:
    """Ensemble frame scores, the stacker fitted on the other half of the people each time."""
    from detect.calibrate import logit
    from detect.detectors.ensemble import cross_fitted

    people = sorted({it.meta["person"] for it in items})
    half = set(people[::2])
    fold = np.array([it.meta["person"] in half for it in items])
    names = list(member_scores)
    z = [np.stack([logit(member_scores[n][i]) for n in names], 1) for i in range(len(items))]   # (N_i, M)
    return cross_fitted(z, [it.label for it in items], fold)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, metavar="NAME=RUN")
    ap.add_argument("--corpus", help="benchmark corpus for the own-generator val set")
    ap.add_argument("--frames", type=int, default=24, help="frames per val video (sbi set)")
    ap.add_argument("--ensemble", action="append", default=[], metavar="A+B",
                    help="member names to stack, e.g. cnn+stats; repeatable")
    ap.add_argument("--cross-frame", action="store_true", help="add the cross-frame blend set (diagnostic)")
    ap.add_argument("--people", choices=("sbi", "corpus"), default="sbi",
                    help="val people: the SBI trainer's 8 (sbi) or the corpus's own val split (corpus)")
    ap.add_argument("--wm-reals", action="store_true", help="own_generator reals as watermarked twins (detect.wm_reals)")
    ap.add_argument("--out", default=str(RESULTS / "detect_sbi_val.json"), help="result file")
    args = ap.parse_args(argv)
    val_people = None
    if args.people == "corpus":
        from detect.corpus_mix import corpus_people

        val_people = corpus_people(args.corpus)[0]

    import torch

    from detect.score import load_run

    torch.set_num_threads(1)
    sets = {"sbi": sbi_items(args.frames, val_people=val_people)}
    if args.corpus and Path(args.corpus, "manifest.parquet").is_file():
        sets["own_generator"] = corpus_items(Path(args.corpus), val_people, args.wm_reals)
    if args.cross_frame:
        sets["cross_frame"] = cross_frame_items(args.frames, val_people)
    runs = dict(r.split("=", 1) for r in args.run)
    scores: dict[str, dict[str, list]] = {k: {} for k in sets}
    out = {"val_people": sorted({it.meta["person"] for it in sets["sbi"]}), "people": args.people,
           "wm_reals": args.wm_reals, "sets": {}, "runs": runs}
    for name, path in runs.items():
        lr = load_run(path)
        for k, items in sets.items():
            scores[k][name] = frame_scores(lr.detector, items)
    # one stacker per ensemble over every set at once (cross-fitted by person), as a shipped model has one
    union = [it for k in sets for it in sets[k]]
    stacked = {}
    for combo in args.ensemble:
        members = combo.split("+")
        z = cross_fitted_stack(union, {m: [s for k in sets for s in scores[k][m]] for m in members})
        stacked[combo], i = {}, 0
        for k, items in sets.items():
            stacked[combo][k], i = z[i:i + len(items)], i + len(items)
    for k, items in sets.items():
        res = {name: metrics_of(items, s) for name, s in scores[k].items()}
        for combo in args.ensemble:
            res[f"ensemble({combo})"] = metrics_of(items, stacked[combo][k])
        out["sets"][k] = res
        for name, m in res.items():
            print(f"{k:<14} {name:<28} video AUC {m['video_auc']:.3f}  frame AUC {m['frame_auc']:.3f}  "
                  f"({m['n_fake']} fake / {m['n_real']} real videos)")
    rule = [k for k in ("sbi", "own_generator") if k in out["sets"]]
    out["selection"] = {name: float(np.mean([out["sets"][k][name]["video_auc"] for k in rule]))
                        for name in out["sets"]["sbi"]}
    print("selection (mean of " + " and ".join(rule) + " video AUCs): "
          + ", ".join(f"{n} {v:.3f}" for n, v in out["selection"].items()))
    out["selection_by_aggregate"] = {
        name: {a: float(np.mean([out["sets"][k][name]["video_auc_by_aggregate"][a] for k in rule]))
               for a in out["sets"]["sbi"][name]["video_auc_by_aggregate"]} for name in out["sets"]["sbi"]}
    write_json_atomic(args.out, out)
    return out


if __name__ == "__main__":
    main()
