"""dashboard.data / dashboard.media / dashboard.review / the serve command: values on a tiny fixture corpus + run."""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time

import numpy as np
import pandas as pd
import pytest

from dashboard import checks, data, media, runs
from dashboard.fixture import make_fixture_tree, synthetic_manifest
from dashboard.review import (ReviewStore, Triplet, agreement_with_truth, inter_reviewer_agreement, make_triplet,
                              user_metric, wilson_interval)
from core.common import FaceforgeError


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return make_fixture_tree(tmp_path_factory.mktemp("dash"))


# ---------------------------------------------------------------- corpus
def test_manifest_has_contract_columns_and_counts(fx):
    df = data.load_manifest(fx / "corpus")
    assert set(data.MANIFEST_COLUMNS) <= set(df.columns)
    assert len(df) == 18  # 3 identities x (2 real + 2 generators x 2 compressions)
    by_label = data.counts(df, "label").set_index("label")["count"].to_dict()
    assert by_label == {"fake": 12, "real": 6}
    by_t = data.counts(df, "T").set_index("T")["count"].to_dict()
    assert by_t == {"(none)": 6, "1": 6, "8": 6}  # reals have no T; 8.0 shows as "8"


def test_filters_on_any_column(fx):
    df = data.load_manifest(fx / "corpus")
    shown = df.apply(data.display_values)
    hit = data.apply_filters(shown, {"generator": ["warp"], "compression": ["c23"]}, {"item_id": "_D0_BY"})
    assert df.loc[hit.index, "item_id"].tolist() == ["warp_d0_by_d3_c23"]
    assert len(data.apply_filters(shown, {"mode": ["(none)"]})) == 12  # reals + warp have no mode
    rows, n_pages = data.page_slice(df, 2, 8)
    assert n_pages == 3 and rows.index.tolist() == list(range(8, 16))


def test_missing_manifest_and_required_column(tmp_path):
    with pytest.raises(FaceforgeError, match="corpus manifest not found"):
        data.load_manifest(tmp_path)
    pd.DataFrame({"item_id": ["a"], "path": ["a.mp4"]}).to_parquet(tmp_path / "manifest.parquet")
    with pytest.raises(FaceforgeError, match="required column 'label'"):
        data.load_manifest(tmp_path)


def test_paths_never_leave_the_roots(fx):
    corpus = fx / "corpus"
    for bad in ("../runs/cnn/metrics.json", "/etc/passwd", "items/../../runs/cnn/config.yaml"):
        with pytest.raises(FaceforgeError, match="escapes|relative"):
            data.corpus_file(corpus, bad)
    with pytest.raises(FaceforgeError, match="escapes"):
        runs.run_file(fx / "runs", "../corpus/manifest.parquet")
    with pytest.raises(FaceforgeError, match="escapes"):
        data.load_landmarks(corpus, {"landmarks_path": "../../x.npy"})
    assert data.corpus_file(corpus, "items/real_d0_a.mp4").is_file()


