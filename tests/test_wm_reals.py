"""detect.wm_reals: watermarked twins of a corpus's reals (every compression variant, resumable) and the
manifest swap that makes real and fake differ in generation only; on a tiny toy corpus."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError

TOY_IDS = ("d0", "d3", "d12")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from detect.toy import ToyCorpusConfig, build_toy_corpus

    cfg = ToyCorpusConfig(size=64, n_frames=4, identities=TOY_IDS, generators=("warp",), compressions=("raw", "c23"))
    return build_toy_corpus(tmp_path_factory.mktemp("wmr") / "corpus", cfg)


def test_build_writes_a_marked_twin_per_real_variant_and_resumes(corpus):
    from detect.data import load_manifest, read_frames
    from detect.wm_reals import build, control_path, payload_of
    from provenance.watermark import embed

    df = load_manifest(corpus)
    reals = df[df["label"] == "real"]
    assert reals["group_id"].nunique() == 3 and len(reals) == 6          # 3 people x (raw, c23)

    counts = build(corpus, progress=False)
    assert counts == {"written": 3, "skipped": 0, "errors": []}
    for row in reals.to_dict("records"):
        twin = corpus / control_path(row)
        assert twin.is_file() and twin.parent.name == row["group_id"]
        marked, plain = read_frames(twin), read_frames(corpus / row["path"])
        assert marked.shape == plain.shape == (4, 64, 64, 3)
        diff = marked.astype(float) - plain.astype(float)
        psnr = 10 * np.log10(255.0 ** 2 / max(np.mean(diff ** 2), 1e-9))
        assert 0 < np.abs(diff).mean() and psnr > 30                       # invisible, but there
        if row["compression"] == "raw":                  # near-lossless: the twin carries this group's pattern
            pattern = np.asarray(embed(plain, payload_of(row["group_id"])), float) - plain
            other = np.asarray(embed(plain, payload_of("someone else")), float) - plain
            assert np.corrcoef(diff.ravel(), pattern.ravel())[0, 1] > 0.5
            assert np.corrcoef(diff.ravel(), pattern.ravel())[0, 1] > np.corrcoef(diff.ravel(), other.ravel())[0, 1] + 0.2
    assert build(corpus, progress=False) == {"written": 0, "skipped": 3, "errors": []}


def test_swap_reals_points_reals_at_twins_and_keeps_fakes(corpus):
    from detect.data import load_manifest
    from detect.wm_reals import build, swap_reals

    build(corpus, progress=False)
    df = load_manifest(corpus)
    out = swap_reals(corpus, df)
    real = (df["label"] == "real").to_numpy()
    assert (out.loc[real, "path"].str.startswith("controls/wm_reals/")).all()
    assert out.loc[real, "watermarked"].astype(bool).all()
    assert (out.loc[~real, "path"] == df.loc[~real, "path"]).all()
    assert (out["item_id"] == df["item_id"]).all() and len(out) == len(df)
    assert not df.loc[real, "path"].str.startswith("controls/").any()       # the input frame is untouched


def test_swap_reals_refuses_a_missing_twin(corpus, tmp_path):
    import shutil

    from detect.data import load_manifest
    from detect.wm_reals import build, control_path, swap_reals

    copy = tmp_path / "c"
    shutil.copytree(corpus, copy)
    build(copy, progress=False)
    df = load_manifest(copy)
    row = df[df["label"] == "real"].iloc[0].to_dict()
    (copy / control_path(row)).unlink()
    with pytest.raises(FaceforgeError, match="1 watermarked real control"):
        swap_reals(copy, df)


def test_studies_train_and_test_on_marked_reals_and_cache_scores(corpus, tmp_path, monkeypatch):
    import benchmarks.detect_studies as S
    from detect.wm_reals import build

    build(corpus, progress=False)
    monkeypatch.setattr(S, "WORK", tmp_path / "work")
    monkeypatch.setattr(S, "BENCH_TRAIN", dict(S.BENCH_TRAIN, image_size=32, max_frames=4, frames_per_item=2, window=4))
    bench = S.Bench(corpus, None, print, wm_reals=True)
    reals = [it for it in bench.items("c23") if it.label == 0]
    assert reals and all(str(it.meta["path"]).startswith("controls/wm_reals/") for it in reals)
    plain = [it for it in bench.items("c23", plain=True) if it.label == 0]
    assert len(plain) == len(reals) and not any(str(it.meta["path"]).startswith("controls/") for it in plain)

    lr, info = S.train_run(bench, "all_c23", "frequency", ["compression=c23"])
    assert info["reals"] == "wmreals" and "-wmreals" in info["run"]
    first = bench.score(lr, "c23")
    monkeypatch.setattr(lr.detector, "score_clip", lambda *a: (_ for _ in ()).throw(AssertionError("not cached")))
    assert bench.score(lr, "c23") == first                                  # every video read from the cache
    with pytest.raises(AssertionError, match="not cached"):                  # the plain reals are other files
        bench.score(lr, "c23", plain=True)


def test_detect_train_and_eval_read_the_marked_reals_from_the_cli(corpus, tmp_path, capsys):
    """`faceforge detect train|eval --wm-reals`: the reals are read as their watermarked twins (the metrics
    say so), and a corpus without twins fails in one line before any training."""
    import json
    import shutil

    from detect.wm_reals import build
    from forge.cli import main

    bare = tmp_path / "bare"
    shutil.copytree(corpus, bare, ignore=shutil.ignore_patterns("controls"))
    assert main(["detect", "train", "--corpus", str(bare), "--detector", "frequency", "--out", str(tmp_path / "x"),
                 "--wm-reals"]) != 0
    err = capsys.readouterr().err
    assert "watermarked real control(s) missing" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()                                    # nothing written
    build(corpus, progress=False)
    run = tmp_path / "run"
    assert main(["detect", "train", "--corpus", str(corpus), "--detector", "frequency", "--out", str(run),
                 "--wm-reals", "--set", "max_frames=4"]) == 0
    import torch

    torch.set_num_threads(2)
    assert main(["detect", "eval", "--model", str(run), "--corpus", str(corpus), "--split", "test", "--wm-reals",
                 "--name", "marked", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1                                     # --threads overrides the run's
    m = json.loads((run / "eval" / "marked" / "metrics.json").read_text())
    assert m["wm_reals"] is True and m["video"]["n"] > 0
    assert main(["detect", "eval", "--model", str(run), "--corpus", str(corpus), "--threads", "0"]) != 0
    assert "threads must be >= 1" in capsys.readouterr().err
