"""Writing ``benchmarks/watermark.py``'s results: the figure, a partial run merged into the results file
(``--merge``), and the printed summary."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def plot(rows: list[dict], path: Path, size: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .watermark_attacks import ATTACKS

    attacks = list(ATTACKS) + [r["attack"] for r in rows if r["attack"].startswith("h264")][:1]
    series = [(m, size) for m in dict.fromkeys(r["method"] for r in rows)] + \
             [(m, s) for s in sorted({r["size"] for r in rows if r["size"] != size})
              for m in dict.fromkeys(r["method"] for r in rows if r["size"] == s)]
    fig, axes = plt.subplots(2, 1, figsize=(13, 7), sharex=True)
    width = 0.8 / len(series)
    for k, (m, s) in enumerate(series):
        sel = {r["attack"]: r for r in rows if r["method"] == m and r["size"] == s}
        xs = np.arange(len(attacks)) + k * width
        for ax, key in zip(axes, ("exact_payload_rate", "bit_accuracy")):
            ax.bar(xs, [sel[a][key] if a in sel else np.nan for a in attacks], width, label=f"{m} @{s}px")
    axes[0].set_ylabel("exact payload rate")
    axes[1].set_ylabel("bit accuracy")
    axes[1].set_ylim(0.4, 1.0)
    axes[1].set_xticks(np.arange(len(attacks)) + 0.4 - width / 2)
    axes[1].set_xticklabels(attacks, rotation=25, ha="right")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.95))
    fig.suptitle("Watermark robustness on real sample frames (higher is better)")
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def merged(old: dict, new: dict, args) -> dict:
    """The previous results with this (partial) run's rows and scans replacing theirs."""
    keys = {(r["method"], r["size"], r["attack"]) for r in new["rows"]}
    rows = [r for r in old.get("rows", []) if (r["method"], r["size"], r["attack"]) not in keys] + new["rows"]
    out = {**old, "rows": rows, "notes": {**old.get("notes", {}), **new["notes"]}}
    if any(m in ("faceforge", "faceforge+store") for m, _, _ in keys):      # the classical rows' configuration
        out["watermark_config"] = new["watermark_config"]
    if new["false_positives"] is not None:
        out["false_positives"] = new["false_positives"]
    out["false_positives_small"] = {**old.get("false_positives_small", {}), **new["false_positives_small"]}
    out["false_positives_learned"] = {**old.get("false_positives_learned", {}), **new["false_positives_learned"]}
    out["false_positives_clips"] = {**old.get("false_positives_clips", {}), **new.get("false_positives_clips", {})}
    refresh = {"date": time.strftime("%Y-%m-%d"), "runtime_s": new["runtime_s"], "rows": len(new["rows"]),
               "argv": " ".join(f"{k}={v}" for k, v in vars(args).items() if v not in (None, False, []))}
    out["partial_refreshes"] = old.get("partial_refreshes", []) + [refresh]
    return out


def report(out: dict, n_store: int) -> None:
    for r in out["rows"]:
        print(f"{r['method']:>23} {r['size']:>4}px {r['attack']:<24} exact {r['exact_payload_rate']:.2f} "
              f"bits {r['bit_accuracy']:.3f} psnr {r.get('psnr_db', '')}")
    scans = ([("classical native", out["false_positives"])] if out.get("false_positives") else []) + \
        [(f"classical {s} px", f) for s, f in out.get("false_positives_small", {}).items()] + \
        [(f"learned {s}", f) for s, f in out.get("false_positives_learned", {}).items()] + \
        [(f"classical {s} px clips", f) for s, f in out.get("false_positives_clips", {}).items()]
    for name, f in scans:
        print(f"false positives ({name}): {f['n_detections']} of {f['n_images']}, min p {f['min_p_value']:.2e}; "
              f"with a store of {n_store:,}: {f['with_store']['n_detections']}, "
              f"min p {f['with_store']['min_p_value']:.2e}")
