"""faceforge.forge — the attacker: data preparation, the few-shot talking-head GAN, corpora.

Data flows one way: videos -> ``forge prepare`` (faces, landmarks, cache) ->
``forge train`` / ``fit`` / ``animate`` / ``corpus``.
"""

from core.common import lazy_exports  # stdlib only: keeps `import forge` light

__version__ = "0.1.0"

# Lazy public API (``from forge import warp_render`` imports nothing heavy until used). Functions named
# like their module (retarget, animate, evaluate) are reached as ``forge.<module>.<function>``.
_EXPORTS = {
    "warp_render": "forge.warp",
    "AnimateConfig": "forge.animate",
    "EvalConfig": "forge.evaluate",
    "ssim": "forge.metrics", "psnr": "forge.metrics", "csim": "forge.metrics",
    "IdentityEncoder": "forge.metrics", "landmark_error": "forge.metrics",
    "Talker": "forge.talker", "Person": "forge.talker",
    "ModelConfig": "forge.config", "TrainConfig": "forge.config", "FitConfig": "forge.config",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("forge", _EXPORTS)
