"""Tables (Markdown) and plots of ``benchmarks/detect_studies.json``: cross-generator and
cross-compression heatmaps, robustness curves, the ablation table. A cell with fewer than
``min_cell`` fake or real videos is marked ``*`` (tables) or hatched (heatmaps)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SMALL = "*"


def fmt(c: dict | None, ci: bool = True) -> str:
    """A cell as ``0.873 [0.81, 0.92] n=356``, marked when small."""
    if not c or c.get("auc") is None or not np.isfinite(c["auc"]):
        return "–"
    text = f"{c['auc']:.3f}"
    lo, hi = c.get("auc_ci95", [None, None])
    if ci and lo is not None and np.isfinite(lo):
        text += f" [{lo:.2f}, {hi:.2f}]"
    text += f" n={c['n']}"
    return text + (SMALL if c.get("small") else "")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def markdown(results: dict) -> str:
    parts = [f"Cells: video AUC [95 % bootstrap interval, people resampled] n = videos; {SMALL} = fewer than "
             f"{results['min_cell']} fake or real videos."]
    s = results.get("corpus_summary", {})
    parts.append(f"Corpus test split: {s.get('test_identities')} people; complete: {s.get('complete')}.")
    if "wm_reals" in results:
        parts.append("Reals: " + ("their watermarked twins (`detect.wm_reals`) in training and in the corpus test cells, "
                                  "so real and fake differ in generation only." if results["wm_reals"]
                                  else "as in the corpus (unwatermarked; every fake is watermarked)."))
    if results.get("note"):
        parts.append(f"Note: {results['note']}")
    for det, r in results["detectors"].items():
        cg = r.get("cross_generator")
        if cg:
            cols = [c for c in ("all", "FF", "FT", "warp", "external", "external_family_avg")
                    if any(c in row for row in cg.values())]
            parts.append(f"**{det}: cross-generator** (train on one family at c23, test at c23 / external)\n\n"
                         + _table(["train \\ test", *cols], [[t, *[fmt(row.get(c)) for c in cols]]
                                                             for t, row in cg.items()]))
        cc = r.get("cross_compression")
        if cc:
            cols = list(next(iter(cc.values())))
            parts.append(f"**{det}: cross-compression** (all families)\n\n"
                         + _table(["train \\ test", *cols], [[t, *[fmt(row[c]) for c in cols]] for t, row in cc.items()]))
        rb = r.get("robustness")
        if rb:
            rows = [[k, ", ".join(f"{p['level']}: {p['auc']:.3f}" for p in pts)] for k, pts in rb["curves"].items()]
            parts.append(f"**{det}: robustness** (c23 model on perturbed raw test clips; video AUC by level)\n\n"
                         + _table(["perturbation", "level: AUC"], rows))
    wc = {d: r["wm_control"] for d, r in results["detectors"].items() if r.get("wm_control")}
    if wc:
        rows = [[d, *[fmt(c[t][m], ci=False) for t in ("test_reals_watermarked", "test_reals_plain")
                      for m in ("trained_wm_reals", "trained_plain_reals")]] for d, c in wc.items()]
        parts.append("**Watermark shortcut control** (all families, c23; every fake carries the watermark)\n\n"
                     + _table(["detector", "test wm reals: trained wm reals", "test wm reals: trained plain reals",
                               "test plain reals: trained wm reals", "test plain reals: trained plain reals"], rows))
    ab = results.get("ablations")
    if ab:
        rows = []
        for label, row in ab.items():
            if "skipped" in row:
                rows.append([label, row["skipped"], "", "", ""])
                continue
            rows.append([label, fmt(row["corpus_c23"]["all"]), fmt(row["corpus_c40"]), fmt(row.get("external")),
                         fmt(row.get("external_family_avg"), ci=True)])
        parts.append("**Ablations** (same test cells)\n\n"
                     + _table(["detector, training data", "corpus c23", "corpus c40", "external", "external, family avg"],
                              rows))
    return "\n\n".join(parts) + "\n"


def _heatmap(ax, mat: dict, title: str) -> None:
    rows = list(mat)
    cols = [c for c in dict.fromkeys(k for row in mat.values() for k in row)]
    cells = [[mat[r].get(c) for c in cols] for r in rows]
    vals = np.array([[np.nan if not c or c.get("auc") is None else c["auc"] for c in row] for row in cells], float)
    ax.imshow(vals, vmin=0.3, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            if c and np.isfinite(vals[i, j]):
                ax.text(j, i, f"{vals[i, j]:.2f}{SMALL if c.get('small') else ''}\nn={c['n']}", ha="center",
                        va="center", color="w", fontsize=6)
    ax.set(title=title, xlabel="test", ylabel="train")


def _save(fig, path: Path, dpi: int) -> None:
    from core.common import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)


def plot_matrices(results: dict, path: Path) -> None:
    from detect.metrics import _figure

    plt = _figure()
    studies = ("cross_generator", "cross_compression")
    dets = [d for d, r in results["detectors"].items() if any(r.get(s) for s in studies)]
    if not dets:
        return
    fig, axes = plt.subplots(len(dets), 2, figsize=(11, 3.4 * len(dets)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6, 1]})
    for row, det in zip(axes, dets):
        for ax, study in zip(row, studies):
            mat = results["detectors"][det].get(study)
            if mat:
                _heatmap(ax, mat, f"{det}: {study.replace('_', '-')} (video AUC)")
            else:
                ax.axis("off")
    fig.suptitle(f"{SMALL}: fewer than {results['min_cell']} fake or real videos", fontsize=8)
    fig.tight_layout()
    _save(fig, path, 100)
    plt.close(fig)


def plot_robustness(results: dict, path: Path) -> None:
    from detect.metrics import _figure

    plt = _figure()
    curves = {d: r["robustness"]["curves"] for d, r in results["detectors"].items() if r.get("robustness")}
    if not curves:
        return
    kinds = list(next(iter(curves.values())))
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.0), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for det, cv in curves.items():
            pts = cv.get(kind, [])
            ax.plot([str(p["level"]) for p in pts], [np.nan if p["auc"] is None else p["auc"] for p in pts], "o-",
                    label=det)
        ax.axhline(0.5, ls=":", color="grey")
        ax.set(title=kind, ylim=(0.3, 1.02), xlabel="level", ylabel="video AUC")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, 110)
    plt.close(fig)


def write_report(results: dict, out_dir: Path, name: str) -> None:
    from core.common import atomic_write

    out_dir = Path(out_dir)
    with atomic_write(out_dir / f"{name}.md", "w") as f:
        f.write(markdown(results))
    plot_matrices(results, out_dir / f"{name}_matrices.png")
    plot_robustness(results, out_dir / f"{name}_robustness.png")
