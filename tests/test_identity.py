"""faces: dlib's face-recognition ResNet in torch — parity with dlib, alignment, losses, weight cache.

Parity runs on face chips cut by dlib itself from ../shared/data (12 portraits + 2 frames of each of 16
real videos: 28 people, 160-2048 px sources); those tests skip when ../shared is absent.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from core.common import REPO_ROOT, FaceforgeError
from faces.dlib_format import DlibFormatError, _Reader, read_network

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
VIDEOS = ("d0", "d12", "hdtf_rd_radio2", "hdtf_wda_katiehill", "grid_bbaf2n", "grid_swiz3n", "vox2_00010",
          "vox2_id01000", "lrs2_00001", "styletalk_reagan", "mead_w009", "eamm_happy", "latentsync_demo1",
          "dpe_d", "megactor_entf1", "liveportrait_d5")
SECOND_FRAME = 40          # the second chip of each video: ~1.5 s after the first (another pose/expression)
DETECT_MAX_SIDE = 640      # dlib's HOG runs on a copy at most this big; landmarks on the full image
PARITY_L2 = 1e-3


def _dlib_models():
    import dlib

    from faces.landmarks import dlib_models_dir

    root = dlib_models_dir()
    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(root / "shape_predictor_68_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(root / "dlib_face_recognition_resnet_model_v1.dat")))


def _shape(image: np.ndarray, detector, predictor):
    import cv2
    import dlib

    f = min(1.0, DETECT_MAX_SIDE / max(image.shape[:2]))
    small = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else image
    found = detector(small, 1 if max(small.shape[:2]) < 400 else 0)
    if not found:
        return None
    r = max(found, key=lambda d: d.area())
    box = dlib.rectangle(*(int(round(v / f)) for v in (r.left(), r.top(), r.right(), r.bottom())))
    return predictor(image, box)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The machine is shared: one intra-op thread is faster here than two contended ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def faces_data():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return build_faces_data()


def build_faces_data() -> dict:
    """dict(person (N,), images [N uint8 (H, W, 3)], landmarks (N, 68, 2), chips (N, 150, 150, 3) from
    dlib.get_face_chip, dlib (N, 128) = dlib's compute_face_descriptor of each chip)."""
    import dlib

    from core.media import read_image, read_video

    detector, predictor, rec = _dlib_models()
    sources = [(p.stem, read_image(p)) for p in sorted((SHARED_DATA / "portraits").glob("*.jpg"))]
    for name in VIDEOS:
        video = SHARED_DATA / "real_videos" / f"{name}.mp4"
        frames = [fr.image for fr in read_video(video, max_frames=SECOND_FRAME + 1)]
        sources += [(name, frames[0]), (name, frames[-1])]
    person, images, landmarks, chips = [], [], [], []
    for name, image in sources:
        image = np.ascontiguousarray(image)
        shape = _shape(image, detector, predictor)
        if shape is None:
            continue
        person.append(name)
        images.append(image)
        landmarks.append(np.array([(p.x, p.y) for p in shape.parts()], np.float64))
        chips.append(dlib.get_face_chip(image, shape, 150, 0.25))
    ref = np.array([np.array(d) for d in rec.compute_face_descriptor(chips)], np.float32)  # batched, no jitter
    return {"person": np.array(person), "images": images, "landmarks": np.stack(landmarks),
            "chips": np.stack(chips), "dlib": ref}


@pytest.fixture(scope="module")
def net():
    from faces import IdentityNet

    return IdentityNet.load("cpu")


# ---------------------------------------------------------------- dlib's serialisation, by hand
def test_reader_decodes_dlib_integers_floats_bools_and_tensors():
    # ints: header byte = size | 0x80 if negative, then little-endian bytes (4736 = 0x1280)
    r = _Reader(b"\x01\x05" + b"\x81\x05" + b"\x02\x80\x12" + b"\x00")
    assert [r.int(), r.int(), r.int(), r.int()] == [5, -5, 4736, 0]
    # floats: mantissa, exponent; 0xa3d70a * 2^-28 = 0.04 and 0x99999a * 2^-24 = 0.6 (the .dat's loss layer)
    r = _Reader(b"\x03\x0a\xd7\xa3\x81\x1c" + b"\x03\x9a\x99\x99\x81\x18" + b"\x01\x10\x81\x04")
    assert [r.float(), r.float(), r.float()] == pytest.approx([0.04, 0.6, 1.0], abs=1e-7)
    r = _Reader(b"10" + b"\x01\x02\x01\x02\x01\x01\x01\x01\x01\x01" + np.float32([1.5, -2.0]).tobytes())
    assert (r.bool(), r.bool()) == (True, False)
    np.testing.assert_array_equal(r.tensor(), np.float32([1.5, -2.0]).reshape(2, 1, 1, 1))
    with pytest.raises(DlibFormatError, match="truncated"):
        _Reader(b"\x02\x01").int()


def test_read_network_gives_dlibs_layer_sequence():
    from faces.resnet import DlibFaceResNet
    from faces.weights import default_dat_path

    records = read_network(default_dat_path().read_bytes())
    kinds = [r.kind for r in records]
    assert kinds == [k for k, _ in DlibFaceResNet().dlib_layout()]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert records[0].attrs["mean_rgb"] == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    stem = records[1]
    a = stem.attrs
    assert (a["num_filters"], a["nr"], a["stride_y"], a["padding_y"]) == (32, 7, 2, 0)
    assert records[-1].attrs["distance_threshold"] == pytest.approx(0.6)


# ---------------------------------------------------------------- parity with dlib
@needs_shared
def test_descriptors_match_dlib_on_40_real_chips(faces_data, net):
    from faces import chip_descriptors

    chips, ref = faces_data["chips"], faces_data["dlib"]
    assert len(chips) >= 40 and len(set(faces_data["person"])) >= 25
    sizes = [max(im.shape[:2]) for im in faces_data["images"]]
    assert min(sizes) <= 224 and max(sizes) >= 1024                 # small video crops to big portraits
    ours = chip_descriptors(chips, net, batch_size=48)
    err = np.linalg.norm(ours - ref, axis=1)                            # (N,)
    assert err.max() <= PARITY_L2, f"worst chip {faces_data['person'][err.argmax()]}: {err.max():.2e}"
    assert np.linalg.norm(ref, axis=1).min() > 1.0                      # real descriptors, not zeros


@needs_shared
def test_numpy_alignment_is_dlibs_get_face_chip(faces_data):
    from faces import align_face

    for image, lm, chip in zip(faces_data["images"], faces_data["landmarks"], faces_data["chips"]):
        ours = align_face(image, lm)
        diff = np.abs(ours.astype(int) - chip.astype(int))
        assert diff.max() <= 1 and diff.mean() < 1e-3                   # dlib's pyramid + bilinear, truncated


@needs_shared
def test_differentiable_alignment_follows_numpy(faces_data, net):
    from faces import align_face, align_faces_torch, chip_descriptors

    idx = [1, 13, 30]  # a 1145 px portrait (dlib's pyramid) and two video frames
    images, lms = [faces_data["images"][i] for i in idx], faces_data["landmarks"][idx]
    for image, lm in zip(images, lms):
        x = torch.tensor(image).permute(2, 0, 1)[None].float().requires_grad_()
        chip = align_faces_torch(x, torch.from_numpy(lm)[None])            # (1, 3, 150, 150)
        ref = align_face(image, lm)
        diff = np.abs(chip[0].permute(1, 2, 0).detach().numpy() - ref)
        assert np.median(diff) < 1.5 and diff.mean() < 2.5               # rounding, pyramid phase, edges
        ours = chip_descriptors(np.clip(chip.detach().permute(0, 2, 3, 1).numpy(), 0, 255).astype(np.uint8), net)
        assert np.linalg.norm(ours[0] - chip_descriptors(ref[None], net)[0]) < 0.05
        chip.mean().backward()
        assert x.grad.abs().sum() > 0


@needs_shared
def test_face_descriptors_with_landmarks_equal_chip_descriptors(faces_data, net):
    from faces import face_descriptors

    sel = slice(12, 16)
    ours = face_descriptors(faces_data["images"][sel], faces_data["landmarks"][sel], net=net)
    np.testing.assert_allclose(ours, faces_data["dlib"][sel], atol=1e-4)
    blank = face_descriptors([np.zeros((64, 64, 3), np.uint8)], net=net)  # no face -> NaN row
    assert blank.shape == (1, 128) and np.isnan(blank).all()


# ---------------------------------------------------------------- losses
@needs_shared
def test_identity_loss_same_person_below_different_people(faces_data, net):
    from faces import chips_to_tensor, descriptor_distance, identity_loss

    person, chips = faces_data["person"], faces_data["chips"]
    videos = [v for v in VIDEOS if (person == v).sum() == 2]
    first = chips_to_tensor(np.stack([chips[np.flatnonzero(person == v)[0]] for v in videos]))   # (V, 3, 150, 150)
    second = chips_to_tensor(np.stack([chips[np.flatnonzero(person == v)[1]] for v in videos]))
    with torch.no_grad():
        da, db = net(first), net(second)                                # (V, 128) each
    same = descriptor_distance(da, db).numpy()                          # (V,) 1 - cos, two frames of one person
    pairs = list(itertools.permutations(range(len(videos)), 2))
    i, j = (list(x) for x in zip(*pairs))
    other = descriptor_distance(da[i], db[j]).numpy()                   # (V (V-1),) two people
    assert len(videos) >= 12
    assert same.max() < other.min(), (same.max(), other.min())
    assert same.max() < 0.04 and other.min() > 0.06                     # measured: 0.0001-0.035 vs >= 0.063
    with torch.no_grad():
        assert identity_loss(first[:4], second[:4], net).item() == pytest.approx(float(same[:4].mean()), rel=1e-4)
    assert descriptor_distance(da, db, "euclidean").max().item() < 0.6   # dlib's same-person threshold


def test_gradients_flow_to_the_input_chips(net):
    from faces import identity_loss, perceptual_loss

    g = torch.Generator().manual_seed(0)
    a = (torch.rand(1, 3, 150, 150, generator=g) * 255).requires_grad_()
    b = torch.rand(1, 3, 150, 150, generator=g) * 255
    loss = identity_loss(a, b, net) + perceptual_loss(a, b, net)
    loss.backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())               # the shared net stays frozen
    with torch.no_grad():
        assert perceptual_loss(b, b, net).item() == pytest.approx(0.0, abs=1e-6)
        assert identity_loss(b, b, net).item() == pytest.approx(0.0, abs=1e-6)


