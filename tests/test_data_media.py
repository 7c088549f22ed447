"""core.media (also forge.data.media): decode (sampling, VFR times, rotation), encode, images, bad input."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from core.common import FaceforgeError
from core.media import read_image, read_video, video_info, write_video


def _marker_clip(n=4, h=16, w=32):
    frames = np.zeros((n, h, w, 3), np.uint8)
    frames[:, :4, :8] = 255          # a white block in the top-left corner
    frames[:, -4:, -8:, 2] = 200     # a blue block bottom-right
    return frames


def test_video_info_and_sampling(sample_video):
    info = video_info(sample_video)
    assert (info["fps"], info["n_frames"], info["width"], info["height"], info["rotation"]) == (25.0, 200, 512, 512, 0)
    assert info["duration"] == pytest.approx(8.0)
    frames = list(read_video(sample_video, every=3, max_frames=4))
    assert [f.index for f in frames] == [0, 3, 6, 9]
    assert [f.time for f in frames] == pytest.approx([0.0, 0.12, 0.24, 0.36])
    assert all(f.image.shape == (512, 512, 3) and f.image.dtype == np.uint8 for f in frames)


def test_write_video_lossless_roundtrip(tmp_path, rng):
    frames = rng.integers(0, 256, (5, 24, 33, 3), dtype=np.uint8)  # odd width: fine for yuv444p
    path = write_video(tmp_path / "clip.mp4", frames, fps=30000 / 1001)
    back = np.stack([f.image for f in read_video(path)])
    assert back.shape == frames.shape
    # crf 0 in yuv444p: only the RGB<->YUV rounding remains
    assert np.abs(back.astype(int) - frames).max() <= 3
    assert video_info(path)["fps"] == pytest.approx(29.97, abs=1e-3)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temp file left


def test_write_video_lossy_pads_odd_sizes(tmp_path):
    frames = _marker_clip(h=15, w=31)
    path = write_video(tmp_path / "clip.mp4", frames, fps=25, crf=23)
    info = video_info(path)
    assert (info["height"], info["width"], info["n_frames"]) == (16, 32, 4)
    back = next(read_video(path)).image
    assert back[:4, :8].mean() > 200 and back[8:12, 12:20].mean() < 30


def test_rotation_side_data_applied(tmp_path):
    frames = _marker_clip()
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = 32, 16, "yuv444p", {"crf": "0"}
        s.set_display_rotation(90)  # display = rotated 90 degrees counter-clockwise
        for i, fr in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(fr, format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    info = video_info(path)
    assert (info["rotation"], info["width"], info["height"]) == (90, 16, 32)
    img = next(read_video(path)).image
    assert img.shape == (32, 16, 3)
    # the top-left marker of the stored frame is bottom-left after a CCW quarter turn
    assert img[-8:, :4].mean() > 200 and img[:8, :4].mean() < 30


def test_variable_frame_rate_times(tmp_path):
    path = tmp_path / "vfr.mp4"
    pts = [0, 1, 3, 7, 8]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for p_ in pts:
            vf = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * p_, np.uint8), format="rgb24")
            vf.pts = p_
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    times = [f.time for f in read_video(path)]
    assert times == pytest.approx([p / 25 for p in pts], abs=1e-3)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_read_image_modes(tmp_path):
    base = np.zeros((20, 30, 3), np.uint8)
    base[:5, :5] = (255, 0, 0)
    # EXIF orientation 6: the viewer rotates 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "exif.jpg").write_bytes(_save(Image.fromarray(base), "JPEG", exif=exif, quality=100))
    img = read_image(tmp_path / "exif.jpg")
    assert img.shape == (30, 20, 3)
    assert img[:5, -5:, 0].mean() > 200  # top-left red block is now top-right
    # grey
    Image.fromarray(np.full((8, 9), 77, np.uint8)).save(tmp_path / "grey.png")
    g = read_image(tmp_path / "grey.png")
    assert g.shape == (8, 9, 3) and (g == 77).all()
    # RGBA: transparent composited over white
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2, :, :] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    a = read_image(tmp_path / "a.png")
    assert (a[:2] == (0, 0, 255)).all() and (a[2:] == 255).all()
    # 16-bit grey PNG: scaled to 8 bits
    Image.fromarray(np.full((4, 4), 65535 // 2, np.uint16)).save(tmp_path / "g16.png")
    g16 = read_image(tmp_path / "g16.png")
    assert g16.dtype == np.uint8 and np.all(np.abs(g16.astype(int) - 127) <= 1)
    # palette
    Image.fromarray(base).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (20, 30, 3)


@pytest.mark.parametrize("kind", ["truncated", "text", "empty", "missing"])
def test_bad_video_is_one_line_error(tmp_path, sample_video, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "truncated":
        path.write_bytes(sample_video.read_bytes()[: 40_000])
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(FaceforgeError) as e:
        list(read_video(path))
    assert "\n" not in str(e.value) and path.name in str(e.value)
    with pytest.raises(FaceforgeError):
        video_info(path)


def test_bad_image_and_bad_write(tmp_path):
    (tmp_path / "x.jpg").write_text("nope")
    with pytest.raises(FaceforgeError, match="cannot read image x.jpg"):
        read_image(tmp_path / "x.jpg")
    with pytest.raises(FaceforgeError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 8, 8, 3), np.float32), 25)
    with pytest.raises(FaceforgeError, match="N, H, W, 3"):
        write_video(tmp_path / "f.mp4", np.zeros((8, 8, 3), np.uint8), 25)
    assert not (tmp_path / "f.mp4").exists()


def test_forge_data_keeps_the_media_names():
    """core.media moved out of forge.data: the old module and forge.data's public names are the same objects."""
    import forge.data
    from core import media
    from forge.data import media as old

    names = ("read_video", "video_info", "read_image", "write_video", "read_frames", "read_media", "VideoFrame")
    assert all(getattr(forge.data, n) is getattr(media, n) is getattr(old, n) for n in names)
    assert old.X264_OPTIONS is media.X264_OPTIONS and old.is_video("a.MOV") and not old.is_image("a.mp4")

