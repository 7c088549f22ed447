"""Rendering: extract each source once (faces, landmarks, stable crops), then cut real clips and
render fakes with the few-shot GAN (``forge.talker``) or the warp baseline (``forge.warp``),
optionally pasting the face back into the driver's full frame with a feathered boundary.

A source's extracted frames hold the item clip first (``clip_frames``), then the reference frames
used to fit a person (disjoint from the clip, so self-reenactment never sees its own targets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import FaceforgeError, atomic_path, get_logger
from forge.corpus.plan import Job
from forge.corpus.spec import CorpusConfig, Source

log = get_logger("corpus.render")

EXTRA_FRAMES = 8          # read a few more frames than needed, for frames without a face
FEATHER_FRACTION = 0.08   # paste-back boundary blur, as a fraction of the face box size
MASK_ERODE_FRACTION = 0.04    # paste-back mask shrunk inside the landmark hull


@dataclass
class SourceClip:
    """One source video's extracted faces (crop coordinates), frames with a face only."""

    source_id: str
    frames: np.ndarray       # (M, S, S, 3) uint8
    landmarks: np.ndarray    # (M, 68, 2) float32, crop pixels
    frame_index: np.ndarray  # (M,) index of each frame in the source video
    boxes: np.ndarray        # (M, 4) crop square x0, y0, x1, y1 in source pixels
    fps: float
    source_size: tuple[int, int]  # (H, W)

    def clip(self, n: int, k: int = 0) -> slice:
        """Rows of clip ``k`` (clips are disjoint, ``n`` frames each, from the start)."""
        if (k + 1) * n > len(self.frames):
            raise FaceforgeError(f"{self.source_id} has {len(self.frames)} frames: no clip {k} of {n} frames")
        return slice(k * n, (k + 1) * n)

    def reference_indices(self, start: int, T: int) -> np.ndarray:
        """T rows spread evenly over the frames after the clips (from row ``start``): (T,) int."""
        available = len(self.frames) - start
        if available < T:
            raise FaceforgeError(f"too few frames for T={T}: {available} reference frames after the "
                                 f"{start} clip frames of {self.source_id}")
        return start + np.round(np.linspace(0, available - 1, T)).astype(int)

    def save(self, path: Path) -> None:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, frames=self.frames, landmarks=self.landmarks, frame_index=self.frame_index,
                     boxes=self.boxes, fps=np.float64(self.fps), source_size=np.asarray(self.source_size))

    @classmethod
    def load(cls, source_id: str, path: Path) -> "SourceClip":
        with np.load(path) as z:
            return cls(source_id, z["frames"], z["landmarks"], z["frame_index"], z["boxes"],
                       float(z["fps"]), tuple(int(v) for v in z["source_size"]))


def extract_source(src: Source, cfg: CorpusConfig, cache_dir: Path) -> SourceClip:
    """Faces of ``src`` at the spec's resolution (cached in ``cache_dir``); raises FaceforgeError
    ("no face found", "too few frames") for a source that cannot make a single item."""
    path = Path(cache_dir) / f"{src.source_id}.npz"
    if path.exists():
        return SourceClip.load(src.source_id, path)
    if src.cache is not None:
        sc = source_from_cache(src, cfg)
        sc.save(path)
        return sc
    from forge.data.clip import extract_clip

    clip = extract_clip(src.path, resolution=cfg.resolution, backend=cfg.landmark_backend,
                        max_frames=cfg.frames_needed + EXTRA_FRAMES)
    keep = np.asarray(clip.valid, dtype=bool)
    n_ok = int(keep.sum())
    if n_ok < cfg.clip_frames + 1:  # the clip plus at least one reference frame
        raise FaceforgeError(f"too few frames with a face: {n_ok}, need {cfg.clip_frames + 1}")
    sc = SourceClip(src.source_id, clip.frames[keep], np.asarray(clip.landmarks, np.float32)[keep],
                    np.asarray(clip.frame_index)[keep], np.asarray(clip.boxes, np.float32)[keep],
                    float(clip.fps), tuple(int(v) for v in clip.source_size))
    sc.save(path)
    return sc


