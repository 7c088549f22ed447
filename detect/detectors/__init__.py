"""Detectors, one small class each, registered by name in :mod:`detect.registry`."""
