"""The atomic-write helper: unpredictable exclusive temp names, symlinks never followed, failures clean."""

from __future__ import annotations

import os
import time

import duckdb
import polars as pl
import pytest

from tame_assets import files
from tame_assets.files import (
    TEMP_PATTERN,
    AtomicWriteError,
    atomic_file,
    atomic_path,
    replace_atomic,
    sweep_stale_temps,
    write_bytes_atomic,
    write_text_atomic,
)


def test_temp_names_are_unpredictable_and_created_exclusively(tmp_path, monkeypatch):
    names = {files.temp_name("out.csv") for _ in range(200)}
    assert len(names) == 200 and all(TEMP_PATTERN.match(n) and n.startswith(".out.csv.") for n in names)
    opened = []
    real_open = os.open

    def spy(path, flags, mode=0o777, **kw):
        opened.append((str(path), flags, mode))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(files.os, "open", spy)
    with atomic_path(tmp_path / "out.csv") as tmp:
        assert tmp.parent == tmp_path and TEMP_PATTERN.match(tmp.name)
        assert tmp.stat().st_mode & 0o777 == 0o600 and tmp.stat().st_size == 0
    path, flags, mode = opened[0]
    assert path == str(tmp)
    assert flags & os.O_CREAT and flags & os.O_EXCL and flags & os.O_NOFOLLOW and mode == 0o600


def test_write_gets_a_normal_files_mode_and_content(tmp_path):
    target = tmp_path / "a.parquet"
    with atomic_path(target) as tmp:
        pl.DataFrame({"x": [1, 2]}).write_parquet(tmp)
    assert pl.read_parquet(target)["x"].to_list() == [1, 2]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.parquet"]


def test_symlink_at_target_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    write_text_atomic(link, "new")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "new"


def test_directory_target_is_a_one_line_error_naming_it(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    with pytest.raises(AtomicWriteError) as info:
        write_bytes_atomic(folder, b"x")
    assert str(folder) in str(info.value) and "directory" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(AtomicWriteError, match="does not exist"):
        write_bytes_atomic(tmp_path / "missing" / "x.csv", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["results"] and not any(folder.iterdir())


def test_failure_leaves_no_temp_file_and_the_old_file_intact(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("writer died")
    with pytest.raises(ZeroDivisionError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise ZeroDivisionError("a writer failing half-way")
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "db.duckdb", create=False) as tmp:
            duckdb.connect(str(tmp)).close()
            raise ValueError("no")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_duckdb_writes_through_a_private_folder(tmp_path):
    target = tmp_path / "v.duckdb"
    with atomic_path(target, create=False) as tmp:
        assert not tmp.exists() and tmp.parent.stat().st_mode & 0o777 == 0o700
        assert TEMP_PATTERN.match(tmp.parent.name)
        with duckdb.connect(str(tmp)) as con:
            con.execute("CREATE VIEW v AS SELECT 42 AS answer")
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("SELECT answer FROM v").fetchall() == [(42,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.duckdb"]


def test_replace_atomic_moves_a_finished_file_and_refuses_a_symlink_source(tmp_path):
    part = tmp_path / "f.part"
    part.write_bytes(b"data")
    replace_atomic(part, tmp_path / "f")
    assert (tmp_path / "f").read_bytes() == b"data" and not part.exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"secret")
    (tmp_path / "g.part").symlink_to(elsewhere)
    with pytest.raises(OSError):
        replace_atomic(tmp_path / "g.part", tmp_path / "g")
    assert not (tmp_path / "g").exists()


def test_sweeper_removes_only_stale_files_of_the_pattern(tmp_path):
    old = time.time() - 2 * 3600
    stale = tmp_path / files.temp_name("a.parquet")
    fresh = tmp_path / files.temp_name("b.parquet")
    stale_dir = tmp_path / files.temp_name("tame.duckdb")
    stale_wal = tmp_path / (files.temp_name("c.duckdb") + ".wal")
    others = [
        tmp_path / n
        for n in ("a.parquet", "x.tmp", ".a.parquet.tmp", ".a.parquet.1234.tmp", f".a.{'g' * 32}.tmp", "b.part")
    ]
    for path in [stale, fresh, stale_wal, *others]:
        path.write_text("x")
    stale_dir.mkdir()
    (stale_dir / "tame.duckdb").write_text("x")
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    (victim_dir / "keep").write_text("x")
    link = tmp_path / files.temp_name("link")
    link.symlink_to(victim_dir)
    for path in [stale, stale_wal, stale_dir / "tame.duckdb", stale_dir, link, *others]:
        os.utime(path, (old, old), follow_symlinks=False)
    removed = sweep_stale_temps(tmp_path, sidecars=(".wal",))
    assert sorted(removed) == sorted([stale, stale_dir, stale_wal])
    assert fresh.exists() and link.is_symlink() and (victim_dir / "keep").exists()
    assert all(p.exists() for p in others)
    assert sweep_stale_temps(tmp_path / "nowhere") == []


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    target = tmp_path / "archive"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_dir(target) as tmp:
            assert TEMP_PATTERN.match(tmp.name) and tmp.stat().st_mode & 0o777 == 0o700
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("fill died")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"] and (target / "old.txt").exists()
    with files.atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]
    (tmp_path / "plain").write_text("x")
    with pytest.raises(AtomicWriteError, match="plain: it is not a folder"):
        with files.atomic_dir(tmp_path / "plain"):
            pass
    assert (tmp_path / "plain").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive", "plain"]


def test_unwritable_folder_is_a_one_line_error_naming_the_target(tmp_path, monkeypatch):
    # root may write anywhere, so the refusal the kernel gives a normal user is injected at os.open
    def refuse(path, flags, mode=0o777, **kw):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(files.os, "open", refuse)
    with pytest.raises(AtomicWriteError) as info:
        write_text_atomic(tmp_path / "out.csv", "x")
    assert str(info.value) == f"cannot write {tmp_path / 'out.csv'}: folder {tmp_path} is not writable"
    assert not any(tmp_path.iterdir())
