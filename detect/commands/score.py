"""Score videos/images with a detector: per-frame and per-video P(fake), a verdict, and the frames
that drove it. Without --model the shipped default detector (detect/weights/default) is used.

Faces are found and cropped with the same pipeline as `forge prepare`; files with no face or that
cannot be decoded are reported (status no_face / error) and the batch continues.
Writes OUT/{videos.csv, frames.csv, scores.json} (default OUT: RUN/scores, or ./faceforge-scores for
the default detector).

Example: faceforge detect score clip.mp4
"""

from __future__ import annotations

import argparse

DEFAULT_OUT = "faceforge-scores"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="detector run folder (default: the shipped default detector)")
    parser.add_argument("files", nargs="+", help="videos or images")
    parser.add_argument("--out", help="folder for videos.csv, frames.csv, scores.json "
                                      "(default RUN/scores; ./faceforge-scores for the default detector)")
    parser.add_argument("--faces", choices=["detect", "none"], default="detect",
                        help="detect: find and crop faces (default); none: inputs are already face crops")
    parser.add_argument("--max-frames", type=int, default=64, help="frames read per video")
    parser.add_argument("--every", type=int, default=1, help="use every k-th frame")
    parser.add_argument("--backend", default="auto", help="landmark backend: auto, dlib, face-alignment")
    parser.add_argument("--threads", type=int, help="torch CPU threads for scoring (default: the run's own setting)")


def run(args) -> int:
    from pathlib import Path

    from detect.default import reliability
    from detect.score import load_run, score_files, write_scores

    lr = load_run(args.model, threads=args.threads)
    videos, frames = score_files(lr, args.files, faces=args.faces, max_frames=args.max_frames, every=args.every,
                                 backend=args.backend, return_frames=True)
    out = args.out or (Path(args.model) / "scores" if args.model else Path(DEFAULT_OUT))
    trust = reliability(lr.metrics)
    paths = write_scores(out, videos, frames, lr.path, measured=lr.metrics.get("measured"))
    print(f"detector: {lr.cfg.detector} ({'shipped default' if args.model is None else lr.path})")
    if trust:
        print(trust)
    for r in videos.itertuples():
        if r.status == "ok":
            detail = f"P(fake) {r.score:.3f} -> {r.label.upper()}; frames that drove it: {r.top_frames}"
        else:
            detail = r.error
        print(f"{r.status:<8} {r.file}: {detail}")
    print(f"wrote {paths['videos']}, {paths['frames']}, {paths['json']}")
    return 0 if (videos["status"] == "ok").any() else 1
