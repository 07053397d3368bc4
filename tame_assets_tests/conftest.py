"""Shared fixtures: the developers' real data folder and loopback HTTP servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TZ", "UTC")

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL = SHARED / "data" / "real"


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """``../shared/data/real`` (real instrument files); tests using it skip when it is absent."""
    if not REAL.exists():
        pytest.skip(f"real data folder {REAL} is absent (only the developers' machines have ../shared)")
    return REAL


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory) -> Path:
    from tame_assets.sample import ensure_sample_archive

    return ensure_sample_archive(tmp_path_factory.mktemp("sample_root"))
