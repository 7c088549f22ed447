"""detect: registry, corpus reading/filters, every detector on a tiny real-frame corpus, train
resume, eval outputs, scoring user files (bad ones included), CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from detect.config import DetectConfig
from detect.registry import DuplicateDetectorError, get_detector_class, list_detectors, register
from core.common import FaceforgeError

# 6 real sample identities: d12, d18 -> test (the sample's held-out), d9 -> val, 3 -> train
TOY_IDS = ("d0", "d3", "d6", "d9", "d12", "d18")
TINY = dict(image_size=32, epochs=1, batch_size=8, max_frames=6, frames_per_item=3, window=6, patience=2)


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory):
    from detect.toy import ToyCorpusConfig, build_toy_corpus

    cfg = ToyCorpusConfig(size=32, n_frames=6, identities=TOY_IDS, generators=("fewshot", "warp"),
                          compressions=("raw", "c23"))
    return build_toy_corpus(tmp_path_factory.mktemp("toy") / "corpus", cfg)


@pytest.fixture(scope="session")
def trained_frequency(toy_corpus, tmp_path_factory):
    from detect.train import train

    run = tmp_path_factory.mktemp("runs") / "freq"
    train(toy_corpus, run, DetectConfig(detector="frequency", **TINY), progress=False)
    return run


# ---------------------------------------------------------------- registry
def test_registry_lists_all_and_rejects_duplicates():
    names = set(list_detectors())
    assert {"xception", "efficientnet_b0", "efficientnet_b4", "resnet18", "frequency", "frequency_svm",
            "residual_cnn", "dct_cnn", "temporal"} <= names
    with pytest.raises(DuplicateDetectorError):
        register("frequency")(type("Again", (), {}))
    with pytest.raises(FaceforgeError, match="unknown detector"):
        get_detector_class("nope")


# ---------------------------------------------------------------- corpus
def test_toy_corpus_follows_contract(toy_corpus):
    from detect.data import load_manifest, read_item

    df = load_manifest(toy_corpus)
    assert len(df) == 6 * 3 * 2                              # ids x (real, fewshot, warp) x (raw, c23)
    by_split = df.groupby("split")["source_identity"].unique()
    assert set(by_split["test"]) == {"d12", "d18"} and set(by_split["val"]) == {"d9"}
    item = read_item(toy_corpus, df.iloc[0].to_dict())
    assert item.frames.shape == (6, 32, 32, 3) and item.frames.dtype == np.uint8
    assert item.landmarks.shape == (6, 68, 2)


def test_filters_keep_reals_only_for_fake_only_columns():
    from detect.data import apply_filters, parse_filters

    df = pd.DataFrame({"item_id": list("abcd"), "label": ["real", "fake", "fake", "real"],
                       "generator": ["real", "warp", "fewshot", "real"], "T": pd.array([pd.NA, pd.NA, 8, pd.NA], dtype="Int64"),
                       "compression": ["raw", "raw", "c23", "c23"]})
    assert parse_filters(["generator=warp,fewshot", "T=8"]) == {"generator": ("warp", "fewshot"), "T": ("8",)}
    assert apply_filters(df, ["generator=warp"], keep_real=True)["item_id"].tolist() == ["a", "b", "d"]
    assert apply_filters(df, ["generator=warp"])["item_id"].tolist() == ["b"]
    assert apply_filters(df, ["T=8"], keep_real=True)["item_id"].tolist() == ["a", "c", "d"]
    assert apply_filters(df, ["compression=c23"], keep_real=True)["item_id"].tolist() == ["c", "d"]
    with pytest.raises(FaceforgeError, match="no such column"):
        apply_filters(df, ["colour=red"])
    with pytest.raises(FaceforgeError, match="column=value"):
        parse_filters(["generator"])


def test_bad_corpus_paths(tmp_path):
    from detect.data import load_manifest

    with pytest.raises(FaceforgeError, match="corpus folder not found"):
        load_manifest(tmp_path / "missing")
    with pytest.raises(FaceforgeError, match="no manifest.parquet"):
        load_manifest(tmp_path)
    pd.DataFrame({"item_id": ["a"], "path": ["x.mp4"]}).to_parquet(tmp_path / "manifest.parquet")
    with pytest.raises(FaceforgeError, match="lacks column"):
        load_manifest(tmp_path)


# ---------------------------------------------------------------- every detector
HEAVY = {"xception", "efficientnet_b4", "resnet18", "efficientnet_b0"}  # big timm nets: fewer frames in the test


@pytest.mark.parametrize("name", sorted(list_detectors()))
def test_every_detector_trains_scores_and_reloads(name, toy_corpus, tmp_path):
    from detect.data import load_manifest, load_items, split_rows
    from detect.detectors.base import score_items
    from detect.metrics import auc
    from detect.score import load_run
    from detect.toy import template_landmarks
    from detect.train import train

    opts = {**TINY, "frames_per_item": 1, "max_frames": 3} if name in HEAVY else TINY
    m = train(toy_corpus, tmp_path / name, DetectConfig(detector=name, **opts), progress=False)
    assert m["done"] and m["params"] > 0 and m["n_train_items"] == 18 and m["crop_resolution"] == 32
    lr = load_run(tmp_path / name)                              # the saved (best) model, from disk
    frames = np.random.default_rng(1).integers(0, 255, (7, 32, 32, 3), dtype=np.uint8)
    s = lr.detector.score_clip(frames, np.repeat(template_landmarks(32)[None], 7, 0))
    assert s.shape == (7,) and np.all((s >= 0) & (s <= 1))
    # the reloaded model reproduces the validation AUC recorded at the end of training
    val = load_items(toy_corpus, split_rows(load_manifest(toy_corpus), "val"), opts["max_frames"], progress=False)
    _, videos = score_items(lr.detector, val.items, lr.cfg.aggregate)
    assert auc(videos["label"], videos["score"]) == pytest.approx(m["val"]["video"]["auc"], nan_ok=True)
    hist = pd.read_csv(tmp_path / name / "history.csv")
    assert len(hist) == 1 and hist["best"].all()


# ---------------------------------------------------------------- train: resume, config, bad items
def test_cnn_training_resumes_after_interruption(toy_corpus, tmp_path, monkeypatch):
    import detect.train as T

    cfg = DetectConfig(detector="dct_cnn", **{**TINY, "epochs": 2, "patience": 5})
    real_write = T._write_history

    def crash_after_first(path, rows):
        real_write(path, rows)
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "_write_history", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        T.train(toy_corpus, tmp_path / "r", cfg, progress=False)
    assert not (tmp_path / "r" / "metrics.json").exists() and (tmp_path / "r" / "last.pt").exists()
    monkeypatch.setattr(T, "_write_history", real_write)
    m = T.train(toy_corpus, tmp_path / "r", cfg, progress=False)
    hist = pd.read_csv(tmp_path / "r" / "history.csv")
    assert hist["epoch"].tolist() == [1, 2] and m["epochs_run"] == 2   # epoch 1 not redone
    with pytest.raises(FaceforgeError, match="different config"):
        T.train(toy_corpus, tmp_path / "r", DetectConfig(detector="dct_cnn", **TINY), progress=False)


def test_corrupt_item_is_skipped_and_filters_apply(toy_corpus, tmp_path):
    from detect.data import load_manifest
    from detect.train import train

    corpus = tmp_path / "c"
    shutil.copytree(toy_corpus, corpus)
    df = load_manifest(corpus)
    bad = df[(df["split"] == "train") & (df["compression"] == "raw")].iloc[0]
    (corpus / bad["path"]).write_bytes(b"not a video")
    m = train(corpus, tmp_path / "r", DetectConfig(detector="frequency", **{**TINY, "filters": ("compression=raw",)}),
              progress=False)
    assert m["n_skipped_items"] == 1 and m["n_train_items"] == 9 - 1    # 3 ids x 3 variants, raw only
    errors = json.loads((tmp_path / "r" / "load_errors.json").read_text())
    assert errors[0]["item_id"] == bad["item_id"]
    with pytest.raises(FaceforgeError, match="only real|no training"):
        train(corpus, tmp_path / "r2", DetectConfig(detector="frequency", **{**TINY, "filters": ("label=real",)}),
              progress=False)


# ---------------------------------------------------------------- eval
def test_eval_writes_metrics_scores_and_curves(trained_frequency, toy_corpus):
    from PIL import Image

    from detect.evaluate import evaluate

    m = evaluate(trained_frequency, toy_corpus, split="test", filters=["generator=fewshot"], progress=False)
    out = trained_frequency / "eval" / "test_generator-fewshot"
    videos = pd.read_csv(out / "scores_videos.csv")
    assert len(videos) == 2 * 2 * 2                              # 2 test ids x (real, fewshot) x 2 compressions
    assert m["video"]["n"] == 8 and m["frame"]["n"] == 8 * 6
    assert set(videos["generator"]) == {"real", "fewshot"}
    assert m["video"]["threshold"] == json.loads((trained_frequency / "metrics.json").read_text())["threshold"]["video"]
    from detect.metrics import auc

    assert m["video"]["auc"] == pytest.approx(auc(videos["label"], videos["score"]))
    assert set(m["by"]["compression"]) == {"raw", "c23"}
    for png in ("roc.png", "pr.png", "reliability.png"):
        with Image.open(out / png) as im:
            assert im.size[0] > 100
    assert json.loads((out / "metrics.json").read_text())["video"]["n"] == 8


# ---------------------------------------------------------------- score user files
def test_score_files_reports_bad_files_and_continues(trained_frequency, toy_corpus, tmp_path):
    from detect.data import load_manifest
    from detect.score import score_files

    item = toy_corpus / load_manifest(toy_corpus)["path"].iloc[0]
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00" * 100)
    videos, frames = score_files(trained_frequency, [item, corrupt, tmp_path / "missing.mp4"], faces="none",
                                 return_frames=True, progress=False)
    assert videos["status"].tolist() == ["ok", "error", "error"]
    assert videos.loc[0, "n_frames"] == 6 and 0 <= videos.loc[0, "score"] <= 1
    assert videos.loc[0, "score"] == pytest.approx(frames["score"].mean())
    assert "broken.mp4" in videos.loc[1, "error"] and "not found" in videos.loc[2, "error"]


def test_score_finds_faces_and_reports_no_face(trained_frequency, sample_video, tmp_path):
    pytest.importorskip("forge.data.clip")
    from PIL import Image

    from detect.score import score_files

    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(grey)
    videos = score_files(trained_frequency, [sample_video, grey], max_frames=3, progress=False)
    assert videos["status"].tolist() == ["ok", "no_face"]
    assert videos.loc[0, "n_valid"] == 3 and videos.loc[0, "label"] in ("real", "fake")


def test_cli_list_train_eval_score(toy_corpus, tmp_path, capsys):
    from forge.cli import main

    run = tmp_path / "run"
    assert main(["detect", "list"]) == 0
    assert "temporal" in capsys.readouterr().out
    assert main(["detect", "train", "--corpus", str(toy_corpus), "--detector", "temporal", "--out", str(run),
                 "--filter", "generator=warp", "--set", "window=6", "--set", "max_frames=6"]) == 0
    assert json.loads(capsys.readouterr().out)["detector"] == "temporal"
    assert main(["detect", "eval", "--model", str(run), "--corpus", str(toy_corpus), "--name", "all"]) == 0
    assert (run / "eval" / "all" / "roc.png").is_file()
    capsys.readouterr()
    item = next((toy_corpus / "items" / "raw").glob("*.mp4"))
    assert main(["detect", "score", "--model", str(run), "--faces", "none", str(item)]) == 0
    assert pd.read_csv(run / "scores" / "videos.csv")["status"].tolist() == ["ok"]
    assert main(["detect", "train", "--corpus", str(tmp_path / "nope"), "--detector", "temporal",
                 "--out", str(tmp_path / "r2")]) == 2
    assert "corpus folder not found" in capsys.readouterr().err


def test_cnn_starts_from_a_weights_file(tmp_path):
    import torch

    donor = get_detector_class("dct_cnn")(DetectConfig(detector="dct_cnn", image_size=32, seed=1))
    state = donor.net.state_dict()
    state.pop("trunk.10.weight")                                 # a head the file lacks stays fresh
    torch.save(state, tmp_path / "w.pt")
    det = get_detector_class("dct_cnn")(DetectConfig(detector="dct_cnn", image_size=32, seed=2,
                                                     weights=str(tmp_path / "w.pt")))
    got = det.net.state_dict()
    assert torch.equal(got["trunk.0.weight"], state["trunk.0.weight"])
    assert not torch.equal(got["trunk.10.weight"], donor.net.state_dict()["trunk.10.weight"])
    with pytest.raises(FaceforgeError, match="weights file not found"):
        get_detector_class("dct_cnn")(DetectConfig(detector="dct_cnn", image_size=32, weights=str(tmp_path / "no.pt")))
