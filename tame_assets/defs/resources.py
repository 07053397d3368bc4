"""The one Dagster resource: :class:`~tame_assets.config.TameSettings` as run configuration.

The resource's fields are exactly the settings dataclass's fields (same names and defaults; lists
where the dataclass has tuples) — ``tame_assets_tests/test_config.py`` fails if the two drift.
The code location builds it from the project file (``TameResource.from_settings(load_settings())``
in :mod:`tame_assets.defs.definitions`), so the UI's launches, schedules and sensors run with
``tame.toml``'s settings; ``config_file`` names that file, whose ``[stations.*]`` and ``[compute]``
tables the settings read. ``data_root`` empty means ``./data``; ``local_root`` empty means the data
root itself (``./data`` for object-store roots).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields
from functools import cached_property
from typing import Optional

from dagster import ConfigurableResource

from tame_assets.config import PathLayout, TameSettings
from tame_assets.warehouse.store import Warehouse

_DEFAULTS = {f.name: f.default for f in fields(TameSettings) if f.default is not MISSING}


class TameResource(ConfigurableResource):
    """Platform settings (see :class:`tame_assets.config.TameSettings` for each field's meaning)."""

    data_root: str = ""
    local_root: str = _DEFAULTS["local_root"]
    source: str = _DEFAULTS["source"]
    asi_station: str = _DEFAULTS["asi_station"]
    asi_camera: str = _DEFAULTS["asi_camera"]
    wavelengths_nm: list[float] = list(_DEFAULTS["wavelengths_nm"])
    magnetometer_station: str = _DEFAULTS["magnetometer_station"]
    ceilometer_site: str = _DEFAULTS["ceilometer_site"]
    uio_base_url: str = _DEFAULTS["uio_base_url"]
    image_base_url: str = _DEFAULTS["image_base_url"]
    pangaea_url: str = _DEFAULTS["pangaea_url"]
    oath_url: str = _DEFAULTS["oath_url"]
    themis_cdf_base_url: str = _DEFAULTS["themis_cdf_base_url"]
    themis_pgm_base_url: str = _DEFAULTS["themis_pgm_base_url"]
    stations_file: str = _DEFAULTS["stations_file"]
    image_requester_name: str = _DEFAULTS["image_requester_name"]
    image_requester_institute: str = _DEFAULTS["image_requester_institute"]
    image_requester_email: str = _DEFAULTS["image_requester_email"]
    backbone: str = _DEFAULTS["backbone"]
    feature_kind: str = _DEFAULTS["feature_kind"]
    magnetometer_tolerance_s: float = _DEFAULTS["magnetometer_tolerance_s"]
    ceilometer_tolerance_s: float = _DEFAULTS["ceilometer_tolerance_s"]
    min_classifier_accuracy: float = _DEFAULTS["min_classifier_accuracy"]
    refresh_days: Optional[int] = _DEFAULTS["refresh_days"]
    max_image_pixels: int = _DEFAULTS["max_image_pixels"]
    download_deadline_s: float = _DEFAULTS["download_deadline_s"]
    oath_sha256: str = _DEFAULTS["oath_sha256"]
    labelled_set_dir: str = _DEFAULTS["labelled_set_dir"]
    benchmark_backbones: list[str] = list(_DEFAULTS["benchmark_backbones"])
    labelled_set_backbones: list[str] = list(_DEFAULTS["labelled_set_backbones"])
    feature_kinds: list[str] = list(_DEFAULTS["feature_kinds"])
    labelled_set_fine_tune: bool = _DEFAULTS["labelled_set_fine_tune"]
    daily_products_max_days: int = _DEFAULTS["daily_products_max_days"]
    emission_height: str = _DEFAULTS["emission_height"]
    keogram_magnetic: bool = _DEFAULTS["keogram_magnetic"]
    conjunction_tle_files: list[str] = list(_DEFAULTS["conjunction_tle_files"])
    conjunction_ephemeris_files: list[str] = list(_DEFAULTS["conjunction_ephemeris_files"])
    conjunction_min_elevation_deg: float = _DEFAULTS["conjunction_min_elevation_deg"]
    compute: str = _DEFAULTS["compute"]
    compute_settings_file: str = _DEFAULTS["compute_settings_file"]
    duckdb_s3: str = _DEFAULTS["duckdb_s3"]
    sample_cache: str = _DEFAULTS["sample_cache"]
    k8s_max_concurrent: int = _DEFAULTS["k8s_max_concurrent"]
    k8s_gpu_concurrency: int = _DEFAULTS["k8s_gpu_concurrency"]
    sql_memory_limit: str = _DEFAULTS["sql_memory_limit"]
    sql_max_temp_directory_size: str = _DEFAULTS["sql_max_temp_directory_size"]
    sql_timeout_s: float = _DEFAULTS["sql_timeout_s"]
    sql_max_query_chars: int = _DEFAULTS["sql_max_query_chars"]
    live_watch_folder: str = _DEFAULTS["live_watch_folder"]
    live_poll_s: float = _DEFAULTS["live_poll_s"]
    live_keogram_every_s: float = _DEFAULTS["live_keogram_every_s"]
    alerts_webhook_url: str = _DEFAULTS["alerts_webhook_url"]
    alerts_webhook_timeout_s: float = _DEFAULTS["alerts_webhook_timeout_s"]
    alerts_webhook_retries: int = _DEFAULTS["alerts_webhook_retries"]
    config_file: str = _DEFAULTS["config_file"]

    @classmethod
    def from_settings(cls, settings: TameSettings) -> "TameResource":
        """The resource carrying exactly ``settings`` (how the CLI and tests hand settings to a run)."""
        values = asdict(settings)
        return cls(**{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})

    @cached_property
    def settings(self) -> TameSettings:
        values = {f.name: getattr(self, f.name) for f in fields(TameSettings)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        if not values["data_root"]:
            del values["data_root"]  # the dataclass default: ./data
        return TameSettings(**values)

    @property
    def paths(self) -> PathLayout:
        return self.settings.paths

    @cached_property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.paths)

    def benchmark_plan(self) -> dict[str, list[str]]:
        """Backbone → feature kinds for ``oath_features`` (see :meth:`TameSettings.benchmark_plan`)."""
        from tame_assets.ml.backbones import list_backbones

        return self.settings.benchmark_plan([b.name for b in list_backbones() if b.available])

    def labelled_set(self) -> tuple[list[str], list[str], str]:
        """(image paths, labels, provenance) of the labelled set used by ``labelled_set_evaluation``."""
        from tame_assets.analysis.labelled_sets import resolve_labelled_set

        return resolve_labelled_set(self.labelled_set_dir, self.warehouse)
