"""forge.animate + `faceforge forge animate`: reenactment of a portrait from a 10-frame driver."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.common import FaceforgeError

RES = 64
BLANK = (3, 4)       # driver frames with no face


@pytest.fixture(scope="module")
def driver_video(tmp_path_factory, sample_dir):
    """10 frames of a real talking head (downscaled to 256 px), frames 3 and 4 blanked out."""
    import cv2

    from forge.data import read_frames, write_video

    frames = read_frames(sample_dir / "videos" / "d0.mp4", max_frames=10)
    frames = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames])
    for i in BLANK:
        frames[i] = 128
    path = tmp_path_factory.mktemp("drv") / "driver.mp4"
    write_video(path, frames, fps=25.0, crf=10)
    return path


@pytest.fixture(scope="module")
def no_face_image(tmp_path_factory):
    from PIL import Image

    ys, xs = np.mgrid[0:96, 0:96]
    img = np.stack([xs * 2, ys * 2, (xs + ys)], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "wall.jpg"
    Image.fromarray(img).save(path)
    return path


def _cfg(**kw):
    from forge.animate import AnimateConfig

    return AnimateConfig(**{"generator": "warp", "resolution": RES, "backend": "dlib", "crf": None, **kw})


def test_warp_animate_handles_and_reports_faceless_driver_frames(tmp_path, sample_portrait, driver_video):
    from forge.animate import animate
    from forge.data import read_frames

    out = tmp_path / "out.mp4"
    rep = animate(sample_portrait, driver_video, out, _cfg(side_by_side=True))
    assert rep["n_frames"] == 10 and rep["retargeted"] is True
    assert rep["driver_missing_frames"] == list(BLANK)
    frames = read_frames(out)
    assert frames.shape == (10, RES, RES, 3)
    sbs = read_frames(rep["sbs_path"])
    assert sbs.shape == (10, RES, 3 * RES, 3)
    assert np.array_equal(sbs[:, :, 2 * RES:], frames)                  # lossless: the output third
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["config"]["generator"] == "warp" and saved["driver_missing_frames"] == [3, 4]
    # the missing frames were rendered from interpolated landmarks: they look like their neighbours
    d_mid = np.abs(frames[3].astype(int) - frames[2]).mean()
    assert d_mid < 20


def test_retarget_keeps_the_source_face_shape(tmp_path, sample_portrait, driver_video):
    from forge.animate import animate, load_source
    from forge.data import get_detector, read_frames
    from forge.retarget import inter_ocular

    det = get_detector("dlib")
    src = load_source(sample_portrait, _cfg(), RES, det)
    iod_src = float(inter_ocular(src.landmarks[0]))
    res = {}
    for flag in (True, False):
        out = tmp_path / f"rt_{flag}.mp4"
        animate(sample_portrait, driver_video, out, _cfg(retarget=flag), detector=det)
        frames = read_frames(out)
        found = [det.detect(np.repeat(np.repeat(f, 4, 0), 4, 1)) for f in frames[[0, 5, 9]]]
        res[flag] = np.mean([inter_ocular(f[0].landmarks / 4) for f in found if f])
    assert abs(res[True] - iod_src) < abs(res[False] - iod_src)


def test_portrait_without_a_face_is_one_clear_error(tmp_path, no_face_image, driver_video):
    from forge.animate import animate

    with pytest.raises(FaceforgeError, match=r"^source wall\.jpg: no face found"):
        animate(no_face_image, driver_video, tmp_path / "x.mp4", _cfg())
    assert not (tmp_path / "x.mp4").exists()


def test_cli_errors_are_one_line(tmp_path, no_face_image, driver_video, capsys):
    from forge.cli import main

    code = main(["forge", "animate", "--source", str(no_face_image), "--driver", str(driver_video),
                 "--out", str(tmp_path / "x.mp4"), "--generator", "warp", "--backend", "dlib"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"faceforge: error: source wall.jpg: no face found in wall.jpg (1 frames checked)"]


def test_cli_animate_warp(tmp_path, sample_portrait, driver_video, capsys):
    from forge.cli import main

    out = tmp_path / "cli.mp4"
    code = main(["forge", "animate", "--source", str(sample_portrait), "--driver", str(driver_video),
                 "--out", str(out), "--generator", "warp", "--no-retarget", "--expression", "relative",
                 "--resolution", "64",
                 "--backend", "dlib", "--max-frames", "6",
                 "--keys", str(tmp_path / "keys"), "--store", str(tmp_path / "prov.sqlite")])
    text = capsys.readouterr().out
    assert code == 0 and out.exists() and "retarget off" in text and "interpolated): [3, 4]" in text
    assert "C2PA-signed" in text and (tmp_path / "keys" / "signer.key").stat().st_mode & 0o077 == 0

    from provenance.api import verify_file  # the render says what it is

    v = verify_file(out, trust_anchors=tmp_path / "keys" / "ca.pem", store=tmp_path / "prov.sqlite")
    assert v["verdict"] == "trusted" and v["manifest"]["generation"]["generator"] == "warp"


def test_bad_config_values():
    from forge.animate import AnimateConfig

    with pytest.raises(FaceforgeError, match="generator"):
        AnimateConfig(generator="gan")
    with pytest.raises(FaceforgeError, match="mode"):
        AnimateConfig(mode="xx")


def test_fewshot_animate_from_a_portrait_and_from_a_person_file(tmp_path, sample_portrait, driver_video,
                                                                  tiny_talker):
    from forge.animate import animate, load_source
    from forge.data import draw_landmarks, read_frames

    out = tmp_path / "gan.mp4"
    rep = animate(sample_portrait, driver_video, out, _cfg(generator="fewshot", resolution=0), talker=tiny_talker)
    assert rep["resolution"] == 32 and rep["n_frames"] == 10 and rep["retargeted"]
    assert rep["checkpoint_sha256"] == tiny_talker.checkpoint_sha256
    assert rep["driver_missing_frames"] == list(BLANK)
    assert read_frames(out).shape == (10, 32, 32, 3)

    # a fitted person file as the source (no source landmarks stored: retarget falls back, and says so)
    src = load_source(sample_portrait, _cfg(), 32)
    person = tiny_talker.fit(src.frames, np.stack([draw_landmarks(lm, 32) for lm in src.landmarks]), mode="ff")
    person.save(tmp_path / "p.pt")
    rep2 = animate(tmp_path / "p.pt", driver_video, tmp_path / "p.mp4", _cfg(generator="fewshot", resolution=0),
                   talker=tiny_talker)
    assert rep2["source_kind"] == "person" and rep2["n_frames"] == 10
    assert rep2["retargeted"] is False and "no source landmarks" in rep2["retarget_note"]
    with pytest.raises(FaceforgeError, match="person file only works with --generator fewshot"):
        animate(tmp_path / "p.pt", driver_video, tmp_path / "w.mp4", _cfg())
