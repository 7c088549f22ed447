"""A tiny corpus following the manifest contract, built from the embedded real sample videos with
simple manipulations as fakes — for tests, and for benchmarks until a real ``forge corpus`` exists.

Reals: centre crops of real talking-head frames (decoded with PyAV) with a smooth synthetic
landmark track. Fakes (self-reenactment stand-ins, made from another segment of the same video):
- ``fewshot``: the inner face re-rendered at half resolution (up-sampling trace) with a small
  per-frame flicker, landmarks with frame-to-frame jitter;
- ``warp``: the inner face shifted by a per-frame sub-pixel affine wobble, lighter landmark jitter.
This is NOT the paper's generator: results on it only show the pipeline works end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.common import SAMPLE_DIR, FaceforgeError, write_json_atomic, write_parquet_atomic

HELD_OUT = ("d12", "d18", "hdtf_wda_katiehill")   # the sample's generator held-out identities -> test
CRF = {"c23": 23, "c40": 40}
JPEG_QUALITY = 75
CROP_FRACTION = 0.7          # side of the centre crop relative to the shorter frame side
FRAME_STEP = 2               # take every 2nd decoded frame (more motion per frame)
TOY_FPS = 12.5
WATERMARK_AMPLITUDE = 2      # grey levels of the fallback +-pattern watermark


@dataclass(frozen=True)
class ToyCorpusConfig:
    size: int = 32                                  # crop side (px)
    n_frames: int = 8                               # frames per item
    identities: tuple[str, ...] = ()                # video stems; () = all sample videos
    generators: tuple[str, ...] = ("fewshot",)      # from "fewshot", "warp"
    compressions: tuple[str, ...] = ("raw",)        # from "raw", "c23", "c40", "jpeg"
    watermark_twins: bool = False                   # add a watermarked twin of every fake
    seed: int = 0


def template_landmarks(size: int) -> np.ndarray:
    """A rough frontal 68-point face layout ``(68, 2)`` inside a ``size`` crop."""
    c = size / 2.0
    r = size * 0.32
    t = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    jaw = np.stack([c - r * np.cos(t), c + r * 0.2 + r * 0.9 * np.sin(t) * 0.9], 1)
    brow_l = np.stack([np.linspace(c - r * 0.8, c - r * 0.15, 5), np.full(5, c - r * 0.45)], 1)
    brow_r = brow_l * [-1, 1] + [2 * c, 0]
    nose_b = np.stack([np.full(4, c), np.linspace(c - r * 0.3, c + r * 0.1, 4)], 1)
    nose_t = np.stack([np.linspace(c - r * 0.2, c + r * 0.2, 5), np.full(5, c + r * 0.2)], 1)
    a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eye_l = np.stack([c - r * 0.45 + r * 0.18 * np.cos(a), c - r * 0.25 + r * 0.07 * np.sin(a)], 1)
    eye_r = eye_l * [-1, 1] + [2 * c, 0]
    m = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    mouth_o = np.stack([c + r * 0.4 * np.cos(m), c + r * 0.5 + r * 0.15 * np.sin(m)], 1)
    mi = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    mouth_i = np.stack([c + r * 0.25 * np.cos(mi), c + r * 0.5 + r * 0.07 * np.sin(mi)], 1)
    pts = np.concatenate([jaw, brow_l, brow_r, nose_b, nose_t, eye_l, eye_r, mouth_o, mouth_i])
    return pts.astype(np.float32)  # (68, 2)


def smooth_track(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth head/mouth motion ``(n, 68, 2)``."""
    base = template_landmarks(size)
    t = np.arange(n)[:, None]
    phase = rng.uniform(0, 2 * np.pi, 3)
    shift = np.concatenate([0.03 * size * np.sin(2 * np.pi * t / 17 + phase[0]),
                            0.02 * size * np.sin(2 * np.pi * t / 23 + phase[1])], 1)  # (n, 2)
    lm = base[None] + shift[:, None, :]
    mouth = 0.02 * size * (1 + np.sin(2 * np.pi * t / 7 + phase[2]))                   # (n, 1)
    lm[:, 48:68, 1] += mouth * np.sign(lm[:, 48:68, 1] - base[48:68, 1].mean())
    return lm.astype(np.float32)


