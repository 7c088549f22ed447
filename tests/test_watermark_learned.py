"""The learned watermark option (provenance.watermark.learned): shapes, PSNR by construction, the
payload statistic, a short training run (config saved, resume), the codec API and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.common import FaceforgeError
from provenance.watermark.learned import codec, payload
from provenance.watermark.learned.model import LearnedWatermark, ModelConfig, amplitude, fold, tiled

SMALL = ModelConfig(channels=8)


def _host(n=2, size=128, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(120, 30, (n, 1, size // 8, size // 8))
    y = torch.nn.functional.interpolate(torch.tensor(base, dtype=torch.float32), size=(size, size), mode="bilinear")
    return (y + torch.tensor(rng.normal(0, 3, y.shape), dtype=torch.float32)).clamp(0, 255)


def _save(model, path):
    from dataclasses import asdict

    torch.save({"config": asdict(model.cfg), "state": model.state_dict()}, path)
    return str(path)


def test_shapes_fold_tile_and_psnr_by_construction():
    torch.manual_seed(0)
    model = LearnedWatermark(SMALL).eval()
    y = _host()
    bits = torch.from_numpy(payload.carried_bits([1, 2], SMALL.key))              # (2, 162)
    assert bits.shape == (2, 162) and set(bits.unique().tolist()) == {-1.0, 1.0}
    with torch.no_grad():
        delta = model.residual(y, bits)                                          # (2, 1, 128, 128)
        assert delta.shape == y.shape
        rms = float(delta.pow(2).mean().sqrt())
        assert rms == pytest.approx(amplitude(SMALL.psnr_db), rel=1e-3)
        assert 10 * math.log10(255 ** 2 / rms ** 2) >= SMALL.psnr_db
        assert torch.allclose(delta[..., :64, :64], delta[..., 64:, 64:])        # one tile, repeated
        for crop in ((128, 128), (107, 107), (64, 90)):
            logits = model.decoder(y[..., :crop[0], :crop[1]])
            assert logits.shape == (2, 162)
    t = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.allclose(fold(tiled(t, 10, 7), 4), t)                           # fold inverts tiling


def test_payload_statistic_round_trip_and_null():
    short = 0xDEADBEEF
    bits = payload.carried_bits([short], "k")[0]                                  # (162,) +-1
    flipped = bits.copy()
    flipped[::9] *= -1                                                           # 18 bit errors
    r = payload.read(flipped * 2.0, "k")
    assert r["payload"] == short and r["agree"] == 162 - 18 and r["blind_p"] < 1e-6
    assert payload.read(bits * 2.0, "other-key")["payload"] is None              # wrong key: no CRC
    rng = np.random.default_rng(0)
    ps = [payload.read(rng.normal(size=162), "k")["blind_p"] for _ in range(40)]
    assert min(ps) > 1e-3                                                       # noise: nothing close to alpha
    m = payload.store_match(flipped, [5, short, 7], "k")
    assert m["payload"] == short and m["store_p"] < 1e-20 and m["second"] < 100
    assert payload.binom_sf(0, 10) == 1.0 and payload.binom_sf(10, 10) == pytest.approx(2 ** -10)


def test_codec_embed_decode_api(tmp_path):
    torch.manual_seed(0)
    model = LearnedWatermark(SMALL)
    cfg = codec.LearnedConfig(weights=_save(model, tmp_path / "w.pt"))
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal(128, 25, (128, 128, 3)), 0, 255).astype(np.uint8)
    marked = codec.embed(img, 0x0123456789ABCDEF, cfg)
    assert marked.shape == img.shape and marked.dtype == np.uint8
    mse = np.mean((marked.astype(float) - img) ** 2)
    assert 10 * math.log10(255 ** 2 / mse) >= 40.0
    clip = codec.embed(np.stack([img, img]), 5, cfg)
    assert clip.shape == (2, 128, 128, 3) and np.array_equal(clip[0], clip[1])
    r = codec.decode(marked, cfg)                                                # untrained: no detection
    assert not r.detected and r.extras["watermark"] == "learned" and r.tests == 2
    with pytest.raises(FaceforgeError):
        codec.embed(img.astype(np.float32), 1, cfg)
    with pytest.raises(FaceforgeError):
        codec.embed(img, -1, cfg)
    with pytest.raises(FaceforgeError):
        codec.embed(img[:40, :40], 1, cfg)
    with pytest.raises(FaceforgeError):
        codec.decode(img[:10, :10], cfg)
    with pytest.raises(FaceforgeError):
        codec.load_model(codec.LearnedConfig(weights=str(tmp_path / "missing.pt")))
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(FaceforgeError):
        codec.load_model(codec.LearnedConfig(weights=str(tmp_path / "bad.pt")))


def test_watermark_api_method_flag(tmp_path):
    from provenance import watermark

    rng = np.random.default_rng(2)
    img = np.clip(rng.normal(128, 25, (96, 96, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(FaceforgeError):
        watermark.embed(img, 1, watermark.WatermarkConfig(method="nope"))
    torch.manual_seed(0)
    w = _save(LearnedWatermark(SMALL), tmp_path / "w.pt")
    marked = watermark.embed(img, 1, watermark.WatermarkConfig(method="learned", learned_weights=w))
    assert marked.shape == img.shape and not np.array_equal(marked, img)


def _fake_cache(root, people=("a", "b", "c"), frames=3):
    import cv2
    import pandas as pd

    rng = np.random.default_rng(3)
    (root / "videos").mkdir(parents=True)
    rows = []
    for p in people:
        blobs = [cv2.imencode(".jpg", rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))[1].tobytes()
                 for _ in range(frames)]
        pd.DataFrame({"valid": [True] * frames, "image": blobs}).to_parquet(root / "videos" / f"{p}.parquet")
        rows.append({"video_id": p, "identity": p, "status": "ok"})
    pd.DataFrame(rows).to_parquet(root / "videos.parquet")
    return root


def test_train_saves_config_checkpoints_and_resumes(tmp_path):
    import json

    from provenance.watermark.learned.train import TrainConfig, train

    cache = _fake_cache(tmp_path / "cache")
    cfg = TrainConfig(model=SMALL, exclude=("c",), n_val_people=1, every=1, batch=2, warmup=1,
                      attacks=(("none", 1.0), ("crop", 1.0)), max_minutes=0.004, val_images=2)
    out = tmp_path / "run"
    w = train(cache, out, cfg, export=tmp_path / "ship.pt")
    assert (out / "config.yaml").is_file() and (out / "ckpt.pt").is_file() and w.is_file()
    step = torch.load(out / "ckpt.pt", weights_only=False)["step"]
    assert step >= 1 and json.loads((out / "val.jsonl").read_text().splitlines()[-1])["step"] == step
    assert codec.load_model(codec.LearnedConfig(weights=str(tmp_path / "ship.pt"))).cfg == SMALL
    from dataclasses import replace

    train(cache, out, replace(cfg, max_minutes=0.008))                           # resumes, for longer
    assert torch.load(out / "ckpt.pt", weights_only=False)["step"] > step
    with pytest.raises(FaceforgeError):
        train(cache, out, TrainConfig(model=SMALL, batch=3))                     # another config


def test_quickly_trained_model_round_trips_and_decode_names_it(tmp_path):
    """150 steps on smooth random hosts at high strength (24 dB), no attack: the payload reads back, and
    provenance.watermark.decode reports it as the learned mark."""
    from provenance import watermark

    torch.manual_seed(0)
    cfg = ModelConfig(channels=8, psnr_db=24.0)
    model = LearnedWatermark(cfg)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    rng = np.random.default_rng(0)
    for _ in range(150):
        y = _host(8, seed=int(rng.integers(1 << 30)))
        bits = torch.from_numpy(payload.carried_bits(rng.integers(0, 2 ** 32, 8, dtype=np.uint64), cfg.key))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model.decoder(model(y, bits)), (bits > 0).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = _save(model, tmp_path / "w.pt")
    img = np.repeat(_host(1, seed=99)[0, 0].round().byte().numpy()[..., None], 3, axis=2)   # (128, 128, 3)
    pay = 0xA5A5A5A5_12345678
    marked = watermark.embed(img, pay, watermark.WatermarkConfig(method="learned", learned_weights=w))
    r = codec.decode(marked, codec.LearnedConfig(weights=w))
    assert r.detected and r.payload == watermark.short_id(pay) and r.payload_bits == 32 and r.p_value < 1e-6
    m = codec.decode(marked, codec.LearnedConfig(weights=w), candidates=[1, 2, pay])
    assert m.payload == watermark.short_id(pay)
    both = watermark.decode(marked, watermark.WatermarkConfig(learned_weights=w))
    assert both.detected and both.extras["watermark"] == "learned" and both.payload == watermark.short_id(pay)
    assert not codec.decode(img, codec.LearnedConfig(weights=w)).detected              # unmarked
