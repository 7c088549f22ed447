"""Shapes and values of the paper's modules and losses at 32-64 px."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.common import FaceforgeError
from forge.config import ContentLossConfig, ModelConfig, load_train_config
from forge.losses import (ContentLoss, caffe_preprocess, discriminator_hinge, embedding_match,
                          feature_matching, generator_adversarial, ssim)
from forge.model import build_models
from forge.model.blocks import (AdaIN, ResBlockAdaIN, ResBlockDown, ResBlockUp, SelfAttention,
                                add_spectral_norm, bake_spectral_norm, count_params)

torch.set_num_threads(1)  # shared 2-core test machine: avoid thread oversubscription

TINY = ModelConfig(resolution=32, emb_dim=32, base_channels=8, max_channels=32, g_down_blocks=2,
                   g_res_blocks=1, attn_down_res=8, attn_up_res=16, n_videos=3)


def test_blocks_shapes():
    x = torch.randn(2, 8, 16, 16)
    assert ResBlockDown(8, 16)(x).shape == (2, 16, 8, 8)
    assert ResBlockDown(8, 8, down=False)(x).shape == (2, 8, 16, 16)
    up = ResBlockUp(8, 4)
    assert up(x, torch.zeros(2, up.n_params)).shape == (2, 4, 32, 32)
    assert up.n_params == 2 * 8 + 2 * 4
    res = ResBlockAdaIN(8)
    assert res(x, torch.zeros(2, res.n_params)).shape == x.shape
    att = SelfAttention(8)
    assert torch.equal(att(x), x)  # gamma starts at 0: identity


def test_adain_values():
    x = torch.randn(2, 3, 5, 5) * 4 + 2
    out = AdaIN(3)(x, torch.zeros(2, 6))  # zero projection -> plain instance norm
    assert torch.allclose(out.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), torch.ones(2, 3), atol=1e-3)
    params = torch.tensor([[1.0, 0, 0, 0.5, 0, 0]]).repeat(2, 1)  # gamma_0 = 1 -> scale 2, beta_0 = 0.5
    out2 = AdaIN(3)(x, params)
    assert torch.allclose(out2[:, 0], 2 * out[:, 0] + 0.5, atol=1e-5)


@pytest.mark.parametrize("res", [32, 64])
def test_model_shapes(res):
    cfg = dataclasses.replace(TINY, resolution=res, attn_up_res=res // 2)
    E, G, D = build_models(cfg)
    x, y = torch.rand(2, 3, 3, res, res) * 2 - 1, torch.rand(2, 3, 3, res, res) * 2 - 1
    e = E(x, y)  # (B, K, 3, S, S) -> (B, N)
    assert e.shape == (2, 32)
    psi = G.project(e)
    assert psi.shape == (2, G.n_psi) and G.n_psi == sum(G.psi_sizes)
    fake = G(y[:, 0], psi)
    assert fake.shape == (2, 3, res, res) and fake.abs().max() <= 1
    r, feats = D(fake, y[:, 0], D.W[torch.tensor([0, 2])])
    assert r.shape == (2,)
    assert len(feats) == cfg.n_down + 1 and feats[-1].shape[-1] == 4
    assert D.W.shape == (3, 32)
    # E averages over the K frames: the embedding of a repeated frame equals the single-frame one
    E.eval()  # (no spectral-norm power iteration between the two calls)
    rep = E(x[:, :1].repeat(1, 3, 1, 1, 1), y[:, :1].repeat(1, 3, 1, 1, 1))
    assert torch.allclose(rep, E(x[:, :1], y[:, :1]), atol=1e-4)


def test_paper_sizes_256():
    cfg = load_train_config("256").model
    assert cfg.resolution == 256 and cfg.emb_dim == 512
    E, G, D = build_models(dataclasses.replace(cfg, n_videos=1, spectral_norm=False))
    # paper: E 15 M, G 38 M, D's convolutional part 20 M
    assert 14e6 < count_params(E) < 16e6
    assert 34e6 < count_params(G) < 40e6
    assert 19e6 < count_params(D.net) < 21e6


def test_spectral_norm_and_bake():
    torch.manual_seed(0)
    E, G, _ = build_models(TINY, with_discriminator=False)
    conv = G.to_rgb
    assert hasattr(conv, "parametrizations")
    y, psi = torch.rand(1, 3, 32, 32), torch.randn(1, G.n_psi) * 0.1
    with torch.no_grad():
        for _ in range(30):  # power iterations run in train-mode forwards (as during training)
            G(y, psi)
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert abs(float(sigma) - 1) < 1e-2
    G.eval()
    before = G(y, psi).detach()
    bake_spectral_norm(G)
    assert not hasattr(G.to_rgb, "parametrizations") or "weight" not in G.to_rgb.parametrizations
    assert torch.allclose(G(y, psi), before, atol=1e-5)
    add_spectral_norm(G)  # re-applying to normalised weights changes (almost) nothing
    G.eval()
    assert float((G(y, psi).detach() - before).abs().mean()) < 2e-2  # power-iteration estimates differ slightly


def test_adversarial_losses_values():
    r_real, r_fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    d = discriminator_hinge(r_real, r_fake)
    assert float(d["d_real"]) == pytest.approx((0 + 0.5) / 2)
    assert float(d["d_fake"]) == pytest.approx((0 + 1) / 2)
    f = [torch.ones(2, 3), torch.zeros(2, 2)]
    g = generator_adversarial(r_fake, f, [torch.zeros(2, 3), torch.zeros(2, 2)], lambda_fm=10)
    assert float(g["adv"]) == pytest.approx(1.0)
    assert float(g["fm"]) == pytest.approx(10.0)
    assert float(feature_matching(f, f)) == 0
    m = embedding_match(torch.zeros(2, 4), torch.full((2, 4), 0.5), lambda_mch=80)
    assert float(m["mch"]) == pytest.approx(40.0)


def test_offline_content_loss():
    loss = ContentLoss(ContentLossConfig())
    assert loss.kind == "offline"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    terms = loss(x, x)
    assert set(terms) == {"cnt_l1", "cnt_ssim"}
    assert float(sum(terms.values())) == pytest.approx(0, abs=1e-5)
    assert float(ssim(x, x)) == pytest.approx(1, abs=1e-5)
    assert float(loss(x, -x)["cnt_l1"]) > 0.5


def test_vgg_content_loss_caffe_input(tmp_path):
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)  # R=-1, G=0, B=1
    out = caffe_preprocess(x, (100.0, 110.0, 120.0)).flatten()
    assert out.tolist() == pytest.approx([255 - 100, 127.5 - 110, 0 - 120])  # BGR, 0-255, mean-subtracted
    from torch import nn
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    for arch, key in (("vgg19", "E"), ("vgg16", "D")):
        feats = make_layers(cfgs[key])
        torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, tmp_path / f"{arch}.pth")
    cfg = ContentLossConfig(vgg19_weights=str(tmp_path / "vgg19.pth"), vggface_weights=str(tmp_path / "vgg16.pth"))
    loss = ContentLoss(cfg)
    assert loss.kind == "vgg" and "caffe" in loss.description
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(sum(loss(a, a).values())) == 0
    terms = loss(a, b)
    assert set(terms) == {"cnt_vgg19", "cnt_vggface"} and all(float(v) > 0 for v in terms.values())
    with pytest.raises(FaceforgeError, match="weights not found"):
        ContentLoss(ContentLossConfig(vgg19_weights="/nope.pth", vggface_weights="/nope.pth"))
    with pytest.raises(FaceforgeError, match="needs both"):
        ContentLoss(ContentLossConfig(kind="vgg"))
    assert isinstance(loss.vgg19.features, nn.Sequential)


def test_bad_configs():
    with pytest.raises(ValueError):
        ModelConfig(resolution=48)
    with pytest.raises(FaceforgeError, match="unknown"):
        load_train_config("64", {"nope": 1})
