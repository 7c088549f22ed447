"""Helpers shared by the pages: the app's config, cached loaders, empty states, small widgets.

Loaders are keyed on the file's modification time, so a corpus rewritten while the app runs is
re-read, and everything else (manifest, display strings, thumbnails) is computed once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from dashboard import checks, data, media, runs
from dashboard.data import DashboardConfig
from core.common import FaceforgeError

CFG_KEY = "_faceforge_cfg"
ITEM_PAGE = "views/item.py"
HEATMAP_ROW_PX = 40  # heatmap height per row


def config() -> DashboardConfig:
    cfg = st.session_state.get(CFG_KEY)
    return cfg if isinstance(cfg, DashboardConfig) else DashboardConfig()


def _mtime(p: Path) -> int:
    try:
        return p.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


@st.cache_data(show_spinner="Reading the manifest ...", max_entries=4)
def _manifest(corpus: str, mtime: int):
    return data.load_manifest(corpus)


@st.cache_data(show_spinner=False, max_entries=4)
def _display_frame(corpus: str, mtime: int):
    df = _manifest(corpus, mtime)
    return df.apply(data.display_values)  # every column as display strings, for filters


@st.cache_data(show_spinner=False, max_entries=4)
def _counts(corpus: str, mtime: int) -> dict:
    df = _manifest(corpus, mtime)
    return {col: data.counts(df, col) for col in data.COUNT_COLUMNS}


def counts() -> dict:
    """Item counts per value of each ``COUNT_COLUMNS`` column (cached)."""
    cfg = config()
    return _counts(str(cfg.corpus), _mtime(Path(cfg.corpus) / "manifest.parquet"))


@st.cache_data(show_spinner=False, max_entries=4)
def _filter_kinds(corpus: str, mtime: int) -> dict[str, str]:
    return data.filter_kinds(_manifest(corpus, mtime))


def manifest(required: bool = True):
    """The corpus manifest, or None after showing an empty state."""
    cfg = config()
    if cfg.corpus is None:
        if required:
            st.info("No corpus given. Start the app with `faceforge dashboard --corpus CORPUS`.")
        return None
    path = Path(cfg.corpus) / "manifest.parquet"
    try:
        return _manifest(str(cfg.corpus), _mtime(path))
    except FaceforgeError as e:
        st.error(f"Corpus unavailable: {e}")
        return None


def display_frame():
    cfg = config()
    return _display_frame(str(cfg.corpus), _mtime(Path(cfg.corpus) / "manifest.parquet"))


def filter_kinds() -> dict[str, str]:
    cfg = config()
    return _filter_kinds(str(cfg.corpus), _mtime(Path(cfg.corpus) / "manifest.parquet"))


@st.cache_data(show_spinner=False, max_entries=8)
def _runs(root: str, stamp: int):
    return runs.find_runs(root)


def detector_runs() -> list[runs.RunInfo]:
    cfg = config()
    if cfg.runs is None:
        return []
    return _runs(str(cfg.runs), _tree_stamp(Path(cfg.runs)))


def _tree_stamp(root: Path) -> int:
    """Changes when a run folder is added or a metrics/scores file rewritten (two levels deep)."""
    if not root.is_dir():
        return 0
    stamp = _mtime(root)
    for p in list(root.glob("*")) + list(root.glob("*/*")) + list(root.glob("*/eval/*")):
        stamp ^= _mtime(p)
    return stamp


@st.cache_data(show_spinner="Reading scores ...", max_entries=16)
def _score_csv(path: str, mtime: int):
    import pandas as pd

    return runs.normalize_scores(pd.read_csv(path))


def scores(run: runs.RunInfo, eval_name: str, kind: str = "videos"):
    """``eval/<name>/scores_<kind>.csv`` of a run, normalized and cached; None when absent."""
    p = run.path / "eval" / eval_name / f"scores_{kind}.csv"
    return _score_csv(str(p), _mtime(p)) if p.is_file() else None


@st.cache_data(show_spinner=False, max_entries=64)
def item_frames(path: str, mtime: int, max_frames: int | None = None) -> np.ndarray:
    return media.read_frames(path, max_frames=max_frames)


def frames_of(row: dict, max_frames: int | None = None) -> np.ndarray:
    p = data.corpus_file(config().corpus, row.get("path"), "item")
    return item_frames(str(p), _mtime(p), max_frames)


@st.cache_data(show_spinner=False, max_entries=256)
def _verdict(path: str, mtime: int, corpus: str | None) -> dict:
    return checks.provenance_verdict(path, corpus)


def verdict(path: Path, corpus: Path | None) -> dict:
    return _verdict(str(path), _mtime(path), None if corpus is None else str(corpus))


def thumbnail(row: dict) -> Path:
    cfg = config()
    return media.thumbnail(cfg.corpus, row, cfg.cache_dir, cfg.thumb_size)


def playable(row: dict, landmarks: bool = False) -> Path:
    cfg = config()
    return media.playable_video(cfg.corpus, row, cfg.cache_dir, landmarks=landmarks)


def reviewer_name(page: str) -> str:
    """The reviewer name box of ``page``; the name carries over between pages (a widget's own state
    lives only while its page is shown)."""
    name = st.text_input("Reviewer name", value=st.session_state.get("_reviewer_name", ""),
                         key=f"reviewer_{page}").strip()
    st.session_state["_reviewer_name"] = name
    return name


def item_link(item_id: str, label: str | None = None) -> None:
    st.page_link(ITEM_PAGE, label=label or item_id, query_params={"item": item_id}, icon=":material/movie:")


def heatmap(table, title: str, value: str = "AUC"):
    """An annotated heatmap (Altair) of a (rows x cols) numeric table."""
    import altair as alt

    long = table.rename_axis(index="row", columns="col").stack(future_stack=True).reset_index(name="value")
    long["text"] = long["value"].map(lambda v: "–" if v != v else f"{v:.2f}")
    base = alt.Chart(long, title=title).encode(
        x=alt.X("col:N", title=table.columns.name or ""), y=alt.Y("row:N", title=table.index.name or ""))
    rect = base.mark_rect().encode(color=alt.Color("value:Q", title=value, scale=alt.Scale(domain=[0, 1],
                                                                                         scheme="viridis")))
    text = base.mark_text(fontSize=13).encode(text="text:N", color=alt.value("white"))
    st.altair_chart((rect + text).properties(height=alt.Step(HEATMAP_ROW_PX)), width="stretch")


def provenance_panel(path: Path, corpus: Path | None, row: dict | None = None) -> dict:
    """The provenance of a corpus file (cached verification), shown with :func:`show_provenance`."""
    result = verdict(path, corpus)
    show_provenance(result, row)
    return result


def show_provenance(result: dict, row: dict | None = None) -> None:
    """Verdict, manifest assertions, validation codes, watermark payload and confidence."""
    if not result.get("available"):
        st.warning(f"Provenance unavailable: {result.get('reason', 'unknown reason')}")
        if row is not None:
            st.caption(f"Manifest says: c2pa_signed={row.get('c2pa_signed')}, "
                       f"watermark_payload={row.get('watermark_payload')}, "
                       f"provenance_status={row.get('provenance_status')}")
        return result
    verdict_ = result.get("verdict", "unknown")
    icon = {"trusted": ":material/verified:", "valid_untrusted": ":material/gpp_maybe:",
            "tampered": ":material/gpp_bad:", "stripped_recovered": ":material/restore:",
            "watermark_only": ":material/water_drop:", "none": ":material/help:"}.get(verdict_, ":material/info:")
    st.markdown(f"**Verdict:** {icon} `{verdict_}`" + (f" — {result['reason']}" if result.get("reason") else ""))
    wm = result.get("watermark") or {}
    if isinstance(wm, dict) and wm:
        c1, c2, c3 = st.columns(3)
        c1.metric("Watermark payload", str(wm["payload"]) if wm.get("payload") else "not detected")
        conf, p = wm.get("confidence"), wm.get("p_value")
        c2.metric("Watermark confidence", "—" if conf is None else f"{float(conf):.3f}")
        c3.metric("p-value", "—" if p is None else f"{float(p):.1e}")
        expected = (row or {}).get("watermark_payload")
        if expected and wm.get("payload"):
            same = str(expected).lower().removeprefix("0x") == str(wm["payload"]).lower().removeprefix("0x")
            (st.caption if same else st.warning)(
                f"decoded payload {'matches' if same else 'differs from'} the manifest's ({expected})")
        elif expected:
            st.caption(f"the manifest lists payload {expected}; it was not decoded from these pixels")
    manifest = result.get("manifest")
    if isinstance(manifest, dict) and manifest:
        with st.expander("Manifest assertions"):
            st.json(manifest)
    validation = result.get("validation")
    if validation:
        with st.expander(f"Validation codes ({validation.get('state', '?') if isinstance(validation, dict) else '?'})"):
            st.json(validation)
    for warning in result.get("warnings") or []:
        st.caption(f"warning: {warning}")
    with st.expander("Full verification result"):
        st.json({k: v for k, v in result.items() if jsonable(v)})


def jsonable(v) -> bool:
    import json

    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False
