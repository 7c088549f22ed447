"""The paper's evaluation on held-out identities: fit on T frames, render other frames, compare.

For each held-out video: T = 1/8/32 fit frames, ``--eval-frames`` other frames rendered from their
landmarks by the warp baseline and the few-shot GAN (FF and FT), compared with the real frames: SSIM,
PSNR, CSIM (dlib descriptor), landmark error, FID (when Inception weights are given or cached).
Writes OUT/results.json, results.csv (per video), summary.csv (per method and T), grid.png,
eval_config.yaml and rows/ (per-row cache: re-running resumes).

Example:
  faceforge forge eval --data out/sample_cache64 --out out/eval64 --ft-steps 20
"""

from __future__ import annotations

import argparse


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="a prepared cache (faceforge forge prepare)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--checkpoint", default=None, help="talker checkpoint (default: the shipped one)")
    p.add_argument("--config", default=None, help="EvalConfig YAML (options below override it)")
    p.add_argument("--holdout", type=_names, default=None, help="held-out identities, comma separated "
                   "(default d12,d18,hdtf_wda_katiehill)")
    p.add_argument("--t", dest="t_values", type=_ints, default=None, help="fit frame counts (default 1,8,32)")
    p.add_argument("--methods", type=_names, default=None, help="of warp,guide,ff,ft (default warp,ff,ft)")
    p.add_argument("--ft-t", dest="ft_t_values", type=_ints, default=None,
                   help="T values to fine-tune (default: all of --t)")
    p.add_argument("--eval-frames", dest="n_eval_frames", type=int, default=None, help="targets per video (default 8)")
    p.add_argument("--ft-steps", type=int, default=None, help="fine-tuning steps (default 20)")
    p.add_argument("--backend", dest="landmark_backend", default=None, help="landmark detector for the error")
    p.add_argument("--fid-weights", default=None, help="Inception-v3 state dict for FID")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other EvalConfig overrides")


def run(args: argparse.Namespace) -> int:
    from core.common import load_config, parse_overrides
    from forge.evaluate import EvalConfig, evaluate

    overrides = parse_overrides(args.set)
    for key in ("holdout", "t_values", "methods", "ft_t_values", "n_eval_frames", "ft_steps",
                "landmark_backend", "fid_weights", "seed"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = list(value) if isinstance(value, tuple) else value
    cfg = load_config(EvalConfig, args.config, overrides)
    res = evaluate(args.data, args.out, cfg, checkpoint=args.checkpoint)
    cols = ("ssim", "psnr", "csim", "landmark_nme", "fd_face", "fid")
    print(f"{'method':8} {'T':>3} " + " ".join(f"{c:>12}" for c in cols))
    for row in res["summary"]:
        vals = [row.get(c) for c in cols]
        print(f"{row['method']:8} {row['T']:>3} " + " ".join(
            f"{v:12.4f}" if isinstance(v, float) else f"{'-':>12}" for v in vals))
    fd_note = "fd_face: Frechet distance of face descriptors (FD-face, not FID)"
    for note in res["notes"] + [f"FID: {res['fid_note']}", fd_note]:
        print(note)
    if res["skipped"]:
        print(f"skipped {len(res['skipped'])}: " + "; ".join(
            f"{s['video_id']} {s['method']} T={s['T']}: {s['reason']}" for s in res["skipped"][:5]))
    print(f"wrote {args.out}/results.json, summary.csv, results.csv, grid.png")
    return 0
