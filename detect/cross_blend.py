"""Cross-frame self-blending: pseudo-fakes whose pasted region comes from another frame of the same video.

SBI (:mod:`detect.sbi`) blends a face onto a jittered copy of *itself*: the pasted content always agrees
with the rest of the face. Lip-sync pipelines (Wav2Lip, DINet, video-retalking) paste a generated mouth
into the frame, and reenactment pipelines (LivePortrait) paste back a warped face; both leave content
that disagrees with its surroundings (another mouth shape, another expression), the resampling of a
warp, and a blend boundary. Here the pasted region is taken from a *different frame* of the same real
video (the candidate with the most different expression among a few random draws), aligned to this
frame, then blended with SBI's mask (region hull, elastic deformation, blur, erosion, blend ratio):

    other   = frame j of the same video (j != i), landmarks lm_j
    aligned = similarity(other)   lm_j's eyes + nose fitted onto lm_i's: the mouth keeps j's shape (lip-sync)
            | piecewise(other)    forge.warp's piecewise-affine mesh lm_j -> lm_i: j's texture in i's shape
                                  (reenactment: warping resampling, mismatched teeth / eyes)
    source  = jitter(aligned)     SBI's colour / sharpness / frequency / shift jitter, with P = jitter_p
    mask    = SBI mask over the region hull of lm_i and the aligned lm_j (so it covers both shapes)
    fake    = mask * source + (1 - mask) * frame_i

``cross_blend(image, landmarks, other, other_landmarks, rng) -> (fake, mask)``; the mask is the auxiliary
target, exactly like SBI's. ``cross_blend_frames`` draws the partners for frames of one video.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from core.common import FaceforgeError
from detect.sbi import INNER, SBIConfig, check_face, draw_mask, jitter_source, paste

STABLE = list(range(27, 48))                 # nose bridge + nostrils + both eyes: the similarity fit
MODES = ("similarity", "piecewise")


@dataclass(frozen=True)
class CrossFrameConfig:
    region_p: tuple[float, float, float] = (0.25, 0.25, 0.5)  # P(face), P(inner), P(lower: the lip-sync region)
    piecewise_p: float = 0.5         # P(piecewise-affine warp) else a similarity fit on the eyes + nose
    jitter_p: float = 0.5            # P(SBI's source jitter on the aligned frame); else only content + warp differ
    candidates: int = 3              # partner frames drawn; the one whose expression differs most is used


def expression(landmarks: np.ndarray) -> np.ndarray:
    """Brows, eyes, nose and mouth centred and scaled by the face size: ``(..., 68, 2) -> (..., 51, 2)``."""
    lm = np.asarray(landmarks, np.float32)
    inner = lm[..., INNER, :]                                             # (..., 51, 2)
    span = (lm.max(-2) - lm.min(-2)).max(-1)                              # (...,)
    return (inner - inner.mean(-2, keepdims=True)) / np.maximum(span, 1.0)[..., None, None]


def pick_partner(landmarks: np.ndarray, i: int, rng: np.random.Generator, candidates: int = 3) -> int:
    """Index of another frame of the video (``landmarks (N, 68, 2)``) whose expression differs most from
    frame ``i`` among ``candidates`` random draws; ``i`` itself when the video has one frame."""
    n = len(landmarks)
    if n < 2:
        return int(i)
    draws = rng.integers(0, n - 1, size=max(1, candidates))
    draws = draws + (draws >= i)                                          # never i
    expr = expression(landmarks[draws])                                   # (C, 51, 2)
    dist = np.linalg.norm(expr - expression(landmarks[i])[None], axis=-1).mean(-1)  # (C,)
    return int(draws[int(np.argmax(dist))])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, no reflection) mapping ``src (K, 2)`` onto ``dst (K, 2)``: ``(2, 3)``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d                                         # (K, 2)
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))                        # (2, 2) cross-covariance
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / max((a ** 2).sum(1).mean(), 1e-9))
    t = mu_d - scale * rot @ mu_s
    return np.concatenate([scale * rot, t[:, None]], 1).astype(np.float64)


def align(other: np.ndarray, other_lm: np.ndarray, landmarks: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``other (H, W, 3)`` moved onto this frame's landmarks -> (aligned image, its landmarks (68, 2))."""
    import cv2

    h, w = other.shape[:2]
    if mode == "similarity":
        m = similarity(other_lm[STABLE].astype(np.float64), landmarks[STABLE].astype(np.float64))   # (2, 3)
        out = cv2.warpAffine(other, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return out, (other_lm @ m[:, :2].T + m[:, 2]).astype(np.float32)
    if mode != "piecewise":
        raise FaceforgeError(f"cross-frame mode must be one of {', '.join(MODES)}, got {mode!r}")
    from forge.warp import control_points, triangulate, warp_image

    src = control_points(other_lm, h, w)                                  # (P, 2)
    tgt = control_points(landmarks, h, w)
    return warp_image(other, src, tgt, triangulate(src)), np.asarray(landmarks, np.float32)


def cross_blend(image: np.ndarray, landmarks: np.ndarray, other: np.ndarray, other_landmarks: np.ndarray,
                rng: np.random.Generator | int | None = None, cfg: CrossFrameConfig = CrossFrameConfig(),
                sbi: SBIConfig = SBIConfig()) -> tuple[np.ndarray, np.ndarray]:
    """A region of ``other`` (another frame of the same video, ``(H, W, 3) uint8`` + ``(68, 2)``) aligned
    and blended into ``image (H, W, 3) uint8`` with ``landmarks (68, 2)``.

    Returns ``(fake (H, W, 3) uint8, mask (H, W) float32 in [0, 1])``; equal to the image where the mask is 0."""
    check_face(image, landmarks)
    check_face(other, other_landmarks)
    if image.shape != other.shape:
        raise FaceforgeError(f"cross_blend needs frames of one size, got {image.shape} and {other.shape}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    landmarks = np.asarray(landmarks, np.float32)
    mode = MODES[int(rng.random() < cfg.piecewise_p)]
    aligned, aligned_lm = align(other, np.asarray(other_landmarks, np.float32), landmarks, mode)
    mask_cfg = dataclasses.replace(sbi, region_p=cfg.region_p)
    mask = draw_mask(image.shape[:2], landmarks, rng, mask_cfg, also=aligned_lm)
    source = jitter_source(aligned, landmarks, rng, sbi) if rng.random() < cfg.jitter_p else aligned
    return paste(image, source, mask), mask


def cross_blend_frames(frames: np.ndarray, landmarks: np.ndarray, idx, rng: np.random.Generator | int | None = None,
                       cfg: CrossFrameConfig = CrossFrameConfig(), sbi: SBIConfig = SBIConfig()):
    """Cross-frame fakes of frames ``idx`` of one video (``frames (N, H, W, 3)``, ``landmarks (N, 68, 2)``),
    each partnered within the video -> fakes ``(len(idx), H, W, 3) uint8``, masks ``(len(idx), H, W) float32``."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    out = []
    for i in np.asarray(idx, np.int64):
        j = pick_partner(landmarks, int(i), rng, cfg.candidates)
        out.append(cross_blend(frames[i], landmarks[i], frames[j], landmarks[j], rng, cfg, sbi))
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])


def partners(frames_of: list[np.ndarray], landmarks_of: list[np.ndarray], vids: np.ndarray, idx: np.ndarray,
             rng: np.random.Generator, cfg: CrossFrameConfig = CrossFrameConfig()) -> tuple[np.ndarray, np.ndarray]:
    """A partner frame for each ``(video vids[k], frame idx[k])`` from per-video ``frames_of[v] (N_v, S, S, 3)``
    and ``landmarks_of[v] (N_v, 68, 2)`` -> images ``(K, S, S, 3)``, landmarks ``(K, 68, 2)``."""
    js = [pick_partner(landmarks_of[v], int(i), rng, cfg.candidates) for v, i in zip(vids, idx)]
    if not js:
        shape = frames_of[0].shape[1:] if frames_of else (0, 0, 3)
        return np.zeros((0, *shape), np.uint8), np.zeros((0, 68, 2), np.float32)
    return (np.stack([frames_of[v][j] for v, j in zip(vids, js)]),
            np.stack([landmarks_of[v][j] for v, j in zip(vids, js)]).astype(np.float32))
