"""Blind study (the paper's USER metric): three frames of one person, one synthesized; the reviewer
picks the fake. USER = fraction of correct picks per generator / mode / T, with a Wilson 95% CI
(1/3 is chance; lower = the generator fools people more often)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import data, media
from dashboard.views import _shared as ui
from dashboard.review import CHANCE, STUDY_COLUMNS, ReviewStore, make_triplet, study_pool, user_metric
from core.common import FaceforgeError

POSITIONS = ("A", "B", "C")
TRIPLET_KEY = "_triplet"


def _new_triplet(df, condition: dict | None) -> None:
    rng = np.random.default_rng(st.session_state.get("_triplet_seed", None))
    st.session_state[TRIPLET_KEY] = make_triplet(df, rng, condition=condition)


def _frame(df, item_id: str, index: int) -> np.ndarray:
    row = data.get_row(df, item_id)
    frames = ui.frames_of(row, max_frames=index + 1)
    return media.frame_view(frames[min(index, len(frames) - 1)])


def _user_chart(table) -> None:
    """USER per condition as points with Wilson 95% error bars and a chance line."""
    import altair as alt

    t = table.assign(condition=[" / ".join(str(v) for v in r) for r in table[list(STUDY_COLUMNS)].values])
    base = alt.Chart(t).encode(y=alt.Y("condition:N", title=None, sort=None))
    bars = base.mark_errorbar(ticks=True).encode(x=alt.X("ci_low:Q", title="USER (fraction of correct picks)",
                                                         scale=alt.Scale(domain=[0, 1])), x2="ci_high:Q")
    points = base.mark_point(filled=True, size=80).encode(x="user:Q", tooltip=["condition", "n", "user"])
    chance = alt.Chart().mark_rule(strokeDash=[4, 4], color="grey").encode(x=alt.datum(CHANCE))
    st.altair_chart(bars + points + chance, width="stretch")


st.title("Blind study")
df = ui.manifest()
if df is not None:
    cfg = ui.config()
    store = ReviewStore(cfg.review_db)
    pool = study_pool(df)
    reviewer = ui.reviewer_name("blind")
    if pool.empty:
        st.info("No fake item has real footage of the same person: no triplets can be made.")
    elif not reviewer:
        st.info("Enter your name to start. You will see three frames of one person; one is synthesized. "
                "Pick the one you think is fake.")
    else:
        shown = pool[list(STUDY_COLUMNS)].apply(data.display_values)
        conditions = sorted(set(map(tuple, shown.to_numpy())))
        labels = ["any"] + [" / ".join(c) for c in conditions]
        choice = st.selectbox("Condition (generator / mode / T)", labels, key="condition")
        condition = None if choice == "any" else dict(zip(STUDY_COLUMNS, conditions[labels.index(choice) - 1]))
        t = st.session_state.get(TRIPLET_KEY)
        if t is None or st.session_state.get("_triplet_condition") != choice:
            try:
                _new_triplet(df, condition)
            except FaceforgeError as e:
                st.error(str(e))
                st.stop()
            st.session_state["_triplet_condition"] = choice
            t = st.session_state[TRIPLET_KEY]
        cols = st.columns(3)
        try:
            for pos, (col, (item_id, index)) in enumerate(zip(cols, t.shown)):
                with col:
                    st.image(_frame(df, item_id, index), caption=POSITIONS[pos])
                    if st.button(f"{POSITIONS[pos]} is fake", key=f"pick_{pos}", width="stretch"):
                        correct = store.add_trial(reviewer, t, pos)
                        st.session_state["_last_answer"] = (correct, POSITIONS[t.fake_position])
                        _new_triplet(df, condition)
                        st.rerun()
        except FaceforgeError as e:
            st.error(f"cannot show this triplet: {e}")
            if st.button("Draw another triplet"):
                _new_triplet(df, condition)
                st.rerun()
        last = st.session_state.get("_last_answer")
        if last is not None:
            (st.success if last[0] else st.error)(
                f"Last answer: {'correct' if last[0] else 'wrong'} (the fake was {last[1]})")

    st.subheader("USER metric")
    st.caption(f"fraction of correct fake picks with a Wilson 95% interval; chance = {CHANCE:.2f}")
    trials = store.trials()
    if trials.empty:
        st.info("No answers yet.")
    else:
        table = user_metric(trials)
        st.dataframe(table, hide_index=True)
        _user_chart(table)
        st.caption(f"{len(trials)} answers from {trials['reviewer'].nunique()} reviewer(s)")
