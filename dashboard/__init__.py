"""faceforge.dashboard — the Streamlit review app, the main job and its report.

Public API (imported lazily; nothing heavy at import time):
- ``load_manifest``, ``DashboardConfig`` (``dashboard.data``), ``find_runs`` (``dashboard.runs``)
- ``ReviewStore``, ``wilson_interval``, ``user_metric``, ``make_triplet`` (``dashboard.review``)
"""

from __future__ import annotations

from core.common import lazy_exports

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

__getattr__, __dir__ = lazy_exports("dashboard", _LAZY)