def test_features_shapes_and_descriptor(net):
    x = torch.full((1, 3, 150, 150), 128.0)
    with torch.no_grad():
        feats = net.features(x)
        shapes = {k: tuple(v.shape[1:]) for k, v in feats.items()}
        assert shapes == {"stem": (32, 35, 35), "stage1": (32, 35, 35), "stage2": (64, 17, 17),
                          "stage3": (128, 8, 8), "stage4": (256, 4, 4), "stage5": (256, 2, 2)}
        assert net(x).shape == (1, 128)


# ---------------------------------------------------------------- weight cache and bad files
def test_weights_are_converted_once_then_read_from_the_cache(tmp_path):
    from faces.weights import load_state_dict

    state, info = load_state_dict(cache_dir=tmp_path)
    assert not info.from_cache and info.cache_file == tmp_path / "dlib_resnet" / f"{info.sha256}.pt"
    assert info.cache_file.is_file()
    again, info2 = load_state_dict(cache_dir=tmp_path)
    assert info2.from_cache and sorted(again) == sorted(state)
    assert all(torch.equal(again[k], state[k]) for k in state)
    info.cache_file.write_bytes(b"torn write")                          # an unreadable cache is rebuilt
    _, info3 = load_state_dict(cache_dir=tmp_path)
    assert not info3.from_cache and load_state_dict(cache_dir=tmp_path)[1].from_cache


