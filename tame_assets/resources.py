"""The one Dagster resource: platform settings, the warehouse and the archive locations."""

from __future__ import annotations

from functools import cached_property
from typing import Optional
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from tame_assets.config import SAMPLE_SOURCE, TameSettings, default_data_root
from tame_assets.storage import Warehouse, local_root_for


class TameResource(ConfigurableResource):
    """Where data lives and what to ingest (see :class:`tame_assets.config.TameSettings`).

    ``data_root`` empty means ``$TAME_DATA_ROOT`` or ``./data``. ``source="sample"`` serves the
    embedded sample archive over HTTP on 127.0.0.1 through the same clients as the real archives.
    """

    data_root: str = Field(default="", description="Local path or s3://bucket/prefix; '' = $TAME_DATA_ROOT or ./data")
    source: str = Field(default=SAMPLE_SOURCE, description="'sample' or 'remote'")
    asi_station: str = "NYA"
    asi_camera: str = "nya4"
    wavelengths_nm: list[float] = [557.7]
    magnetometer_station: str = "NAL"
    ceilometer_site: str = "NYA"
    uio_base_url: str = TameSettings.uio_base_url
    image_base_url: str = TameSettings.image_base_url
    pangaea_url: str = TameSettings.pangaea_url
    oath_url: str = TameSettings.oath_url
    backbone: str = "efficientnet_lite0"
    feature_kind: str = "logits"
    magnetometer_tolerance_s: float = 60.0
    ceilometer_tolerance_s: float = 300.0
    min_classifier_accuracy: float = 0.5
    refresh_days: Optional[int] = Field(
        default=None, description="Downloaded files with data younger than this many days are re-validated with the "
        "server on every run (a 304 keeps them); unset = the current and the previous month"
    )
    max_image_pixels: int = Field(default=TameSettings.max_image_pixels,
                                  description="Largest image accepted (width × height pixels), checked before decoding")
    oath_sha256: str = Field(default=TameSettings.oath_sha256,
                             description="SHA-256 the OATH tarball must have ('' = not checked)")
    labelled_set_dir: str = Field(
        default="", description="Folder with labels.csv + images/ for labelled_set_evaluation ('' = auto)"
    )
    benchmark_backbones: list[str] = Field(
        default=[], description="Backbones for oath_features/backbone_benchmark ([] = every available one)"
    )
    feature_kinds: list[str] = ["logits", "pooled"]
    labelled_set_fine_tune: bool = Field(
        default=False, description="labelled_set_evaluation also cross-validates fine-tuning Lite2's last block "
        "(tame train --fine-tune; ~6 min more for 300 images on 2 CPU cores)"
    )

    @cached_property
    def settings(self) -> TameSettings:
        return TameSettings(
            data_root=self.data_root or default_data_root(),
            source=self.source,
            asi_station=self.asi_station,
            asi_camera=self.asi_camera,
            wavelengths_nm=tuple(self.wavelengths_nm),
            magnetometer_station=self.magnetometer_station,
            ceilometer_site=self.ceilometer_site,
            uio_base_url=self.uio_base_url,
            image_base_url=self.image_base_url,
            pangaea_url=self.pangaea_url,
            oath_url=self.oath_url,
            backbone=self.backbone,
            feature_kind=self.feature_kind,
            magnetometer_tolerance_s=self.magnetometer_tolerance_s,
            ceilometer_tolerance_s=self.ceilometer_tolerance_s,
            min_classifier_accuracy=self.min_classifier_accuracy,
            refresh_days=self.refresh_days,
            max_image_pixels=self.max_image_pixels,
            oath_sha256=self.oath_sha256,
        )

    @cached_property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.data_root)

    @property
    def local_root(self) -> Path:
        """Local working directory for raw downloads, models and figures (``$TAME_LOCAL_ROOT`` or
        ``./data`` for s3 roots)."""
        return local_root_for(self.settings.data_root)

    @property
    def figures_dir(self) -> Path:
        return self.local_root / "figures"

    @property
    def models_dir(self) -> Path:
        return self.local_root / "models"

    @property
    def raw_dir(self) -> Path:
        return self.local_root / "raw"

    def benchmark_plan(self) -> dict[str, list[str]]:
        """Backbone → feature kinds to extract OATH features for (the configured pair always included)."""
        from tame_assets.ml.backbones import list_backbones

        names = self.benchmark_backbones or [b.name for b in list_backbones() if b.available]
        plan = {self.backbone: sorted({self.feature_kind, *self.feature_kinds})}
        for name in names:
            plan.setdefault(name, sorted(set(self.feature_kinds)))
        return plan

    def labelled_set(self) -> tuple[list[str], list[str], str]:
        """(image paths, labels, provenance) of the labelled set used by ``labelled_set_evaluation``."""
        from tame_assets.labelled_sets import resolve_labelled_set

        return resolve_labelled_set(self.labelled_set_dir, self.warehouse)
