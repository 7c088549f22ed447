"""forge.corpus units: spec, identity-disjoint splits, the job plan and shards, compression
variants, paste-back (fast: no rendering)."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from forge.corpus import compress, plan, render, splits
from forge.corpus.spec import CorpusConfig, GeneratorSpec, Source, load_spec


def _sources(n: int) -> list[Source]:
    return [Source(f"v{i:02d}", f"id{i:02d}", f"/data/v{i:02d}.mp4") for i in range(n)]


# ---------------------------------------------------------------- spec
def test_default_spec_is_the_embedded_sample_and_roundtrips(tmp_path):
    from core.common import save_config

    cfg = load_spec()
    assert cfg == CorpusConfig()
    assert cfg.sources == ("data/sample/videos",) and cfg.resolution == 64 and cfg.clip_frames == 16
    assert {(g.name, g.mode) for g in cfg.generators} == {("fewshot", "ff"), ("fewshot", "ft"), ("warp", None)}
    assert cfg.frames_needed == 16 + 32
    save_config(cfg, tmp_path / "spec.yaml")
    assert load_spec(tmp_path / "spec.yaml") == cfg


def test_spec_overrides_and_bad_values():
    cfg = load_spec(None, {"seed": 3, "compressions": ["c40"]})
    assert cfg.seed == 3 and cfg.compressions == ("raw", "c40")  # raw is always kept (variants derive from it)
    with pytest.raises(FaceforgeError, match="unknown compression"):
        load_spec(None, {"compressions": ["webm"]})
    with pytest.raises(FaceforgeError, match="unknown CorpusConfig option"):
        load_spec(None, {"colour": 1})
    with pytest.raises(FaceforgeError, match="fewshot mode"):
        GeneratorSpec("fewshot", "xx")
    assert GeneratorSpec("warp", "ft", (8, 32)).T == (1,)  # the warp baseline uses one source frame


# ---------------------------------------------------------------- splits
def test_splits_identity_disjoint_sized_and_fixed_by_seed():
    ids = [f"p{i}" for i in range(13)]
    a = splits.assign_splits(ids, (0.6, 0.2, 0.2), seed=0)
    assert set(a) == set(ids) and set(a.values()) == {"train", "val", "test"}
    sizes = {s: sum(v == s for v in a.values()) for s in ("train", "val", "test")}
    assert sizes == {"train": 8, "val": 3, "test": 2}
    assert splits.assign_splits(list(reversed(ids)), (0.6, 0.2, 0.2), seed=0) == a
    assert splits.assign_splits(ids, (0.6, 0.2, 0.2), seed=1) != a
    # every non-zero split gets someone when there are enough people
    small = splits.assign_splits(["a", "b", "c"], (0.9, 0.05, 0.05), seed=0)
    assert sorted(small.values()) == ["test", "train", "val"]


def test_cross_drivers_stay_inside_a_split():
    ids = [f"p{i}" for i in range(13)]
    a = splits.assign_splits(ids, (0.6, 0.2, 0.2), seed=0)
    d = splits.cross_drivers(a, seed=0)
    for src, drv in d.items():
        assert drv != src and a[drv] == a[src]
    train = [i for i in ids if a[i] == "train"]
    assert sorted(d[i] for i in train) == sorted(train)  # a cycle: everyone drives exactly once
    alone = splits.cross_drivers({"x": "train", "y": "test", "z": "test"}, seed=0)
    assert alone["x"] is None and alone["y"] == "z" and alone["z"] == "y"


def test_splits_file_written_once(tmp_path):
    p = tmp_path / "splits.json"
    first = splits.load_or_write_splits(p, ["a", "b", "c", "d"], (0.5, 0.25, 0.25), seed=0)
    mtime = p.stat().st_mtime_ns
    again = splits.load_or_write_splits(p, ["a", "b", "c", "d"], (0.5, 0.25, 0.25), seed=7)
    assert again == first and p.stat().st_mtime_ns == mtime  # never rewritten, seed of the file wins
    with pytest.raises(FaceforgeError, match="other sources"):
        splits.load_or_write_splits(p, ["a", "zz"], (0.5, 0.25, 0.25), seed=0)


# ---------------------------------------------------------------- plan and shards
def _plan(cfg: CorpusConfig, n: int = 6):
    src = _sources(n)
    a = splits.assign_splits([s.identity for s in src], cfg.split_ratios, cfg.seed)
    return src, a, plan.plan_jobs(cfg, src, a, splits.cross_drivers(a, cfg.seed))


def test_plan_counts_and_identity_disjoint_jobs():
    cfg = CorpusConfig(generators=(GeneratorSpec("fewshot", "ff", (1, 8)),
                                   GeneratorSpec("fewshot", "ft", (8,), ("self",), steps=2, splits=("test",)),
                                   GeneratorSpec("warp", reenactment=("self",))),
                       split_ratios=(0.5, 0.0, 0.5))
    src, a, jobs = _plan(cfg, 6)
    n_test = sum(v == "test" for v in a.values())
    # per source: real + FF 2 T x (self + cross + cross-retargeted) + warp self; FT for test sources
    assert len(jobs) == 6 * (1 + 2 * 3 + 1) + n_test
    assert len({j.job_id for j in jobs}) == len(jobs)
    for j in jobs:
        assert a[j.source.identity] == a[j.driver.identity] == j.split
        assert (j.driver == j.source) == (j.reenactment in (None, "self"))
        assert j.label == ("real" if j.generator == "real" else "fake")
    assert {j.generator for j in jobs if j.mode == "ft"} == {"fewshot"}
    assert all(j.split == "test" for j in jobs if j.mode == "ft")
    again = _plan(cfg, 6)[2]
    assert [j.job_id for j in again] == [j.job_id for j in jobs] and [j.seed for j in again] == [j.seed for j in jobs]


def test_twin_and_paste_back_groups():
    cfg = CorpusConfig(generators=(GeneratorSpec("warp", reenactment=("self",)),), unwatermarked_twin=True,
                       paste_back=True)
    jobs = _plan(cfg, 2)[2]
    real = next(j for j in jobs if j.label == "real")
    fake = next(j for j in jobs if j.label == "fake")
    assert [(g.group_id, g.watermarked, g.framing) for g in real.outputs] == [
        (real.job_id, False, "crop"), (f"{real.job_id}-full", False, "full")]
    assert [(g.group_id, g.watermarked, g.framing, g.twin_of) for g in fake.outputs] == [
        (fake.job_id, True, "crop", None), (f"{fake.job_id}-nowm", False, "crop", fake.job_id),
        (f"{fake.job_id}-full", True, "full", None),
        (f"{fake.job_id}-full-nowm", False, "full", f"{fake.job_id}-full")]


def test_shards_are_disjoint_cover_the_plan_and_keep_fits_together():
    jobs = _plan(CorpusConfig(), 7)[2]
    shards = [plan.shard_jobs(jobs, i, 3) for i in range(3)]
    ids = [j.job_id for s in shards for j in s]
    assert sorted(ids) == sorted(j.job_id for j in jobs) and len(ids) == len(set(ids))
    assert all(len(s) > 0 for s in shards)
    where = {j.fit_key: i for i, s in enumerate(shards) for j in s}
    assert all(where[j.fit_key] == i for i, s in enumerate(shards) for j in s)
    assert plan.parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(FaceforgeError):
            plan.parse_shard(bad)


def test_torchrun_env_gives_the_shard():
    from forge.commands.corpus import shard_from_env

    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "4"}) == "1/4"
    assert shard_from_env({}) is None


# ---------------------------------------------------------------- files
def _gradient_clip(n: int = 6, s: int = 32) -> np.ndarray:
    x = np.linspace(0, 255, s)
    return np.stack([np.stack([np.add.outer(x, x + 8 * i) / 2] * 3, -1) for i in range(n)]).astype(np.uint8)


@pytest.mark.parametrize("comp,max_err", [("raw", 1.0), ("c23", 3.0), ("c40", 10.0), ("jpeg", 3.0)])
def test_variants_roundtrip(tmp_path, comp, max_err):
    frames = _gradient_clip()
    path = tmp_path / compress.variant_filename(comp)
    compress.write_variant(path, frames, 25.0, comp, jpeg_quality=75)
    back = compress.read_frames(path)
    assert back.shape == frames.shape
    err = float(np.abs(back.astype(float) - frames).mean())
    assert err < max_err
    if comp == "jpeg":  # each frame is Pillow's JPEG at q=75, not an FFmpeg re-encode
        from PIL import Image
        import io

        ref = np.asarray(Image.open(io.BytesIO(compress.encode_jpeg(frames[0], 75))).convert("RGB"))
        assert np.abs(back[0].astype(float) - ref).mean() < 1.5


def test_c40_is_lossier_than_c23(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.clip(_gradient_clip(8, 64).astype(int) + rng.integers(-20, 20, (8, 64, 64, 3)), 0, 255).astype(np.uint8)
    errs = {}
    for comp in ("c23", "c40"):
        compress.write_variant(tmp_path / f"{comp}.mp4", frames, 25.0, comp)
        errs[comp] = np.abs(compress.read_frames(tmp_path / f"{comp}.mp4").astype(float) - frames).mean()
        assert (tmp_path / f"{comp}.mp4").stat().st_size > 0
    assert errs["c40"] > errs["c23"] + 1.0


def test_paste_back_blends_face_into_driver_frame():
    S = 32
    lm = np.stack(np.meshgrid(np.linspace(8, 24, 17), [10.0]), -1).reshape(-1, 2)
    lm = np.concatenate([lm, np.stack([np.linspace(8, 24, 51), np.linspace(12, 26, 51)], -1)]).astype(np.float32)
    rendered = render.Render(np.full((2, S, S, 3), 200, np.uint8), np.stack([lm, lm]), np.zeros(1, int),
                             np.array([3, 4]), 25.0)
    full = {3: np.zeros((100, 80, 3), np.uint8), 4: np.zeros((100, 80, 3), np.uint8)}
    boxes = np.array([[10, 20, 74, 84], [10, 20, 74, 84]], np.float32)  # 64 px square: scale 2
    frames, lms = render.paste_back(rendered, True, boxes, full, out_size=50)
    assert frames.shape == (2, 50, 40, 3) and lms.shape == (2, 68, 2)
    np.testing.assert_allclose(lms[0], (lm * 2 + [10, 20]) * 0.5, atol=1e-4)
    cx, cy = (lms[0].mean(0)).round().astype(int)
    assert frames[0, cy, cx, 0] > 190            # inside the face: the render
    assert frames[0, 2, 2].max() == 0            # far outside: the driver frame untouched
    edge = frames[0, :, :, 0][frames[0, :, :, 0] > 0]
    assert ((edge > 5) & (edge < 195)).any()     # a blended (feathered) boundary, not a hard cut
    real, _ = render.paste_back(rendered, False, boxes, full, out_size=50)
    assert real.max() == 0                       # a real item is the driver frame itself


class _CountingTalker:
    """A stand-in for forge.talker.Talker (records fits; renders the landmark images)."""

    resolution, version, checkpoint_sha256 = 32, "fake-talker", "0" * 64

    def __init__(self):
        self.fits = []

    def fit(self, frames, landmarks, mode, steps, seed):
        self.fits.append((len(frames), mode, steps, seed))
        return {"mode": mode}

    def render(self, person, landmarks, batch_size=16):
        from forge.data.rasterize import draw_landmarks_batch

        return draw_landmarks_batch(landmarks, self.resolution)


def test_ft_fit_once_per_fit_key_with_its_steps_and_seed():
    cfg = CorpusConfig(resolution=32, clip_frames=4,
                       generators=(GeneratorSpec("fewshot", "ft", (2,), ("self", "cross"), (True,), steps=3),),
                       split_ratios=(1, 0, 0))
    src, a, jobs = _plan(cfg, 2)
    rng = np.random.default_rng(0)
    lm = (8 + 16 * rng.random((7, 68, 2))).astype(np.float32)
    clips = {s.source_id: render.SourceClip(s.source_id, rng.integers(0, 255, (7, 32, 32, 3), dtype=np.uint8),
                                            lm, np.arange(7), np.zeros((7, 4), np.float32), 25.0, (64, 64))
             for s in src}
    models = render.Renderers(cfg)
    models._talker = _CountingTalker()
    fakes = [j for j in jobs if j.label == "fake"]
    assert [j.reenactment for j in fakes] == ["self", "cross", "self", "cross"]
    outs = [render.render_job(j, clips[j.source.source_id], clips[j.driver.source_id], cfg, models) for j in fakes]
    # one fit per (source, mode, T): self and cross reenactment share the fitted person
    assert models.n_fits == 2 and [f[:3] for f in models._talker.fits] == [(2, "ft", 3)] * 2
    assert models._talker.fits[0][3] == plan.job_seed(cfg.seed, fakes[0].fit_key)
    assert outs[0].frames.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(outs[0].source_frames, [4, 6])  # references come after the clip
    np.testing.assert_array_equal(outs[1].driver_frames, np.arange(4))
    assert not np.allclose(outs[1].landmarks, lm[:4])  # cross + retarget: the source's proportions
    with pytest.raises(FaceforgeError, match="too few frames for T=4"):
        clips[src[0].source_id].reference_indices(4, 4)


def test_gan_items_rerendered_after_a_new_checkpoint(tmp_path):
    import json

    from forge.corpus.build import is_done

    jobs = _plan(CorpusConfig(), 2)[2]
    gan = next(j for j in jobs if j.generator == "fewshot")
    warp = next(j for j in jobs if j.generator == "warp")
    models = render.Renderers(CorpusConfig())
    models._ckpt_sha = "new"
    part = tmp_path / "p.json"
    assert not is_done(part, gan, models)
    part.write_text(json.dumps({"rows": [{"checkpoint_sha256": "old"}]}))
    assert not is_done(part, gan, models) and is_done(part, warp, models)
    part.write_text(json.dumps({"rows": [{"checkpoint_sha256": "new"}]}))
    assert is_done(part, gan, models)


def test_merge_leaves_out_gan_parts_of_another_checkpoint(tmp_path, monkeypatch):
    import json

    from core.common import save_config, sha256_file
    from forge.corpus import build

    ckpt = tmp_path / "talker.pt"
    ckpt.write_bytes(b"new weights")
    corpus = tmp_path / "C"
    corpus.mkdir()
    cfg = CorpusConfig(checkpoint=str(ckpt))
    save_config(cfg, corpus / build.SPEC)
    jobs = build.plan_corpus(corpus, cfg)[2]
    gan = [j for j in jobs if j.generator == "fewshot"][:2]
    warp = next(j for j in jobs if j.generator == "warp")
    (corpus / "f.mp4").write_bytes(b"x")
    for job, sha in [(gan[0], "old"), (gan[1], sha256_file(ckpt)), (warp, None)]:
        row = {"job_id": job.job_id, "checkpoint_sha256": sha, "path": "f.mp4"}
        (corpus / build.PARTS).mkdir(exist_ok=True)
        (corpus / build.PARTS / f"{job.job_id}.json").write_text(
            json.dumps({"job_id": job.job_id, "status": "ok", "rows": [row], "errors": []}))
    monkeypatch.setattr(build.manifest, "write_tables", lambda c, rows, errors, card: {**card, "rows": rows})
    card = build.merge_corpus(corpus)
    assert [r["job_id"] for r in card["rows"]] == [gan[1].job_id, warp.job_id]
    assert card["jobs"]["done"] == 2 and card["jobs"]["stale"] == 1
    assert card["jobs"]["missing"] == len(jobs) - 2 and not card["complete"]


def test_cli_rejects_a_bad_shard(tmp_path, capsys):
    from forge.cli import main

    assert main(["forge", "corpus", "--out", str(tmp_path / "C"), "--shard", "5/2", "--no-progress"]) == 2
    assert "need 0 <= i < n" in capsys.readouterr().err
    assert not (tmp_path / "C").exists()
