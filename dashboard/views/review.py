"""Review: label items real / fake / unsure with a note; labels persist in SQLite (reviewer, time),
export as CSV, agreement with the ground truth and between reviewers."""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.views import _shared as ui
from dashboard.review import LABELS, ReviewStore, agreement_with_truth, blind_order, inter_reviewer_agreement
from core.common import FaceforgeError

def _go_to(item_id: str) -> None:
    st.session_state["review_item"] = item_id


st.title("Review")
df = ui.manifest()
if df is not None:
    cfg = ui.config()
    store = ReviewStore(cfg.review_db)
    reviewer = ui.reviewer_name("review")
    if not reviewer:
        st.info("Enter your name to start labelling.")
    else:
        mine = store.labels()
        done = set(mine.loc[mine["reviewer"] == reviewer, "item_id"])
        todo_only = st.toggle("Only items I have not labelled", value=False, key="todo_only")
        show_ids = st.toggle("Show item ids (the ids may reveal the answer)", value=False, key="show_ids")
        order = blind_order(df["item_id"].tolist(), reviewer)
        ids = [i for i in order if not (todo_only and i in done)]
        number = {item: k + 1 for k, item in enumerate(order)}
        todo = [i for i in order if i not in done]
        st.caption(f"{len(done)} of {len(order)} items labelled by {reviewer}")
        if todo:
            st.button("Next unlabelled item", key="next_todo", on_click=_go_to, args=(todo[0],))
        if not ids:
            st.success("You have labelled every item.")
        else:
            item_id = st.selectbox("Item", ids, key="review_item",
                                   format_func=lambda i: i if show_ids else f"item #{number[i]}"
                                   + (" (labelled)" if i in done else ""))
            row = data.get_row(df, item_id)
            left, right = st.columns([1, 2])
            with left:
                try:
                    st.video(str(ui.playable(row)), loop=True)
                except FaceforgeError as e:
                    st.warning(f"cannot show {item_id}: {e}")
            with right:
                current = store.label_for(reviewer, item_id)
                if current:
                    st.markdown(f"Your latest label: **{current['label']}** ({current['created_at']})"
                                + (f" — {current['note']}" if current["note"] else ""))
                with st.form("label_form", clear_on_submit=True):
                    label = st.radio("Label", LABELS, horizontal=True, key="label_choice")
                    note = st.text_input("Note (optional)", key="label_note")
                    if st.form_submit_button("Save label"):
                        store.add_label(reviewer, item_id, label, note)
                        st.toast(f"saved: {item_id} = {label}")
                        st.rerun()

    st.subheader("Labels")
    labels = store.labels()
    st.caption(f"{len(labels)} labels by {labels['reviewer'].nunique()} reviewer(s) in `{store.path}`")
    if labels.empty:
        st.info("No labels yet.")
    else:
        st.dataframe(labels, hide_index=True)
        st.download_button("Export CSV", store.labels_csv(), file_name="review_labels.csv", mime="text/csv")
        st.subheader("Agreement with the ground truth")
        st.caption("accuracy and Cohen's kappa on decided labels (real/fake), per reviewer")
        st.dataframe(agreement_with_truth(labels, df), hide_index=True)
        pairs = inter_reviewer_agreement(labels)
        st.subheader("Agreement between reviewers")
        if pairs.empty:
            st.info("One reviewer so far: agreement between reviewers needs two.")
        else:
            st.dataframe(pairs, hide_index=True)
