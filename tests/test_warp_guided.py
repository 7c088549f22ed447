"""The warp-guided generator: the warp guide, a G that starts as the warp, training, FF/FT fit and render."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.common import FaceforgeError
from forge.config import FitConfig, ModelConfig, TrainConfig
from forge.data.episodes import ArrayCache, EpisodeSampler, to_tensor
from forge.data.rasterize import draw_landmarks_batch
from forge.guide import guide_tensor, nearest_sources, source_weights, warp_guide
from forge.model import build_models
from forge.model.blocks import bake_spectral_norm

torch.set_num_threads(1)  # shared 2-core test machine

S = 32
TINY_WG = ModelConfig(resolution=S, emb_dim=16, base_channels=8, max_channels=16, g_down_blocks=2, g_res_blocks=1,
                      attn_down_res=8, attn_up_res=0, embed_resolution=16, generator="warp_guided")


def mean_face(size: int) -> np.ndarray:
    """A plausible 68-point layout scaled to ``size`` (jaw, brows, nose, eyes, lips)."""
    from benchmarks.forge_speed import _mean_face

    return _mean_face(size).astype(np.float32)


def face_clips(n_videos: int = 3, n_frames: int = 8, seed: int = 0) -> dict:
    """Each video: a textured frame whose landmarks move (shift + mouth opening) from frame to frame."""
    rng = np.random.default_rng(seed)
    base = mean_face(S)
    clips = {}
    for v in range(n_videos):
        tex = rng.integers(0, 255, (S // 4, S // 4, 3)).astype(np.uint8)
        img = np.kron(tex, np.ones((4, 4, 1), np.uint8))                       # (S, S, 3) blocky texture
        frames, lms = np.empty((n_frames, S, S, 3), np.uint8), np.empty((n_frames, 68, 2), np.float32)
        for t in range(n_frames):
            shift = rng.uniform(-2, 2, 2)
            lms[t] = base + shift
            lms[t, 57:60, 1] += t * 0.3                                         # the lower lip drops
            frames[t] = np.roll(img, tuple(np.round(shift).astype(int)[::-1]), axis=(0, 1))
        clips[f"vid{v}"] = (frames, lms, draw_landmarks_batch(lms, S))
    return clips


def test_guide_identity_warp_and_validity():
    clips = face_clips(n_videos=1)
    frames, lms, _ = clips["vid0"]
    warped, valid = warp_guide(frames[:1], lms[:1], lms[:1])
    assert warped.shape == (1, S, S, 3) and valid.shape == (1, S, S)
    assert np.abs(warped[0].astype(int) - frames[0]).mean() < 1.0           # same landmarks: the source back
    assert valid.min() >= 0 and valid.max() <= 1 and valid.mean() > 0.95
    moved = lms[:1] + np.array([6.0, 0.0], np.float32)                        # the whole face 6 px right
    _, valid_moved = warp_guide(frames[:1], lms[:1], moved)
    assert valid_moved[0, :, :3].mean() < 0.5                                 # left border: no source pixels
    g = guide_tensor(warped, valid)
    assert g.shape == (1, 4, S, S) and g[:, :3].min() >= -1 and g[:, 3].max() <= 1


def test_nearest_sources():
    a = np.zeros((68, 2))
    src = np.stack([a, a + 1, a + 5])
    assert list(nearest_sources(src, np.stack([a + 0.9, a + 4]))) == [1, 2]
    assert list(nearest_sources(src, src, exclude_self=True)) == [1, 0, 1]
    with pytest.raises(FaceforgeError, match="68, 2"):
        warp_guide(np.zeros((1, S, S, 3), np.uint8), np.zeros((1, 68, 2)), np.zeros((2, 5, 2)))


def test_multi_source_guide_blends_the_nearest_frames_by_distance():
    a = np.zeros((68, 2))
    src = np.stack([a, a + 1, a + 5, a + 0.5])
    idx, w = source_weights(src, np.stack([a + 0.2]), k=3, tau=0.5)
    # distances 0.28, 1.13, 6.79, 0.42 (mean over points of |(d, d)|): nearest 0, 3, 1
    assert idx.tolist() == [[0, 3, 1]]
    d = np.array([0.2, 0.3, 0.8]) * np.sqrt(2)
    want = np.exp(-(d - d[0]) / 0.5)
    np.testing.assert_allclose(w[0], want / want.sum(), rtol=1e-6)
    assert source_weights(src, src, k=9, exclude_self=True)[0].shape == (4, 3)   # k capped at T - 1
    frames, lms, _ = face_clips(n_videos=1)["vid0"]
    one, v1 = warp_guide(frames, lms, lms[2:4] + 0.3)
    k1, kv1 = warp_guide(frames, lms, lms[2:4] + 0.3, k=1)
    assert np.array_equal(one, k1) and np.array_equal(v1, kv1)               # k = 1 is the nearest-frame warp
    blend, vb = warp_guide(frames, lms, lms[2:4] + 0.3, k=3, tau=2.0)       # tau given at 128 px: 0.5 px at S
    idx3, w3 = source_weights(lms, lms[2:4] + 0.3, k=3, tau=2.0 * S / 128)
    tgt = lms[2:4] + 0.3
    singles = np.stack([np.stack([warp_guide(frames[t:t + 1], lms[t:t + 1], tgt[i:i + 1])[0][0] for t in idx3[i]])
                        for i in range(len(tgt))])                            # (2, 3, S, S, 3) one warp per source
    want = (singles * w3[:, :, None, None, None]).sum(1)                      # (2, S, S, 3)
    assert np.abs(blend - want).max() <= 0.5 and vb.min() >= 0 and vb.max() <= 1
    assert np.abs(blend - singles[:, 0]).mean() > 1.0                          # it is a blend, not the nearest
    # the target's own frame among the sources, k = 3, small tau: it dominates the blend
    own, _ = warp_guide(frames, lms, lms[4:5], k=3, tau=0.05)
    assert np.abs(own[0].astype(int) - frames[4]).mean() < 1.0
    with pytest.raises(ValueError, match="guide_sources"):
        dataclasses.replace(TINY_WG, guide_sources=0)


def test_single_source_episodes_use_one_frame(monkeypatch):
    import forge.guide

    seen = []
    real = forge.guide.warp_guide

    def spy(frames, landmarks, target, **kw):
        seen.append((len(frames), kw.get("k")))
        return real(frames, landmarks, target, **kw)

    monkeypatch.setattr(forge.guide, "warp_guide", spy)
    clips = ArrayCache(face_clips())
    for p, want in ((0.0, {4}), (1.0, {1})):
        seen.clear()
        s = EpisodeSampler(clips, k_shot=4, holdout=("vid2",), seed=1, with_guide=True, guide_sources=3,
                           guide_single_p=p)
        assert s.sample(6).guide.shape == (6, 4, S, S)
        assert {n for n, _ in seen} == want and {k for _, k in seen} == {3}
    seen.clear()
    EpisodeSampler(clips, k_shot=4, holdout=("vid2",), seed=1, with_guide=True, guide_single_p=0.5).sample(40)
    assert 8 < sum(n == 1 for n, _ in seen) < 32                              # about half


def test_generator_starts_as_the_warp_and_head_has_no_spectral_norm():
    cfg = dataclasses.replace(TINY_WG, n_videos=2)
    E, G, D = build_models(cfg)
    assert G.uses_guide and not hasattr(G.head.delta, "parametrizations")
    assert hasattr(G.stem.conv_a, "parametrizations")                         # the body is spectral-normalised
    frames, lms, limg = face_clips(n_videos=1)["vid0"]
    guide = guide_tensor(*warp_guide(frames[:2], lms[:2], lms[2:6]))          # (4, 4, S, S)
    x = to_tensor(frames[:2])[None].expand(4, -1, -1, -1, -1)
    y = to_tensor(limg[:2])[None].expand(4, -1, -1, -1, -1)
    with torch.no_grad():
        out, m = G(to_tensor(limg[2:6]), G.project(E(x, y)), guide, return_mask=True)
    assert out.shape == (4, 3, S, S) and m.shape == (4, 1, S, S)
    assert torch.allclose(m, torch.full_like(m, torch.sigmoid(torch.tensor(-4.0)).item()))
    assert (out - guide[:, :3]).abs().max() < 2 * 0.0181                    # x_hat = W + m (g - W), |g - W| <= 2
    with pytest.raises(ValueError, match="warp guide"):
        G(to_tensor(limg[2:6]), G.project(E(x, y)))
    bake_spectral_norm(G)                                                     # export path: no error on the head


def _train(tmp_path, steps=3):
    from forge.train import MetaTrainer

    cfg = TrainConfig(model=TINY_WG, k_shot=2, batch_size=2, lr_g=1e-3, lr_d=1e-3, d_steps=1, holdout=("vid2",),
                      log_every=1, sample_every=2, checkpoint_every=1000, seed=0)
    tr = MetaTrainer(cfg, ArrayCache(face_clips()), tmp_path / "run")
    summary = tr.run(steps=steps, progress=False)
    return tr, summary


def test_training_samples_guides_and_continues_into_a_new_phase(tmp_path):
    from forge.train import MetaTrainer

    s = EpisodeSampler(ArrayCache(face_clips()), k_shot=2, holdout=("vid2",), seed=0, with_guide=True)
    ep = s.sample(3)
    assert ep.guide.shape == (3, 4, S, S)
    tr, summary = _train(tmp_path)
    assert summary["step"] == 3 and summary["generator"] == "warp_guided" and np.isfinite(summary["loss_g"])
    assert (tmp_path / "run" / "samples" / "step_0000002.png").exists()
    cfg2 = dataclasses.replace(tr.cfg, init_from=str(tmp_path / "run" / "checkpoint.pt"), lr_g=5e-4)
    tr2 = MetaTrainer(cfg2, ArrayCache(face_clips()), tmp_path / "phase2")
    assert tr2.step == 3 and torch.equal(tr2.G.head.delta.weight, tr.G.head.delta.weight)
    assert tr2.opt_g.param_groups[0]["lr"] == 5e-4 and tr2.opt_d.param_groups[0]["lr"] == tr.cfg.lr_d
    out = tr2.run(steps=4, progress=False)
    assert out["step"] == 4 and out["phases"][0]["until_step"] == 3 and out["phases"][0]["content_loss"] == "offline"
    # a new phase may change how the guide is built (same weights), not the architecture
    cfg3 = dataclasses.replace(cfg2, model=dataclasses.replace(TINY_WG, guide_sources=2), guide_single_p=0.5)
    assert MetaTrainer(cfg3, ArrayCache(face_clips()), tmp_path / "phase3").model_cfg.guide_sources == 2
    cfg4 = dataclasses.replace(cfg2, model=dataclasses.replace(TINY_WG, emb_dim=8))
    with pytest.raises(FaceforgeError, match="different model config"):
        MetaTrainer(cfg4, ArrayCache(face_clips()), tmp_path / "phase4")


def test_talker_ff_ft_render_and_person_file(tmp_path):
    from forge.checkpoint import export_inference
    from forge.talker import Person, Talker

    _train(tmp_path, steps=2)
    export_inference(tmp_path / "run" / "checkpoint.pt", tmp_path / "t.pt")
    t = Talker.load(tmp_path / "t.pt")
    assert t.uses_guide and t.generator == "warp_guided" and "wg-" in t.version
    frames, lms, limg = face_clips(n_videos=1, seed=3)["vid0"]
    ff = t.fit(frames[:2], lms[:2], mode="ff")
    assert ff.frames.shape == (2, S, S, 3) and ff.landmarks.shape == (2, 68, 2)
    video = t.render(ff, lms[2:8], batch_size=4)
    assert video.shape == (6, S, S, 3) and video.dtype == np.uint8
    assert np.array_equal(video, t.render(ff, lms[2:8], batch_size=16))     # batching does not matter
    with pytest.raises(FaceforgeError, match="coordinates"):
        t.fit(frames[:2], limg[:2])
    with pytest.raises(FaceforgeError, match="coordinates"):
        t.render(ff, limg[2:4])
    ft = t.fit(frames[:2], lms[:2], mode="ft", cfg=FitConfig(ft_steps=3, batch_size=2), seed=1)
    assert ft.g_state is not None and ft.info["ft_steps"] == 3 and "face net" in ft.info["ft_content_loss"]
    ft.save(tmp_path / "p.pt")
    back = Person.load(tmp_path / "p.pt")
    assert np.array_equal(back.frames, ft.frames) and np.allclose(back.landmarks, ft.landmarks)
    assert np.abs(t.render(back, lms[2:4]).astype(int) - t.render(ft, lms[2:4]).astype(int)).max() <= 1
    # the eval's "guide" method is the G's own input: with guide_sources 1 it is the warp baseline's image
    from forge.evaluate import EvalConfig, render_method

    args = (t, frames[:3], lms[:3], lms[3:6], EvalConfig(methods=("warp", "guide")), 3)
    assert np.array_equal(render_method("guide", *args), render_method("warp", *args))
    t.model_cfg = dataclasses.replace(t.model_cfg, guide_sources=3)
    assert not np.array_equal(render_method("guide", *args), render_method("warp", *args))
    assert t.render(ff, lms[2:8]).shape == (6, S, S, 3)                       # renders with a blended guide


def test_face_net_content_terms():
    from forge.config import ContentLossConfig
    from forge.losses import ContentLoss

    loss = ContentLoss(ContentLossConfig(identity_weight=1.0, perceptual_weight=0.5))
    assert loss.kind == "offline+facenet" and "identity 1 - cos x 1" in loss.description
    frames, lms, _ = face_clips(n_videos=1, seed=2)["vid0"]
    real = to_tensor(frames[:2])
    pts = torch.from_numpy(lms[:2]) * 4                                      # the 32 px face scaled to 128 px
    real = torch.nn.functional.interpolate(real, scale_factor=4, mode="bilinear")
    same = loss(real, real, pts)
    assert same["cnt_id"].abs() < 1e-5 and same["cnt_face"].abs() < 1e-5
    fake = (real.flip(0) * 0.5).requires_grad_(True)                         # the other picture, darker
    terms = loss(fake, real, pts)
    assert terms["cnt_id"] > 1e-4 and terms["cnt_face"] > 1e-3
    terms["cnt_id"].backward()
    assert fake.grad.abs().sum() > 0                                          # differentiable through the chips
    assert set(loss(fake, real)) == {"cnt_l1", "cnt_ssim"}                   # no landmarks: pixel terms only


def test_mouth_l1_hand_computed():
    from forge.metrics import mouth_box, mouth_l1

    lm = np.zeros((68, 2))
    lm[48:68] = [[10, 20]] * 10 + [[30, 30]] * 10                            # lips span x 10..30, y 20..30
    assert mouth_box(lm, 64, margin=0.0) == (10, 20, 30, 30)
    assert mouth_box(lm, 64) == (7, 18, 33, 32)                               # 15 % of 20 / 10 px per side
    a = np.zeros((1, 64, 64, 3), np.uint8)
    b = a.copy()
    b[0, 18:32, 7:33] = 40                                                    # differs exactly in the box
    b[0, 0:5, 0:5] = 255                                                      # outside the box: ignored
    assert mouth_l1(a, b, lm[None]) == pytest.approx(40.0)
