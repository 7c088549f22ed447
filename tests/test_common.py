"""Shared helpers: atomic writes, safe paths, configs from YAML + overrides."""

from __future__ import annotations

import dataclasses
import os
import stat

import pytest

from core.common import (FaceforgeError, atomic_path, atomic_write, load_config, parse_overrides, safe_join,
                          safe_name, save_config, sha256_file)


def test_atomic_write_replaces_whole_file_with_normal_mode(tmp_path):
    p = tmp_path / "a.txt"
    with atomic_write(p, "w") as f:
        f.write("hello")
    assert p.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    assert sha256_file(p) == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def test_atomic_write_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(p, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_path_keeps_extension_for_writers(tmp_path):
    with atomic_path(tmp_path / "v.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "v.mp4").read_bytes() == b"x"


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd"])
def test_safe_join_refuses_escapes(tmp_path, rel):
    with pytest.raises(FaceforgeError):
        safe_join(tmp_path, rel)


def test_safe_join_and_safe_name(tmp_path):
    assert safe_join(tmp_path, "a/b.mp4") == (tmp_path / "a" / "b.mp4").resolve()
    assert safe_name("../../etc/pa ss;wd") == "_.._etc_pa_ss_wd"
    assert safe_name("...") == "_"


@dataclasses.dataclass(frozen=True)
class _Inner:
    lr: float = 1e-3


@dataclasses.dataclass(frozen=True)
class _Cfg:
    name: str = "x"
    sizes: tuple = (1, 2)
    inner: _Inner = _Inner()


def test_load_config_yaml_overrides_and_round_trip(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("name: run\nsizes: [3, 4]\ninner: {lr: 0.5}\n")
    cfg = load_config(_Cfg, y, parse_overrides(["inner.lr=2e-4", "name=other"]))
    assert cfg == _Cfg("other", (3, 4), _Inner(2e-4))
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(_Cfg, tmp_path / "saved.yaml") == cfg


def test_load_config_errors_are_one_line(tmp_path):
    with pytest.raises(FaceforgeError, match="unknown _Cfg option"):
        load_config(_Cfg, None, {"nope": 1})
    with pytest.raises(FaceforgeError, match="config not found"):
        load_config(_Cfg, tmp_path / "missing.yaml")
    with pytest.raises(FaceforgeError, match="key=value"):
        parse_overrides(["novalue"])
