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

    def clip(self, n: int) -> slice:
        return slice(0, n)

    def reference_indices(self, n: int, T: int) -> np.ndarray:
        """T rows spread evenly over the frames after the clip: (T,) int."""
        available = len(self.frames) - n
        if available < T:
            raise FaceforgeError(f"too few frames for T={T}: {available} reference frames after the "
                                 f"{n}-frame clip in {self.source_id}")
        return n + np.round(np.linspace(0, available - 1, T)).astype(int)

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


@dataclass
class Render:
    """What one job produced, before provenance and compression."""

    frames: np.ndarray          # (N, S, S, 3) uint8
    landmarks: np.ndarray       # (N, 68, 2) float32: the landmarks the frames show (targets)
    source_frames: np.ndarray   # (T,) source-video frame indices used to fit ((0,) for reals)
    driver_frames: np.ndarray   # (N,) driver-video frame indices
    fps: float


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
            if self._talker.resolution != self.cfg.resolution:
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

    def person(self, job: Job, frames: np.ndarray, landmark_images: np.ndarray):
        if self._person_key != job.fit_key:
            from forge.corpus.plan import job_seed

            # seeded by the fit key, not the job: a resumed run fits the same person
            self._person = self.talker.fit(frames, landmark_images, mode=job.mode, steps=job.steps,
                                           seed=job_seed(self.cfg.seed, job.fit_key))
            self._person_key = job.fit_key
            self.n_fits += 1
        return self._person


def draw_all(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(N, 68, 2) -> landmark images (N, size, size, 3) uint8."""
    from forge.data.rasterize import draw_landmarks

    return np.stack([draw_landmarks(lm, size) for lm in landmarks])


def target_landmarks(job: Job, src: SourceClip, drv: SourceClip, n: int, ref0: int) -> np.ndarray:
    """The landmarks the fake must show: (N, 68, 2)."""
    if job.reenactment == "self":
        return src.landmarks[src.clip(n)].copy()
    drv_lm = drv.landmarks[drv.clip(n)]
    if job.retarget:
        from forge.retarget import retarget

        return np.asarray(retarget(drv_lm, src.landmarks[ref0]), dtype=np.float32)
    return drv_lm.copy()


def render_job(job: Job, src: SourceClip, drv: SourceClip, cfg: CorpusConfig, models: Renderers) -> Render:
    n = cfg.clip_frames
    if job.label == "real":
        sl = src.clip(n)
        return Render(src.frames[sl].copy(), src.landmarks[sl].copy(), np.zeros(0, int),
                      src.frame_index[sl].copy(), src.fps)
    refs = src.reference_indices(n, job.T)                   # (T,)
    target = target_landmarks(job, src, drv, n, int(refs[0]))  # (N, 68, 2)
    if job.generator == "warp":
        from forge.warp import warp_render

        frames = warp_render(src.frames[refs[0]], src.landmarks[refs[0]], target)
    elif job.generator == "fewshot":
        person = models.person(job, src.frames[refs], draw_all(src.landmarks[refs], cfg.resolution))
        frames = models.talker.render(person, draw_all(target, cfg.resolution), batch_size=cfg.batch_size)
    else:
        raise FaceforgeError(f"unknown generator {job.generator!r}")
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.shape != (n, cfg.resolution, cfg.resolution, 3):
        raise FaceforgeError(f"{job.generator} returned frames of shape {frames.shape}")
    drv_sl = drv.clip(n)
    return Render(frames, target.astype(np.float32), src.frame_index[refs].copy(),
                  drv.frame_index[drv_sl].copy(), drv.fps)


# ---------------------------------------------------------------- full-frame paste-back
def read_source_frames(path: str, indices: np.ndarray) -> dict[int, np.ndarray]:
    """Full frames ``indices`` of a video -> {index: (H, W, 3) uint8}."""
    from forge.data.media import read_video

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
