"""Train a deepfake detector on a corpus (train split; model selection on val).

Writes RUN/{config.yaml, model.pt|model.joblib, history.csv, metrics.json}. Re-run the same command
to resume an interrupted run (CNNs continue from the last finished epoch).

Examples:
  faceforge detect train --corpus out/sample_corpus --detector efficientnet_b0 --out out/det/effb0
  faceforge detect train --corpus C --detector frequency --out R --filter generator=fewshot --filter compression=c23
  faceforge detect train --corpus C --detector temporal --out R --wm-reals --set extra.spatial=true
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="corpus folder (holds manifest.parquet)")
    parser.add_argument("--detector", required=True, help="detector name (see `faceforge detect list`)")
    parser.add_argument("--out", required=True, help="run folder to write (resumed when it exists)")
    parser.add_argument("--config", help="YAML DetectConfig (CLI options override it)")
    parser.add_argument("--filter", action="append", default=[], metavar="COL=V[,V]",
                        help="train only on items matching, e.g. generator=warp, mode=ft, T=8, compression=c23 "
                             "(real items pass filters on fake-only columns); repeatable")
    parser.add_argument("--wm-reals", action="store_true",
                        help="read the corpus's reals as their watermarked twins (python -m detect.wm_reals CORPUS "
                             "writes them): every corpus fake carries our watermark, and a detector should not learn it")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--image-size", type=int, help="CNN input side in px (64-128 on CPU)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    parser.add_argument("--balance", choices=["sampler", "weights", "none"])
    parser.add_argument("--aggregate", choices=["mean", "median", "max", "top25"], help="video score from frames")
    parser.add_argument("--weights", help="initial CNN weights (state dict .pt); default: from scratch")
    parser.add_argument("--device", help="cpu or cuda")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other DetectConfig field, e.g. max_frames=16 or extra.C=0.5")


def run(args) -> int:
    import json

    from detect.config import DetectConfig
    from detect.train import train
    from core.common import load_config, parse_overrides

    overrides = parse_overrides(args.set)
    overrides["detector"] = args.detector
    for key in ("epochs", "image_size", "batch_size", "lr", "patience", "balance", "aggregate", "weights", "device"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    if args.filter:
        overrides["filters"] = list(args.filter)
    cfg = load_config(DetectConfig, args.config, overrides)
    manifest = None
    if args.wm_reals:
        from detect.data import load_manifest
        from detect.wm_reals import swap_reals

        manifest = swap_reals(args.corpus, load_manifest(args.corpus))
    metrics = train(args.corpus, args.out, cfg, manifest=manifest)
    val = metrics["val"]
    print(json.dumps({"run": args.out, "detector": cfg.detector, "val_video_auc": val["video"]["auc"],
                      "val_frame_auc": val["frame"]["auc"], "threshold": metrics["threshold"],
                      "params": metrics["params"], "skipped_items": metrics["n_skipped_items"]}, indent=2))
    return 0
