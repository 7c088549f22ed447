"""benchmarks/detect_studies: cells, family cells and the report's marking of small cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def test_cells_mark_small_counts_and_families():
    from benchmarks.detect_studies import MIN_CELL, family_cells, family_of

    df = pd.DataFrame({"generator": ["real", "fewshot", "fewshot", "warp"], "mode": [None, "ff", "ft", None]})
    assert family_of(df).tolist() == ["real", "FF", "FT", "warp"]
    n = MIN_CELL
    videos = pd.DataFrame({"label": [0] * n + [1] * n + [1] * 3, "score": np.r_[np.zeros(n), np.ones(n), [0.0] * 3],
                           "family": ["real"] * n + ["FF"] * n + ["warp"] * 3,
                           "source_identity": [f"p{i % 7}" for i in range(2 * n + 3)]})
    cells = family_cells(videos)
    assert cells["FF"]["auc"] == 1.0 and not cells["FF"]["small"] and cells["FF"]["n"] == 2 * n
    assert cells["warp"]["auc"] == pytest.approx(0.5) and cells["warp"]["small"] and cells["warp"]["n_fake"] == 3
    assert cells["all"]["n"] == 2 * n + 3 and "FT" not in cells


def test_markdown_marks_small_cells():
    from benchmarks.detect_studies_report import fmt, markdown

    big = {"auc": 0.9, "auc_ci95": [0.8, 0.95], "n": 120, "small": False}
    small = {"auc": 0.7, "auc_ci95": [0.5, 0.9], "n": 29, "small": True}
    assert fmt(big) == "0.900 [0.80, 0.95] n=120" and fmt(small).endswith("n=29*") and fmt(None) == "–"
    text = markdown({"min_cell": 50, "corpus_summary": {}, "detectors": {
        "frequency": {"cross_generator": {"all": {"all": big, "external": small}}}}})
    assert "| all | 0.900 [0.80, 0.95] n=120 | 0.700 [0.50, 0.90] n=29* |" in text


def test_markdown_reports_the_watermark_control():
    from benchmarks.detect_studies_report import markdown

    c = {"auc": 0.8, "auc_ci95": [0.7, 0.9], "n": 797, "small": False}
    ctl = {"test_reals_watermarked": {"trained_wm_reals": c, "trained_plain_reals": {**c, "auc": 0.4}},
           "test_reals_plain": {"trained_wm_reals": {**c, "auc": 0.81}, "trained_plain_reals": {**c, "auc": 1.0}}}
    text = markdown({"min_cell": 50, "corpus_summary": {}, "wm_reals": True, "note": "short run",
                     "detectors": {"dct_cnn": {"wm_control": ctl}}})
    assert "| dct_cnn | 0.800 n=797 | 0.400 n=797 | 0.810 n=797 | 1.000 n=797 |" in text
    assert "watermarked twins" in text and "Note: short run" in text


def test_default_bench_scores_only_the_shipped_talkers_gan_rows():
    from benchmarks.detect_default_bench128 import shipped_rows

    df = pd.DataFrame({"generator": ["real", "warp", "fewshot", "fewshot"],
                       "checkpoint_sha256": [None, None, "new", "old"]})
    kept, left_out = shipped_rows(df, "new")
    assert kept["generator"].tolist() == ["real", "warp", "fewshot"] and left_out == 1
    assert kept["checkpoint_sha256"].iloc[2] == "new"
