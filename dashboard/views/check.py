"""Check a file: upload an image or video -> provenance verdict, detector scores, faces found.

The upload is written only to a fresh temporary folder that is deleted after the checks."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

from dashboard import checks, media
from dashboard.views import _shared as ui
from core.common import safe_name

TYPES = [s.lstrip(".") for s in media.VIDEO_SUFFIXES + media.IMAGE_SUFFIXES]
MB = 1 << 20


def check_bytes(name: str, payload: bytes, corpus: Path | None, found_runs, faces: str = "detect") -> dict:
    """Run the three checks on an uploaded file inside a temp folder (removed afterwards). The detectors
    share one faces cache (``detect.score.faces_key``): the file's faces are found once, not once per model."""
    with tempfile.TemporaryDirectory(prefix="faceforge-check-") as tmp:
        base = Path(name.replace("\\", "/")).name  # drop any folder part of the client's file name
        suffix = Path(base).suffix.lower()
        path = Path(tmp) / (safe_name(Path(base).stem, 60) + (suffix if suffix.lstrip(".") in TYPES else ""))
        path.write_bytes(payload)
        found_faces: dict = {}
        scores, problems = (checks.score_with_runs(found_runs, path, faces, faces_cache=found_faces) if found_runs
                            else (None, []))
        return {"name": name, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
                "provenance": checks.provenance_verdict(path, corpus), "scores": scores,
                "default": checks.score_with_default(path, faces, faces_cache=found_faces),
                "score_problems": problems, "faces": checks.find_faces(path)}


st.title("Check a file")
cfg = ui.config()
st.caption(f"Upload an image or a video (at most {cfg.max_upload_mb} MB). It is checked in a temporary "
           "folder and deleted afterwards.")
crop = st.toggle("The file is already a face crop (score it as is, like corpus items)", key="is_crop")
upload = st.file_uploader("Image or video", type=TYPES, max_upload_size=cfg.max_upload_mb, key="upload")
if upload is None:
    st.info("No file uploaded yet.")
else:
    payload = upload.getvalue()
    if len(payload) > cfg.max_upload_mb * MB:
        st.error(f"{upload.name} is {len(payload) / MB:.1f} MB; the limit is {cfg.max_upload_mb} MB.")
        st.stop()
    key = ("check", hashlib.sha256(payload).hexdigest(), crop)
    if st.session_state.get("_check_key") != key:
        with st.spinner("Checking ..."):
            st.session_state["_check_result"] = check_bytes(upload.name, payload, cfg.corpus, ui.detector_runs(),
                                                               "none" if crop else "detect")
        st.session_state["_check_key"] = key
    result = st.session_state["_check_result"]
    st.markdown(f"**{result['name']}** · {result['size'] / 1024:.1f} KiB · sha256 `{result['sha256'][:16]}…`")

    st.subheader("Provenance")
    ui.show_provenance(result["provenance"])

    st.subheader("Default detector")
    default = result.get("default") or {"available": False, "reason": "not run"}
    if not default["available"]:
        st.warning(f"Default detector unavailable: {default['reason']}")
    elif default["row"]["status"] != "ok":
        st.info(f"Not scored ({default['row']['status']}): {default['row']['error']}")
    else:
        row = default["row"]
        st.metric(f"P(fake) · {default['detector']}", f"{row['score']:.2f}", delta=row["label"].upper(),
                  delta_color="inverse" if row["label"] == "fake" else "normal")
        st.caption(f"Calibrated on validation; verdict at P = {row['threshold']:.2f}. "
                   f"{row['n_valid']} of {row['n_frames']} frames had a face. The frames that drove it:")
        st.image([c for _, _, c in default["frames"]],
                 caption=[f"frame {i} · frame score {s:.2f}" for i, s, _ in default["frames"]], width=160)
        if default.get("reliability"):
            st.caption(default["reliability"])

    st.subheader("Detector scores")
    if not cfg.runs:
        st.info("No detector runs given (`--runs`): no scores.")
    elif result["scores"] is not None:
        st.dataframe(result["scores"], hide_index=True)
    for problem in result["score_problems"]:
        st.warning(f"Scoring failed: {problem}")

    st.subheader("Faces found")
    faces = result["faces"]
    if not faces.get("available"):
        st.warning(faces.get("reason"))
    elif faces["n_frames"] == 0:
        st.info(f"No face found: {faces.get('reason')}")
    else:
        st.metric("Frames with a face", f"{faces['n_faces']} / {faces['n_frames']}")
        if faces.get("crops") is not None:
            st.image(list(faces["crops"]), caption=[f"face {i + 1}" for i in range(len(faces["crops"]))], width=160)
