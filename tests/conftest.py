"""Shared fixtures: tiny inputs built in the test, plus the embedded real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forge.common import SAMPLE_DIR


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
