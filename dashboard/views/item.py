"""Item: the video playing, source | driver | render side by side, landmark overlay, per-frame
detector scores, the provenance panel and the manifest metadata."""

from __future__ import annotations

import streamlit as st

from dashboard import data, media, runs
from dashboard.views import _shared as ui
from core.common import FaceforgeError

SELECT_LIMIT = 2000  # above this many items the picker is a text box (a 10k-option list is slow)

st.title("Item")
df = ui.manifest()


def _pick_item(df) -> str | None:
    wanted = st.query_params.get("item")
    ids = df["item_id"]
    if len(df) <= SELECT_LIMIT:
        options = ids.tolist()
        index = options.index(wanted) if wanted in options else 0
        chosen = st.selectbox("Item", options, index=index, key="item_select")
    else:
        chosen = st.text_input("Item id", value=wanted or ids.iloc[0], key="item_text").strip()
    if chosen != wanted:
        st.query_params["item"] = chosen
    return chosen


def _video(row: dict, caption: str, overlay: bool) -> None:
    st.caption(caption)
    try:
        st.video(str(ui.playable(row, landmarks=overlay)), loop=True, autoplay=False)
    except FaceforgeError as e:
        st.warning(f"cannot show {row['item_id']}: {e}")


def _still(row: dict, frame: int, overlay: bool, caption: str) -> None:
    try:
        frames = ui.frames_of(row)
        f = min(frame, len(frames) - 1)
        lm = data.load_landmarks(ui.config().corpus, row) if overlay else None
        if overlay and lm is None:
            st.caption("(no landmarks for this item)")
        view = media.frame_view(frames[f], None if lm is None else lm[min(f, len(lm) - 1)])
        st.image(view, caption=f"{caption} · frame {f}")
    except FaceforgeError as e:
        st.warning(f"cannot show {row['item_id']}: {e}")


if df is not None:
    item_id = _pick_item(df)
    try:
        row = data.get_row(df, item_id)
    except FaceforgeError as e:
        st.error(str(e))
        st.stop()
    cfg = ui.config()
    st.markdown(f"### `{row['item_id']}` · **{row['label']}** · {row.get('generator')}"
                + (f" · mode {row['mode']} · T={data.fmt_value(row['T'])}" if row.get("mode") else "")
                + f" · {row.get('compression')}")

    rel = data.related_items(df, row)
    panels = []  # (row, caption): source | driver | render
    if len(rel["source"]):
        panels.append((data.clean_row(rel["source"].iloc[0].to_dict()), f"source · {row.get('source_identity')}"))
    if len(rel["driver"]):
        panels.append((data.clean_row(rel["driver"].iloc[0].to_dict()), f"driver · {row.get('driver_identity')}"))
    panels.append((row, "render" if row["label"] == "fake" else "this item"))
    n = int(row.get("n_frames") or 1)
    c1, c2 = st.columns([1, 3])
    overlay = c1.toggle("Landmark overlay", key="overlay")
    frame = c2.slider("Frame", 0, max(1, n - 1), 0, key="frame") if n > 1 else 0
    cols = st.columns(len(panels))
    for col, (r, caption) in zip(cols, panels):
        with col:
            _video(r, caption, overlay)

    cols = st.columns(len(panels))
    for col, (r, caption) in zip(cols, panels):
        with col:
            _still(r, frame, overlay, caption)

    st.subheader("Detector scores per frame")
    found = ui.detector_runs()
    scores = runs.item_frame_scores(found, row["item_id"], loader=ui.scores) if found else None
    if not found:
        st.info("No detector runs. Start the app with `--runs DRUN` to see scores.")
    elif scores is None or scores.empty:
        st.info("No per-frame scores for this item in the runs found.")
    else:
        wide = scores.pivot_table(index="frame", columns="series", values="score")
        st.line_chart(wide, x_label="frame", y_label="P(fake)")

    st.subheader("Provenance")
    try:
        ui.provenance_panel(data.corpus_file(cfg.corpus, row["path"], "item"), cfg.corpus, row)
    except FaceforgeError as e:
        st.error(f"Provenance not checked: {e}")

    if len(rel["variants"]):
        st.subheader("Other variants of this render")
        for vid, comp in rel["variants"][["item_id", "compression"]].itertuples(index=False):
            ui.item_link(vid, f"{vid} ({comp})")

    st.subheader("Metadata")
    st.dataframe({"field": list(row.keys()), "value": [str(v) for v in row.values()]}, hide_index=True)
