"""The render plan: every job a spec asks for, in a fixed order, and which shard renders it.

One job = one render (a real clip cut, or one fake); it writes one or more output *groups* (the
item itself, its un-watermarked twin, its full-frame paste-back), each in every compression variant.
Jobs that share a fitted person (same source, generator, mode, T) share a ``fit_key`` and always land
on the same shard, so a person is fitted once per shard.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from forge.corpus.spec import CorpusConfig, Source


@dataclass(frozen=True)
class OutputGroup:
    """One rendered clip as stored: crop or full frame, watermarked or not."""

    group_id: str
    watermarked: bool
    framing: str  # "crop" | "full"
    twin_of: str | None = None  # the watermarked group this un-watermarked twin mirrors


@dataclass(frozen=True)
class Job:
    job_id: str
    label: str                 # "real" | "fake"
    generator: str             # "real" | "fewshot" | "warp"
    mode: str | None           # "ff" | "ft" | None
    T: int | None              # source frames used to fit
    reenactment: str | None    # "self" | "cross" | None
    retarget: bool
    source: Source             # whose appearance
    driver: Source             # whose motion (== source for reals and self-reenactment)
    split: str
    seed: int                  # per-job seed derived from the spec seed and job_id
    steps: int | None          # FT steps
    fit_key: str
    outputs: tuple[OutputGroup, ...]
    clip: int = 0              # which of the source's clips (the driver's for cross-reenactment)


def job_seed(seed: int, job_id: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(job_id.encode())) % (2**31)


def _outputs(base: str, fake: bool, cfg: CorpusConfig) -> tuple[OutputGroup, ...]:
    framings = ("crop", "full") if cfg.paste_back else ("crop",)
    out: list[OutputGroup] = []
    for framing in framings:
        gid = base if framing == "crop" else f"{base}-full"
        out.append(OutputGroup(gid, watermarked=fake and cfg.watermark, framing=framing))
        if fake and cfg.watermark and cfg.unwatermarked_twin:
            out.append(OutputGroup(f"{gid}-nowm", watermarked=False, framing=framing, twin_of=gid))
    return tuple(out)


def plan_jobs(cfg: CorpusConfig, sources: list[Source], splits: dict[str, str],
              drivers: dict[str, str | None]) -> list[Job]:
    """All jobs in a deterministic order (sources sorted; generators, T, reenactments as in the spec).

    ``splits``: identity -> split; ``drivers``: identity -> cross-reenactment driver identity.
    The driver *source* of an identity is its first source video.
    """
    by_identity: dict[str, Source] = {}
    for s in sorted(sources, key=lambda s: s.source_id):
        by_identity.setdefault(s.identity, s)
    jobs: list[Job] = []
    for src in sorted(sources, key=lambda s: s.source_id):
        split = splits[src.identity]
        n_clips = cfg.clip_count(src.n_frames)
        for k in range(n_clips):
            ck = f"-c{k}" if k else ""  # clip 0 keeps the single-clip ids
            rid = f"real-{src.source_id}{ck}"
            jobs.append(Job(rid, "real", "real", None, None, None, False, src, src, split,
                            job_seed(cfg.seed, rid), None, rid, _outputs(rid, False, cfg), k))
        for gen in cfg.generators:
            if split not in gen.splits:
                continue
            for T in gen.T:
                tag = f"{gen.name}-{gen.mode}-T{T}" if gen.mode else f"{gen.name}-T{T}"
                fit_key = f"{tag}-{src.source_id}"  # one fitted person renders all its clips
                for k in range(n_clips):
                    ck = f"-c{k}" if k else ""
                    for reen in gen.reenactment:
                        if reen == "self":
                            variants = [(False, src)]
                        else:
                            d_ident = drivers.get(src.identity)
                            if d_ident is None:
                                continue  # alone in its split: no cross driver without leaking identities
                            variants = [(rt, by_identity[d_ident]) for rt in gen.retarget]
                        for rt, drv in variants:
                            jid = f"{tag}-{reen}{'-rt' if rt else ''}-{src.source_id}{ck}"
                            if reen == "cross":
                                jid += f"-by-{drv.source_id}"
                            jobs.append(Job(jid, "fake", gen.name, gen.mode, T, reen, rt, src, drv, split,
                                            job_seed(cfg.seed, jid), gen.steps, fit_key,
                                            _outputs(jid, True, cfg), k))
    seen: set[str] = set()
    for j in jobs:
        if j.job_id in seen:
            from core.common import FaceforgeError

            raise FaceforgeError(f"the spec asks for {j.job_id} twice (overlapping generator entries)")
        seen.add(j.job_id)
    return jobs


def shard_jobs(jobs: list[Job], index: int, count: int, splits: tuple[str, ...] = ()) -> list[Job]:
    """The jobs of shard ``index`` of ``count``: fit keys are dealt round-robin in plan order, so
    shards are disjoint, cover the plan, and each fitted person lives on one shard. ``splits``: only
    these splits' jobs (the same shards either way, so a split-first render resumes into the rest)."""
    keys: dict[str, int] = {}
    for j in jobs:
        keys.setdefault(j.fit_key, len(keys))
    return [j for j in jobs if keys[j.fit_key] % count == index and (not splits or j.split in splits)]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    from core.common import FaceforgeError

    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise FaceforgeError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise FaceforgeError(f"--shard {text}: need 0 <= i < n")
    return i, n
