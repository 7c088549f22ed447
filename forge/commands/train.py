"""Meta-learn the few-shot talking-head GAN on a prepared cache.

Resumable: re-running the same command continues from RUN/checkpoint.pt (models, optimisers, step, RNG).
Multi-process: ``torchrun --nproc_per_node=N -m forge.cli forge train ...`` (NCCL on GPUs, gloo on CPU).

  faceforge forge train --config cpu128wg --data out/cache128_all --out out/run128 --minutes 60
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--config", default="64", help="YAML path or bundled name (64, 128, 256, cpu64)")
    p.add_argument("--data", required=True, help="prepared cache (faceforge forge prepare)")
    p.add_argument("--out", required=True, help="run directory (created; resumed when it has a checkpoint)")
    p.add_argument("--steps", type=int, default=None, help="total steps (default: config steps)")
    p.add_argument("--minutes", type=float, default=None, help="stop (and checkpoint) after this many minutes")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. batch_size=4 model.emb_dim=256")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from core.common import parse_overrides
    from forge.config import load_train_config
    from forge.train import train

    cfg = load_train_config(args.config, parse_overrides(args.set))
    summary = train(cfg, args.data, args.out, device=args.device, steps=args.steps,
                    max_minutes=args.minutes, progress=not args.no_progress)
    print(f"step {summary['step']}: loss_g {summary.get('loss_g', float('nan')):.4f} "
          f"loss_d {summary.get('loss_d', float('nan')):.4f} content={summary['content_loss']} -> {args.out}")
    return 0
