"""Detectors: the runs found, ROC/PR/reliability curves, metric tables, cross-generator and
cross-compression AUC heatmaps, the worst false positives/negatives linked to their items."""

from __future__ import annotations

import streamlit as st

from dashboard import data, runs
from dashboard.views import _shared as ui
from core.common import FaceforgeError

WORST_K = 5
WORST_THUMB_PX = 56

st.title("Detectors")
cfg = ui.config()
found = ui.detector_runs()
if not found:
    where = f"under `{cfg.runs}`" if cfg.runs else "(no `--runs` given)"
    st.info(f"No detector runs found {where}. Train one with `faceforge detect train`, evaluate it with "
            "`faceforge detect eval`, then start the dashboard with `--runs DRUN`.")
else:
    st.subheader("Metrics")
    st.dataframe(runs.metrics_table(found), hide_index=True)

    names = [r.name for r in found]
    run = found[names.index(st.selectbox("Run", names, key="run"))]
    with st.expander("Run config (config.yaml)"):
        st.json(run.config)
    if not run.evals:
        st.info(f"Run `{run.name}` has no evaluations yet (eval/<name>/).")
    else:
        ev = st.selectbox("Evaluation", list(run.evals), key="eval")
        rel = lambda name: f"{'' if run.name == '.' else run.name + '/'}eval/{ev}/{name}"  # noqa: E731
        cols = st.columns(len(runs.EVAL_IMAGES))
        for col, name in zip(cols, runs.EVAL_IMAGES):
            p = runs.run_file(cfg.runs, rel(name))
            with col:
                if p is None:
                    st.caption(f"({name} missing)")
                else:
                    st.image(str(p), caption=name.removesuffix(".png"))

        breakdowns = runs.eval_breakdowns(run, ev)
        if breakdowns:
            with st.expander("AUC by subgroup (this evaluation's metrics.json)"):
                cols = st.columns(min(3, len(breakdowns)))
                for i, (col, table) in enumerate(breakdowns.items()):
                    cols[i % len(cols)].dataframe(table, hide_index=True)

        scores = ui.scores(run, ev, "videos")
        manifest = ui.manifest(required=False)
        if scores is None:
            st.info("This evaluation has no scores_videos.csv.")
        elif manifest is None:
            st.info("Give `--corpus` to break scores down by generator and compression.")
        else:
            merged = runs.with_truth(scores, manifest)
            st.caption(f"{len(merged)} scored items matched to the manifest "
                       f"({len(scores) - len(merged)} unmatched)")
            st.subheader("AUC by generator × compression")
            ui.heatmap(runs.cross_matrix(merged, "generator", "compression"), f"{run.name} / {ev}")
            if merged["mode"].notna().any():
                st.subheader("AUC by generator × mode")
                ui.heatmap(runs.cross_matrix(merged, "generator", "mode"), f"{run.name} / {ev}")

            st.subheader("Worst mistakes")
            threshold = st.slider("Decision threshold", 0.0, 1.0, 0.5, 0.01, key="threshold")
            fp, fn = runs.worst_errors(merged, WORST_K, threshold)
            c1, c2 = st.columns(2)
            for col, title, table in ((c1, "False positives (real scored fake)", fp),
                                      (c2, "False negatives (fake scored real)", fn)):
                with col:
                    st.markdown(f"**{title}**")
                    if table.empty:
                        st.caption("none at this threshold")
                    for item_id, score, gen, comp in table[["item_id", "score", "generator", "compression"]].itertuples(index=False):
                        thumb, link = st.columns([1, 5], vertical_alignment="center")
                        try:
                            thumb.image(str(ui.thumbnail(data.get_row(manifest, item_id))), width=WORST_THUMB_PX)
                        except FaceforgeError as e:
                            thumb.caption(f"(no thumbnail: {e})")
                        with link:
                            ui.item_link(item_id, f"{item_id} · {score:.3f} · {gen} · {comp}")

st.subheader("Studies")
studies = runs.study_matrices(cfg.results)
if not studies:
    st.info(f"No study results (detect_*.json) in `{cfg.results}`.")
for title, table in studies:
    ui.heatmap(table, title)
curves = runs.study_curves(cfg.results)
if curves:
    st.subheader("Robustness")
    cols = st.columns(3)
    for i, (title, df) in enumerate(curves):
        with cols[i % 3]:
            st.caption(title)
            st.line_chart(df, x="level", y=runs.MATRIX_METRIC, height=200)
