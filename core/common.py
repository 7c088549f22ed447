"""Small shared helpers: user-facing errors, atomic writes, safe paths, hashing, configs.

Nothing heavy is imported here: every package (forge, detect, provenance, dashboard) may use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator, NoReturn, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "data" / "sample"  # embedded demo data (videos/, portraits/)

T = TypeVar("T")


class FaceforgeError(Exception):
    """An error the user caused or can fix; the CLI prints it as one line and exits non-zero."""


def run_main(main: Callable[[], Any], error_status: int = 1) -> NoReturn:
    """Run a module's ``main()`` as a script: an int result is the exit status (anything else exits 0); a
    FaceforgeError, a user error, ends in one ``faceforge: error: ...`` line on stderr and ``error_status``,
    not a traceback."""
    import sys

    try:
        rc = main()
    except FaceforgeError as e:
        print(f"faceforge: error: {e}", file=sys.stderr)
        sys.exit(error_status)
    sys.exit(rc if isinstance(rc, int) else 0)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"faceforge.{name}")


# ---------------------------------------------------------------- lazy package APIs
def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for a package's lazy public API (PEP 562).

    ``exports`` maps a public name to the module that defines it: absolute (``"forge.warp"``) or
    relative to ``package`` (``".media"``). Nothing is imported until a name is first used."""
    import importlib

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__


# ---------------------------------------------------------------- atomic writes
def _default_mode() -> int:
    """The mode a plainly created file would get (0666 less the umask); mkstemp makes 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    On error the temp file is removed, so a half-written file never looks finished.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.chmod(tmp, _default_mode())
    with _replace_on_success(tmp, path), os.fdopen(fd, mode) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp *path* (same folder and extension) for writers that want a filename
    (PyAV, torch.save, PIL); renamed over ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.stem), suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _default_mode())
    with _replace_on_success(tmp, path):
        yield Path(tmp)


@contextlib.contextmanager
def _replace_on_success(tmp: str, path: Path) -> Iterator[None]:
    """Rename ``tmp`` over ``path`` when the block succeeds; remove ``tmp`` when it fails."""
    try:
        yield
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def scratch_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside ``path`` (same extension) for an intermediate file, removed when the block
    ends; named like the atomic writers' temps, so :func:`remove_stale_temps` finds it after a kill."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.stem), suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# Temp names: ``.<name>.h<host>p<pid>-<random>.tmp[.<ext>]``: on this host the pid tells a live writer's
# temp from a stale one; another host's temps (shards on a shared file system) go only when old.
_TEMP_NAME = re.compile(r"^\..+\.tmp(\.[A-Za-z0-9]+)?$")
_TEMP_WRITER = re.compile(r"\.h([0-9a-f]{6})p(\d+)-[^.]*\.tmp(\.[A-Za-z0-9]+)?$")
FOREIGN_TEMP_AGE_S = 6 * 3600     # another host's temp older than this is stale


@functools.cache
def _host_tag() -> str:
    import socket

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _temp_prefix(name: str) -> str:
    return f".{name}.h{_host_tag()}p{os.getpid()}-"


def is_temp_name(name: str) -> bool:
    """True for the name of a temp file made by atomic_write / atomic_path / scratch_path."""
    return bool(_TEMP_NAME.match(name))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, someone else's
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, recursive: bool = False) -> int:
    """Delete the temp files that killed writers left in ``folder`` (atomic writes never rename them);
    call it when a resumable job starts. Temps of a writer that is still running (another shard or
    torchrun rank on this machine, another thread of this process) are kept, and another host's temps
    unless older than :data:`FOREIGN_TEMP_AGE_S`. Returns the number removed."""
    import time

    folder = Path(folder)
    if not folder.is_dir():
        return 0
    n, host = 0, _host_tag()
    for p in (folder.rglob(".*") if recursive else folder.glob(".*")):
        if not is_temp_name(p.name) or not p.is_file():
            continue
        writer = _TEMP_WRITER.search(p.name)
        with contextlib.suppress(FileNotFoundError):
            if writer is not None and writer.group(1) != host:
                if time.time() - p.stat().st_mtime < FOREIGN_TEMP_AGE_S:
                    continue
            elif writer is not None and (int(writer.group(2)) == os.getpid() or _pid_alive(int(writer.group(2)))):
                continue
            p.unlink()
            n += 1
    if n:
        get_logger("common").info("removed %d stale temp file(s) under %s", n, folder)
    return n


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=_json_default)
        f.write("\n")


def write_parquet_atomic(path: str | os.PathLike, df) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def _json_default(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):  # numpy scalars/arrays
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------- paths and hashes
def safe_join(root: str | os.PathLike, relpath: str | os.PathLike) -> Path:
    """Join a user-supplied relative path under ``root``; refuse anything that escapes it (also
    through symlinks), and paths that are not text or hold a NUL byte, with a FaceforgeError."""
    if not isinstance(relpath, (str, os.PathLike)):
        raise FaceforgeError(f"path must be text, got {type(relpath).__name__} {relpath!r}")
    if "\x00" in os.fspath(relpath):
        raise FaceforgeError(f"path holds a NUL byte: {os.fspath(relpath)!r}")
    root = Path(root).resolve()
    rel = Path(relpath)
    if rel.is_absolute():
        raise FaceforgeError(f"path must be relative to {root}: {str(relpath)!r}")
    full = (root / rel).resolve()
    if full != root and root not in full.parents:
        raise FaceforgeError(f"path escapes its root {root}: {str(relpath)!r}")
    return full


def safe_name(name: str, max_len: int = 80) -> str:
    """A file-system-safe token from a user/file-derived name (identity, video id)."""
    keep = "".join(c if (c.isalnum() or c in "-_.") else "_" for c in name)
    keep = keep.lstrip(".") or "_"
    return keep[:max_len]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path or raise a one-line FaceforgeError when it is missing."""
    p = Path(path)
    if not p.exists():
        raise FaceforgeError(f"{what} not found: {p}")
    if not p.is_file():
        raise FaceforgeError(f"{what} is not a file: {p}")
    return p


