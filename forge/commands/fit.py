"""Fit the generator to a new person from T images (or frames of a video): FF (embed only) or FT
(fine-tune G and D on the T frames, the paper's few-shot variant).

  faceforge forge fit --images a.jpg b.jpg --mode ft --out person.pt
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", default=None, help="talker export (default: the shipped forge/weights/talker128.pt)")
    p.add_argument("--images", nargs="+", required=True, help="images (or videos) of one person")
    p.add_argument("--frames", type=int, default=None, help="T: use this many frames, evenly spaced (default: all)")
    p.add_argument("--mode", choices=("ff", "ft"), default="ff")
    p.add_argument("--steps", type=int, default=None, help="FT steps (default: FitConfig.ft_steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", help="landmark backend (auto, dlib, face-alignment)")
    p.add_argument("--out", required=True, help="person file (.pt)")


def collect_frames(paths, resolution: int, frames: int | None = None, backend: str = "auto"):
    """Face crops + landmarks of all faces found in ``paths`` -> ((T, S, S, 3) uint8, (T, 68, 2) crop px).
    Any file without a face raises a one-line ``FaceforgeError``."""
    import numpy as np

    from core.common import FaceforgeError
    from forge.data.clip import extract_clip

    xs, ys = [], []
    for path in paths:
        clip = extract_clip(path, resolution=resolution, backend=backend)
        xs.append(clip.frames[clip.valid])
        ys.append(clip.landmarks[clip.valid])
    x, y = np.concatenate(xs), np.concatenate(ys)
    if frames is not None:
        if frames < 1:
            raise FaceforgeError(f"--frames must be >= 1, got {frames}")
        idx = np.linspace(0, len(x) - 1, min(frames, len(x))).round().astype(int)
        x, y = x[idx], y[idx]
    return x, y


def run(args) -> int:
    from forge.talker import Talker

    talker = Talker.load(args.checkpoint)
    x, y = collect_frames(args.images, talker.resolution, args.frames, args.backend)
    person = talker.fit(x, y, mode=args.mode, steps=args.steps, seed=args.seed, progress=True)
    person.info.update(sources=[str(p) for p in args.images])
    person.save(args.out)
    print(f"fitted {args.mode.upper()} person from T={len(x)} frames with {talker.version} -> {args.out}")
    return 0
