"""The field's detection metrics as pure functions (scikit-learn underneath) and their plots.

Convention: ``y`` is 1 for fake, 0 for real; ``s`` is a score in [0, 1] where higher means "more
likely fake" (a probability for log loss and calibration). Metrics that need both classes return
``nan`` when only one is present, instead of raising in the middle of a report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PROB_EPS = 1e-6          # clip probabilities before log loss (a 0/1 score would be an infinite loss)
DEFAULT_ECE_BINS = 10    # equal-width confidence bins for ECE and the reliability diagram
AGGREGATES = ("mean", "median", "max", "top25")


def _arrays(y, s) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.int64).ravel()
    s = np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in length")
    return y, s


def _two_classes(y: np.ndarray) -> bool:
    return y.size > 0 and 0 < int(y.sum()) < y.size


def auc(y, s) -> float:
    """Area under the ROC curve (probability a random fake outscores a random real)."""
    from sklearn.metrics import roc_auc_score

    y, s = _arrays(y, s)
    return float(roc_auc_score(y, s)) if _two_classes(y) else float("nan")


def average_precision(y, s) -> float:
    """Area under the precision-recall curve, step-wise (fake = positive class)."""
    from sklearn.metrics import average_precision_score

    y, s = _arrays(y, s)
    return float(average_precision_score(y, s)) if _two_classes(y) else float("nan")


def eer(y, s) -> tuple[float, float]:
    """Equal error rate and its threshold: the ROC point where FPR == FNR (linear interpolation
    between the two ROC points that bracket the crossing)."""
    from sklearn.metrics import roc_curve

    y, s = _arrays(y, s)
    if not _two_classes(y):
        return float("nan"), float("nan")
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    fnr = 1.0 - tpr
    diff = fpr - fnr                      # increasing along the curve: <0 before the crossing
    i = int(np.argmax(diff >= 0))         # first point at/after the crossing
    if i == 0 or diff[i] == 0:
        t = thr[i] if np.isfinite(thr[i]) else 1.0
        return float(fpr[i]), float(t)
    d0, d1 = diff[i - 1], diff[i]
    w = d0 / (d0 - d1)                    # where the straight segment crosses zero
    rate = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
    t0 = thr[i - 1] if np.isfinite(thr[i - 1]) else 1.0
    return float(rate), float(t0 + w * (thr[i] - t0))


def calibrate_threshold(y, s) -> float:
    """The decision threshold that maximises balanced accuracy on (validation) scores.

    Candidates are midpoints between consecutive distinct scores, so the threshold generalises
    rather than sitting exactly on a validation sample. 0.5 when one class is missing."""
    y, s = _arrays(y, s)
    if not _two_classes(y):
        return 0.5
    u = np.unique(s)
    cands = np.concatenate([[u[0] - 1e-9], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-9]])  # (K,)
    pred = s[None, :] >= cands[:, None]                                           # (K, N)
    tpr = (pred & (y == 1)).sum(1) / (y == 1).sum()
    tnr = (~pred & (y == 0)).sum(1) / (y == 0).sum()
    return float(cands[int(np.argmax(tpr + tnr))])


def accuracy_at(y, s, threshold: float) -> float:
    y, s = _arrays(y, s)
    return float(np.mean((s >= threshold).astype(np.int64) == y)) if y.size else float("nan")


def balanced_accuracy_at(y, s, threshold: float) -> float:
    y, s = _arrays(y, s)
    if not _two_classes(y):
        return float("nan")
    pred = s >= threshold
    return float(0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean()))


def log_loss(y, p) -> float:
    """Mean binary cross-entropy of probabilities ``p`` (clipped to [eps, 1-eps])."""
    y, p = _arrays(y, p)
    if not y.size:
        return float("nan")
    p = np.clip(p, PROB_EPS, 1 - PROB_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def reliability(y, p, n_bins: int = DEFAULT_ECE_BINS) -> dict[str, np.ndarray]:
    """Per-bin counts, mean predicted probability and observed fake rate (equal-width bins on
    P(fake), the last bin closed at 1)."""
    y, p = _arrays(y, p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)  # (N,) bin of each sample
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    conf = np.bincount(idx, weights=p, minlength=n_bins)
    pos = np.bincount(idx, weights=y.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"edges": edges, "count": count,
                "confidence": np.where(count > 0, conf / np.maximum(count, 1), np.nan),
                "frequency": np.where(count > 0, pos / np.maximum(count, 1), np.nan)}


def ece(y, p, n_bins: int = DEFAULT_ECE_BINS) -> float:
    """Expected calibration error: sum over bins of |observed fake rate - mean P(fake)| weighted
    by the bin's share of samples."""
    r = reliability(y, p, n_bins)
    n = r["count"].sum()
    if n == 0:
        return float("nan")
    gap = np.abs(np.nan_to_num(r["frequency"] - r["confidence"]))
    return float(np.sum(gap * r["count"]) / n)


