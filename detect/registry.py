"""One registry of detectors: name -> class. Registering a name twice is an error.

Detector modules import only numpy at module level, so listing detectors is cheap.
"""

from __future__ import annotations

import importlib
from typing import Callable

from core.common import FaceforgeError

_REGISTRY: dict[str, type] = {}
# modules whose import registers the built-in detectors
_BUILTIN_MODULES = ("detect.detectors.cnn", "detect.detectors.frequency", "detect.detectors.temporal",
                    "detect.detectors.blend", "detect.detectors.blendstats", "detect.detectors.ensemble")
_loaded = False


class DuplicateDetectorError(ValueError):
    """A second detector tried to register a name already taken."""


def register(name: str) -> Callable[[type], type]:
    """Class decorator: ``@register("xception")``; sets ``cls.name``."""

    def deco(cls: type) -> type:
        if name in _REGISTRY:
            raise DuplicateDetectorError(f"detector {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)
        _loaded = True


def list_detectors() -> dict[str, str]:
    """name -> one-line description, sorted by name."""
    _load_builtins()
    return {n: (c.__doc__ or "").strip().splitlines()[0] for n, c in sorted(_REGISTRY.items())}


def get_detector_class(name: str) -> type:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FaceforgeError(f"unknown detector {name!r}; choose from: {', '.join(sorted(_REGISTRY))}") from None
