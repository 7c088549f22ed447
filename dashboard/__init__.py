"""faceforge.dashboard — the Streamlit review app, the main job and its report.

Public API (imported lazily; nothing heavy at import time):
- ``load_manifest``, ``DashboardConfig`` (``dashboard.data``), ``find_runs`` (``dashboard.runs``)
- ``ReviewStore``, ``wilson_interval``, ``user_metric``, ``make_triplet`` (``dashboard.review``)
"""

from __future__ import annotations

import importlib

_LAZY = {
    "DashboardConfig": "dashboard.data",
    "load_manifest": "dashboard.data",
    "find_runs": "dashboard.runs",
    "ReviewStore": "dashboard.review",
    "wilson_interval": "dashboard.review",
    "user_metric": "dashboard.review",
    "make_triplet": "dashboard.review",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dashboard' has no attribute {name!r}")
