"""Evaluate a trained detector on a corpus split: frame- and video-level AUC, AP, EER, accuracy at
the threshold calibrated on val, log loss, ECE; ROC/PR/reliability PNGs in RUN/eval/<name>/.

Example: faceforge detect eval --model out/det/effb0 --corpus out/sample_corpus --filter generator=warp
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="detector run folder")
    parser.add_argument("--corpus", required=True, help="corpus folder (holds manifest.parquet)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--filter", action="append", default=[], metavar="COL=V[,V]",
                        help="evaluate on matching items only (reals pass fake-only filters); repeatable")
    parser.add_argument("--name", help="eval folder name (default from split + filters)")


def run(args) -> int:
    import json

    from detect.evaluate import evaluate

    m = evaluate(args.model, args.corpus, split=args.split, filters=args.filter, name=args.name)
    keys = ("auc", "ap", "eer", "accuracy", "log_loss", "ece", "n")
    print(json.dumps({"out": m["out"], "video": {k: m["video"][k] for k in keys},
                      "frame": {k: m["frame"][k] for k in keys}, "skipped_items": len(m["skipped_items"])}, indent=2))
    return 0
