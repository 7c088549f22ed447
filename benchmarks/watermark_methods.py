"""The methods ``benchmarks/watermark.py`` compares: faceforge's classical watermark (blind, and matched
against a provenance store), invisible-watermark's dwtDct / dwtDctSvd / rivaGan and TrustMark (only from
weights already on disk), each as an adapter with ``embed``/``decode``; ``make_methods`` picks the run's."""

from __future__ import annotations

import numpy as np


class Ours:
    name, bits = "faceforge", 64
    resync = False  # has its own synchronisation
    sizes = None    # every size of the run
    cfg = None      # WatermarkConfig (None = the defaults); the classical rows read the classical mark only

    def config(self):
        from provenance import watermark

        return self.cfg or watermark.WatermarkConfig(read_learned=False)

    def carried(self, bits: np.ndarray, shape: tuple) -> np.ndarray:
        """The bits an image of this shape carries: small images only the low 32 (the short store index)."""
        from provenance import watermark

        code = watermark.code_for(shape[-3], shape[-2], self.config())
        return bits[len(bits) - code.payload_bits:]

    def embed(self, img: np.ndarray, bits: np.ndarray) -> np.ndarray:
        from provenance import watermark

        self.n_carried = len(self.carried(bits, img.shape))      # read back at this length
        return watermark.embed(img, _bits_to_int(bits), self.config())

    def decode(self, img: np.ndarray) -> tuple[np.ndarray | None, dict]:
        from provenance import watermark

        r = watermark.decode(img, self.config())
        n = r.payload_bits if r.payload is not None else self.n_carried
        key = "raw_payload" if n == 64 else "raw_short"
        raw = r.payload if r.payload is not None else (int(r.extras[key], 16) if r.extras.get(key) else None)
        info = {"detected": r.detected, "p_value": r.p_value, "confidence": r.confidence}
        return (None if raw is None else _int_to_bits(raw, n)), info


class OursWithStore(Ours):
    """Ours, verified the way ``faceforge provenance verify --store`` does: blind decoding first, then
    the store's payloads matched (family M). The store holds the embedded payload among ``n_store``
    registered ones (the others random); a detection of any other payload counts as a miss."""

    name = "faceforge+store"

    def __init__(self, n_store: int, seed: int = 1):
        self.others = [int(v) for v in np.random.default_rng(seed).integers(0, 2 ** 63, size=n_store - 1)]
        self.registered: list[int] = []

    def embed(self, img: np.ndarray, bits: np.ndarray) -> np.ndarray:
        self.registered = self.others + [_bits_to_int(bits)]
        return super().embed(img, bits)

    def decode(self, img: np.ndarray) -> tuple[np.ndarray | None, dict]:
        from provenance import watermark

        r = watermark.decode(img, self.config(), candidates=self.registered)
        info = {"detected": r.detected, "p_value": r.p_value, "confidence": r.confidence,
                "method": r.extras.get("method")}
        return (None if r.payload is None else _int_to_bits(r.payload, r.payload_bits)), info


class InvisibleWatermark:
    resync = True  # no synchronisation: give it the original size back

    def carried(self, bits: np.ndarray, shape: tuple) -> np.ndarray:
        return bits

    def __init__(self, method: str, bits: int):
        self.name, self.method, self.bits = method, method, bits

    def embed(self, img: np.ndarray, bits: np.ndarray) -> np.ndarray:
        from imwatermark import WatermarkEncoder

        enc = WatermarkEncoder()
        enc.set_watermark("bits", [int(b) for b in bits])
        bgr = enc.encode(np.ascontiguousarray(img[..., ::-1]), self.method)
        return np.clip(bgr[..., ::-1], 0, 255).astype(np.uint8)

    def decode(self, img: np.ndarray) -> tuple[np.ndarray | None, dict]:
        from imwatermark import WatermarkDecoder

        dec = WatermarkDecoder("bits", self.bits)
        out = dec.decode(np.ascontiguousarray(img[..., ::-1]), self.method)
        return np.array([int(b) for b in out], dtype=np.uint8), {}


