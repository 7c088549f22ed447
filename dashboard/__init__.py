"""faceforge.dashboard — the Streamlit review app, the main job and its report."""
