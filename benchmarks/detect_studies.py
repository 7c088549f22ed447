"""Detector studies on the benchmark corpus (``forge/corpus/bench128.yaml``) and the external folder.

    .venv/bin/python -m benchmarks.detect_studies [--corpus out/bench128] [--detectors frequency,temporal,dct_cnn]
        [--runs "blend_cnn SBI=out/sbi/mnv3,blend_identity SBI=out/sbi/id"]

- cross-generator: train on one family of our fakes (FF, FT, warp; reals of the train split as
  negatives) or all of them, at c23; test on every family of the corpus test split and on the
  external folder (``../shared/data/external``: 8 public generators, read in place, never tuned on);
- cross-compression: train at c23 or raw, test at raw / c23 / c40 / JPEG;
- robustness: the all-families c23 model on perturbed raw test clips (JPEG, downscale, blur, noise, H.264);
- ablations: a blend-head CNN trained on our fakes (no self-blended data) next to the runs given with
  ``--runs`` (e.g. the self-blended detectors, pretrained or from scratch), on the same test cells.

Every cell is ``{"auc", "auc_ci95", "n", "n_fake", "n_real", "small"}``: the 95 % interval is a seeded
bootstrap that resamples whole people (corpus) or source files (external); ``small`` marks cells with
fewer than 50 fake or 50 real videos. Baseline in the same run: seeded random scores (chance) on the
same cells. Writes ``benchmarks/results/detect_studies.{json,md}`` and ``detect_studies_*.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.common import REPO_ROOT, FaceforgeError, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
WORK = REPO_ROOT / "out" / "detect_bench128"
CORPUS = REPO_ROOT / "out" / "bench128"
EXTERNAL = REPO_ROOT.parent / "shared" / "data" / "external"
MIN_CELL = 50                       # fewer fake or real videos than this: the cell is marked
N_BOOT = 500
COMPRESSIONS = ("raw", "c23", "c40", "jpeg")
IN_DIST = "c23"
FAMILIES = {"FF": ["generator=fewshot", "mode=ff"], "FT": ["generator=fewshot", "mode=ft"], "warp": ["generator=warp"]}
ROBUSTNESS = {                      # perturbation -> levels (the first is "none", scored once)
    "jpeg_quality": [None, 50, 30],
    "downscale": [1.0, 0.5, 0.25],
    "blur_sigma": [0.0, 1.0, 2.0],
    "noise_sigma": [0.0, 5.0, 10.0],
    "h264_crf": [None, 32, 40],
}
BENCH_TRAIN = dict(image_size=64, epochs=3, batch_size=32, max_frames=12, frames_per_item=4, window=8, patience=2)
EXTERNAL_FRAMES = 32                # frames read per external clip


# ---------------------------------------------------------------- cells
def family_of(df) -> np.ndarray:
    """Manifest rows -> family name ("real", "FF", "FT", "warp")."""
    gen, mode = df["generator"].astype(str).to_numpy(), df["mode"].astype(str).str.upper().to_numpy()
    return np.where(gen == "fewshot", mode, gen)


def cell(y, s, clusters=None, seed: int = 0) -> dict:
    from detect.metrics import auc, bootstrap_ci

    y, s = np.asarray(y, int), np.asarray(s, float)
    ci = bootstrap_ci(y, s, n_boot=N_BOOT, seed=seed, clusters=clusters)
    n_fake = int(y.sum())
    return {"auc": auc(y, s), "auc_ci95": [ci["low"], ci["high"]], "n": int(y.size), "n_fake": n_fake,
            "n_real": int(y.size - n_fake), "small": bool(min(n_fake, y.size - n_fake) < MIN_CELL)}


def family_cells(videos) -> dict:
    """Each family's fakes against all reals of the scored split, and all fakes ("all")."""
    y, s, fam = videos["label"].to_numpy(int), videos["score"].to_numpy(float), videos["family"].to_numpy()
    people = videos["source_identity"].astype(str).to_numpy()
    out = {"all": cell(y, s, people)}
    for f in FAMILIES:
        m = (y == 0) | (fam == f)
        if (fam == f).any():
            out[f] = cell(y[m], s[m], people[m])
    return out


def external_cells(m: dict) -> dict:
    """The folder protocol's metrics -> cells: all, the family average, each external generator."""
    def c(x):
        return {"auc": x["auc"], "auc_ci95": x["auc_ci95"], "n": x["n"], "n_fake": x["n_fake"], "n_real": x["n_real"],
                "small": bool(min(x["n_fake"], x["n_real"]) < MIN_CELL)}

    fam = m["family_average_auc"]
    return {"all": c(m["video"]), "family_average": {"auc": fam["auc"], "auc_ci95": fam["auc_ci95"],
                                                     "n": m["video"]["n"], "n_families": fam["n_families"],
                                                     "small": True},
            "by_generator": {g: c(x) for g, x in m["by_generator"].items()}}


