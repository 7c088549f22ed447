"""Shared fixtures: tiny inputs built in the test, plus the embedded real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.common import SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_video(sample_dir) -> Path:
    return sample_dir / "videos" / "hdtf_wda_katiehill.mp4"


@pytest.fixture(scope="session")
def sample_portrait(sample_dir) -> Path:
    return sample_dir / "portraits" / "s42.jpg"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_talker(tmp_path_factory):
    """An untrained 32 px talker: exercises the few-shot paths (FF/FT, render, resize from 64 px caches)
    without the slow shipped model."""
    from forge.checkpoint import export_random
    from forge.config import ModelConfig
    from forge.talker import Talker

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    export_random(path, ModelConfig(resolution=32, emb_dim=32, base_channels=8, max_channels=32,
                                    g_down_blocks=2, g_res_blocks=1, attn_down_res=8, attn_up_res=16))
    return Talker.load(path)
