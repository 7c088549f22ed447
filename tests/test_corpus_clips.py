"""forge.corpus for the benchmark corpus: several disjoint clips per source, sources read from a
prepared cache, people forced into test, a Talker of another resolution resized (fast: no GAN)."""

from __future__ import annotations

import numpy as np
import pytest

from core.common import FaceforgeError
from forge.corpus import plan, render, splits
from forge.corpus.spec import CorpusConfig, GeneratorSpec, Source, list_sources, load_spec

GENS = (GeneratorSpec("fewshot", "ff", (2,), ("self", "cross"), (True,)), GeneratorSpec("warp", reenactment=("self",)))


def test_clip_count():
    cfg = CorpusConfig(clip_frames=4, clips_per_source=3, generators=GENS)     # max_T = 2
    assert cfg.frames_needed == 3 * 4 + 2
    assert [cfg.clip_count(n) for n in (20, 14, 13, 9, 5)] == [3, 3, 2, 1, 1]   # (n - 2) // 4, capped, >= 1
    assert cfg.clip_count(None) == 3
    with pytest.raises(FaceforgeError, match="clips_per_source"):
        CorpusConfig(clips_per_source=0)


def test_plan_renders_every_clip_with_one_fit_per_person():
    cfg = CorpusConfig(clip_frames=4, clips_per_source=3, generators=GENS, split_ratios=(1, 0, 0))
    src = [Source("a", "a", "/a.mp4", n_frames=20), Source("b", "b", "/b.mp4", n_frames=9)]
    a = splits.assign_splits(["a", "b"], cfg.split_ratios, 0)
    jobs = plan.plan_jobs(cfg, src, a, splits.cross_drivers(a, 0))
    reals = [j.job_id for j in jobs if j.label == "real"]
    assert reals == ["real-a", "real-a-c1", "real-a-c2", "real-b"]               # clip 0 keeps the old id
    # per clip: FF self + FF cross-rt + warp self
    assert sum(j.label == "fake" for j in jobs) == (3 + 1) * 3
    assert {j.fit_key for j in jobs if j.source.source_id == "a" and j.mode == "ff"} == {"fewshot-ff-T2-a"}
    assert "fewshot-ff-T2-cross-rt-a-c2-by-b" in {j.job_id for j in jobs}
    assert len({j.job_id for j in jobs}) == len(jobs)


def test_a_split_can_be_rendered_first():
    cfg = CorpusConfig(clip_frames=4, clips_per_source=2, generators=GENS)
    src = [Source(f"s{i}", f"s{i}", f"/s{i}.mp4", n_frames=12) for i in range(10)]
    a = splits.assign_splits([s.identity for s in src], cfg.split_ratios, 0)
    jobs = plan.plan_jobs(cfg, src, a, splits.cross_drivers(a, 0))
    test = plan.shard_jobs(jobs, 1, 3, ("test",))
    assert test and {j.split for j in test} == {"test"}
    assert [j.job_id for j in test] == [j.job_id for j in plan.shard_jobs(jobs, 1, 3) if j.split == "test"]


def test_forced_test_identities_keep_the_shares():
    ids = [f"p{i:02d}" for i in range(20)]
    forced = ("p03", "p07", "p11")
    a = splits.assign_splits(ids, (0.6, 0.2, 0.2), seed=0, test=forced + ("not_a_source",))
    assert all(a[i] == "test" for i in forced)
    sizes = {s: sum(v == s for v in a.values()) for s in ("train", "val", "test")}
    assert sizes == {"train": 12, "val": 4, "test": 4}
    many = splits.assign_splits(ids, (0.6, 0.2, 0.2), seed=0, test=tuple(ids[:10]))   # more than its share
    assert sum(v == "test" for v in many.values()) == 10 and set(many.values()) == {"train", "val", "test"}


def _clip(sid: str, n: int, size: int = 16, seed: int = 0) -> render.SourceClip:
    rng = np.random.default_rng(seed)
    lm = (4 + 8 * rng.random((n, 68, 2))).astype(np.float32)
    frames = np.stack([np.full((size, size, 3), i, np.uint8) for i in range(n)])  # frame i has value i
    return render.SourceClip(sid, frames, lm, np.arange(n) * 2, np.zeros((n, 4), np.float32), 12.5, (64, 64))


class _HalfTalker:
    """Renders at half the spec's side (grey frames); records what it was given."""

    resolution = 8

    def __init__(self):
        self.fit_sizes, self.lm_max = [], []

    def fit(self, frames, landmarks, mode, steps, seed):
        self.fit_sizes.append(frames.shape[1:3])
        return {}

    def render(self, person, landmarks, batch_size=16):
        """``landmarks``: (N, 68, 2) coordinates or (N, S, S, 3) landmark images, at the Talker's side."""
        landmarks = np.asarray(landmarks)
        self.lm_max.append(float(np.max(landmarks)) if landmarks.ndim == 3 else landmarks.shape[1])
        return np.full((len(landmarks), 8, 8, 3), 50, np.uint8)


