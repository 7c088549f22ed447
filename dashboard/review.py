"""Human review: labels in SQLite, CSV export, agreement, and the blind study (the paper's USER metric).

- ``ReviewStore(path)``: ``labels`` (reviewer, item_id, label real|fake|unsure, note, created_at) and
  ``trials`` (one blind-study answer per row). Every label is kept; the latest per reviewer and item wins.
- ``agreement_with_truth`` / ``inter_reviewer_agreement``: accuracy and Cohen's kappa (scikit-learn).
- ``make_triplet``: two real frames and one synthesized frame of one person, order shuffled.
- ``user_metric``: fraction of correct "which one is fake" picks per generator/mode/T with a Wilson
  95% interval (lower = a more convincing generator; 1/3 is chance).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from dashboard.data import fmt_value, is_missing
from core.common import FaceforgeError, write_bytes_atomic

LABELS = ("real", "fake", "unsure")
CHANCE = 1.0 / 3.0          # a random pick among three images
Z95 = 1.959963984540054     # normal quantile of a two-sided 95% interval
STUDY_COLUMNS = ("generator", "mode", "T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reviewer TEXT NOT NULL,
    item_id TEXT NOT NULL,
    label TEXT NOT NULL CHECK (label IN ('real', 'fake', 'unsure')),
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_item ON labels (item_id, reviewer);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reviewer TEXT NOT NULL,
    identity TEXT,
    fake_item_id TEXT NOT NULL,
    fake_frame INTEGER NOT NULL,
    real_items TEXT NOT NULL,
    order_json TEXT NOT NULL,
    fake_position INTEGER NOT NULL,
    pick INTEGER NOT NULL,
    correct INTEGER NOT NULL,
    generator TEXT,
    mode TEXT,
    T TEXT,
    created_at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _clean_reviewer(reviewer: str) -> str:
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise FaceforgeError("a reviewer name is required")
    if len(reviewer) > 64:
        raise FaceforgeError("reviewer name is too long (64 characters at most)")
    return reviewer


# ---------------------------------------------------------------- blind-study triplets
@dataclass(frozen=True)
class Triplet:
    """One blind-study question: three frames of one person, one of them synthesized.

    ``images[i]`` comes from ``(item_id, frame)`` of ``sources[order[i]]`` where sources are
    ``(fake, real_a, real_b)``; the fake sits at ``order.index(0)``."""
    identity: str
    fake: tuple[str, int]                       # (item_id, frame)
    reals: tuple[tuple[str, int], tuple[str, int]]
    order: tuple[int, int, int]                 # shown position -> source index (0 = fake)
    generator: str
    mode: str
    T: str

    @property
    def fake_position(self) -> int:
        return self.order.index(0)

    @property
    def shown(self) -> list[tuple[str, int]]:
        sources = (self.fake, *self.reals)
        return [sources[i] for i in self.order]


def study_pool(manifest) -> "pd.DataFrame":  # noqa: F821
    """Fake items whose person also has real items (the candidates for triplets)."""
    df = manifest
    if "compression" in df and (df["compression"] == "raw").any():
        df = df[df["compression"] == "raw"]
    real_ids = set(df.loc[df["label"] == "real", "source_identity"].dropna())
    fakes = df[(df["label"] == "fake") & df["source_identity"].isin(real_ids)]
    return fakes


def make_triplet(manifest, rng: np.random.Generator, *, condition: dict | None = None) -> Triplet:
    """Draw a triplet: a fake item (optionally of one ``condition`` {generator, mode, T}), two real
    frames of its source identity (two items when there are two, else two frames of one), shuffled."""
    df = manifest
    if "compression" in df and (df["compression"] == "raw").any():
        df = df[df["compression"] == "raw"]
    fakes = study_pool(df)
    for key, value in (condition or {}).items():
        fakes = fakes[fakes[key].map(fmt_value) == fmt_value(value)]
    if fakes.empty:
        raise FaceforgeError("no fake item with real footage of the same person for a blind-study triplet")
    fake = fakes.iloc[int(rng.integers(len(fakes)))]
    person = fake["source_identity"]
    reals = df[(df["label"] == "real") & (df["source_identity"] == person)]

    def frame_of(row) -> int:
        return int(rng.integers(_n_frames(row)))

    picks = reals.iloc[rng.permutation(len(reals))[:2]]
    if len(picks) == 2:
        real_pairs = ((str(picks.iloc[0]["item_id"]), frame_of(picks.iloc[0])),
                      (str(picks.iloc[1]["item_id"]), frame_of(picks.iloc[1])))
    else:  # one real item: two different frames of it
        row = picks.iloc[0]
        n = _n_frames(row)
        a, b = (rng.choice(n, 2, replace=False) if n >= 2 else (0, 0))
        real_pairs = ((str(row["item_id"]), int(a)), (str(row["item_id"]), int(b)))
    order = tuple(int(i) for i in rng.permutation(3))
    return Triplet(identity=str(person), fake=(str(fake["item_id"]), frame_of(fake)), reals=real_pairs,
                   order=order, generator=fmt_value(fake.get("generator")), mode=fmt_value(fake.get("mode")),
                   T=fmt_value(fake.get("T")))


def _n_frames(row) -> int:
    n = row.get("n_frames")
    return 1 if is_missing(n) else max(1, int(n))


# ---------------------------------------------------------------- the store
class ReviewStore:
    """Review labels and blind-study answers in one SQLite file (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as con:
                con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise FaceforgeError(f"review database {self.path} is unusable: {e}") from None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=10)
        try:
            with con:  # one transaction: committed on success, rolled back on error
                yield con
        finally:
            con.close()

    # labels
    def add_label(self, reviewer: str, item_id: str, label: str, note: str = "") -> None:
        reviewer = _clean_reviewer(reviewer)
        if label not in LABELS:
            raise FaceforgeError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
        with self._connect() as con:
            con.execute("INSERT INTO labels (reviewer, item_id, label, note, created_at) VALUES (?, ?, ?, ?, ?)",
                        (reviewer, str(item_id), label, note or "", _now()))

    def labels(self, latest: bool = True):
        """DataFrame[reviewer, item_id, label, note, created_at]; ``latest``: one row per (reviewer, item)."""
        import pandas as pd

        query = "SELECT id, reviewer, item_id, label, note, created_at FROM labels"
        if latest:
            query += " WHERE id IN (SELECT MAX(id) FROM labels GROUP BY reviewer, item_id)"
        with self._connect() as con:
            df = pd.read_sql_query(query + " ORDER BY id", con)
        return df.drop(columns="id")

    def label_for(self, reviewer: str, item_id: str) -> dict | None:
        with self._connect() as con:
            row = con.execute("SELECT label, note, created_at FROM labels WHERE reviewer = ? AND item_id = ? "
                              "ORDER BY id DESC LIMIT 1", (reviewer, str(item_id))).fetchone()
        return None if row is None else {"label": row[0], "note": row[1], "created_at": row[2]}

    def labels_csv(self, latest: bool = True) -> bytes:
        buf = io.StringIO()
        self.labels(latest).to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
        return buf.getvalue().encode()

    def export_csv(self, path: str | Path, latest: bool = True) -> int:
        """Write the labels as CSV (atomically); returns the number of rows."""
        data = self.labels_csv(latest)
        write_bytes_atomic(path, data)
        return data.count(b"\n") - 1

    # blind study
    def add_trial(self, reviewer: str, triplet: Triplet, pick: int) -> bool:
        """Record which shown position (0..2) the reviewer picked as fake; returns whether it was right."""
        import json

        reviewer = _clean_reviewer(reviewer)
        if pick not in (0, 1, 2):
            raise FaceforgeError(f"pick must be 0, 1 or 2, not {pick!r}")
        correct = pick == triplet.fake_position
        with self._connect() as con:
            con.execute(
                "INSERT INTO trials (reviewer, identity, fake_item_id, fake_frame, real_items, order_json, "
                "fake_position, pick, correct, generator, mode, T, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (reviewer, triplet.identity, triplet.fake[0], triplet.fake[1], json.dumps(triplet.reals),
                 json.dumps(triplet.order), triplet.fake_position, pick, int(correct), triplet.generator,
                 triplet.mode, triplet.T, _now()))
        return correct

    def trials(self):
        import pandas as pd

        with self._connect() as con:
            return pd.read_sql_query("SELECT * FROM trials ORDER BY id", con)


