"""Detect faces and 68 landmarks in videos/images and build the prepared cache that training reads.

Inputs: folders of videos or images, VoxCeleb2-style trees (id*/video_id/*.mp4, identity from the
first folder), or single files. Re-running the same command resumes: finished files are skipped.
Bad files (corrupt, truncated, no face) are recorded in CACHE/videos.parquet and listed at the end.

example:
  faceforge forge prepare data/sample/videos --out out/sample_cache64 --resolution 64 --every 2 --max-frames 120
"""

from __future__ import annotations

import argparse


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="video/image files or folders")
    p.add_argument("--out", required=True, help="cache directory (created; re-run to resume)")
    p.add_argument("--resolution", type=int, choices=(64, 128, 256), default=64, help="crop side in pixels")
    p.add_argument("--backend", choices=("auto", "dlib", "face-alignment"), default="auto",
                   help="landmark backend (auto: face-alignment when its weights are cached, else dlib)")
    p.add_argument("--every", type=_positive, default=1, help="keep every n-th frame")
    p.add_argument("--max-frames", type=_positive, default=None, help="at most this many kept frames per video")
    p.add_argument("--margin", type=float, default=0.40, help="crop margin around the landmarks (fraction, each side)")
    p.add_argument("--no-smooth", action="store_true", help="no temporal smoothing of landmarks/crop boxes")
    p.add_argument("--format", dest="image_format", choices=("jpeg", "png"), default="jpeg",
                   help="crop encoding in the cache (jpeg q95: ~3.6x smaller than png at 128 px)")
    p.add_argument("--detect-every", type=_positive, default=1,
                   help="run the face detector on every k-th kept frame and track in between (faster)")
    p.add_argument("--fan-weights", default=None, help="face-alignment 2D-FAN-4 weights (default: torch hub cache)")
    p.add_argument("--s3fd-weights", default=None, help="face-alignment S3FD weights (default: torch hub cache)")
    p.add_argument("--workers", type=_positive, default=1, help="parallel processes over videos")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from core.common import FaceforgeError
    from forge.data.prepare import PrepareConfig, prepare

    try:
        cfg = PrepareConfig(resolution=args.resolution, backend=args.backend, every=args.every,
                            max_frames=args.max_frames, margin=args.margin, smooth=not args.no_smooth,
                            image_format=args.image_format, workers=args.workers, detect_every=args.detect_every,
                            fan_weights=args.fan_weights, s3fd_weights=args.s3fd_weights)
    except ValueError as e:
        raise FaceforgeError(str(e)) from None
    report = prepare(args.inputs, args.out, cfg, progress=not args.quiet)
    print(f"prepared {report['n_ok']}/{report['n_inputs']} files ({report['n_identities']} identities, "
          f"{report['n_frames']} frames, {report['n_valid_frames']} with a face) with backend {report['backend']} "
          f"at {cfg.resolution}px -> {report['out']} ({report['size_mib']:.2f} MiB, {report['seconds']:.1f} s"
          f"{', %d already done' % report['n_skipped_done'] if report['n_skipped_done'] else ''})")
    for bad in report["failed"]:
        print(f"  skipped {bad['source']}: {bad['status']}: {bad['error']}")
    return 0
