"""``build_corpus``: plan -> (shard) -> render -> watermark + sign -> compression variants -> merge.

Layout of ``CORPUS/``::

    spec.yaml  splits.json  corpus.json  manifest.parquet  errors.parquet  provenance.sqlite  keys/
    items/<group_id>/{raw.mp4, c23.mp4, c40.mp4, jpeg.mov, landmarks.npy}
    sources/<source_id>.npz        extracted faces (cache, reused by every job and shard)
    parts/<job_id>.json            per-job done marker holding its manifest rows (written last)
    errors/<source_id>.json        a skipped source and why

Resumable: a job whose part file exists is not rendered again; every file is written atomically, so
an interrupted job leaves no finished-looking output and is redone on the next run, which first removes
the temp files a killed run left (``core.common.remove_stale_temps``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.common import (FaceforgeError, atomic_path, get_logger, remove_stale_temps, save_config,
                          scratch_path, sha256_file, write_json_atomic)
from forge.corpus import compress, manifest, plan, render, splits
from forge.corpus.signing import CorpusProvenance, payload_hex
from forge.corpus.spec import CorpusConfig, Source, list_sources, load_spec

log = get_logger("corpus.build")

SPEC = "spec.yaml"
RUNTIME_FIELDS = ("device", "batch_size")  # how to render, not what: not part of a corpus's identity
PARTS, SOURCES, ERRORS_DIR, ITEMS = "parts", "sources", "errors", "items"


@dataclasses.dataclass
class BuildReport:
    corpus: str
    shard: str
    jobs_planned: int          # in the whole plan
    jobs_in_shard: int
    jobs_rendered: int         # rendered by this call
    jobs_already_done: int     # found done (resume)
    jobs_failed: int           # recorded in errors
    jobs_skipped: int          # their source was skipped
    files_written: int
    person_fits: int
    seconds: float
    items_per_s: float         # rendered jobs per second (all variants included)
    merged: bool = False
    card: dict | None = None


# ---------------------------------------------------------------- setup
def resolve_spec(corpus: Path, spec: CorpusConfig | str | Path | None, overrides: dict | None) -> CorpusConfig:
    """The spec to build with. A corpus folder keeps its ``spec.yaml``: re-runs (resume, other
    shards) must use the same spec, and a different one is refused."""
    saved = corpus / SPEC
    if isinstance(spec, CorpusConfig):
        cfg = spec
    else:  # no spec given: the corpus's own, else the default (embedded sample)
        cfg = load_spec(spec if spec is not None else (saved if saved.exists() else None), overrides)
    with splits.file_lock(corpus / ".spec.lock"):
        if saved.exists():
            old = load_spec(saved)
            runtime = {f: getattr(cfg, f) for f in RUNTIME_FIELDS}  # may differ between runs and shards
            if dataclasses.replace(old, **runtime) != cfg:
                raise FaceforgeError(f"{corpus} was built with a different spec ({saved}); "
                                     f"use a new --out folder or the same spec")
        else:
            save_config(cfg, saved)
    return cfg


def plan_corpus(corpus: Path, cfg: CorpusConfig) -> tuple[list[Source], dict[str, str], list[plan.Job]]:
    sources = list_sources(cfg)
    id_split = splits.load_or_write_splits(corpus / "splits.json", [s.identity for s in sources],
                                           cfg.split_ratios, cfg.seed, cfg.test_identities)
    drivers = splits.cross_drivers(id_split, cfg.seed)
    return sources, id_split, plan.plan_jobs(cfg, sources, id_split, drivers)


# ---------------------------------------------------------------- sources
class SourceBank:
    """Extracted sources of this process, and the reason a bad one was skipped."""

    def __init__(self, corpus: Path, cfg: CorpusConfig):
        self.corpus, self.cfg = corpus, cfg
        self.clips: dict[str, render.SourceClip] = {}
        self.full: dict[str, dict[int, np.ndarray]] = {}

    def error_path(self, src: Source) -> Path:
        return self.corpus / ERRORS_DIR / f"{src.source_id}.json"

    def get(self, src: Source) -> render.SourceClip | None:
        """The source's faces, or None when it was skipped (its error is on disk)."""
        if src.source_id in self.clips:
            return self.clips[src.source_id]
        if self.error_path(src).exists():
            return None
        try:
            clip = render.extract_source(src, self.cfg, self.corpus / SOURCES)
        except FaceforgeError as e:
            log.warning("skipping source %s: %s", src.source_id, e)
            write_json_atomic(self.error_path(src), {
                "stage": "source", "source_id": src.source_id, "identity": src.identity,
                "path": src.path, "job_id": None, "reason": str(e)})
            return None
        self.clips[src.source_id] = clip
        return clip

    def full_frames(self, src: Source, indices: np.ndarray) -> dict[int, np.ndarray]:
        have = self.full.setdefault(src.source_id, {})
        missing = [int(i) for i in indices if int(i) not in have]
        if missing:
            have.update(render.read_source_frames(src.path, np.asarray(missing)))
        return have


