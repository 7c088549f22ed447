"""A pure-Python reader for dlib's DNN serialisation (the ``.dat`` model files).

dlib writes a network outermost layer first, but every wrapper writes its *subnetwork before its own
layer*, so the file holds: the loss layer, then one version number per wrapper (outermost first), then
the input layer and the layers' records innermost first. The encodings (dlib ``serialize.h``,
``cuda/tensor.h``, ``dnn/core.h``, ``dnn/layers.h``, ``dnn/input.h``, ``dnn/loss.h``):

- integers: one byte ``size | 0x80 if negative``, then ``size`` little-endian magnitude bytes;
- float/double: two integers, ``mantissa`` and ``exponent`` (value = mantissa * 2**exponent; exponents
  32000/32001/32002 mean +inf/-inf/nan);
- bool: the ASCII byte ``'1'`` or ``'0'``; string: integer length, then the bytes;
- tensor: integer version 2, ``n, k, nr, nc``, then ``n*k*nr*nc`` float32 little-endian values;
- alias_tensor (a view into a layer's params): integer version 1, ``n, k, nr, nc``;
- wrappers: ``add_layer`` version 2 (+ after its layer: 3 bools and the x_grad, cached_output and
  params_grad tensors), ``add_layer`` over the input layer version 3 (+ 3 bools, 3 tensors and the
  sample expansion factor), ``add_tag_layer``/``add_skip_layer`` version 1 (nothing else: tag ids are
  template arguments, not stored), ``add_loss_layer`` version 1 (its loss record comes first).

:func:`read_network` returns the records innermost first; nothing here knows a particular network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.common import FaceforgeError

_SPECIAL_EXPONENTS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
WRAPPER = "wrapper"  # an add_tag_layer or add_skip_layer (the file cannot tell them apart)


@dataclass
class LayerRecord:
    """One dlib layer: ``kind`` (``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``,
    ``add_prev``, ``fc``, ``input``, ``loss_metric`` or ``wrapper``), the record's name as stored
    (e.g. ``con_4``), scalar settings in ``attrs`` and float32 arrays in ``tensors``."""

    kind: str
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


class DlibFormatError(FaceforgeError):
    """The bytes are not a dlib network this reader understands (truncated, corrupt, other layers)."""


class _Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"truncated at byte {self.pos} (wanted {n} more bytes)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        head = self._take(1)[0]
        size, negative = head & 0x0F, bool(head & 0x80)
        if size > 8 or head & 0x70:
            raise DlibFormatError(f"bad integer header 0x{head:02x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if negative else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent in _SPECIAL_EXPONENTS:
            return _SPECIAL_EXPONENTS[exponent]
        return math.ldexp(mantissa, exponent)

    def bool(self) -> bool:
        byte = bytes(self._take(1))
        if byte not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {byte!r} at byte {self.pos - 1}")
        return byte == b"1"

    def string(self) -> str:
        n = self.int()
        if not 0 <= n <= 256:
            raise DlibFormatError(f"implausible string length {n} at byte {self.pos}")
        return bytes(self._take(n)).decode("ascii", errors="replace")

    def tensor(self) -> np.ndarray:
        """A resizable_tensor -> float32 array ``(n, k, nr, nc)``."""
        at = self.pos
        if (version := self.int()) != 2:
            raise DlibFormatError(f"unexpected tensor version {version} at byte {at}")
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0:
            raise DlibFormatError(f"negative tensor size {shape} at byte {at}")
        count = math.prod(shape)
        return np.frombuffer(self._take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        """An alias_tensor (a view's shape ``(n, k, nr, nc)``; its data lives in the layer's params)."""
        at = self.pos
        if (version := self.int()) != 1:
            raise DlibFormatError(f"unexpected alias_tensor version {version} at byte {at}")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


# ---------------------------------------------------------------- layer records (dnn/layers.h etc.)
def _con(r: _Reader, rec: LayerRecord) -> None:
    rec.tensors["params"] = r.tensor()
    for key in ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
        rec.attrs[key] = r.int()
    rec.attrs["filters_shape"], rec.attrs["biases_shape"] = r.alias(), r.alias()
    for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        rec.attrs[key] = r.float()
    rec.attrs["use_bias"] = r.bool() if rec.name == "con_5" else True


def _affine(r: _Reader, rec: LayerRecord) -> None:
    rec.tensors["params"] = r.tensor()
    rec.attrs["gamma_shape"], rec.attrs["beta_shape"] = r.alias(), r.alias()
    rec.attrs["mode"] = r.int()  # 0 = CONV_MODE (one gamma/beta per channel), 1 = FC_MODE


def _pool(r: _Reader, rec: LayerRecord) -> None:
    for key in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
        rec.attrs[key] = r.int()


def _fc(r: _Reader, rec: LayerRecord) -> None:
    rec.attrs["num_outputs"], rec.attrs["num_inputs"] = r.int(), r.int()
    rec.tensors["params"] = r.tensor()
    rec.attrs["weights_shape"], rec.attrs["biases_shape"] = r.alias(), r.alias()
    rec.attrs["bias_mode"] = r.int()  # 0 = with bias, 1 = no bias
    for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        rec.attrs[key] = r.float()


def _input_rgb_sized(r: _Reader, rec: LayerRecord) -> None:
    rec.attrs["mean_rgb"] = (r.float(), r.float(), r.float())
    rec.attrs["nr"], rec.attrs["nc"] = r.int(), r.int()


def _loss_metric(r: _Reader, rec: LayerRecord) -> None:
    rec.attrs["margin"], rec.attrs["distance_threshold"] = r.float(), r.float()


def _nothing(r: _Reader, rec: LayerRecord) -> None:
    return None


# record name as stored -> (kind, reader)
_RECORDS = {
    "con_4": ("con", _con), "con_5": ("con", _con),
    "affine_": ("affine", _affine),
    "relu_": ("relu", _nothing),
    "max_pool_2": ("max_pool", _pool), "avg_pool_2": ("avg_pool", _pool),
    "add_prev_": ("add_prev", _nothing),
    "fc_2": ("fc", _fc),
    "input_rgb_image_sized": ("input", _input_rgb_sized),
    "loss_metric_2": ("loss_metric", _loss_metric),
}


def _record(r: _Reader) -> LayerRecord:
    at = r.pos
    name = r.string()
    if name not in _RECORDS:
        raise DlibFormatError(f"unsupported dlib layer record {name!r} at byte {at}")
    kind, read = _RECORDS[name]
    rec = LayerRecord(kind=kind, name=name)
    read(r, rec)
    return rec


def _layer_state(r: _Reader, over_input: bool) -> None:
    """The bookkeeping an add_layer writes after its layer (all of it discarded)."""
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_together
        r.bool()
    for _ in range(3):  # x_grad, cached_output, params_grad (grad_final over the input layer)
        r.tensor()
    if over_input:
        r.int()  # sample expansion factor


# ---------------------------------------------------------------- the network
ADD_LAYER, ADD_LAYER_OVER_INPUT, TAG_OR_SKIP = 2, 3, 1


def read_network(data: bytes) -> list[LayerRecord]:
    """Parse a serialised ``add_loss_layer<...>`` network -> its records innermost first:
    ``[input, layer, ..., layer, loss]`` with ``wrapper`` records where tags and skips sit."""
    r = _Reader(data)
    if (version := r.int()) != 1:
        raise DlibFormatError(f"not a dlib network with a loss layer (version {version})")
    loss = _record(r)
    if loss.kind != "loss_metric":
        raise DlibFormatError(f"expected a loss layer first, found {loss.name!r}")
    wrappers: list[int] = []  # outermost first
    while (version := r.int()) != ADD_LAYER_OVER_INPUT:
        if version not in (ADD_LAYER, TAG_OR_SKIP):
            raise DlibFormatError(f"unexpected layer wrapper version {version} at byte {r.pos}")
        wrappers.append(version)
    records = [_record(r)]  # the input layer
    if records[0].kind != "input":
        raise DlibFormatError(f"expected the input layer, found {records[0].name!r}")
    records.append(_record(r))
    _layer_state(r, over_input=True)
    for version in reversed(wrappers):  # innermost first from here on
        if version == TAG_OR_SKIP:
            records.append(LayerRecord(kind=WRAPPER, name="tag_or_skip"))
            continue
        records.append(_record(r))
        _layer_state(r, over_input=False)
    if r.pos != len(r.data):
        raise DlibFormatError(f"{len(r.data) - r.pos} unexpected bytes after the network")
    records.append(loss)
    return records
