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
RUN_FILES = ("config.yaml", "metrics.json")
MAX_SHIPPED_MB = 30.0


def default_run() -> Path:
    """The shipped run folder; a clear error when the package was installed without it."""
    missing = [f for f in RUN_FILES if not (DEFAULT_RUN / f).is_file()]
    if missing:
        raise FaceforgeError(f"the shipped default detector is incomplete ({', '.join(missing)} missing in "
                             f"{DEFAULT_RUN}); pass --model RUN")
    return DEFAULT_RUN


def reliability(metrics: dict) -> str | None:
    """One sentence on how far a run's verdicts can be trusted, from its ``metrics["measured"]`` (held-out
    figures written by the benchmarks; the shipped default carries them), or None when it has none."""
    m = metrics.get("measured") or {}
    parts = []
    if "third_party" in m:
        t = m["third_party"]
        acc = f"; accuracy at its threshold {t['accuracy_at_threshold']:.0%}" if "accuracy_at_threshold" in t else ""
        parts.append(f"video AUC {t['video_auc']:.2f} on {t['n_fake'] + t['n_real']} videos of {t['families']} "
                     f"third-party generators and real clips{acc}")
    if "corpus_test" in m:
        c = m["corpus_test"]
        parts.append(f"{c['c23']:.2f} (c23) / {c['c40']:.2f} (c40) on our own corpus's held-out people")
    if not parts:
        return None
    sources = ", ".join(sorted({v["source"] for v in m.values() if isinstance(v, dict) and "source" in v}))
    return f"measured: {'; '.join(parts)}. A screening signal, not proof ({sources})."


def _copy_weights(src: Path, dst: Path) -> None:
    """One run folder's weights: ``model.pt`` halved to fp16, other model files copied."""
    import torch

    dst.mkdir(parents=True, exist_ok=True)
    if (src / "model.pt").is_file():
        state = torch.load(src / "model.pt", map_location="cpu", weights_only=True)
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
        with atomic_path(dst / "model.pt") as tmp:
            torch.save(half, tmp)
    for name in ("model.joblib", "ensemble.json", "config.yaml", "sbi_train.yaml", "history.csv"):
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)


def export_default(run: str | Path, out: str | Path = DEFAULT_RUN, extra_metrics: dict | None = None) -> Path:
    """Copy a finished run to ``out`` (fp16 weights, metrics merged with ``extra_metrics``); an ensemble
    run brings its members (``members/<name>/``, each exported the same way)."""
    run, out = Path(run), Path(out)
    metrics = json.loads((run / "metrics.json").read_text())
    if not metrics.get("done"):
        raise FaceforgeError(f"{run} has not finished training")
    _copy_weights(run, out)
    if (out / "members").exists():
        shutil.rmtree(out / "members")
    for member in sorted((run / "members").glob("*")) if (run / "members").is_dir() else []:
        _copy_weights(member, out / "members" / member.name)
    for stale in ("model.pt", "model.joblib", "ensemble.json", "sbi_train.yaml", "history.csv"):
        if (out / stale).is_file() and not (run / stale).is_file():                  # left by another kind of run
            (out / stale).unlink()
    weights = [p for p in out.rglob("*") if p.name in ("model.pt", "model.joblib")]
    if not weights:
        raise FaceforgeError(f"{run} holds no model weights")
    size_mb = sum(p.stat().st_size for p in weights) / 2**20
    if size_mb > MAX_SHIPPED_MB:
        raise FaceforgeError(f"shipped weights are {size_mb:.1f} MB (limit {MAX_SHIPPED_MB} MB)")
    write_json_atomic(out / "metrics.json", {**metrics, **(extra_metrics or {}), "weights_mb": round(size_mb, 2)})
    return out
