"""Build a stacked-ensemble candidate for the shipped default detector as a standard detector run: the
members' frame logits stacked by a logistic regression, and the video score calibrated (Platt), both
fitted on validation people only (the benchmark corpus's val split: their real videos and self-blended
twins, and our generators' fakes of them against watermark-matched reals). Which members to stack is
decided beforehand by ``benchmarks.detect_sbi_val`` (cross-fitted, same people); this script only
fits the chosen one.

    .venv/bin/python -m benchmarks.detect_ensemble_default --member default=detect/weights/default \
        --member temporal=out/detect_members/temporal --out out/ens_default_temporal [--corpus out/bench128v2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, save_config, write_json_atomic


def main(argv=None) -> dict:
    from benchmarks.detect_sbi_val import corpus_items, sbi_items
    from detect.calibrate import apply_calibration, fit_platt
    from detect.config import DetectConfig
    from detect.corpus_mix import corpus_people
    from detect.detectors.base import even_indices
    from detect.detectors.ensemble import assemble
    from detect.metrics import auc, summary

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--member", action="append", required=True, metavar="NAME=RUN")
    ap.add_argument("--out", required=True, help="ensemble run folder to write")
    ap.add_argument("--corpus", default=str(REPO_ROOT / "out" / "bench128v2"))
    ap.add_argument("--frames", type=int, default=4, help="frames per validation video used for the fit (corpus "
                    "items have 12; use all of them for a temporal member, whose windows then match scoring's)")
    ap.add_argument("--corpus-only", action="store_true",
                    help="fit on our generators' val fakes only (an in-distribution model, not a default candidate)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    val_people = corpus_people(args.corpus)[0]
    items = [] if args.corpus_only else sbi_items(12, val_people=val_people)
    n_sbi = len(items)                                 # the self-blended set comes first
    items += corpus_items(Path(args.corpus), val_people, wm_reals=True)
    for it in items:                                   # (k, S, S, 3): a few evenly spaced frames per video
        idx = even_indices(len(it.frames), args.frames)
        it.frames = it.frames[idx]
        it.landmarks = None if it.landmarks is None else it.landmarks[idx]
    members = dict(m.split("=", 1) for m in args.member)
    out = Path(args.out)
    cfg = DetectConfig(detector="ensemble", image_size=128, aggregate="mean", extra={"members": list(members)})
    ens = assemble({k: Path(v) for k, v in members.items()}, items, out, cfg)
    save_config(cfg, out / "config.yaml")
    y = np.array([it.label for it in items])
    s = np.array([float(np.mean(ens.score_clip(it.frames, it.landmarks))) for it in items])
    cal = fit_platt(y, s)
    sbi = np.arange(len(items)) < n_sbi                # (V,) True for the self-blended set's videos
    metrics = {
        "detector": "ensemble", "done": True, "members": members, "stack": ens.stack,
        "source": "members trained elsewhere; stacker and calibration fitted on the corpus's val people "
                  + ("(our generators' fakes vs watermark-matched reals)" if args.corpus_only else
                     "(self-blended twins + our generators' fakes vs watermark-matched reals)"),
        "fit_frames_per_video": args.frames,
        "threshold": {"frame": 0.5, "video": 0.5}, "calibration": cal, "crop_resolution": 128,
        "val": {"video": summary(y, apply_calibration(cal, s), 0.5), "video_raw": summary(y, s, 0.5),
                "val_auc_video_sbi": auc(y[sbi], s[sbi]) if sbi.any() else None,
                "val_auc_video_corpus": auc(y[~sbi], s[~sbi]),
                "in_sample": True},
        "val_people": list(val_people), "corpus_only": args.corpus_only, "params": ens.n_params(), "fit_seconds": round(time.perf_counter() - t0, 1),
    }
    write_json_atomic(out / "metrics.json", metrics)
    print({k: metrics[k] for k in ("stack", "calibration")}, metrics["val"]["val_auc_video_sbi"],
          metrics["val"]["val_auc_video_corpus"])
    return metrics


if __name__ == "__main__":
    main()
