"""Identity-disjoint train/val/test splits, fixed by seed and written once (``splits.json``).

A person is in exactly one split, as source and as driver: cross-reenactment drivers are drawn from
the source's own split.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from core.common import FaceforgeError, write_json_atomic
from forge.corpus.spec import SPLITS


def assign_splits(identities: list[str], ratios: tuple[float, float, float], seed: int,
                  test: tuple[str, ...] = ()) -> dict[str, str]:
    """identity -> split. Identities are shuffled by ``seed``; split sizes follow ``ratios``
    (rounded), and every split with a non-zero ratio gets at least one identity when there are enough.
    ``test`` identities (those present) always go to test and fill its share first; when they are
    more than that share, the other splits shrink."""
    ids = sorted(set(identities))
    forced = sorted(set(test) & set(ids))
    if forced:
        rest = assign_splits([i for i in ids if i not in forced], _after_forced(ratios, len(ids), len(forced)),
                             seed)
        return {**rest, **{i: "test" for i in forced}}
    n = len(ids)
    r = np.asarray(ratios, dtype=np.float64) / float(sum(ratios))
    sizes = np.floor(r * n).astype(int)
    # hand out the remainder to the largest fractional parts (ties: train, val, test order)
    for i in np.argsort(-(r * n - sizes), kind="stable")[: n - int(sizes.sum())]:
        sizes[i] += 1
    wanted = [i for i in range(3) if r[i] > 0]
    if n >= len(wanted):  # no non-zero split left empty: borrow from the biggest
        for i in wanted:
            if sizes[i] == 0:
                sizes[int(np.argmax(sizes))] -= 1
                sizes[i] += 1
    order = np.random.default_rng(seed).permutation(n)
    out: dict[str, str] = {}
    start = 0
    for split, size in zip(SPLITS, sizes):
        for k in order[start:start + size]:
            out[ids[int(k)]] = split
        start += size
    return out


def _after_forced(ratios, n: int, n_forced: int) -> tuple[float, float, float]:
    """The ratios over the identities left after ``n_forced`` were put in test, so that the whole
    split keeps ``ratios`` (test's share minus the forced ones; never negative)."""
    r = np.asarray(ratios, dtype=np.float64) / float(sum(ratios))
    left = n - n_forced
    if left <= 0:
        return (1.0, 0.0, 0.0)
    test_left = max(0.0, r[2] * n - n_forced)
    scale = (left - test_left) / max(r[0] + r[1], 1e-12) if r[0] + r[1] > 0 else 0.0
    out = (r[0] * scale, r[1] * scale, test_left)
    return out if sum(out) > 0 else (1.0, 0.0, 0.0)


def cross_drivers(splits: dict[str, str], seed: int) -> dict[str, str | None]:
    """source identity -> driver identity for cross-reenactment: a seeded cyclic pairing inside each
    split, so nobody drives themselves and no pair crosses splits (None when a split has one person)."""
    out: dict[str, str | None] = {}
    for k, split in enumerate(SPLITS):
        members = sorted(i for i, s in splits.items() if s == split)
        if len(members) < 2:
            out.update({m: None for m in members})
            continue
        perm = [members[j] for j in np.random.default_rng([seed, k]).permutation(len(members))]
        for j, ident in enumerate(perm):
            out[ident] = perm[(j + 1) % len(perm)]
    return out


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) so shards create shared files once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def load_or_write_splits(path: Path, identities: list[str], ratios, seed: int,
                         test: tuple[str, ...] = ()) -> dict[str, str]:
    """The corpus's splits: read ``path`` when it exists (it is never rewritten), else assign and write."""
    path = Path(path)
    with file_lock(path.with_name(".splits.lock")):
        if path.exists():
            try:
                data = json.loads(path.read_text())
                splits = dict(data["identities"])
            except (ValueError, KeyError, TypeError):
                raise FaceforgeError(f"{path} is not a splits file; remove it to re-split") from None
            missing = sorted(set(identities) - set(splits))
            if missing:
                raise FaceforgeError(f"{path} was written for other sources (no split for "
                                     f"{', '.join(missing[:3])}); use a new corpus folder")
            return splits
        splits = assign_splits(identities, tuple(ratios), seed, tuple(test))
        write_json_atomic(path, {
            "seed": seed,
            "ratios": list(ratios),
            "test_identities": sorted(set(test) & set(splits)),
            "identities": splits,
            "splits": {s: sorted(i for i, v in splits.items() if v == s) for s in SPLITS},
        })
        return splits
