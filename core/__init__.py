"""faceforge.core — the ground layer every package imports: the user-facing error, atomic writes, safe
paths, frozen-dataclass configs, lazy package exports, the read-only prepared-cache reader
(``core.prepared``) and media I/O (``core.media``). Stdlib-only imports at module level (numpy, pandas,
pyarrow, cv2, PyAV and Pillow are imported inside the functions that use them); imports nothing of forge,
detect, provenance or dashboard, so those packages never import each other just for a helper."""
