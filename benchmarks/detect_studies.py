"""Detector studies on the benchmark corpus (``forge/corpus/bench128.yaml``) and the external folder.

    .venv/bin/python -m benchmarks.detect_studies [--corpus out/bench128v2] [--detectors frequency,temporal,dct_cnn]
        [--runs "blend_cnn SBI=detect/weights/default;blend_identity SBI=out/sbi_detector/id_ft"] [--no-wm-reals]

Watermark-matched reals (default, ``--wm-reals``): every fake of the corpus carries our invisible
watermark and its reals do not, so a detector could separate them by the watermark alone. The corpus's
reals are therefore read as their watermarked twins (:mod:`detect.wm_reals`, built once with
``python -m detect.wm_reals CORPUS``) for training AND the corpus test cells: real and fake differ in
generation only. The ``wm_control`` study measures the shortcut: a model trained with the plain reals,
and both models scored on plain and on watermarked reals (all families, c23).

- cross-generator: train on one family of our fakes (FF, FT, warp; reals of the train split as
  negatives) or all of them, at c23; test on every family of the corpus test split and on the
  external folder (``../shared/data/external``: 8 public generators, read in place, never tuned on);
- cross-compression: train at c23 or raw, test at raw / c23 / c40 / JPEG;
- robustness: the all-families c23 model on perturbed raw test clips (JPEG, downscale, blur, noise, H.264);
- ablations: a blend-head CNN trained on our fakes (no self-blended data) next to the runs given with
  ``--runs`` (e.g. the self-blended detectors, pretrained or from scratch), on the same test cells.

Resumable: finished runs are reused, per-video scores are cached per (run, test set) under
``WORK/scores`` and external metrics under ``WORK/external``, so a re-run only computes what is missing.

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
WORK = REPO_ROOT / "out" / "detect_bench128v2"
CORPUS = REPO_ROOT / "out" / "bench128v2"
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
ABLATION_TRAIN = dict(image_size=128, epochs=2, frames_per_item=2)   # blend_cnn at the SBI runs' input size
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
    """The corpus's test items, decoded once per compression (reals as their watermarked twins when
    ``wm_reals``; the plain reals stay at hand for the control), and the external faces, found once."""

    def __init__(self, corpus: Path, external: Path | None, log, wm_reals: bool = True):
        from detect.data import load_manifest

        self.corpus, self.external, self.log, self.wm_reals = corpus, external, log, wm_reals
        self.plain = load_manifest(corpus)
        self.plain["family"] = family_of(self.plain)
        if wm_reals:
            from detect.wm_reals import swap_reals

            self.df = swap_reals(corpus, self.plain)
        else:
            self.df = self.plain
        self._decoded: dict[str, object] = {}                       # corpus path -> Item
        self.faces_cache: dict = {}

    def manifest(self, plain: bool = False):
        return self.plain if plain else self.df

    def items(self, compression: str, plain: bool = False) -> list:
        """Test items at ``compression``; ``plain``: with the corpus's own (unwatermarked) reals."""
        from detect.data import load_items, split_rows

        rows = split_rows(self.manifest(plain), "test")
        rows = rows[rows["compression"].astype(str) == compression]
        todo = rows[~rows["path"].astype(str).isin(self._decoded)]
        if len(todo):
            for it in load_items(self.corpus, todo, None, f"test {compression}", progress=False).items:
                self._decoded[str(it.meta["path"])] = it
        return [self._decoded[p] for p in rows["path"].astype(str) if p in self._decoded]

    def videos(self, items, scores):
        """Per-video scores joined with family and person."""
        import pandas as pd

        meta = self.df.set_index("item_id")
        ids = [it.item_id for it in items]
        return pd.DataFrame({"item_id": ids, "label": [it.label for it in items], "score": scores,
                             "family": meta.loc[ids, "family"].to_numpy(),
                             "source_identity": meta.loc[ids, "source_identity"].to_numpy()})

    def score(self, lr, compression: str, transform=None, tag: str = "", plain: bool = False) -> dict:
        """Family cells of ``lr`` on the test items; per-video scores cached per (run, compression, tag)
        and keyed by file, so items shared by two test sets (the fakes) are scored once."""
        import json

        from detect.metrics import aggregate

        items = self.items(compression, plain)
        cache = _score_cache(lr, compression + (f"-{tag}" if tag else ""))
        stamp = run_stamp(lr)
        known = {}
        if cache.is_file():
            saved = json.loads(cache.read_text())
            known = saved["scores"] if saved.get("run_stamp") == stamp else {}
        todo = [it for it in items if str(it.meta["path"]) not in known]
        for it in todo:
            frames = it.frames if transform is None else transform(it.frames)
            known[str(it.meta["path"])] = float(aggregate(lr.detector.score_clip(frames, it.landmarks), lr.cfg.aggregate))
        if todo:
            write_json_atomic(cache, {"run": str(lr.path), "run_stamp": stamp, "scores": known})
        return family_cells(self.videos(items, [known[str(it.meta["path"])] for it in items]))

    def score_external(self, lr) -> dict | None:
        if self.external is None:
            return None
        import json

        from detect.folder import FolderEvalConfig, evaluate_folder

        out = WORK / "external" / run_key(lr)
        saved = out / "metrics.json"
        stamp = out / "run_stamp.txt"
        if saved.is_file() and stamp.is_file() and stamp.read_text() == run_stamp(lr):
            return external_cells(json.loads(saved.read_text()))
        m = evaluate_folder(lr, self.external, FolderEvalConfig(n_boot=N_BOOT, max_frames=EXTERNAL_FRAMES),
                            out=out, progress=False, faces_cache=self.faces_cache)
        stamp.write_text(run_stamp(lr))
        return external_cells(m)

    def chance(self) -> dict:
        items = self.items(IN_DIST)
        s = np.random.default_rng(0).random(len(items))
        return family_cells(self.videos(items, s))