# ---------------------------------------------------------------- one job
def _generation(job: plan.Job, cfg: CorpusConfig, version: str, ckpt: str | None, group: plan.OutputGroup,
                rendered: render.Render) -> dict[str, Any]:
    return {
        "model": job.generator, "generator_version": version, "checkpoint_sha256": ckpt,
        "mode": job.mode, "T": job.T, "reenactment": job.reenactment, "retarget": job.retarget,
        "source_id": job.source.source_id, "source_identity": job.source.identity,
        "source_frames": [int(i) for i in rendered.source_frames],
        "driver_id": job.driver.source_id, "driver_identity": job.driver.identity,
        "driver_frames": [int(rendered.driver_frames[0]), int(rendered.driver_frames[-1])],
        "seed": job.seed, "steps": job.steps, "resolution": cfg.resolution, "framing": group.framing,
        "watermarked": group.watermarked, "corpus": cfg.name, "job_id": job.job_id, "group_id": group.group_id,
    }


def _base_row(job: plan.Job, group: plan.OutputGroup, cfg: CorpusConfig, rendered: render.Render,
              version: str, ckpt: str | None) -> dict[str, Any]:
    drv_idx = rendered.driver_frames
    return {
        "group_id": group.group_id, "label": job.label, "split": job.split, "generator": job.generator,
        "generator_version": version, "checkpoint_sha256": ckpt, "mode": job.mode, "T": job.T,
        "reenactment": job.reenactment, "retarget": bool(job.retarget),
        "source_identity": job.source.identity,
        "source_frames": ",".join(str(int(i)) for i in rendered.source_frames),
        "driver_identity": job.driver.identity,
        "driver_clip": f"{job.driver.source_id}:{int(drv_idx[0])}-{int(drv_idx[-1])}",
        "resolution": cfg.resolution, "fps": float(rendered.fps), "seed": job.seed,
        "job_id": job.job_id, "framing": group.framing, "twin_of": group.twin_of,
        "source_id": job.source.source_id, "driver_id": job.driver.source_id, "clip": int(job.clip),
        "render_resolution": int(rendered.render_resolution or cfg.resolution),
    }


def write_group(corpus: Path, job: plan.Job, group: plan.OutputGroup, frames: np.ndarray,
                landmarks: np.ndarray, rendered: render.Render, cfg: CorpusConfig,
                prov: CorpusProvenance | None, version: str, ckpt: str | None) -> list[dict]:
    """Write one output group in every compression variant; returns its manifest rows."""
    gdir = corpus / ITEMS / group.group_id
    rel = Path(ITEMS) / group.group_id
    fake = job.label == "fake"
    payload = prov.new_payload() if (fake and group.watermarked) else None
    if payload is not None:
        frames = prov.embed(frames, payload)                              # (N, H, W, 3)
    with atomic_path(gdir / "landmarks.npy") as tmp:
        np.save(tmp, landmarks.astype(np.float32))                        # (N, 68, 2)
    base = _base_row(job, group, cfg, rendered, version, ckpt)
    generation = _generation(job, cfg, version, ckpt, group, rendered)
    raw = gdir / compress.variant_filename("raw")
    rows = []
    decoded = None
    for comp in cfg.compressions:
        dst = gdir / compress.variant_filename(comp)
        if comp == "raw":
            _write_file(dst, frames, rendered.fps, comp, cfg, prov if fake else None, generation,
                        ingredients=list(dict.fromkeys([job.source.path, job.driver.path])),  # source, driver
                        actions=("created", "watermarked") if payload is not None else ("created",),
                        payload=payload)
        else:  # variants are transcodes of the written raw file, recorded as such
            decoded = compress.read_frames(raw) if decoded is None else decoded
            _write_file(dst, decoded, rendered.fps, comp, cfg, prov if fake else None,
                        {**generation, "compression": comp}, ingredients=[raw], actions=("transcoded",),
                        payload=payload)
        status = prov.verify(dst, decode_watermark=not fake) if prov is not None else "none"
        h, w = frames.shape[1:3]
        rows.append({**base, "item_id": f"{group.group_id}-{comp}", "path": str(rel / dst.name),
                     "compression": comp, "watermarked": payload is not None, "n_frames": int(len(frames)),
                     "sha256": sha256_file(dst), "c2pa_signed": fake, "watermark_payload": payload_hex(payload),
                     "provenance_status": status, "landmarks_path": str(rel / "landmarks.npy"),
                     "width": int(w), "height": int(h)})
    return rows


