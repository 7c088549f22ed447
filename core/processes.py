"""Child processes that never outlive faceforge: signals forwarded and waited for, workers that die
with their parent, SIGTERM turned into an exception so that ``finally`` blocks run.

- :func:`run_forwarding` runs a command (the dashboard's Streamlit server) and forwards SIGINT,
  SIGTERM and SIGHUP to it, waits for it, and kills it if it outlives a grace period; on Linux the
  child also gets SIGTERM when faceforge itself is killed (``kill -9``).
- :func:`raise_on_terminate` (installed by the CLI) makes SIGTERM/SIGHUP raise :class:`Terminated`
  (a ``KeyboardInterrupt``): context managers and ``finally`` blocks stop their children.
- :func:`worker_init` is the initializer of process pools (``forge prepare --workers``): a worker
  ignores SIGINT (its parent handles it and stops the pool) and, on Linux, dies with its parent,
  even one killed with ``kill -9``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from typing import Sequence

FORWARDED = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s)
GRACE_S = 10.0        # after a forwarded signal, how long a child may take before it is killed
_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP received: unwinds like Ctrl-C (children are stopped, outputs stay atomic)."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def raise_on_terminate() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` in the main thread (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise Terminated(signum)

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


def exit_code(returncode: int) -> int:
    """A child's return code as a shell shows it: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def run_forwarding(cmd: Sequence[str], grace_s: float = GRACE_S, **popen_kw) -> int:
    """Run ``cmd``; forward SIGINT/SIGTERM/SIGHUP to it and wait for it to exit (killed after
    ``grace_s`` if it ignores them). Returns its exit code (128 + N when a signal N ended it)."""
    if sys.platform.startswith("linux"):
        popen_kw.setdefault("preexec_fn", die_with_parent)
    proc = subprocess.Popen(list(cmd), **popen_kw)
    deadline: list[float] = []

    def forward(signum, frame):
        if proc.poll() is None:
            proc.send_signal(signum)
            deadline.append(time.monotonic() + grace_s)

    main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, forward) for s in FORWARDED} if main else {}
    try:
        while True:
            try:
                return exit_code(proc.wait(timeout=0.2))
            except subprocess.TimeoutExpired:
                if deadline and time.monotonic() > min(deadline):
                    proc.kill()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        stop(proc)


def stop(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """Terminate ``proc`` if it is still running; kill it after ``grace_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies, even by ``kill -9`` (kept across exec)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_init() -> None:
    """Process-pool initializer: ignore SIGINT (the parent stops the pool) and die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def stop_pool(pool) -> None:
    """Cancel a ProcessPoolExecutor's pending work and terminate its workers now (they write atomically,
    so a killed item is simply redone on resume)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in workers:
        with contextlib.suppress(OSError, ValueError):
            proc.terminate()
    for proc in workers:
        with contextlib.suppress(OSError, ValueError):
            proc.join(GRACE_S)
