"""The main job: the whole suite end to end on the embedded sample, and a report a researcher can trust.

prepare the sample -> fit the shipped generator to a painting and a photo (T=1) and to a held-out real
person (T=8) -> animate them with a real driver -> evaluate (T=1/8/32, FF/FT, warp) -> render a small
corpus (C2PA + watermark on every fake) -> train a fast detector, score the held-out split -> verify
provenance on a signed, a re-encoded (stripped) and a tampered file -> report.

Each stage is a named function that returns a JSON-able dict; :class:`StageRunner` times it, writes
``stages/<name>.json`` atomically and skips it on a re-run, so an interrupted job resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


from core.common import SAMPLE_DIR, FaceforgeError, get_logger, remove_stale_temps, save_config, write_json_atomic

log = get_logger("mainjob")


@dataclass(frozen=True)
class MainJobConfig:
    sample: str = str(SAMPLE_DIR)          # embedded sample: videos/ and portraits/
    resolution: int = 128                  # must match the shipped checkpoint
    every: int = 3                         # prepare: keep every n-th frame
    max_frames: int = 40                   # prepare: frames per video
    checkpoint: str | None = None          # None: the shipped forge/weights/talker128.pt
    painting: str = "s9.jpg"               # Mona Lisa
    photo: str = "s42.jpg"
    heldout_video: str = "hdtf_wda_katiehill"   # a generator held-out identity (TrainConfig.holdout)
    driver_video: str = "d0.mp4"           # a real driver video
    driver_frames: int = 48                # frames of the driver to animate
    ft_steps: int = 20                     # few-shot fine-tuning steps (FT) on CPU (paper: a few hundred)
    eval_ft_steps: int = 10                # FT steps in the evaluation (9 fits per held-out video)
    eval_frames: int = 6                   # eval: frames rendered per held-out video
    eval_shots: tuple = (1, 8, 32)         # T
    corpus_spec: str | None = None         # None: the corpus package's default spec
    corpus_overrides: tuple = ("paste_back=true",)  # "key=value" overrides of the corpus spec; full-frame
                                           # paste-back items (256 px) carry a recoverable watermark
    detector: str = "temporal"             # a fast detector (landmark + texture dynamics, gradient boosting)
    detector_epochs: int = 3
    seed: int = 0


# a minimal setting for the end-to-end test (same stages, fewer frames and steps)
QUICK = {"max_frames": 12, "every": 8, "driver_frames": 8, "ft_steps": 3, "eval_ft_steps": 2, "eval_frames": 2,
         "eval_shots": (1, 8), "detector_epochs": 1, "detector": "frequency",
         "corpus_overrides": ("clip_frames=8", "paste_back=true",
                              "generators=[{name: fewshot, mode: ff, T: [1], reenactment: [self, cross]},"
                              " {name: warp, reenactment: [cross], retarget: [true]}]")}


# ---------------------------------------------------------------- stage runner
class StageRunner:
    """Runs named stages once: results in ``OUT/stages/<name>.json``; a re-run skips finished stages."""

    def __init__(self, out: Path, progress: Callable[[str], None] = print):
        self.out = out
        self.dir = out / "stages"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, dict] = {}
        self.progress = progress

    def run(self, name: str, fn: Callable[[], dict]) -> dict:
        path = self.dir / f"{name}.json"
        if path.exists():
            self.results[name] = json.loads(path.read_text())
            self.progress(f"[{name}] done earlier ({self.results[name]['seconds']:.1f} s), skipped")
            return self.results[name]
        self.progress(f"[{name}] ...")
        t0 = time.perf_counter()
        result = fn()
        result = {"seconds": round(time.perf_counter() - t0, 2), **result}
        write_json_atomic(path, result)
        self.results[name] = result
        self.progress(f"[{name}] done in {result['seconds']:.1f} s")
        return result


# ---------------------------------------------------------------- stages
def stage_prepare(cfg: MainJobConfig, out: Path) -> dict:
    from forge.data.prepare import PrepareConfig, prepare

    pcfg = PrepareConfig(resolution=cfg.resolution, every=cfg.every, max_frames=cfg.max_frames, workers=1)
    report = prepare([Path(cfg.sample) / "videos"], out / "cache", pcfg, progress=True)
    return {"cache": str(out / "cache"), "backend": report["backend"], "n_videos": report["n_ok"],
            "n_frames": report["n_frames"], "n_valid_frames": report["n_valid_frames"],
            "failed": report["failed"], "size_mib": report["size_mib"]}


def _fit_from_clip(talker, frames, landmarks, name: str, out: Path, cfg: MainJobConfig) -> dict:
    rows = {}
    for mode in ("ff", "ft"):
        person = talker.fit(frames, landmarks, mode=mode, steps=cfg.ft_steps if mode == "ft" else None,
                            seed=cfg.seed)
        person.info["source_landmarks"] = landmarks[0].tolist()  # lets `animate` retarget to this face
        path = out / "persons" / f"{name}_{mode}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        person.save(path)
        rows[mode] = str(path)
    return {"T": int(len(frames)), "persons": rows}


def stage_fit(cfg: MainJobConfig, out: Path) -> dict:
    from forge.data import extract_clip
    from forge.data.cache import PreparedCache
    from forge.talker import Talker

    talker = Talker.load(cfg.checkpoint)
    fitted = {}
    for kind, name in (("painting", cfg.painting), ("photo", cfg.photo)):
        clip = extract_clip(Path(cfg.sample) / "portraits" / name, resolution=talker.resolution)
        fitted[kind] = {"source": name, **_fit_from_clip(talker, clip.frames[:1], clip.landmarks[:1],
                                                          kind, out, cfg)}
    cache = PreparedCache(out / "cache")
    vid = _video_id(cache, cfg.heldout_video)
    frames, landmarks = cache.load(vid)
    fitted["heldout"] = {"source": vid, **_fit_from_clip(talker, frames[:8], landmarks[:8], "heldout", out, cfg)}
    return {"checkpoint": str(talker.path), "checkpoint_sha256": talker.checkpoint_sha256,
            "generator_version": talker.version, "fitted": fitted}


def _video_id(cache, stem: str) -> str:
    ids = [v for v in cache.video_ids() if v == stem or v.startswith(stem)]
    if not ids:
        raise FaceforgeError(f"video {stem!r} is not in the prepared cache (ids: {cache.video_ids()[:5]}...)")
    return ids[0]


def stage_animate(cfg: MainJobConfig, out: Path, fit: dict) -> dict:
    from forge.animate import AnimateConfig, animate

    driver = Path(cfg.sample) / "videos" / cfg.driver_video
    results = {}
    for kind, info in fit["fitted"].items():
        for mode, person in info["persons"].items():
            for retarget in ((True, False) if kind != "heldout" else (True,)):
                name = f"{kind}_{mode}" + ("" if retarget else "_noretarget")
                acfg = AnimateConfig(generator="fewshot", mode=mode, retarget=retarget,
                                     max_frames=cfg.driver_frames, side_by_side=True, seed=cfg.seed)
                rep = animate(person, driver, out / "animate" / f"{name}.mp4", acfg, checkpoint=cfg.checkpoint,
                              **_signing(out))
                results[name] = _animate_summary(rep)
        if kind != "heldout":
            portrait = Path(cfg.sample) / "portraits" / info["source"]
            acfg = AnimateConfig(generator="warp", resolution=cfg.resolution, max_frames=cfg.driver_frames,
                                 side_by_side=True, seed=cfg.seed)
            rep = animate(portrait, driver, out / "animate" / f"{kind}_warp.mp4", acfg, **_signing(out))
            results[f"{kind}_warp"] = _animate_summary(rep)
    return {"driver": cfg.driver_video, "renders": results}


def _signing(out: Path) -> dict:
    """Every animation is watermarked and C2PA-signed with the job's own identity and store."""
    return {"key_dir": out / "keys", "store": out / "provenance.sqlite"}