def test_thumbnail_and_playable_made_once(fx, tmp_path):
    df = data.load_manifest(fx / "corpus")
    row = data.get_row(df, "fewshot_d0_by_d3_raw")
    thumb = media.thumbnail(fx / "corpus", row, tmp_path, size=32)
    first = thumb.stat().st_mtime_ns
    assert media.thumbnail(fx / "corpus", row, tmp_path, size=32).stat().st_mtime_ns == first
    from PIL import Image

    assert Image.open(thumb).size == (32, 32)
    play = media.playable_video(fx / "corpus", row, tmp_path)
    frames = media.read_frames(play)
    assert frames.shape == (4, 256, 256, 3)  # 48 px upscaled to MIN_PLAY_SIDE, 4 frames
    import av

    with av.open(str(play)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"  # browsers can play it
    drawn = media.playable_video(fx / "corpus", row, tmp_path, landmarks=True)
    assert drawn != play and drawn.name.endswith("_lm.mp4")
    lm_frames = media.read_frames(drawn)
    greener = (lm_frames[..., 1].astype(int) - lm_frames[..., 0]) > 150  # the green contour pixels
    assert greener.sum() > 4 * 300 and ((frames[..., 1].astype(int) - frames[..., 0]) > 150).sum() < greener.sum() / 10


def test_landmark_overlay_draws_green_lines(fx):
    df = data.load_manifest(fx / "corpus")
    row = data.get_row(df, "real_d3_a")
    lm = data.load_landmarks(fx / "corpus", row)
    assert lm.shape == (4, 68, 2) and lm.dtype == np.float32
    frame = np.zeros((48, 48, 3), np.uint8)
    view = media.frame_view(frame, lm[0])
    assert view.shape == (288, 288, 3)
    green = (view[..., 1] > 200) & (view[..., 0] < 60)
    assert green.sum() > 500  # the 68-point contours are drawn
    assert media.frame_view(frame).max() == 0


def test_related_items(fx):
    df = data.load_manifest(fx / "corpus")
    rel = data.related_items(df, data.get_row(df, "fewshot_d0_by_d3_c23"))
    assert set(rel["source"]["item_id"]) == {"real_d0_a", "real_d0_b"}
    assert set(rel["driver"]["item_id"]) == {"real_d3_a", "real_d3_b"}
    assert rel["variants"]["item_id"].tolist() == ["fewshot_d0_by_d3_raw"]


def test_10k_manifest_loads_and_filters_fast(fx, tmp_path):
    big = synthetic_manifest(10_000, data.load_manifest(fx / "corpus"))
    big.to_parquet(tmp_path / "manifest.parquet", index=False)
    t0 = time.perf_counter()
    df = data.load_manifest(tmp_path)
    shown = df.apply(data.display_values)
    hit = data.apply_filters(shown, {"label": ["fake"], "generator": ["warp"]}, {"item_id": "d3"})
    kinds = data.filter_kinds(df)
    elapsed = time.perf_counter() - t0
    assert len(df) == 10_000
    # 4 of the 18 template rows match; 10,000 = 555 x 18 + 10 and 2 matches fall in the first 10
    assert len(hit) == 555 * 4 + 2
    assert kinds["item_id"] == "text" and kinds["label"] == "choice"
    assert elapsed < 5.0, f"10k manifest load + filter took {elapsed:.2f} s"


# ---------------------------------------------------------------- runs
def test_runs_metrics_cross_matrix_and_worst(fx):
    found = runs.find_runs(fx / "runs")
    assert [r.name for r in found] == ["cnn"] and found[0].evals == ("test",)
    table = runs.metrics_table(found)
    assert table["eval"].tolist() == ["val", "test"] and table.loc[0, "auc"] == pytest.approx(0.9)
    df = data.load_manifest(fx / "corpus")
    merged = runs.with_truth(runs.load_scores(found[0], "test"), df)
    assert len(merged) == 18
    m = runs.cross_matrix(merged, "generator", "compression")
    assert list(m.index) == ["fewshot", "warp"] and list(m.columns) == ["c23", "raw"]
    # compressed warp fakes (score ~0.3) vs reals (~0.2, one at 0.93): 3 fakes x 6 reals
    fake = merged[(merged["generator"] == "warp") & (merged["compression"] == "c23")]["score"].to_numpy()
    real = merged[merged["y"] == 0]["score"].to_numpy()
    expected = np.mean([(f > r) + 0.5 * (f == r) for f in fake for r in real])
    assert m.loc["warp", "c23"] == pytest.approx(expected)
    fp, fn = runs.worst_errors(merged, k=5)
    assert fp["item_id"].tolist() == ["real_d0_a"] and fp["score"].iloc[0] == pytest.approx(0.93)
    assert set(fn["generator"]) == {"warp"} and fn["score"].is_monotonic_increasing
    by = runs.eval_breakdowns(found[0], "test")["generator"].set_index("generator")
    assert by.loc["warp", "n_fake"] == 6 and by.loc["fewshot", "auc"] > by.loc["warp", "auc"]
    frames = runs.item_frame_scores(found, "real_d0_a")
    assert len(frames) == 4 and frames["series"].unique().tolist() == ["cnn/test"]


def test_score_columns_normalized():
    raw = pd.DataFrame({"path": ["a/x.mp4", "a/y.mp4"], "frame_index": [0, 1], "p_fake": [0.1, 0.9],
                        "label": ["real", "fake"]})
    out = runs.normalize_scores(raw)
    assert out["item_id"].tolist() == ["x", "y"] and out["y"].tolist() == [0, 1]
    assert out["frame"].tolist() == [0, 1]
    with pytest.raises(FaceforgeError, match="score column"):
        runs.normalize_scores(pd.DataFrame({"item_id": ["a"]}))


def test_study_matrices_and_empty_runs(fx, tmp_path):
    [(title, table)] = runs.study_matrices(fx / "results")
    assert title == "detect_cross: auc" and table.loc["warp", "fewshot"] == pytest.approx(0.64)
    [(title, curve)] = runs.study_curves(fx / "results")
    assert title == "detect_cross: robustness.jpeg_quality" and curve["level"].tolist() == ["(none)", "70", "30"]
    assert runs.find_runs(tmp_path) == [] and runs.find_runs(None) == []
    [single] = runs.find_runs(fx / "runs" / "cnn")  # --runs may name one run folder directly
    assert single.name == "." and runs.run_file(fx / "runs" / "cnn", "eval/test/roc.png").is_file()
    assert runs.study_matrices(tmp_path) == []


def test_study_matrix_cells_may_be_metric_dicts(tmp_path):
    from core.common import write_json_atomic

    # the layout of benchmarks/detect_studies.py: {train: {test: {"auc": ..., "n": ...}}}, None = empty cell
    write_json_atomic(tmp_path / "detect_studies.json", {"detectors": {"frequency": {
        "cross_compression": {"raw": {"raw": {"auc": 0.99, "n": 10}, "c40": {"auc": 0.61, "n": 10}},
                              "c40": {"raw": {"auc": None, "n": 0, "error": "no items"}, "c40": {"auc": 0.9, "n": 10}}},
        "robustness": {"curves": {"blur_sigma": [{"level": 0.0, "auc": 0.9}, {"level": 2.0, "auc": 0.7}]}}}}})
    [(title, table)] = runs.study_matrices(tmp_path)
    assert title == "detect_studies: detectors.frequency.cross_compression"
    assert table.loc["raw", "c40"] == pytest.approx(0.61) and np.isnan(table.loc["c40", "raw"])
    [(title, curve)] = runs.study_curves(tmp_path)
    assert title.endswith("robustness.curves.blur_sigma") and curve["auc"].tolist() == [0.9, 0.7]
    assert curve["level"].tolist() == ["0", "2"]


def test_provenance_verdict_of_an_unsigned_item(fx):
    pytest.importorskip("provenance.api")
    out = checks.provenance_verdict(fx / "corpus" / "items" / "real_d0_a.mp4", fx / "corpus")
    assert out["available"] is True, out.get("reason")
    assert out["verdict"] == "none"  # neither a C2PA manifest nor a watermark


def test_provenance_unavailable_is_reported(fx, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "provenance.api", None)  # import fails
    out = checks.provenance_verdict(fx / "corpus" / "items" / "real_d0_a.mp4", fx / "corpus")
    assert out["available"] is False and "unavailable" in out["reason"]


def test_check_finds_a_files_faces_once_for_every_detector(fx, monkeypatch):
    """Check a file: two runs and the default detector, one faces cache -> the faces are found once."""
    from types import SimpleNamespace

    score = pytest.importorskip("detect.score")
    found = []

    def faces(path, size, mode, max_frames, every, backend):
        found.append(path)
        return np.zeros((2, size, size, 3), np.uint8), None, np.ones(2, bool), np.arange(2)  # 2 frames

    def load_run(run=None):
        return SimpleNamespace(path=run, cfg=SimpleNamespace(detector="stub", aggregate="mean"), metrics={},
                               detector=SimpleNamespace(score_clip=lambda frames, lm: np.array([0.2, 0.8])),
                               threshold={"video": 0.5}, crop_resolution=32)

    monkeypatch.setattr(score, "_faces", faces)
    monkeypatch.setattr(score, "load_run", load_run)
    item = fx / "corpus" / "items" / "real_d0_a.mp4"
    two_runs = [SimpleNamespace(name=n, path=fx / n) for n in ("a", "b")]
    cache: dict = {}
    table, problems = checks.score_with_runs(two_runs, item, faces_cache=cache)
    default = checks.score_with_default(item, faces_cache=cache)
    assert problems == [] and table["run"].tolist() == ["a", "b"] and table["score"].tolist() == [0.5, 0.5]
    assert default["available"] and default["row"]["score"] == 0.5 and default["row"]["n_valid"] == 2
    assert found == [item]                                        # once, for three detectors
    checks.score_with_runs(two_runs, item)
    checks.score_with_default(item)
    assert len(found) == 4                                        # without the cache: once per detector


# ---------------------------------------------------------------- review
def test_wilson_interval_hand_values():
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert all(np.isnan(wilson_interval(0, 0)))


def test_review_store_persists_and_exports(tmp_path):
    db = tmp_path / "review.sqlite"
    store = ReviewStore(db)
    store.add_label("alice", "a", "fake", "mouth blur")
    store.add_label("alice", "a", "real")  # a later label wins
    store.add_label("bob", "a", "unsure")
    again = ReviewStore(db)  # a new process/rerun sees the same labels
    assert again.label_for("alice", "a")["label"] == "real"
    assert len(again.labels(latest=False)) == 3 and len(again.labels()) == 2
    n = again.export_csv(tmp_path / "labels.csv")
    csv = pd.read_csv(tmp_path / "labels.csv")
    assert n == 2 and set(csv.columns) == {"reviewer", "item_id", "label", "note", "created_at"}
    with pytest.raises(FaceforgeError, match="label must be one of"):
        store.add_label("alice", "a", "maybe")
    with pytest.raises(FaceforgeError, match="reviewer name"):
        store.add_label("  ", "a", "fake")
    (tmp_path / "bad.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(FaceforgeError, match="unusable"):
        ReviewStore(tmp_path / "bad.sqlite")


def test_blind_order_is_fixed_per_reviewer():
    from dashboard.review import blind_order

    ids = [f"fake_{i}" for i in range(20)] + [f"real_{i}" for i in range(20)]
    a = blind_order(ids, "alice")
    assert a == blind_order(ids, "alice") and sorted(a) == sorted(ids)
    assert a != blind_order(ids, "bob") and a[:20] != ids[:20]


def test_agreement_kappa_hand_values():
    manifest = pd.DataFrame({"item_id": list("abcd"), "label": ["real", "real", "fake", "fake"]})
    labels = pd.DataFrame({"reviewer": ["r1"] * 4 + ["r2"] * 4, "item_id": list("abcd") * 2,
                           "label": ["real", "fake", "fake", "fake", "real", "fake", "fake", "unsure"]})
    truth = agreement_with_truth(labels, manifest).set_index("reviewer")
    # r1: po = 3/4, pe = .5*.25 + .5*.75 = .5 -> kappa = .5
    assert truth.loc["r1", "accuracy"] == pytest.approx(0.75) and truth.loc["r1", "kappa"] == pytest.approx(0.5)
    assert truth.loc["r2", "n_decided"] == 3
    pairs = inter_reviewer_agreement(labels)
    assert pairs.loc[0, "n_common"] == 4 and pairs.loc[0, "agreement"] == pytest.approx(0.75)
    # 3x3 table: po = .75, pe = (1/4*1/4) + (3/4*2/4) + 0 = .4375 -> kappa = .3125/.5625
    assert pairs.loc[0, "kappa"] == pytest.approx(0.3125 / 0.5625)


def test_triplets_and_user_metric(fx, tmp_path):
    df = data.load_manifest(fx / "corpus")
    rng = np.random.default_rng(0)
    seen_positions = set()
    for _ in range(12):
        t = make_triplet(df, rng, condition={"generator": "fewshot", "mode": "ft", "T": 8})
        fake_row = data.get_row(df, t.fake[0])
        assert fake_row["label"] == "fake" and fake_row["generator"] == "fewshot"
        assert fake_row["compression"] == "raw"
        for item, frame in t.reals:
            real = data.get_row(df, item)
            assert real["label"] == "real" and real["source_identity"] == t.identity
            assert 0 <= frame < real["n_frames"]
        assert sorted(t.order) == [0, 1, 2] and t.shown[t.fake_position] == t.fake
        seen_positions.add(t.fake_position)
    assert seen_positions == {0, 1, 2}  # the fake is not always in the same place
    with pytest.raises(FaceforgeError, match="no fake item"):
        make_triplet(df, rng, condition={"generator": "nope"})

    store = ReviewStore(tmp_path / "r.sqlite")
    t = Triplet("d0", ("f", 0), (("r1", 0), ("r2", 1)), (1, 0, 2), "fewshot", "ft", "8")
    assert t.fake_position == 1
    assert store.add_trial("alice", t, 1) is True
    assert store.add_trial("alice", t, 0) is False
    t2 = Triplet("d0", ("w", 0), (("r1", 0), ("r2", 1)), (0, 1, 2), "warp", "none", "1")
    for pick in (0, 0, 0, 2):
        store.add_trial("bob", t2, pick)
    table = user_metric(store.trials()).set_index("generator")
    assert table.loc["fewshot", "n"] == 2 and table.loc["fewshot", "user"] == pytest.approx(0.5)
    assert table.loc["warp", "correct"] == 3 and table.loc["warp", "user"] == pytest.approx(0.75)
    lo, hi = wilson_interval(3, 4)
    assert table.loc["warp", "ci_low"] == pytest.approx(lo) and table.loc["warp", "ci_high"] == pytest.approx(hi)
    assert table.loc["all", "n"] == 6 and table.loc["all", "correct"] == 4
    with sqlite3.connect(tmp_path / "r.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 6


# ---------------------------------------------------------------- serve command
def _serve_args(**kw):
    base = dict(corpus=None, runs=None, results=None, db=None, cache=None, host="127.0.0.1", port=8501,
                max_upload_mb=50, print_command=True)
    base.update(kw)
    return argparse.Namespace(**base)


def test_serve_command_line(fx, tmp_path):
    from dashboard.commands.serve import build_command

    cmd = build_command(_serve_args(corpus=fx / "corpus", runs=fx / "runs"))
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("dashboard/app.py")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    after = cmd[cmd.index("--") + 1:]
    assert after[after.index("--corpus") + 1] == str((fx / "corpus").resolve())
    assert after[after.index("--runs") + 1] == str((fx / "runs").resolve())
    cfg = data.parse_app_args(after)
    assert cfg.corpus == (fx / "corpus").resolve() and cfg.runs == (fx / "runs").resolve()
    assert cfg.review_db == (fx / "corpus").resolve() / "review.sqlite"
    with pytest.raises(FaceforgeError, match="corpus manifest not found"):
        build_command(_serve_args(corpus=tmp_path))
    with pytest.raises(FaceforgeError, match="runs folder not found"):
        build_command(_serve_args(corpus=fx / "corpus", runs=tmp_path / "nope"))


def test_cli_error_exit(tmp_path, capsys):
    from forge.cli import main

    assert main(["dashboard", "--corpus", str(tmp_path)]) == 2
    assert "corpus manifest not found" in capsys.readouterr().err


def test_metrics_table_keeps_run_names(fx, tmp_path):
    # detect's eval metrics.json carries its own "run" (a path): the table's run column stays the run name
    shutil.copytree(fx / "runs", tmp_path / "runs")
    from core.common import write_json_atomic

    write_json_atomic(tmp_path / "runs" / "cnn" / "eval" / "test" / "metrics.json",
                      {"run": "/abs/path/cnn", "video": {"auc": 0.7}})
    table = runs.metrics_table(runs.find_runs(tmp_path / "runs"))
    assert table["run"].tolist() == ["cnn", "cnn"] and table.loc[1, "video.auc"] == 0.7


def test_jpeg_folder_items_read_and_play(fx, tmp_path):
    from PIL import Image

    corpus = tmp_path / "c"
    frames = media.read_frames(fx / "corpus" / "items" / "real_d0_a.mp4")  # (4, 48, 48, 3)
    (corpus / "items" / "x_jpeg").mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(corpus / "items" / "x_jpeg" / f"{i:04d}.jpg", quality=90)
    back = media.read_frames(corpus / "items" / "x_jpeg")
    assert back.shape == frames.shape and np.abs(back.astype(int) - frames).mean() < 6
    row = {"item_id": "x-jpeg", "path": "items/x_jpeg", "fps": 25.0}
    assert media.read_frames(media.playable_video(corpus, row, tmp_path / "cache")).shape == (4, 256, 256, 3)
    with pytest.raises(FaceforgeError, match="no image frames"):
        (corpus / "items" / "empty").mkdir()
        media.read_frames(corpus / "items" / "empty")
