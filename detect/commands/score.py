"""Score videos/images with a trained detector: per-frame and per-video P(fake).

Faces are found and cropped with the same pipeline as `forge prepare`; files with no face or that
cannot be decoded are reported (status no_face / error) and the batch continues.
Writes OUT/{videos.csv, frames.csv, scores.json} (default OUT: RUN/scores).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="detector run folder (from `faceforge detect train`)")
    parser.add_argument("files", nargs="+", help="videos or images")
    parser.add_argument("--out", help="folder for videos.csv, frames.csv, scores.json (default RUN/scores)")
    parser.add_argument("--faces", choices=["detect", "none"], default="detect",
                        help="detect: find and crop faces (default); none: inputs are already face crops")
    parser.add_argument("--max-frames", type=int, default=64, help="frames read per video")
    parser.add_argument("--every", type=int, default=1, help="use every k-th frame")
    parser.add_argument("--backend", default="auto", help="landmark backend: auto, dlib, face-alignment")


def run(args) -> int:
    from pathlib import Path

    from detect.score import load_run, score_files, write_scores

    lr = load_run(args.model)
    videos, frames = score_files(lr, args.files, faces=args.faces, max_frames=args.max_frames, every=args.every,
                                 backend=args.backend, return_frames=True)
    paths = write_scores(args.out or Path(args.model) / "scores", videos, frames, lr.path)
    for r in videos.itertuples():
        detail = f"score {r.score:.3f} -> {r.label}" if r.status == "ok" else r.error
        print(f"{r.status:<8} {r.file}: {detail}")
    print(f"wrote {paths['videos']}, {paths['frames']}, {paths['json']}")
    return 0 if (videos["status"] == "ok").any() else 1
