"""Validation for choosing between generator exports, never on the held-out ten (``forge_eval``'s people).

    python -m benchmarks.forge_val NAME=EXPORT [NAME=EXPORT ...] [--cache out/cache128_all]

1. Self-reenactment on 12 *training* people (every 4th training video, unseen frames of seen people):
   SSIM and mouth-box L1 of the warp baseline and each export's FF, at T = 1 and 8.
2. Cross-reenactment on validation sources that are not ``forge_eval``'s: the other portraits of
   data/sample/portraits and ../shared/data/portraits (driven by d0; the p3/p4 entries used the first three) and four pairs of training people,
   retargeted as ``forge_eval``: CSIM to the source, warp vs each export's FF, overall and for portraits
   and pairs apart (an export trained with cross-identity episodes has seen training people drive each
   other, so its portraits are the cleaner test).

This is how the shipped talker128.pt's last two phases were chosen (forge/weights/README.md). Writes
benchmarks/results/forge_val.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent
VAL_PORTRAIT_DRIVER = "d0"
SHARED_PORTRAITS = ROOT.parent / "shared" / "data" / "portraits"
VAL_PAIRS = (("d3", "lrs2_00016"), ("dpe_s", "grid_sbia1a"), ("styletalk_feifeili", "vox2_00098"),
             ("hdtf_rd_radio34", "eamm_surprised"))


def self_rows(cache_root: Path, talker, n_videos: int = 12) -> dict:
    from forge.data import PreparedCache
    from forge.evaluate import EvalConfig, _valid_mask, render_method, resize_clip, split_frames
    from forge.metrics import mouth_l1, ssim

    from benchmarks.forge_eval import HOLDOUT

    cache = PreparedCache(cache_root)
    videos = [v for v in cache.video_ids() if v not in HOLDOUT][1::4][:n_videos]
    acc: dict[str, list[float]] = {}
    for v in videos:
        frames, lms = resize_clip(*cache.load(v), talker.resolution)
        valid = _valid_mask(cache, v, len(frames))
        for t in (1, 8):
            fit, ev = split_frames(valid, t, 8)
            for method in ("warp", "ff"):
                fake = render_method(method, talker, frames[fit], lms[fit], lms[ev], EvalConfig(), t)
                acc.setdefault(f"{method}_T{t}_ssim", []).append(float(ssim(fake, frames[ev])))
                acc.setdefault(f"{method}_T{t}_mouth_l1", []).append(float(mouth_l1(fake, frames[ev], lms[ev])))
    return {"videos": videos, **{k: float(np.mean(x)) for k, x in acc.items()}}


def cross_rows(cache_root: Path, talker, n_portraits: int | None = None) -> dict:
    import benchmarks.forge_eval as fe

    found = {p.name: p for d in (ROOT / "data" / "sample" / "portraits", SHARED_PORTRAITS) if d.is_dir()
             for p in d.iterdir()}                                    # the repo's sample, + ../shared's when present
    portraits = [str(found[n]) for n in sorted(found) if n not in {name for _, name in fe.PORTRAITS}][:n_portraits]
    rows = fe.cross_reenactment(cache_root, talker, argparse.Namespace(backend="auto", cross_t=8, cross_frames=8),
                                portraits=tuple(("val", n) for n in portraits),
                                portrait_driver=VAL_PORTRAIT_DRIVER, pairs=VAL_PAIRS)
    groups = {"all": rows, "portraits": [r for r in rows if r["source"].startswith("val:")],
              "pairs": [r for r in rows if not r["source"].startswith("val:")]}
    mean = {g: {m: float(np.mean([r["csim_source"] for r in rs if r["method"] == m])) for m in ("warp", "ff")}
            for g, rs in groups.items()}
    return {"sources": [r["source"] for r in rows if r["method"] == "ff"], "csim_source": mean["all"],
            "ff_minus_warp": mean["all"]["ff"] - mean["all"]["warp"],
            "ff_minus_warp_portraits": mean["portraits"]["ff"] - mean["portraits"]["warp"],
            "ff_minus_warp_pairs": mean["pairs"]["ff"] - mean["pairs"]["warp"],
            "per_source": {r["source"]: r["csim_source"] for r in rows if r["method"] == "ff"},
            "per_source_warp": {r["source"]: r["csim_source"] for r in rows if r["method"] == "warp"}}


def main(argv: list[str] | None = None) -> int:
    import torch

    from core.common import write_json_atomic
    from forge.animate import load_talker

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("exports", nargs="+", metavar="NAME=EXPORT")
    ap.add_argument("--cache", default=str(ROOT / "out" / "cache128_all"))
    ap.add_argument("--portraits", type=int, default=None,
                    help="validation portraits (sorted, the eval's two excluded; default all; earlier entries used 3)")
    ap.add_argument("--out", default=str(RESULTS / "forge_val.json"),
                    help="results file; exports already in it under other names are kept (each lists its sources)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = Path(args.out)
    out = json.loads(result.read_text()) if result.exists() else {"exports": {}}
    out["what"] = "validation (training people, other portraits): warp vs FF per export; never the held-out ten"
    for spec in args.exports:
        name, _, path = spec.partition("=")
        talker = load_talker(path)
        out["exports"][name] = {"checkpoint": path, "version": talker.version,
                                "self": self_rows(Path(args.cache), talker),
                                "cross": cross_rows(Path(args.cache), talker, args.portraits)}
        print(name, json.dumps({k: v for k, v in out["exports"][name]["self"].items() if k != "videos"}),
              out["exports"][name]["cross"]["csim_source"], flush=True)
        write_json_atomic(result, out)   # after each export: a killed run keeps the finished ones
    return 0


if __name__ == "__main__":
    from benchmarks import run_script

    run_script(main)
