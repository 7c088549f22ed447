"""The cross-generator protocol: family AUCs, bootstrap intervals (hand-computed cases), the labelled
folder reader, evaluate_folder on a tiny fake folder made here, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.common import FaceforgeError
from detect import metrics as M

# reals 0.1, 0.4; family "a" fakes 0.35, 0.8 (one real above one fake); family "b" fake 0.9
Y5 = [0, 0, 1, 1, 1]
S5 = [0.1, 0.4, 0.35, 0.8, 0.9]
F5 = ["real", "real", "a", "a", "b"]


# ---------------------------------------------------------------- pure metrics
def test_rank_auc_equals_auc_with_ties():
    assert M.rank_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert M.rank_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)          # a tie counts a half
    rng = np.random.default_rng(1)
    y, s = rng.integers(0, 2, 200), rng.integers(0, 10, 200) / 10       # many ties
    assert M.rank_auc(y, s) == pytest.approx(M.auc(y, s))
    assert np.isnan(M.rank_auc([1, 1], [0.2, 0.3]))


def test_family_auc_and_average_over_families():
    assert M.family_auc(Y5, S5, F5) == {"a": pytest.approx(0.75), "b": pytest.approx(1.0)}
    # each family weighs the same: (0.75 + 1.0) / 2, not the pooled AUC 5/6
    assert M.average_family_auc(Y5, S5, F5) == pytest.approx(0.875)
    assert M.auc(Y5, S5) == pytest.approx(5 / 6)
    assert np.isnan(M.average_family_auc([1, 1], [0.1, 0.2], ["a", "b"]))   # no reals


def test_bootstrap_hand_computed_cases():
    # perfectly separated: every resample has AUC 1
    ci = M.bootstrap_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], n_boot=200, seed=0)
    assert (ci["value"], ci["low"], ci["high"]) == (1.0, 1.0, 1.0)
    # reals {0.1, 0.6}, one fake 0.5: resampled reals give AUC 1 (p 1/4), 0.5 (1/2) or 0 (1/4)
    ci = M.bootstrap_ci([0, 0, 1], [0.1, 0.6, 0.5], n_boot=2000, seed=0)
    assert ci["value"] == 0.5 and ci["low"] == 0.0 and ci["high"] == 1.0
    again = M.bootstrap_ci([0, 0, 1], [0.1, 0.6, 0.5], n_boot=2000, seed=0)
    assert again == ci                                                   # seeded
    assert np.isnan(M.bootstrap_ci([1, 1], [0.1, 0.2])["low"])


def test_bootstrap_clusters_resample_whole_sources():
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.3, 0.5, 0.2, 0.4, 0.6]
    free = M.bootstrap_ci(y, s, n_boot=500, seed=0)
    # one cluster per class: every resample is the data itself, the interval collapses to the point
    one = M.bootstrap_ci(y, s, n_boot=500, seed=0, clusters=["r", "r", "r", "f", "f", "f"])
    assert one["low"] == one["high"] == one["value"] == pytest.approx(6 / 9)
    assert free["high"] - free["low"] > 0.3


def test_bootstrap_of_the_family_average():
    ci = M.bootstrap_ci(Y5, S5, M.average_family_auc, n_boot=300, seed=0, families=F5)
    assert ci["value"] == pytest.approx(0.875) and 0.0 <= ci["low"] <= ci["value"] <= ci["high"] <= 1.0


# ---------------------------------------------------------------- folder metrics (no model)
def test_folder_metrics_hand_computed():
    from detect.folder import folder_metrics

    videos = pd.DataFrame({"y": Y5 + [1], "score": S5 + [np.nan], "generator": F5 + ["c"],
                           "compression": ["c23", "c40", "c23", "c40", "c23", "c23"]})
    m = folder_metrics(videos, threshold=0.5, n_boot=100, seed=0, cluster=False)
    assert (m["n_listed"], m["n_scored"], m["n_skipped"]) == (6, 5, 1)   # the unscored clip is counted
    assert m["video"]["auc"] == pytest.approx(5 / 6) and m["video"]["n"] == 5
    assert m["video"]["accuracy"] == pytest.approx(4 / 5)                # 0.35 called real at 0.5
    assert set(m["by_generator"]) == {"a", "b"}                           # "c" had no scored clip
    assert m["by_generator"]["a"]["auc"] == pytest.approx(0.75) and m["by_generator"]["a"]["n_real"] == 2
    assert m["family_average_auc"]["auc"] == pytest.approx(0.875) and m["family_average_auc"]["n_families"] == 2
    # c23: real 0.1 vs fakes 0.35, 0.9 -> 1.0; c40: real 0.4 vs fake 0.8 -> 1.0
    assert m["by_compression"]["c23"]["auc"] == 1.0 and m["by_compression"]["c40"]["n"] == 2
    lo, hi = m["video"]["auc_ci95"]
    assert lo <= 5 / 6 <= hi and m["bootstrap"]["clusters"] is None


# ---------------------------------------------------------------- labelled folder
def _write_clip(path, level: int, n: int = 4, size: int = 32):
    from core.media import write_video

    write_video(path, np.full((n, size, size, 3), level, np.uint8), 25.0)


@pytest.fixture
def labelled(tmp_path):
    """4 real clips (dark) and 4 fakes of two families (bright), one fake listed but missing."""
    folder = tmp_path / "external"
    folder.mkdir()
    rows = []
    for i, level in enumerate((40, 60, 80, 120)):
        _write_clip(folder / f"real_{i}.mp4", level)
        rows.append((f"real_{i}.mp4", "real", "none", "src_r"))
    for i, (gen, level) in enumerate([("GenA", 100), ("GenA", 140), ("GenB", 160), ("GenB", 200)]):
        _write_clip(folder / f"fake_{i}.mp4", level)
        rows.append((f"fake_{i}.mp4", "fake", gen, f"src_{gen}"))
    rows.append(("fake_missing.mp4", "fake", "GenB", "src_GenB"))
    pd.DataFrame(rows, columns=["file", "label", "generator", "source_path"]).to_csv(folder / "MANIFEST.csv",
                                                                                     index=False)
    return folder


class _Brightness:
    """A stand-in detector: P(fake) = mean brightness / 255."""

    def score_clip(self, frames, landmarks=None):
        return frames.reshape(len(frames), -1).mean(1) / 255.0


def _stub_run(tmp_path):
    from detect.config import DetectConfig
    from detect.score import LoadedRun

    return LoadedRun(tmp_path / "run", DetectConfig(detector="frequency"), _Brightness(),
                     {"frame": 0.5, "video": 0.5}, 32, {})


def test_read_manifest_validates(tmp_path, labelled):
    from detect.folder import read_manifest

    df = read_manifest(labelled)
    assert len(df) == 9 and df["y"].sum() == 5 and set(df.loc[df["y"] == 0, "generator"]) == {"real"}
    with pytest.raises(FaceforgeError, match="has no MANIFEST.csv"):
        read_manifest(tmp_path)
    with pytest.raises(FaceforgeError, match="not found"):
        read_manifest(tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "MANIFEST.csv").write_text("file,label\na.mp4,real\n")
    with pytest.raises(FaceforgeError, match="lacks column"):
        read_manifest(bad)
    (bad / "MANIFEST.csv").write_text("file,label,generator\na.mp4,maybe,x\n")
    with pytest.raises(FaceforgeError, match="real|fake"):
        read_manifest(bad)
    (bad / "MANIFEST.csv").write_text("file,label,generator\n../a.mp4,real,none\n")
    with pytest.raises(FaceforgeError):
        read_manifest(bad)


def test_evaluate_folder_scores_in_place_and_writes_outputs(tmp_path, labelled):
    from detect.folder import FolderEvalConfig, evaluate_folder

    before = sorted(p.name for p in labelled.iterdir())
    m = evaluate_folder(_stub_run(tmp_path), labelled, FolderEvalConfig(n_boot=200, faces="none"),
                        out=tmp_path / "ev", progress=False)
    assert sorted(p.name for p in labelled.iterdir()) == before           # read in place, nothing written there
    # reals 40..120, fakes 100..200: one real (120) outranks one fake (100) -> 15/16
    assert m["video"]["auc"] == pytest.approx(15 / 16) and m["n_skipped"] == 1
    assert m["by_generator"]["GenA"]["auc"] == pytest.approx(7 / 8) and m["by_generator"]["GenB"]["auc"] == 1.0
    assert m["family_average_auc"]["auc"] == pytest.approx((7 / 8 + 1) / 2)
    assert m["bootstrap"]["clusters"] == ["source_path"] and m["threshold_from"].startswith("the run")
    assert [r["file"] for r in m["skipped_items"]] == ["fake_missing.mp4"]
    videos = pd.read_csv(tmp_path / "ev" / "scores_videos.csv")
    assert len(videos) == 9 and videos.loc[0, "score"] == pytest.approx(40 / 255, abs=2 / 255)
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["video"]["n"] == 8
    assert (tmp_path / "ev" / "roc.png").stat().st_size > 1000


def test_cli_eval_on_a_folder(tmp_path, labelled, capsys):
    from detect.config import DetectConfig
    from detect.toy import ToyCorpusConfig, build_toy_corpus
    from detect.train import train
    from forge.cli import main

    corpus = build_toy_corpus(tmp_path / "toy", ToyCorpusConfig(size=32, n_frames=6, identities=("d0", "d3", "d9", "d12"),
                                                                generators=("fewshot", "warp")))
    run = tmp_path / "run"
    train(corpus, run, DetectConfig(detector="frequency", image_size=32, epochs=1, max_frames=6, frames_per_item=3),
          progress=False)
    assert main(["detect", "eval", "--model", str(run), "--folder", str(labelled), "--faces", "none",
                 "--bootstrap", "50", "--name", "ext"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["video"]["n"] == 8 and set(out["by_generator"]) == {"GenA", "GenB"} and out["skipped"] == 1
    assert (run / "eval" / "folder_ext" / "metrics.json").is_file()
    assert main(["detect", "eval", "--model", str(run), "--folder", str(tmp_path)]) == 2
    assert "faceforge: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):                                      # --corpus or --folder, not both
        main(["detect", "eval", "--model", str(run), "--corpus", str(corpus), "--folder", str(labelled)])


def test_runs_share_one_face_extraction(tmp_path, labelled):
    from detect.folder import FolderEvalConfig, evaluate_folder

    cache: dict = {}
    cfg = FolderEvalConfig(n_boot=10, faces="none")
    first = evaluate_folder(_stub_run(tmp_path), labelled, cfg, out=tmp_path / "a", progress=False, faces_cache=cache)
    assert len(cache) == 8                                               # the 8 readable clips
    _write_clip(labelled / "real_0.mp4", 250)                            # a second run does not read it again
    again = evaluate_folder(_stub_run(tmp_path), labelled, cfg, out=tmp_path / "b", progress=False, faces_cache=cache)
    assert again["video"]["auc"] == first["video"]["auc"] and again["n_scored"] == 8
