"""Cross-identity training episodes: another person's motion retargeted onto the source (forge.data.cross)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.common import FaceforgeError
from forge.config import TrainConfig
from forge.data.cross import sample_cross
from forge.data.episodes import ArrayCache, EpisodeSampler, to_uint8
from forge.data.rasterize import draw_landmarks
from forge.guide import warp_guide
from forge.retarget import neutral_frame, retarget
from tests.test_warp_guided import S, TINY_WG, face_clips

torch.set_num_threads(1)


def _sampler(**kw) -> EpisodeSampler:
    return EpisodeSampler(ArrayCache(face_clips()), k_shot=3, holdout=("vid2",), seed=0, with_guide=True, **kw)


def test_cross_episode_is_the_other_persons_motion_on_the_source():
    s = _sampler(guide_sources=2)
    ep = sample_cross(s, 6)
    assert ep.x_src.shape == (6, 3, 3, S, S) and ep.p_src.shape == (6, 3, 68, 2)
    assert ep.y_tgt.shape == (6, 3, S, S) and ep.p_tgt.shape == (6, 68, 2) and ep.guide.shape == (6, 4, S, S)
    for b in range(6):
        first = to_uint8(ep.x_src[b, 0])
        v = next(i for i, f in enumerate(s.frames) if any(np.array_equal(first, g) for g in f))
        u = 1 - v                                                        # two training people: the other one
        src_pts = ep.p_src[b].numpy()
        # the target is one of u's frames retargeted (relative to u's neutral frame) onto the first source
        cands = [retarget(s.points[u][j:j + 1], src_pts[0], s.points[u][neutral_frame(s.points[u])],
                          expression="relative")[0] for j in range(len(s.points[u]))]
        assert min(np.abs(c - ep.p_tgt[b].numpy()).max() for c in cands) < 1e-4
        assert np.array_equal(to_uint8(ep.y_tgt[b]), draw_landmarks(ep.p_tgt[b].numpy(), S))
        frames = to_uint8(ep.x_src[b])
        warped, valid = warp_guide(frames, src_pts, ep.p_tgt[b:b + 1].numpy(), k=2, tau=s.guide_tau)
        assert np.array_equal(to_uint8(ep.guide[b:b + 1, :3])[0], warped[0])
        assert np.allclose(ep.guide[b, 3].numpy(), valid[0])


def test_cross_episodes_need_two_people_and_a_guide():
    one = ArrayCache({"a": face_clips()["vid0"], "b": face_clips()["vid1"]}, identities={"a": "p", "b": "p"})
    with pytest.raises(FaceforgeError, match="two training identities"):
        sample_cross(EpisodeSampler(one, k_shot=2, with_guide=True), 2)
    with pytest.raises(FaceforgeError, match="warp-guided"):
        sample_cross(EpisodeSampler(ArrayCache(face_clips()), k_shot=2), 2)


def test_training_with_cross_episodes_logs_their_terms_and_resumes(tmp_path):
    from forge.train import MetaTrainer

    cfg = TrainConfig(model=TINY_WG, k_shot=2, batch_size=2, lr_g=1e-3, lr_d=1e-3, d_steps=1, holdout=("vid2",),
                      log_every=1, sample_every=0, checkpoint_every=1000, seed=0, cross_batch=2,
                      cross_identity_weight=2.0, cross_anchor_weight=1.0)
    tr = MetaTrainer(cfg, ArrayCache(face_clips()), tmp_path / "run")
    out = tr.run(steps=2, progress=False)
    assert 0 < out["x_id"] <= 4 and 0 <= out["x_anchor"] < 2 and np.isfinite(out["loss_g"])
    assert "1 - cos to the sources x 2" in out["cross_episodes"]
    again = MetaTrainer(cfg, ArrayCache(face_clips()), tmp_path / "run")      # resume: same next episodes
    a, b = sample_cross(again.sampler, 2), sample_cross(tr.sampler, 2)
    assert torch.equal(a.p_tgt, b.p_tgt)
    with pytest.raises(FaceforgeError, match="warp_guided"):
        MetaTrainer(dataclasses.replace(cfg, model=dataclasses.replace(TINY_WG, generator="paper")),
                    ArrayCache(face_clips()), tmp_path / "paper")
