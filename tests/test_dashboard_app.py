"""Every dashboard page through streamlit.testing.v1.AppTest, asserting on what is shown."""

from __future__ import annotations

import shutil
import sys
import time
import types
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("streamlit")
import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.fixture import make_fixture_tree, synthetic_manifest  # noqa: E402
from dashboard.review import ReviewStore  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
TIMEOUT = 120  # seconds per script run (2 shared cores)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root = make_fixture_tree(tmp_path_factory.mktemp("dashapp"))
    (root / "empty").mkdir()
    return root


@pytest.fixture
def open_app(fx, tmp_path, monkeypatch):
    """open_app(page, **roots) -> AppTest after its first run on ``page`` (roots default to the fixture)."""
    st.cache_data.clear()

    def _open(page: str, corpus=None, runs="default", results=None, extra=(), query=None) -> AppTest:
        argv = ["app.py", "--corpus", str(corpus or fx / "corpus"), "--cache", str(tmp_path / "cache"),
                "--db", str(tmp_path / "review.sqlite"), "--results", str(results or fx / "results"), *extra]
        if runs == "default":
            runs = fx / "runs"
        if runs is not None:
            argv += ["--runs", str(runs)]
        monkeypatch.setattr(sys, "argv", argv)
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        if page != "views/corpus.py":
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


@pytest.fixture
def fake_provenance(monkeypatch):
    mod = types.ModuleType("provenance.api")
    mod.calls = []

    def verify_file(path, *, trust_anchors=None, store=None):
        mod.calls.append(Path(path))
        return {"verdict": "trusted", "reason": "signed by test", "watermark": {"payload": "00000000deadbeef", "confidence": 0.987, "p_value": 1e-9},
                "manifest": {"actions": ["created"], "generation": {"model": "fewshot"}},
                "validation": {"state": "Trusted", "failures": []}}

    mod.verify_file = verify_file
    monkeypatch.setitem(sys.modules, "provenance.api", mod)
    return mod


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


# ---------------------------------------------------------------- Corpus
def test_corpus_page_counts_filters_thumbnails(open_app):
    at = open_app("views/corpus.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Items"] == "18" and metrics["Fake"] == "12" and metrics["Identities"] == "3"
    assert metrics["Skipped sources"] == "1"
    assert len(at.get("vega_lite_chart")) == 6  # counts by split/label/generator/mode/T/compression
    assert "18 of 18 items match" in _texts(at.caption)
    assert len(at.image) == 18 and len(at.get("page_link")) == 18
    assert len(at.multiselect) + len(at.text_input) == 27  # a filter on every manifest column

    at.multiselect(key="f_label").set_value(["fake"]).run()
    at.multiselect(key="f_compression").set_value(["c23"]).run()
    assert "6 of 18 items match" in _texts(at.caption)
    assert len(at.image) == 6
    assert set(at.dataframe[-1].value["item_id"]) == {f"{g}_{s}_by_{d}_c23" for g in ("fewshot", "warp")
                                                      for s, d in (("d0", "d3"), ("d3", "d6"), ("d6", "d0"))}


def test_corpus_page_10k_items_is_paged_and_fast(open_app, fx, tmp_path):
    big = tmp_path / "big"
    shutil.copytree(fx / "corpus", big)
    synthetic_manifest(10_000, pd.read_parquet(fx / "corpus" / "manifest.parquet")).to_parquet(
        big / "manifest.parquet", index=False)
    t0 = time.perf_counter()
    at = open_app("views/corpus.py", corpus=big)
    first = time.perf_counter() - t0
    assert {m.label: m.value for m in at.metric}["Items"] == "10,000"
    assert len(at.image) == 24  # one page of thumbnails, not 10,000
    at.number_input(key="grid_page").set_value(417).run()  # the last page: 10,000 - 416 x 24 = 16
    assert len(at.image) == 16
    t1 = time.perf_counter()
    at.multiselect(key="f_generator").set_value(["warp"]).run()
    rerun = time.perf_counter() - t1
    assert not at.exception
    assert "3,332 of 10,000 items match" in _texts(at.caption)  # 555 x 6 + 2 (see test_dashboard_data)
    assert len(at.image) == 24
    print(f"10k manifest: first run {first:.2f} s, filtered rerun {rerun:.2f} s")
    assert first < 60 and rerun < 20

    # the other manifest-wide pages stay usable at 10k items
    at.switch_page("views/item.py").run()
    assert at.text_input(key="item_text").value == "real_d0_a_00000"  # a text box, not a 10k-option list
    t2 = time.perf_counter()
    at.switch_page("views/blind.py").run()
    at.text_input(key="reviewer_blind").input("dora").run()
    assert not at.exception and [i.captions[0] for i in at.image] == ["A", "B", "C"]
    at.switch_page("views/review.py").run()  # the reviewer name carries over from the Blind study page
    assert not at.exception and len(at.selectbox(key="review_item").options) == 10_000
    assert time.perf_counter() - t2 < 60


