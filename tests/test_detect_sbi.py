"""detect.sbi (self-blended pseudo-fakes), Platt calibration, the SBI trainer on a tiny cache, and the
shipped default detector: real values, small inputs."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from people_cache import PeopleCache

SIZE = 64


@pytest.fixture(scope="module")
def face():
    """A real sample face crop (64 px) and its landmarks."""
    from detect.toy import template_landmarks
    from core.media import read_image
    from core.common import SAMPLE_DIR
    import cv2

    img = read_image(SAMPLE_DIR / "portraits" / "s42.jpg")
    img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img), template_landmarks(SIZE).astype(np.float32)


def test_hull_mask_is_the_filled_hull():
    from detect.sbi import hull_mask

    square = np.array([[10, 10], [30, 10], [30, 30], [10, 30], [20, 20]], np.float32)
    m = hull_mask((40, 40), square)
    assert m.dtype == np.float32 and set(np.unique(m)) == {0.0, 1.0}
    assert m[10:31, 10:31].all() and m.sum() == 21 * 21        # corners included, the inner point adds nothing


def test_self_blend_changes_only_masked_pixels_inside_the_hull(face):
    from detect.sbi import SBIConfig, face_size, hull_mask, hull_points, self_blend

    img, lm = face
    cfg = SBIConfig()
    hull = hull_mask((SIZE, SIZE), hull_points(lm, "face", cfg.forehead))
    import cv2
    # deformation + blur reach at most this far past the hull
    reach = int(np.ceil((cfg.deform + 3 * cfg.blur[1]) * face_size(lm))) + 1
    grown = cv2.dilate(hull, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    changed_any = False
    for seed in range(12):
        fake, mask = self_blend(img, lm, seed, cfg)
        assert fake.shape == img.shape and fake.dtype == np.uint8 and mask.shape == (SIZE, SIZE)
        assert 0.0 <= mask.min() and mask.max() <= 1.0 and mask.max() >= 0.25   # the smallest blend ratio
        assert not (mask[grown == 0] > 0).any()                  # the mask stays near the face hull
        assert np.array_equal(fake[mask == 0], img[mask == 0])   # untouched where the mask is 0
        changed_any |= bool((fake != img).any())
    assert changed_any


def test_self_blend_is_deterministic_with_a_seed(face):
    from detect.sbi import self_blend, self_blend_batch

    img, lm = face
    a, ma = self_blend(img, lm, 7)
    b, mb = self_blend(img, lm, 7)
    c, _ = self_blend(img, lm, 8)
    assert np.array_equal(a, b) and np.array_equal(ma, mb) and not np.array_equal(a, c)
    fakes, masks = self_blend_batch(np.stack([img, img]), np.stack([lm, lm]), 3)
    assert fakes.shape == (2, SIZE, SIZE, 3) and masks.shape == (2, SIZE, SIZE)
    assert not np.array_equal(fakes[0], fakes[1])               # one generator, two different draws


def test_self_blend_regions_and_bad_input(face):
    from detect.sbi import INNER, LOWER, hull_points

    img, lm = face
    assert np.array_equal(hull_points(lm, "inner", 0.2), lm[INNER])
    assert np.array_equal(hull_points(lm, "lower", 0.2), lm[LOWER])
    top = hull_points(lm, "face", 0.25)[17:, 1].mean()
    assert top < lm[17:27, 1].mean()                             # the forehead is raised above the brows
    from detect.sbi import self_blend
    with pytest.raises(FaceforgeError, match="uint8"):
        self_blend(img.astype(np.float32), lm)
    with pytest.raises(FaceforgeError, match="landmarks"):
        self_blend(img, lm[:10])
    with pytest.raises(FaceforgeError, match="region"):
        hull_points(lm, "ear", 0.2)


def test_platt_calibration_fits_known_logits():
    from detect.calibrate import apply_calibration, fit_platt, logit

    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(float)   # true a = 0.5, b = -1
    s = 1 / (1 + np.exp(-z))
    cal = fit_platt(y, s)
    assert cal["a"] == pytest.approx(0.5, abs=0.08) and cal["b"] == pytest.approx(-1.0, abs=0.12)
    p = apply_calibration(cal, s)
    assert np.all(np.diff(p[np.argsort(s)]) >= 0)                # the ranking is kept
    assert np.allclose(apply_calibration(None, s), s)
    assert logit([0.5])[0] == 0.0


class TinyCache(PeopleCache):
    """4 people, 5 frames each (a real face, shifted)."""

    def __init__(self, face):
        self.img, self.lm = face
        self.people = ["p_train1", "p_train2", "p_val", "p_test"]

    def frames_of(self, k):
        frames = np.stack([np.roll(self.img, k + i, axis=1) for i in range(5)])        # (5, S, S, 3)
        lm = np.stack([self.lm + [k + i, 0] for i in range(5)]).astype(np.float32)    # (5, 68, 2)
        lm[0] = np.nan                                                                 # a frame without a face
        return frames, lm


def test_sbi_training_writes_a_calibrated_run_that_scores(face, tmp_path):
    import pandas as pd

    from detect.sbi_data import load_people
    from detect.sbi_train import SBITrainConfig, train_sbi
    from detect.score import load_run, score_files
    from PIL import Image

    cache = TinyCache(face)
    assert [len(f) for f in load_people(cache, ["p_val"]).frames] == [4]             # the NaN frame is dropped
    cfg = SBITrainConfig(image_size=32, batch_size=8, steps=4, eval_every=2, val_frames=3, threads=1,
                         val_people=("p_val",), test_people=("p_test",))
    with pytest.raises(FaceforgeError, match="overlap"):
        train_sbi(cache, tmp_path / "bad", SBITrainConfig(val_people=("p_test",), test_people=("p_test",)))
    m = train_sbi(cache, tmp_path / "run", cfg, progress=False)
    assert m["done"] and m["steps"] == 4 and m["best_step"] in (2, 4) and m["n_train_videos"] == 2
    assert m["calibration"]["method"] == "platt" and m["calibration"]["a"] > 0
    assert m["val"]["video"]["n"] == 2                                                 # 1 real + 1 SBI video
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert hist["step"].tolist() == [2, 4] and (hist["train_mask"] > 0).all()        # the mask head is trained
    lr = load_run(tmp_path / "run")
    img = tmp_path / "face.png"
    Image.fromarray(face[0]).save(img)
    videos = score_files(lr, [img], faces="none", progress=False)
    row = videos.iloc[0]
    assert row["status"] == "ok" and 0 < row["score"] < 1 and row["top_frames"] == "0"
    from detect.calibrate import apply_calibration
    assert row["score"] == pytest.approx(apply_calibration(m["calibration"], [row["raw_score"]])[0])
    # a second call with a longer schedule resumes from last.pt (loaded with weights_only=True)
    m2 = train_sbi(cache, tmp_path / "run", SBITrainConfig(**{**cfg.__dict__, "steps": 6}), progress=False)
    assert m2["steps"] == 6 and pd.read_csv(tmp_path / "run" / "history.csv")["step"].tolist() == [2, 4, 6]


def test_sbi_training_fits_a_feature_detector_once(face, tmp_path):
    from detect.detectors.blendstats import N_FEATURES, frame_features
    from detect.sbi import self_blend
    from detect.sbi_train import SBITrainConfig, train_sbi

    img, lm = face
    f_real = frame_features(img, lm)
    assert f_real.shape == (N_FEATURES,) and np.isfinite(f_real).all()
    assert np.isnan(frame_features(img, None)).all()
    fake, mask = self_blend(img, lm, 0)
    assert not np.allclose(frame_features(fake, lm), f_real)      # the blend moves the statistics
    cfg = SBITrainConfig(detector="blend_stats", image_size=64, feature_pairs=24, val_frames=3, threads=1,
                         val_people=("p_val",), test_people=("p_test",), extra={"max_iter": 10})
    m = train_sbi(TinyCache(face), tmp_path / "stats", cfg, progress=False)
    assert m["done"] and m["steps"] == 1 and (tmp_path / "stats" / "model.joblib").is_file()
    assert m["params"] > 0 and np.isfinite(m["val"]["video_raw"]["auc"])


def test_shipped_default_detector_scores_a_video_without_a_model(tmp_path, sample_video, capsys):
    """`faceforge detect score FILE` with no --model: the shipped weights (<= 30 MB, with a card),
    a calibrated P(fake), a verdict and the frames that drove it, and how far to trust it (the held-out
    figures in its metrics.json, printed and kept in scores.json)."""
    import json

    from detect.default import DEFAULT_RUN, MAX_SHIPPED_MB, default_run
    from detect.score import load_run
    from forge.cli import main

    run = default_run()
    assert (run / "model.pt").stat().st_size <= MAX_SHIPPED_MB * 2**20 and (run / "README.md").is_file()
    lr = load_run(None)
    assert lr.path == DEFAULT_RUN and lr.metrics["calibration"]["method"] == "platt"
    out = tmp_path / "scores"
    assert main(["detect", "score", str(sample_video), "--max-frames", "6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "measured: video AUC 0.65 on 29 videos of 8 third-party generators" in printed, printed
    assert "0.79 (c23) / 0.63 (c40)" in printed and "not proof" in printed
    scores = json.loads((out / "scores.json").read_text())
    assert scores["measured"]["third_party"]["video_auc"] == pytest.approx(0.652)
    row = scores["videos"][0]
    assert row["status"] == "ok" and 0.0 <= row["score"] <= 1.0 and row["label"] in ("real", "fake")
    assert len(row["top_frames"].split()) == 3


def test_ensemble_assembles_runs_and_stacks_on_validation(face, tmp_path):
    from detect.config import DetectConfig
    from detect.data import Item
    from detect.detectors.ensemble import assemble, load_member
    from detect.sbi import self_blend_batch
    from detect.sbi_train import SBITrainConfig, train_sbi

    cache = TinyCache(face)
    base = dict(image_size=64, feature_pairs=24, val_frames=3, threads=1, val_people=("p_val",),
                test_people=("p_test",), extra={"max_iter": 10})
    runs = {}
    for name in ("blend_stats", "frequency"):
        train_sbi(cache, tmp_path / name, SBITrainConfig(detector=name, **base), progress=False)
        runs[name] = tmp_path / name
    frames, lm = cache.load("p_val_v")
    fakes, _ = self_blend_batch(frames[1:], lm[1:], 0)
    val = [Item("r", 0, frames[1:], lm[1:]), Item("f", 1, fakes, lm[1:])]
    ens = assemble(runs, val, tmp_path / "ens", DetectConfig(detector="ensemble"))
    assert ens.stack["fitted"] and ens.stack["members"] == ["blend_stats", "frequency"]
    p = load_member(tmp_path / "ens" / "members" / "frequency").score_clip(frames[1:], lm[1:])
    assert p.shape == (4,)
    s = ens.score_clip(frames[1:], lm[1:])
    assert s.shape == (4,) and np.all((s > 0) & (s < 1))
    # an ensemble run exports like any run: members with their weights, stale files of the last export gone
    import json

    from detect.default import export_default
    from detect.score import load_run

    (tmp_path / "ens" / "metrics.json").write_text(json.dumps({"done": True, "detector": "ensemble"}))
    from core.common import save_config

    save_config(DetectConfig(detector="ensemble", extra={"members": list(runs)}), tmp_path / "ens" / "config.yaml")
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "model.pt").write_bytes(b"old")
    (shipped / "README.md").write_text("card")
    export_default(tmp_path / "ens", shipped)
    assert not (shipped / "model.pt").exists() and (shipped / "README.md").is_file()
    assert sorted(q.name for q in (shipped / "members").iterdir()) == ["blend_stats", "frequency"]
    assert json.loads((shipped / "metrics.json").read_text())["weights_mb"] > 0
    assert np.allclose(load_run(shipped).detector.score_clip(frames[1:], lm[1:]), s)
    # stack weights fitted elsewhere (out of fold) are taken as given, members in the runs' order
    given = {"members": list(runs), "weights": [0.0, 2.0], "bias": -1.0, "fitted": True}
    ens2 = assemble(runs, [], tmp_path / "ens2", DetectConfig(detector="ensemble"), stack=given)
    assert ens2.stack == given
    from detect.calibrate import logit

    z = logit(p)                                                                  # the frequency member's
    assert np.allclose(ens2.score_clip(frames[1:], lm[1:]), 1 / (1 + np.exp(-(2.0 * z - 1.0))), atol=1e-4)
    with pytest.raises(FaceforgeError, match="differ"):
        assemble(runs, [], tmp_path / "ens3", DetectConfig(detector="ensemble"), stack={**given, "members": ["frequency"]})


def test_main_job_reports_the_default_detector(tmp_path):
    """The main job's detect stage scores its corpus test split with the shipped detector and quotes
    the measured third-party AUC; the report shows both."""
    from dashboard.mainjob import _default_detector
    from detect.toy import ToyCorpusConfig, build_toy_corpus

    corpus = build_toy_corpus(tmp_path / "corpus", ToyCorpusConfig(size=32, n_frames=4, identities=("d0", "d9", "d12", "d18"),
                                                                   generators=("fewshot", "warp"), compressions=("raw",)))
    d = _default_detector(corpus)
    assert d["detector"] == "blend_cnn" and d["test"]["n"] == 6                 # 2 test people x (real, 2 fakes)
    assert set(d["by_generator"]) == {"fewshot", "warp"} and 0.0 <= d["test"]["auc"] <= 1.0
    from dashboard.mainreport import _default_detector as section
    from dashboard.report import Report, to_markdown

    rep = Report("t")
    section(rep, d)
    md = to_markdown(rep)
    assert "shipped default detector" in md and "fakes: warp" in md and "this corpus, test split" in md


def test_check_a_file_gets_the_default_verdict_and_its_frames(sample_portrait):
    """The dashboard's Check-a-file call: the shipped detector's row plus the crops of the frames that
    drove it (a photo: its one face)."""
    from dashboard.checks import score_with_default

    d = score_with_default(sample_portrait)
    assert d["available"] and d["detector"] == "blend_cnn" and d["row"]["status"] == "ok"
    (index, score, crop), = d["frames"]
    assert index == 0 and 0.0 <= score <= 1.0 and crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    assert d["reliability"].startswith("measured: video AUC 0.65")                 # shown under the verdict
    missing = score_with_default(sample_portrait.parent / "nope.jpg")
    assert missing["available"] and missing["row"]["status"] == "error"


def test_self_blend_clip_one_draw_follows_the_face(face):
    """One blend draw for the whole clip: identical frames give identical fakes (per-frame self_blend_batch
    differs frame to frame), the mask moves with the landmarks, and flicker makes frames differ again."""
    from detect.sbi import self_blend_batch, self_blend_clip

    image, lm = face
    frames, lms = np.stack([image] * 3), np.stack([lm] * 3)
    fakes, masks = self_blend_clip(frames, lms, rng=3)
    assert fakes.shape == frames.shape and masks.shape == frames.shape[:3]
    assert masks[0].max() > 0.2 and np.array_equal(fakes[0], fakes[1]) and np.array_equal(masks[0], masks[2])
    per_frame, _ = self_blend_batch(frames, lms, rng=3)
    assert not np.array_equal(per_frame[0], per_frame[1])
    shifted = np.stack([lm, lm + [6.0, 0.0], lm + [12.0, 0.0]]).astype(np.float32)
    _, moved = self_blend_clip(frames, shifted, rng=3)
    cx = [float((m * np.arange(m.shape[1])).sum() / m.sum()) for m in moved]   # mask centroid x per frame
    assert cx[0] < cx[1] < cx[2] and 4.0 < cx[2] - cx[0] < 20.0
    wobbly, _ = self_blend_clip(frames, lms, rng=3, flicker=0.3)
    assert not np.array_equal(wobbly[0], wobbly[1])
