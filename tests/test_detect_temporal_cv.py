"""The person-level cross-validation of the temporal detector (benchmarks.detect_temporal_cv): folds, the
cached-feature table reproducing the detector's own scores, and the booster settings."""

from __future__ import annotations

import numpy as np

from benchmarks.detect_temporal_cv import ALLOWED, Table, aug_tag, fit_booster, person_folds, video_scores
from detect.config import DetectConfig
from detect.detectors.temporal import HGB_DEFAULTS, TemporalBoosting, hgb_params


def test_hgb_params_default_to_the_shipped_settings_and_take_overrides():
    assert hgb_params({}, 10_000) == HGB_DEFAULTS
    p = hgb_params({"max_iter": "300", "max_depth": None, "min_samples_leaf": 200}, 1000)
    assert p["max_iter"] == 300 and p["max_depth"] is None
    assert p["min_samples_leaf"] == 50                      # capped at rows // 20
    assert hgb_params({}, 10)["min_samples_leaf"] == 2


def test_person_folds_spread_each_dataset():
    people = [f"grid_{i}" for i in range(5)] + [f"vox2_{i}" for i in range(5)] + ["d0", "d1", "d2"]
    folds = person_folds(people, 5)
    assert set(folds) == set(people) and set(folds.values()) == set(range(5))
    for ds in ("grid", "vox2"):
        assert sorted(f for p, f in folds.items() if p.startswith(ds)) == [0, 1, 2, 3, 4]


def test_aug_tag_reads_the_copy_ids():
    assert [aug_tag(s) for s in ("a", "a@crf30", "a@x0.5", "a@x0.5@crf35")] == ["", "crf", "scale", "scale+crf"]
    assert ALLOWED["none"] == {""} and "scale+crf" in ALLOWED["crf+scale"]


def _person(det, rng, n_items: int, n_frames: int) -> dict:
    x, item, weight, labels = [], [], [], []
    for i in range(n_items):
        label = i % 2
        frames = (rng.random((n_frames, 24, 24, 3)) * (60 + 120 * label)).astype(np.uint8)
        feats, members = det.features(frames, None)
        x.append(feats)
        item += [i] * len(feats)
        weight.append((members / members.sum(0)).sum(1) / n_frames)
        labels.append(label)
    return {"x": np.concatenate(x), "item": np.array(item), "weight": np.concatenate(weight),
            "item_id": np.array([f"v{i}" for i in range(n_items)]), "label": np.array(labels),
            "compression": np.array(["c23"] * n_items), "tag": np.array([""] * n_items)}


def test_table_video_scores_equal_the_detectors_own(tmp_path):
    """A booster fitted on the cached rows, saved as a detector run, scores a clip exactly as the table says."""
    rng = np.random.default_rng(0)
    cfg = DetectConfig(detector="temporal", window=8, extra={"spatial": True})
    det = TemporalBoosting(cfg)
    table = Table({"p0": _person(det, rng, 6, 12), "p1": _person(det, rng, 6, 10)})
    rows = table.rows(["p0", "p1"], ALLOWED["none"])
    model = fit_booster(table, rows, {**HGB_DEFAULTS, "max_iter": 5})
    det.model = model
    rng = np.random.default_rng(1)
    frames = (rng.random((10, 24, 24, 3)) * 60).astype(np.uint8)          # _person's first item (a real)
    one = Table({"q": {**_person(det, np.random.default_rng(1), 1, 10)}})
    got = video_scores(one, model, one.rows(["q"], {""}))[0]
    assert np.isclose(got, det.score_clip(frames).mean())
    assert len(np.unique(table.item)) == 12 and table.rows(["p0"], {""}).sum() == 6 * 2


def test_table_design_appends_the_motion_columns_asked_for():
    det = TemporalBoosting(DetectConfig(detector="temporal", window=8))
    person = _person(det, np.random.default_rng(2), 4, 12)
    motion = np.arange(8 * 8, dtype=np.float32).reshape(8, 8)          # 4 items x 2 windows, 8 features
    table = Table({"p": person}, {"p": motion})
    rows = table.rows(["p"], {""})
    assert table.design(rows, {}).shape == table.x.shape
    np.testing.assert_array_equal(table.design(rows, {"motion": 5})[:, -5:], motion[:, :5])
    np.testing.assert_array_equal(table.design(rows, {"motion": True})[:, -8:], motion)