def test_corpus_empty_state(open_app, fx):
    at = open_app("views/corpus.py", corpus=fx / "empty")
    assert any("Corpus unavailable" in e for e in _texts(at.error))


# ---------------------------------------------------------------- Item
def test_item_page_side_by_side_scores_provenance(open_app, fake_provenance):
    at = open_app("views/item.py", query={"item": "fewshot_d0_by_d3_raw"})
    header = " ".join(_texts(at.markdown))
    assert "fewshot_d0_by_d3_raw" in header and "mode ft" in header and "T=8" in header
    assert len(at.get("video")) == 3  # source | driver | render
    assert _texts(at.caption)[:3] == ["source · d0", "driver · d3", "render"]
    assert len(at.image) == 3
    assert len(at.get("vega_lite_chart")) == 1  # per-frame detector scores
    assert any("`trusted`" in m for m in _texts(at.markdown))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Watermark payload"] == "00000000deadbeef" and metrics["Watermark confidence"] == "0.987"
    assert fake_provenance.calls and fake_provenance.calls[0].name == "fewshot_d0_by_d3_raw.mp4"
    assert "decoded payload matches the manifest's (00000000deadbeef)" in _texts(at.caption)
    assert [p.label for p in at.get("page_link")] == ["fewshot_d0_by_d3_c23 (c23)"]
    meta = at.dataframe[-1].value.set_index("field")["value"]
    assert meta["generator"] == "fewshot" and meta["source_identity"] == "d0"

    at.toggle(key="overlay").set_value(True).run()
    assert not at.exception and len(at.image) == 3
    assert not any("no landmarks" in c for c in _texts(at.caption))
    at.slider(key="frame").set_value(3).run()
    assert [i.captions[0] for i in at.image] == ["source · d0 · frame 3", "driver · d3 · frame 3", "render · frame 3"]


def test_item_page_without_provenance_or_runs(open_app, monkeypatch):
    monkeypatch.setitem(sys.modules, "provenance.api", None)  # the package is missing
    at = open_app("views/item.py", runs=None, query={"item": "real_d3_a"})
    assert any(w.startswith("Provenance unavailable") for w in _texts(at.warning))
    assert any("No detector runs" in i for i in _texts(at.info))
    assert len(at.get("vega_lite_chart")) == 0


def test_item_outside_the_corpus_is_never_served(open_app, fx, tmp_path):
    evil = tmp_path / "evil"
    shutil.copytree(fx / "corpus", evil)
    (tmp_path / "secret.mp4").write_bytes((fx / "corpus" / "items" / "real_d0_a.mp4").read_bytes())
    df = pd.read_parquet(evil / "manifest.parquet")
    df.loc[df["item_id"] == "warp_d0_by_d3_raw", ["path", "landmarks_path"]] = ["../secret.mp4", "../../x.npy"]
    df.to_parquet(evil / "manifest.parquet", index=False)
    at = open_app("views/item.py", corpus=evil, query={"item": "warp_d0_by_d3_raw"})
    warnings = _texts(at.warning)
    assert any("cannot show warp_d0_by_d3_raw" in w and "escapes its root" in w for w in warnings)
    assert len(at.get("video")) == 2  # source and driver only: the escaping render is not served
    assert any("escapes its root" in e for e in _texts(at.error) + warnings)


