"""Reenact a portrait, painting or fitted person (person.pt) from a driver video.

Examples:
  faceforge forge animate --source data/sample/portraits/s42.jpg --driver data/sample/videos/d0.mp4 \\
      --out out/s42_d0.mp4 --generator warp --side-by-side
  faceforge forge animate --source person.pt --driver video.mp4 --out out.mp4 --no-retarget

Writes OUT (MP4), OUT with .json (report: missing driver frames, timings, checkpoint), and with
--side-by-side OUT_sbs.mp4 (driver | landmarks | output).
"""

from __future__ import annotations

import argparse
from pathlib import Path

# every render is signed: a per-user identity and store unless told otherwise
DEFAULT_KEYS = Path("~/.faceforge/keys")
DEFAULT_STORE = Path("~/.faceforge/provenance.sqlite")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="portrait/painting image, short video, or a fitted person.pt")
    p.add_argument("--driver", required=True, help="driver video (its motion and expression are transferred)")
    p.add_argument("--out", required=True, help="output .mp4 (a .json report is written beside it)")
    p.add_argument("--generator", choices=("fewshot", "warp"), default="fewshot",
                   help="the few-shot GAN (default) or the classical piecewise-affine warp")
    p.add_argument("--retarget", action=argparse.BooleanOptionalAction, default=True,
                   help="put the driver's motion on the source's face proportions (default on; "
                        "--no-retarget feeds the driver's landmarks as they are, as in the paper)")
    p.add_argument("--reference", choices=("neutral", "first"), default="neutral",
                   help="driver reference frame for retargeting (default: the least open mouth)")
    p.add_argument("--expression", choices=("relative", "absolute"), default="absolute",
                   help="retargeting: add the driver's expression change to the source's own (relative) or "
                        "copy the driver's brow/eye/mouth shapes at the source's size (absolute)")
    p.add_argument("--mode", choices=("ff", "ft"), default="ff", help="few-shot fitting: feed-forward or fine-tune")
    p.add_argument("--steps", type=int, default=None, help="fine-tuning steps for --mode ft")
    p.add_argument("--checkpoint", default=None, help="talker checkpoint (default: the shipped one)")
    p.add_argument("--resolution", type=int, default=0, help="crop size (warp default 256; fewshot: the checkpoint's)")
    p.add_argument("--source-frames", type=int, default=8, help="frames used when the source is a video (T)")
    p.add_argument("--max-frames", type=int, default=None, help="use at most this many driver frames")
    p.add_argument("--every", type=int, default=1, help="take every n-th driver frame")
    p.add_argument("--backend", default="auto", help="landmark backend: auto, dlib, face-alignment")
    p.add_argument("--side-by-side", action="store_true", help="also write OUT_sbs.mp4: driver | landmarks | output")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality (0 = lossless)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keys", default=str(DEFAULT_KEYS),
                   help="provenance identity that signs the render (created there on first use; default %(default)s)")
    p.add_argument("--store", default=str(DEFAULT_STORE),
                   help="provenance store recording the render (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from forge.animate import AnimateConfig, animate

    cfg = AnimateConfig(generator=args.generator, retarget=args.retarget, reference=args.reference,
                        expression=args.expression, mode=args.mode,
                        steps=args.steps, seed=args.seed, resolution=args.resolution,
                        source_frames=args.source_frames, max_frames=args.max_frames, every=args.every,
                        backend=args.backend, side_by_side=args.side_by_side, crf=args.crf)
    rep = animate(args.source, args.driver, args.out, cfg, checkpoint=args.checkpoint,
                  key_dir=Path(args.keys).expanduser(), store=Path(args.store).expanduser())
    missing = rep["driver_missing_frames"]
    print(f"wrote {rep['out']} ({rep['n_frames']} frames, {rep['resolution']} px, {rep['generator']}, "
          f"retarget {'on' if rep['retargeted'] else 'off'}, {rep['render_fps']} frames/s)")
    if missing:
        print(f"driver frames without a face ({len(missing)}, interpolated): {missing[:20]}"
              f"{' ...' if len(missing) > 20 else ''}")
    prov = rep["provenance"]
    print(f"watermarked (payload {prov['payload']}, PSNR {prov['psnr_db']} dB) and C2PA-signed with {prov['key_dir']}")
    if "sbs_path" in rep:
        print(f"side by side: {rep['sbs_path']}")
    return 0
