"""Where the per-frame work runs: :class:`ComputeSettings` (defined with every other setting in
:mod:`tame_assets.config`, group ``[compute]`` of ``tame.toml``) and the engine-side names.

Plain Python (no dask import): the settings are data; :func:`tame_assets.compute.open_engine`
turns them into a running engine.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Callable

from tame_assets.config import (
    CLUSTER_MODES,
    COMPUTE_HELP,
    ComputeSettings,
    compute_settings_from_mapping,
    load_compute_settings,
    parse_compute,
    resolve_compute_settings,
)

#: ``on_progress(chunks_done, chunks_total, where)``; ``where`` is the worker address or ``"local"``.
ChunkProgress = Callable[[int, int, str], None]

LOCAL_WHERE = "local"


def settings_dict(settings: ComputeSettings) -> dict:
    """The settings as a plain dict (tuples as lists), e.g. for run metadata."""
    return {f.name: list(v) if isinstance(v := getattr(settings, f.name), tuple) else v for f in fields(settings)}


__all__ = [
    "CLUSTER_MODES",
    "COMPUTE_HELP",
    "ComputeSettings",
    "compute_settings_from_mapping",
    "load_compute_settings",
    "parse_compute",
    "resolve_compute_settings",
    "settings_dict",
]
