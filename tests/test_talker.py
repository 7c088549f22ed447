"""Inference API: export -> Talker.load -> FF/FT fit from 1 image -> render; Person files; bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forge.checkpoint import export_inference
from core.common import FaceforgeError
from forge.config import FitConfig
from forge.data.episodes import ArrayCache
from forge.talker import DEFAULT_CHECKPOINT, Person, Talker
from forge.train import MetaTrainer

from test_train import make_clips, tiny_cfg  # noqa: E402  (tests dir is on sys.path under pytest)


@pytest.fixture(scope="module")
def talker_path(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    tr = MetaTrainer(tiny_cfg(sample_every=0), ArrayCache(make_clips()), run)
    tr.run(steps=2, progress=False)
    out = run / "talker.pt"
    meta = export_inference(run / "checkpoint.pt", out)
    assert meta["step"] == 2 and meta["content_loss"] == "offline"
    return out


@pytest.fixture(scope="module")
def clip():
    frames, _, limg = make_clips(n_videos=1, n_frames=12, seed=5)["vid0"]
    return frames, limg


def test_load_export_and_ff_fit_from_one_image(talker_path, clip):
    frames, limg = clip
    t = Talker.load(talker_path)
    assert t.resolution == 32 and len(t.checkpoint_sha256) == 64 and "step2" in t.version
    person = t.fit(frames[:1], limg[:1], mode="ff")
    assert person.mode == "ff" and person.n_frames == 1 and person.g_state is None
    with torch.no_grad():  # FF: psi_hat = P e_hat, e_hat = E(x, y)
        from forge.data.episodes import to_tensor
        e = t.E(to_tensor(frames[:1])[None], to_tensor(limg[:1])[None])[0]
        assert torch.allclose(person.psi, t.G.project(e[None])[0], atol=1e-5)
    video = t.render(person, limg[2:12], batch_size=4)
    assert video.shape == (10, 32, 32, 3) and video.dtype == np.uint8
    assert np.array_equal(video, t.render(person, limg[2:12], batch_size=16))  # batching does not matter
    assert not np.array_equal(video[0], video[1])  # follows the landmarks


def test_ft_fit_from_one_image_learns_and_roundtrips(talker_path, clip, tmp_path):
    frames, limg = clip
    t = Talker.load(talker_path)
    cfg = FitConfig(ft_steps=12, lr_g=1e-3, lr_d=1e-3)
    person = t.fit(frames[:1], limg[:1], mode="ft", cfg=cfg, seed=1)
    assert person.mode == "ft" and person.g_state is not None and person.info["ft_steps"] == 12
    assert person.info["ft_last"]["cnt_l1"] < person.info["ft_first"]["cnt_l1"]
    ff = t.fit(frames[:1], limg[:1], mode="ff")
    assert not torch.equal(person.psi, ff.psi)  # psi' was fine-tuned away from P e_hat
    out = t.render(person, limg[:1])
    # the fine-tuned generator reproduces its training frame better than FF does
    err = lambda a: np.abs(a.astype(float) - frames[:1].astype(float)).mean()  # noqa: E731
    assert err(out) < err(t.render(ff, limg[:1]))
    person.save(tmp_path / "p.pt")
    back = Person.load(tmp_path / "p.pt")
    assert back.mode == "ft" and back.checkpoint_sha256 == t.checkpoint_sha256
    assert np.abs(t.render(back, limg[:3]).astype(int) - t.render(person, limg[:3]).astype(int)).max() <= 1


def test_shipped_checkpoint_loads():
    from benchmarks.forge_speed import _mean_face

    assert DEFAULT_CHECKPOINT.name == "talker128.pt" and DEFAULT_CHECKPOINT.stat().st_size <= 30e6
    t = Talker.load(None)
    assert t.resolution == 128 and t.generator == "warp_guided"
    frame = np.full((1, 128, 128, 3), 120, np.uint8)
    lm = _mean_face(128)[None]                                            # (1, 68, 2)
    assert t.render(t.fit(frame, lm), lm).shape == (1, 128, 128, 3)


def test_bad_inputs(talker_path, clip, tmp_path):
    frames, limg = clip
    t = Talker.load(talker_path)
    with pytest.raises(FaceforgeError, match="uint8"):
        t.fit(np.zeros((1, 64, 64, 3), np.uint8), np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(FaceforgeError, match="expected 2"):
        t.fit(frames[:2], limg[:3])
    with pytest.raises(FaceforgeError, match="mode"):
        t.fit(frames[:1], limg[:1], mode="xx")
    with pytest.raises(FaceforgeError, match="empty"):
        t.render(t.fit(frames[:1], limg[:1]), limg[:0])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(FaceforgeError, match="cannot read"):
        Talker.load(junk)
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(FaceforgeError, match="not a faceforge talker"):
        Talker.load(tmp_path / "other.pt")
    with pytest.raises(FaceforgeError, match="not a fitted person"):
        Person.load(tmp_path / "other.pt")
    with pytest.raises(FaceforgeError, match="not found"):
        Talker.load(tmp_path / "missing.pt")


def test_fit_command_portrait_without_face(talker_path, tmp_path, capsys):
    from PIL import Image

    from forge.cli import main

    blank = tmp_path / "wall.jpg"
    Image.fromarray(np.full((120, 100, 3), 200, np.uint8)).save(blank)
    code = main(["forge", "fit", "--checkpoint", str(talker_path), "--images", str(blank), "--out", str(tmp_path / "p.pt")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("faceforge: error: no face found in wall.jpg")
    assert not (tmp_path / "p.pt").exists()


def test_export_command(talker_path, tmp_path, capsys):
    from forge.cli import main

    run = talker_path.parent
    assert main(["forge", "export", "--checkpoint", str(run), "--out", str(tmp_path / "t.pt"), "--no-discriminator"]) == 0
    assert "exported step 2" in capsys.readouterr().out
    t = Talker.load(tmp_path / "t.pt")
    with pytest.raises(FaceforgeError, match="no discriminator"):
        t.fit(np.zeros((1, 32, 32, 3), np.uint8), np.zeros((1, 32, 32, 3), np.uint8), mode="ft")


def test_average_exports_is_the_weighted_mean_of_the_weights(tmp_path, capsys):
    from forge.checkpoint import export_random, load_export
    from forge.cli import main
    from forge.config import ModelConfig

    cfg = ModelConfig(resolution=32, emb_dim=16, base_channels=8, max_channels=16, g_down_blocks=2, g_res_blocks=1,
                      attn_down_res=8, attn_up_res=0)
    a, b, out = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "soup.pt"
    export_random(a, cfg, seed=0)
    export_random(b, cfg, seed=1)
    assert main(["forge", "export", "--average", str(a), str(b), "--weights", "1", "3", "--out", str(out)]) == 0
    assert "averaged 2 exports" in capsys.readouterr().out
    ea, eb, soup = load_export(a), load_export(b), load_export(out)
    for net in ("E", "G", "D"):
        for k, v in soup[net].items():
            want = 0.25 * ea[net][k].float() + 0.75 * eb[net][k].float()
            assert v.dtype == torch.float16 and torch.allclose(v.float(), want, atol=2e-3), (net, k)
    assert [p["weight"] for p in soup["meta"]["averaged"]] == [0.25, 0.75]
    Talker.load(out)                                                            # loads as any export
    export_random(b, ModelConfig(resolution=32, emb_dim=8, base_channels=8, max_channels=16, g_down_blocks=2,
                                 g_res_blocks=1, attn_down_res=8, attn_up_res=0))
    assert main(["forge", "export", "--average", str(a), str(b), "--out", str(out)]) != 0  # other architecture


def test_ft_recipe_follows_the_exports_last_training_objective(talker_path, clip, tmp_path):
    frames, limg = clip
    t = Talker.load(talker_path)
    assert t.meta["adversarial"] == {"lambda_adv": 1.0, "lambda_fm": 10.0}        # tiny_cfg's, from the export
    assert t.default_fit_config().lambda_adv == 1.0 and t.default_fit_config().lambda_fm == 10.0
    state = torch.load(talker_path, weights_only=True)
    state["meta"]["adversarial"] = {"lambda_adv": 0.0, "lambda_fm": 0.0}          # G last trained without them
    torch.save(state, tmp_path / "noadv.pt")
    t0 = Talker.load(tmp_path / "noadv.pt")
    cfg = t0.default_fit_config()
    assert cfg.lambda_adv == 0.0 and cfg.lambda_fm == 0.0 and cfg.ft_steps == FitConfig().ft_steps
    person = t0.fit(frames[:1], limg[:1], mode="ft", steps=2)
    assert person.info["ft_lambda_adv"] == 0.0 and set(person.info["ft_last"]) >= {"adv", "fm"}
    assert person.info["ft_last"]["adv"] == 0.0 and person.info["ft_last"]["fm"] == 0.0
