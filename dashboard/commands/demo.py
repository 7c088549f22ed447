"""Run the main job end to end on the embedded sample and write a report.

prepare the sample -> fit the shipped generator to a painting, a photo (T=1) and a held-out person (T=8)
-> animate them with a real driver -> evaluate -> render a small corpus (every fake C2PA-signed and
watermarked) -> train a fast detector and score the held-out split -> verify provenance of a signed, a
re-encoded and a tampered file -> OUT/report.html. Re-running the same command resumes: finished
stages are skipped (delete OUT/stages/<stage>.json to redo one).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--config", help="YAML with MainJobConfig fields (see dashboard/mainjob.py)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config fields, e.g. --set driver_frames=24 detector=xception")
    p.add_argument("--quick", action="store_true", help="a minimal setting (the test suite uses it)")


def run(args: argparse.Namespace) -> int:
    from core.common import load_config, parse_overrides

    from dashboard.mainjob import QUICK, MainJobConfig, run_main_job

    overrides = {**(QUICK if args.quick else {}), **parse_overrides(args.set)}
    cfg = load_config(MainJobConfig, args.config, overrides)
    run_main_job(args.out, cfg)
    return 0
