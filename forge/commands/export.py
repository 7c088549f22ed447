"""Export a training checkpoint to the small fp16 inference file (G + E + P, plus D's V for FT).

  faceforge forge export --checkpoint out/wg/run_wg3 --out forge/weights/talker128.pt
  faceforge forge export --average a.pt b.pt --weights 0.5 0.5 --out soup.pt   # weight averaging of exports
"""

from __future__ import annotations


def add_arguments(p) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="RUN directory or RUN/checkpoint.pt")
    src.add_argument("--average", nargs="+", metavar="EXPORT",
                     help="average these exports of one training run (different steps) instead")
    p.add_argument("--weights", nargs="+", type=float, help="--average: one weight per export (default equal)")
    p.add_argument("--out", required=True, help="export path (.pt)")
    p.add_argument("--no-discriminator", action="store_true", help="drop D (smaller; FT fitting unavailable)")


def run(args) -> int:
    import os
    from pathlib import Path

    from forge.checkpoint import average_exports, export_inference

    if args.average:
        meta = average_exports(args.average, args.weights or [1.0] * len(args.average), args.out)
        print(f"averaged {len(args.average)} exports (up to step {meta['step']}) -> {args.out}")
        return 0
    ck = Path(args.checkpoint)
    if ck.is_dir():
        ck = ck / "checkpoint.pt"
    meta = export_inference(ck, args.out, with_discriminator=not args.no_discriminator)
    print(f"exported step {meta['step']} ({meta.get('content_loss')} content loss) -> {args.out} "
          f"({os.path.getsize(args.out) / 1e6:.1f} MB)")
    return 0
