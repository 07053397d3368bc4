"""Compute engine for the per-frame work: in-process (``local``) or on a Dask cluster
(``dask-local``, ``dask://HOST:PORT``, ``slurm``, ``pbs``, ``kubernetes``).

Importing this package imports neither dask nor torch; :func:`open_engine` imports dask only for
Dask modes, and the per-frame functions import torch only when called.
"""

from tame_assets.compute.engine import Engine, LocalEngine, open_engine, split_chunks
from tame_assets.compute.per_frame import classify_features_distributed, extract_features_distributed
from tame_assets.compute.settings import (
    COMPUTE_HELP,
    ComputeSettings,
    compute_settings_from_mapping,
    load_compute_settings,
    parse_compute,
    resolve_compute_settings,
)

__all__ = [
    "COMPUTE_HELP",
    "ComputeSettings",
    "Engine",
    "LocalEngine",
    "classify_features_distributed",
    "compute_settings_from_mapping",
    "extract_features_distributed",
    "load_compute_settings",
    "open_engine",
    "parse_compute",
    "resolve_compute_settings",
    "split_chunks",
]
