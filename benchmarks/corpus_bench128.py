"""The benchmark corpus's card and counts (never the media): what was planned, what was rendered,
the test cells' sizes, and what it cost on this machine.

    .venv/bin/python -m benchmarks.corpus_bench128 [--corpus out/bench128v2]

Reads ``CORPUS/{corpus.json, manifest.parquet, splits.json, parts/*.json}`` (run ``faceforge forge
corpus --out CORPUS --merge`` first) and writes ``benchmarks/results/corpus_bench128.json``:
planned vs rendered videos per split x family, test videos per compression x family (the studies'
cells; >= 50 needed), per-job render seconds by kind (measured in this run, 1 thread, with the
machine's load average), and the estimated time for the whole plan at those rates.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
from pathlib import Path

from core.common import REPO_ROOT, FaceforgeError, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
MIN_CELL = 50


def job_kind(job_id: str) -> str:
    """``fewshot-ft-T8-self-d0-c1`` -> ``fewshot-ft``; ``real-d0`` -> ``real``; ``warp-T1-...`` -> ``warp``."""
    head = job_id.split("-")
    return "real" if head[0] == "real" else "warp" if head[0] == "warp" else "-".join(head[:2])


def family(generator, mode) -> str:
    return str(mode).upper() if generator == "fewshot" else str(generator)


def planned(corpus: Path) -> tuple[dict, list]:
    from forge.corpus.build import plan_corpus
    from forge.corpus.spec import load_spec

    cfg = load_spec(corpus / "spec.yaml")
    _, _, jobs = plan_corpus(corpus, cfg)
    counts: dict = collections.defaultdict(lambda: collections.Counter())
    for j in jobs:
        counts[j.split][family(j.generator, j.mode) if j.label == "fake" else "real"] += 1
    return {s: dict(c) for s, c in counts.items()}, jobs


def timings(corpus: Path, jobs: list) -> dict:
    """Seconds per job kind from the part files (a person's fit is charged to its first job)."""
    secs: dict = collections.defaultdict(list)
    status = collections.Counter()
    for part in (corpus / "parts").glob("*.json"):
        rec = json.loads(part.read_text())
        status[rec.get("status")] += 1
        if rec.get("seconds") is not None and rec.get("status") == "ok":
            secs[job_kind(rec["job_id"])].append(float(rec["seconds"]))
    per = {k: {"jobs": len(v), "seconds": round(sum(v), 1), "mean_s": round(sum(v) / len(v), 3)}
           for k, v in sorted(secs.items())}
    plan_kinds = collections.Counter(job_kind(j.job_id) for j in jobs)
    est = sum(per[k]["mean_s"] * n for k, n in plan_kinds.items() if k in per)
    return {"per_kind": per, "part_status": dict(status), "planned_jobs_per_kind": dict(plan_kinds),
            "estimated_full_plan_hours_one_process": round(est / 3600, 2),
            "note": "measured with 1 thread per process while the 2 cores were shared with other jobs "
                    f"(load average at this write: {os.getloadavg()[0]:.1f}); seconds include signing, the "
                    "four compression variants and verification"}


def main(argv=None) -> dict:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(REPO_ROOT / "out" / "bench128v2"))
    ap.add_argument("--wall", default="", help="free text: the wall-clock spans of the build (from its log)")
    ap.add_argument("--name", default="corpus_bench128", help="results file stem (e.g. for a probe shard)")
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    if not (corpus / "corpus.json").is_file():
        raise FaceforgeError(f"{corpus} has no corpus.json: merge it first (faceforge forge corpus --out {corpus} --merge)")
    card = json.loads((corpus / "corpus.json").read_text())
    df = pd.read_parquet(corpus / "manifest.parquet")
    df["family"] = [family(g, m) if lab == "fake" else "real" for g, m, lab in zip(df["generator"], df["mode"], df["label"])]
    plan_counts, jobs = planned(corpus)
    crops = df[df["compression"] == "raw"]
    rendered = {s: {k: int(v) for k, v in g.groupby("family").size().items()} for s, g in crops.groupby("split")}
    test = df[df["split"] == "test"]
    cells = {c: {k: int(v) for k, v in g.groupby("family").size().items()} for c, g in test.groupby("compression")}
    short = sorted(f"{c}/{k}" for c, row in cells.items() for k, v in row.items() if v < MIN_CELL)
    splits = json.loads((corpus / "splits.json").read_text())
    out = {
        "corpus": card["name"], "spec": "forge/corpus/bench128.yaml", "complete": card["complete"], "jobs": card["jobs"],
        "people": {s: len(v) for s, v in card["splits"].items()}, "splits": card["splits"],
        "forced_test_identities": splits.get("test_identities", []),
        "people_rendered": int(crops["source_identity"].nunique()),
        "videos_planned": plan_counts, "videos_rendered": rendered,
        "test_videos_per_compression_and_family": cells, "test_cells_below_50": short,
        "files": card["counts"]["files"], "errors": card["errors"],
        "checkpoints": {str(k): int(v) for k, v in df.groupby(df["checkpoint_sha256"].fillna("none")).size().items()},
        "render_resolution": {str(k): int(v) for k, v in df.groupby(df["render_resolution"].fillna(-1)).size().items()},
        "timing": timings(corpus, jobs), "wall_clock": args.wall,
        "software": card.get("software"), "merged": card.get("merged"), "created": card.get("created"),
    }
    write_json_atomic(RESULTS / f"{args.name}.json", out)
    print(json.dumps({k: out[k] for k in ("complete", "jobs", "test_videos_per_compression_and_family",
                                          "test_cells_below_50")}, indent=1))
    return out


if __name__ == "__main__":
    from benchmarks import run_script

    run_script(main)
