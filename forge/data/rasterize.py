"""The paper's landmark image: 68 points drawn as coloured polylines, one colour per facial part,
on black, same size as the crop (Zakharov et al. 2019, Sec. 3; the input ``y`` of G and D)."""

from __future__ import annotations

import numpy as np

from core.common import FaceforgeError

# (name, point indices, closed, RGB colour); iBUG-300W 68-point layout, "right" = subject's right.
PARTS: tuple[tuple[str, tuple[int, ...], bool, tuple[int, int, int]], ...] = (
    ("jaw",          tuple(range(0, 17)),        False, (255, 255, 255)),
    ("right_brow",   tuple(range(17, 22)),       False, (255, 128, 0)),
    ("left_brow",    tuple(range(22, 27)),       False, (255, 255, 0)),
    ("nose_bridge",  tuple(range(27, 31)),       False, (0, 0, 255)),
    ("nostrils",     tuple(range(30, 36)),       False, (0, 128, 255)),
    ("right_eye",    tuple(range(36, 42)),       True,  (0, 255, 0)),
    ("left_eye",     tuple(range(42, 48)),       True,  (0, 255, 128)),
    ("outer_lips",   tuple(range(48, 60)),       True,  (255, 0, 0)),
    ("inner_lips",   tuple(range(60, 68)),       True,  (255, 0, 255)),
)
PART_COLOURS = {name: colour for name, _, _, colour in PARTS}
THICKNESS_PER_PX = 1 / 64  # line width grows with the image: 1 px at 64, 2 at 128, 4 at 256
SUBPIXEL_BITS = 4          # cv2 fixed-point shift: points are drawn with 1/16 px precision


def default_thickness(size: int) -> int:
    return max(1, int(round(size * THICKNESS_PER_PX)))


def draw_landmarks(landmarks: np.ndarray, size: int, thickness: int | None = None) -> np.ndarray:
    """``landmarks float (68, 2)`` pixel (x, y) in a ``size`` square -> ``uint8 (size, size, 3)`` RGB."""
    import cv2

    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise FaceforgeError(f"draw_landmarks wants landmarks (68, 2), got {landmarks.shape}")
    if int(size) < 1:
        raise FaceforgeError(f"draw_landmarks wants a positive size, got {size}")
    thickness = default_thickness(size) if thickness is None else int(thickness)
    canvas = np.zeros((int(size), int(size), 3), dtype=np.uint8)                  # (S, S, 3) black
    if not np.isfinite(landmarks).all():
        return canvas
    fixed = np.round(landmarks * (1 << SUBPIXEL_BITS)).astype(np.int32)            # (68, 2) fixed point
    for _, idx, closed, colour in PARTS:
        cv2.polylines(canvas, [fixed[list(idx)].reshape(-1, 1, 2)], closed, colour,
                      thickness=thickness, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return canvas


def draw_landmarks_batch(landmarks: np.ndarray, size: int, thickness: int | None = None) -> np.ndarray:
    """``(N, 68, 2)`` -> ``uint8 (N, size, size, 3)``."""
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3:
        raise FaceforgeError(f"draw_landmarks_batch wants landmarks (N, 68, 2), got {landmarks.shape}")
    out = np.zeros((len(landmarks), int(size), int(size), 3), dtype=np.uint8)
    for i, lm in enumerate(landmarks):
        out[i] = draw_landmarks(lm, size, thickness)
    return out