def _write_file(dst: Path, frames: np.ndarray, fps: float, comp: str, cfg: CorpusConfig,
                prov: CorpusProvenance | None, generation: dict, *, ingredients, actions, payload) -> None:
    if prov is None:  # real items: no watermark, no manifest
        compress.write_variant(dst, frames, fps, comp, cfg.jpeg_quality)
        return
    with scratch_path(dst) as unsigned:           # the unsigned file, removed after signing
        compress.write_variant(unsigned, frames, fps, comp, cfg.jpeg_quality)
        prov.sign(unsigned, dst, generation=generation, ingredients=ingredients, actions=actions,
                  payload=payload)


def run_job(corpus: Path, job: plan.Job, cfg: CorpusConfig, bank: SourceBank, models: render.Renderers,
            prov: CorpusProvenance) -> dict[str, Any]:
    """Render one job and write all its groups; returns its part record (rows, status, errors)."""
    src, drv = bank.get(job.source), bank.get(job.driver)
    if src is None or drv is None:
        bad = job.source if src is None else job.driver
        return {"job_id": job.job_id, "status": "skipped", "rows": [], "errors": [],
                "reason": f"source {bad.source_id} was skipped"}
    try:
        rendered = render.render_job(job, src, drv, cfg, models)
    except FaceforgeError as e:
        log.warning("job %s failed: %s", job.job_id, e)
        return {"job_id": job.job_id, "status": "error", "rows": [], "errors": [{
            "stage": "job", "source_id": job.source.source_id, "identity": job.source.identity,
            "path": job.source.path, "job_id": job.job_id, "reason": str(e)}]}
    version, ckpt = models.generator_info(job.generator)
    full = None
    rows: list[dict] = []
    for group in job.outputs:
        if group.framing == "crop":
            frames, lms = rendered.frames, rendered.landmarks
        else:
            if full is None:
                boxes = drv.boxes[render.driver_clip(job, drv, cfg)]                # (N, 4)
                full = render.paste_back(rendered, job.label == "fake", boxes,
                                         bank.full_frames(job.driver, rendered.driver_frames), cfg.paste_size)
            frames, lms = full
        rows += write_group(corpus, job, group, frames, lms, rendered, cfg, prov, version, ckpt)
    return {"job_id": job.job_id, "status": "ok", "rows": rows, "errors": []}


# ---------------------------------------------------------------- the build
def is_done(part: Path, job: plan.Job, models: render.Renderers) -> bool:
    """A job is done when its part file exists, and (GAN fakes) was rendered by the current
    checkpoint: a re-run after a new ``talker128.pt`` re-renders the GAN items, nothing else."""
    if not part.exists():
        return False
    if job.generator != "fewshot":
        return True
    rows = json.loads(part.read_text())["rows"]
    return all(r["checkpoint_sha256"] == models.checkpoint_sha256 for r in rows)


