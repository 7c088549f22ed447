"""faceforge.faces — dlib's face-recognition ResNet ported to torch (offline, from the installed .dat).

``IdentityNet.load(device)`` -> ``net(chips (N, 3, 150, 150) 0..255) -> (N, 128)``, ``net.features``;
``face_descriptors(images, landmarks=None)``, ``chip_descriptors(chips)``; dlib-exact alignment
(``align_face``) and its differentiable twin (``align_faces_torch``); ``identity_loss``, ``perceptual_loss``;
the 68-point landmark detector (``get_detector(backend) -> LandmarkDetector``, ``.detect(image) -> [Face]``).
"""

from core.common import lazy_exports  # stdlib only: keeps `import faces` light

_EXPORTS = {
    "IdentityNet": ".identity", "face_descriptors": ".identity", "chip_descriptors": ".identity",
    "chips_to_tensor": ".identity",
    "DlibFaceResNet": ".resnet", "DESCRIPTOR_DIM": ".resnet", "CHIP_SIZE": ".align",
    "align_face": ".align", "align_faces_torch": ".align", "chip_geometry": ".align",
    "identity_loss": ".losses", "perceptual_loss": ".losses", "descriptor_distance": ".losses",
    "load_state_dict": ".weights", "default_cache_dir": ".weights",
    "get_detector": ".landmarks", "Face": ".landmarks", "LandmarkDetector": ".landmarks",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports("faces", _EXPORTS)
