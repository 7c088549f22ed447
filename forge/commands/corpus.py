"""Render a labelled benchmark corpus of real and fake talking heads.

Real clips are cut from the spec's source videos; fakes come from the few-shot GAN (FF/FT, T shots,
self/cross reenactment, with/without retargeting) and the warp baseline. Every fake is watermarked
and C2PA-signed before its c23/c40/jpeg variants are derived (each signed as a transcode).

  faceforge forge corpus --out out/sample_corpus                  # the default spec (embedded sample)
  faceforge forge corpus --spec corpus.yaml --out CORPUS seed=1   # a spec file + overrides
  faceforge forge corpus --out CORPUS --shard 0/4                 # one of 4 shards
  torchrun --nproc-per-node 4 -m forge.cli forge corpus --out CORPUS device=cuda   # a GPU per rank, then --merge
  faceforge forge corpus --out CORPUS --split test                # the test split first (then val, train)
  faceforge forge corpus --out CORPUS --merge                     # manifest from all shards' parts

Re-running the same command resumes: only missing items are rendered.
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="corpus spec YAML (default: the corpus's spec.yaml, else the "
                                       "embedded sample spec forge/corpus/default.yaml)")
    parser.add_argument("--out", required=True, help="corpus folder (created; re-run to resume)")
    parser.add_argument("--shard", help="render only shard i of n, as i/n (default: RANK/WORLD_SIZE "
                                        "under torchrun, else 0/1)")
    parser.add_argument("--split", action="append", choices=["train", "val", "test"],
                        help="render only the jobs of this split (repeatable; default all): e.g. test first")
    parser.add_argument("--merge", action="store_true",
                        help="only merge the shards' parts into manifest.parquet / corpus.json")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="spec overrides, e.g. seed=1")


def shard_from_env(environ=os.environ) -> str | None:
    """torchrun sets RANK and WORLD_SIZE: each rank renders its own shard."""
    if "RANK" in environ and "WORLD_SIZE" in environ:
        return f"{int(environ['RANK'])}/{int(environ['WORLD_SIZE'])}"
    return None


def run(args: argparse.Namespace) -> int:
    import json

    from core.common import parse_overrides
    from forge.corpus.build import build_corpus, merge_corpus
    from forge.corpus.plan import parse_shard

    if args.merge:
        card = merge_corpus(args.out)
        print(json.dumps({"corpus": args.out, "complete": card["complete"], "jobs": card["jobs"],
                          "files": card["counts"]["files"]}, indent=2))
        return 0 if card["complete"] else 1
    shard_text = args.shard or shard_from_env()
    shard = parse_shard(shard_text) if shard_text else (0, 1)
    overrides = parse_overrides(args.overrides)
    if str(overrides.get("device", "")) == "cuda" and "LOCAL_RANK" in os.environ:
        overrides["device"] = f"cuda:{int(os.environ['LOCAL_RANK'])}"  # torchrun: one GPU per rank
    report = build_corpus(args.out, args.spec, overrides=overrides, shard=shard, progress=not args.no_progress,
                          splits=tuple(args.split or ()))
    summary = {k: v for k, v in report.__dict__.items() if k != "card"}
    if report.card is not None:
        summary["complete"] = report.card["complete"]
        summary["manifest_files"] = report.card["counts"]["files"]
    print(json.dumps(summary, indent=2))
    return 0