# ---------------------------------------------------------------- statistics
def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (NaNs when n == 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def user_metric(trials, by: tuple[str, ...] = STUDY_COLUMNS):
    """USER per condition: n, correct, rate (fraction of correct fake picks), Wilson 95% CI; plus an
    ``all`` row. DataFrame[*by, n, correct, user, ci_low, ci_high]."""
    import pandas as pd

    cols = [*by, "n", "correct", "user", "ci_low", "ci_high"]
    if trials is None or len(trials) == 0:
        return pd.DataFrame(columns=cols)
    rows = []
    groups = list(trials.groupby(list(by), dropna=False, sort=True)) + [(("all",) * len(by), trials)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        n, k = len(g), int(g["correct"].sum())
        lo, hi = wilson_interval(k, n)
        rows.append({**dict(zip(by, key)), "n": n, "correct": k, "user": k / n, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=cols)


def _kappa(a, b) -> float:
    from sklearn.metrics import cohen_kappa_score

    a, b = list(a), list(b)
    if not a or len(set(a) | set(b)) < 2:
        return float("nan")  # undefined with a single category
    return float(cohen_kappa_score(a, b))


def agreement_with_truth(labels, manifest):
    """Per reviewer: items labelled, decided (not unsure), accuracy and Cohen's kappa vs the manifest
    label on decided items. DataFrame[reviewer, n, n_decided, accuracy, kappa]."""
    import pandas as pd

    cols = ["reviewer", "n", "n_decided", "accuracy", "kappa"]
    if labels is None or len(labels) == 0:
        return pd.DataFrame(columns=cols)
    truth = manifest[["item_id", "label"]].rename(columns={"label": "truth"})
    merged = labels.merge(truth, on="item_id", how="inner")
    rows = []
    for reviewer, g in merged.groupby("reviewer", sort=True):
        decided = g[g["label"] != "unsure"]
        acc = float((decided["label"] == decided["truth"]).mean()) if len(decided) else float("nan")
        rows.append({"reviewer": reviewer, "n": len(g), "n_decided": len(decided), "accuracy": acc,
                     "kappa": _kappa(decided["label"], decided["truth"])})
    return pd.DataFrame(rows, columns=cols)


def inter_reviewer_agreement(labels):
    """Per pair of reviewers: items both labelled, raw agreement and Cohen's kappa (all three labels).
    DataFrame[reviewer_a, reviewer_b, n_common, agreement, kappa]."""
    import pandas as pd

    cols = ["reviewer_a", "reviewer_b", "n_common", "agreement", "kappa"]
    if labels is None or len(labels) == 0:
        return pd.DataFrame(columns=cols)
    wide = labels.pivot_table(index="item_id", columns="reviewer", values="label", aggfunc="last")
    names = sorted(wide.columns)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = wide[[a, b]].dropna()
            agree = float((both[a] == both[b]).mean()) if len(both) else float("nan")
            rows.append({"reviewer_a": a, "reviewer_b": b, "n_common": len(both), "agreement": agree,
                         "kappa": _kappa(both[a], both[b])})
    return pd.DataFrame(rows, columns=cols)


def blind_order(item_ids: list[str], reviewer: str) -> list[str]:
    """Items in an order fixed per reviewer (seeded by the name) and unrelated to how they were made,
    so the list position reveals nothing about the label."""
    import hashlib

    seed = int.from_bytes(hashlib.sha256(reviewer.encode()).digest()[:8], "little")
    return [item_ids[i] for i in np.random.default_rng(seed).permutation(len(item_ids))]
