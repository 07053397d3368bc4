"""Every asset of the platform, without the project-file resource: what the CLI runner materializes
(with the run's own settings) and what :mod:`tame_assets.defs.definitions` serves to the UI. Importing
this module reads no ``tame.toml``."""

from __future__ import annotations

from dagster import load_assets_from_modules

from tame_assets.defs.assets import analyses, context, merged, ml, overview, products, raw, search

all_assets = load_assets_from_modules([raw, ml, merged, analyses, products, context, overview, search])
