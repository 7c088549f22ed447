"""Train a frame detector on self-blended pseudo-fakes of the real people in a prepared cache
(no fakes needed); people are split by identity (test people are never read; val people select
the best step and calibrate P(fake)). Writes a detector run that `detect score --model` reads.

Example:
  faceforge detect train-sbi --cache out/cache128_all --out runs/sbi_mnv3 --max-minutes 40
  faceforge detect train-sbi --cache C --out R --detector blend_identity --set extra.freeze=true
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", required=True, help="prepared cache of real videos (`faceforge forge prepare`)")
    parser.add_argument("--out", required=True, help="run folder to write (resumed when it exists)")
    parser.add_argument("--detector", help="a frame CNN detector (default blend_cnn: timm backbone + mask head)")
    parser.add_argument("--config", help="YAML SBITrainConfig (CLI options override it)")
    parser.add_argument("--steps", type=int, help="schedule length in batches")
    parser.add_argument("--max-minutes", type=float, help="wall-clock cap of this call")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other SBITrainConfig field, e.g. batch_size=32 or extra.backbone=efficientnet_b0")


def run(args) -> int:
    import json

    from core.common import load_config, parse_overrides
    from detect.sbi_train import SBITrainConfig, train_sbi

    overrides = parse_overrides(args.set)
    for key in ("detector", "steps", "max_minutes"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    cfg = load_config(SBITrainConfig, args.config, overrides)
    m = train_sbi(args.cache, args.out, cfg)
    print(json.dumps({"run": args.out, "detector": cfg.detector, "steps": m["steps"], "best_step": m["best_step"],
                      "val_video_auc": m["val"]["video"]["auc"], "val_frame_auc": m["val"]["frame_auc"],
                      "calibration": m["calibration"]}, indent=2))
    return 0