# ---------------------------------------------------------------- configs
def config_from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Build a (frozen) dataclass from a dict, rejecting unknown keys with a clear error.
    Nested dataclass fields are built recursively; lists become tuples."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise FaceforgeError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    kwargs = {}
    for name, value in data.items():
        ftype = fields[name].type
        sub = _dataclass_type(cls, name, ftype)
        if sub is not None and isinstance(value, dict):
            value = config_from_dict(sub, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise FaceforgeError(f"bad {cls.__name__}: {e}") from None


def _dataclass_type(cls: type, name: str, ftype: Any) -> type | None:
    import typing

    hints = typing.get_type_hints(cls)
    t = hints.get(name, ftype)
    return t if dataclasses.is_dataclass(t) else None


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: dict | None = None) -> T:
    """Config from a YAML file (optional) updated with CLI overrides (``a.b=1`` style keys allowed)."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        p = require_file(path, "config")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise FaceforgeError(f"config {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise FaceforgeError(f"config {p} must be a mapping")
    for key, value in (overrides or {}).items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config_from_dict(cls, data)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write a dataclass config as YAML (atomically) next to a run's outputs."""
    import yaml

    with atomic_write(path, "w") as f:
        yaml.safe_dump(_plain(dataclasses.asdict(cfg)), f, sort_keys=False)


def _plain(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    return o


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["train.lr=1e-4", "model.width=32"]`` -> dict with YAML-parsed values."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise FaceforgeError(f"override must look like key=value: {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _number_or(yaml.safe_load(v))
    return out


def _number_or(value: Any) -> Any:
    """YAML 1.1 reads ``2e-4`` as a string; users mean a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
