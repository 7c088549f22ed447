"""The main job end to end on a minimal setting: every stage runs, the report matches the result files,
every fake in the corpus verifies, and the provenance verdicts are the right ones."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dashboard.mainjob import QUICK, MainJobConfig, run_main_job
from dashboard.report import fmt

STAGES = ["prepare", "fit", "animate", "eval", "corpus", "detect", "provenance"]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = MainJobConfig(**QUICK)
    lines: list[str] = []
    results = run_main_job(out, cfg, progress=lines.append)
    return out, cfg, results, lines


def test_every_stage_ran_and_the_report_exists(job):
    out, _, results, lines = job
    assert list(results) == STAGES
    for name in STAGES:
        saved = json.loads((out / "stages" / f"{name}.json").read_text())
        assert saved["seconds"] >= 0
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert (out / "report.md").exists()
    assert any("faceforge dashboard --corpus" in line for line in lines)


def test_report_numbers_match_the_result_files(job):
    out, _, results, _ = job
    md = (out / "report.md").read_text()
    prep = results["prepare"]
    assert f"| {prep['n_videos']} | {prep['n_frames']} | {prep['n_valid_frames']} |" in md
    video = results["detect"]["metrics"]["video"]
    assert fmt(video["auc"]) in md
    for row in results["eval"]["summary"]:
        assert fmt(row["ssim"]) in md
    for img in ("figures/sample_frames.png",):
        assert (out / img).exists() and img in md


def test_every_fake_in_the_corpus_verifies(job):
    from provenance.api import verify_file
    from provenance.keys import CA_CERT

    out = job[0]
    corpus = out / "corpus"
    manifest = pd.read_parquet(corpus / "manifest.parquet")
    fakes = manifest[manifest.label == "fake"]
    assert len(fakes) > 0 and fakes.c2pa_signed.all()
    for row in fakes.itertuples():
        v = verify_file(corpus / row.path, trust_anchors=corpus / "keys" / CA_CERT,
                        store=corpus / "provenance.sqlite", decode_watermark=False)
        assert v["verdict"] == "trusted", (row.path, v["reason"])


def test_provenance_verdicts(job):
    verdicts = job[2]["provenance"]["verdicts"]
    assert verdicts["signed"]["verdict"] == "trusted"
    assert verdicts["reencoded"]["verdict"] == "stripped_recovered"
    assert verdicts["tampered"]["verdict"] == "tampered"


def test_rerun_resumes_without_redoing_stages(job):
    out, cfg, results, _ = job
    lines: list[str] = []
    again = run_main_job(out, cfg, progress=lines.append)
    assert all("skipped" in line for line in lines if line.startswith("["))
    assert again["detect"] == results["detect"]
