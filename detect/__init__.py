"""faceforge.detect — deepfake detectors trained and scored against faceforge corpora.

Public API (imported lazily, so ``import detect`` pulls in neither torch nor scikit-learn):
- ``list_detectors() -> {name: description}``
- ``train(corpus, out, cfg: DetectConfig) -> metrics dict``
- ``load_run(run) -> LoadedRun``; ``score_files(run, files, ...) -> DataFrame`` (per video)
- ``evaluate(run, corpus, split="test", filters=()) -> metrics dict`` (writes ``RUN/eval/<name>/``)
- ``metrics``: AUC, AP, EER, calibrated accuracy, log loss, ECE (pure functions)
"""

from __future__ import annotations

from core.common import lazy_exports

_LAZY = {
    "list_detectors": "detect.registry",
    "register": "detect.registry",
    "DetectConfig": "detect.config",
    "train": "detect.train",
    "load_run": "detect.score",
    "score_files": "detect.score",
    "evaluate": "detect.evaluate",
    "load_manifest": "detect.data",
}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports("detect", _LAZY)
