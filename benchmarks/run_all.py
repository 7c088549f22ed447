"""Run every benchmark script and refresh the result files the README quotes.

    python -m benchmarks.run_all [--only NAME ...] [--skip NAME ...]

Each ``benchmarks/<name>.py`` runs as its own process (``python -m benchmarks.<name>``) and writes
``benchmarks/results/<name>.json`` (+ PNGs); this script records which ran, how long, and whether it
succeeded in ``benchmarks/results/run_all.json``. A failing benchmark is reported and the rest go on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# cheap first; the ones that need the sample corpus (built by corpus_speed) after it
ORDER = ["prepare", "provenance_speed", "watermark", "forge_speed", "forge_eval", "corpus_speed", "detect_studies"]


def discover() -> list[str]:
    found = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in ("__init__", "run_all"))
    return [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]


def main(argv: list[str] | None = None) -> int:
    from core.common import write_json_atomic
    from core.processes import run_forwarding

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--skip", nargs="*", default=[])
    args = ap.parse_args(argv)
    names = [n for n in discover() if (args.only is None or n in args.only) and n not in args.skip]
    rows = []
    for name in names:
        print(f"== benchmarks.{name}", flush=True)
        t0 = time.perf_counter()
        rc = run_forwarding([sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent)  # no orphan on SIGTERM
        rows.append({"benchmark": name, "returncode": rc, "seconds": round(time.perf_counter() - t0, 1),
                     "result": f"benchmarks/results/{name}.json"})
        print(f"== {name}: {'ok' if rc == 0 else f'FAILED ({rc})'} in {rows[-1]['seconds']} s", flush=True)
    write_json_atomic(HERE / "results" / "run_all.json", {"runs": rows})
    failed = [r["benchmark"] for r in rows if r["returncode"] != 0]
    print(f"{len(rows) - len(failed)} ok, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
