"""Where the per-frame work runs: :class:`ComputeSettings` and the ``--compute`` value parser.

Plain Python (no dask import): the settings are data; :func:`tame_assets.compute.open_engine`
turns them into a running engine.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable

#: ``on_progress(chunks_done, chunks_total, where)``; ``where`` is the worker address or ``"local"``.
ChunkProgress = Callable[[int, int, str], None]

LOCAL_WHERE = "local"

#: Modes that start (and later close) a cluster of their own; ``dask://HOST:PORT`` connects instead.
CLUSTER_MODES = ("local", "dask-local", "slurm", "pbs", "kubernetes")
#: Environment variables :class:`tame_assets.config.TameSettings` reads when its compute fields are empty.
COMPUTE_ENV, COMPUTE_SETTINGS_ENV = "TAME_COMPUTE", "TAME_COMPUTE_SETTINGS"
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
    started (batch queues can be slow) before failing with a clear error.
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
        for name in ("queue", "account", "python", "local_directory", "scheduler_host", "interface", "image", "namespace"):
            if any(c in getattr(self, name) for c in "\n\r;`$"):
                problems.append(f"{name} {getattr(self, name)!r} contains a newline, ';', '`' or '$'")
        if any("\n" in line for line in (*self.job_script_prologue, *self.job_extra_directives)):
            problems.append("job_script_prologue/job_extra_directives lines must not contain newlines (one command per entry)")
        if self.mode == "kubernetes" and not self.image:
            problems.append("mode kubernetes needs image (a container image with tame_assets installed)")
        if self.worker_timeout_s <= 0:
            problems.append(f"worker_timeout_s must be > 0, not {self.worker_timeout_s!r}")
        if problems:
            raise ValueError("compute settings: " + "; ".join(problems))

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
    ``base``. Raises ``ValueError`` with a one-line message for anything else."""
    spec = (spec or "").strip()
    base = base or ComputeSettings()
    if spec.startswith("dask://"):
        match = _ADDRESS.match(spec)
        if not match:
            raise ValueError(f"--compute {spec!r}: a scheduler address must look like dask://HOST:PORT (e.g. dask://10.0.0.5:8786)")
        if not 0 < int(match["port"]) < 65536:
            raise ValueError(f"--compute {spec!r}: port {match['port']} is outside 1–65535")
    elif spec not in CLUSTER_MODES:
        raise ValueError(f"--compute {spec!r}: expected one of {COMPUTE_HELP}")
    return replace(base, mode=spec)


def compute_settings_from_mapping(values: dict, source: str = "compute settings") -> ComputeSettings:
    """:class:`ComputeSettings` from a plain mapping (TOML table, resource config); unknown keys and
    bad values raise ``ValueError`` naming ``source`` and the key."""
    known = {f.name: f for f in fields(ComputeSettings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    cleaned = {}
    for key, value in values.items():
        if key in ("job_script_prologue", "job_extra_directives"):
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{source}: {key} must be a list of strings (one command per entry)")
            value = tuple(value)
        cleaned[key] = value
    try:
        return ComputeSettings(**cleaned)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None


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
        raise ValueError(f"{path}: cannot read compute settings ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    return compute_settings_from_mapping(data.get("compute", data), source=str(path))


def resolve_compute_settings(spec: str = "", settings_file: str | Path = "") -> ComputeSettings:
    """The settings in effect: cluster parameters from the TOML ``settings_file`` (none = defaults)
    and the mode from ``spec`` (none = the file's mode, else ``local``). Raises ``ValueError`` with
    one line for a bad value or file. (:class:`tame_assets.config.TameSettings` supplies
    ``$TAME_COMPUTE`` / ``$TAME_COMPUTE_SETTINGS`` when its fields are empty.)"""
    base = load_compute_settings(settings_file) if settings_file else ComputeSettings()
    return parse_compute(spec, base) if spec else base


def settings_dict(settings: ComputeSettings) -> dict:
    """The settings as a plain dict (tuples as lists), e.g. for run metadata."""
    return {f.name: list(v) if isinstance(v := getattr(settings, f.name), tuple) else v for f in fields(settings)}


__all__ = ["CLUSTER_MODES", "COMPUTE_ENV", "COMPUTE_HELP", "COMPUTE_SETTINGS_ENV", "ComputeSettings", "compute_settings_from_mapping",
           "load_compute_settings", "parse_compute", "resolve_compute_settings", "settings_dict"]
