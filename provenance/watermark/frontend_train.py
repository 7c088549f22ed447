"""Train and select the learned front end (:mod:`.frontend`) on real clips, CPU-sized.

    .venv/bin/python -m provenance.watermark.frontend_train [--out out/wm_frontend] [--install]

1. Data (``make_shards``): 10-frame windows of ``../shared/data/real_videos`` (minus the 13 people of the
   watermark benchmark's sample videos), random square crops (65-100 % of the short side) at 128 px,
   85 % marked with the classical pattern (random payloads; the others teach it to find nothing),
   a frame dropped half the time, H.264 CRF 22-34 (x264 through ``core.media.write_video``, as the
   benchmark does); stored: the decoded mean luma and the mark's luma (shards of 100, resumable).
2. Training (``train``): every fifth video (sorted) is held out; on the rest, 96 px crops on the codec's
   16 px grid, batch 16, Adam: ``steps_mse`` steps of MSE to the mark, then ``steps_phase`` steps that
   maximise the decoder's own statistic, the mean cosine between the folded (48 px tile) band phases of
   the estimate and of the mark (plus a little MSE). Checkpoints every 100 steps (resumable).
3. Selection (``select``): the held-out videos as the benchmark makes its clips (centre square, 10
   frames, middle one dropped, CRF 28; three payload draws; and unmarked twins): payloads read exactly
   and false detections per candidate (each stage's weights x ``mixes``); the most exact reads win, then
   the lower median p-value. ``--install`` copies the winner to ``weights/frontend128.pt``.
Configs and results: ``<out>/config.json``, ``<out>/selection.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, FaceforgeError, run_main, write_bytes_atomic, write_json_atomic


@dataclass(frozen=True)
class FrontEndTrainConfig:
    videos: str = str(REPO_ROOT.parent / "shared" / "data" / "real_videos")
    exclude: str = str(REPO_ROOT / "data" / "sample" / "videos")  # the benchmark's people: never seen
    shards: int = 32
    per_shard: int = 100
    frames: int = 10
    crop: tuple = (0.65, 1.0)
    unmarked_p: float = 0.15
    drop_p: float = 0.5
    crf: tuple = (22, 34)
    hold_every: int = 5                 # every n-th video (sorted) is held out for selection
    channels: int = 16
    batch: int = 16
    patch: int = 96                     # training crop (two 48 px tiles)
    steps_mse: int = 2000
    lr_mse: float = 2e-3
    steps_phase: int = 1000
    lr_phase: float = 5e-4
    phase_mse_weight: float = 0.05
    mixes: tuple = (0.5, 1.0, 2.0)       # classical phasor weight tried at selection
    select_crf: int = 28
    seed: int = 0


def split_videos(cfg: FrontEndTrainConfig) -> tuple[list[Path], list[Path]]:
    """(training videos, held-out videos): the real videos minus the benchmark's, every ``hold_every``-th held out."""
    bench = {p.stem for p in Path(cfg.exclude).glob("*.mp4")}
    vids = sorted(p for p in Path(cfg.videos).glob("*.mp4") if p.stem not in bench)
    if len(vids) < 2:
        raise FaceforgeError(f"{cfg.videos}: {len(vids)} usable .mp4 videos (need 2 or more; ../shared/data/real_videos)")
    held = vids[::cfg.hold_every]
    return [v for v in vids if v not in held], held


def make_shards(cfg: FrontEndTrainConfig, out: Path) -> None:
    """Training pairs (module docstring, 1.) as ``out/train/shardNNN.npz``: y (K, 128, 128) decoded mean
    luma, d (K, 128, 128) the mark's luma, names (K,) "video|crf|marked". Every video is sampled (held-out
    ones are skipped at training)."""
    import cv2

    from core.media import h264_round_trip, read_video

    from . import WatermarkConfig, embed
    from .pattern import luma

    train_vids, held = split_videos(cfg)
    vids = sorted(train_vids + held)
    wm, n = WatermarkConfig(read_learned=False), cfg.frames
    (out / "train").mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    for sh in range(cfg.shards):
        path = out / "train" / f"shard{sh:03d}.npz"
        if path.exists():
            continue
        rng = np.random.default_rng(1000 + sh)
        order = rng.permutation(len(vids))
        ys, ds, names = [], [], []
        for i in range(cfg.per_shard):
            v = vids[order[i % len(vids)]]
            if v not in cache:
                cache[v] = np.stack([f.image for f in read_video(v, max_frames=150)])
                if len(cache) > 6:
                    cache.pop(next(iter(cache)))
            fr = cache[v]
            t0 = rng.integers(0, max(1, len(fr) - n))
            h, w = fr.shape[1:3]
            s = int(min(h, w) * rng.uniform(*cfg.crop))
            oy, ox = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            clip = np.stack([cv2.resize(f[oy:oy + s, ox:ox + s], (128, 128), interpolation=cv2.INTER_AREA)
                             for f in fr[t0:t0 + n]])
            marked = rng.random() > cfg.unmarked_p
            mk = embed(clip, int(rng.integers(0, 2 ** 63)), wm) if marked else clip
            keep = np.ones(len(mk), bool)
            if rng.random() < cfg.drop_p:
                keep[rng.integers(1, len(mk))] = False
            crf = int(rng.integers(cfg.crf[0], cfg.crf[1] + 1))
            dec = h264_round_trip(mk[keep], crf, 25)
            ys.append(luma(dec)); ds.append(luma(mk) - luma(clip)); names.append(f"{v.stem}|{crf}|{int(marked)}")
        tmpf = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmpf, y=np.stack(ys).astype(np.float32), d=np.stack(ds).astype(np.float32), names=np.array(names))
        os.replace(tmpf, path)
        print(f"shard {sh + 1}/{cfg.shards}", flush=True)


