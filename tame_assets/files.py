"""Atomic file writes: the one way this package writes a file that readers may see.

A write goes to a temporary file ``.<name>.<32 random hex>.tmp`` created exclusively
(``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0o600) in the target's own folder, is flushed to disk
(``fsync``), gets the mode of a normal new file (``0o666 & ~umask``) and is renamed over the target
with ``os.replace``: a reader sees the old file or the new one, never half of one. The name is
unpredictable and created exclusively, so nothing planted in advance (a symlink) is ever followed;
a target that is a symlink is replaced by the new file (the link itself, not what it points to);
a target that is a directory is refused with a one-line error naming it. On any failure the
temporary file is removed and the target is left as it was.

A killed writer leaves its temporary file behind: :func:`sweep_stale_temps` removes files of
exactly this pattern not modified for a while (a live writer keeps its file's mtime current).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path
from typing import IO, Iterator

#: The temporary files of :func:`atomic_path` (and nothing else): ``.<final name>.<32 hex>.tmp``.
TEMP_PATTERN = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")
#: A temporary file not modified for this long (seconds) belongs to a killed writer.
STALE_TEMP_AGE_S = 3600
#: Longest part of the final name kept in the temporary name (file names are limited to 255 bytes).
_NAME_KEEP = 180


class AtomicWriteError(OSError):
    """The target cannot be written (a directory, a missing or unwritable folder); one line naming it."""


def temp_name(name: str) -> str:
    """A fresh unpredictable temporary name for an atomic write of ``name`` (matches :data:`TEMP_PATTERN`)."""
    return f".{name[:_NAME_KEEP]}.{secrets.token_hex(16)}.tmp"


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # not thread-safe, only where /proc is missing
    os.umask(mask)
    return mask


def _check_target(target: Path) -> None:
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise AtomicWriteError(f"cannot write {target}: it is a directory; give a file name")
    folder = target.parent
    if not folder.is_dir():
        raise AtomicWriteError(f"cannot write {target}: folder {folder} does not exist")


def _unique_temp(target: Path, create):
    """``create(path)`` at a fresh temporary name beside ``target`` (retried on a name clash); failures of
    the folder become one-line :class:`AtomicWriteError`s naming ``target``."""
    for _ in range(100):
        tmp = target.with_name(temp_name(target.name))
        try:
            return tmp, create(tmp)
        except FileExistsError:
            continue
        except PermissionError as exc:
            raise AtomicWriteError(f"cannot write {target}: folder {target.parent} is not writable") from exc
        except OSError as exc:  # read-only file system, no space, name too long, ...
            raise AtomicWriteError(f"cannot write {target}: {exc.strerror or exc}") from exc
    raise AtomicWriteError(f"cannot write {target}: no free temporary name in {target.parent}")


def _create_temp(target: Path) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return _unique_temp(target, lambda tmp: os.open(tmp, flags, 0o600))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _commit(tmp: Path, target: Path, fsync: bool) -> None:
    """Give ``tmp`` (our regular file) a normal file's mode, flush it and rename it over ``target``."""
    fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AtomicWriteError(f"cannot write {target}: its temporary file {tmp} is no longer a regular file")
        os.fchmod(fd, 0o666 & ~_umask())
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    _check_target(target)  # a directory may have appeared meanwhile: os.replace would fail less clearly
    os.replace(tmp, target)
    if fsync:
        _fsync_dir(target.parent)


def _create_temp_dir(target: Path) -> Path:
    return _unique_temp(target, lambda folder: folder.mkdir(mode=0o700))[0]


