"""Issue 19's faults, each pinned: the key folder is 0700 whatever the umask and signing refuses an open
one; stale temps of killed writers are removed (live writers' kept); dashboard path edge cases give a
clear message; symlinked run folders stay inside their root; x264 encodes are byte-reproducible; the
dashboard launcher leaves no process behind on SIGTERM / SIGINT."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.common import (FaceforgeError, _host_tag, atomic_path, is_temp_name, remove_stale_temps, safe_join,
                         scratch_path)

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- keys
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_key_folder_is_0700_whatever_the_umask(tmp_path, umask):
    from provenance import keys

    old = os.umask(umask)
    try:
        keys.init_identity(tmp_path / "a" / "keys")
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "keys").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "a" / "keys" / "signer.key").stat().st_mode & 0o777 == 0o600


def test_signing_refuses_a_key_folder_others_can_write(tmp_path):
    from provenance import keys

    d = tmp_path / "keys"
    keys.init_identity(d)
    os.chmod(d, 0o775)
    with pytest.raises(FaceforgeError, match="writable by group/others.*chmod 700"):
        keys.load_identity(d)
    os.chmod(d, 0o755)                                       # readable is fine: the keys themselves are 0600
    assert keys.load_identity(d).signer.sign(b"x")


def test_provenance_init_cli_makes_the_folder_0700(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(["sh", "-c", f"umask 000 && {sys.executable} -m forge.cli provenance init {tmp_path / 'k'}"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o700


# ---------------------------------------------------------------- stale temps
def test_remove_stale_temps_keeps_live_writers(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "items" / "g1").mkdir(parents=True)
    h = _host_tag()
    other = "0123ab" if h != "0123ab" else "0123ac"
    stale = [tmp_path / "items" / "g1" / f".landmarks.h{h}p{dead.pid}-ab12cd.tmp.npy",
             tmp_path / f".part.json.h{h}p{dead.pid}-zz9.tmp", tmp_path / ".old_style.x1y2.tmp.mp4",
             tmp_path / f".old.h{other}p{dead.pid}-q3.tmp"]                     # another host's, 7 h old
    live = [tmp_path / f".mine.h{h}p{os.getpid()}-q1.tmp.mp4", tmp_path / f".init.h{h}p1-q2.tmp",  # pid 1 lives
            tmp_path / f".new.h{other}p{dead.pid}-q4.tmp"]                     # another host's, fresh
    keep = [tmp_path / "landmarks.npy", tmp_path / ".spec.lock", tmp_path / "items" / "g1" / "raw.mp4"]
    for p in stale + live + keep:
        p.write_bytes(b"x")
    os.utime(stale[-1], (time.time() - 7 * 3600,) * 2)
    assert all(is_temp_name(p.name) for p in stale + live) and not any(is_temp_name(p.name) for p in keep)
    assert remove_stale_temps(tmp_path) == 3                 # top level only
    assert remove_stale_temps(tmp_path, recursive=True) == 1
    assert not any(p.exists() for p in stale) and all(p.exists() for p in live + keep)


def test_atomic_and_scratch_temps_are_recognised(tmp_path):
    with atomic_path(tmp_path / "a.npy") as tmp:
        assert is_temp_name(tmp.name) and f".h{_host_tag()}p{os.getpid()}-" in tmp.name
        np.save(tmp, np.zeros(2))
    with scratch_path(tmp_path / "raw.mp4") as s:
        assert is_temp_name(s.name) and s.suffix == ".mp4"
        s.write_bytes(b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]


# ---------------------------------------------------------------- dashboard paths
@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    from dashboard.fixture import make_fixture_corpus, make_fixture_run

    root = tmp_path_factory.mktemp("dash")
    corpus = make_fixture_corpus(root / "corpus", size=48, n_frames=4)
    make_fixture_run(root / "runs" / "cnn", corpus)
    make_fixture_run(root / "elsewhere" / "outside", corpus)
    return root


@pytest.mark.parametrize("bad", ["items/a\x00b.mp4", float("nan"), 3, "../../etc/passwd", "x" * 5000])
def test_bad_manifest_paths_give_a_clear_error(fx, bad):
    from dashboard import data

    with pytest.raises(FaceforgeError):
        data.corpus_file(fx / "corpus", bad, "item")


def test_landmarks_path_nan_nul_and_corrupt(fx):
    from dashboard import data

    assert data.load_landmarks(fx / "corpus", {"landmarks_path": float("nan")}) is None
    assert data.load_landmarks(fx / "corpus", {"landmarks_path": None}) is None
    with pytest.raises(FaceforgeError, match="NUL"):
        data.load_landmarks(fx / "corpus", {"landmarks_path": "lm\x00.npy"})
    (fx / "corpus" / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(FaceforgeError, match="unreadable"):
        data.load_landmarks(fx / "corpus", {"landmarks_path": "bad.npy"})
    with pytest.raises(FaceforgeError, match="text"):
        safe_join(fx, float("nan"))


def test_symlinked_runs_resolve_inside_their_root(fx):
    from dashboard import runs

    root = fx / "runs"
    (root / "inside_link").symlink_to(root / "cnn", target_is_directory=True)
    (root / "outside_link").symlink_to(fx / "elsewhere" / "outside", target_is_directory=True)
    found = {r.name: r for r in runs.find_runs(root)}
    assert set(found) == {"cnn", "inside_link", "outside_link"}
    assert found["inside_link"].evals == found["cnn"].evals and found["inside_link"].metrics == found["cnn"].metrics
    out = found["outside_link"]
    assert "outside the runs root" in out.metrics["error"] and out.evals == () and out.config == {}
    with pytest.raises(FaceforgeError, match="escapes"):
        runs.run_file(root, "outside_link/metrics.json")


# ---------------------------------------------------------------- x264
ENCODE = """
import hashlib, os, sys
import numpy as np
from forge.corpus.compress import write_variant
if len(sys.argv) > 2:
    os.sched_setaffinity(0, {{0}})                       # one CPU: x264's automatic thread count would change
rng = np.random.default_rng(0)
base = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
write_variant(sys.argv[1], np.stack([np.roll(base, 3 * i, axis=1) for i in range(8)]), 25.0, "{comp}")
"""


@pytest.mark.parametrize("comp", ["c23", "c40"])
def test_x264_variants_are_byte_reproducible(tmp_path, comp):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for i, pin in enumerate(([], ["pin"], [])):
        subprocess.run([sys.executable, "-c", ENCODE.format(comp=comp), str(tmp_path / f"{i}.mp4"), *pin],
                       env=env, check=True, timeout=120)
    digests = {hashlib.sha256((tmp_path / f"{i}.mp4").read_bytes()).hexdigest() for i in range(3)}
    assert len(digests) == 1


# ---------------------------------------------------------------- the dashboard launcher
def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        out += [int(x) for x in text.split()]
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_dashboard_launcher_leaves_no_process(fx, sig):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    launcher = subprocess.Popen([sys.executable, "-m", "forge.cli", "dashboard", "--corpus", str(fx / "corpus"),
                                 "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server:     # the server is running and listening
            server = _children(launcher.pid)
            time.sleep(0.2)
        assert server, "the launcher started no server"
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        launcher.send_signal(sig)
        launcher.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in server) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in server), "streamlit outlived its launcher"
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for p in server:                                       # never leave a server behind, even on failure
            if _alive(p):
                os.kill(p, signal.SIGKILL)