def aggregate(scores, how: str = "mean") -> float:
    """One video score from its frame scores."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if not s.size:
        return float("nan")
    if how == "mean":
        return float(s.mean())
    if how == "median":
        return float(np.median(s))
    if how == "max":
        return float(s.max())
    if how == "top25":  # mean of the most suspicious quarter of frames
        k = max(1, int(np.ceil(0.25 * s.size)))
        return float(np.sort(s)[-k:].mean())
    raise ValueError(f"unknown aggregate {how!r}; choose from {', '.join(AGGREGATES)}")


def summary(y, s, threshold: float) -> dict[str, float]:
    """Every scalar metric of one set of scores, with a threshold calibrated elsewhere (val)."""
    y, s = _arrays(y, s)
    e, e_thr = eer(y, s)
    return {"n": int(y.size), "n_fake": int(y.sum()), "n_real": int(y.size - y.sum()),
            "auc": auc(y, s), "ap": average_precision(y, s), "eer": e, "eer_threshold": e_thr,
            "threshold": float(threshold), "accuracy": accuracy_at(y, s, threshold),
            "balanced_accuracy": balanced_accuracy_at(y, s, threshold),
            "log_loss": log_loss(y, s), "ece": ece(y, s)}


# ---------------------------------------------------------------- uncertainty and family averages
DEFAULT_BOOTSTRAP = 1000    # resamples for percentile intervals
CI_LEVEL = 0.95


def rank_auc(y, s) -> float:
    """AUC as the Mann-Whitney statistic on mid-ranks: equal to ``auc`` (ties count a half) and
    fast enough to call thousands of times in a bootstrap."""
    from scipy.stats import rankdata

    y, s = _arrays(y, s)
    if not _two_classes(y):
        return float("nan")
    n1 = int(y.sum())
    n0 = y.size - n1
    r = rankdata(s)                                        # (N,) mid-ranks, 1-based
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def family_masks(y, families) -> dict[str, np.ndarray]:
    """Per fake family (``families[i]`` of each fake; reals' entries are ignored), sorted by name: the
    boolean mask of that family's fakes and all the reals."""
    y = np.asarray(y, dtype=np.int64).ravel()
    fam = np.asarray(families, dtype=object).ravel().astype(str)
    real = y == 0
    return {f: real | ((y == 1) & (fam == f)) for f in sorted({str(v) for v in fam[y == 1]})}


def family_auc(y, s, families) -> dict[str, float]:
    """AUC of each fake family against all the reals (``family_masks``)."""
    y, s = _arrays(y, s)
    return {f: rank_auc(y[m], s[m]) for f, m in family_masks(y, families).items()}


def average_family_auc(y, s, families) -> float:
    """The mean over fake families of each family's AUC against all reals (every family weighs the
    same, however many clips it has); nan without reals or fakes."""
    vals = [v for v in family_auc(y, s, families).values() if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _groups(idx: np.ndarray, clusters: np.ndarray | None) -> list[np.ndarray] | None:
    """The members of ``idx`` per cluster (sorted cluster keys), found once per bootstrap."""
    if clusters is None:
        return None
    return [idx[clusters[idx] == k] for k in np.unique(clusters[idx])]


def _resample(rng: np.random.Generator, idx: np.ndarray, groups: list[np.ndarray] | None) -> np.ndarray:
    """Indices drawn with replacement from ``idx``; with ``groups`` (``_groups``), whole clusters are drawn."""
    if groups is None:
        return rng.choice(idx, size=idx.size, replace=True)
    pick = rng.choice(len(groups), size=len(groups), replace=True)
    return np.concatenate([groups[k] for k in pick])


def bootstrap_ci(y, s, statistic=None, *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                 level: float = CI_LEVEL, clusters=None, families=None) -> dict[str, float]:
    """Percentile bootstrap interval of ``statistic(y, s)`` (default: AUC, as ``rank_auc``).

    Reals and fakes are resampled separately (stratified: every resample has both classes, in the
    original numbers). ``clusters`` (e.g. the source video or person of each clip) resamples whole
    clusters, for clips that are not independent. With ``families``, ``statistic`` is called as
    ``statistic(y, s, families)`` (e.g. ``average_family_auc``). Returns ``{"value", "low",
    "high", "n_boot", "seed"}``; nan bounds when a class is missing."""
    stat = rank_auc if statistic is None else statistic
    y, s = _arrays(y, s)
    fam = None if families is None else np.asarray(families, dtype=object).ravel()
    cl = None if clusters is None else np.asarray(clusters, dtype=object).ravel().astype(str)

    def value(ix):
        return stat(y[ix], s[ix]) if fam is None else stat(y[ix], s[ix], fam[ix])

    point = value(np.arange(y.size))
    out = {"value": float(point), "low": float("nan"), "high": float("nan"), "n_boot": int(n_boot), "seed": int(seed)}
    if not _two_classes(y) or n_boot < 1:
        return out
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    g_pos, g_neg = _groups(pos, cl), _groups(neg, cl)
    vals = np.array([value(np.concatenate([_resample(rng, neg, g_neg), _resample(rng, pos, g_pos)]))
                     for _ in range(int(n_boot))])                                # (n_boot,)
    vals = vals[np.isfinite(vals)]
    if vals.size:
        a = (1.0 - level) / 2
        out["low"], out["high"] = (float(v) for v in np.quantile(vals, [a, 1 - a]))
    return out


# ---------------------------------------------------------------- plots
def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    from core.common import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    return Path(path)


def plot_roc(curves: dict[str, tuple], path: str | Path, title: str = "ROC") -> Path:
    """``curves``: label -> (y, s). One ROC curve per label, AUC in the legend."""
    from sklearn.metrics import roc_curve

    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for label, (y, s) in curves.items():
        y, s = _arrays(y, s)
        if _two_classes(y):
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, label=f"{label} (AUC {auc(y, s):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    path = _save(fig, path)
    plt.close(fig)
    return path


def plot_pr(curves: dict[str, tuple], path: str | Path, title: str = "Precision-recall (fake = positive)") -> Path:
    from sklearn.metrics import precision_recall_curve

    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for label, (y, s) in curves.items():
        y, s = _arrays(y, s)
        if _two_classes(y):
            prec, rec, _ = precision_recall_curve(y, s)
            ax.step(rec, prec, where="post", label=f"{label} (AP {average_precision(y, s):.3f})")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left", fontsize=8)
    path = _save(fig, path)
    plt.close(fig)
    return path


def plot_reliability(curves: dict[str, tuple], path: str | Path, n_bins: int = DEFAULT_ECE_BINS) -> Path:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for label, (y, p) in curves.items():
        r = reliability(y, p, n_bins)
        ok = r["count"] > 0
        ax.plot(r["confidence"][ok], r["frequency"][ok], "o-", label=f"{label} (ECE {ece(y, p, n_bins):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(xlabel="mean predicted P(fake)", ylabel="observed fake rate", title="Reliability",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper left", fontsize=8)
    path = _save(fig, path)
    plt.close(fig)
    return path