# ---------------------------------------------------------------- data and runs
class Bench:
    """The corpus's test items, decoded once per compression, and the external faces, found once."""

    def __init__(self, corpus: Path, external: Path | None, log):
        from detect.data import load_manifest

        self.corpus, self.external, self.log = corpus, external, log
        self.df = load_manifest(corpus)
        self.df["family"] = family_of(self.df)
        self._items: dict[str, list] = {}
        self.faces_cache: dict = {}

    def items(self, compression: str) -> list:
        if compression not in self._items:
            from detect.data import load_items, split_rows

            rows = split_rows(self.df, "test")
            rows = rows[rows["compression"].astype(str) == compression]
            rep = load_items(self.corpus, rows, None, f"test {compression}", progress=False)
            self._items[compression] = rep.items
        return self._items[compression]

    def videos(self, items, scores):
        """Per-video scores joined with family and person."""
        import pandas as pd

        meta = self.df.set_index("item_id")
        ids = [it.item_id for it in items]
        return pd.DataFrame({"item_id": ids, "label": [it.label for it in items], "score": scores,
                             "family": meta.loc[ids, "family"].to_numpy(),
                             "source_identity": meta.loc[ids, "source_identity"].to_numpy()})

    def score(self, lr, compression: str, transform=None) -> dict:
        from detect.metrics import aggregate

        items = self.items(compression)
        scores = []
        for it in items:
            frames = it.frames if transform is None else transform(it.frames)
            scores.append(aggregate(lr.detector.score_clip(frames, it.landmarks), lr.cfg.aggregate))
        return family_cells(self.videos(items, scores))

    def score_external(self, lr, name: str) -> dict | None:
        if self.external is None:
            return None
        from detect.folder import FolderEvalConfig, evaluate_folder

        m = evaluate_folder(lr, self.external, FolderEvalConfig(n_boot=N_BOOT, max_frames=EXTERNAL_FRAMES),
                            out=WORK / "external" / name, progress=False, faces_cache=self.faces_cache)
        return external_cells(m)

    def chance(self) -> dict:
        items = self.items(IN_DIST)
        s = np.random.default_rng(0).random(len(items))
        return family_cells(self.videos(items, s))


def train_run(bench: Bench, name: str, detector: str, filters: list[str], **overrides):
    """Train (or reuse, when finished) a run on this state of the corpus: the run folder is keyed by
    the manifest's size, so a grown corpus trains afresh."""
    from detect.config import DetectConfig
    from detect.score import load_run
    from detect.train import train

    cfg = DetectConfig(detector=detector, filters=tuple(filters), **{**BENCH_TRAIN, **overrides})
    run = WORK / f"{bench.corpus.name}-{len(bench.df)}files" / detector / name
    t0 = time.perf_counter()
    m = train(bench.corpus, run, cfg, progress=False)
    info = {"run": str(run.relative_to(REPO_ROOT)), "filters": filters, "val_video_auc": m["val"]["video"]["auc"],
            "n_train_items": m["n_train_items"], "seconds_this_call": round(time.perf_counter() - t0, 1)}
    return load_run(run), info


# ---------------------------------------------------------------- studies
def study_detector(bench: Bench, det: str, studies: list[str], log) -> dict:
    r: dict = {"runs": {}}
    trained: dict = {}

    def run(name, filters, **kw):
        if name not in trained:
            trained[name], r["runs"][name] = train_run(bench, name, det, filters, **kw)
            log(f"  {det} {name}: trained ({r['runs'][name]})")
        return trained[name]

    if "cross_generator" in studies:
        r["cross_generator"] = {}
        for fam, filt in [("all", []), *FAMILIES.items()]:
            lr = run(f"{fam}_{IN_DIST}", filt + [f"compression={IN_DIST}"])
            row = bench.score(lr, IN_DIST)
            ext = bench.score_external(lr, f"{det}_{fam}")
            if ext:
                row["external"], row["external_family_avg"] = ext["all"], ext["family_average"]
                r.setdefault("external_by_generator", {})[fam] = ext["by_generator"]
            r["cross_generator"][fam] = row
            log(f"  cross-generator {det} train {fam}: " + ", ".join(f"{k} {v['auc']:.3f}" for k, v in row.items()))
    if "cross_compression" in studies:
        r["cross_compression"] = {}
        for comp in ("c23", "raw"):
            lr = run(f"all_{comp}", [f"compression={comp}"])
            r["cross_compression"][comp] = {t: bench.score(lr, t)["all"] for t in COMPRESSIONS}
            log(f"  cross-compression {det} train {comp}: "
                + ", ".join(f"{t} {c['auc']:.3f}" for t, c in r["cross_compression"][comp].items()))
    if "robustness" in studies:
        from benchmarks.perturb import perturb

        lr = run(f"all_{IN_DIST}", [f"compression={IN_DIST}"])
        clean = bench.score(lr, "raw")["all"]

        def at(kind, lv):
            f = perturb(kind, lv)
            return clean if f is None else bench.score(lr, "raw", f)["all"]

        r["robustness"] = {"base_compression": "raw", "curves": {
            kind: [{"level": lv, **at(kind, lv)} for lv in levels] for kind, levels in ROBUSTNESS.items()}}
        log(f"  robustness {det}: done")
    return r