def _rel(path) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(REPO_ROOT) if p.is_relative_to(REPO_ROOT) else p)


def run_key(lr) -> str:
    from core.common import safe_name

    return safe_name(_rel(lr.path).replace("/", "__"), max_len=150)


def run_stamp(lr) -> str:
    """Changes when the run folder's model is retrained (mtime of its metrics.json)."""
    m = Path(lr.path) / "metrics.json"
    return f"{m.stat().st_mtime_ns}" if m.is_file() else "?"


def _score_cache(lr, tag: str) -> Path:
    from core.common import safe_name

    return WORK / "scores" / run_key(lr) / f"{safe_name(tag)}.json"


def train_run(bench: Bench, name: str, detector: str, filters: list[str], plain: bool = False, **overrides):
    """Train (or reuse, when finished) a run on this state of the corpus: the run folder is keyed by
    the manifest's size and by the reals used (watermarked twins or plain), so a grown corpus trains afresh."""
    from detect.config import DetectConfig
    from detect.score import load_run
    from detect.train import train

    cfg = DetectConfig(detector=detector, filters=tuple(filters), **{**BENCH_TRAIN, **overrides})
    reals = "plainreals" if plain or not bench.wm_reals else "wmreals"
    run = WORK / f"{bench.corpus.name}-{len(bench.df)}files-{reals}" / detector / name
    t0 = time.perf_counter()
    m = train(bench.corpus, run, cfg, progress=False, manifest=bench.manifest(plain))
    info = {"run": _rel(run), "reals": reals, "filters": filters,
            "val_video_auc": m["val"]["video"]["auc"], "n_train_items": m["n_train_items"],
            "train_seconds": round(m.get("train_seconds_this_call", 0.0), 1),
            "seconds_this_call": round(time.perf_counter() - t0, 1)}
    return load_run(run), info


