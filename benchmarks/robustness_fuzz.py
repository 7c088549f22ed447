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
Part 1 lives in ``robustness_fuzz_verify.py``, part 2 in ``robustness_fuzz_media.py``; this module runs
both and writes the report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .robustness_fuzz_media import fuzz_media, make_broken
from .robustness_fuzz_verify import FORMATS, HANG_S, SIZE, fuzz_verify, make_signed

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
WORK = HERE.parent / "out" / "robustness_fuzz"


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
