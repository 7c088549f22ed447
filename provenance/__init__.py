"""faceforge.provenance — C2PA manifests, an invisible watermark, and verification of any file."""
