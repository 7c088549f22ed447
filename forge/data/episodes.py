"""Meta-learning episodes: K frames + 1 target frame of one video, read from a ``forge prepare`` cache.

Works with anything that has the ``forge.data.cache.PreparedCache`` interface (``resolution``,
``videos`` DataFrame with ``video_id, identity, status``, ``load(video_id)``, ``landmark_images(video_id)``).
Prepared clips are small (64-128 px), so all training videos are held in memory as uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from core.common import FaceforgeError


@dataclass
class Episode:
    video: torch.Tensor      # (B,) long, index into the training videos (D's W columns)
    x_src: torch.Tensor      # (B, K, 3, S, S) frames in [-1, 1]
    y_src: torch.Tensor      # (B, K, 3, S, S) landmark images in [-1, 1]
    x_tgt: torch.Tensor      # (B, 3, S, S)
    y_tgt: torch.Tensor      # (B, 3, S, S)
    guide: torch.Tensor | None = None  # (B, 4, S, S) warp guide of the target (warp-guided G), else None
    p_tgt: torch.Tensor | None = None  # (B, 68, 2) target landmark coordinates (face-net losses)

    def to(self, device) -> "Episode":
        return Episode(*(t.to(device, non_blocking=True) if t is not None else None for t in
                         (self.video, self.x_src, self.y_src, self.x_tgt, self.y_tgt, self.guide, self.p_tgt)))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1)
    return t.movedim(-1, -3)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3)."""
    t = ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return t.movedim(-3, -1).cpu().numpy()


class EpisodeSampler:
    """Draws batches of episodes from the training videos of a cache with its own ``np.random.Generator``
    (whose state goes into checkpoints, so a resumed run draws the same episodes)."""

    def __init__(self, cache, k_shot: int, holdout=(), seed: int = 0, rank: int = 0, with_guide: bool = False,
                 guide_sources: int = 1, guide_tau: float = 0.5, guide_single_p: float = 0.0):
        self.k_shot, self.with_guide = k_shot, with_guide
        self.guide_sources, self.guide_tau, self.guide_single_p = guide_sources, guide_tau, guide_single_p
        self.resolution = int(cache.resolution)
        videos = cache.videos
        ok = videos[videos["status"] == "ok"] if "status" in videos else videos
        held = set(holdout)
        keep = ok[~ok["identity"].isin(held)]
        self.video_ids: list[str] = []
        self.identities: list[str] = []
        self.frames: list[np.ndarray] = []     # each (N, S, S, 3) uint8
        self.landmarks: list[np.ndarray] = []  # each (N, S, S, 3) uint8 landmark images
        self.points: list[np.ndarray] = []     # each (N, 68, 2) landmark coordinates (for the warp guide)
        self.skipped: dict[str, str] = {}
        for vid, ident in zip(keep["video_id"], keep["identity"]):
            frames, points = cache.load(vid)
            limg = cache.landmark_images(vid)
            if len(frames) < k_shot + 1:
                self.skipped[vid] = f"{len(frames)} frames < K + 1 = {k_shot + 1}"
                continue
            self.video_ids.append(vid)
            self.identities.append(ident)
            self.frames.append(frames)
            self.landmarks.append(limg)
            self.points.append(np.asarray(points, np.float32))
        if not self.video_ids:
            raise FaceforgeError(f"no training video with >= {k_shot + 1} frames in the cache "
                                 f"(held out: {sorted(held)}; skipped: {self.skipped})")
        self.rng = np.random.default_rng([seed, rank])

    def __len__(self) -> int:
        return len(self.video_ids)

    @cached_property
    def neutral_frames(self) -> list[int]:
        """Per video, the index of its most neutral (closed-mouth) frame, the retargeting reference."""
        from forge.retarget import neutral_frame

        return [neutral_frame(p) for p in self.points]

    def sample(self, batch_size: int) -> Episode:
        vids = self.rng.integers(0, len(self), size=batch_size)
        xs, ys, xt, yt, guides, pt = [], [], [], [], [], []
        for v in vids:
            n = len(self.frames[v])
            idx = self.rng.choice(n, size=self.k_shot + 1, replace=False)  # K sources + 1 target
            xs.append(self.frames[v][idx[:-1]])
            ys.append(self.landmarks[v][idx[:-1]])
            xt.append(self.frames[v][idx[-1]])
            yt.append(self.landmarks[v][idx[-1]])
            pt.append(self.points[v][idx[-1]])
            if self.with_guide:
                guides.append(self._guide(v, idx))
        return Episode(torch.from_numpy(vids).long(), to_tensor(np.stack(xs)), to_tensor(np.stack(ys)),
                       to_tensor(np.stack(xt)), to_tensor(np.stack(yt)),
                       torch.cat(guides) if guides else None, torch.from_numpy(np.stack(pt)))  # (B, 4, S, S), (B, 68, 2)

    def _guide(self, v: int, idx: np.ndarray) -> torch.Tensor:
        """The target idx[-1] warped from the source frames idx[:-1] -> (1, 4, S, S)."""
        return self.guide_for(v, idx[:-1], self.points[v][idx[-1:]])

    def guide_for(self, v: int, src: np.ndarray, target_points: np.ndarray) -> torch.Tensor:
        """target_points (1, 68, 2) warped from the nearest of video v's frames ``src`` -> (1, 4, S, S); with
        probability guide_single_p from one random frame of ``src`` instead (the T = 1 regime)."""
        from forge.guide import guide_tensor, warp_guide

        pts = self.points[v]
        if self.guide_single_p > 0 and self.rng.random() < self.guide_single_p:
            src = src[self.rng.integers(len(src), size=1)]
        return guide_tensor(*warp_guide(self.frames[v][src], pts[src], target_points, k=self.guide_sources,
                                        tau=self.guide_tau))

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


class ArrayCache:
    """An in-memory stand-in with the ``PreparedCache`` interface (tests, notebooks)."""

    def __init__(self, clips: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], identities=None):
        import pandas as pd

        # clips: video_id -> (frames (N,S,S,3) uint8, landmarks (N,68,2), landmark_images (N,S,S,3) uint8)
        self._clips = clips
        self.resolution = next(iter(clips.values()))[0].shape[1]
        ids = identities or {v: v for v in clips}
        self.videos = pd.DataFrame({"video_id": list(clips), "identity": [ids[v] for v in clips],
                                    "status": "ok", "n_frames": [len(c[0]) for c in clips.values()]})

    def load(self, video_id: str):
        frames, lms, _ = self._clips[video_id]
        return frames, lms

    def landmark_images(self, video_id: str):
        return self._clips[video_id][2]