class TrustMarkMethod:
    """Adobe's TrustMark (variant Q, BCH_4: 68 payload bits), run only when the package *and* its
    weights are already on disk (it would otherwise download them)."""

    resync = True   # TrustMark resizes to its own resolution; give it the original size back too
    carried = InvisibleWatermark.carried

    def __init__(self):
        import importlib.util
        from pathlib import Path as _Path

        spec = importlib.util.find_spec("trustmark")
        if spec is None or not spec.origin:
            raise RuntimeError("no trustmark package installed")
        models = _Path(spec.origin).parent / "models"
        missing = [f for f in ("encoder_Q.ckpt", "decoder_Q.ckpt") if not (models / f).is_file()]
        if missing:
            raise RuntimeError(f"trustmark weights not on disk ({', '.join(missing)} in {models}; offline)")
        from trustmark import TrustMark

        self.tm = TrustMark(verbose=False, model_type="Q", encoding_type=TrustMark.Encoding.BCH_4,
                            loadRemover=False, device="cpu")
        self.bits = int(self.tm.schemaCapacity())
        self.name = "TrustMark-Q"

    def embed(self, img: np.ndarray, bits: np.ndarray) -> np.ndarray:
        from PIL import Image

        out = self.tm.encode(Image.fromarray(img), "".join(str(int(b)) for b in bits), MODE="binary")
        return np.array(out.convert("RGB"))

    def decode(self, img: np.ndarray) -> tuple[np.ndarray | None, dict]:
        from PIL import Image

        secret, present, _ = self.tm.decode(Image.fromarray(img), MODE="binary")
        if not present or len(secret) < self.bits:
            return None, {"detected": bool(present)}
        return np.array([int(c) for c in secret[:self.bits]], dtype=np.uint8), {"detected": True}


def _self_check(method) -> None:
    """Embed and read back on a plain test card: a baseline that cannot do even that is not run
    (its rows would measure our adapter, not the method)."""
    rng = np.random.default_rng(123)
    card = np.clip(rng.normal(128, 30, (256, 256, 3)), 0, 255).astype(np.uint8)
    bits = rng.integers(0, 2, method.bits).astype(np.uint8)
    got, _ = method.decode(method.embed(card, bits))
    if got is None or not np.array_equal(got, bits):
        raise RuntimeError("self-check failed: the unattacked payload did not read back")


def _bits_to_int(bits: np.ndarray) -> int:
    return int("".join(str(int(b)) for b in bits), 2)


def _int_to_bits(v: int, n: int) -> np.ndarray:
    return np.array([(v >> (n - 1 - i)) & 1 for i in range(n)], dtype=np.uint8)


def make_methods(n_store: int, names: tuple | None = None, wm_cfg=None) -> tuple[list, dict]:
    """The methods of the run (``names``: only those), baselines only when available."""
    from provenance.watermark import learned

    from .watermark_learned import OursLearned, OursLearnedWithStore

    methods = [Ours(), OursWithStore(n_store)]
    for m in methods:
        m.cfg = wm_cfg
    if learned.available():
        methods += [OursLearned(), OursLearnedWithStore(n_store)]
    methods += [InvisibleWatermark("dwtDct", 64), InvisibleWatermark("dwtDctSvd", 64)]
    notes = {"faceforge+store": f"blind decoding, then the {n_store:,} payloads of a provenance store matched "
                                "(the embedded one + random others), as `provenance verify --store` does",
             "faceforge-learned": "the learned watermark (provenance/watermark/weights/learned128.pt), 128 px "
                                  "only, read by the learned decoder alone (+store: and a store's payloads)"
                                  if learned.available() else "not run: no learned weights installed"}
    if names is not None:
        methods = [m for m in methods if m.name in names]
        if not any(n in ("rivaGan", "TrustMark-Q") for n in names):
            return methods, notes
    try:
        from imwatermark import WatermarkEncoder

        WatermarkEncoder.loadModel()
        methods.append(InvisibleWatermark("rivaGan", 32))
        notes["rivaGan"] = "loaded the ONNX weights shipped in invisible-watermark (onnxruntime, CPU); 32-bit payload"
    except Exception as e:  # missing onnxruntime or weights: say so in the results
        notes["rivaGan"] = f"not run: {type(e).__name__}: {e}"
    try:
        tm = TrustMarkMethod()
        _self_check(tm)
        methods.append(tm)
        notes["TrustMark"] = f"TrustMark Q from local weights, BCH_4, {tm.bits}-bit payload"
    except Exception as e:  # no package, no weights (offline), or an API that does not read back
        notes["TrustMark"] = f"not run: {e}"
    return methods, notes
