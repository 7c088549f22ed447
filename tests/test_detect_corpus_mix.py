"""detect.corpus_mix + detect.wm_reals: the SBI trainer with our generators' fakes from a (tiny) benchmark
corpus, the corpus's own people split, and watermark-matched reals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.common import FaceforgeError
from people_cache import PeopleCache

SIZE = 64
SPLITS = {"train": ["p_train1", "p_train2"], "val": ["p_val"], "test": ["p_test"]}


@pytest.fixture(scope="module")
def face():
    import cv2

    from core.common import SAMPLE_DIR
    from core.media import read_image
    from detect.toy import template_landmarks

    img = cv2.resize(read_image(SAMPLE_DIR / "portraits" / "s42.jpg"), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img), template_landmarks(SIZE).astype(np.float32)


class TinyCache(PeopleCache):
    """The corpus's 4 people + one only the cache knows (``p_extra``: trains SBI, never in the corpus)."""

    def __init__(self, face):
        self.img, self.lm = face
        self.people = ["p_train1", "p_train2", "p_val", "p_test", "p_extra"]

    def frames_of(self, k):
        frames = np.stack([np.roll(self.img, k + i, axis=1) for i in range(4)])        # (4, S, S, 3)
        lm = np.stack([self.lm + [k + i, 0] for i in range(4)]).astype(np.float32)    # (4, 68, 2)
        return frames, lm


def _corpus(root, face, size: int = SIZE):
    """A corpus of 4 people: per person one real (raw + c23) and one fake (a blurred face, raw + c23)."""
    import cv2
    import pandas as pd

    from forge.corpus.compress import variant_filename, write_variant

    img = cv2.resize(face[0], (size, size), interpolation=cv2.INTER_CUBIC)
    rows = []
    for split, people in SPLITS.items():
        for k, person in enumerate(people):
            real = np.stack([np.roll(img, i + k, axis=0) for i in range(6)])          # (6, S, S, 3)
            fake = np.stack([cv2.GaussianBlur(f, (5, 5), 2.0) for f in real])
            for label, frames in (("real", real), ("fake", fake)):
                group = f"{label}-{person}"
                for comp in ("raw", "c23"):
                    path = f"items/{group}/{variant_filename(comp)}"
                    write_variant(root / path, frames, 12.5, comp)
                    rows.append({"item_id": f"{group}-{comp}", "group_id": group, "path": path, "label": label,
                                 "split": split, "compression": comp, "source_identity": person,
                                 "driver_identity": person, "fps": 12.5, "framing": "crop",
                                 "watermarked": label == "fake"})
    pd.DataFrame(rows).to_parquet(root / "manifest.parquet")
    (root / "splits.json").write_text(json.dumps({"splits": SPLITS}))
    return root


def test_watermarked_real_twins_are_built_once_and_swapped_in(face, tmp_path):
    from detect.data import load_manifest, read_item
    from detect.wm_reals import build, control_path, payload_of, swap_reals
    from provenance.watermark import decode

    corpus = _corpus(tmp_path / "corpus", face, 128)                              # the mark needs >= 128 px
    df = load_manifest(corpus)
    with pytest.raises(FaceforgeError, match="missing"):
        swap_reals(corpus, df)
    assert build(corpus, progress=False) == {"written": 4, "skipped": 0, "errors": []}
    assert build(corpus, progress=False)["skipped"] == 4                          # resumable: nothing redone
    swapped = swap_reals(corpus, df)
    real = swapped["label"] == "real"
    assert swapped.loc[real, "watermarked"].all() and (swapped.loc[~real, "path"] == df.loc[~real, "path"]).all()
    row = swapped[real & (swapped["compression"] == "raw")].iloc[0].to_dict()
    assert row["path"] == control_path(row) and row["path"].startswith("controls/wm_reals/real-")
    twin, plain = read_item(corpus, row), read_item(corpus, df.loc[row["item_id"] == df["item_id"]].iloc[0].to_dict())
    assert twin.frames.shape == plain.frames.shape == (6, 128, 128, 3)
    diff = np.abs(twin.frames.astype(int) - plain.frames).mean()
    assert 0.3 < diff < 4                                                         # an invisible mark, not a new video
    res = decode(twin.frames)                                                     # lossless raw: the mark reads back
    from provenance.watermark.config import short_id

    assert res.detected and res.payload == short_id(payload_of(row["group_id"]))


def test_sbi_training_with_a_corpus_uses_its_split_and_its_fakes(face, tmp_path):
    import pandas as pd

    from detect.corpus_mix import CorpusFrames, corpus_items, corpus_people
    from detect.sbi_train import SBITrainConfig, train_sbi
    from detect.wm_reals import build

    corpus = _corpus(tmp_path / "corpus", face)
    build(corpus, progress=False)
    assert corpus_people(corpus) == (("p_val",), ("p_test",))
    items = corpus_items(corpus, {"p_train1", "p_train2"}, 3, watermark_reals=True)
    assert len(items) == 8 and sum(it.label for it in items) == 4 and all(len(it.frames) == 3 for it in items)
    pool = CorpusFrames.of(items, SIZE)
    assert pool.real.shape == pool.fake.shape == (12, SIZE, SIZE, 3)
    x, y = pool.sample(6, np.random.default_rng(0))
    assert x.shape == (6, SIZE, SIZE, 3) and y.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(FaceforgeError, match="32 px"):
        CorpusFrames.of(items, 32)

    with pytest.raises(FaceforgeError, match="corpus splits"):                     # fails before writing anything
        train_sbi(TinyCache(face), tmp_path / "bad", SBITrainConfig(corpus=str(tmp_path / "nowhere")), progress=False)
    assert not (tmp_path / "bad").exists()
    cfg = SBITrainConfig(image_size=SIZE, batch_size=4, steps=2, eval_every=2, val_frames=2, threads=1,
                         corpus=str(corpus), corpus_frames=3, corpus_batch=4, val_corpus_frames=2,
                         val_people=("p_extra",), test_people=())                  # overridden by the corpus's split
    m = train_sbi(TinyCache(face), tmp_path / "run", cfg, progress=False)
    assert m["val_people"] == ["p_val"] and m["test_people"] == ["p_test"]
    assert m["n_train_videos"] == 3                                               # p_train1, p_train2, p_extra
    # val: 1 real + 1 SBI video of p_val, and its corpus items (2 real + 2 fake)
    assert m["val"]["video"]["n"] == 6
    assert {"val_auc_video_sbi", "val_auc_video_corpus"} <= set(m["val"])
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert hist["step"].tolist() == [2] and hist["val_auc_video"].iloc[0] == pytest.approx(
        (hist["val_auc_video_sbi"].iloc[0] + hist["val_auc_video_corpus"].iloc[0]) / 2)
    assert "corpus" in m["source"]