def test_shared_network_is_cached_per_device(tmp_path):
    from faces import IdentityNet

    a = IdentityNet.load("cpu", cache_dir=tmp_path)
    assert IdentityNet.load("cpu", cache_dir=tmp_path) is a
    fresh = IdentityNet.load("cpu", cache_dir=tmp_path, shared=False)
    assert fresh is not a and all(p.requires_grad for p in fresh.parameters())
    assert fresh.weights_info.from_cache


def test_missing_or_corrupt_dat_is_one_clear_error(tmp_path):
    from faces.weights import default_dat_path, load_state_dict

    with pytest.raises(FaceforgeError, match="model not found") as missing:
        load_state_dict(tmp_path / "nope.dat", cache_dir=tmp_path)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(default_dat_path().read_bytes()[:1_000_000])
    with pytest.raises(FaceforgeError, match="not a readable dlib face-recognition model.*truncated") as bad:
        load_state_dict(truncated, cache_dir=tmp_path)
    garbage = tmp_path / "garbage.dat"
    garbage.write_bytes(b"\x01\x01\x01\x05con_4" + bytes(64))
    with pytest.raises(FaceforgeError, match="not a readable") as wrong:
        load_state_dict(garbage, cache_dir=tmp_path)
    for e in (missing, bad, wrong):
        assert "\n" not in str(e.value)
    assert not (tmp_path / "dlib_resnet").exists()                     # nothing cached for bad files
