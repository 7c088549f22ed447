"""The paper's three networks: ``Embedder`` (E), ``Generator`` (G, with the projection P) and the
projection ``Discriminator`` (D). Imported lazily so that ``import forge.model`` is cheap."""

__all__ = ["Embedder", "Generator", "Discriminator", "build_models"]


def __getattr__(name):
    if name == "Embedder":
        from forge.model.embedder import Embedder
        return Embedder
    if name == "Generator":
        from forge.model.generator import Generator
        return Generator
    if name == "Discriminator":
        from forge.model.discriminator import Discriminator
        return Discriminator
    if name == "build_models":
        from forge.model.build import build_models
        return build_models
    raise AttributeError(name)