def _animate_summary(rep: dict) -> dict:
    keep = ("out", "sbs_path", "n_frames", "fps", "generator", "retargeted", "render_fps",
            "driver_missing_frames", "provenance")
    return {k: rep[k] for k in keep if k in rep}


def stage_eval(cfg: MainJobConfig, out: Path) -> dict:
    from forge.evaluate import EvalConfig, evaluate

    ecfg = EvalConfig(t_values=tuple(cfg.eval_shots), n_eval_frames=cfg.eval_frames, ft_steps=cfg.eval_ft_steps,
                      seed=cfg.seed)
    res = evaluate(out / "cache", out / "eval", ecfg, checkpoint=cfg.checkpoint)
    keep = ("summary", "videos", "skipped", "notes", "fid_note", "csim_note", "grid", "generator_version")
    return {k: res[k] for k in keep if k in res}


def stage_corpus(cfg: MainJobConfig, out: Path) -> dict:
    from core.common import parse_overrides
    from forge.corpus import build_corpus

    report = build_corpus(out / "corpus", cfg.corpus_spec, overrides=parse_overrides(list(cfg.corpus_overrides)))
    return {"corpus": str(out / "corpus"), "card": report.card, "items_per_s": report.items_per_s,
            "files_written": report.files_written, "jobs_failed": report.jobs_failed}


def stage_detect(cfg: MainJobConfig, out: Path) -> dict:
    from detect.config import DetectConfig
    from detect.evaluate import evaluate
    from detect.train import train

    run = out / "detect" / cfg.detector
    val = train(out / "corpus", run, DetectConfig(detector=cfg.detector, epochs=cfg.detector_epochs,
                                                  seed=cfg.seed))
    test = evaluate(run, out / "corpus", split="test", name="test")
    return {"run": str(run), "val": val, "metrics": test, "default": _default_detector(out / "corpus")}


