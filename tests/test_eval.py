"""forge.evaluate + `faceforge forge eval` on a tiny prepared cache (2 videos x 14 frames, 64 px)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.common import FaceforgeError

VIDEOS = ("d0", "hdtf_wda_katiehill")


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory, sample_dir):
    from forge.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("cache") / "c64"
    prepare([sample_dir / "videos" / f"{v}.mp4" for v in VIDEOS], out,
            PrepareConfig(resolution=64, backend="dlib", max_frames=14), progress=False)
    return out


def test_split_frames_is_disjoint_and_even():
    from forge.evaluate import split_frames

    valid = np.ones(20, bool)
    valid[5] = False
    fit, ev = split_frames(valid, t=4, n_eval=3)
    assert len(fit) == 4 and len(ev) == 3
    assert not set(fit) & set(ev) and 5 not in set(fit) | set(ev)
    assert list(ev) == [4, 10, 15]                                       # 19 valid frames, evenly spread
    fit1, _ = split_frames(valid, t=1, n_eval=3)
    assert len(fit1) == 1
    with pytest.raises(FaceforgeError, match="frames with a face"):
        split_frames(np.zeros(5, bool), 1, 2)


def test_eval_warp_ff_ft_on_a_tiny_cache(tmp_path, tiny_cache, tiny_talker):
    from forge.evaluate import EvalConfig, evaluate

    cfg = EvalConfig(holdout=VIDEOS, t_values=(1, 4), ft_t_values=(1,), n_eval_frames=3, ft_steps=1,
                     landmark_backend="dlib", grid_t=4)
    res = evaluate(tiny_cache, tmp_path / "ev", cfg, talker=tiny_talker)
    table = pd.read_csv(tmp_path / "ev" / "results.csv")
    # 2 videos x (warp T1, warp T4, ff T1, ff T4, ft T1) + 2 "real" floor rows
    assert len(table) == 12 and set(table["method"]) == {"warp", "ff", "ft", "real"}
    summary = pd.read_csv(tmp_path / "ev" / "summary.csv").set_index(["method", "T"])
    warp = summary.loc[("warp", 4)]
    # the warp baseline on real faces is structurally close; an untrained GAN is not
    assert 0.3 < warp["ssim"] <= 1.0 and warp["psnr"] > 12 and warp["csim"] > 0.8
    assert summary.loc[("ff", 4), "ssim"] < warp["ssim"]
    assert summary.loc[("real", 0), "landmark_detected"] == 1.0
    assert res["resolution"] == 32 and res["checkpoint_sha256"] == tiny_talker.checkpoint_sha256
    assert res["summary"][0]["fid"] is None and "unavailable" in res["fid_note"]
    fd = {(r["method"], r["T"]): r.get("fd_face") for r in res["summary"]}
    assert all(fd[k] is not None and fd[k] >= 0 for k in fd if k[0] != "real")   # FD-face on the port's descriptors
    assert "FD-face" in res["fd_face_note"] and "not FID" in res["fd_face_note"]
    assert res["ff_person_sensitivity"] >= 0.0                           # two people rendered, compared
    grid = (tmp_path / "ev" / "grid.png")
    from PIL import Image

    w, h = Image.open(grid).size
    assert (w, h) == (2 * 32 * (2 + 5), 18 + 2 * 2 * 32)                 # real, lm, 5 method columns
    # resume: a second run reuses every row (same numbers, no new renders)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ev" / "rows").iterdir()}
    res2 = evaluate(tiny_cache, tmp_path / "ev", cfg, talker=tiny_talker)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ev" / "rows").iterdir()}
    assert before == after and res2["summary"] == res["summary"]


def test_eval_without_a_talker_runs_the_warp_baseline_and_says_so(tmp_path, tiny_cache):
    from forge.evaluate import EvalConfig, evaluate

    cfg = EvalConfig(holdout=("d0",), t_values=(2,), n_eval_frames=2, landmark_backend="dlib", csim=False)
    res = evaluate(tiny_cache, tmp_path / "ev", cfg, checkpoint=tmp_path / "missing.pt")
    assert {r["method"] for r in res["summary"]} == {"warp", "real"}
    assert any("few-shot methods skipped" in n for n in res["notes"])


def test_eval_bad_holdout_is_one_clear_error(tmp_path, tiny_cache):
    from forge.evaluate import EvalConfig, evaluate

    with pytest.raises(FaceforgeError, match="held-out id 'nobody' is not in cache"):
        evaluate(tiny_cache, tmp_path / "ev", EvalConfig(holdout=("nobody",), methods=("warp",)))
    with pytest.raises(FaceforgeError, match="unknown eval method"):
        EvalConfig(methods=("gan",))


def test_cli_eval(tmp_path, tiny_cache, capsys):
    from forge.cli import main

    code = main(["forge", "eval", "--data", str(tiny_cache), "--out", str(tmp_path / "cli"), "--holdout", "d0",
                 "--t", "1,2", "--methods", "warp", "--eval-frames", "2", "--backend", "dlib"])
    out = capsys.readouterr().out
    assert code == 0 and "warp" in out and "FID: unavailable" in out
    saved = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert saved["config"]["t_values"] == [1, 2] and saved["videos"] == ["d0"]


def test_cross_reenactment_retarget_metrics(tiny_cache):
    from forge.evaluate import evaluate_retarget

    rows = evaluate_retarget(tiny_cache, [("d0", "hdtf_wda_katiehill")], n_frames=3, t_fit=1,
                             landmark_backend="dlib")
    assert len(rows) == 3 and [r["retarget"] for r in rows] == ["none", "relative", "absolute"]
    by = {r["retarget"]: r for r in rows}
    # retargeting keeps the source's face shape better than feeding the driver's landmarks as they are
    assert by["relative"]["shape_err"] < by["none"]["shape_err"]
    assert by["absolute"]["shape_err"] < by["none"]["shape_err"]
    assert all(0 < r["csim_source"] <= 1 and r["detected"] > 0 for r in rows)
