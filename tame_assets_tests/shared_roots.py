"""Materialized data roots shared by tests that only read them, built once and cached across test
sessions and pytest-xdist workers (the way the sample archive is cached per generator version).

A cached root lives in ``<user cache>/tame_assets/test_roots/<name>-<key>/``. The key hashes the
package source (every file under ``tame_assets/``), the recipe (the build function's module) and the
versions of the libraries that shape the tables, so a root is never older than the code that made it.
The root is built in place (its tables hold absolute paths) under an exclusive file lock; its
``.complete.json`` (written last) lists every file with size and mtime, and a root whose files no
longer match is rebuilt. A test that modifies a shared root must work on a copy (:func:`copy_root`).
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import shutil
from importlib import metadata
from pathlib import Path
from typing import Callable

PACKAGE = Path(__file__).resolve().parents[1] / "tame_assets"
MARKER = ".complete.json"
#: Libraries whose versions can change a materialized table.
LIBRARIES = ("dagster", "duckdb", "numpy", "polars", "pyarrow", "scikit-learn", "scipy", "torch", "torchvision")


def cache_base() -> Path:
    from tame_assets.config import user_cache_dir

    return user_cache_dir() / "test_roots"


def source_key(build: Callable) -> str:
    """sha256 (16 hex digits) of the package source, ``build``'s module and the library versions."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(Path(inspect.getsourcefile(build)).read_bytes())  # the recipe: the build function's module
    for name in LIBRARIES:
        try:
            digest.update(f"{name}=={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} absent".encode())
    return digest.hexdigest()[:16]


def listing(root: Path) -> dict[str, list[int]]:
    """Every file under ``root`` (marker and lock files excluded: readers may take a lock): relative
    path → [size, mtime in ns]."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name != MARKER and path.suffix != ".lock":
            stat = path.stat()
            out[str(path.relative_to(root))] = [stat.st_size, stat.st_mtime_ns]
    return out


def is_intact(root: Path) -> bool:
    try:
        recorded = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return recorded == listing(root)


def cached_root(name: str, build: Callable[[Path], None]) -> Path:
    """The data root ``build(root)`` makes, from the cache when an intact one of the current key exists,
    else built now (other roots of the same name, older keys, are removed). Safe under xdist: the first
    worker builds while the others wait on the lock."""
    base = cache_base()
    base.mkdir(parents=True, exist_ok=True)
    root = base / f"{name}-{source_key(build)}"
    if is_intact(root):
        return root
    with open(base / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not is_intact(root):
                for old in base.glob(f"{name}-*"):
                    shutil.rmtree(old, ignore_errors=True)
                root.mkdir()
                build(root)
                (root / MARKER).write_text(json.dumps(listing(root)))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root


def copy_root(root: Path, dest: Path) -> Path:
    """A private copy of a shared root for a test that writes to it."""
    shutil.copytree(root, dest, symlinks=True, ignore=shutil.ignore_patterns(MARKER))
    return dest
