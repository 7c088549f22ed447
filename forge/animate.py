"""Reenact a photo, a painting or a fitted person from a driver video.

source (image, short video, or a fitted ``person.pt``) + driver video -> head crops of both (``forge.data``)
-> driver landmarks, optionally retargeted to the source's proportions (``forge.retarget``) -> landmark
images -> a generator: the few-shot GAN (``forge.talker``) or the piecewise-affine warp (``forge.warp``)
-> an MP4 of the S x S output (+ optionally a side-by-side MP4: driver | landmarks | output) and a JSON
report next to it. Driver frames without a face get landmarks interpolated from their neighbours (held at
the ends) by ``forge.data.extract_clip``; they are rendered and listed in the report.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, get_logger, require_file, write_json_atomic

log = get_logger("animate")

GENERATORS = ("fewshot", "warp")
MODES = ("ff", "ft")
WARP_RESOLUTION = 256            # default crop size for the warp generator (resolution-free)
PERSON_SUFFIXES = (".pt", ".pth")
SOURCE_SCAN = 8                  # a video source: its T frames are spread over its first T * SOURCE_SCAN frames


@dataclass(frozen=True)
class AnimateConfig:
    generator: str = "fewshot"       # "fewshot" (the paper's GAN, forge.talker) | "warp" (classical baseline)
    retarget: bool = True            # driver motion on the source's proportions (ours); False = the paper's way
    reference: str = "neutral"       # driver reference frame for retargeting: "neutral" | "first"
    expression: str = "absolute"     # retargeting: add the driver's expression change ("relative") or
                                     # copy its brow/eye/mouth shapes ("absolute")
    mode: str = "ff"                 # few-shot fitting: "ff" (embed only) | "ft" (fine-tune)
    steps: int | None = None         # FT steps (None: the talker's FitConfig default)
    seed: int = 0
    resolution: int = 0              # crop size; 0: the talker's (fewshot) or WARP_RESOLUTION (warp)
    source_frames: int = 8           # T frames taken when the source is a video
    max_frames: int | None = None    # driver frames to use (None: all)
    every: int = 1                   # take every n-th driver frame
    backend: str = "auto"            # landmark detector backend (forge.data.get_detector)
    side_by_side: bool = False       # also write <out stem>_sbs.mp4: driver | landmarks | output
    crf: int | None = 18             # H.264 quality of the outputs (None: lossless)

    def __post_init__(self):
        if self.generator not in GENERATORS:
            raise FaceforgeError(f"unknown generator {self.generator!r}; choose {', '.join(GENERATORS)}")
        if self.mode not in MODES:
            raise FaceforgeError(f"unknown fitting mode {self.mode!r}; choose ff or ft")
        if self.reference not in ("neutral", "first"):
            raise FaceforgeError(f"unknown retarget reference {self.reference!r}; choose neutral or first")
        if self.expression not in ("relative", "absolute"):
            raise FaceforgeError(f"unknown expression mode {self.expression!r}; choose relative or absolute")
        if self.source_frames < 1 or self.every < 1:
            raise FaceforgeError("source_frames and every must be >= 1")


@dataclass(frozen=True)
class Source:
    frames: np.ndarray | None        # (T, S, S, 3) uint8 crops (None for a fitted person without frames)
    landmarks: np.ndarray | None     # (T, 68, 2) crop pixels
    person: object | None = None     # a fitted forge.talker.Person
    kind: str = "image"              # "image" | "video" | "person"
    path: str = ""


def is_person_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PERSON_SUFFIXES


def load_source(path: str | Path, cfg: AnimateConfig, resolution: int, detector=None) -> Source:
    """The source face: crops + landmarks of an image/video, or a fitted person file."""
    from forge.data import extract_clip

    path = require_file(path, "source")
    if is_person_file(path):
        if cfg.generator != "fewshot":
            raise FaceforgeError("a fitted person file only works with --generator fewshot; give the warp "
                                 "generator a source image")
        from forge.talker import Person

        person = Person.load(path)
        lm = getattr(person, "landmarks", None)
        if lm is None:                                                 # `forge fit` may keep them in info
            lm = (getattr(person, "info", None) or {}).get("source_landmarks")
        return Source(frames=None, landmarks=None if lm is None else np.asarray(lm, np.float32).reshape(-1, 68, 2),
                      person=person, kind="person", path=str(path))
    try:
        clip = extract_clip(path, resolution=resolution, backend=cfg.backend,
                            max_frames=cfg.source_frames * SOURCE_SCAN, detector=detector)
    except FaceforgeError as e:
        raise FaceforgeError(f"source {path.name}: {e}") from None
    ok = np.flatnonzero(clip.valid)
    take = ok[np.linspace(0, len(ok) - 1, min(cfg.source_frames, len(ok))).round().astype(int)]
    return Source(frames=clip.frames[take], landmarks=clip.landmarks[take],
                  kind="image" if len(clip) == 1 else "video", path=str(path))


def target_landmarks(driver_landmarks: np.ndarray, source_landmarks: np.ndarray | None, retarget: bool,
                     reference: str = "neutral", expression: str = "absolute") -> tuple[np.ndarray, bool]:
    """(N, 68, 2) landmarks to render and whether they were retargeted."""
    if not retarget or source_landmarks is None:
        return np.asarray(driver_landmarks, np.float32), False
    from forge.retarget import retarget as retarget_fn

    return retarget_fn(driver_landmarks, source_landmarks, driver_reference=reference, expression=expression), True


def render_warp(source: Source, landmarks: np.ndarray) -> np.ndarray:
    """Warp baseline: each target pose from the source frame whose landmarks are closest to it
    (T = 1: the one image). (N, 68, 2) -> (N, S, S, 3)."""
    from forge.guide import nearest_sources
    from forge.warp import warp_render

    if source.frames is None:
        raise FaceforgeError("the warp generator needs source frames")
    pick = nearest_sources(source.landmarks, landmarks)                # (N,)
    out = np.empty((len(landmarks),) + source.frames.shape[1:], np.uint8)
    for t in np.unique(pick):
        sel = np.flatnonzero(pick == t)
        out[sel] = warp_render(source.frames[t], source.landmarks[t], landmarks[sel])
    return out


def fit_person(talker, source: Source, cfg: AnimateConfig):
    """The fitted person: loaded, or fitted now on the source frames (FF or FT)."""
    if source.person is not None:
        return source.person
    return talker.fit(source.frames, source.landmarks, mode=cfg.mode, steps=cfg.steps, seed=cfg.seed)


def load_talker(checkpoint: str | Path | None):
    try:
        from forge.talker import Talker
    except ModuleNotFoundError as e:
        raise FaceforgeError(f"the few-shot generator is not available in this checkout ({e}); "
                             "use --generator warp") from None
    return Talker.load(checkpoint)


def side_by_side(*clips: np.ndarray) -> np.ndarray:
    """Concatenate same-length (N, S, S, 3) clips horizontally -> (N, S, k*S, 3)."""
    return np.concatenate(clips, axis=2)


def render(cfg: AnimateConfig, src: Source, landmarks: np.ndarray, talker=None) -> tuple[np.ndarray, float]:
    """Frames (N, S, S, 3) for target landmarks (N, 68, 2) with the configured generator, and the
    seconds spent fitting (0 for the warp)."""
    if cfg.generator == "warp":
        return render_warp(src, landmarks), 0.0
    t0 = time.perf_counter()
    person = fit_person(talker, src, cfg)
    fit_seconds = time.perf_counter() - t0
    return talker.render(person, landmarks), fit_seconds


def animate(source: str | Path, driver: str | Path, out: str | Path, cfg: AnimateConfig = AnimateConfig(), *,
            checkpoint: str | Path | None = None, talker=None, detector=None,
            key_dir: str | Path | None = None, store: str | Path | None = None) -> dict:
    """Reenact ``source`` with the motion of ``driver``; writes ``out`` (MP4) + ``<out>.json``; returns
    the report dict (also with ``sbs_path`` when ``cfg.side_by_side``).

    With ``key_dir`` (a provenance identity; created there when missing) the render is watermarked and
    C2PA-signed (``report["provenance"]``) and recorded in ``store``: every render says what it is."""
    from forge.data import extract_clip, write_video
    from forge.data.rasterize import draw_landmarks_batch

    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise FaceforgeError(f"output must be an .mp4 file: {out}")
    driver = require_file(driver, "driver")
    t0 = time.perf_counter()
    if cfg.generator == "fewshot" and talker is None:
        talker = load_talker(checkpoint)
    size = talker.resolution if cfg.generator == "fewshot" else (cfg.resolution or WARP_RESOLUTION)
    if cfg.generator == "fewshot" and cfg.resolution and cfg.resolution != size:
        raise FaceforgeError(f"the checkpoint renders {size} px; --resolution {cfg.resolution} does not match")

    src = load_source(source, cfg, size, detector)
    try:
        clip = extract_clip(driver, resolution=size, backend=cfg.backend, every=cfg.every,
                            max_frames=cfg.max_frames, detector=detector)
    except FaceforgeError as e:
        raise FaceforgeError(f"driver {driver.name}: {e}") from None
    missing = np.flatnonzero(~clip.valid)
    if len(missing):
        log.warning("driver %s: no face in %d of %d frames; their landmarks are interpolated from neighbours",
                    driver.name, len(missing), len(clip))

    src_lm = None if src.landmarks is None else src.landmarks[0]
    lms, retargeted = target_landmarks(clip.landmarks, src_lm, cfg.retarget, cfg.reference,
                                       cfg.expression)   # (N, 68, 2)
    t_fit = time.perf_counter()
    frames, fit_seconds = render(cfg, src, lms, talker)                # (N, S, S, 3)
    t_done = time.perf_counter()
    t_render = t_fit + fit_seconds

    fps = float(clip.fps) / cfg.every
    write_video(out, frames, fps=fps, crf=cfg.crf)
    report = {
        "out": str(out), "source": src.path, "source_kind": src.kind, "driver": str(driver),
        "config": dataclasses.asdict(cfg), "generator": cfg.generator, "resolution": size,
        "n_frames": int(len(frames)), "fps": fps, "landmark_backend": clip.backend,
        "retargeted": retargeted,
        "retarget_note": None if retargeted == cfg.retarget else "the person file holds no source landmarks",
        "driver_missing_frames": [int(clip.frame_index[i]) for i in missing],
        "driver_missing_note": "no face found; landmarks interpolated from neighbouring frames (held at the ends)",
        "source_frames": 0 if src.frames is None else int(len(src.frames)),
        "seconds": {"prepare": round(t_fit - t0, 3), "fit": round(t_render - t_fit, 3),
                    "render": round(t_done - t_render, 3)},
        "render_fps": round(len(frames) / max(t_done - t_render, 1e-9), 2),
    }
    if talker is not None:
        report.update(checkpoint_sha256=getattr(talker, "checkpoint_sha256", None),
                      generator_version=getattr(talker, "version", None))
    if key_dir is not None:
        report["provenance"] = sign_render(out, report, source, driver, key_dir, store, crf=cfg.crf)
    if cfg.side_by_side:
        sbs = out.with_name(out.stem + "_sbs.mp4")
        write_video(sbs, side_by_side(clip.frames, draw_landmarks_batch(lms, size), frames), fps=fps, crf=cfg.crf)
        report["sbs_path"] = str(sbs)
    write_json_atomic(out.with_suffix(".json"), report)
    return report


def sign_render(out: Path, report: dict, source, driver, key_dir, store, crf: int | None) -> dict:
    """Watermark every frame of ``out`` with a fresh payload, then C2PA-sign it in place (created +
    watermarked, the generation parameters, source and driver as ingredients)."""
    import tempfile

    from provenance.api import new_payload, sign_file, watermark_file
    from provenance.keys import ensure_identity

    identity = ensure_identity(key_dir)
    payload = new_payload(store)        # with a store: its 32-bit short id (what a 128 px render carries) is new
    generation = {k: report.get(k) for k in ("generator", "generator_version", "checkpoint_sha256",
                                              "resolution", "n_frames", "retargeted")}
    generation.update(mode=report["config"]["mode"], seed=report["config"]["seed"],
                      source_id=Path(str(source)).name, driver_id=Path(str(driver)).name)
    if is_person_file(source):  # a fitted person is no media ingredient: name it in the parameters
        generation["person_file"] = Path(str(source)).name
    with tempfile.TemporaryDirectory(prefix=".ff-anim-", dir=out.parent) as tmp:
        marked = Path(tmp) / out.name
        wm = watermark_file(out, marked, payload, crf=crf)
        signed = sign_file(marked, out, identity=identity, generation=generation,
                           ingredients=[str(p) for p in (source, driver) if not is_person_file(p)],
                           actions=("created", "watermarked"),
                           payload=payload, store=store)
    return {"signed": True, "payload": signed["payload"], "manifest_label": signed["manifest_label"],
            "psnr_db": wm["psnr_db"], "key_dir": str(identity.key_dir), "store": str(store) if store else None}
