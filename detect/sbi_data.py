"""Self-blended training data: the people split, paired real / self-blended batches, the val set and its scores.

People are split by identity (``TEST_PEOPLE`` never read by a trainer, ``VAL_PEOPLE`` for selection and
calibration, the rest train; or a benchmark corpus's own split). :func:`training_pairs` draws real frames
and their self-blended (or cross-frame blended) twins, flipped, resampled and compressed alike; :func:`validation_set`
and :func:`score_videos` are the fixed val set and its selection metrics. ``cfg`` is a
:class:`detect.sbi_train.SBITrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.common import FaceforgeError

# the generator's held-out people: test only, for every detector (issue 17)
TEST_PEOPLE = ("d12", "d18", "hdtf_wda_katiehill", "vox2_00086", "vox2_620900105", "grid_lbax4n",
               "styletalk_reagan", "mead_w011", "latentsync_demo2", "eamm_happy")
# validation people: one or two per source family (HDTF, LivePortrait, DPE, MEAD/EAMM, GRID, LRS2, StyleTalk, Vox2)
VAL_PEOPLE = ("d3", "dpe_s", "eamm_surprised", "grid_sbia1a", "hdtf_rd_radio34", "lrs2_00016",
              "styletalk_feifeili", "vox2_00098")


@dataclass
class People:
    """Valid frames and landmarks of some people, one entry per video."""

    names: list[str]
    frames: list[np.ndarray]         # (N_i, S, S, 3) uint8
    landmarks: list[np.ndarray]      # (N_i, 68, 2) crop px
    persons: list[str] = field(default_factory=list)   # the identity of each video


def load_people(cache, people: list[str]) -> People:
    out = People([], [], [])
    for person in people:
        for vid in cache.videos_of(person):
            frames, lm = cache.load(vid)
            ok = np.isfinite(lm).all(axis=(1, 2))
            if ok.sum():
                out.names.append(vid)
                out.frames.append(frames[ok])
                out.landmarks.append(lm[ok].astype(np.float32))
                out.persons.append(person)
    return out


def people_split(cfg) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(val people, test people): the config's, or with ``corpus_splits`` the corpus's own."""
    if cfg.corpus and cfg.corpus_splits:
        from detect.corpus_mix import corpus_people

        return corpus_people(cfg.corpus)
    return tuple(cfg.val_people), tuple(cfg.test_people)


def split_people(cache, cfg) -> tuple[list[str], list[str]]:
    everyone = cache.identities()
    val_people, test_people = people_split(cfg)
    overlap = set(val_people) & set(test_people)
    if overlap:
        raise FaceforgeError(f"val and test people overlap: {', '.join(sorted(overlap))}")
    val = [p for p in val_people if p in everyone]
    train = [p for p in everyone if p not in set(test_people) | set(val_people)]
    if not train or not val:
        raise FaceforgeError(f"{getattr(cache, 'root', 'cache')}: need train and val people (found {len(train)} and {len(val)})")
    return train, val


def training_pairs(people: People, n: int, rng: np.random.Generator, cfg,
                   with_landmarks: bool = False):
    """``n`` real frames and their SBI twins -> images ``(2n, S, S, 3)``, labels ``(2n,)``, masks ``(2n, S, S)``
    (+ landmarks ``(2n, 68, 2)`` with ``with_landmarks``). Both frames of a pair are flipped alike, resampled
    down and up alike (``degrade_p``) and JPEG-compressed alike (``compress_p``), so only the blend differs."""
    from detect.detectors.base import down_up
    from detect.sbi import jpeg, self_blend_batch

    sizes = np.array([len(f) for f in people.frames], np.float64)
    vids = rng.choice(len(sizes), size=n, p=sizes / sizes.sum())
    idx = np.array([int(rng.integers(len(people.frames[v]))) for v in vids], np.int64)
    real = np.stack([people.frames[v][i] for v, i in zip(vids, idx)])       # (n, S, S, 3)
    lm = np.stack([people.landmarks[v][i] for v, i in zip(vids, idx)])       # (n, 68, 2)
    flip = rng.random(n) < 0.5
    real[flip] = real[flip, :, ::-1]
    lm[flip, :, 0] = real.shape[2] - 1 - lm[flip, :, 0]                     # mirrored landmarks (hull only)
    if cfg.cross_frame_p > 0:                                                # (no draw at 0: SBI runs replay)
        fake, mask = _mixed_fakes(people, vids, idx, flip, real, lm, rng, cfg)
    else:
        fake, mask = self_blend_batch(real, lm, rng)
    if cfg.degrade_p > 0 and rng.random() < cfg.degrade_p:                   # (no draw at 0: older runs replay)
        f = float(rng.uniform(*cfg.degrade_range))
        real, fake = down_up(real, f, min_side=8), down_up(fake, f, min_side=8)
    if rng.random() < cfg.compress_p:
        q = int(rng.integers(50, 96))
        real, fake = jpeg(real, q), jpeg(fake, q)
    images = np.concatenate([real, fake])
    labels = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)
    masks = np.concatenate([np.zeros_like(mask), mask])
    if with_landmarks:
        return images, labels, masks, np.concatenate([lm, lm])
    return images, labels, masks


