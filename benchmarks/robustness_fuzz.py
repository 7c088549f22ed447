"""Robustness fuzz (issue 19): seeded mutants of signed files through ``verify_file``, and broken media
through ``forge prepare`` and ``detect score``; counts crashes, hangs, verdicts and wrong verdicts.

  python -m benchmarks.robustness_fuzz [--per-format 1000] [--broken 120] [--seed 19]

1. verify: for each format (JPEG, PNG, 4-frame MP4; 128 px, watermarked, signed, recorded in a store),
   ``--per-format`` mutants from ``provenance.mutants`` (byte flips inside / outside the manifest, flips
   of the manifest container's header and of the file header, truncations, inserts, zeroed blocks,
   random files), each verified in a worker process as ``faceforge provenance verify --store --trust``
   does (watermark decode on). A crash is any exception other than FaceforgeError or a dead worker; a
   hang is a verify over ``HANG_S``. Wrong: a changed file read as intact, or a file that still holds a
   piece of its manifest read as anything but ``tampered``.
2. broken media: ``--broken`` damaged videos and images (the same mutation kinds, plus empty and
   renamed files) made from real sample clips and portraits, through ``forge prepare`` and ``detect score``
   (a ``frequency`` detector trained here on a toy corpus in seconds): every file must be recorded
   (ok / no_face / error ...) and the batch must finish.

Writes benchmarks/results/robustness_fuzz.json and .png. Seeded: the same seed gives the same mutants.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = HERE.parent / "out" / "robustness_fuzz"
HANG_S = 120.0            # a verify slower than this is a hang (a typical one takes ~0.1-0.5 s here)
BATCH_TIMEOUT_S = 3600    # prepare / detect score of all broken files
SIZE = 128
FORMATS = ("jpg", "png", "mp4")
AS_VERDICT = {"intact": "trusted", "no_manifest": "none"}   # c2pa-alone classes as verdicts
GEN = {"model": "robustness_fuzz", "seed": 19}


# ---------------------------------------------------------------- 1. verify
def make_signed(work: Path, seed: int) -> dict:
    """Watermarked, signed 128 px JPEG / PNG / MP4 made from a sample portrait, in one store."""
    from PIL import Image

    from core.common import SAMPLE_DIR
    from forge.data.media import write_video
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


# ---------------------------------------------------------------- 2. broken media
def make_broken(folder: Path, n: int, seed: int) -> list[Path]:
    """``n`` damaged media files from real sample clips (160 px, 10 frames) and portraits."""
    import cv2

    from core.common import SAMPLE_DIR
    from forge.data.media import read_frames, write_video
    from provenance import mutants

    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.iterdir():
        p.unlink()
    rng = np.random.default_rng(seed)
    originals = []
    for name in ("hdtf_wda_katiehill", "d0", "d18"):
        frames = read_frames(SAMPLE_DIR / "videos" / f"{name}.mp4", max_frames=10)
        p = folder.parent / f"orig_{name}.mp4"
        write_video(p, np.stack([cv2.resize(f, (160, 160)) for f in frames]), fps=25, crf=20)
        originals.append(p)
    originals += [SAMPLE_DIR / "portraits" / "s42.jpg"]
    kinds = ("truncate", "flip_media", "insert", "zero_block", "random_file", "flip_file_header")
    out = []
    for i in range(n):
        src = originals[i % len(originals)]
        data = bytearray(src.read_bytes())
        kind = kinds[(i // len(originals)) % len(kinds)]
        if i % 20 == 19:
            blob, kind = b"", "empty"
        elif i % 20 == 9:
            blob, kind = bytes(data), "renamed"           # a good video named .jpg / a good image named .mp4
        else:
            span = mutants.Span(len(data) // 3, len(data) // 3, 0)     # no manifest: flips anywhere
            blob = bytes(mutants.MUTATORS[kind](data, span, rng)[0])
        ext = {"renamed": ".jpg" if src.suffix == ".mp4" else ".mp4"}.get(kind, src.suffix)
        p = folder / f"{i:03d}-{kind}-{src.stem}{ext}"
        p.write_bytes(blob)
        out.append(p)
    return out


def _batch(args: list[str], log) -> tuple[int | None, float, str]:
    t0 = time.perf_counter()
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=BATCH_TIMEOUT_S,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        return r.returncode, time.perf_counter() - t0, (r.stderr or "")[-600:]
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, "timeout"


def fuzz_media(files: list[Path], work: Path, log) -> dict:
    import json

    import pandas as pd

    cli = [sys.executable, "-m", "forge.cli"]
    cache = work / "cache"
    if cache.exists():
        shutil.rmtree(cache)
    rc, secs, err = _batch(cli + ["forge", "prepare", str(files[0].parent), "--out", str(cache), "--quiet"], log)
    log(f"prepare: rc {rc} in {secs:.0f} s")
    prep = {"returncode": rc, "seconds": round(secs, 1), "hang": rc is None,
            "crash": rc not in (0, None) or "Traceback" in err, "stderr_tail": err if rc else ""}
    if (cache / "videos.parquet").exists():
        videos = pd.read_parquet(cache / "videos.parquet")
        prep["recorded"] = int(len(videos))
        prep["statuses"] = {str(k): int(v) for k, v in videos["status"].value_counts().items()}
    run = train_detector(work, log)
    scores = work / "scores"
    rc, secs, err = _batch(cli + ["detect", "score", "--model", str(run), "--out", str(scores), "--max-frames", "16",
                                  *map(str, files)], log)
    log(f"detect score: rc {rc} in {secs:.0f} s")
    score = {"returncode": rc, "seconds": round(secs, 1), "hang": rc is None,
             "crash": rc not in (0, 1, None) or "Traceback" in err, "stderr_tail": err if rc not in (0, 1) else ""}
    if (scores / "scores.json").exists():
        videos = pd.DataFrame(json.loads((scores / "scores.json").read_text())["videos"])
        score["recorded"] = int(len(videos))
        score["statuses"] = {str(k): int(v) for k, v in videos["status"].value_counts().items()}
    return {"n_files": len(files), "kinds": dict(collections.Counter(f.name.split("-")[1] for f in files)),
            "prepare": prep, "detect_score": score}


def train_detector(work: Path, log) -> Path:
    """A ``frequency`` detector on a toy corpus (seconds on one core): something for ``detect score``."""
    from detect.config import DetectConfig
    from detect.toy import ToyCorpusConfig, build_toy_corpus
    from detect.train import train

    corpus = build_toy_corpus(work / "toy_corpus", ToyCorpusConfig(size=32, n_frames=8))
    run = work / "detector"
    train(corpus, run, DetectConfig(detector="frequency", image_size=32, frames_per_item=4), progress=False)
    log(f"detector trained: {run}")
    return run


# ---------------------------------------------------------------- report
def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.common import atomic_path
    from provenance import mutants

    fig, axes = plt.subplots(2, len(FORMATS), figsize=(5 * len(FORMATS), 7.5), sharey="row")
    classes = ("tampered", "no_manifest", "error", "intact", "crash/hang")
    colors = ("#c0392b", "#2980b9", "#7f8c8d", "#27ae60", "#000000")
    x = np.arange(len(mutants.KINDS))
    labels = [k.replace("_", "\n") for k in mutants.KINDS]
    for col, ext in enumerate(FORMATS):
        r, ax = result["verify"][ext], axes[0, col]
        bottom = np.zeros(len(x))
        for cls, color in zip(classes, colors):
            vals = np.array([sum(c for v, c in r["by_kind"][k]["verdicts"].items()
                                 if (mutants.classify(v) if v not in ("crash", "hang") else "crash/hang") == cls)
                             for k in mutants.KINDS], dtype=float)
            ax.bar(x, vals, bottom=bottom, color=color, label=cls)
            bottom += vals
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(f"{ext.upper()}: faceforge verify, {r['n']} mutants, {r['wrong']} wrong", fontsize=10)
        ax = axes[1, col]
        ours = [r["by_kind"][k]["wrong"] for k in mutants.KINDS]
        alone = [r["by_kind"][k]["wrong_c2pa_alone"] for k in mutants.KINDS]
        ax.bar(x - 0.2, alone, 0.4, color="#95a5a6", label="c2pa-python validation alone")
        ax.bar(x + 0.2, ours, 0.4, color="#c0392b", label="faceforge verify")
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(f"wrong verdicts: {r['c2pa_alone']['wrong']} -> {r['wrong']}", fontsize=10)
    axes[0, 0].set_ylabel("mutants by verdict class")
    axes[1, 0].set_ylabel("wrong verdicts")
    axes[0, -1].legend(fontsize=8, loc="lower left")
    axes[1, -1].legend(fontsize=8)
    fig.suptitle("verify on seeded mutants of signed files, per mutation kind")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import torch

    from core.common import write_json_atomic

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-format", type=int, default=1000, help="verify mutants per format")
    ap.add_argument("--broken", type=int, default=120, help="broken media files through prepare and score")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--out", type=Path, default=RESULTS / "robustness_fuzz.json")
    ap.add_argument("--replot", action="store_true", help="only redraw the PNG from the results file")
    args = ap.parse_args(argv)
    if args.replot:
        plot(__import__("json").loads(args.out.read_text()), args.out.with_suffix(".png"))
        return 0
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.0f} s] {msg}", flush=True)

    signed = make_signed(WORK / "signed", args.seed)
    verify = fuzz_verify(signed, args.per_format, args.seed, WORK, log)
    media = fuzz_media(make_broken(WORK / "broken", args.broken, args.seed), WORK, log)
    totals = {k: sum(v[k] for v in verify.values()) for k in
              ("n", "crashes", "hangs", "changed_but_trusted", "manifest_bearing", "manifest_bearing_not_tampered",
               "wrong")}
    totals["c2pa_alone"] = {k: sum(v["c2pa_alone"][k] for v in verify.values())
                            for k in ("wrong", "changed_but_intact", "manifest_bearing_not_tampered")}
    result = {
        "seed": args.seed, "per_format": args.per_format, "hang_s": HANG_S, "size_px": SIZE,
        "totals": totals, "verify": verify, "broken_media": media,
        "targets_met": {"no_crash": totals["crashes"] == 0 and not media["prepare"]["crash"]
                        and not media["detect_score"]["crash"],
                        "no_hang": totals["hangs"] == 0 and not media["prepare"]["hang"]
                        and not media["detect_score"]["hang"],
                        "no_changed_but_trusted": totals["changed_but_trusted"] == 0,
                        "manifest_bearing_all_tampered": totals["manifest_bearing_not_tampered"] == 0,
                        "every_broken_file_recorded": media["prepare"].get("recorded") == media["n_files"]
                        and media["detect_score"].get("recorded") == media["n_files"]},
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": "2-core shared CPU box, 1 thread, other jobs running",
    }
    write_json_atomic(args.out, result)
    plot(result, args.out.with_suffix(".png"))
    log(f"totals {totals}; targets {result['targets_met']}")
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
