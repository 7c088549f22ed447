"""Cross-identity episodes (ours): a training person driven by ANOTHER training person's pose and expression.

Self-reenactment episodes only ever ask G for a pose of the source's own face, so the guide is always a
warp to landmarks with the source's proportions. At test time (a painting, a photo, one person driven by
another) the target landmarks are another face's motion retargeted onto the source, and nothing in
meta-learning has told G to keep the source's identity there. A cross episode takes the K source frames
of video v, a frame of a video u of another identity as the driver, retargets the driver's motion
(relative to u's neutral frame, as ``forge.animate.target_landmarks`` does at test time) onto v's first
source frame, and builds the landmark image and warp guide of that target. It has no ground-truth frame:
the trainer scores the output by the face net's identity distance to the source frames and anchors it to
its guide (``forge.train``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.common import FaceforgeError


@dataclass
class CrossEpisode:
    x_src: torch.Tensor      # (B, K, 3, S, S) source frames in [-1, 1]
    y_src: torch.Tensor      # (B, K, 3, S, S) their landmark images
    p_src: torch.Tensor      # (B, K, 68, 2) their landmark coordinates
    y_tgt: torch.Tensor      # (B, 3, S, S) landmark image of the retargeted driver pose
    p_tgt: torch.Tensor      # (B, 68, 2) its coordinates
    guide: torch.Tensor      # (B, 4, S, S) warp guide of the target from the source frames

    def to(self, device) -> "CrossEpisode":
        return CrossEpisode(*(t.to(device, non_blocking=True) for t in
                              (self.x_src, self.y_src, self.p_src, self.y_tgt, self.p_tgt, self.guide)))


def sample_cross(sampler, batch_size: int) -> CrossEpisode:
    """``batch_size`` cross-identity episodes drawn with the sampler's generator (so a resumed run draws
    the same ones). The sampler must hold at least two identities and build guides."""
    from forge.data.episodes import to_tensor
    from forge.data.rasterize import draw_landmarks
    from forge.retarget import retarget

    if not sampler.with_guide:
        raise FaceforgeError("cross-identity episodes need the warp-guided generator")
    identities = np.asarray(sampler.identities)
    if len(set(identities.tolist())) < 2:
        raise FaceforgeError("cross-identity episodes need at least two training identities")
    neutral, size, rng = sampler.neutral_frames, sampler.resolution, sampler.rng
    xs, ys, ps, yt, pt, guides = [], [], [], [], [], []
    for v in rng.integers(0, len(sampler), size=batch_size):
        others = np.flatnonzero(identities != identities[v])
        u = int(others[rng.integers(len(others))])
        src = rng.choice(len(sampler.frames[v]), size=sampler.k_shot, replace=False)
        j = int(rng.integers(len(sampler.frames[u])))
        pts = sampler.points[v]
        tgt = retarget(sampler.points[u][j:j + 1], pts[src[0]], sampler.points[u][neutral[u]],
                       expression="relative")                            # (1, 68, 2) in v's crop
        tgt = np.clip(tgt, -0.25 * size, 1.25 * size)                    # a wild driver cannot leave the canvas far
        xs.append(sampler.frames[v][src])
        ys.append(sampler.landmarks[v][src])
        ps.append(pts[src])
        yt.append(draw_landmarks(tgt[0], size))
        pt.append(tgt[0])
        guides.append(sampler.guide_for(v, src, tgt))
    return CrossEpisode(to_tensor(np.stack(xs)), to_tensor(np.stack(ys)), torch.from_numpy(np.stack(ps)).float(),
                        to_tensor(np.stack(yt)), torch.from_numpy(np.stack(pt)).float(), torch.cat(guides))


__all__ = ["CrossEpisode", "sample_cross"]