def test_render_uses_the_jobs_clip_references_after_all_clips_and_resizes():
    cfg = CorpusConfig(resolution=16, clip_frames=4, clips_per_source=3, generators=GENS, split_ratios=(1, 0, 0),
                       talker_resize=True)
    src = [Source("a", "a", "/a.mp4", n_frames=14), Source("b", "b", "/b.mp4", n_frames=9)]
    a = splits.assign_splits(["a", "b"], cfg.split_ratios, 0)
    jobs = {j.job_id: j for j in plan.plan_jobs(cfg, src, a, splits.cross_drivers(a, 0))}
    clips = {"a": _clip("a", 14), "b": _clip("b", 9, seed=1)}
    models = render.Renderers(cfg)
    models._talker = _HalfTalker()
    real = render.render_job(jobs["real-a-c1"], clips["a"], clips["a"], cfg, models)
    assert real.frames[:, 0, 0, 0].tolist() == [4, 5, 6, 7] and real.driver_frames.tolist() == [8, 10, 12, 14]
    fake = render.render_job(jobs["fewshot-ff-T2-cross-rt-a-c2-by-b"], clips["a"], clips["b"], cfg, models)
    assert fake.source_frames.tolist() == [24, 26]              # rows 12, 13: after the 3 clips
    assert fake.driver_frames.tolist() == [0, 2, 4, 6]          # b has one clip: reused cyclically
    assert fake.frames.shape == (4, 16, 16, 3) and fake.render_resolution == 8
    assert models._talker.fit_sizes == [(8, 8)]                   # fitted at the Talker's side
    assert models._talker.lm_max[0] in (8, pytest.approx(fake.landmarks.max() / 2))   # targets given at 8 px
    warp = render.render_job(jobs["warp-T1-self-a-c2"], clips["a"], clips["a"], cfg, models)
    assert warp.render_resolution is None and warp.frames.shape == (4, 16, 16, 3)
    with pytest.raises(FaceforgeError, match="no clip 3"):
        clips["a"].clip(4, 3)


def test_a_talker_of_another_size_is_refused_without_resize(tiny_talker):
    models = render.Renderers(CorpusConfig(resolution=64, talker_resize=False))
    models._talker = None
    from unittest import mock

    with mock.patch("forge.talker.Talker.load", return_value=tiny_talker):
        with pytest.raises(FaceforgeError, match="renders 32 px"):
            models.talker


@pytest.fixture
def tiny_cache(tmp_path):
    """A prepared cache (as `forge prepare` writes it) of two videos, 32 px, every 2nd frame."""
    from core.common import save_config
    from forge.data import cache as C
    from forge.data.prepare import PrepareConfig, merge_tables

    root = tmp_path / "cache"
    root.mkdir()
    save_config(PrepareConfig(resolution=32, every=2), root / C.CONFIG_FILE)
    records = []
    for vid, n in (("alice", 10), ("bob", 6)):
        valid = [i != 1 for i in range(n)]                        # frame 1 had no face
        rows = {"identity": [vid] * n, "video_id": [vid] * n, "frame": list(range(n)),
                "frame_index": [2 * i for i in range(n)], "time": [0.08 * i for i in range(n)],
                "crop_box": [[i, 0, 100 + i, 100] for i in range(n)], "bbox": [[0, 0, 1, 1]] * n,
                "landmarks": [[10.0] * 136] * n, "source_landmarks": [[20.0] * 136] * n, "score": [1.0] * n,
                "valid": valid, "n_faces": [1] * n, "flags": [0] * n, "backend": ["dlib"] * n,
                "image": [C.encode_image(np.full((32, 32, 3), 10 * i, np.uint8), "png") for i in range(n)]}
        C.write_video_frames(root, vid, rows)
        records.append(dict(video_id=vid, identity=vid, source=f"/videos/{vid}.mp4", kind="video", fingerprint="x",
                            status="ok", n_frames=n, n_valid=sum(valid), error="", backend="dlib", fps=25.0,
                            width=320, height=240, seconds=0.1))
    merge_tables(root, records)
    return root


def test_sources_from_a_prepared_cache(tiny_cache, tmp_path):
    cfg = load_spec(None, {"sources": [str(tiny_cache)], "resolution": 32, "clip_frames": 3, "clips_per_source": 2,
                           "generators": [{"name": "warp", "reenactment": ["self"]}]})
    src = list_sources(cfg)
    assert [(s.source_id, s.identity, s.n_frames, s.cache) for s in src] == [
        ("alice", "alice", 9, str(tiny_cache)), ("bob", "bob", 5, str(tiny_cache))]
    assert src[0].path == "/videos/alice.mp4"                       # the C2PA ingredient is the video
    clip = render.extract_source(src[0], cfg, tmp_path / "sources")
    assert clip.frames.shape == (9, 32, 32, 3) and clip.fps == 12.5  # 25 fps, every 2nd frame
    assert clip.frame_index.tolist() == [0, 4, 6, 8, 10, 12, 14, 16, 18]   # the faceless frame 1 dropped
    assert clip.boxes[1].tolist() == [2, 0, 102, 100] and clip.source_size == (240, 320)
    assert (tmp_path / "sources" / "alice.npz").is_file()
    with pytest.raises(FaceforgeError, match="holds 32 px"):
        render.source_from_cache(src[0], load_spec(None, {"resolution": 64}))
