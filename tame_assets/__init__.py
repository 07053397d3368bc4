"""tame_assets: the TAME aurora-image pipeline as Dagster software-defined assets.

Plain-Python entry points (no Dagster needed)::

    from tame_assets import AsimClassifier, Provider
"""

from __future__ import annotations

__all__ = ["AsimClassifier", "Provider", "TameSettings", "Warehouse"]


def __getattr__(name: str):  # lazy: importing the package must not import torch
    if name == "AsimClassifier":
        from tame_assets.ml.classifier import AsimClassifier

        return AsimClassifier
    if name == "Provider":
        from tame_assets.warehouse.provider import Provider

        return Provider
    if name == "TameSettings":
        from tame_assets.config import TameSettings

        return TameSettings
    if name == "Warehouse":
        from tame_assets.warehouse.store import Warehouse

        return Warehouse
    raise AttributeError(name)
