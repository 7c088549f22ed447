"""Corpus rendering speed (items/s) on this machine, per item kind, against a baseline measured in
the same run.

Baseline: real items only (cut the clip + write raw/c23/c40/jpeg; no generator, no provenance) --
the I/O floor every corpus pays. Then the warp baseline and the few-shot GAN (FF, T = 8), each with
watermark + C2PA signing of all four variants, with and without build-time verification. All runs
share one source extraction (copied in), so the numbers are per render job (= one item in four
compression variants). The machine is shared: wall-clock rates are given with the CPU time of this
process and the load average, and ``items_per_cpu_s`` is the steadier number.

    .venv/bin/python -m benchmarks.corpus_speed
writes benchmarks/results/corpus_speed.json
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from core.common import SAMPLE_DIR, write_json_atomic

RESULTS = Path(__file__).parent / "results" / "corpus_speed.json"
SOURCES = ("hdtf_wda_katiehill", "hdtf_rd_radio2", "d0")  # 3 identities, 64 px, 16-frame clips
FT_STEPS = 5  # as in the default spec


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _spec(sources=SOURCES, **kw):
    from forge.corpus.spec import CorpusConfig

    base = dict(name="bench", sources=tuple(str(SAMPLE_DIR / "videos" / f"{v}.mp4") for v in sources),
                clip_frames=16, generators=(), split_ratios=(1.0, 0.0, 0.0), seed=0)
    base.update(kw)
    return CorpusConfig(**base)


def _run(name: str, spec, root: Path, sources_cache: Path | None) -> dict:
    from forge.corpus import build_corpus

    out = root / name
    if sources_cache is not None:
        shutil.copytree(sources_cache, out / "sources")
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    report = build_corpus(out, spec, progress=False)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    fakes = report.jobs_rendered - len(spec.sources)
    return {
        "name": name, "jobs": report.jobs_rendered, "fake_jobs": fakes, "files": report.files_written,
        "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
        "items_per_s": round(report.jobs_rendered / wall, 3),
        "items_per_cpu_s": round(report.jobs_rendered / cpu, 3) if cpu > 0 else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> dict:
    from forge.corpus.build import plan_corpus
    from forge.corpus.spec import GeneratorSpec, load_spec

    results = []
    with tempfile.TemporaryDirectory(prefix="corpus_speed_") as tmp:
        root = Path(tmp)
        # baseline: reals only (also extracts the sources once; the extraction is timed separately)
        t0 = time.perf_counter()
        from forge.corpus.build import SourceBank
        from forge.corpus.spec import list_sources

        warm = _spec()
        bank = SourceBank(root / "extract", warm)
        for s in list_sources(warm):
            bank.get(s)
        extract_s = time.perf_counter() - t0
        cache = root / "extract" / "sources"
        _run("warm_up", _spec(verify=False), root, cache)  # first-call imports (PyAV, pandas) not timed
        results.append(_run("baseline_reals_only", _spec(verify=False), root, cache))
        warp = (GeneratorSpec("warp", reenactment=("self",)),)
        ff = (GeneratorSpec("fewshot", "ff", (8,), ("self",)),)
        results.append(_run("warp_signed", _spec(generators=warp, verify=False), root, cache))
        results.append(_run("warp_signed_verified", _spec(generators=warp, verify=True), root, cache))
        results.append(_run("fewshot_ff_T8_signed", _spec(generators=ff, verify=False), root, cache))
        results.append(_run("fewshot_ff_T8_signed_verified", _spec(generators=ff, verify=True), root, cache))
        ft = (GeneratorSpec("fewshot", "ft", (8,), ("self",), steps=FT_STEPS),)
        results.append(_run(f"fewshot_ft_T8_{FT_STEPS}steps_signed_verified",
                            _spec(SOURCES[:1], generators=ft, verify=True), root, cache))
        default_jobs = plan_corpus(root / "plan", load_spec())[2]
    base = results[0]
    per_fake, cpu_per_fake = {}, {}
    for r in results[1:]:  # seconds per fake job, the reals' share removed
        reals = r["jobs"] - r["fake_jobs"]
        per_fake[r["name"]] = round((r["seconds"] - base["seconds"] / base["jobs"] * reals) / r["fake_jobs"], 2)
        cpu_per_fake[r["name"]] = round((r["cpu_seconds"] - base["cpu_seconds"] / base["jobs"] * reals)
                                        / r["fake_jobs"], 2)
    # the default spec's CPU time predicted from the per-item costs (FF cross ~ FF self; warp ~ warp self)
    kinds = {"real": base["cpu_seconds"] / base["jobs"], "warp": cpu_per_fake["warp_signed_verified"],
             "ff": cpu_per_fake["fewshot_ff_T8_signed_verified"],
             "ft": cpu_per_fake[f"fewshot_ft_T8_{FT_STEPS}steps_signed_verified"]}
    mix = {"real": 0, "warp": 0, "ff": 0, "ft": 0}
    for j in default_jobs:
        mix["real" if j.label == "real" else "warp" if j.generator == "warp" else j.mode] += 1
    predicted = sum(kinds[k] * n for k, n in mix.items())
    card = Path("out/sample_corpus/corpus.json")
    actual = json.loads(card.read_text()).get("last_build") if card.exists() else None
    out = {
        "benchmark": "corpus_speed",
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "note": ("shared 2-core machine: wall-clock rates depend on the load average; items = render jobs "
                 "(one clip in raw/c23/c40/jpeg); GPU not lent to this task"),
        "resolution": 64, "clip_frames": 16, "sources": list(SOURCES),
        "source_extraction_seconds": round(extract_s, 2),
        "runs": results,
        "seconds_per_fake_item": per_fake,
        "slowdown_vs_reals_baseline": {r["name"]: round(r["seconds"] / r["jobs"] / (base["seconds"] / base["jobs"]), 2)
                                       for r in results[1:]},
        "cpu_seconds_per_fake_item": cpu_per_fake,
        "default_spec": {
            "jobs": len(default_jobs), "mix": mix,
            "predicted_cpu_seconds": round(predicted, 1),
            "predicted_items_per_cpu_s": round(len(default_jobs) / predicted, 3),
            "actual_run_out_sample_corpus": actual,  # wall clock on the shared machine (load ~15 then)
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS, out)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