def _default_detector(corpus: Path) -> dict:
    """The shipped default detector (trained on self-blended real faces only, never on this corpus's
    generators) on the corpus test split, and its measured cross-generator AUC on third-party fakes
    (``benchmarks/results/detect_default.json``)."""
    from core.common import REPO_ROOT
    from detect.evaluate import breakdown, score_split
    from detect.metrics import summary
    from detect.score import load_run

    lr = load_run(None)
    _, videos, _ = score_split(lr, corpus, "test", progress=False)
    measured = REPO_ROOT / "benchmarks" / "results" / "detect_default.json"
    ext = json.loads(measured.read_text()) if measured.is_file() else {}
    return {"detector": lr.cfg.detector, "calibration": lr.metrics.get("calibration"),
            "test": summary(videos["label"], videos["score"], lr.threshold.get("video", 0.5)),
            "by_generator": breakdown(videos, "generator"),
            "external": {k: ext.get(k) for k in ("video_auc", "family_mean_auc", "n_fake", "n_real", "per_family")},
            "external_source": str(measured.relative_to(REPO_ROOT)) if ext else None}


def stage_provenance(cfg: MainJobConfig, out: Path) -> dict:
    """Verify a signed corpus fake, a re-encoded copy (manifest stripped) and a tampered copy."""
    import pandas as pd

    from forge.data import read_frames, write_video
    from provenance.api import verify_file

    corpus = out / "corpus"
    manifest = pd.read_parquet(corpus / "manifest.parquet")
    fakes = manifest[(manifest.label == "fake") & (manifest.compression == "raw") & manifest.watermarked]
    if "framing" in fakes.columns and (fakes.framing == "full").any():
        fakes = fakes[fakes.framing == "full"]  # the watermark needs more pixels than a 64 px crop has
    if fakes.empty:
        raise FaceforgeError("the corpus has no watermarked raw fake to verify")
    signed = corpus / fakes.iloc[0]["path"]
    work = out / "provenance"
    work.mkdir(parents=True, exist_ok=True)
    signed_copy = work / "signed.mp4"
    shutil.copyfile(signed, signed_copy)
    frames = read_frames(signed_copy)  # (N, H, W, 3)
    stripped = work / "reencoded.mp4"   # a re-encode drops the C2PA manifest; the watermark stays
    write_video(stripped, frames, fps=float(fakes.iloc[0]["fps"] or 25), crf=23)
    tampered = work / "tampered.mp4"
    data = bytearray(signed_copy.read_bytes())
    data[_media_byte(data)] ^= 0xFF
    tampered.write_bytes(bytes(data))
    store = corpus / "provenance.sqlite"
    anchors = _corpus_trust_anchor(corpus)
    verdicts = {}
    for name, path in (("signed", signed_copy), ("reencoded", stripped), ("tampered", tampered)):
        v = verify_file(path, trust_anchors=anchors, store=store)
        verdicts[name] = {"file": str(path), **_verdict_summary(v)}
    return {"verdicts": verdicts, "trust_anchor": str(anchors) if anchors else None}


def _media_byte(data: bytearray) -> int:
    """An offset inside the MP4's media data (mdat payload): flipping it breaks the hard binding."""
    i = data.find(b"mdat")
    if i < 0:
        return len(data) // 2
    return min(len(data) - 1, i + 64)


def _corpus_trust_anchor(corpus: Path) -> Path | None:
    from provenance.keys import CA_CERT

    ca = corpus / "keys" / CA_CERT
    return ca if ca.exists() else None


def _verdict_summary(v: dict) -> dict:
    keep = ("verdict", "reason", "watermark", "validation", "warnings")
    return {k: v[k] for k in keep if k in v}


# ---------------------------------------------------------------- the job
def run_main_job(out: str | Path, cfg: MainJobConfig = MainJobConfig(), progress=print) -> dict:
    """Run every stage (resuming finished ones), then write the report. Returns the stage results."""
    from dashboard.mainreport import build_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out, recursive=True)      # temps a killed run left in any stage folder
    save_config(cfg, out / "mainjob.yaml")
    r = StageRunner(out, progress)
    r.run("prepare", lambda: stage_prepare(cfg, out))
    fit = r.run("fit", lambda: stage_fit(cfg, out))
    r.run("animate", lambda: stage_animate(cfg, out, fit))
    r.run("eval", lambda: stage_eval(cfg, out))
    r.run("corpus", lambda: stage_corpus(cfg, out))
    r.run("detect", lambda: stage_detect(cfg, out))
    r.run("provenance", lambda: stage_provenance(cfg, out))
    md, html = build_report(out, r.results, cfg)
    progress(f"report: {html}  (and {md.name})")
    progress(f"open the dashboard: faceforge dashboard --corpus {out / 'corpus'} --runs {out / 'detect'}")
    return r.results


def config_dict(cfg: MainJobConfig) -> dict:
    return dataclasses.asdict(cfg)