def _remove(path: Path) -> None:
    """Remove our temporary file or private folder (never following a symlink)."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, fsync: bool = True, create: bool = True) -> Iterator[Path]:
    """Yield the path of a fresh temporary file beside ``target``; renamed over ``target`` when the
    block ends without an exception, removed otherwise. For writers that take a path (polars
    ``write_parquet``, matplotlib ``savefig``, pyarrow, ``shutil.copyfile``): write into it by path
    (truncating it is fine), never replace it.

    ``create=False`` is for writers that must create the file themselves (DuckDB refuses an existing
    empty file): the path then does not exist yet and lies in a private folder (mode 0o700, created
    exclusively, same name pattern) beside ``target``, which also holds the writer's side files
    (DuckDB's ``.wal``) and is removed afterwards.

    Raises :class:`AtomicWriteError` (one line naming ``target``) for a directory target or a missing
    or unwritable folder.
    """
    target = Path(target)
    _check_target(target)
    if create:
        tmp, fd = _create_temp(target)
        os.close(fd)
        temp = tmp
    else:
        temp = _create_temp_dir(target)
        tmp = temp / target.name
    try:
        yield tmp
        _commit(tmp, target, fsync)
    except BaseException:
        _remove(temp)
        raise
    if temp != tmp:
        _remove(temp)


@contextlib.contextmanager
def atomic_file(
    target: str | os.PathLike,
    mode: str = "wb",
    encoding: str | None = None,
    newline: str | None = None,
    fsync: bool = True,
) -> Iterator[IO]:
    """Like :func:`atomic_path`, but yields the temporary file opened for writing (``mode`` ``"wb"``
    or ``"w"``), for streaming writers; closed and renamed over ``target`` when the block ends."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file mode must be 'wb' or 'w', not {mode!r}")
    target = Path(target)
    _check_target(target)
    tmp, fd = _create_temp(target)
    try:
        with os.fdopen(
            fd, mode, encoding=encoding if mode == "w" else None, newline=newline if mode == "w" else None
        ) as fh:
            yield fh
        _commit(tmp, target, fsync)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh private folder (mode 0o700, created exclusively, :data:`TEMP_PATTERN` name) beside
    ``target`` to fill; when the block ends without an exception it gets a normal folder's mode and
    replaces ``target`` (an existing folder is first renamed aside and then removed, so between the two
    renames ``target`` is briefly absent: serialise concurrent writers with a lock), else it is removed.
    A ``target`` that exists but is not a folder is refused in one line."""
    target = Path(target)
    if not target.parent.is_dir():
        raise AtomicWriteError(f"cannot write {target}: folder {target.parent} does not exist")
    temp = _create_temp_dir(target)
    try:
        yield temp
        os.chmod(temp, 0o777 & ~_umask())
        try:
            info = os.lstat(target)
        except FileNotFoundError:
            info = None
        if info is not None:
            if not stat.S_ISDIR(info.st_mode):
                raise AtomicWriteError(f"cannot replace {target}: it is not a folder")
            aside = _create_temp_dir(target)
            os.replace(target, aside)  # onto our empty folder: allowed
            _remove(aside)
        os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise


def write_bytes_atomic(target: str | os.PathLike, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` to ``target`` atomically (see the module docstring); returns ``target``."""
    with atomic_file(target, "wb", fsync=fsync) as fh:
        fh.write(data)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str, encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Write ``text`` to ``target`` atomically (no newline translation); returns ``target``."""
    return write_bytes_atomic(target, text.encode(encoding), fsync=fsync)


def replace_atomic(source: str | os.PathLike, target: str | os.PathLike, fsync: bool = True) -> Path:
    """Move a finished file of ours (e.g. a verified ``.part`` download) over ``target`` with the same
    rules as :func:`atomic_path`: never through a symlink at ``source``, a directory ``target``
    refused in one line, a normal file's mode, flushed, then ``os.replace``. Returns ``target``."""
    source, target = Path(source), Path(target)
    _check_target(target)
    if source.parent.resolve() != target.parent.resolve():
        raise ValueError(f"replace_atomic: {source} is not in the folder of {target}")
    _commit(source, target, fsync)
    return target


def sweep_stale_temps(
    folder: str | os.PathLike, max_age_s: float = STALE_TEMP_AGE_S, sidecars: tuple[str, ...] = ()
) -> list[Path]:
    """Remove the temporary files of killed writers in ``folder`` (not recursive): names matching
    :data:`TEMP_PATTERN` (or such a name plus one of ``sidecars``) of regular files, or private
    folders of ``atomic_path(create=False)``, not modified (nor anything in them) for ``max_age_s``
    seconds. Age, not a pid, decides (pids mean nothing across hosts sharing a volume); symlinks are
    never followed. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = time.time() - max_age_s
    removed = []
    for path in folder.iterdir():
        name = path.name
        for suffix in sidecars:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        if not TEMP_PATTERN.match(name):
            continue
        try:
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                path.unlink()
                removed.append(path)
            elif stat.S_ISDIR(info.st_mode) and name == path.name and _newest_mtime(path, info) < cutoff:
                shutil.rmtree(path)
                removed.append(path)
        except FileNotFoundError:  # removed meanwhile by another writer
            continue
    return removed


def _newest_mtime(folder: Path, info: os.stat_result) -> float:
    newest = info.st_mtime
    for entry in os.scandir(folder):
        newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest
