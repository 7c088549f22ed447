"""faceforge.detect — deepfake detectors trained and scored against faceforge corpora."""
