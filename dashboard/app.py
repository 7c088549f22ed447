"""faceforge review dashboard (Streamlit).

Run through the CLI: ``faceforge dashboard --corpus CORPUS [--runs RUNS]``, which calls
``streamlit run dashboard/app.py -- --corpus CORPUS --runs RUNS``. The roots arrive after ``--``.
"""

from __future__ import annotations

import sys

import streamlit as st

from dashboard.data import parse_app_args
from dashboard.views._shared import CFG_KEY
from core.common import FaceforgeError

st.set_page_config(page_title="faceforge review", page_icon=":material/face_retouching_off:", layout="wide")

cfg = parse_app_args(sys.argv[1:])
st.session_state[CFG_KEY] = cfg

PAGES = [
    st.Page("views/corpus.py", title="Corpus", icon=":material/grid_view:", default=True),
    st.Page("views/item.py", title="Item", icon=":material/movie:"),
    st.Page("views/detectors.py", title="Detectors", icon=":material/query_stats:"),
    st.Page("views/check.py", title="Check a file", icon=":material/upload_file:"),
    st.Page("views/review.py", title="Review", icon=":material/rate_review:"),
    st.Page("views/blind.py", title="Blind study", icon=":material/visibility_off:"),
]
page = st.navigation(PAGES)

with st.sidebar:
    st.caption("faceforge · deepfake forensics + provenance")
    st.caption(f"Corpus: `{cfg.corpus or '—'}`")
    st.caption(f"Runs: `{cfg.runs or '—'}`")

try:
    page.run()
except FaceforgeError as e:  # a user-fixable problem (bad corpus file, ...): one line, not a traceback
    st.error(str(e))
