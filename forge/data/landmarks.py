"""The landmark detector lives in :mod:`faces.landmarks` (face analysis, beside the identity network);
this module re-exports it so ``forge.data.landmarks`` keeps working. Patch names in ``faces.landmarks``."""

from faces.landmarks import (  # noqa: F401
    BACKENDS, DETECT_SIZE, DLIB_UPSAMPLE_RETRY, FAN_WEIGHTS, MAX_FAN_FACES, N_LANDMARKS, S3FD_WEIGHTS,
    UPSAMPLE_MAX_SIDE, DlibDetector, Face, FaceAlignmentDetector, LandmarkDetector, backend_status,
    dlib_models_dir, face_alignment_weights, get_detector, resolve_backend,
)
