"""Sign a render and verify any file: the calls the corpus, the dashboard and the CLI use.

One import point over the modules that hold them: :mod:`provenance.sign` (payloads, signing),
:mod:`provenance.verify` (the verdicts, in its docstring), :mod:`provenance.pixels` (reading and
watermarking a file's frames), :mod:`provenance.manifest` (the manifest faceforge signs).
"""

from __future__ import annotations

from .manifest import ACTIONS, build_manifest
from .pixels import MAX_VERIFY_FRAMES, load_frames, watermark_file
from .sign import new_payload, sign_file
from .store import Store
from .verify import VERDICTS, verify_file

__all__ = ["ACTIONS", "MAX_VERIFY_FRAMES", "Store", "VERDICTS", "build_manifest", "load_frames", "new_payload",
           "sign_file", "verify_file", "watermark_file"]
