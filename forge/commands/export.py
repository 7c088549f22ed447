"""Export a training checkpoint to the small fp16 inference file (G + E + P, plus D's V for FT).

  faceforge forge export --checkpoint out/wg/run_wg3 --out forge/weights/talker128.pt
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", required=True, help="RUN directory or RUN/checkpoint.pt")
    p.add_argument("--out", required=True, help="export path (.pt)")
    p.add_argument("--no-discriminator", action="store_true", help="drop D (smaller; FT fitting unavailable)")


def run(args) -> int:
    import os
    from pathlib import Path

    from forge.checkpoint import export_inference

    ck = Path(args.checkpoint)
    if ck.is_dir():
        ck = ck / "checkpoint.pt"
    meta = export_inference(ck, args.out, with_discriminator=not args.no_discriminator)
    print(f"exported step {meta['step']} ({meta.get('content_loss')} content loss) -> {args.out} "
          f"({os.path.getsize(args.out) / 1e6:.1f} MB)")
    return 0
