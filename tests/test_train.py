"""Meta-training on a tiny synthetic cache: loss decreases, exact resume, logs/samples, DDP (gloo, 2 procs)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from core.common import FaceforgeError
from forge.config import ModelConfig, TrainConfig
from forge.data.episodes import ArrayCache, EpisodeSampler
from forge.train import MetaTrainer

torch.set_num_threads(1)  # the test machine is a shared 2-core box: avoid thread oversubscription

TINY = ModelConfig(resolution=32, emb_dim=32, base_channels=8, max_channels=32, g_down_blocks=2,
                   g_res_blocks=1, attn_down_res=8, attn_up_res=16)


def make_clips(n_videos: int = 3, n_frames: int = 10, size: int = 32, seed: int = 0) -> dict:
    """Each video: a coloured disk moving on its own background; the landmark image marks the disk centre."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    clips = {}
    for v in range(n_videos):
        bg, fg = rng.integers(0, 120, 3), rng.integers(130, 255, 3)
        frames = np.empty((n_frames, size, size, 3), np.uint8)
        limg = np.zeros_like(frames)
        lms = np.zeros((n_frames, 68, 2), np.float32)
        for t in range(n_frames):
            cx, cy = rng.uniform(10, size - 10, 2)
            disk = (xx - cx) ** 2 + (yy - cy) ** 2 < 36
            frames[t] = np.where(disk[..., None], fg, bg)
            limg[t, int(cy) - 1:int(cy) + 2, int(cx) - 1:int(cx) + 2] = 255
            lms[t] = (cx, cy)
        clips[f"vid{v}"] = (frames, lms, limg)
    return clips


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(model=TINY, k_shot=2, batch_size=2, steps=100, lr_g=1e-3, lr_d=1e-3, d_steps=1, holdout=("vid2",),
                log_every=1, sample_every=5, checkpoint_every=1000, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_sampler_holdout_and_shapes():
    s = EpisodeSampler(ArrayCache(make_clips()), k_shot=2, holdout=("vid2",), seed=0)
    assert s.video_ids == ["vid0", "vid1"]
    ep = s.sample(3)
    assert ep.x_src.shape == (3, 2, 3, 32, 32) and ep.x_tgt.shape == (3, 3, 32, 32)
    assert ep.x_src.min() >= -1 and ep.x_src.max() <= 1 and ep.video.max() <= 1
    with pytest.raises(FaceforgeError, match="no training video"):
        EpisodeSampler(ArrayCache(make_clips(n_frames=2)), k_shot=2)


def test_loss_decreases_on_tiny_overfit(tmp_path):
    torch.manual_seed(0)
    tr = MetaTrainer(tiny_cfg(), ArrayCache(make_clips()), tmp_path)
    l1 = [tr.train_step()[0]["cnt_l1"] for _ in range(40)]
    assert np.mean(l1[-5:]) < 0.6 * np.mean(l1[:5])
    assert tr.model_cfg.n_videos == 2 and tr.D.W.shape == (2, 32)


def test_resume_reproduces_next_step(tmp_path):
    cache = ArrayCache(make_clips())
    a = MetaTrainer(tiny_cfg(), cache, tmp_path)
    a.run(steps=3, progress=False)
    assert (tmp_path / "checkpoint.pt").exists()
    next_a = a.train_step()[0]
    b = MetaTrainer(tiny_cfg(), cache, tmp_path)  # resumes from checkpoint.pt at step 3
    assert b.step == 3
    next_b = b.train_step()[0]
    assert next_a == next_b  # bit-identical losses
    for pa, pb in zip(a.G.parameters(), b.G.parameters()):
        assert torch.equal(pa, pb)
    # run outputs: every loss term logged, sample grid source|landmarks|output|target, config + content loss
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert {"cnt_l1", "cnt_ssim", "adv", "fm", "mch", "d_real", "d_fake", "loss_g", "loss_d"} <= set(rows[0])
    assert (tmp_path / "log.csv").read_text().count("\n") == 4
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["content_loss"] == "offline" and run["holdout"] == ["vid2"]
    from PIL import Image

    b.run(steps=5, progress=False)
    grid = np.asarray(Image.open(tmp_path / "samples" / "step_0000005.png"))
    assert grid.shape == (2 * 32, 4 * 32, 3)
    assert (tmp_path / "config.yaml").read_text().count("k_shot: 2") == 1


def test_resume_refuses_other_model(tmp_path):
    cache = ArrayCache(make_clips())
    MetaTrainer(tiny_cfg(), cache, tmp_path).run(steps=1, progress=False)
    other = tiny_cfg(model=ModelConfig(resolution=32, emb_dim=16, base_channels=8, max_channels=32,
                                       g_down_blocks=2, g_res_blocks=1, attn_down_res=8, attn_up_res=16))
    with pytest.raises(FaceforgeError, match="different model config"):
        MetaTrainer(other, cache, tmp_path)


def test_nan_detection(tmp_path):
    tr = MetaTrainer(tiny_cfg(max_nan_skips=2), ArrayCache(make_clips()), tmp_path)
    with torch.no_grad():
        tr.G.to_rgb.bias.fill_(float("nan"))
    before = [p.clone() for p in tr.E.parameters()]
    row = tr.train_step()[0]
    assert row["finite"] is False
    assert all(torch.equal(a, b) for a, b in zip(before, tr.E.parameters()))  # no update from NaN loss
    tr.train_step()
    with pytest.raises(FaceforgeError, match="diverged"):
        tr.train_step()


def test_ddp_gloo_two_processes(tmp_path):
    """torchrun, 2 CPU processes, gloo: ranks draw different episodes but stay in sync (averaged grads)."""
    from pathlib import Path

    script = tmp_path / "ddp_job.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, sys
        import torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        torch.set_num_threads(1)
        from test_train import make_clips, tiny_cfg
        from forge.data.episodes import ArrayCache
        from forge.dist import cleanup, init_from_env
        from forge.train import MetaTrainer
        ctx = init_from_env("cpu")
        tr = MetaTrainer(tiny_cfg(sample_every=0), ArrayCache(make_clips()), {str(tmp_path / 'run')!r}, "cpu", ctx)
        summary = tr.run(steps=2, progress=False)
        checksum = float(sum(p.double().sum() for p in tr.G.parameters()))
        with open({str(tmp_path)!r} + f"/rank{{ctx.rank}}.json", "w") as f:
            json.dump({{"step": summary["step"], "episodes": summary["episodes_seen"], "world": ctx.world_size,
                        "checksum": checksum, "first_video": int(tr.sampler.rng.integers(1 << 30))}}, f)
        cleanup(ctx)
    """))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_port=29517", str(script)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["world"] == r1["world"] == 2 and r0["step"] == r1["step"] == 2
    assert r0["episodes"] == 2 * 2 * 2  # steps x batch x world size
    assert r0["checksum"] == r1["checksum"]  # identical weights on both ranks
    assert r0["first_video"] != r1["first_video"]  # but each rank samples its own episodes
    assert (tmp_path / "run" / "checkpoint.pt").exists()
