"""Evaluate a trained detector on a corpus split, or on a labelled folder (the cross-generator protocol).

Corpus split: frame- and video-level AUC, AP, EER, accuracy at the threshold calibrated on val, log
loss, ECE; ROC/PR/reliability PNGs in RUN/eval/<name>/.
Labelled folder (a MANIFEST.csv with file,label,generator[,compression]; read in place): video AUC
overall and per generator family with seeded bootstrap 95 % intervals, the average over families,
EER, AP, per compression; RUN/eval/folder_<name>/{metrics.json, scores_videos.csv, roc.png}.

Examples:
  faceforge detect eval --model out/det/effb0 --corpus out/sample_corpus --filter generator=warp
  faceforge detect eval --model out/det/effb0 --folder ../shared/data/external
  faceforge detect eval --folder ../shared/data/external          # the shipped default detector
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="detector run folder (default: the shipped default detector)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--corpus", help="corpus folder (holds manifest.parquet)")
    where.add_argument("--folder", help="labelled folder holding MANIFEST.csv (file,label,generator), read in place")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"], help="corpus split")
    parser.add_argument("--wm-reals", action="store_true",
                        help="corpus: read its reals as their watermarked twins (python -m detect.wm_reals CORPUS "
                             "writes them); every corpus fake carries our watermark, so this removes that cue")
    parser.add_argument("--filter", action="append", default=[], metavar="COL=V[,V]",
                        help="corpus: evaluate on matching items only (reals pass fake-only filters); repeatable")
    parser.add_argument("--name", help="eval folder name (default from split + filters, or the folder's name)")
    parser.add_argument("--out", help="folder: write the outputs here instead of RUN/eval/folder_<name>")
    parser.add_argument("--bootstrap", type=int, default=1000, help="folder: bootstrap resamples (95 %% intervals)")
    parser.add_argument("--seed", type=int, default=0, help="folder: bootstrap seed")
    parser.add_argument("--faces", choices=["detect", "none"], default="detect",
                        help="folder: detect and crop faces (default) or score inputs as face crops")
    parser.add_argument("--max-frames", type=int, default=64, help="folder: frames read per clip")
    parser.add_argument("--threads", type=int, help="torch CPU threads for scoring (default: the run's own setting)")


def _model(args):
    """The run to score: its path (or None, the default), loaded here when --threads overrides its setting."""
    from detect.score import load_run

    return load_run(args.model, threads=args.threads) if args.threads is not None else args.model


def _run_folder(args) -> int:
    import json

    from core.common import FaceforgeError
    from detect.folder import FolderEvalConfig, evaluate_folder

    if args.filter:
        raise FaceforgeError("--filter applies to --corpus; a labelled folder is scored whole")
    if args.bootstrap < 0 or args.max_frames < 1:
        raise FaceforgeError("--bootstrap must be >= 0 and --max-frames >= 1")
    cfg = FolderEvalConfig(n_boot=args.bootstrap, seed=args.seed, faces=args.faces, max_frames=args.max_frames)
    m = evaluate_folder(_model(args), args.folder, cfg, out=args.out, name=args.name)
    v, fam = m["video"], m["family_average_auc"]
    print(json.dumps({"out": m["out"], "video": {k: v[k] for k in ("auc", "auc_ci95", "ap", "eer", "n")},
                      "family_average_auc": fam,
                      "by_generator": {g: {k: c[k] for k in ("auc", "auc_ci95", "n_fake")}
                                       for g, c in m["by_generator"].items()},
                      "skipped": m["n_skipped"]}, indent=2))
    return 0 if m["n_scored"] else 1


def run(args) -> int:
    import json

    if args.folder:
        return _run_folder(args)
    from detect.evaluate import evaluate

    m = evaluate(_model(args), args.corpus, split=args.split, filters=args.filter, name=args.name,
                 wm_reals=args.wm_reals)
    keys = ("auc", "ap", "eer", "accuracy", "log_loss", "ece", "n")
    print(json.dumps({"out": m["out"], "video": {k: m["video"][k] for k in keys},
                      "frame": {k: m["frame"][k] for k in keys}, "skipped_items": len(m["skipped_items"])}, indent=2))
    return 0
