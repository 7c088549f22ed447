"""Signing and verification speed (ms per file) for JPEG, PNG and MP4, against plain baselines.

    python -m benchmarks.provenance_speed [--repeats 8]

Per format (256 px sample frame; MP4: 25 frames, H.264 CRF 18):
  sign:   copy (file copy, the floor) | c2pa_sign (c2pa_io.sign only) | sign_file (+ read-back check,
          pHash and store record: what the corpus pays per file)
  verify: c2pa_read (c2pa_io.read only) | verify_no_wm (verdict without the watermark) |
          verify_file (full verdict with watermark decoding)
plus the manifest's size overhead. The machine's load average is recorded: timings are wall-clock
on a shared 2-core machine.

Writes benchmarks/results/provenance_speed.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VIDEO = HERE.parent / "data" / "sample" / "videos" / "d0.mp4"
GEN = {"model": "fewshot", "checkpoint_sha256": "0" * 64, "mode": "ff", "T": 8, "source_id": "s",
       "driver_id": "d", "seed": 0}


def _square(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w, _ = img.shape
    s = min(h, w)
    return cv2.resize(img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s], (size, size),
                      interpolation=cv2.INTER_AREA)


def make_media(d: Path, payload: int) -> dict[str, Path]:
    from PIL import Image

    from core.media import read_video, write_video
    from provenance import watermark

    frames = np.stack([_square(f.image, 256) for f in read_video(VIDEO, max_frames=25)])
    marked = watermark.embed(frames, payload)
    Image.fromarray(marked[0]).save(d / "m.jpg", quality=92)
    Image.fromarray(marked[0]).save(d / "m.png")
    write_video(d / "m.mp4", marked, fps=25, crf=18)
    return {"jpeg": d / "m.jpg", "png": d / "m.png", "mp4": d / "m.mp4"}


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times)), times


def main(argv: list[str] | None = None) -> int:
    from core.common import write_json_atomic
    from provenance import api, c2pa_io, keys
    from provenance.store import Store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args(argv)
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ident = keys.init_identity(d / "keys")
        payload = api.new_payload()
        files = make_media(d, payload)
        store = Store(d / "prov.sqlite")
        manifest = api.build_manifest("x", GEN, ("created", "watermarked"), payload, has_parent=False)
        for fmt, src in files.items():
            ext = src.suffix
            n = args.repeats
            copy_ms, _ = timed(lambda i: shutil.copyfile(src, d / f"copy{i}{ext}"), n)
            c2pa_ms, _ = timed(lambda i: c2pa_io.sign(src, d / f"raw{i}{ext}", manifest, ident.signer), n)
            full_ms, _ = timed(lambda i: api.sign_file(src, d / f"s{i}{ext}", identity=ident, generation=GEN,
                                                         actions=("created", "watermarked"), payload=payload,
                                                         store=store), n)
            signed = d / f"s0{ext}"
            read_ms, _ = timed(lambda i: c2pa_io.read(signed, ident.trust_anchor_pem()), n)
            nowm_ms, _ = timed(lambda i: api.verify_file(signed, trust_anchors=ident.ca_cert, store=store,
                                                           decode_watermark=False), n)
            wm_n = max(2, n // 4)
            full_v_ms, _ = timed(lambda i: api.verify_file(signed, trust_anchors=ident.ca_cert, store=store), wm_n)
            verdict = api.verify_file(signed, trust_anchors=ident.ca_cert, store=store)
            rows.append({"format": fmt, "bytes": src.stat().st_size,
                         "manifest_overhead_bytes": signed.stat().st_size - src.stat().st_size,
                         "sign_ms": {"copy": round(copy_ms, 2), "c2pa_sign": round(c2pa_ms, 2),
                                     "sign_file": round(full_ms, 2)},
                         "verify_ms": {"c2pa_read": round(read_ms, 2), "verify_no_wm": round(nowm_ms, 2),
                                       "verify_file": round(full_v_ms, 2)},
                         "verdict": verdict["verdict"],
                         "watermark_detected": bool((verdict.get("watermark") or {}).get("detected")),
                         "repeats": n, "repeats_with_watermark": wm_n})
        store.close()
    out = {"rows": rows, "load_average_before": load_before, "load_average_after": os.getloadavg(),
           "cpu_count": os.cpu_count(), "note": "median wall-clock ms per file on a shared machine"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / "provenance_speed.json", out)
    for r in rows:
        print(f"{r['format']:>5}: sign {r['sign_ms']}  verify {r['verify_ms']}  +{r['manifest_overhead_bytes']} B  "
              f"{r['verdict']} wm={r['watermark_detected']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