def _pairs(cfg: FrontEndTrainConfig, out: Path):
    """The training videos' pairs: y, d, r (classical residual) as (K, 128, 128) float32 each."""
    from .pattern import highpass, local_norm

    wm = _wm()
    train_names = {v.stem for v in split_videos(cfg)[0]}
    Y, D = [], []
    for f in sorted((out / "train").glob("shard*.npz")):
        z = np.load(f)
        sel = np.array([str(n).split("|")[0] in train_names for n in z["names"]])
        Y.append(z["y"][sel]); D.append(z["d"][sel])
    Y, D = np.concatenate(Y), np.concatenate(D)
    R = np.stack([local_norm(highpass(y - y.mean(), wm.hp_sigma), wm.norm_sigma, wm.norm_floor) for y in Y])
    return Y, D, R.astype(np.float32)


def _wm():
    from . import WatermarkConfig

    return WatermarkConfig(read_learned=False)


def train(cfg: FrontEndTrainConfig, out: Path, threads: int = 1) -> None:
    """Both stages (module docstring, 2.); ``out/stage_mse.pt`` and ``out/stage_phase.pt`` (resumable)."""
    import torch

    from . import frontend
    from .pattern import pattern

    torch.set_num_threads(threads)
    Y, D, R = _pairs(cfg, out)
    marked = np.nonzero(np.abs(D).reshape(len(D), -1).sum(1) > 0)[0]
    tcfg = _wm().at_tile(_wm().small_tile)
    pat, P = pattern(tcfg), tcfg.tile
    bu, bv = torch.from_numpy(pat.bins_u), torch.from_numpy(pat.bins_v)
    k = cfg.patch // P
    print(f"front end: {len(Y)} training pairs ({len(marked)} marked)", flush=True)

    def band(x):                                       # (B, 1, k P, k P) -> (B, n_bins) folded band spectrum
        f = x[:, 0].reshape(len(x), k, P, k, P).sum(dim=(1, 3))
        return torch.fft.fft2(f)[:, bu, bv]

    for stage, steps, lr in (("mse", cfg.steps_mse, cfg.lr_mse), ("phase", cfg.steps_phase, cfg.lr_phase)):
        path = out / f"stage_{stage}.pt"
        model = frontend.build(cfg.channels)
        start = 0
        opt = torch.optim.Adam(model.parameters(), lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        if path.exists():
            blob = torch.load(path, weights_only=False)
            model.load_state_dict(blob["state"]); opt.load_state_dict(blob["opt"]); sched.load_state_dict(blob["sched"])
            start = blob["step"]
        elif stage == "phase":
            model.load_state_dict(torch.load(out / "stage_mse.pt", weights_only=False)["state"])
        rng = np.random.default_rng(cfg.seed + (stage == "phase") * 7919 + start)
        pool = marked if stage == "phase" else np.arange(len(Y))
        t0 = time.time()
        for step in range(start + 1, steps + 1):
            idx = pool[rng.integers(0, len(pool), cfg.batch)]
            off = rng.integers(0, (128 - cfg.patch) // 16 + 1, (cfg.batch, 2)) * 16
            crop = lambda a: torch.from_numpy(np.stack([a[i, oy:oy + cfg.patch, ox:ox + cfg.patch]
                                                        for i, (oy, ox) in zip(idx, off)]))[:, None]
            y, d, r = crop(Y), crop(D), crop(R)
            est = model(y, r)
            mse = ((est - d) ** 2).mean()
            if stage == "mse":
                loss = mse
            else:
                Fe, Fd = band(est), band(d)
                agree = torch.real(Fe * Fd.conj()) / (Fe.abs() * Fd.abs() + 1e-6)
                loss = -agree.mean() + cfg.phase_mse_weight * mse / d.pow(2).mean().clamp_min(1e-6)
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
            if step % 100 == 0 or step == steps:
                torch.save({"state": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "step": step, "arch": {"channels": cfg.channels}}, path.with_suffix(".tmp"))
                os.replace(path.with_suffix(".tmp"), path)
                print(f"{stage} step {step}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)


def selection_clips(cfg: FrontEndTrainConfig) -> dict:
    """The held-out videos' clips as the benchmark makes them: {name: (frames, payload or None)}."""
    from core.media import centre_square, h264_round_trip, read_video

    from . import code_for, embed, short_id
    from .. import ecc

    wm, clips = _wm(), {}
    for v in split_videos(cfg)[1]:
        clip = np.stack([centre_square(f.image, 128) for f in read_video(v, max_frames=cfg.frames)])
        keep = np.ones(len(clip), bool)
        keep[len(clip) // 2] = False
        for draw in range(3):
            payload = int(np.random.default_rng([cfg.seed, draw, len(clips)]).integers(0, 2 ** 63))
            short = code_for(128, 128, wm) is ecc.SHORT
            for name, x, want in ((f"{v.stem}#{draw}", embed(clip, payload, wm), short_id(payload) if short else payload),
                                  (f"{v.stem}#{draw}/unmarked", clip, None)):
                if want is None and draw:
                    continue                                      # one unmarked twin per video
                clips[name] = (h264_round_trip(x[keep], cfg.select_crf, 25), want)
    return clips


def select(cfg: FrontEndTrainConfig, out: Path) -> dict:
    """Score every candidate on the held-out clips (module docstring, 3.); writes ``out/selection.json``."""
    from . import decode

    clips = selection_clips(cfg)
    rows = []
    exported = {s: str(_export(out / f"stage_{s}.pt", out)) for s in ("mse", "phase")}     # fp16, once each
    cands = [("classical", replace(_wm(), clip_front_end="classical"), 0.0)] + \
        [(s, replace(_wm(), front_end_weights=w, front_end_mix=m), m) for s, w in exported.items() for m in cfg.mixes]
    for stage, wm, mix in cands:
        exact, fps, ps = 0, 0, []
        for name, (frames, want) in clips.items():
            r = decode(frames, wm)
            if want is None:
                fps += r.detected
            else:
                exact += bool(r.detected and r.payload == want)
                ps.append(max(r.p_value, 1e-300))
        rows.append({"stage": stage, "mix": mix, "exact": exact, "n_marked": len(ps), "false_detections": fps,
                     "n_unmarked": len(clips) - len(ps), "median_log10_p": float(np.median(np.log10(ps)))})
        print(rows[-1], flush=True)
    learned = [r for r in rows if r["stage"] != "classical" and r["false_detections"] == 0]
    best = max(learned, key=lambda r: (r["exact"], -r["median_log10_p"]))
    result = {"config": asdict(cfg), "held_out": [v.stem for v in split_videos(cfg)[1]], "rows": rows, "chosen": best}
    write_json_atomic(out / "selection.json", result)
    return result


def _export(stage_path: Path, out: Path) -> Path:
    """The inference file of a stage checkpoint (fp16 state, no optimiser): ``out/<stage>.export.pt``."""
    import torch

    blob = torch.load(stage_path, weights_only=False)
    dst = out / f"{stage_path.stem}.export.pt"
    torch.save({"arch": blob["arch"], "state": {k: v.half() for k, v in blob["state"].items()},
                "step": blob["step"]}, dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO_ROOT / "out" / "wm_frontend"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--videos", default=None, help="folder of real .mp4 clips (default ../shared/data/real_videos)")
    ap.add_argument("--install", action="store_true", help="copy the selected weights to weights/frontend128.pt")
    args = ap.parse_args(argv)
    cfg, out = FrontEndTrainConfig(), Path(args.out)
    if args.videos:
        cfg = replace(cfg, videos=args.videos)
    split_videos(cfg)                                          # a clear error before anything is written
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", asdict(cfg))
    make_shards(cfg, out)
    train(cfg, out, args.threads)
    result = select(cfg, out)
    chosen = result["chosen"]
    print(f"chosen: {chosen['stage']} mix {chosen['mix']}: {chosen['exact']}/{chosen['n_marked']} exact", flush=True)
    if args.install:
        from . import frontend

        src = out / f"stage_{chosen['stage']}.export.pt"                  # written by select
        write_bytes_atomic(frontend.WEIGHTS, src.read_bytes())
        print(f"installed {frontend.WEIGHTS} (set WatermarkConfig.front_end_mix = {chosen['mix']})")
    return 0


if __name__ == "__main__":
    run_main(main)