def ablations(bench: Bench, given: dict[str, str], log) -> dict:
    """A blend-head CNN on our fakes (no self-blended data), and the given runs, on the same cells."""
    from detect.score import load_run

    out = {}
    lr, info = train_run(bench, f"all_{IN_DIST}", "blend_cnn", [f"compression={IN_DIST}"])
    runs = {"blend_cnn, our fakes (no SBI)": (lr, info)}
    for label, path in given.items():
        try:
            runs[label] = (load_run(path), {"run": path})
        except FaceforgeError as e:
            out[label] = {"skipped": str(e)}
    for label, (lr, info) in runs.items():
        row = {"detector": lr.cfg.detector, **info, "corpus_c23": bench.score(lr, "c23"),
               "corpus_c40": bench.score(lr, "c40")["all"]}
        ext = bench.score_external(lr, "abl_" + label.split(",")[0].replace(" ", "_"))
        if ext:
            row["external"], row["external_family_avg"] = ext["all"], ext["family_average"]
            row["external_by_generator"] = ext["by_generator"]
        out[label] = row
        log(f"  ablation {label}: c23 {row['corpus_c23']['all']['auc']:.3f}"
            + (f", external {row['external']['auc']:.3f}" if ext else ""))
    return out


def corpus_summary(bench: Bench) -> dict:
    import json

    card = json.loads((bench.corpus / "corpus.json").read_text()) if (bench.corpus / "corpus.json").is_file() else {}
    test = bench.df[bench.df["split"] == "test"]
    counts = test.groupby(["compression", "family"]).size().unstack(fill_value=0)
    return {"complete": card.get("complete"), "jobs": card.get("jobs"),
            "test_videos": {c: {k: int(v) for k, v in row.items()} for c, row in counts.iterrows()},
            "test_identities": int(test["source_identity"].nunique())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--external", default=str(EXTERNAL), help="labelled folder ('' to skip)")
    ap.add_argument("--detectors", default="frequency,temporal,dct_cnn")
    ap.add_argument("--studies", default="cross_generator,cross_compression,robustness,ablations")
    ap.add_argument("--runs", default="", help="ablation runs: 'label=RUN,label=RUN'")
    ap.add_argument("--name", default="detect_studies", help="results file stem")
    ap.add_argument("--plot-only", action="store_true", help="redraw PNGs and tables from the results JSON")
    args = ap.parse_args(argv)
    from benchmarks.detect_studies_report import write_report

    if args.plot_only:
        import json

        results = json.loads((RESULTS / f"{args.name}.json").read_text())
        write_report(results, RESULTS, args.name)
        return results
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f}s] {msg}", flush=True)

    corpus = Path(args.corpus)
    if not (corpus / "manifest.parquet").is_file():
        raise FaceforgeError(f"no benchmark corpus at {corpus}: build it with faceforge forge corpus "
                             f"--spec forge/corpus/bench128.yaml --out {corpus}")
    external = Path(args.external) if args.external and (Path(args.external) / "MANIFEST.csv").is_file() else None
    bench = Bench(corpus, external, log)
    studies = args.studies.split(",")
    results = {"corpus": str(corpus), "external": str(external) if external else None, "min_cell": MIN_CELL,
               "n_boot": N_BOOT, "train_config": BENCH_TRAIN, "corpus_summary": corpus_summary(bench),
               "baseline_chance": bench.chance(), "detectors": {}}
    out = RESULTS / f"{args.name}.json"
    for det in [d for d in args.detectors.split(",") if d]:
        log(det)
        results["detectors"][det] = study_detector(bench, det, studies, log)
        write_json_atomic(out, results)  # partial results survive an interruption
    if "ablations" in studies:
        given = dict(x.split("=", 1) for x in args.runs.split(",") if "=" in x)
        results["ablations"] = ablations(bench, given, log)
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    write_json_atomic(out, results)
    write_report(results, RESULTS, args.name)
    log(f"wrote {out}")
    return results


if __name__ == "__main__":
    from benchmarks import run_script

    run_script(main)
