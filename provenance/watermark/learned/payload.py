"""What the learned watermark carries: the short payload's code bits under a keyed XOR mask, and the
false-positive-controlled statistic that reads them back.

The carried bits are ``ecc.encode(short_id, ecc.SHORT)`` (32-bit store index + CRC-16 + tail through
the rate-1/3 K=7 code: 162 bits) XOR a keyed pseudo-random mask, as +-1 (bit 1 -> +1). Reading: the
decoder's logits (bit 1 positive) are unmasked, Viterbi-decoded (soft), and the CRC checked; the read
agrees with its re-encoded code word on ``k`` of the n hard bits. With no watermark each hard bit
matches a fixed masked code word with probability 1/2, so over the 2^32 CRC-valid words
``P <= 2^32 * P(Binomial(n, 1/2) >= k)`` (the union bound; ``blind_p``). Against a store of N payloads
the same count is tested for those N words only: ``N * P(Binomial >= k)`` (``store_p``).
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np

from ... import ecc

CODE = ecc.SHORT


@functools.lru_cache(maxsize=4)
def key_mask(key: str, n_bits: int = CODE.n_coded) -> np.ndarray:
    """(n_bits,) uint8 keyed pseudo-random XOR mask."""
    seed = int.from_bytes(hashlib.sha256(f"learned|{key}".encode()).digest()[:8], "big")
    return np.random.default_rng(seed).integers(0, 2, n_bits).astype(np.uint8)


def carried_bits(short_ids, key: str) -> np.ndarray:
    """(N,) 32-bit short ids -> (N, 162) float32 in +-1 (masked code bits; 1 -> +1)."""
    code = ecc.encode_many(np.asarray(short_ids, dtype=np.uint64) & np.uint64(0xFFFFFFFF), CODE)  # (N, 162)
    return ((code ^ key_mask(key, code.shape[1])).astype(np.float32) * 2 - 1)


def binom_sf(k: int, n: int) -> float:
    """P(Binomial(n, 1/2) >= k), exact."""
    if k <= 0:
        return 1.0
    return float(sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n)


def read(logits: np.ndarray, key: str) -> dict:
    """Logits (162,) (bit 1 positive, masked) -> {payload or None (CRC), raw, agree, n, blind_p}."""
    mask = key_mask(key, len(logits))
    z = np.where(mask == 1, -logits, logits)                          # unmasked: positive = code bit 1
    payload, raw, recoded = ecc.decode_full(-z.astype(np.float64), CODE)   # ecc: positive means bit 0
    hard = (z > 0).astype(np.uint8)
    agree = int(np.sum(hard == recoded))
    p = min(1.0, 2.0 ** CODE.payload_bits * binom_sf(agree, len(z))) if payload is not None else 1.0
    return {"payload": payload, "raw": raw, "agree": agree, "n": len(z), "blind_p": p}


def store_match(logits: np.ndarray, candidates, key: str, chunk: int = 65536) -> dict:
    """The stored short id whose masked code word agrees best with the hard bits, and its
    Bonferroni p-value over the candidates: {payload (short id), agree, store_p, second}."""
    hard = (logits > 0).astype(np.uint8)                               # masked domain
    mask = key_mask(key, len(logits))
    ids = np.unique(np.asarray([int(c) & 0xFFFFFFFF for c in candidates], dtype=np.uint64))
    best, best_k, second = None, -1, -1
    for s in range(0, len(ids), chunk):
        words = ecc.encode_many(ids[s:s + chunk], CODE) ^ mask                  # (n, 162)
        agree = (words == hard[None]).sum(1)                                    # (n,)
        order = np.argsort(agree)[::-1][:2]
        for j in order:
            k = int(agree[j])
            if k > best_k:
                second, best, best_k = best_k, int(ids[s + j]), k
            elif k > second:
                second = k
    p = min(1.0, len(ids) * binom_sf(best_k, len(logits))) if best is not None else 1.0
    return {"payload": best, "agree": best_k, "store_p": p, "second": second}
