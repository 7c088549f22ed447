"""Part 1 of ``benchmarks/robustness_fuzz.py``: seeded mutants of signed files through ``verify_file``.

``make_signed`` writes a watermarked, signed JPEG / PNG / MP4 (one store); ``fuzz_verify`` verifies
``provenance.mutants`` of each in a worker process (``Verifier``: restarted after a crash, a hang is a
verify over ``HANG_S``) next to c2pa-python's validation alone (the baseline); ``summarise_verify`` counts
crashes, hangs, verdicts and wrong verdicts per format and mutation kind.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

HANG_S = 120.0            # a verify slower than this is a hang (a typical one takes ~0.1-0.5 s here)
SIZE = 128
FORMATS = ("jpg", "png", "mp4")
AS_VERDICT = {"intact": "trusted", "no_manifest": "none"}   # c2pa-alone classes as verdicts
GEN = {"model": "robustness_fuzz", "seed": 19}


def make_signed(work: Path, seed: int) -> dict:
    """Watermarked, signed 128 px JPEG / PNG / MP4 made from a sample portrait, in one store."""
    from PIL import Image

    from core.common import SAMPLE_DIR
    from core.media import write_video
    from provenance import api, keys, watermark

    work.mkdir(parents=True, exist_ok=True)
    ident = keys.init_identity(work / "keys", force=True)
    img = Image.open(SAMPLE_DIR / "portraits" / "s42.jpg").convert("RGB")
    s = min(img.size)
    face = np.asarray(img.crop((0, 0, s, s)).resize((SIZE, SIZE)))                 # (S, S, 3)
    payload = api.new_payload() if seed < 0 else (seed * 2654435761) & ((1 << 64) - 1) or 1
    marked = watermark.embed(face, payload)
    Image.fromarray(marked).save(work / "u.jpg", quality=92)
    Image.fromarray(marked).save(work / "u.png")
    clip = watermark.embed(np.stack([np.roll(face, 2 * i, axis=1) for i in range(4)]), payload)
    write_video(work / "u.mp4", clip, fps=25, crf=18)
    store = work / "prov.sqlite"
    store.unlink(missing_ok=True)
    files = {}
    for ext in FORMATS:
        files[ext] = api.sign_file(work / f"u.{ext}", work / f"signed.{ext}", identity=ident, generation=GEN,
                                   actions=("created", "watermarked"), payload=payload, store=store)["path"]
    return {"files": files, "ca": str(ident.ca_cert), "store": str(store)}


def _verify_worker(conn, ca: str, store: str) -> None:
    """Worker loop: path -> (verdict | 'error' | 'crash', reason, c2pa-alone class)."""
    import torch

    from core.common import FaceforgeError
    from core.processes import worker_init
    from provenance.api import verify_file

    worker_init()                      # dies with the benchmark
    torch.set_num_threads(1)
    anchors = Path(ca).read_text()
    while True:
        path = conn.recv()
        if path is None:
            return
        try:
            res = verify_file(path, trust_anchors=ca, store=store)
            answer = (res["verdict"], res.get("reason", "")[:200])
        except FaceforgeError as e:
            answer = ("error", str(e)[:200])
        except Exception as e:  # noqa: BLE001 - the benchmark counts these
            answer = ("crash", f"{type(e).__name__}: {str(e)[:200]}")
        conn.send((*answer, _c2pa_alone(path, anchors)))


def _c2pa_alone(path: str, anchors: str) -> str:
    """The baseline: what c2pa-python's validation alone says (what verify relied on before issue 19):
    intact | tampered (c2pa reports a failure or a corrupt manifest) | no_manifest | error."""
    from provenance import c2pa_io

    try:
        report = c2pa_io.read(path, anchors, check_bytes=False)
    except c2pa_io.ManifestCorrupt:
        return "tampered"
    except Exception:  # noqa: BLE001 - not media / c2pa cannot parse it
        return "error"
    if report is None:
        return "no_manifest"
    return "tampered" if report.integrity_failures else "intact"


class Verifier:
    """A worker process that verifies one file at a time; restarted after a crash or a hang."""

    def __init__(self, ca: str, store: str):
        self.ca, self.store, self.proc = ca, store, None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_verify_worker, args=(child, self.ca, self.store), daemon=True)
        self.proc.start()

    def __call__(self, path: Path) -> tuple[str, str, str, float]:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        t0 = time.perf_counter()
        self.conn.send(str(path))
        if not self.conn.poll(HANG_S):
            self.close(kill=True)
            return "hang", f"no answer in {HANG_S:.0f} s", "hang", time.perf_counter() - t0
        try:
            verdict, reason, alone = self.conn.recv()
        except EOFError:                                   # the worker died (segfault, abort)
            self.close(kill=True)
            return "crash", "verify worker died", "crash", time.perf_counter() - t0
        return verdict, reason, alone, time.perf_counter() - t0

    def close(self, kill: bool = False) -> None:
        if self.proc is not None:
            if kill:
                self.proc.kill()
            else:
                self.conn.send(None)
            self.proc.join(10)
            self.proc = None


def fuzz_verify(signed: dict, per_format: int, seed: int, work: Path, log) -> dict:
    from provenance import mutants

    verifier = Verifier(signed["ca"], signed["store"])
    out: dict = {}
    try:
        for f_i, ext in enumerate(FORMATS):
            data = Path(signed["files"][ext]).read_bytes()
            markers = mutants.manifest_markers(data, mutants.manifest_span(data))
            baseline = verifier(signed["files"][ext])[0]                 # the unmutated file
            rows = []
            path = work / f"mutant.{ext}"
            t0 = time.perf_counter()
            for i, m in enumerate(mutants.mutants(data, per_format, seed=seed * 100 + f_i)):
                path.write_bytes(m.data)
                verdict, reason, alone, secs = verifier(path)
                expected = mutants.expected_class(m.data, markers)
                rows.append({"kind": m.kind, "detail": m.detail, "expected": expected, "verdict": verdict,
                             "reason": reason, "seconds": secs, "c2pa_alone": alone,
                             "wrong": verdict in ("crash", "hang") or mutants.is_wrong(expected, verdict),
                             "wrong_c2pa_alone": mutants.is_wrong(expected, AS_VERDICT.get(alone, alone))})
                if (i + 1) % 100 == 0:
                    log(f"verify {ext}: {i + 1}/{per_format} ({time.perf_counter() - t0:.0f} s)")
            out[ext] = summarise_verify(rows, baseline)
    finally:
        verifier.close()
    return out


def summarise_verify(rows: list[dict], baseline: str) -> dict:
    from provenance import mutants

    by_kind: dict = {}
    for kind in mutants.KINDS:
        rs = [r for r in rows if r["kind"] == kind]
        by_kind[kind] = {"n": len(rs), "verdicts": dict(collections.Counter(r["verdict"] for r in rs)),
                         "manifest_bearing": sum(r["expected"] == "tampered" for r in rs),
                         "wrong": sum(r["wrong"] for r in rs),
                         "c2pa_alone": dict(collections.Counter(r["c2pa_alone"] for r in rs)),
                         "wrong_c2pa_alone": sum(r["wrong_c2pa_alone"] for r in rs)}
    secs = np.array([r["seconds"] for r in rows])
    return {
        "unmutated_verdict": baseline, "n": len(rows),
        "crashes": sum(r["verdict"] == "crash" for r in rows), "hangs": sum(r["verdict"] == "hang" for r in rows),
        "changed_but_trusted": sum(mutants.classify(r["verdict"]) == "intact" for r in rows),
        "manifest_bearing": sum(r["expected"] == "tampered" for r in rows),
        "manifest_bearing_not_tampered": sum(r["expected"] == "tampered" and r["verdict"] != "tampered"
                                             for r in rows),
        "wrong": sum(r["wrong"] for r in rows),
        "verdicts": dict(collections.Counter(r["verdict"] for r in rows)),
        "c2pa_alone": {   # the baseline, same mutants: c2pa-python's validation without our checks
            "wrong": sum(r["wrong_c2pa_alone"] for r in rows),
            "changed_but_intact": sum(r["c2pa_alone"] == "intact" for r in rows),
            "manifest_bearing_not_tampered": sum(r["expected"] == "tampered" and r["c2pa_alone"] != "tampered"
                                                 for r in rows),
            "classes": dict(collections.Counter(r["c2pa_alone"] for r in rows))},
        "by_kind": by_kind,
        "seconds_median": round(float(np.median(secs)), 4), "seconds_max": round(float(secs.max()), 3),
        "wrong_examples": [{k: r[k] for k in ("kind", "detail", "verdict", "reason")} for r in rows if r["wrong"]][:20],
    }
