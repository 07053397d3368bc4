"""What every ``tame`` command shares: the app, the ``--config`` / ``--data-root`` options (defined once),
settings loading, typed errors and atomic output files.

Errors: :class:`~tame_assets.config.SettingsError`, :class:`~tame_assets.config.UsageError` and the
sources' :class:`~tame_assets.sources.errors.SourceFormatError` family are the user's to fix: one line
``Error: …`` on stderr, exit code 2. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from tame_assets.config import SettingsError, TameSettings, UsageError, load_settings
from tame_assets.files import AtomicWriteError, atomic_path
from tame_assets.sources.errors import SourceFormatError

#: Exceptions reported as one-line usage errors (exit code 2) by every command (AtomicWriteError: an
#: output path that is a directory, or in a missing or unwritable folder).
USER_ERRORS = (SettingsError, UsageError, SourceFormatError, AtomicWriteError)

CONFIG_HELP = "Project file tame.toml (default: $TAME_CONFIG, else ./tame.toml in the working directory)."
DATA_ROOT_HELP = "Data root: a folder or s3://bucket/prefix (default: tame.toml's [storage] data_root, else ./data)."

#: ``--config FILE``, on every command.
ConfigOption = Annotated[Optional[Path], typer.Option("--config", help=CONFIG_HELP, dir_okay=False)]
#: ``--data-root``, on every command that reads or writes the warehouse.
DataRootOption = Annotated[Optional[str], typer.Option("--data-root", help=DATA_ROOT_HELP)]


def usage_error(message: str) -> None:
    """Print ``Error: message`` (one line) to stderr and exit with status 2, as for bad options."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


def _typed_errors(function: Callable) -> Callable:
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except USER_ERRORS as exc:
            usage_error(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)

    return wrapper


class TameTyper(typer.Typer):
    """A Typer app whose commands report :data:`USER_ERRORS` as one line and exit code 2."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(function: Callable) -> Callable:
            register(_typed_errors(function))
            return function

        return decorator


app = TameTyper(
    help="TAME aurora-image platform (Dagster assets, Parquet + DuckDB). Settings: tame.toml (`tame init` writes one).",
    no_args_is_help=True,
)


def settings(config: Optional[Path], data_root: Optional[str] = None, **overrides) -> TameSettings:
    """The command's settings: the project file (``--config``, ``$TAME_CONFIG``, ``./tame.toml``), then the
    command-line flags given (None = not given)."""
    return load_settings(config, data_root=data_root, **overrides)


def write_atomic(out: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``out`` (its folder created), then rename it to ``out``
    (a failed write leaves no partial file and the previous ``out`` intact; :mod:`tame_assets.files`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        write(tmp)


def write_frame(df, out: Path) -> None:
    """``df`` as CSV (``.csv``) or Parquet (anything else), written atomically."""
    write_atomic(out, df.write_csv if Path(out).suffix == ".csv" else df.write_parquet)
