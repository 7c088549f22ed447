"""faceforge.core — the ground layer every package imports: the user-facing error, atomic writes, safe
paths, frozen-dataclass configs, lazy package exports, and the read-only prepared-cache reader
(``core.prepared``). Stdlib-only imports at module level (``core.prepared`` imports numpy, pandas,
pyarrow and cv2 inside its functions); imports nothing of forge, detect, provenance or dashboard, so
those packages never import each other just for a helper."""