def source_from_cache(src: Source, cfg: CorpusConfig) -> SourceClip:
    """A cache source's frames with a face (``forge prepare`` output at the spec's resolution);
    its fps is the source's divided by the cache's frame stride."""
    from forge.data.cache import PreparedCache

    cache = PreparedCache(src.cache)
    if cache.resolution != cfg.resolution:
        raise FaceforgeError(f"cache {src.cache} holds {cache.resolution} px crops, the spec asks for "
                             f"{cfg.resolution} px")
    frames, landmarks = cache.load(src.source_id)                        # (M, S, S, 3), (M, 68, 2)
    idx = cache.index[cache.index["video_id"] == src.source_id].sort_values("frame")
    keep = idx["valid"].to_numpy(bool)
    if len(idx) != len(frames):
        raise FaceforgeError(f"cache {src.cache}: index and frames of {src.source_id} differ in length")
    if int(keep.sum()) < cfg.clip_frames + 1:  # the clip plus at least one reference frame
        raise FaceforgeError(f"too few frames with a face: {int(keep.sum())}, need {cfg.clip_frames + 1}")
    row = cache.videos.set_index("video_id").loc[src.source_id]
    boxes = np.stack(idx["crop_box"].to_numpy()).astype(np.float32)     # (M, 4)
    return SourceClip(src.source_id, frames[keep], landmarks[keep].astype(np.float32),
                      idx["frame_index"].to_numpy()[keep], boxes[keep],
                      float(row["fps"]) / max(1, int(cache.config.every)), (int(row["height"]), int(row["width"])))


@dataclass
class Render:
    """What one job produced, before provenance and compression."""

    frames: np.ndarray          # (N, S, S, 3) uint8
    landmarks: np.ndarray       # (N, 68, 2) float32: the landmarks the frames show (targets)
    source_frames: np.ndarray   # (T,) source-video frame indices used to fit ((0,) for reals)
    driver_frames: np.ndarray   # (N,) driver-video frame indices
    fps: float
    render_resolution: int | None = None  # the side the generator drew at (None: the spec's)


class Renderers:
    """Generators loaded once per process; fitted people cached by fit key (one at a time: jobs
    of one fit key are adjacent in the plan)."""

    def __init__(self, cfg: CorpusConfig):
        self.cfg = cfg
        self._talker = None
        self._person_key: str | None = None
        self._person = None
        self._ckpt_sha: str | None = None
        self.n_fits = 0

    @property
    def talker(self):
        if self._talker is None:
            from forge.talker import Talker

            self._talker = Talker.load(self.cfg.checkpoint, device=self.cfg.device)
            if self._talker.resolution != self.cfg.resolution and not self.cfg.talker_resize:
                raise FaceforgeError(f"the Talker checkpoint renders {self._talker.resolution} px but the "
                                     f"spec asks for {self.cfg.resolution} px")
        return self._talker

    @property
    def checkpoint_sha256(self) -> str:
        """The Talker checkpoint's sha256 without loading it (resume compares it with done renders)."""
        if self._ckpt_sha is None:
            from core.common import require_file, sha256_file
            from forge.talker import DEFAULT_CHECKPOINT

            path = self.cfg.checkpoint or DEFAULT_CHECKPOINT
            self._ckpt_sha = sha256_file(require_file(path, "Talker checkpoint"))
        return self._ckpt_sha

    def generator_info(self, generator: str) -> tuple[str, str | None]:
        """(generator_version, checkpoint_sha256) for the manifest."""
        if generator == "fewshot":
            return str(self.talker.version), str(self.talker.checkpoint_sha256)
        if generator == "warp":
            from forge import __version__

            return f"warp-{__version__}", None
        return "real", None

    @property
    def render_resolution(self) -> int:
        """The side the Talker renders at (the spec's, unless ``talker_resize`` resizes its output)."""
        return int(self.talker.resolution) if self.cfg.talker_resize else self.cfg.resolution

    def person(self, job: Job, frames: np.ndarray, landmarks: np.ndarray):
        if self._person_key != job.fit_key:
            from forge.corpus.plan import job_seed

            # seeded by the fit key, not the job: a resumed run fits the same person
            self._person = self.talker.fit(frames, landmarks, mode=job.mode, steps=job.steps,
                                           seed=job_seed(self.cfg.seed, job.fit_key))
            self._person_key = job.fit_key
            self.n_fits += 1
        return self._person


def target_landmarks(job: Job, src: SourceClip, drv: SourceClip, src_clip: slice, drv_clip: slice,
                     ref0: int) -> np.ndarray:
    """The landmarks the fake must show: (N, 68, 2)."""
    if job.reenactment == "self":
        return src.landmarks[src_clip].copy()
    drv_lm = drv.landmarks[drv_clip]
    if job.retarget:
        from forge.retarget import retarget

        return np.asarray(retarget(drv_lm, src.landmarks[ref0]), dtype=np.float32)
    return drv_lm.copy()


