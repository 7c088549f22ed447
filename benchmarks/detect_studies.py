"""Detector studies on a corpus: cross-generator and cross-compression matrices, robustness curves,
watermark ablation, per-detector cost.

    .venv/bin/python -m benchmarks.detect_studies [--corpus out/sample_corpus] [--detectors frequency,temporal]

When the corpus does not exist, a toy corpus (``detect.toy``: real sample frames + simple
manipulations, NOT the paper's generator) is built under ``out/detect_toy_corpus`` and used instead;
the results file says which. Baseline in the same run: a chance-level "detector" scoring with the
seeded random score of each item (AUC ~0.5), and each detector's own in-distribution AUC as the
reference its cross/robustness cells are compared with.

Writes ``benchmarks/results/detect_studies.json`` (+ ``detect_studies_*.png``) — matrices are
``{train: {test: {"auc": ..., "n": ...}}}`` so the dashboard shows them as heatmaps.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
WORK = REPO_ROOT / "out" / "detect_bench"
TOY = REPO_ROOT / "out" / "detect_toy_corpus"
GROUP_COLUMNS = ("generator", "mode", "T", "reenactment")
COMPRESSIONS = ("raw", "c23", "c40", "jpeg")
ROBUSTNESS = {                      # perturbation -> levels (the first is "none")
    "jpeg_quality": [None, 90, 70, 50, 30],
    "downscale": [1.0, 0.75, 0.5, 0.25],
    "blur_sigma": [0.0, 0.5, 1.0, 2.0],
    "noise_sigma": [0.0, 2.0, 5.0, 10.0],
    "h264_crf": [None, 23, 32, 40],
}
INFER_FRAMES = 64                   # frames timed for CPU inference speed
BENCH_TRAIN = dict(image_size=64, epochs=4, batch_size=32, max_frames=16, frames_per_item=8, window=8, patience=2)


# ---------------------------------------------------------------- helpers
def _norm(v) -> str:
    from detect.data import _norm as norm

    return norm(v)


def fake_groups(df) -> dict[str, list[str]]:
    """Fake-generator groups present in the corpus -> filters selecting each (e.g. fewshot/ft/T8)."""
    fakes = df[df["label"] == "fake"]
    cols = [c for c in GROUP_COLUMNS if c in df.columns]
    groups: dict[str, list[str]] = {}
    for _, r in fakes[cols].drop_duplicates().iterrows():
        parts = [(c, _norm(r[c])) for c in cols if _norm(r[c]) not in ("none", "nan", "")]
        name = "/".join(v if c == "generator" else f"{c}{v}" if c == "T" else v for c, v in parts)
        groups[name] = [f"{c}={v}" for c, v in parts]
    return dict(sorted(groups.items()))


def in_dist_compression(df) -> str:
    present = set(df["compression"].astype(str)) if "compression" in df.columns else set()
    return "c23" if "c23" in present else "raw" if "raw" in present else sorted(present)[0]


def train_run(corpus, name: str, detector: str, filters: list[str]):
    from detect.config import DetectConfig
    from detect.score import load_run
    from detect.train import train

    cfg = DetectConfig(detector=detector, filters=tuple(filters), **BENCH_TRAIN)
    run = WORK / name / detector
    t0 = time.perf_counter()
    metrics = train(corpus, run, cfg, progress=False)
    return load_run(run), metrics, time.perf_counter() - t0


def video_auc(lr, corpus, filters, transform=None) -> dict:
    from detect.evaluate import score_split
    from detect.metrics import auc

    try:
        frames, videos, errors = score_split(lr, corpus, "test", filters, progress=False, transform=transform)
    except Exception as e:  # an empty cell (no such items) is reported, not fatal
        return {"auc": None, "n": 0, "error": str(e).splitlines()[0]}
    return {"auc": auc(videos["label"], videos["score"]), "frame_auc": auc(frames["label"], frames["score"]),
            "n": int(len(videos)), "n_fake": int(videos["label"].sum()), "skipped": len(errors)}


# ---------------------------------------------------------------- perturbations (N,S,S,3) -> (N,S,S,3)
def perturb(kind: str, level):
    import cv2

    if level in (None, 0.0, 1.0) and kind != "h264_crf" or (kind == "h264_crf" and level is None):
        return None

    def jpeg(frames):
        out = []
        for f in frames:
            ok, buf = cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(level)])
            out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        return np.stack(out)

    def downscale(frames):
        s = frames.shape[1]
        small = max(4, int(round(s * level)))
        return np.stack([cv2.resize(cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA), (s, s),
                                    interpolation=cv2.INTER_LINEAR) for f in frames])

    def blur(frames):
        return np.stack([cv2.GaussianBlur(f, (0, 0), sigmaX=float(level)) for f in frames])

    def noise(frames):
        rng = np.random.default_rng(0)
        return np.clip(frames + rng.normal(0, level, frames.shape), 0, 255).round().astype(np.uint8)

    def h264(frames):
        import tempfile

        from forge.data.media import read_frames, write_video

        with tempfile.TemporaryDirectory() as d:
            p = write_video(Path(d) / "x.mp4", frames, 25.0, crf=int(level))
            back = read_frames(p)
        return back[:, :frames.shape[1], :frames.shape[2]]

    return {"jpeg_quality": jpeg, "downscale": downscale, "blur_sigma": blur, "noise_sigma": noise,
            "h264_crf": h264}[kind]


# ---------------------------------------------------------------- studies
def study_cross_generator(corpus, df, det, comp, log):
    from core.common import FaceforgeError

    groups = fake_groups(df)
    matrix = {}
    for g, filt in groups.items():
        try:
            lr, _, _ = train_run(corpus, f"gen_{g.replace('/', '_')}_{comp}", det, filt + [f"compression={comp}"])
        except FaceforgeError as e:  # e.g. a generator/mode rendered for the test split only
            log(f"  cross-generator {det} train {g}: skipped ({e})")
            continue
        matrix[g] = {h: video_auc(lr, corpus, hf + [f"compression={comp}"]) for h, hf in groups.items()}
        log(f"  cross-generator {det} train {g}: " + ", ".join(f"{h} {c['auc']}" for h, c in matrix[g].items()))
    return matrix


def study_cross_compression(corpus, df, det, log):
    present = [c for c in COMPRESSIONS if c in set(df["compression"].astype(str))]
    matrix = {}
    for c in [c for c in ("raw", "c23") if c in present]:
        lr, _, _ = train_run(corpus, f"comp_{c}", det, [f"compression={c}"])
        matrix[c] = {t: video_auc(lr, corpus, [f"compression={t}"]) for t in present}
        log(f"  cross-compression {det} train {c}: " + ", ".join(f"{t} {v['auc']}" for t, v in matrix[c].items()))
    return matrix


def study_robustness(corpus, df, det, comp, log):
    lr, _, _ = train_run(corpus, f"comp_{comp}", det, [f"compression={comp}"])
    # perturb the least-compressed test copies
    base = "raw" if "raw" in set(df["compression"].astype(str)) else comp
    curves = {}
    for kind, levels in ROBUSTNESS.items():
        curves[kind] = [{"level": lv, **video_auc(lr, corpus, [f"compression={base}"], perturb(kind, lv))}
                        for lv in levels]
        log(f"  robustness {det} {kind}: " + ", ".join(f"{c['level']}:{c['auc']}" for c in curves[kind]))
    return {"base_compression": base, "curves": curves}


def study_watermark(corpus, df, det, comp, log):
    if "watermarked" not in df.columns or df[df["label"] == "fake"]["watermarked"].nunique() < 2:
        return {"skipped": "the corpus has no watermarked/un-watermarked twin fakes"}
    out = {}
    for trained_on in ("false", "true"):
        lr, _, _ = train_run(corpus, f"wm_{trained_on}_{comp}", det, [f"watermarked={trained_on}", f"compression={comp}"])
        out[f"train_watermarked_{trained_on}"] = {
            f"test_watermarked_{t}": video_auc(lr, corpus, [f"watermarked={t}", f"compression={comp}"])
            for t in ("false", "true")}
    for k, v in out.items():
        log(f"  watermark {det} {k}: " + ", ".join(f"{t} {c['auc']}" for t, c in v.items()))
    gaps = [abs((v["test_watermarked_true"]["auc"] or 0) - (v["test_watermarked_false"]["auc"] or 0)) for v in out.values()]
    return {"matrix": out, "max_auc_gap": float(max(gaps)),
            "verdict": "not detecting the watermark" if max(gaps) < 0.05 else "AUC depends on the watermark: inspect"}


def study_cost(corpus, det, comp) -> dict:
    lr, m, secs = train_run(corpus, f"comp_{comp}", det, [f"compression={comp}"])
    frames = np.random.default_rng(0).integers(0, 255, (INFER_FRAMES, m["crop_resolution"], m["crop_resolution"], 3),
                                               dtype=np.uint8)
    from detect.toy import template_landmarks

    lms = np.repeat(template_landmarks(m["crop_resolution"])[None], INFER_FRAMES, 0)
    lr.detector.score_clip(frames[:8], lms[:8])                # warm-up
    t0 = time.perf_counter()
    lr.detector.score_clip(frames, lms)
    fps = INFER_FRAMES / (time.perf_counter() - t0)
    hist = (lr.path / "history.csv")
    import pandas as pd

    train_s = float(pd.read_csv(hist)["seconds"].sum()) if hist.is_file() else float("nan")
    return {"params": m["params"], "train_seconds": train_s, "cpu_frames_per_s": fps,
            "epochs_run": m["epochs_run"], "val_video_auc": m["val"]["video"]["auc"]}


def chance_baseline(corpus, df, comp) -> dict:
    """Seeded random scores per test item: what an uninformative detector gets."""
    from detect.data import apply_filters, split_rows
    from detect.metrics import auc

    rows = apply_filters(split_rows(df, "test"), [f"compression={comp}"], keep_real=True)
    y = (rows["label"] == "fake").astype(int).to_numpy()
    s = np.random.default_rng(0).random(len(y))
    return {"auc": auc(y, s), "n": int(len(y))}


# ---------------------------------------------------------------- plots
def _heatmap(ax, mat: dict, title: str) -> None:
    rows, cols = list(mat), list(next(iter(mat.values())))
    vals = np.array([[np.nan if mat[r][c]["auc"] is None else mat[r][c]["auc"] for c in cols] for r in rows])
    ax.imshow(vals, vmin=0.5, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, "-" if np.isnan(vals[i, j]) else f"{vals[i, j]:.2f}", ha="center", va="center",
                    color="w", fontsize=7)
    ax.set(title=title, xlabel="test", ylabel="train")


def plot_matrices(results: dict, path: Path) -> None:
    """One row per detector: cross-generator and cross-compression video-AUC heatmaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = ("cross_generator", "cross_compression")
    dets = [d for d, r in results["detectors"].items() if any(r.get(s) for s in studies)]
    if not dets:
        return
    fig, axes = plt.subplots(len(dets), 2, figsize=(10, 3.8 * len(dets)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6, 1]})
    for row, det in zip(axes, dets):
        for ax, study in zip(row, studies):
            mat = results["detectors"][det].get(study)
            if mat:
                _heatmap(ax, mat, f"{det}: {study.replace('_', '-')} (video AUC)")
            else:
                ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_robustness(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(ROBUSTNESS)
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.0), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for det, r in results["detectors"].items():
            pts = r.get("robustness", {}).get("curves", {}).get(kind, [])
            xs = [str(p["level"]) for p in pts]
            ys = [np.nan if p["auc"] is None else p["auc"] for p in pts]
            ax.plot(xs, ys, "o-", label=det)
        ax.axhline(0.5, ls=":", color="grey")
        ax.set(title=kind, ylim=(0.3, 1.02), xlabel="level", ylabel="video AUC")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(REPO_ROOT / "out" / "sample_corpus"))
    ap.add_argument("--detectors", default="frequency,temporal,temporal_texture,dct_cnn")
    ap.add_argument("--studies", default="cost,cross_generator,cross_compression,robustness,watermark")
    ap.add_argument("--name", default="detect_studies", help="results file stem")
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNGs from an existing results JSON")
    args = ap.parse_args(argv)
    if args.plot_only:
        import json

        results = json.loads((RESULTS / f"{args.name}.json").read_text())
        plot_matrices(results, RESULTS / f"{args.name}_matrices.png")
        plot_robustness(results, RESULTS / f"{args.name}_robustness.png")
        return results

    from detect.data import load_manifest

    corpus, source = Path(args.corpus), "corpus"
    if not (corpus / "manifest.parquet").is_file():
        from detect.toy import ToyCorpusConfig, build_toy_corpus

        corpus, source = TOY, f"toy corpus (detect.toy; {args.corpus} did not exist)"
        if not (TOY / "manifest.parquet").is_file():
            build_toy_corpus(TOY, ToyCorpusConfig(size=48, n_frames=16, generators=("fewshot", "warp"),
                                                  compressions=COMPRESSIONS, watermark_twins=True))
    df = load_manifest(corpus)
    comp = in_dist_compression(df)
    studies = args.studies.split(",")
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f}s] {msg}", flush=True)

    results = {"corpus": str(corpus), "source": source, "n_items": int(len(df)),
               "in_distribution_compression": comp, "train_config": BENCH_TRAIN,
               "baseline_chance": chance_baseline(corpus, df, comp), "detectors": {}}
    for det in args.detectors.split(","):
        r: dict = {}
        log(f"{det}")
        if "cost" in studies:
            r["cost"] = study_cost(corpus, det, comp)
            lr, _, _ = train_run(corpus, f"comp_{comp}", det, [f"compression={comp}"])
            r["in_distribution"] = video_auc(lr, corpus, [f"compression={comp}"])
            log(f"  cost {r['cost']}  in-distribution {r['in_distribution']}")
        if "cross_generator" in studies:
            r["cross_generator"] = study_cross_generator(corpus, df, det, comp, log)
        if "cross_compression" in studies:
            r["cross_compression"] = study_cross_compression(corpus, df, det, log)
        if "robustness" in studies:
            r["robustness"] = study_robustness(corpus, df, det, comp, log)
        if "watermark" in studies:
            r["watermark"] = study_watermark(corpus, df, det, comp, log)
        results["detectors"][det] = r
        write_json_atomic(RESULTS / f"{args.name}.json", results)  # partial results survive an interruption
    results["seconds"] = time.perf_counter() - t_start
    write_json_atomic(RESULTS / f"{args.name}.json", results)
    plot_matrices(results, RESULTS / f"{args.name}_matrices.png")
    plot_robustness(results, RESULTS / f"{args.name}_robustness.png")
    log(f"wrote {RESULTS / (args.name + '.json')}")
    return results


if __name__ == "__main__":
    main()
