"""dlib's ``.dat`` -> a torch state dict for :class:`faces.resnet.DlibFaceResNet`, cached on disk.

The first use parses the ``.dat`` that ``face-recognition-models`` installs (about 0.3 s) and writes
``<cache>/dlib_resnet/<sha256 of the .dat>.pt`` atomically; later uses read that file. The cache folder
is ``$XDG_CACHE_HOME/faceforge`` (default ``~/.cache/faceforge``) unless a folder is given. A cache
file that cannot be read is converted again and replaced.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_path, get_logger, sha256_file
from faces.dlib_format import DlibFormatError, LayerRecord, read_network

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
CACHE_SUBDIR = "dlib_resnet"
CACHE_FORMAT = 1  # bump when the state dict layout changes
log = get_logger("faces.weights")


@dataclass(frozen=True)
class WeightsInfo:
    dat: Path
    sha256: str
    cache_file: Path | None   # None when the cache folder could not be written
    from_cache: bool          # True when this load read the cache instead of converting
    seconds: float            # time spent converting or reading the cache


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/faceforge``, else ``~/.cache/faceforge``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "faceforge"


def default_dat_path() -> Path:
    from faces.landmarks import dlib_models_dir  # finds face_recognition_models without importing it

    return dlib_models_dir() / DAT_NAME


# ---------------------------------------------------------------- conversion
def convert(data: bytes) -> dict:
    """The records of dlib's network -> a state dict for ``DlibFaceResNet`` (numpy -> torch)."""
    import torch

    from faces.resnet import DlibFaceResNet

    records = read_network(data)
    model = DlibFaceResNet()
    layout = model.dlib_layout()
    kinds = [r.kind for r in records]
    expected = [kind for kind, _ in layout]
    if kinds != expected:
        at = next((i for i, (a, b) in enumerate(zip(kinds, expected)) if a != b), min(len(kinds), len(expected)))
        raise DlibFormatError(f"not dlib's face-recognition ResNet: layer {at} is "
                              f"{kinds[at] if at < len(kinds) else 'missing'}, expected "
                              f"{expected[at] if at < len(expected) else 'the end'}")
    modules = dict(model.named_modules())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for record, (kind, name) in zip(records, layout):
        if kind == "input":
            _check(record, record.attrs["nr"] == record.attrs["nc"] == 150, "a 150 x 150 input")
            state["mean_rgb"] = torch.tensor(record.attrs["mean_rgb"], dtype=torch.float32).view(1, 3, 1, 1)
        elif name is not None:
            for key, value in _tensors(record, modules[name]).items():
                target = state[f"{name}.{key}"]
                _check(record, tuple(value.shape) == tuple(target.shape),
                       f"{name}.{key} of shape {tuple(target.shape)}")
                state[f"{name}.{key}"] = torch.from_numpy(np.ascontiguousarray(value))
    return state


def _check(record: LayerRecord, ok: bool, what: str) -> None:
    if not ok:
        raise DlibFormatError(f"dlib record {record.name} {record.attrs} does not match {what}")


def _tensors(record: LayerRecord, module) -> dict[str, np.ndarray]:
    flat = record.tensors["params"].reshape(-1)
    a = record.attrs
    if record.kind == "con":
        _check(record, (a["stride_y"], a["stride_x"]) == tuple(module.stride)
               and (a["padding_y"], a["padding_x"]) == tuple(module.padding), f"{module} (stride/padding)")
        n_filters = int(np.prod(a["filters_shape"]))
        out = {"weight": flat[:n_filters].reshape(a["filters_shape"])}  # (out, in, kh, kw), as torch's
        if a["use_bias"]:
            out["bias"] = flat[n_filters:n_filters + a["num_filters"]]
        return out
    if record.kind == "affine":
        _check(record, a["mode"] == 0, "a per-channel (CONV_MODE) affine layer")
        channels = int(np.prod(a["gamma_shape"]))
        return {"weight": flat[:channels], "bias": flat[channels:2 * channels]}
    if record.kind == "fc":
        _check(record, a["bias_mode"] == 1, "an fc layer without bias")
        weights = flat[:a["num_inputs"] * a["num_outputs"]].reshape(a["num_inputs"], a["num_outputs"])
        return {"weight": weights.T}  # dlib computes x @ W (in, out); torch's Linear holds (out, in)
    raise DlibFormatError(f"no parameters expected for dlib record {record.name}")


# ---------------------------------------------------------------- cached loading
def load_state_dict(dat: str | os.PathLike | None = None,
                    cache_dir: str | os.PathLike | None = None) -> tuple[dict, WeightsInfo]:
    """The converted state dict of ``dat`` (default: the installed model) and where it came from."""
    import torch

    dat = Path(dat) if dat is not None else default_dat_path()
    if not dat.is_file():
        raise FaceforgeError(f"dlib face-recognition model not found: {dat} (pip install face-recognition-models)")
    sha = sha256_file(dat)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = cache_root / CACHE_SUBDIR / f"{sha}.pt"
    start = time.perf_counter()
    if cache_file.is_file():
        try:
            blob = torch.load(cache_file, map_location="cpu", weights_only=True)
            if blob.get("format") == CACHE_FORMAT and blob.get("sha256") == sha:
                return blob["state_dict"], WeightsInfo(dat, sha, cache_file, True, time.perf_counter() - start)
            log.warning("cache %s is stale; converting again", cache_file)
        except Exception as e:  # noqa: BLE001 - a torn or foreign file (zip, pickle, EOF errors): rebuilt below
            log.warning("cache %s unreadable (%s); converting again", cache_file, e)
    try:
        state = convert(dat.read_bytes())
    except DlibFormatError as e:
        raise FaceforgeError(f"{dat} is not a readable dlib face-recognition model: {e}") from None
    seconds = time.perf_counter() - start
    try:
        with atomic_path(cache_file) as tmp:
            torch.save({"format": CACHE_FORMAT, "sha256": sha, "source": str(dat), "state_dict": state}, tmp)
    except OSError as e:
        log.warning("could not write the weight cache %s (%s); converting on every load", cache_file, e)
        cache_file = None
    return state, WeightsInfo(dat, sha, cache_file, False, seconds)
