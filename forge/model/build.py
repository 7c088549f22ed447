"""Build E, G (the paper's or the warp-guided one, ``ModelConfig.generator``), D from a ``ModelConfig``."""

from __future__ import annotations

from forge.config import ModelConfig


def build_models(cfg: ModelConfig, with_discriminator: bool = True):
    from forge.model.discriminator import Discriminator
    from forge.model.embedder import Embedder
    from forge.model.generator import Generator
    from forge.model.warp_guided import WarpGuidedGenerator

    G = WarpGuidedGenerator(cfg) if cfg.generator == "warp_guided" else Generator(cfg)
    E = Embedder(cfg)
    D = Discriminator(cfg) if with_discriminator else None
    return E, G, D
