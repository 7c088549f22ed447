"""Dashboard responsiveness on large manifests: the Corpus page at 1k / 10k / 50k items.

    .venv/bin/python -m benchmarks.dashboard_load

For each size, a synthetic manifest (rows cycling over the dashboard's fixture corpus, real files)
is rendered through ``streamlit.testing.v1.AppTest``:
- ``cold``: first render (manifest read, display strings, 24 thumbnails made into the cache);
- ``warm``: a rerun (cached manifest + thumbnails on disk): what a click costs;
- ``filter``: a rerun after changing a filter;
- baseline ``no_memo``: the same rerun with Streamlit's data cache cleared first, i.e. what every
  click would cost without ``st.cache_data`` (thumbnails still on disk).
Writes ``benchmarks/results/dashboard_load.json`` and ``dashboard_load.png``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from core.common import REPO_ROOT, write_json_atomic

RESULTS = REPO_ROOT / "benchmarks" / "results"
APP = REPO_ROOT / "dashboard" / "app.py"
SIZES = (1_000, 10_000, 50_000)
REPEATS = 3  # warm / no-memo reruns timed, median kept


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2]


def measure(root: Path, fixture: Path, n: int) -> dict:
    import pandas as pd
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboard.fixture import synthetic_manifest

    corpus = root / f"corpus_{n}"
    shutil.copytree(fixture, corpus)
    synthetic_manifest(n, pd.read_parquet(fixture / "manifest.parquet")).to_parquet(corpus / "manifest.parquet",
                                                                                     index=False)
    sys.argv = ["app.py", "--corpus", str(corpus), "--cache", str(root / f"cache_{n}"),
                "--db", str(root / f"review_{n}.sqlite")]
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=600)
    t0 = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t0
    assert not at.exception and len(at.image) == 24, "corpus page did not render"

    def timed(prepare=None) -> float:
        if prepare:
            prepare()
        t = time.perf_counter()
        at.run()
        return time.perf_counter() - t

    warm = _median([timed() for _ in range(REPEATS)])
    no_memo = _median([timed(st.cache_data.clear) for _ in range(REPEATS)])
    at.multiselect(key="f_generator").set_value(["warp"])
    filt = timed()
    assert not at.exception
    return {"items": n, "cold_s": cold, "warm_s": warm, "filter_s": filt, "no_memo_s": no_memo,
            "memo_speedup": no_memo / warm if warm > 0 else None}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = [("cold_s", "cold (first render)"), ("no_memo_s", "rerun without st.cache_data (baseline)"),
            ("warm_s", "rerun (cached)"), ("filter_s", "filter change (cached)")]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for i, (k, label) in enumerate(keys):
        ax.bar(x + (i - 1.5) * 0.2, [r[k] for r in rows], 0.2, label=label)
    ax.set_xticks(x, [f"{r['items']:,} items" for r in rows])
    ax.set_ylabel("seconds (Corpus page)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = ap.parse_args(argv)
    from dashboard.fixture import make_fixture_corpus

    rows = []
    with tempfile.TemporaryDirectory(prefix="dash-bench-") as tmp:
        root = Path(tmp)
        fixture = make_fixture_corpus(root / "fixture", size=64, n_frames=6)
        for n in args.sizes:
            row = measure(root, fixture, n)
            print(f"{n:>7,} items: cold {row['cold_s']:.2f} s, rerun {row['warm_s']:.2f} s, "
                  f"filter {row['filter_s']:.2f} s, baseline rerun without cache {row['no_memo_s']:.2f} s", flush=True)
            rows.append(row)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / "dashboard_load.json", {
        "what": "Corpus page render time through AppTest on synthetic manifests (2 shared CPU cores)",
        "baseline": "no_memo_s: rerun with st.cache_data cleared (every click re-reads + re-formats the manifest)",
        "page_size": 24, "repeats": REPEATS, "rows": rows})
    plot(rows, RESULTS / "dashboard_load.png")
    print(f"wrote {RESULTS / 'dashboard_load.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
