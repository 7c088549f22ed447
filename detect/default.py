"""The shipped default detector: ``detect/weights/default/`` is a finished detector run (config.yaml,
model.pt in fp16, metrics.json with the validation calibration) plus its card (``README.md``).

``default_run() -> Path`` is what ``load_run(None)`` and ``faceforge detect score`` (no ``--model``)
use; ``export_default(run)`` copies a trained run there, halving the weights to fp16.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.common import FaceforgeError, atomic_path, write_json_atomic

DEFAULT_RUN = Path(__file__).resolve().parent / "weights" / "default"
RUN_FILES = ("config.yaml", "model.pt", "metrics.json")
MAX_SHIPPED_MB = 30.0


def default_run() -> Path:
    """The shipped run folder; a clear error when the package was installed without it."""
    missing = [f for f in RUN_FILES if not (DEFAULT_RUN / f).is_file()]
    if missing:
        raise FaceforgeError(f"the shipped default detector is incomplete ({', '.join(missing)} missing in "
                             f"{DEFAULT_RUN}); pass --model RUN")
    return DEFAULT_RUN


def export_default(run: str | Path, out: str | Path = DEFAULT_RUN, extra_metrics: dict | None = None) -> Path:
    """Copy a finished run to ``out`` (fp16 weights, metrics merged with ``extra_metrics``)."""
    import torch

    run, out = Path(run), Path(out)
    metrics = json.loads((run / "metrics.json").read_text())
    if not metrics.get("done"):
        raise FaceforgeError(f"{run} has not finished training")
    out.mkdir(parents=True, exist_ok=True)
    state = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    with atomic_path(out / "model.pt") as tmp:
        torch.save(half, tmp)
    size_mb = (out / "model.pt").stat().st_size / 2**20
    if size_mb > MAX_SHIPPED_MB:
        raise FaceforgeError(f"shipped weights are {size_mb:.1f} MB (limit {MAX_SHIPPED_MB} MB)")
    shutil.copyfile(run / "config.yaml", out / "config.yaml")
    for extra in ("sbi_train.yaml", "history.csv"):
        if (run / extra).is_file():
            shutil.copyfile(run / extra, out / extra)
    write_json_atomic(out / "metrics.json", {**metrics, **(extra_metrics or {}), "weights_mb": round(size_mb, 2)})
    return out
