"""The shipped default detector on third-party fakes: video AUC on ``../shared/data/external``
(18 fakes from 8 public generators + 11 real clips), overall and averaged over generator families.

    .venv/bin/python -m benchmarks.detect_default [--model RUN] [--external DIR]

The folder is read in place (never copied) and never used for selection or calibration: the model
was selected and calibrated on its own validation people. Scoring goes through the user path,
``detect.score_files`` (dlib faces, 128 px crops, the first 64 frames). Baseline in the same run: the
uncalibrated mean frame score (calibration must not change the ranking) and chance (0.5).
Writes ``benchmarks/results/<name>.json`` and ``<name>.png`` (per-video P(fake); name ``detect_default``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, FaceforgeError, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
EXTERNAL = REPO_ROOT.parent / "shared" / "data" / "external"
TARGET_AUC = 0.85
FACES_CACHE = REPO_ROOT / "out" / "detect_default" / "external_faces.pkl"


def external_faces(paths, crop: int, max_frames: int, cache_file: Path) -> dict:
    """Faces of the external videos as ``detect.score``'s ``faces_cache`` (dlib is the slow part),
    kept in a local pickle under ``out/`` (derived crops, never in the repository)."""
    import pickle

    from detect.score import _faces, faces_key

    found = pickle.loads(cache_file.read_bytes()) if cache_file.is_file() else {}
    for p in paths:
        key = faces_key(p, crop, "detect", max_frames, 1, "auto")
        if key not in found:
            try:
                found[key] = _faces(Path(p), crop, "detect", max_frames, 1, "auto")
            except FaceforgeError as e:      # scored later as no_face / error
                print(f"{Path(p).name}: {e}")
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_bytes(pickle.dumps(found))
    return found


def family_aucs(df, score: str = "score") -> dict:
    """AUC of each generator's fakes against all real videos (``detect.metrics.family_auc``), and their mean."""
    from detect.metrics import average_family_auc, family_auc

    aucs = family_auc(df.y, df[score], df.generator)
    fakes = df[df.y == 1].groupby("generator")[score]
    per = {gen: {"auc": aucs[gen], "n_fake": int(fakes.size()[gen]), "mean_p_fake": float(fakes.mean()[gen])}
           for gen in aucs}
    return {"per_family": per, "mean": average_family_auc(df.y, df[score], df.generator)}


def plot(df, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = df.sort_values(["y", "generator", "score"])
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    colors = ["tab:green" if y == 0 else "tab:red" for y in d.y]
    ax.bar(range(len(d)), d.score, color=colors)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(d)), [f"{g}" if y else "real" for g, y in zip(d.generator, d.y)], rotation=70,
                  fontsize=7)
    ax.set_ylabel("calibrated P(fake)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="detector run (default: the shipped default detector)")
    ap.add_argument("--external", default=str(EXTERNAL))
    ap.add_argument("--max-frames", type=int, default=64)
    ap.add_argument("--name", default="detect_default", help="results file stem (.json, .png)")
    args = ap.parse_args(argv)

    import torch

    from detect.folder import read_manifest
    from detect.metrics import auc
    from detect.score import load_run, score_files

    torch.set_num_threads(1)
    df = read_manifest(args.external)          # validated; path, y; reals' generator "real"
    lr = load_run(args.model)
    faces = external_faces(df["path"], lr.crop_resolution, args.max_frames, FACES_CACHE)
    t0 = time.perf_counter()
    videos = score_files(lr, df["path"], max_frames=args.max_frames, progress=False, faces_cache=faces)
    seconds = time.perf_counter() - t0
    df = df.merge(videos[["file", "status", "score", "raw_score", "label", "n_valid", "top_frames"]]
                  .rename(columns={"file": "path", "label": "verdict"}), on="path")
    ok = df[df.status == "ok"].copy()
    fam = family_aucs(ok)
    out = {
        "model": str(lr.path), "detector": lr.cfg.detector, "external": str(Path(args.external).resolve()),
        "n_videos": int(len(df)), "n_scored": int(len(ok)), "n_fake": int(ok.y.sum()), "n_real": int((1 - ok.y).sum()),
        "not_scored": df[df.status != "ok"][["file", "status"]].to_dict("records"),
        "video_auc": auc(ok.y, ok.score), "video_auc_uncalibrated": auc(ok.y, ok.raw_score), "chance": 0.5,
        "family_mean_auc": fam["mean"], "per_family": fam["per_family"], "target": TARGET_AUC,
        "accuracy_at_0.5": float(((ok.score >= 0.5) == (ok.y == 1)).mean()),
        "val": lr.metrics.get("val", {}), "seconds": round(seconds, 1),
        "videos": ok[["file", "generator", "label", "score", "raw_score", "verdict", "top_frames"]].to_dict("records"),
    }
    write_json_atomic(RESULTS / f"{args.name}.json", out)
    plot(ok, RESULTS / f"{args.name}.png",
         f"{lr.cfg.detector} on external: video AUC {out['video_auc']:.3f}, family mean {fam['mean']:.3f}")
    print(f"external video AUC {out['video_auc']:.3f} (family mean {fam['mean']:.3f}) on {len(ok)} videos; "
          + ", ".join(f"{k} {v['auc']:.2f}" for k, v in fam["per_family"].items()))
    return out


if __name__ == "__main__":
    main()
