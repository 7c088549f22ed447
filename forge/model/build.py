"""Build E, G, D from a ``ModelConfig``."""

from __future__ import annotations

from forge.config import ModelConfig


def build_models(cfg: ModelConfig, with_discriminator: bool = True):
    from forge.model.discriminator import Discriminator
    from forge.model.embedder import Embedder
    from forge.model.generator import Generator

    E, G = Embedder(cfg), Generator(cfg)
    D = Discriminator(cfg) if with_discriminator else None
    return E, G, D