# ---------------------------------------------------------------- studies
def study_detector(bench: Bench, det: str, studies: list[str], log) -> dict:
    r: dict = {"runs": {}}
    trained: dict = {}

    def run(name, filters, **kw):
        if name not in trained:
            trained[name], r["runs"][name] = train_run(bench, name.removesuffix("_plainreals"), det, filters, **kw)
            log(f"  {det} {name}: trained ({r['runs'][name]})")
        return trained[name]

    if "cross_generator" in studies:
        r["cross_generator"] = {}
        for fam, filt in [("all", []), *FAMILIES.items()]:
            lr = run(f"{fam}_{IN_DIST}", filt + [f"compression={IN_DIST}"])
            row = bench.score(lr, IN_DIST)
            ext = bench.score_external(lr)
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
            return clean if f is None else bench.score(lr, "raw", f, tag=f"{kind}={lv}")["all"]

        r["robustness"] = {"base_compression": "raw", "curves": {
            kind: [{"level": lv, **at(kind, lv)} for lv in levels] for kind, levels in ROBUSTNESS.items()}}
        log(f"  robustness {det}: done")
    if "wm_control" in studies and bench.wm_reals:
        wm = run(f"all_{IN_DIST}", [f"compression={IN_DIST}"])
        plain = run(f"all_{IN_DIST}_plainreals", [f"compression={IN_DIST}"], plain=True)
        r["wm_control"] = {"test_reals_watermarked": {"trained_wm_reals": bench.score(wm, IN_DIST)["all"],
                                                      "trained_plain_reals": bench.score(plain, IN_DIST)["all"]},
                           "test_reals_plain": {"trained_wm_reals": bench.score(wm, IN_DIST, plain=True)["all"],
                                                "trained_plain_reals": bench.score(plain, IN_DIST, plain=True)["all"]}}
        log(f"  wm control {det}: " + "; ".join(f"test {t}: " + ", ".join(f"{k} {c['auc']:.3f}" for k, c in row.items())
                                                for t, row in r["wm_control"].items()))
    return r


def ablations(bench: Bench, given: dict[str, str], log) -> dict:
    """A blend-head CNN on our fakes (no self-blended data), and the given runs, on the same cells."""
    from detect.score import load_run

    out = {}
    lr, info = train_run(bench, f"all_{IN_DIST}", "blend_cnn", [f"compression={IN_DIST}"], **ABLATION_TRAIN)
    runs = {"blend_cnn MobileNetV3-Large scratch, our corpus fakes only (no SBI)": (lr, info)}
    for label, path in given.items():
        try:
            runs[label] = (load_run(path), {"run": path})
        except FaceforgeError as e:
            out[label] = {"skipped": str(e)}
    for label, (lr, info) in runs.items():
        row = {"detector": lr.cfg.detector, "extra": dict(lr.cfg.extra), **info, "corpus_c23": bench.score(lr, "c23"),
               "corpus_c40": bench.score(lr, "c40")["all"]}
        ext = bench.score_external(lr)
        if ext:
            row["external"], row["external_family_avg"] = ext["all"], ext["family_average"]
            row["external_by_generator"] = ext["by_generator"]
        out[label] = row
        write_json_atomic(WORK / "ablations_partial.json", out)
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
    ap.add_argument("--studies", default="cross_generator,cross_compression,robustness,wm_control,ablations")
    ap.add_argument("--wm-reals", action=argparse.BooleanOptionalAction, default=True,
                    help="train and test with the reals' watermarked twins (default; see the module doc)")
    ap.add_argument("--note", default="", help="a note stored in the results JSON")
    ap.add_argument("--runs", default="", help="ablation runs: 'label=RUN;label=RUN'")
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
    bench = Bench(corpus, external, log, wm_reals=args.wm_reals)
    studies = args.studies.split(",")
    results = {"corpus": str(corpus), "external": str(external) if external else None, "min_cell": MIN_CELL,
               "n_boot": N_BOOT, "wm_reals": bool(args.wm_reals), "train_config": BENCH_TRAIN,
               "ablation_train_config": {**BENCH_TRAIN, **ABLATION_TRAIN}, "note": args.note,
               "corpus_summary": corpus_summary(bench),
               "baseline_chance": bench.chance(), "detectors": {}}
    out = RESULTS / f"{args.name}.json"
    for det in [d for d in args.detectors.split(",") if d]:
        log(det)
        results["detectors"][det] = study_detector(bench, det, studies, log)
        write_json_atomic(out, results)  # partial results survive an interruption
    if "ablations" in studies:
        given = dict(x.strip().split("=", 1) for x in args.runs.split(";") if "=" in x)
        results["ablations"] = ablations(bench, given, log)
        write_json_atomic(out, results)
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    write_json_atomic(out, results)
    write_report(results, RESULTS, args.name)
    log(f"wrote {out}")
    return results


if __name__ == "__main__":
    from benchmarks import run_script

    run_script(main)