# ---------------------------------------------------------------- Detectors
def test_detectors_page(open_app):
    at = open_app("views/detectors.py")
    table = at.dataframe[0].value
    assert table["eval"].tolist() == ["val", "test"] and table["auc"].iloc[0] == pytest.approx(0.9)
    assert len(at.image) == 3 + 1 + 3  # roc, pr, reliability + a thumbnail per worst mistake
    assert len(at.get("vega_lite_chart")) == 4  # gen x compression, gen x mode, the study matrix + its curve
    links = [p.label for p in at.get("page_link")]
    assert links[0].startswith("real_d0_a · 0.930")  # the confident false positive
    assert sum("warp" in label for label in links[1:]) == 3  # compressed warp fakes missed
    assert "18 scored items matched to the manifest (0 unmatched)" in _texts(at.caption)


def test_detectors_empty_state(open_app, fx):
    at = open_app("views/detectors.py", runs=None, results=fx / "empty")
    infos = " ".join(_texts(at.info))
    assert "No detector runs found" in infos and "No study results" in infos
    assert len(at.dataframe) == 0


# ---------------------------------------------------------------- Check a file
def test_check_a_file(open_app, fx, fake_provenance, monkeypatch):
    det = types.ModuleType("detect")
    det.seen, det.caches = [], []

    def score_files(run, files, faces="detect", progress=True, faces_cache=None):
        det.faces = faces
        det.caches.append(faces_cache)
        det.seen.append([Path(f) for f in files])
        assert all(Path(f).exists() for f in files)
        return pd.DataFrame({"path": [str(f) for f in files], "score": [0.75] * len(files)})

    det.score_files = score_files
    monkeypatch.setitem(sys.modules, "detect", det)
    at = open_app("views/check.py")
    assert "No file uploaded yet." in _texts(at.info)
    payload = (fx / "corpus" / "items" / "real_d3_a.mp4").read_bytes()
    at.file_uploader[0].upload("../../evil name.mp4", payload, "video/mp4").run()
    assert not at.exception
    assert any("`trusted`" in m for m in _texts(at.markdown))
    scores = at.dataframe[0].value
    assert scores["score"].tolist() == [0.75] and scores["run"].tolist() == ["cnn"]
    checked = det.seen[0][0]
    assert checked.name == "evil_name.mp4" and checked.parent.name.startswith("faceforge-check-")
    assert not checked.exists()  # the temp folder is gone after the checks
    assert det.faces == "detect" and isinstance(det.caches[0], dict)   # one faces cache for every detector
    faces = {m.label: m.value for m in at.metric}.get("Frames with a face")
    if faces is not None:  # forge.data.clip present: faces counted on the 4-frame clip
        n_faces, n_frames = (int(x) for x in faces.split(" / "))
        assert n_frames == 4 and 0 <= n_faces <= 4
    else:  # no face finder, or no face found on the tiny crop
        assert any("unavailable" in w for w in _texts(at.warning)) or any("No face found" in i for i in _texts(at.info))

    at.toggle(key="is_crop").set_value(True).run()  # a face crop: scored as is, checked again
    assert det.faces == "none" and len(det.seen) == 2


def test_check_a_file_size_limit(open_app):
    at = open_app("views/check.py", extra=("--max-upload-mb", "1"))
    at.file_uploader[0].upload("big.mp4", b"\0" * (1 << 20) + b"x" * 1000, "video/mp4").run()
    assert any("the limit is 1 MB" in e for e in _texts(at.error))
    assert not any(s.value == "Provenance" for s in at.subheader)


