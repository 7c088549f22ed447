"""The learned front end (issue 18, sixth pass): clips on the small tile are read through a small CNN that
estimates the mark after H.264, combined per band bin with the classical read; images, the large tile and
the embedding are unchanged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.watermark_attacks import square
from provenance import watermark as wm
from provenance.watermark import frontend, frontend_train
from provenance.watermark.pattern import pattern, phases

PAYLOAD = 0x0123456789ABCDEF
SHORT = PAYLOAD & 0xFFFFFFFF
CFG = wm.WatermarkConfig(read_learned=False)
CLASSICAL = replace(CFG, clip_front_end="classical")


def _clip(sample_dir, video: str, n: int = 10) -> np.ndarray:
    from core.media import read_video

    return np.stack([square(f.image, 128) for f in read_video(sample_dir / "videos" / f"{video}.mp4", max_frames=n)])


def _crf28(tmp_path, clip: np.ndarray) -> np.ndarray:
    from core.media import read_video, write_video

    keep = np.ones(len(clip), bool)
    keep[len(clip) // 2] = False                                          # 10 % frame drop
    path = write_video(tmp_path / "c.mp4", clip[keep], fps=25, crf=28)
    return np.stack([f.image for f in read_video(path)])


def test_untrained_network_is_the_classical_read():
    import torch

    net = frontend.build()
    y, r = torch.rand(2, 1, 48, 48) * 255, torch.randn(2, 1, 48, 48)
    out = net(y, r)
    assert out.shape == (2, 1, 48, 48) and torch.allclose(out, 0.5 * r)   # zero head: a multiple of r


def test_combined_adds_unit_phasors():
    got = frontend.combined(np.array([3 + 4j, -2j]), np.array([5 + 0j, 0.5j]), 2.0)
    np.testing.assert_allclose(got, [0.6 + 0.8j + 2, -1j + 2j])


def test_which_reads_use_it(tmp_path):
    assert frontend.available()                                           # shipped with the package
    assert CFG.front_end_for(CFG.small_tile, 10) == "learned"
    assert CFG.front_end_for(CFG.small_tile, 1) == "classical"             # images
    assert CFG.front_end_for(CFG.tile, 10) == "classical"                  # the 64 px tile
    assert CLASSICAL.front_end_for(CFG.small_tile, 10) == "classical"
    assert replace(CFG, front_end_weights=str(tmp_path / "none.pt")).front_end_for(CFG.small_tile, 10) == "classical"
    with pytest.raises(ValueError, match="clip_front_end"):
        replace(CFG, clip_front_end="cnn").front_end_for(CFG.small_tile, 10)
    cfg = replace(CFG.at_tile(CFG.small_tile), front_end="cnn")
    with pytest.raises(Exception, match="front_end"):
        phases(np.zeros((96, 96), np.float32), 1.0, cfg, pattern(cfg))


def test_crf28_clip_reads_stronger_and_unmarked_clip_reads_nothing(tmp_path, sample_dir):
    clip = _clip(sample_dir, "d9")
    x = _crf28(tmp_path, wm.embed(clip, PAYLOAD, CFG))
    new, old = wm.decode(x, CFG), wm.decode(x, CLASSICAL)
    assert new.extras["front_end"] == "learned" and old.extras["front_end"] == "classical"
    assert new.detected and new.payload == SHORT and new.n_frames == 9, new
    assert new.p_value < 1e-3 * old.p_value, (new.p_value, old.p_value)
    null = wm.decode(_crf28(tmp_path, clip), CFG)
    assert not null.detected and null.p_value > 1e-3 and null.extras["tiles_searched"] == [48, 64]


def test_training_resumes_and_its_split_holds_videos_out(tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    for name in "abcdefghij":
        (vids / f"{name}.mp4").write_bytes(b"")
    cfg = replace(frontend_train.FrontEndTrainConfig(), videos=str(vids), exclude=str(tmp_path / "none"),
                  steps_mse=3, steps_phase=2, batch=2)
    train, held = frontend_train.split_videos(cfg)
    assert [v.stem for v in held] == ["a", "f"] and len(train) == 8
    rng = np.random.default_rng(0)
    d = np.stack([np.tile(rng.normal(0, 2, (48, 48)), (3, 3))[:128, :128] for _ in range(6)]).astype(np.float32)
    y = (rng.uniform(0, 255, (6, 128, 128)) + d).astype(np.float32)
    out = tmp_path / "run"
    (out / "train").mkdir(parents=True)
    names = np.array(["a|28|1", "b|28|1", "c|28|0", "d|30|1", "f|22|1", "g|34|1"])
    np.savez(out / "train" / "shard000.npz", y=y, d=d * (names != "c|28|0")[:, None, None], names=names)
    Y, _, R = frontend_train._pairs(cfg, out)
    assert len(Y) == 4 and R.shape == (4, 128, 128)                       # a and f held out
    frontend_train.train(cfg, out)
    import torch

    for stage, steps in (("mse", 3), ("phase", 2)):
        blob = torch.load(out / f"stage_{stage}.pt", weights_only=False)
        assert blob["step"] == steps and blob["arch"] == {"channels": 16}
    before = (out / "stage_phase.pt").stat().st_mtime_ns
    frontend_train.train(cfg, out)                                        # finished: nothing redone
    assert (out / "stage_phase.pt").stat().st_mtime_ns == before
    exported = frontend_train._export(out / "stage_phase.pt", out)
    assert frontend.estimate(Y[0], R[0], str(exported)).shape == (128, 128)


def test_benchmark_scans_unmarked_clips_after_the_clip_attack():
    from benchmarks.watermark import BenchConfig, fp_clips

    clips = fp_clips(replace(BenchConfig(), fp_clip_span=12, fp_clip_every=50), 128)
    assert len(clips) == 13 and clips[0][0].endswith("@0")               # one window per sample video
    assert all(c.shape == (9, 128, 128, 3) and c.dtype == np.uint8 for _, c in clips)


def test_training_without_videos_fails_in_one_line(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "provenance.watermark.frontend_train", "--out", str(out),
                        "--videos", str(tmp_path / "none")], capture_output=True, text=True)
    assert p.returncode != 0 and p.stderr.strip().count("\n") == 0 and "usable .mp4 videos" in p.stderr
    assert not out.exists()
