"""forge corpus end to end on a tiny spec: real sample videos (6-frame, 64 px clips), the shipped
talker (FF + one-step FT), the warp baseline, two bad sources; provenance and files checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.common import sha256_file
from forge.corpus import build_corpus, load_manifest, read_item_frames
from forge.corpus.build import PARTS, merge_corpus
from forge.corpus.manifest import MANIFEST_COLUMNS, read_item_landmarks
from forge.corpus.spec import CorpusConfig, GeneratorSpec

GOOD = ("hdtf_wda_katiehill", "hdtf_rd_radio2", "d0")


def _bad_sources(folder: Path) -> list[str]:
    from core.media import write_video

    x = np.linspace(0, 255, 64)
    plain = np.stack([np.stack([np.add.outer(x, x + i) / 2] * 3, -1) for i in range(12)]).astype(np.uint8)
    write_video(folder / "noface.mp4", plain, 25.0)                     # decodes, but no face in it
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))  # not a video
    return [str(folder / "noface.mp4"), str(folder / "broken.mp4")]


def tiny_spec(sample_dir: Path, bad: list[str], **kw) -> CorpusConfig:
    base = dict(
        name="tiny",
        sources=tuple(str(sample_dir / "videos" / f"{v}.mp4") for v in GOOD) + tuple(bad),
        clip_frames=6,
        generators=(GeneratorSpec("fewshot", "ff", (2,), ("self", "cross"), (False, True)),
                    GeneratorSpec("warp", reenactment=("self",))),  # FT: test_ft_fit_is_cached_per_fit_key
        split_ratios=(0.6, 0.0, 0.4),
        seed=0,
    )
    base.update(kw)
    return CorpusConfig(**base)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, sample_dir):
    root = tmp_path_factory.mktemp("corpus")
    bad = _bad_sources(root)
    out = root / "C"
    report = build_corpus(out, tiny_spec(sample_dir, bad), progress=False)
    return out, report


def test_builds_end_to_end_and_records_bad_sources(corpus):
    out, report = corpus
    assert report.merged and report.card["complete"]
    assert report.jobs_rendered > 0 and report.jobs_failed == 0 and report.jobs_already_done == 0
    errors = __import__("pandas").read_parquet(out / "errors.parquet")
    assert sorted(errors["source_id"]) == ["broken", "noface"]
    assert set(errors["stage"]) == {"source"}
    assert errors.set_index("source_id").loc["noface", "reason"].startswith("no face found")
    df = load_manifest(out)
    assert set(df["source_id"]) | set(df["driver_id"]) == set(GOOD)  # the run went on without them
    # every planned job is accounted for: rendered, or skipped because its source/driver was bad
    parts = [json.loads(p.read_text()) for p in (out / PARTS).glob("*.json")]
    assert len(parts) == report.jobs_planned
    assert {p["status"] for p in parts} == {"ok", "skipped"}
    assert sum(p["status"] == "ok" for p in parts) == report.jobs_rendered
    for p in parts:
        if p["status"] == "skipped":
            assert "broken" in p["reason"] or "noface" in p["reason"]


def test_manifest_columns_and_counts_match_files(corpus):
    out, report = corpus
    df = load_manifest(out)
    assert list(df.columns[:len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    assert df["item_id"].is_unique and len(df) == report.files_written
    on_disk = {str(p.relative_to(out)) for p in (out / "items").rglob("*") if p.is_file()
               and p.name != "landmarks.npy"}
    assert on_disk == set(df["path"])
    assert not list(out.rglob(".*.tmp*")) and not list(out.rglob(".unsigned.*"))  # no leftovers
    for row in df.itertuples():
        assert sha256_file(out / row.path) == row.sha256
    for row in df[df["compression"] == "raw"].itertuples():  # raw: exact size; landmarks per frame
        frames = read_item_frames(out, row)
        assert frames.shape == (row.n_frames, 64, 64, 3) == (6, 64, 64, 3)
        assert read_item_landmarks(out, row).shape == (6, 68, 2)
    card = json.loads((out / "corpus.json").read_text())
    assert card["counts"]["files"] == len(df) and card["counts"]["groups"] == df["group_id"].nunique()
    by = card["counts"]["files_by_split_label_generator"]
    assert sum(n for s in by.values() for lab in s.values() for n in lab.values()) == len(df)
    assert card["spec"]["clip_frames"] == 6 and card["software"]["numpy"] == np.__version__
    assert card["jobs"]["missing"] == 0 and "created" in card


def test_compression_variants_for_reals_and_fakes(corpus):
    out, _ = corpus
    df = load_manifest(out)
    per_group = df.groupby("group_id")["compression"].apply(set)
    assert (per_group == {"raw", "c23", "c40", "jpeg"}).all()
    assert set(df["label"]) == {"real", "fake"}
    assert {"real", "fewshot", "warp"} == set(df["generator"])
    assert {("ff", "self"), ("ff", "cross")} <= set(
        zip(df.loc[df.generator == "fewshot", "mode"], df.loc[df.generator == "fewshot", "reenactment"]))
    assert df.loc[df.reenactment == "cross", "retarget"].nunique() == 2
    assert (df.loc[df.compression == "jpeg", "path"].str.endswith(".mov")).all()
    # real rows of one clip: same length and crop as the self-reenacted fakes of that person
    real = df[(df.label == "real") & (df.compression == "raw")].iloc[0]
    fake = df[(df.source_id == real.source_id) & (df.reenactment == "self") & (df.compression == "raw")].iloc[0]
    assert real.driver_clip == fake.driver_clip and real.n_frames == fake.n_frames
    np.testing.assert_allclose(read_item_landmarks(out, real), read_item_landmarks(out, fake))


def test_splits_identity_disjoint(corpus):
    out, _ = corpus
    df = load_manifest(out)
    splits = json.loads((out / "splits.json").read_text())["identities"]
    people = {}
    for row in df.itertuples():
        for ident in (row.source_identity, row.driver_identity):
            people.setdefault(ident, set()).add(row.split)
            assert splits[ident] == row.split
    assert all(len(s) == 1 for s in people.values())


def test_every_fake_is_signed_watermarked_and_verifies(corpus):
    from provenance.api import verify_file
    from provenance.keys import load_identity
    from provenance.watermark import decode

    out, _ = corpus
    df = load_manifest(out)
    fakes, reals = df[df.label == "fake"], df[df.label == "real"]
    assert fakes["c2pa_signed"].all() and fakes["watermarked"].all()
    assert not reals["c2pa_signed"].any() and not reals["watermarked"].any()
    assert reals["watermark_payload"].isna().all()
    assert set(fakes["provenance_status"]) == {"trusted"}       # verified at build time
    assert set(reals["provenance_status"]) == {"none"}
    assert (fakes.groupby("group_id")["watermark_payload"].nunique() == 1).all()  # variants share it
    assert fakes.drop_duplicates("group_id")["watermark_payload"].is_unique
    key_dir = out / "keys"
    assert (key_dir / "signer.key").stat().st_mode & 0o077 == 0
    anchors = load_identity(key_dir).trust_anchor_pem()
    for row in fakes[fakes.compression.isin(["raw", "c40"])].itertuples():
        res = verify_file(out / row.path, trust_anchors=anchors, decode_watermark=False)
        assert res["verdict"] == "trusted", (row.path, res["reason"])
        # the manifest binds the payload embedded in the pixels (c2pa.soft-binding)
        assert res["manifest"]["soft_binding"]["payload"] == row.watermark_payload
    for row in reals[reals.compression == "raw"].itertuples():
        assert not decode(read_item_frames(out, row)).detected


def test_variants_signed_as_transcodes_of_their_raw(corpus):
    from provenance import c2pa_io

    out, _ = corpus
    df = load_manifest(out)
    row = df[(df.label == "fake") & (df.compression == "c40")].iloc[0]
    active = c2pa_io.read(out / row.path).active
    text = json.dumps(active)
    assert "c2pa.transcoded" in text and "raw.mp4" in text
    raw = c2pa_io.read(out / row.path.replace("c40.mp4", "raw.mp4")).active
    raw_text = json.dumps(raw)
    assert "c2pa.created" in raw_text and "c2pa.watermarked" in raw_text
    assert Path(row.source_id).name in raw_text  # the source video is an ingredient


def test_resume_renders_nothing_twice(corpus, sample_dir):
    out, first = corpus
    stamps = {p: p.stat().st_mtime_ns for p in (out / "items").rglob("*.mp4")}
    again = build_corpus(out, progress=False)  # the corpus's own spec.yaml
    assert again.jobs_rendered == 0 and again.jobs_already_done == first.jobs_planned
    assert {p: p.stat().st_mtime_ns for p in (out / "items").rglob("*.mp4")} == stamps
    # an interrupted job (no done marker, a half-written group) is redone, and only it
    df = load_manifest(out)
    job = df[df.generator == "warp"].job_id.iloc[0]
    (out / PARTS / f"{job}.json").unlink()
    (out / df[(df.job_id == job) & (df.compression == "c40")].path.iloc[0]).unlink()
    third = build_corpus(out, progress=False)
    assert third.jobs_rendered == 1 and third.jobs_already_done == first.jobs_planned - 1
    assert len(load_manifest(out)) == len(df)
    others = {p: t for p, t in stamps.items() if f"/{job}/" not in str(p)}
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())


def test_a_different_spec_is_refused(corpus, sample_dir):
    from core.common import FaceforgeError

    out, _ = corpus
    with pytest.raises(FaceforgeError, match="different spec"):
        build_corpus(out, tiny_spec(sample_dir, [], seed=5), progress=False)
    # how to render (device, batch size) may change between runs and shards
    again = build_corpus(out, overrides={"batch_size": 4}, progress=False)
    assert again.jobs_rendered == 0 and again.jobs_already_done == again.jobs_planned


def test_shards_then_merge_equal_one_run(tmp_path, sample_dir):
    from forge.cli import main

    spec = tiny_spec(sample_dir, [], generators=(GeneratorSpec("warp", reenactment=("self", "cross")),),
                     compressions=("raw",), verify=False)
    single = build_corpus(tmp_path / "one", spec, progress=False)
    r0 = build_corpus(tmp_path / "sh", spec, shard=(0, 2), progress=False)
    assert not r0.merged and not (tmp_path / "sh" / "manifest.parquet").exists()
    assert main(["forge", "corpus", "--out", str(tmp_path / "sh"), "--merge"]) == 1  # shard 1/2 missing
    r1 = build_corpus(tmp_path / "sh", shard=(1, 2), progress=False)
    assert r0.jobs_rendered + r1.jobs_rendered == single.jobs_rendered > 0
    assert main(["forge", "corpus", "--out", str(tmp_path / "sh"), "--merge"]) == 0
    a, b = load_manifest(tmp_path / "one"), load_manifest(tmp_path / "sh")
    assert list(a["item_id"]) == list(b["item_id"])
    cols = ["split", "label", "generator", "source_identity", "driver_identity", "driver_clip", "seed"]
    assert a[cols].equals(b[cols])
    # deterministic for a spec + seed: the same pixels (no watermark payload differs here: warp is seeded)
    real_a = a[a.label == "real"].iloc[0]
    assert np.array_equal(read_item_frames(tmp_path / "one", real_a), read_item_frames(tmp_path / "sh", real_a))
    assert merge_corpus(tmp_path / "sh")["complete"]


def test_twin_and_paste_back(tmp_path, sample_dir):
    from provenance.watermark import decode, embed

    spec = tiny_spec(sample_dir, [], sources=(str(sample_dir / "videos" / "d0.mp4"),), split_ratios=(1, 0, 0),
                     generators=(GeneratorSpec("warp", reenactment=("self",)),), compressions=("raw", "c23"),
                     unwatermarked_twin=True, paste_back=True, paste_size=256)
    C = tmp_path / "C"
    build_corpus(C, spec, progress=False)
    df = load_manifest(C).set_index("item_id")
    assert len(df) == 6 * 2  # real crop/full + fake crop/full each with its twin, x 2 variants
    twin = df.loc["warp-T1-self-d0-nowm-raw"]
    assert twin.twin_of == "warp-T1-self-d0" and not twin.watermarked and twin.c2pa_signed
    assert twin.provenance_status == "trusted" and __import__("pandas").isna(twin.watermark_payload)
    # the watermarked item is its twin + one static luma pattern, the one of its own payload
    marked = df.loc["warp-T1-self-d0-raw"]
    clean, wm = read_item_frames(C, twin), read_item_frames(C, marked)
    added = (wm.astype(float) - clean).mean(-1)                         # (N, S, S)
    assert np.corrcoef(added[0].ravel(), added[-1].ravel())[0, 1] > 0.8  # the same in every frame

    def corr(payload: int) -> float:
        return float(np.corrcoef(added.ravel(), (embed(clean, payload).astype(float) - clean).mean(-1).ravel())[0, 1])

    right = corr(int(marked.watermark_payload, 16))
    assert right > 0.4 and right > max(corr(p) for p in (1, 2, 3))
    full = df.loc["warp-T1-self-d0-full-raw"]
    assert full.framing == "full" and (full.width, full.height) == (256, 256) and full.watermarked
    frames = read_item_frames(C, full)
    assert frames.shape == (6, 256, 256, 3)
    assert read_item_landmarks(C, full).max() < 256
    got = decode(frames)  # full frames are big enough for the decoder to read the payload back
    assert got.detected and f"{got.payload:016x}" == full.watermark_payload
    real_full = read_item_frames(C, df.loc["real-d0-full-raw"])
    # outside the face the paste-back is the driver frame itself (up to watermark and codec noise)
    assert np.abs(real_full[:, :24].astype(int) - frames[:, :24]).mean() < 4.0
