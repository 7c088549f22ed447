"""The learned watermark's rows in ``benchmarks/watermark.py``: adapters and its own false-positive scan.

``faceforge-learned`` embeds with ``WatermarkConfig(method="learned")`` (the shipped
``provenance/watermark/weights/learned128.pt``; always the 32-bit short store index) and reads with the
learned decoder alone, blind; ``faceforge-learned+store`` also matches a store's payloads, as
``provenance verify --store`` does once the classical read has failed. Rows at 128 px only (the size
the model was trained for). The false-positive scan runs the learned decoder on the same unmarked
images as the classical scan: ``provenance.watermark.decode`` tests a file for both marks, so its
false detections are those of the classical scan plus these.
"""

from __future__ import annotations

import time

import numpy as np

from .watermark_methods import Ours, OursWithStore, _bits_to_int, _int_to_bits


class OursLearned(Ours):
    name = "faceforge-learned"
    sizes = (128,)

    def carried(self, bits: np.ndarray, shape: tuple) -> np.ndarray:
        return bits[len(bits) - 32:]                                   # the short store index, always

    def embed(self, img: np.ndarray, bits: np.ndarray) -> np.ndarray:
        from provenance import watermark

        self.n_carried = 32
        return watermark.embed(img, _bits_to_int(bits), watermark.WatermarkConfig(method="learned"))

    def decode(self, img: np.ndarray) -> tuple[np.ndarray | None, dict]:
        from provenance.watermark import learned

        r = learned.decode(img)
        raw = r.payload if r.payload is not None else (int(r.extras["raw_short"], 16) if r.extras.get("raw_short")
                                                        else None)
        return (None if raw is None else _int_to_bits(raw, 32)), {"detected": r.detected, "p_value": r.p_value}


class OursLearnedWithStore(OursWithStore):
    name = "faceforge-learned+store"
    sizes = (128,)
    carried = OursLearned.carried

    def embed(self, img: np.ndarray, bits: np.ndarray) -> np.ndarray:
        self.registered = self.others + [_bits_to_int(bits)]
        return OursLearned.embed(self, img, bits)

    def decode(self, img: np.ndarray) -> tuple[np.ndarray | None, dict]:
        from provenance.watermark import learned

        r = learned.decode(img, candidates=self.registered)
        info = {"detected": r.detected, "p_value": r.p_value, "method": r.extras.get("method")}
        return (None if r.payload is None else _int_to_bits(r.payload, 32)), info


def false_positives_learned(frames: list[tuple[str, np.ndarray]], store: list[int]) -> dict:
    """The learned decoder on unmarked images (name, RGB): blind and against ``store``; every detection
    is a false positive."""
    from provenance.watermark import learned

    out = {"decoder": "learned", "n_images": len(frames)}
    for key, cands in (("blind", None), ("store", store)):
        ps, detected, agree = [], [], []
        t0 = time.perf_counter()
        for name, img in frames:
            r = learned.decode(img, candidates=cands)
            ps.append(r.p_value)
            agree.append(r.extras.get("match_agree" if cands else "agree", 0))
            if r.detected:
                detected.append(name)
        i = int(np.argmin(ps))
        stats = {"detections": detected, "n_detections": len(detected), "min_p_value": float(ps[i]),
                 "min_p_value_image": frames[i][0], "max_agreement": int(max(agree)), "n_bits": 162,
                 "decode_ms_mean": round(1000 * (time.perf_counter() - t0) / len(frames), 1)}
        if key == "blind":
            out.update(stats)
        else:
            out["with_store"] = {"n_store_payloads": len(store), **stats}
    return out
