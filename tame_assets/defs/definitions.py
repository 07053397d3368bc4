"""The Dagster code location: every asset, check, job, schedule and sensor of the platform."""

from __future__ import annotations

from dagster import Definitions

from tame_assets.config import load_settings
from tame_assets.defs.asset_defs import all_assets
from tame_assets.defs.checks import all_checks
from tame_assets.defs.live import live_frames_spec
from tame_assets.defs.resources import TameResource
from tame_assets.defs.schedules import all_jobs, all_schedules, all_sensors

__all__ = ["all_assets", "defs"]

defs = Definitions(
    assets=[*all_assets, live_frames_spec],  # live_frames: written by `tame live`, recorded as asset events
    asset_checks=all_checks,
    jobs=all_jobs,
    schedules=all_schedules,
    sensors=all_sensors,
    resources={"tame": TameResource.from_settings(load_settings())},  # tame.toml ($TAME_CONFIG, ./tame.toml)
)
