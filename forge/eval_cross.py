"""Cross-reenactment metrics (a source face driven by another person): identity kept (CSIM to the
source), identity leaked (CSIM to the driver), expression transfer (mouth/eye opening of the output vs
the driver's) and face-shape error (the output's aligned jaw/nose/eye-corner points vs the source's).
The protocol that renders the pairs is ``forge.evaluate.evaluate_retarget``.
"""

from __future__ import annotations

import math

import numpy as np

# identity-bearing points (little expression motion): jaw, nose, eye corners
SHAPE_POINTS = np.r_[0:17, 27:36, 36, 39, 42, 45]
EYE_TOP, EYE_BOTTOM = np.array([37, 38, 43, 44]), np.array([41, 40, 47, 46])


def eye_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mean eyelid gap over inter-ocular distance: (..., 68, 2) -> (...)."""
    from forge.retarget import inter_ocular

    gap = np.linalg.norm(landmarks[..., EYE_TOP, :] - landmarks[..., EYE_BOTTOM, :], axis=-1).mean(-1)
    return gap / np.maximum(inter_ocular(landmarks), 1e-6)


def shape_error(found: np.ndarray, reference: np.ndarray) -> float:
    """Face-shape distance: jaw/nose/eye-corner points of ``found`` (68, 2) similarity-aligned onto
    ``reference`` (68, 2), mean point distance / reference inter-ocular distance."""
    from forge.retarget import apply_transform, fit_similarity, inter_ocular

    m = fit_similarity(found[SHAPE_POINTS], reference[SHAPE_POINTS])
    aligned = apply_transform(m, found[SHAPE_POINTS])
    return float(np.linalg.norm(aligned - reference[SHAPE_POINTS], axis=-1).mean() / inter_ocular(reference))


def cross_metrics(fake: np.ndarray, source_frame: np.ndarray, source_lm: np.ndarray, driver_frames: np.ndarray,
                  driver_lm: np.ndarray, target_lm: np.ndarray, encoder, detector) -> dict:
    """Metrics of one cross-reenactment: fake (N, S, S, 3) rendered from target_lm (N, 68, 2), source
    (S, S, 3) + (68, 2), driver frames (N, S, S, 3) + landmarks (N, 68, 2)."""
    from forge.metrics import _upsample, cosine
    from forge.retarget import mouth_opening

    d_fake = encoder.describe_batch(fake, target_lm)                   # (N, 128)
    d_src = encoder.describe(source_frame, source_lm)                  # (128,)
    d_drv = encoder.describe_batch(driver_frames, driver_lm)           # (N, 128)
    mouth, eyes, shape, mouth_out, mouth_drv = [], [], [], [], []
    for i, fr in enumerate(fake):
        big, f = _upsample(fr, 200)
        faces = detector.detect(big)
        if not faces:
            continue
        found = np.asarray(faces[0].landmarks, np.float64) / f
        mouth_out.append(mouth_opening(found))
        mouth_drv.append(mouth_opening(driver_lm[i]))
        mouth.append(abs(mouth_out[-1] - mouth_drv[-1]))
        eyes.append(abs(eye_opening(found) - eye_opening(driver_lm[i])))
        shape.append(shape_error(found, source_lm))
    nan = math.nan
    corr = nan
    if len(mouth_out) >= 3 and np.std(mouth_out) > 1e-6 and np.std(mouth_drv) > 1e-6:
        corr = float(np.corrcoef(mouth_out, mouth_drv)[0, 1])
    return {"mouth_corr": corr, "csim_source": float(cosine(d_fake, d_src).mean()),
            "csim_driver": float(cosine(d_fake, d_drv).mean()),
            "mouth_err": float(np.mean(mouth)) if mouth else nan, "eye_err": float(np.mean(eyes)) if eyes else nan,
            "shape_err": float(np.mean(shape)) if shape else nan, "detected": len(mouth) / max(len(fake), 1)}