def render_fewshot(job: Job, src: SourceClip, refs: np.ndarray, target: np.ndarray, cfg: CorpusConfig,
                   models: Renderers) -> np.ndarray:
    """Fit (cached per fit key) and render at the Talker's side -> (N, S, S, 3) at the spec's side."""
    from forge.evaluate import resize_clip

    r = models.render_resolution
    ref_frames, ref_lm = resize_clip(src.frames[refs], src.landmarks[refs], r)           # (T, r, r, 3)
    person = models.person(job, ref_frames, ref_lm)                                      # (T, 68, 2) coordinates
    frames = models.talker.render(person, target * (r / cfg.resolution),
                                  batch_size=cfg.batch_size)                              # (N, r, r, 3)
    frames = np.asarray(frames, dtype=np.uint8)
    return resize_clip(frames, target, cfg.resolution)[0] if r != cfg.resolution else frames


def driver_clip(job: Job, drv: SourceClip, cfg: CorpusConfig) -> slice:
    """The driver rows a job shows (a real clip: its own; a shorter driver's clips are reused cyclically)."""
    k = job.clip if job.label == "real" else job.clip % cfg.clip_count(len(drv.frames))
    return drv.clip(cfg.clip_frames, k)


def render_job(job: Job, src: SourceClip, drv: SourceClip, cfg: CorpusConfig, models: Renderers) -> Render:
    n = cfg.clip_frames
    sl = src.clip(n, job.clip)
    if job.label == "real":
        return Render(src.frames[sl].copy(), src.landmarks[sl].copy(), np.zeros(0, int),
                      src.frame_index[sl].copy(), src.fps)
    refs = src.reference_indices(cfg.clip_count(len(src.frames)) * n, job.T)   # (T,) after all clips
    drv_sl = driver_clip(job, drv, cfg)
    target = target_landmarks(job, src, drv, sl, drv_sl, int(refs[0]))          # (N, 68, 2)
    if job.generator == "warp":
        from forge.warp import warp_render

        frames = warp_render(src.frames[refs[0]], src.landmarks[refs[0]], target)
    elif job.generator == "fewshot":
        frames = render_fewshot(job, src, refs, target, cfg, models)
    else:
        raise FaceforgeError(f"unknown generator {job.generator!r}")
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.shape != (n, cfg.resolution, cfg.resolution, 3):
        raise FaceforgeError(f"{job.generator} returned frames of shape {frames.shape}")
    return Render(frames, target.astype(np.float32), src.frame_index[refs].copy(),
                  drv.frame_index[drv_sl].copy(), drv.fps,
                  models.render_resolution if job.generator == "fewshot" else None)


# ---------------------------------------------------------------- full-frame paste-back
def read_source_frames(path: str, indices: np.ndarray) -> dict[int, np.ndarray]:
    """Full frames ``indices`` of a video -> {index: (H, W, 3) uint8}."""
    from core.media import read_video

    wanted = set(int(i) for i in indices)
    out: dict[int, np.ndarray] = {}
    for vf in read_video(path, max_frames=max(wanted) + 1):
        if vf.index in wanted:
            out[vf.index] = vf.image
    missing = wanted - set(out)
    if missing:
        raise FaceforgeError(f"could not re-read frames {sorted(missing)[:3]} of {path}")
    return out


def face_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Soft face mask from the landmark hull: (68, 2) crop px -> (size, size) float32 in [0, 1]."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    k = max(1, int(MASK_ERODE_FRACTION * size)) | 1  # keep the blend inside the face (no background)
    mask = cv2.erode(mask, np.ones((k, k), np.uint8))
    blur = max(3, int(FEATHER_FRACTION * size)) | 1
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (blur, blur), 0)


def paste_back(render: Render, fake: bool, boxes: np.ndarray, full: dict[int, np.ndarray],
               out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite each crop into its driver frame (blended boundary) and scale to ``out_size``
    (longest side, even). Returns frames (N, h, w, 3) uint8 and landmarks (N, 68, 2) in those pixels.
    A real clip is the driver frames themselves."""
    import cv2

    n, S = len(render.frames), render.frames.shape[1]
    out_frames, out_lm = [], []
    for i in range(n):
        base = full[int(render.driver_frames[i])]
        H, W = base.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        scale = (x1 - x0) / S
        A = np.array([[scale, 0, x0], [0, scale, y0]], np.float32)   # crop px -> source px
        lm_full = render.landmarks[i] * scale + np.array([x0, y0], np.float32)
        if fake:
            face = cv2.warpAffine(render.frames[i], A, (W, H), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            m = cv2.warpAffine(face_mask(render.landmarks[i], S), A, (W, H))[..., None]
            img = np.clip(m * face + (1 - m) * base.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
        else:
            img = base
        f = out_size / max(H, W)
        w, h = max(2, int(round(W * f / 2)) * 2), max(2, int(round(H * f / 2)) * 2)
        out_frames.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
        out_lm.append(lm_full * np.array([w / W, h / H], np.float32))
    return np.stack(out_frames), np.stack(out_lm).astype(np.float32)
