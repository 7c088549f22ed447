"""Benchmark-corpus frames for the SBI trainer: our own generators' fakes (and the corpus's reals) of
the training people join the self-blended pairs, and the corpus's val items join validation.

With ``corpus_splits`` the people split is the corpus's own (``splits.json``: its test people are
never read, its val people select and calibrate), so no corpus test person is seen in any form. With
``watermark_reals`` the corpus's reals are read as their watermarked twins (:mod:`detect.wm_reals`):
every corpus fake carries our invisible watermark, and a detector must not learn it as the cue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, get_logger

log = get_logger("detect.corpus_mix")


def corpus_people(corpus: str | Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The corpus's (val people, test people) from its ``splits.json``."""
    path = Path(corpus) / "splits.json"
    try:
        splits = json.loads(path.read_text())["splits"]             # {"train" | "val" | "test": [person, ...]}
        return tuple(sorted(map(str, splits["val"]))), tuple(sorted(map(str, splits["test"])))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FaceforgeError(f"cannot read the corpus splits {path}: {type(e).__name__}: {e}") from None


def corpus_items(corpus: str | Path, people: set[str], n_frames: int, watermark_reals: bool = False) -> list:
    """Face-crop items of ``corpus`` made only from ``people`` (source and driver), ``n_frames`` frames
    each (evenly spaced); reals as their watermarked twins with ``watermark_reals``."""
    from detect.data import is_crop, load_items, load_manifest
    from detect.detectors.base import even_indices

    corpus = Path(corpus)
    df = load_manifest(corpus)
    df = df[is_crop(df)]
    drv = df["driver_identity"].astype(str) if "driver_identity" in df else df["source_identity"].astype(str)
    keep = df["source_identity"].astype(str).isin(people) & (drv.isin(people) | drv.isin(("None", "nan", "")))
    df = df[keep]
    if watermark_reals:
        from detect.wm_reals import swap_reals

        df = swap_reals(corpus, df)
    rep = load_items(corpus, df, None, "corpus", progress=False)
    for it in rep.items:
        idx = even_indices(len(it.frames), n_frames)
        it.frames = it.frames[idx]
        it.landmarks = None if it.landmarks is None else it.landmarks[idx]
    log.info("corpus %s: %d items of %d people (%d fake)%s", corpus, len(rep.items), len(people),
             sum(it.label for it in rep.items), ", reals watermarked" if watermark_reals else "")
    return rep.items


@dataclass
class CorpusFrames:
    """Frames of corpus items pooled by label, for balanced sampling."""

    real: np.ndarray                 # (Nr, S, S, 3) uint8
    fake: np.ndarray                 # (Nf, S, S, 3) uint8

    @classmethod
    def of(cls, items, size: int) -> "CorpusFrames":
        pools = {0: [], 1: []}
        for it in items:
            if it.frames.shape[1:3] != (size, size):
                raise FaceforgeError(f"corpus item {it.item_id} is {it.frames.shape[1]} px; the detector trains at {size} px")
            pools[int(it.label)].append(it.frames)
        if not pools[0] or not pools[1]:
            raise FaceforgeError("the corpus holds no real or no fake item of the training people")
        return cls(np.concatenate(pools[0]), np.concatenate(pools[1]))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n // 2`` real and ``n - n // 2`` fake frames, each flipped with p 0.5 -> images ``(n, S, S, 3)``, labels ``(n,)``."""
        nr = n // 2
        images = np.concatenate([self.real[rng.integers(len(self.real), size=nr)],
                                 self.fake[rng.integers(len(self.fake), size=n - nr)]])
        flip = rng.random(n) < 0.5
        images[flip] = images[flip, :, ::-1]
        return images, np.r_[np.zeros(nr), np.ones(n - nr)].astype(np.float32)


def val_videos(items) -> list:
    """Corpus val items -> validation entries ``(name, label, frames, landmarks)`` (names ``corpus:<item>``)."""
    return [(f"corpus:{it.item_id}", int(it.label), it.frames, it.landmarks) for it in items]


def group_of(name: str) -> str:
    """Validation group of an entry: ``corpus`` (our generators) or ``sbi`` (self-blended)."""
    return "corpus" if name.startswith("corpus:") else "sbi"