def _mixed_fakes(people: People, vids, idx, flip, real, lm, rng: np.random.Generator, cfg):
    """SBI twins, except a ``cross_frame_p`` share blended from another frame of their video (flipped alike)
    -> fakes ``(n, S, S, 3)``, masks ``(n, S, S)``."""
    from detect.cross_blend import cross_blend, partners
    from detect.sbi import self_blend_batch

    cross = rng.random(len(real)) < cfg.cross_frame_p                          # (n,)
    fake, mask = np.empty_like(real), np.zeros(real.shape[:3], np.float32)
    if (~cross).any():
        fake[~cross], mask[~cross] = self_blend_batch(real[~cross], lm[~cross], rng)
    other, other_lm = partners(people.frames, people.landmarks, vids[cross], idx[cross], rng, cfg.cross_frame)
    f = flip[cross]
    other[f] = other[f, :, ::-1]
    other_lm[f, :, 0] = real.shape[2] - 1 - other_lm[f, :, 0]
    for k, o, olm in zip(np.flatnonzero(cross), other, other_lm):
        fake[k], mask[k] = cross_blend(real[k], lm[k], o, olm, rng, cfg.cross_frame)
    return fake, mask


def validation_set(people: People, cfg):
    """Per val video: ``val_frames`` real frames and the same frames self-blended (seed fixed), and, when the
    run trains on cross-frame fakes, the same frames cross-frame blended (partners from that video)."""
    from detect.cross_blend import cross_blend_frames
    from detect.detectors.base import even_indices
    from detect.sbi import self_blend_batch

    rng = np.random.default_rng([cfg.seed, 1])
    videos = []
    for name, frames, lm in zip(people.names, people.frames, people.landmarks):
        idx = even_indices(len(frames), cfg.val_frames)
        fake, _ = self_blend_batch(frames[idx], lm[idx], rng)
        videos += [(f"{name}/real", 0, frames[idx], lm[idx]), (f"{name}/sbi", 1, fake, lm[idx])]
    if cfg.cross_frame_p > 0:
        xrng = np.random.default_rng([cfg.seed, 3])                             # the SBI draws above stay as they were
        for name, frames, lm in zip(people.names, people.frames, people.landmarks):
            idx = even_indices(len(frames), cfg.val_frames)
            fake, _ = cross_blend_frames(frames, lm, idx, xrng, cfg.cross_frame)
            videos.append((f"{name}/xframe", 1, fake, lm[idx]))
    return videos


def score_videos(det, videos) -> dict:
    """Frame and video (mean) scores of the val set -> metrics for selection. With corpus items in the
    set (``corpus:`` names) the AUCs are the mean of the two groups' (self-blended, our generators'),
    each also reported (``val_auc_video_sbi``, ``val_auc_video_corpus``)."""
    from detect.corpus_mix import group_of
    from detect.metrics import auc, log_loss

    fy, fs, fg, vy, vs, vg = [], [], [], [], [], []
    for name, label, frames, landmarks in videos:
        s, group = det.score_clip(frames, landmarks), group_of(name)
        fy += [label] * len(s)
        fs += list(s)
        fg += [group] * len(s)
        vy.append(label)
        vs.append(float(np.mean(s)))
        vg.append(group)
    out = {"val_loss": log_loss(fy, fs), "video_labels": vy, "video_scores": vs}
    groups = sorted(set(vg))
    for kind, y, s, g in (("video", vy, vs, vg), ("frame", fy, fs, fg)):
        y, s, g = np.asarray(y), np.asarray(s), np.asarray(g)
        per = {k: auc(y[g == k], s[g == k]) for k in groups}
        out[f"val_auc_{kind}"] = float(np.mean(list(per.values()))) if len(groups) > 1 else auc(y, s)
        if len(groups) > 1:
            out.update({f"val_auc_{kind}_{k}": v for k, v in per.items()})
    return out
