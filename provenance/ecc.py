"""Error control for the watermark payload: CRC-16 + a rate-1/2 convolutional code, soft Viterbi.

``encode(payload)`` -> 172 code bits: 64 payload bits + CRC-16/CCITT (80 bits) + 6 zero tail bits,
through the K=7 (133, 171 octal) convolutional code (the NASA/802.11 code: free distance 10, about
5 dB of coding gain with soft decisions). ``decode(soft)`` is maximum-likelihood (Viterbi) on soft
values where positive means bit 0; it returns the payload only when the CRC checks.
"""

from __future__ import annotations

import numpy as np

PAYLOAD_BITS = 64
CRC_BITS = 16
CONSTRAINT = 7
POLYS = (0o133, 0o171)
TAIL = CONSTRAINT - 1
INFO_BITS = PAYLOAD_BITS + CRC_BITS
N_CODED = (INFO_BITS + TAIL) * len(POLYS)     # 172
_N_STATES = 1 << TAIL


def crc16(bits: np.ndarray) -> int:
    """CRC-16/CCITT-FALSE of a bit string (MSB first)."""
    crc = 0xFFFF
    for b in bits:
        top = (crc >> 15) & 1
        crc = (crc << 1) & 0xFFFF
        if top ^ int(b):
            crc ^= 0x1021
    return crc


def bits_to_int(bits: np.ndarray) -> int:
    out = 0
    for b in bits:
        out = (out << 1) | int(b)
    return out


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    out = np.zeros_like(x)
    while np.any(x):
        out ^= x & 1
        x >>= 1
    return out


# Trellis: from state s (last 6 inputs, newest in bit 0) with input b the register is (s << 1) | b.
_REG = (np.arange(_N_STATES)[:, None] << 1) | np.arange(2)[None, :]            # (64, 2)
_OUT = np.stack([_parity(_REG & p) for p in POLYS], axis=-1).astype(np.int8)     # (64, 2, 2) code bits
_NEXT = _REG & (_N_STATES - 1)                                                  # (64, 2)
# Predecessors of next-state ns: s = (ns >> 1) | (m << 5), m in {0, 1}; the input bit is ns & 1.
_PREV = (np.arange(_N_STATES)[:, None] >> 1) | (np.arange(2)[None, :] << (TAIL - 1))  # (64, 2)
_PREV_OUT = _OUT[_PREV, (np.arange(_N_STATES) & 1)[:, None]]                    # (64, 2, 2)
_PREV_SYM = 1 - 2 * _PREV_OUT.astype(np.float64)                                # code bit 0 -> +1


def conv_encode(info: np.ndarray) -> np.ndarray:
    """Info bits (already tail-terminated) -> code bits, 2 per input bit."""
    state, out = 0, []
    for b in info:
        out.extend(_OUT[state, int(b)])
        state = int(_NEXT[state, int(b)])
    return np.array(out, dtype=np.uint8)


def viterbi(soft: np.ndarray) -> np.ndarray:
    """Soft-decision ML decoding; ``soft`` (2T,) with positive = bit 0. Returns T info bits."""
    sym = np.asarray(soft, dtype=np.float64).reshape(-1, 2)                    # (T, 2)
    n = len(sym)
    metric = np.full(_N_STATES, -np.inf)
    metric[0] = 0.0
    choice = np.zeros((n, _N_STATES), dtype=np.uint8)
    for t in range(n):
        branch = (_PREV_SYM * sym[t]).sum(-1)                                   # (64, 2)
        cand = metric[_PREV] + branch                                           # (64, 2)
        choice[t] = np.argmax(cand, axis=1)
        metric = cand[np.arange(_N_STATES), choice[t]]
    state = 0  # terminated by the zero tail
    bits = np.zeros(n, dtype=np.uint8)
    for t in range(n - 1, -1, -1):
        bits[t] = state & 1
        state = int(_PREV[state, choice[t, state]])
    return bits


def encode(payload: int) -> np.ndarray:
    """64-bit payload -> (172,) code bits."""
    if not 0 <= int(payload) < (1 << PAYLOAD_BITS):
        raise ValueError(f"payload must be an unsigned {PAYLOAD_BITS}-bit integer")
    return encode_many([int(payload)])[0]


def encode_many(payloads) -> np.ndarray:
    """Vectorised :func:`encode`: (N,) unsigned 64-bit payloads -> (N, 172) code bits (uint8)."""
    pay = np.asarray(payloads, dtype=np.uint64).reshape(-1)
    n = len(pay)
    shifts = np.arange(PAYLOAD_BITS - 1, -1, -1, dtype=np.uint64)
    pbits = ((pay[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8)      # (N, 64) MSB first
    crc = np.full(n, 0xFFFF, dtype=np.uint32)                                           # CRC-16/CCITT-FALSE
    for i in range(PAYLOAD_BITS):
        top = (crc >> 15) & 1
        crc = (crc << 1) & 0xFFFF
        crc ^= np.where((top ^ pbits[:, i]) == 1, 0x1021, 0).astype(np.uint32)
    cbits = ((crc[:, None] >> np.arange(CRC_BITS - 1, -1, -1)[None, :]) & 1).astype(np.uint8)
    info = np.concatenate([pbits, cbits, np.zeros((n, TAIL), np.uint8)], axis=1)        # (N, 86)
    out = np.empty((n, info.shape[1], len(POLYS)), np.uint8)
    state = np.zeros(n, dtype=np.int64)
    for t in range(info.shape[1]):
        b = info[:, t]
        out[:, t] = _OUT[state, b]
        state = _NEXT[state, b]
    return out.reshape(n, -1)


def decode_full(soft: np.ndarray) -> tuple[int | None, int, np.ndarray]:
    """Soft code values (172,) -> (payload or None when the CRC fails, the 64 decoded payload bits
    as an int whatever the CRC says (for bit-accuracy statistics), re-encoded code bits)."""
    info = viterbi(soft)
    pbits, cbits = info[:PAYLOAD_BITS], info[PAYLOAD_BITS:INFO_BITS]
    recoded = conv_encode(info)
    raw = bits_to_int(pbits)
    if crc16(pbits) != bits_to_int(cbits) or np.any(info[INFO_BITS:]):
        return None, raw, recoded
    return raw, raw, recoded


def decode(soft: np.ndarray) -> tuple[int | None, np.ndarray]:
    """Soft code values (172,) -> (payload or None when the CRC fails, re-encoded code bits)."""
    payload, _, recoded = decode_full(soft)
    return payload, recoded
