"""The Dagster code location: every asset, check, job, schedule and sensor of the platform."""

from __future__ import annotations

from dagster import Definitions, load_assets_from_modules

from tame_assets.config import load_settings
from tame_assets.defs.assets import analyses, merged, ml, products, raw
from tame_assets.defs.checks import all_checks
from tame_assets.defs.resources import TameResource
from tame_assets.defs.schedules import all_jobs, all_schedules, all_sensors

all_assets = load_assets_from_modules([raw, ml, merged, analyses, products])

defs = Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=all_jobs,
    schedules=all_schedules,
    sensors=all_sensors,
    resources={"tame": TameResource.from_settings(load_settings())},  # tame.toml ($TAME_CONFIG, ./tame.toml)
)
