"""forge prepare: input discovery, cache contents, bad inputs, resume after interruption, CLI."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from forge.cli import main
from core.common import FaceforgeError
from forge.data import prepare as prepare_mod
from forge.data.cache import FLAG_NO_FACE, FLAG_TRACKED, PreparedCache
from core.media import read_frames, write_video
from forge.data.prepare import PrepareConfig, discover_inputs, prepare

CFG = PrepareConfig(resolution=64, backend="dlib", every=2, max_frames=4)
HOSTILE = "we\u0131rd name; rm -rf \u00fc\n(1)"


def _short(src, dst, size=192, n=8):
    import cv2

    frames = read_frames(src, max_frames=n)
    frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    return write_video(dst, frames, fps=25, crf=20)


@pytest.fixture(scope="module")
def tree(tmp_path_factory, sample_dir):
    """A mixed input folder: plain videos, a VoxCeleb2-style tree, an identity folder of images,
    hostile names, and bad files."""
    root = tmp_path_factory.mktemp("inputs")
    videos = sample_dir / "videos"
    _short(videos / "hdtf_wda_katiehill.mp4", root / "katie.mp4")
    _short(videos / "d18.mp4", root / f"{HOSTILE}.mp4")
    (root / "id0001" / "yt_abc").mkdir(parents=True)
    _short(videos / "d12.mp4", root / "id0001" / "yt_abc" / "00001.mp4")
    (root / "alice").mkdir()
    shutil.copy(sample_dir / "portraits" / "s42.jpg", root / "alice" / "p 1.jpg")
    (root / "truncated.mp4").write_bytes((videos / "d0.mp4").read_bytes()[:30_000])
    (root / "notes.mp4").write_text("not a video at all\n")
    from PIL import Image

    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(root / "noface.jpg")
    (root / "readme.txt").write_text("ignored")
    (root / ".hidden.mp4").write_text("ignored")
    return root


@pytest.fixture(scope="module")
def cache(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "c"
    report = prepare([tree], out, CFG, progress=False)
    return PreparedCache(out), report


def test_discover_inputs(tree, tmp_path):
    items = {it.video_id: it for it in discover_inputs([tree])}
    assert set(items) == {"katie", "we_rd_name__rm_-rf____1_", "id0001__yt_abc__00001", "alice__p_1",
                          "truncated", "notes", "noface"}
    assert items["id0001__yt_abc__00001"].identity == "id0001"     # VoxCeleb2: identity from the folder
    assert items["alice__p_1"].identity == "alice" and items["alice__p_1"].kind == "image"
    assert items["katie"].identity == "katie"                       # a file on its own is its own identity
    # names that collide once sanitised stay unique
    (tmp_path / "a b.mp4").write_bytes(b"x")
    (tmp_path / "a_b.mp4").write_bytes(b"x")
    ids = [it.video_id for it in discover_inputs([tmp_path])]
    assert len(set(ids)) == 2 and "a_b" in ids
    with pytest.raises(FaceforgeError, match="input not found"):
        discover_inputs([tmp_path / "missing"])


def test_cache_contents(cache):
    c, report = cache
    v = c.videos.set_index("video_id")
    assert v.loc["katie", "status"] == "ok" and v.loc["katie", "n_frames"] == 4
    assert v.loc["alice__p_1", "status"] == "ok" and v.loc["alice__p_1", "n_frames"] == 1
    assert v.loc["noface", "status"] == "no_face"
    for bad in ("truncated", "notes"):
        assert v.loc[bad, "status"] == "error" and "cannot read video" in v.loc[bad, "error"]
    assert report["n_ok"] == 4 and len(report["failed"]) == 3 and report["backend"] == "dlib"
    assert c.resolution == 64 and c.config.backend == "dlib"
    assert c.identities() == sorted(["katie", "we_rd_name__rm_-rf____1_", "id0001", "alice"])
    assert c.videos_of("id0001") == ["id0001__yt_abc__00001"]

    idx = c.index
    assert len(idx) == 3 * 4 + 1
    katie = idx[idx.video_id == "katie"]
    assert katie.frame.tolist() == [0, 1, 2, 3] and katie.frame_index.tolist() == [0, 2, 4, 6]
    assert katie.time.tolist() == pytest.approx([0.0, 0.08, 0.16, 0.24])
    lms = np.stack(idx.landmarks.to_numpy())                       # (13, 136)
    assert lms.shape == (13, 136) and (lms > 0).all() and (lms < 64).all()
    boxes = np.stack(idx.crop_box.to_numpy())
    assert np.allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert idx.valid.all() and ((idx["flags"] & FLAG_NO_FACE) == 0).all() and (idx.backend == "dlib").all()
    assert (idx.score > 0).all()

    frames, landmarks = c.load("katie")
    assert frames.shape == (4, 64, 64, 3) and frames.dtype == np.uint8 and landmarks.shape == (4, 68, 2)
    assert np.allclose(landmarks.reshape(4, 136), lms[katie.index.to_numpy()])
    li = c.landmark_images("katie")
    assert li.shape == (4, 64, 64, 3) and li.max() == 255
    assert c.load("katie", frames=[3])[0].shape == (1, 64, 64, 3)
    with pytest.raises(FaceforgeError, match="has 4 frames"):
        c.load("katie", frames=[4])
    with pytest.raises(FaceforgeError, match="no frames"):
        c.load("noface")
    sheet = c.preview()
    assert sheet.shape == (2 * 64, 4 * 64, 3) and sheet.max() == 255     # 4 videos: 2 rows of 2 tiles
    assert (c.root / "preview.png").is_file()
    # compact: JPEG crops, a few KB a frame
    assert c.size_bytes() < 200_000


def test_resume_after_interruption(tree, cache, tmp_path, monkeypatch):
    out = tmp_path / "c"
    real = prepare_mod.process_item
    calls = []

    def flaky(item, out_, cfg):
        calls.append(item.video_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user hits Ctrl-C while the third file is in work
        return real(item, out_, cfg)

    monkeypatch.setattr(prepare_mod, "process_item", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare([tree], out, CFG, progress=False)
    assert not (out / "index.parquet").exists()
    # a crash in the middle of a write leaves a temp file; it must not count as done
    (out / "videos" / ".katie.abc.tmp.parquet").write_bytes(b"partial")
    monkeypatch.setattr(prepare_mod, "process_item", real)
    report = prepare([tree], out, CFG, progress=False)
    assert report["n_skipped_done"] == 2 and report["n_ok"] == 4
    assert not list((out / "videos").glob(".*tmp*"))
    # the resumed cache equals the one made in one go (deterministic)
    first, resumed = cache[0], PreparedCache(out)
    pd.testing.assert_frame_equal(first.index.drop(columns=["landmarks", "source_landmarks", "crop_box", "bbox"]),
                                  resumed.index.drop(columns=["landmarks", "source_landmarks", "crop_box", "bbox"]))
    assert np.array_equal(np.stack(first.index.landmarks.to_numpy()), np.stack(resumed.index.landmarks.to_numpy()))
    assert np.array_equal(first.load("katie")[0], resumed.load("katie")[0])
    # a third run has nothing left to do
    again = prepare([tree], out, CFG, progress=False)
    assert again["n_skipped_done"] == 7
    # a file changed since (size/mtime) is prepared again
    st = (tree / "katie.mp4").stat()
    os.utime(tree / "katie.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert prepare([tree], out, CFG, progress=False)["n_skipped_done"] == 6
    # other settings into the same cache are refused
    with pytest.raises(FaceforgeError, match="other settings"):
        prepare([tree], out, PrepareConfig(resolution=128, backend="dlib", every=2, max_frames=4), progress=False)


def test_parallel_workers_same_result(tree, cache, tmp_path):
    files = [tree / "katie.mp4", tree / "alice" / "p 1.jpg", tree / "notes.mp4"]
    cfg = PrepareConfig(resolution=64, backend="dlib", every=2, max_frames=4, workers=2)
    report = prepare(files, tmp_path / "c", cfg, progress=False)
    assert (report["n_ok"], len(report["failed"])) == (2, 1)
    c = PreparedCache(tmp_path / "c")
    # single files: the identity is the file name
    assert c.video_ids() == ["katie", "p_1"]
    assert np.array_equal(c.load("katie")[0], cache[0].load("katie")[0])


def test_cli(tree, tmp_path, capsys):
    assert main(["forge", "prepare", str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("faceforge: error: input not found") and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["forge", "prepare", str(tree), "--out", str(tmp_path / "c"), "--resolution", "100"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["forge", "prepare", str(tree), "--out", str(tmp_path / "c"), "--every", "0"])
    capsys.readouterr()
    assert main(["forge", "prepare", str(tree), "--out", str(tmp_path / "c"), "--backend", "face-alignment",
                 "--fan-weights", str(tmp_path / "nope.pth"), "--s3fd-weights", str(tmp_path / "nope2.pth")]) == 2
    err = capsys.readouterr().err
    assert "face-alignment backend unavailable" in err and err.count("\n") == 1
    rc = main(["forge", "prepare", str(tree / "katie.mp4"), str(tree / "notes.mp4"), "--out", str(tmp_path / "c"),
               "--backend", "dlib", "--every", "3", "--max-frames", "2", "--detect-every", "2", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "prepared 1/2 files" in out and "skipped" in out and "notes.mp4" in out
    c = PreparedCache(tmp_path / "c")
    assert c.config.detect_every == 2 and c.index.frame_index.tolist() == [0, 3]
    assert ((c.index["flags"] & FLAG_TRACKED) > 0).tolist() == [False, True]  # frame 3 tracked, not detected


def test_few_faces_and_multi_face_flags(sample_dir, tmp_path):
    """Frames without a face are flagged and filled in; a video mostly without a face is 'few_faces';
    with two faces one is kept (the same one in every frame) and the frame flagged."""
    import cv2

    from forge.data.cache import FLAG_MULTI_FACE

    face = cv2.resize(read_frames(sample_dir / "videos" / "d12.mp4", max_frames=1)[0], (192, 192))
    two = np.zeros((192, 350, 3), np.uint8)
    two[:, :192] = face
    two[21:171, 200:350] = cv2.resize(face, (150, 150))
    frames = np.stack([np.zeros_like(two)] * 5 + [two] * 3)
    path = write_video(tmp_path / "mostly_empty.mp4", frames, fps=25, crf=18)
    report = prepare([path], tmp_path / "c", PrepareConfig(resolution=64, backend="dlib"), progress=False)
    c = PreparedCache(tmp_path / "c")
    assert report["n_ok"] == 0 and c.video_ids() == [] and c.video_ids(status="few_faces") == ["mostly_empty"]
    assert c.videos.error[0] == "face in only 3/8 frames"
    idx = c.index
    assert idx.valid.tolist() == [False] * 5 + [True] * 3
    assert ((idx["flags"] & FLAG_NO_FACE) > 0).tolist() == [True] * 5 + [False] * 3
    assert idx.n_faces.tolist()[5:] == [2, 2, 2] and ((idx["flags"][5:] & FLAG_MULTI_FACE) > 0).all()
    src = np.stack(idx.source_landmarks.to_numpy()).reshape(-1, 68, 2)
    sides = src[5:, :, 0].mean(1) < 196                # which face each frame kept: always the same
    assert sides.all() or not sides.any()
    assert np.allclose(src[0], src[5], atol=3)         # frames before the face take its landmarks
