"""Can the temporal detector learn from self-blended *clips*? A study (not a shipped model).

The temporal detector (landmark + texture dynamics, gradient boosting) is trained on 12-frame windows of
the benchmark corpus's *train* people only (never its val or test people): each window real, and as a
self-blended clip (:func:`detect.sbi.self_blend_clip`: one blend draw for the whole window, the mask
following the landmarks, ``--flicker`` per-frame wobble on half of them), both through H.264 at a random
CRF of 18 / 23 / 28 / 33. Scored on the corpus's val people: self-blended clips and per-frame self-blends
(``self_blend_batch``, a new draw every frame) of their real windows at CRF 23, and our generators' fakes
against watermark-matched reals (all compressions). Baseline in the same run: the temporal member trained
on our own fakes (``--baseline``). Figures are video AUCs.

    .venv/bin/python -m benchmarks.detect_sbi_clips [--flicker 0 0.05 0.2] [--out benchmarks/results/detect_sbi_clips.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, write_json_atomic

WINDOW = 12             # frames per training / val clip
TRAIN_WINDOWS = 6       # windows per train video (evenly spaced)
VAL_WINDOWS = 3
TRAIN_CRFS = (18, 23, 28, 33)
VAL_CRF = 23


def clip_items(people, windows: int, rng: np.random.Generator, flicker: float, train: bool) -> list:
    """Real windows and their self-blended clips (+ per-frame self-blends for val) as detect Items."""
    from detect.data import Item
    from detect.detectors.base import reencode
    from detect.sbi import self_blend_batch, self_blend_clip

    items = []
    for name, frames, lm in zip(people.names, people.frames, people.landmarks):
        if len(frames) < WINDOW:
            continue
        for k, s in enumerate(np.unique(np.linspace(0, len(frames) - WINDOW, windows).astype(int))):
            f, l = frames[s:s + WINDOW], lm[s:s + WINDOW]
            wobble = flicker * float(rng.random() < 0.5) if train else flicker
            crf = int(rng.choice(TRAIN_CRFS)) if train else VAL_CRF
            fakes = {"sbiclip": self_blend_clip(f, l, rng, flicker=wobble)[0]}
            if not train:
                fakes["sbiframe"] = self_blend_batch(f, l, rng)[0]
            items.append(Item(f"{name}/{k}/real", 0, reencode(f, crf), l, {"person": name}))
            items += [Item(f"{name}/{k}/{kind}", 1, reencode(x, crf), l, {"person": name})
                      for kind, x in fakes.items()]
    return items


def _aucs(det, val: list, corpus_val: list) -> dict:
    from detect.metrics import auc

    def scores(items):
        return np.array([float(np.mean(det.score_clip(it.frames, it.landmarks))) for it in items])

    s, y = scores(val), np.array([it.label for it in val])
    kind = np.array([it.item_id.rsplit("/", 1)[-1] for it in val])
    sc, yc = scores(corpus_val), np.array([it.label for it in corpus_val])
    return {"sbi_clip": round(auc(y[kind != "sbiframe"], s[kind != "sbiframe"]), 4),
            "sbi_per_frame": round(auc(y[kind != "sbiclip"], s[kind != "sbiclip"]), 4),
            "own_generators": round(auc(yc, sc), 4)}


def main(argv=None) -> dict:
    from benchmarks.detect_sbi_val import corpus_items
    from detect.config import DetectConfig
    from detect.corpus_mix import corpus_people
    from detect.registry import get_detector_class
    from detect.sbi_data import load_people
    from detect.score import load_run
    from forge.data.cache import PreparedCache

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(REPO_ROOT / "out" / "bench128v2"))
    ap.add_argument("--cache", default=str(REPO_ROOT / "out" / "cache128_all"))
    ap.add_argument("--baseline", default=str(REPO_ROOT / "out" / "detect_members" / "temporal"))
    ap.add_argument("--flicker", type=float, nargs="+", default=[0.0, 0.05, 0.2])
    ap.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "detect_sbi_clips.json"))
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    cache = PreparedCache(Path(args.cache))
    val_people, test_people = corpus_people(args.corpus)
    train_people = [p for p in cache.identities() if p not in set(val_people) | set(test_people)]
    train_p, val_p = load_people(cache, train_people), load_people(cache, list(val_people))
    corpus_val = corpus_items(Path(args.corpus), val_people, wm_reals=True)
    def rel(path) -> str:
        return str(Path(path).resolve().relative_to(REPO_ROOT)) if Path(path).resolve().is_relative_to(REPO_ROOT) else str(path)

    out = {"corpus": rel(args.corpus), "train_people": len(train_people), "val_people": list(val_people),
           "window": WINDOW, "baseline": {}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        val = clip_items(val_p, VAL_WINDOWS, np.random.default_rng(1), 0.0, False)
        out["n_val"] = {"sbi": len(val), "own_generators": len(corpus_val)}
        if Path(args.baseline, "config.yaml").is_file():
            out["baseline"] = {"run": rel(args.baseline), **_aucs(load_run(args.baseline).detector, val, corpus_val)}
        for flicker in args.flicker:
            train = clip_items(train_p, TRAIN_WINDOWS, np.random.default_rng(0), flicker, True)
            cfg = DetectConfig(detector="temporal", image_size=128, window=8, max_frames=WINDOW, threads=1)
            det = get_detector_class("temporal")(cfg)
            det.fit(train, val[:3], tmp / f"run{flicker}")
            out["runs"][f"flicker={flicker}"] = {"n_train": len(train), **_aucs(det, val, corpus_val)}
            print(flicker, out["runs"][f"flicker={flicker}"], flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(Path(args.out), out)
    return out


if __name__ == "__main__":
    main()
