"""faceforge.core — the ground layer every package imports: the user-facing error, atomic writes, safe
paths, frozen-dataclass configs, lazy package exports. Stdlib only; imports nothing of forge, detect,
provenance or dashboard, so those packages never import each other just for a helper."""
