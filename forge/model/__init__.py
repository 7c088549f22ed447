"""The paper's three networks: ``Embedder`` (E), ``Generator`` (G, with the projection P) and the
projection ``Discriminator`` (D), plus our ``WarpGuidedGenerator`` (G refining the warp baseline). Imported lazily so that
``import forge.model`` is cheap."""

from core.common import lazy_exports

_EXPORTS = {"Embedder": ".embedder", "Generator": ".generator", "Discriminator": ".discriminator",
            "WarpGuidedGenerator": ".warp_guided", "build_models": ".build"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("forge.model", _EXPORTS)
