"""kill -9 in the middle of ``forge prepare``, ``forge corpus`` and ``forge train``, then the same command
again: the result equals an uninterrupted run (nothing lost, nothing twice, training bit-identical) and no
temp file is left. Each command runs as the user runs it (``python -m forge.cli ...``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.common import _host_tag, is_temp_name, save_config

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
VIDEOS = ("hdtf_wda_katiehill", "d0", "d18")
TRAIN_SET = ["model.emb_dim=16", "model.base_channels=8", "model.max_channels=16", "model.g_res_blocks=1",
             "k_shot=2", "batch_size=2", "checkpoint_every=2", "log_every=1", "sample_every=0", "holdout=[]"]
TRAIN_STEPS = 6
TIMING = ("seconds", "sec_per_step", "images_per_s", "time")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "forge.cli", *args]


def _run(args: list[str]) -> None:
    r = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def _kill_when(args: list[str], ready, timeout: float = 120) -> int:
    """Start ``args``, SIGKILL it as soon as ``ready()`` holds (it must not finish first); its pid."""
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, "finished before it could be killed"
            assert time.monotonic() < deadline, "never reached the kill point"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    return proc.pid


def _plant_temp(path: Path, pid: int) -> Path:
    """The temp an atomic write of ``path`` by the killed ``pid`` leaves when the kill lands mid-write."""
    tmp = path.with_name(f".{path.stem}.h{_host_tag()}p{pid}-killed.tmp{path.suffix}")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"half a file")
    return tmp


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file() and is_temp_name(p.name)]


def _frame(path: Path, drop=TIMING) -> pd.DataFrame:
    df = pd.read_parquet(path)
    return df.drop(columns=[c for c in drop if c in df.columns]).reset_index(drop=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_dir) -> Path:
    """Three short 160 px clips with a face."""
    import cv2

    from core.media import read_frames, write_video

    root = tmp_path_factory.mktemp("videos")
    for name in VIDEOS:
        frames = read_frames(sample_dir / "videos" / f"{name}.mp4", max_frames=8)
        write_video(root / f"{name}.mp4", np.stack([cv2.resize(f, (160, 160)) for f in frames]), fps=25, crf=18)
    return root


@pytest.fixture(scope="module")
def caches(inputs, tmp_path_factory) -> tuple[Path, Path]:
    """The same prepare run uninterrupted (in this process) and killed once (after its first video),
    then resumed."""
    from forge.data.prepare import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("prepare")
    prepare([inputs], root / "ref", PrepareConfig(resolution=64), progress=False)
    args = ["forge", "prepare", str(inputs), "--resolution", "64", "--quiet"]
    killed = root / "killed"
    pid = _kill_when(_cli(*args, "--out", str(killed)), lambda: any((killed / "videos").glob("*.json")))
    _plant_temp(killed / "videos" / "d18.parquet", pid)        # as if killed inside a write
    _run(_cli(*args, "--out", str(killed)))
    return root / "ref", killed


def test_prepare_resumes_to_the_same_cache(caches):
    ref, killed = caches
    assert not _temps(killed)
    a, b = _frame(ref / "videos.parquet"), _frame(killed / "videos.parquet")
    assert list(b["video_id"]) == sorted(VIDEOS) and (b["status"] == "ok").all()
    pd.testing.assert_frame_equal(a, b, check_like=True)       # resumed records come back with sorted keys
    pd.testing.assert_frame_equal(_frame(ref / "index.parquet"), _frame(killed / "index.parquet"), check_like=True)
    assert json.loads((killed / "report.json").read_text())["n_ok"] == len(VIDEOS)


def test_train_resumes_bit_identical(caches, tmp_path):
    import torch

    from core.common import parse_overrides
    from forge.config import load_train_config
    from forge.train import train

    cache = caches[0]
    train(load_train_config("cpu64", parse_overrides(TRAIN_SET)), cache, tmp_path / "ref", device="cpu",
          steps=TRAIN_STEPS, progress=False)
    killed = tmp_path / "killed"
    log = killed / "log.jsonl"
    args = _cli("forge", "train", "--config", "cpu64", "--data", str(cache), "--steps", str(TRAIN_STEPS),
                "--device", "cpu", "--no-progress", "--out", str(killed), "--set", *TRAIN_SET)
    pid = _kill_when(args, lambda: log.exists() and log.read_text().count("\n") >= 3)  # past the step-2 checkpoint
    _plant_temp(killed / "checkpoint.pt", pid)
    _run(args)
    assert not _temps(killed)
    rows = [[{k: v for k, v in json.loads(line).items() if k not in TIMING}
             for line in (d / "log.jsonl").read_text().splitlines()] for d in (tmp_path / "ref", killed)]
    assert [r["step"] for r in rows[1]] == list(range(1, TRAIN_STEPS + 1))   # no step lost or logged twice
    assert rows[0] == rows[1]
    ref_ck = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=True)
    got_ck = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert ref_ck["step"] == got_ck["step"] == TRAIN_STEPS
    for part in ("E", "G", "D"):
        for k, v in ref_ck[part].items():
            assert torch.equal(v, got_ck[part][k]), (part, k)


def _corpus_spec(path: Path, inputs: Path) -> Path:
    from forge.corpus.spec import CorpusConfig, GeneratorSpec

    cfg = CorpusConfig(name="kill", sources=tuple(str(inputs / f"{v}.mp4") for v in VIDEOS), clip_frames=4,
                       generators=(GeneratorSpec("warp", None, (1,), ("self",)),), compressions=("raw", "c23"),
                       split_ratios=(0.67, 0.0, 0.33), seed=0)
    save_config(cfg, path)
    return cfg


def test_corpus_resumes_without_loss_or_duplicates(inputs, tmp_path):
    from forge.corpus import build_corpus

    build_corpus(tmp_path / "ref", _corpus_spec(tmp_path / "spec.yaml", inputs), progress=False)
    args = ["forge", "corpus", "--spec", str(tmp_path / "spec.yaml"), "--no-progress"]
    killed = tmp_path / "killed"
    pid = _kill_when(_cli(*args, "--out", str(killed)),
                     lambda: len(list((killed / "parts").glob("*.json"))) >= 1)   # one job done, the next under way
    group = next((killed / "items").iterdir())
    planted = [_plant_temp(group / "landmarks.npy", pid), _plant_temp(group / "c23.mp4", pid)]  # the leftover
    _run(_cli(*args, "--out", str(killed)))
    assert not any(p.exists() for p in planted)
    assert not _temps(killed)
    a, b = (pd.read_parquet(d / "manifest.parquet").sort_values("item_id").reset_index(drop=True)
            for d in (tmp_path / "ref", killed))
    assert b["item_id"].is_unique and list(a["item_id"]) == list(b["item_id"])
    same = ["item_id", "group_id", "path", "label", "split", "generator", "compression", "n_frames",
            "provenance_status"]
    pd.testing.assert_frame_equal(a[same], b[same])
    reals = a["label"] == "real"                  # unsigned, unwatermarked: byte-identical files
    assert reals.any() and (a.loc[reals, "sha256"] == b.loc[reals, "sha256"]).all()
    on_disk = {str(p.relative_to(killed)) for p in (killed / "items").rglob("*") if p.is_file()}
    assert on_disk == set(b["path"]) | set(b["landmarks_path"])        # nothing extra, nothing missing
    assert set(b.loc[~reals, "provenance_status"]) == {"trusted"}
    import sqlite3                                  # the store: one record per signed file, none left over
    with sqlite3.connect(killed / "provenance.sqlite") as db:
        paths = [r[0] for r in db.execute("SELECT path FROM renders")]
    assert len(paths) == len(set(paths)) == int((~reals).sum())


def _descendants(pid: int) -> set[int]:
    out, todo = set(), [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                kids = []
            out.update(kids)
            todo += kids
    return out


def _gone(pids: set[int]) -> bool:
    def alive(p: int) -> bool:
        try:
            return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    return not any(alive(p) for p in pids)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_prepare_workers_never_outlive_their_parent(inputs, tmp_path, sig):
    proc = subprocess.Popen(_cli("forge", "prepare", str(inputs), "--out", str(tmp_path / "c"), "--workers", "2",
                                 "--quiet"), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, kids = time.monotonic() + 120, set()
        while len(kids) < 2 and time.monotonic() < deadline and proc.poll() is None:
            kids = _descendants(proc.pid)                           # the pool's workers (+ its helpers)
            time.sleep(0.1)
        assert len(kids) >= 2, "no worker pool started"
        time.sleep(1.0)                                             # workers busy on their first video
        kids |= _descendants(proc.pid)
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 20
        while not _gone(kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(kids), "a prepare worker outlived its parent"
    finally:
        if proc.poll() is None:
            proc.kill()