def build_corpus(out: str | Path, spec: CorpusConfig | str | Path | None = None, *,
                 overrides: dict | None = None, shard: tuple[int, int] = (0, 1), merge: bool | None = None,
                 progress: bool = True, splits: tuple[str, ...] = ()) -> BuildReport:
    """Render (this shard of) a corpus into ``out`` and, for a single shard (or ``merge=True``),
    write its manifest, errors and card. Re-running renders only what is missing. ``splits``:
    render only these splits' jobs (e.g. the test split first); a partial render is not merged."""
    from tqdm import tqdm

    corpus = Path(out)
    corpus.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(corpus, recursive=True)  # what a killed run left (live shards' temps are kept)
    cfg = resolve_spec(corpus, spec, overrides)
    _, _, jobs = plan_corpus(corpus, cfg)
    index, count = shard
    mine = plan.shard_jobs(jobs, index, count, splits)
    bank = SourceBank(corpus, cfg)
    models = render.Renderers(cfg)
    prov = CorpusProvenance(corpus, cfg.key_dir, verify=cfg.verify)
    t0 = time.perf_counter()
    stats = {"ok": 0, "done": 0, "error": 0, "skipped": 0, "files": 0}
    bar = tqdm(mine, desc=f"corpus {corpus.name} shard {index}/{count}", unit="job", disable=not progress,
               dynamic_ncols=True)
    for job in bar:
        part = corpus / PARTS / f"{job.job_id}.json"
        if is_done(part, job, models):
            stats["done"] += 1
            continue
        t_job = time.perf_counter()
        record = run_job(corpus, job, cfg, bank, models, prov)
        record["seconds"] = round(time.perf_counter() - t_job, 3)  # incl. a person fit shared by later jobs
        write_json_atomic(part, record)  # the done marker, written after every file of the job
        stats[record["status"]] += 1
        stats["files"] += len(record["rows"])
        bar.set_postfix(files=stats["files"], failed=stats["error"] + stats["skipped"])
    seconds = time.perf_counter() - t0
    report = BuildReport(
        corpus=str(corpus), shard=f"{index}/{count}", jobs_planned=len(jobs), jobs_in_shard=len(mine),
        jobs_rendered=stats["ok"], jobs_already_done=stats["done"], jobs_failed=stats["error"],
        jobs_skipped=stats["skipped"], files_written=stats["files"], person_fits=models.n_fits,
        seconds=round(seconds, 3), items_per_s=round(stats["ok"] / seconds, 4) if seconds > 0 else 0.0)
    if merge or (merge is None and count == 1 and not splits):
        report.merged = True
        report.card = merge_corpus(corpus, last_build={k: v for k, v in dataclasses.asdict(report).items()
                                                       if k != "card"})
    return report


def merge_corpus(corpus: str | Path, last_build: dict | None = None) -> dict[str, Any]:
    """Build manifest.parquet, errors.parquet and corpus.json from the parts of all shards. GAN parts
    rendered by another Talker checkpoint than the spec's are left out (counted as ``jobs.stale``,
    within ``missing``): a corpus resumed after a new generator never mixes the two."""
    corpus = Path(corpus)
    if not (corpus / SPEC).exists():
        raise FaceforgeError(f"{corpus} is not a corpus folder (no {SPEC})")
    cfg = load_spec(corpus / SPEC)
    _, id_split, jobs = plan_corpus(corpus, cfg)
    rows: list[dict] = []
    errors: list[dict] = []
    done: dict[str, str] = {}
    models = render.Renderers(cfg)  # the current checkpoint's sha, read at the first GAN part
    stale = 0
    for job in jobs:
        part = corpus / PARTS / f"{job.job_id}.json"
        if part.exists():
            if not is_done(part, job, models):  # a GAN render of another checkpoint: superseded, left out
                stale += 1
                continue
            record = json.loads(part.read_text())
            done[job.job_id] = record["status"]
            rows += record["rows"]
            errors += record["errors"]
    for path in sorted((corpus / ERRORS_DIR).glob("*.json")):
        errors.append(json.loads(path.read_text()))
    for row in rows:  # the manifest must match the files on disk
        if not (corpus / row["path"]).exists():
            raise FaceforgeError(f"{row['path']} is in a part file but missing on disk; delete "
                                 f"{PARTS}/{row['job_id']}.json and re-run to render it again")
    missing = [j.job_id for j in jobs if j.job_id not in done]
    card = {
        "name": cfg.name,
        "spec": dataclasses.asdict(cfg),
        "complete": not missing,
        "jobs": {"planned": len(jobs), "done": sum(1 for s in done.values() if s == "ok"),
                 "failed": sum(1 for s in done.values() if s == "error"),
                 "skipped": sum(1 for s in done.values() if s == "skipped"), "missing": len(missing),
                 "stale": stale},  # of the missing: rendered by another checkpoint, re-rendered on resume
        "splits": {s: sorted(i for i, v in id_split.items() if v == s) for s in ("train", "val", "test")},
        "last_build": last_build,  # the run that merged (jobs rendered, seconds, items/s), None for --merge
        "description": ("Face-crop talking-head clips: real clips cut from the source videos and fakes from "
                        "the few-shot GAN (FF/FT, T shots, self/cross reenactment, with/without "
                        "retargeting) and a piecewise-affine warp baseline; every fake watermarked and "
                        "C2PA-signed, every item in raw/c23/c40/jpeg variants; identity-disjoint splits."),
    }
    if missing:
        log.warning("%d of %d jobs not rendered yet, %d of them by another Talker checkpoint (run the "
                    "missing shards, then --merge again)", len(missing), len(jobs), stale)
    return manifest.write_tables(corpus, rows, errors, card)