def _inner_mask(size: int) -> np.ndarray:
    """Soft elliptical face mask ``(S, S, 1)`` in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    d = ((xx - size / 2) / (size * 0.3)) ** 2 + ((yy - size * 0.55) / (size * 0.38)) ** 2
    return np.clip((1.3 - d) / 0.6, 0, 1)[..., None]


def manipulate(frames: np.ndarray, generator: str, rng: np.random.Generator) -> np.ndarray:
    """Make a toy fake ``(N, S, S, 3)`` from real frames."""
    import cv2

    n, s = frames.shape[:2]
    mask = _inner_mask(s)
    out = []
    for f in frames:
        if generator == "fewshot":
            small = cv2.resize(f, (s // 2, s // 2), interpolation=cv2.INTER_AREA)
            alt = cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR).astype(np.float64)
            alt *= 1.0 + rng.normal(0, 0.02)
        elif generator == "warp":
            m = np.float32([[1, 0, rng.normal(0, 0.6)], [0, 1, rng.normal(0, 0.6)]])
            alt = cv2.warpAffine(f, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float64)
        else:
            raise FaceforgeError(f"unknown toy generator {generator!r} (fewshot|warp)")
        out.append(np.clip(mask * alt + (1 - mask) * f, 0, 255).round().astype(np.uint8))
    return np.stack(out)


def toy_watermark(frames: np.ndarray, seed: int) -> np.ndarray:
    """Fallback watermark: a keyed +-``WATERMARK_AMPLITUDE`` pattern (used when provenance is absent)."""
    pattern = np.random.default_rng(seed).choice([-1, 1], size=frames.shape[1:3])[None, ..., None]
    return np.clip(frames.astype(np.int16) + WATERMARK_AMPLITUDE * pattern, 0, 255).astype(np.uint8)


def watermark(frames: np.ndarray, payload: int) -> tuple[np.ndarray, str]:
    """Embed with ``provenance.watermark`` when it is available, else the toy pattern."""
    try:
        from provenance.watermark import embed
        return embed(frames, payload), "provenance"
    except Exception:  # provenance missing or rejecting tiny crops: fall back, and say so in the card
        return toy_watermark(frames, payload & 0xFFFF), "toy"


def _decode(path: Path, n: int, size: int) -> np.ndarray:
    """``2n`` centre-cropped frames ``(2n, S, S, 3)`` (first half -> real, second -> fake source)."""
    from core.media import read_video

    from detect.score import center_crops

    frames = [f.image for f in read_video(path, every=FRAME_STEP, max_frames=2 * n)]
    if len(frames) < 2 * n:
        raise FaceforgeError(f"{path.name} has fewer than {2 * n} frames")
    arr = np.stack(frames)
    h, w = arr.shape[1:3]
    side = int(min(h, w) * CROP_FRACTION)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return center_crops(arr[:, y0:y0 + side, x0:x0 + side], size)


def _splits(ids: list[str]) -> dict[str, str]:
    test = [i for i in ids if i in HELD_OUT] or ids[-max(1, len(ids) // 4):]
    rest = [i for i in ids if i not in test]
    n_val = max(1, len(rest) // 4)
    return {i: ("test" if i in test else "val" if i in rest[-n_val:] else "train") for i in ids}


def _write_item(root: Path, rel: str, frames: np.ndarray, compression: str) -> str:
    from core.common import atomic_path
    from core.media import write_video
    from PIL import Image

    if compression == "jpeg":
        folder = root / rel
        folder.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames):
            with atomic_path(folder / f"{i:05d}.jpg") as tmp:
                Image.fromarray(f).save(tmp, format="JPEG", quality=JPEG_QUALITY)
        return rel
    rel = rel + ".mp4"
    write_video(root / rel, frames, TOY_FPS, crf=CRF.get(compression))
    return rel


def build_toy_corpus(out: str | Path, cfg: ToyCorpusConfig = ToyCorpusConfig()) -> Path:
    """Write ``out/{manifest.parquet, landmarks/, items/, corpus.json, splits.json}``; returns ``out``."""
    import pandas as pd

    out = Path(out)
    videos = sorted((SAMPLE_DIR / "videos").glob("*.mp4"))
    if cfg.identities:
        videos = [v for v in videos if v.stem in cfg.identities]
    if len(videos) < 3:
        raise FaceforgeError("the toy corpus needs at least 3 sample identities")
    split_of = _splits([v.stem for v in videos])
    rng = np.random.default_rng(cfg.seed)
    rows, wm_kind = [], None
    for vid in videos:
        ident = vid.stem
        clip = _decode(vid, cfg.n_frames, cfg.size)
        real, src = clip[:cfg.n_frames], clip[cfg.n_frames:]
        variants = [("real", "real", real, smooth_track(cfg.n_frames, cfg.size, rng), False, None)]
        for gen in cfg.generators:
            fake = manipulate(src, gen, rng)
            jitter = {"fewshot": 0.8, "warp": 0.4}[gen] * cfg.size / 64
            lm = smooth_track(cfg.n_frames, cfg.size, rng) + rng.normal(0, jitter, (cfg.n_frames, 68, 2)).astype(np.float32)
            variants.append((gen, "fake", fake, lm, False, None))
            if cfg.watermark_twins:
                payload = int(rng.integers(0, 2**63))
                marked, wm_kind = watermark(fake, payload)
                variants.append((gen, "fake", marked, lm, True, f"{payload:016x}"))
        for gen, label, frames, lm, wm, payload in variants:
            group = f"{ident}_{gen}" + ("_wm" if wm else "")
            lm_rel = f"landmarks/{group}.npy"
            (out / "landmarks").mkdir(parents=True, exist_ok=True)
            np.save(out / lm_rel, lm.astype(np.float32))
            for comp in cfg.compressions:
                item_id = f"{group}_{comp}"
                rel = _write_item(out, f"items/{comp}/{group}", frames, comp)
                rows.append({
                    "item_id": item_id, "group_id": group, "path": rel, "label": label, "split": split_of[ident],
                    "generator": gen, "generator_version": "toy-1" if label == "fake" else None,
                    "checkpoint_sha256": None, "mode": ("ft" if gen == "fewshot" else None) if label == "fake" else None,
                    "T": (8 if gen == "fewshot" else None) if label == "fake" else None,
                    "reenactment": "self" if label == "fake" else None, "retarget": False,
                    "source_identity": ident, "source_frames": None, "driver_identity": ident if label == "fake" else None,
                    "driver_clip": None, "compression": comp, "watermarked": wm, "resolution": cfg.size,
                    "n_frames": cfg.n_frames, "fps": TOY_FPS, "seed": cfg.seed, "sha256": None,
                    "c2pa_signed": False, "watermark_payload": payload, "provenance_status": "none",
                    "landmarks_path": lm_rel,
                })
    df = pd.DataFrame(rows)
    write_parquet_atomic(out / "manifest.parquet", df)
    write_parquet_atomic(out / "errors.parquet", pd.DataFrame({"source": [], "reason": []}))
    write_json_atomic(out / "splits.json", {s: sorted(i for i, v in split_of.items() if v == s) for s in ("train", "val", "test")})
    write_json_atomic(out / "corpus.json", {"kind": "toy (detect.toy, not the paper's generator)", "config": cfg,
                                            "n_items": len(df), "watermark": wm_kind})
    return out
