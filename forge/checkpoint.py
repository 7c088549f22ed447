"""Checkpoints: full training state (atomic, exact resume) and the small fp16 inference export.

Both are plain dicts of tensors / numbers / strings, loaded with ``torch.load(weights_only=True)``.

Export format (``talker*.pt``): ``{"format": "faceforge-talker", "version", "model_cfg" (dict,
spectral_norm baked in), "E", "G" (includes the projection P), "D" (V, w0, b: needed by FT
fine-tuning; the per-video W is dropped), "meta" (training summary)}``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from core.common import FaceforgeError, atomic_path, require_file

EXPORT_FORMAT = "faceforge-talker"
EXPORT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    p = require_file(path, "checkpoint")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt/foreign files become one clear line
        raise FaceforgeError(f"cannot read checkpoint {p}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None


def _baked_half(module: torch.nn.Module, drop=()) -> dict:
    import copy

    from forge.model.blocks import bake_spectral_norm

    m = bake_spectral_norm(copy.deepcopy(module).float().cpu())
    return {k: v.half() for k, v in m.state_dict().items() if k not in drop}


def export_inference(train_ckpt: str | Path, out: str | Path, with_discriminator: bool = True) -> dict:
    """Training checkpoint -> fp16 inference file (G + E + P, + D's V for FT). Returns its meta."""
    from forge.config import ModelConfig
    from forge.model import build_models

    ck = load_checkpoint(train_ckpt)
    if "E" not in ck or "model_cfg" not in ck:
        raise FaceforgeError(f"{train_ckpt} is not a faceforge training checkpoint")
    cfg = ModelConfig(**ck["model_cfg"])
    E, G, D = build_models(cfg)
    E.load_state_dict(ck["E"])
    G.load_state_dict(ck["G"])
    D.load_state_dict(ck["D"])
    state = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "model_cfg": dataclasses.asdict(dataclasses.replace(cfg, spectral_norm=False)),
        "E": _baked_half(E),
        "G": _baked_half(G),
        "meta": dict(ck.get("meta", {}), step=int(ck["step"]), spectral_norm_baked=True,
                     adversarial=_adversarial_weights(ck)),
    }
    if with_discriminator:
        state["D"] = _baked_half(D, drop=("W",))
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return state["meta"]


def _adversarial_weights(ck: dict) -> dict | None:
    """The last phase's G adversarial weights {"lambda_adv", "lambda_fm"} (None if not recorded): FT
    fitting continues the objective G was last trained with (``forge.talker.Talker.default_fit_config``)."""
    import json

    try:
        cfg = json.loads(ck["train_cfg"])
        return {"lambda_adv": float(cfg["lambda_adv"]), "lambda_fm": float(cfg["lambda_fm"])}
    except (KeyError, TypeError, ValueError):
        return None


def average_exports(paths: list[str | Path], weights: list[float], out: str | Path) -> dict:
    """Weight averaging of exports of ONE training run at different steps (a checkpoint soup, ours): each
    float tensor of E, G, D becomes sum_i w_i * tensor_i (weights normalised to 1, computed in fp32, saved
    fp16). The exports' model configs must match. Returns the new meta."""
    if len(paths) < 2 or len(paths) != len(weights) or min(weights) < 0 or sum(weights) <= 0:
        raise FaceforgeError("average_exports needs >= 2 exports and as many non-negative weights")
    cks = [load_export(p) for p in paths]
    if any(ck["model_cfg"] != cks[0]["model_cfg"] or set(ck) != set(cks[0]) for ck in cks[1:]):
        raise FaceforgeError("exports to average must share the model config (steps of one training run)")
    w = [float(x) / sum(weights) for x in weights]
    state = {k: v for k, v in cks[0].items() if k not in ("E", "G", "D", "meta")}
    for net in ("E", "G", "D"):
        if net in cks[0]:
            state[net] = {k: (sum(wi * ck[net][k].float() for wi, ck in zip(w, cks)).to(v.dtype)
                              if v.is_floating_point() else v) for k, v in cks[0][net].items()}
    last = max(cks, key=lambda ck: int(ck["meta"].get("step", 0)))
    state["meta"] = dict(last["meta"], averaged=[{"export": str(p), "step": int(ck["meta"].get("step", 0)),
                                                  "weight": wi} for p, ck, wi in zip(paths, cks, w)])
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return state["meta"]


def export_random(out: str | Path, cfg, seed: int = 0) -> None:
    """An untrained export (integration placeholder)."""
    from forge.model import build_models

    torch.manual_seed(seed)
    E, G, D = build_models(cfg)
    state = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
             "model_cfg": dataclasses.asdict(dataclasses.replace(cfg, spectral_norm=False)),
             "E": _baked_half(E), "G": _baked_half(G), "D": _baked_half(D, drop=("W",)),
             "meta": {"step": 0, "note": "randomly initialised placeholder, not trained"}}
    with atomic_path(out) as tmp:
        torch.save(state, tmp)


def load_export(path: str | Path) -> dict:
    ck = load_checkpoint(path)
    if not isinstance(ck, dict) or ck.get("format") != EXPORT_FORMAT:
        raise FaceforgeError(f"{path} is not a faceforge talker export (run `faceforge forge export` on a training checkpoint)")
    return ck
