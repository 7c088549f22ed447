"""Corpus: counts by split/label/generator/mode/T/compression, filters on every column, thumbnails."""

from __future__ import annotations

import streamlit as st

from dashboard import data
from dashboard.views import _shared as ui
from core.common import FaceforgeError

GRID_COLUMNS = 6
TABLE_ROWS = 2_000  # rows sent to the browser's table (the grid pages through all of them)

st.title("Corpus")
df = ui.manifest()
if df is not None:
    cfg = ui.config()
    card = data.load_card(cfg.corpus)
    errors = data.load_errors(cfg.corpus)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Items", f"{len(df):,}")
    c2.metric("Fake", f"{int((df['label'] == 'fake').sum()):,}")
    c3.metric("Identities", f"{df['source_identity'].nunique():,}")
    c4.metric("Skipped sources", 0 if errors is None else len(errors))
    if card:
        with st.expander("Corpus card (corpus.json)"):
            st.json(card)
    if errors is not None and len(errors):
        with st.expander(f"Skipped sources ({len(errors)}, errors.parquet)"):
            st.dataframe(errors, hide_index=True)

    st.subheader("Counts")
    cols = st.columns(3)
    for i, (col, table) in enumerate(ui.counts().items()):
        with cols[i % 3]:
            st.caption(f"by {col}")
            st.bar_chart(table, x=col, y="count", height=180)

    st.subheader("Filter")
    shown = ui.display_frame()
    kinds = ui.filter_kinds()
    choices, text = {}, {}
    with st.expander("Filters (every manifest column)", expanded=False):
        fcols = st.columns(4)
        for i, col in enumerate(df.columns):
            with fcols[i % 4]:
                if kinds[col] == "choice":
                    choices[col] = st.multiselect(col, sorted(shown[col].unique()), key=f"f_{col}")
                else:
                    text[col] = st.text_input(f"{col} contains", key=f"t_{col}")
    mask = data.apply_filters(shown, choices, text).index
    filtered = df.loc[mask]
    st.caption(f"{len(filtered):,} of {len(df):,} items match")
    st.dataframe(filtered.head(TABLE_ROWS), hide_index=True, height=240)
    if len(filtered) > TABLE_ROWS:
        st.caption(f"table shows the first {TABLE_ROWS:,}; narrow the filters or page through the thumbnails")

    st.subheader("Thumbnails")
    n_pages = max(1, -(-len(filtered) // cfg.page_size))
    page = st.number_input(f"Page (of {n_pages})", min_value=1, max_value=n_pages, value=1, key="grid_page")
    rows, _ = data.page_slice(filtered, int(page), cfg.page_size)
    grid = st.columns(GRID_COLUMNS)
    for i, row in enumerate(rows.to_dict("records")):
        row = data.clean_row(row)
        with grid[i % GRID_COLUMNS]:
            try:
                st.image(str(ui.thumbnail(row)), caption=row["item_id"], width="stretch")
            except FaceforgeError as e:
                st.caption(f"(no thumbnail: {e})")
            ui.item_link(row["item_id"], f"{row['label']} · {row.get('generator')} · {row.get('compression')}")