# ---------------------------------------------------------------- Review
def test_review_label_persists_across_reruns(open_app, tmp_path, fx):
    at = open_app("views/review.py")
    assert "Enter your name to start labelling." in _texts(at.info)
    at.text_input(key="reviewer_review").input("alice").run()
    options = at.selectbox(key="review_item").options
    assert len(options) == 18 and all(o.startswith("item #") for o in options)  # ids hidden: they reveal labels
    at.selectbox(key="review_item").select("warp_d3_by_d6_raw").run()
    at.radio(key="label_choice").set_value("fake")
    at.text_input(key="label_note").input("jaw jitter")
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert any(m.startswith("Your latest label: **fake**") and "jaw jitter" in m for m in _texts(at.markdown))

    at.run()  # a plain rerun
    assert any(m.startswith("Your latest label: **fake**") for m in _texts(at.markdown))
    labels = at.dataframe[0].value
    assert labels[["reviewer", "item_id", "label", "note"]].values.tolist() == [
        ["alice", "warp_d3_by_d6_raw", "fake", "jaw jitter"]]
    truth = at.dataframe[1].value
    assert truth.loc[0, "accuracy"] == 1.0 and truth.loc[0, "n"] == 1
    assert len(at.get("download_button")) == 1

    assert "1 of 18 items labelled by alice" in _texts(at.caption)
    at.button(key="next_todo").click().run()  # jumps to the first unlabelled item in alice's order
    assert at.selectbox(key="review_item").value != "warp_d3_by_d6_raw"
    assert not any(m.startswith("Your latest label") for m in _texts(at.markdown))

    ReviewStore(tmp_path / "review.sqlite").add_label("bob", "warp_d3_by_d6_raw", "real")
    again = open_app("views/review.py")  # a new session sees the stored labels
    again.text_input(key="reviewer_review").input("alice").run()
    again.selectbox(key="review_item").select("warp_d3_by_d6_raw").run()
    assert any(m.startswith("Your latest label: **fake**") for m in _texts(again.markdown))
    pairs = again.dataframe[-1].value
    assert pairs.loc[0, "reviewer_a"] == "alice" and pairs.loc[0, "agreement"] == 0.0


# ---------------------------------------------------------------- Blind study
def test_blind_study_records_picks_and_user_metric(open_app, tmp_path):
    at = open_app("views/blind.py")
    assert "No answers yet." in _texts(at.info)
    at.text_input(key="reviewer_blind").input("carol").run()
    assert [i.captions[0] for i in at.image] == ["A", "B", "C"]
    # no metadata visible: no item ids, generators or labels on the page
    visible = " ".join(_texts(at.markdown) + _texts(at.caption))
    assert "fewshot_" not in visible and "warp_" not in visible and "real_" not in visible

    at.selectbox(key="condition").select("warp / (none) / 1").run()
    triplet = at.session_state["_triplet"]
    assert triplet.generator == "warp"
    at.button(key=f"pick_{triplet.fake_position}").click().run()
    assert any("correct" in s for s in _texts(at.success))
    wrong = (at.session_state["_triplet"].fake_position + 1) % 3
    at.button(key=f"pick_{wrong}").click().run()
    assert any("wrong" in e for e in _texts(at.error))

    trials = ReviewStore(tmp_path / "review.sqlite").trials()
    assert trials["correct"].tolist() == [1, 0] and set(trials["generator"]) == {"warp"}
    table = at.dataframe[0].value.set_index("generator")
    assert table.loc["warp", "n"] == 2 and table.loc["warp", "user"] == 0.5
    assert 0.0 < table.loc["warp", "ci_low"] < 0.5 < table.loc["warp", "ci_high"] < 1.0
    assert len(at.get("vega_lite_chart")) == 1  # USER with its interval per condition


@pytest.mark.parametrize("page", ["views/corpus.py", "views/item.py", "views/detectors.py", "views/check.py",
                                  "views/review.py", "views/blind.py"])
def test_every_page_has_an_empty_state_without_roots(page, monkeypatch, tmp_path):
    st.cache_data.clear()
    monkeypatch.setattr(sys, "argv", ["app.py", "--results", str(tmp_path), "--cache", str(tmp_path / "c")])
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page(page).run()
    assert not at.exception and not at.error
    assert at.info, "an empty state explains what to do"
