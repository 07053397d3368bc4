"""``tame demo / materialize / months / info / ui / init``: runs, what they made, the UI, the project file."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from tame_assets.cli.common import ConfigOption, DataRootOption, app, settings, usage_error, write_atomic
from tame_assets.config import (
    COMPUTE_HELP,
    CONFIG_FILE_NAME,
    PARTITIONS_START,
    SAMPLE_MONTHS,
    TameSettings,
    UsageError,
    child_process_env,
    config_values,
    render_config,
)
from tame_assets.months import parse_month

#: Days per month with daily summary figures and movies in ``tame demo`` (``tame materialize``: every day).
DEMO_DAILY_PRODUCTS = 4


def _months(values: list[str]) -> list[str]:
    """Validated ``YYYY-MM`` months within the monthly partitions (PARTITIONS_START to the current
    UTC month); otherwise a one-line usage error, exit code 2."""
    latest = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    months = []
    for value in values:
        try:
            month = parse_month(value).strftime("%Y-%m")
        except ValueError as exc:
            usage_error(f"--month: {exc}")
        if not PARTITIONS_START <= month <= latest:
            usage_error(f"--month {month} is outside the monthly partitions {PARTITIONS_START}..{latest}")
        months.append(month)
    return months


def _months_with_data(settings: TameSettings, months: list[str]) -> list[str]:
    """``months`` if the configured image archive has data for each; otherwise one line naming the
    empty months and the archive's months, exit code 2. An archive that cannot be listed (offline)
    is reported in one line and the months are kept."""
    from tame_assets.sources.locations import available_months

    try:
        available = set(available_months(settings))
    except Exception as exc:  # noqa: BLE001 - listing is advisory: network errors of any kind
        typer.echo(f"note: could not list the archive's months ({exc}); running anyway", err=True)
        return months
    empty = [m for m in months if m not in available]
    if empty:
        typer.echo(
            f"no data for {', '.join(empty)} in the configured {settings.source} archive "
            f"(it has {_month_span(sorted(available))}; see `tame months`)",
            err=True,
        )
        raise typer.Exit(2)
    return months


def _month_span(months: list[str]) -> str:
    if not months:
        return "no months"
    return ", ".join(months) if len(months) <= 6 else f"{len(months)} months, {months[0]}..{months[-1]}"


@app.command()
def demo(
    data_root: DataRootOption = None,
    months: list[str] = typer.Option(list(SAMPLE_MONTHS), "--month", help="Months to materialize."),
    config: ConfigOption = None,
) -> None:
    """Materialize every asset for the embedded SAMPLE archive (synthetic data) into the data root
    (daily summary figures and movies for the DEMO_DAILY_PRODUCTS busiest days of each month; the
    labelled-set evaluation on the sample's OATH-format set with the default backbone — unless
    tame.toml sets these)."""
    from tame_assets.defs.runner import materialize_everything

    base = settings(config, data_root)
    chosen = config_values(base.config_file) if base.config_file else {}
    presets = {"daily_products_max_days": DEMO_DAILY_PRODUCTS, "labelled_set_backbones": (base.backbone,)}
    run_settings = replace(base, **{k: v for k, v in presets.items() if k not in chosen})
    months = _months_with_data(run_settings, _months(months))
    typer.echo(f"TAME demo on the embedded sample archive (synthetic data) → {run_settings.paths.data_root}")
    started = time.perf_counter()
    ok = materialize_everything(run_settings, months, echo=typer.echo)
    _print_summary(run_settings)
    typer.echo(f"{'done' if ok else 'FAILED'} in {time.perf_counter() - started:.0f} s")
    raise typer.Exit(0 if ok else 1)


@app.command()
def materialize(
    month: list[str] = typer.Option([], "--month", help="Monthly partition(s) YYYY-MM."),
    select: Optional[str] = typer.Option(None, help="Comma-separated asset names (default: all)."),
    data_root: DataRootOption = None,
    compute: str = typer.Option(
        "", help=f"Where per-frame work runs: {COMPUTE_HELP} (default: tame.toml's [compute] mode, else local)."
    ),
    compute_settings: str = typer.Option(
        "",
        help="TOML of cluster parameters (queue, cores, memory, walltime, "
        "job_script_prologue, …; default: tame.toml's [compute] table).",
    ),
    station: list[str] = typer.Option(
        [], "--station", help="Camera station(s), e.g. NYA, GAKO (default: every configured one)."
    ),
    stations_file: str = typer.Option(
        "",
        help="TOML file adding stations ([CODE] tables; or [stations.CODE] "
        "tables in tame.toml; see docs/configuration.md).",
    ),
    config: ConfigOption = None,
    force: bool = typer.Option(
        False,
        "--force",
        help="Also re-run unpartitioned upstream assets (OATH chain, SVM "
        "search, benchmarks) that are up to date (default: skipped, one line names them).",
    ),
) -> None:
    """Materialize assets: per-station ones for each --station, monthly ones for each --month,
    unpartitioned ones once (those up to date on the instance are skipped unless --force)."""
    from tame_assets.defs.runner import materialize_selection

    names = [s.strip() for s in select.split(",")] if select else None
    run_settings = settings(
        config,
        data_root,
        compute=compute or None,
        compute_settings_file=str(Path(compute_settings).resolve()) if compute_settings else None,
        stations_file=str(Path(stations_file).resolve()) if stations_file else None,
    )
    months = _months(month)
    stations = [run_settings.station(code.strip().upper()).code for code in station] or None
    archived = [
        s
        for s in run_settings.station_table().stations.values()
        if (stations is None or s.code in stations) and s.network == "uio" and not s.folder
    ]
    if months and archived:
        months = _months_with_data(run_settings, months)
    _ = run_settings.compute_settings  # a bad --compute or settings file: one clear error before any run
    ok = materialize_selection(run_settings, names, months, echo=typer.echo, stations=stations, force=force)
    raise typer.Exit(0 if ok else 1)


@app.command()
def info(data_root: DataRootOption = None, config: ConfigOption = None) -> None:
    """Data root, tables, partitions present and row counts; unreadable tables and skipped folders."""
    _print_summary(settings(config, data_root))


@app.command()
def months(data_root: DataRootOption = None, config: ConfigOption = None) -> None:
    """Months the configured image archive has data for, and which of them are in the warehouse."""
    from tame_assets.sources.locations import available_months
    from tame_assets.warehouse.store import Warehouse

    run_settings = settings(config, data_root)
    try:
        available = available_months(run_settings)
    except Exception as exc:  # noqa: BLE001 - network errors of any kind, reported in one line
        typer.echo(f"could not list the {run_settings.source} archive's months: {exc}", err=True)
        raise typer.Exit(1) from None
    present = set(Warehouse(run_settings.paths).months("asim_images"))
    typer.echo(
        f"{run_settings.source} archive: {len(available)} month(s) with images "
        f"(camera {run_settings.asi_camera}, {', '.join(f'{w:g}' for w in run_settings.wavelengths_nm)} nm)"
    )
    for month in available:
        typer.echo(f"  {month}  {'materialized' if month in present else '-'}")


#: Start of the warning ``dagster dev`` prints on every start (it is superseded by ``dg dev`` from the
#: separate ``dagster-dg-cli`` package, which this project does not install).
DEV_SUPERSEDED = "Function `dev_command` is superseded"
#: The settings file ``tame ui`` writes into the instance folder when flags override the project file.
UI_CONFIG_NAME = "tame.ui.toml"


def ui_launch(run_settings: TameSettings, host: str, port: int, overridden: bool) -> tuple[list[str], dict, Path]:
    """(command, env variables, working directory) of ``dagster dev`` for ``run_settings``: the child gets
    ``TAME_CONFIG`` = the project file (absolute), or — when command-line flags changed the settings
    (``overridden``) or there is no file — a file of exactly these settings written into the instance
    folder, and ``DAGSTER_HOME`` = the shared instance."""
    from tame_assets.defs.runner import dagster_home

    home = dagster_home(run_settings)
    config_file = Path(run_settings.config_file) if run_settings.config_file else None
    if config_file is None or overridden:
        paths = run_settings.paths
        absolute = replace(
            run_settings, data_root=paths.data_root, local_root=str(paths.local_root) if run_settings.local_root else ""
        )
        config_file = home / UI_CONFIG_NAME
        text = render_config(absolute)
        write_atomic(config_file, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    command = [
        sys.executable,
        "-W",
        f"ignore:{DEV_SUPERSEDED}",  # "use 'dg dev'": dg is not installed
        "-m",
        "dagster",
        "dev",
        "-h",
        host,
        "-p",
        str(port),
        "-m",
        "tame_assets.defs.definitions",
    ]
    return command, child_process_env(config_file, home), home


@app.command()
def ui(
    data_root: DataRootOption = None,
    port: int = typer.Option(3000, help="Port of the web UI (on 127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
    config: ConfigOption = None,
) -> None:
    """The Dagster UI (web server + daemon) on the instance `tame` runs record, with tame.toml's settings.

    It shows every materialization, partition and check result the CLI produced (DAGSTER_HOME is
    <local root>/dagster_home unless $DAGSTER_HOME is set); launches, schedules and sensors run with the
    same project file (passed as $TAME_CONFIG), so its stations and compute mode apply."""
    from dagster import DagsterInstance

    from tame_assets.defs.runner import register_stations

    run_settings = settings(config, data_root)
    command, env, home = ui_launch(run_settings, host, port, overridden=data_root is not None)
    # every configured station is a partition before the UI opens: a station added to tame.toml only is
    # in the station × month partition picker at once (stations_sensor does the same for a running UI)
    with DagsterInstance.from_config(str(home)) as instance:
        register_stations(instance, run_settings.station_table().codes)
    typer.echo(
        f"Dagster UI on http://{host}:{port}  (DAGSTER_HOME={home}, data root {run_settings.paths.data_root}, "
        f"settings {env['TAME_CONFIG']})"
    )
    try:
        raise typer.Exit(subprocess.call(command, env=env, cwd=home))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def init(
    path: Path = typer.Argument(Path(CONFIG_FILE_NAME), help="Where to write the project file.", dir_okay=False),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented tame.toml holding every setting at its default, with its meaning."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    text = render_config(TameSettings())
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    typer.echo(f"wrote {path} (every setting at its default; see docs/configuration.md)")


def _print_summary(run_settings: TameSettings) -> None:
    from tame_assets.warehouse.store import Warehouse

    wh = Warehouse(run_settings.paths)
    typer.echo(f"data root: {wh.root}")
    db = wh.duckdb_path
    opener = f"cd {db.parent} && duckdb -readonly {db.name}" if wh.relative_views else f"duckdb -readonly {db}"
    typer.echo(f'DuckDB views: {db}  (e.g. {opener} -c "select count(*) from magnetometer")')
    for table, status in wh.table_status().items():
        months = wh.months(table)
        span = f"{months[0]}..{months[-1]} ({len(months)} months)" if months else "unpartitioned"
        if isinstance(status, int):
            typer.echo(f"  {table:<28} {status:>10,} rows  {span}")
        else:
            typer.echo(f"  {table:<28} corrupt: {status}")
    for folder, reason in wh.skipped_folders().items():
        typer.echo(f"  skipped folder {folder!r}: {reason}")
    figures = sorted(run_settings.paths.figures_dir.glob("*.png"))
    if figures:
        typer.echo(f"figures: {len(figures)} PNG (+SVG) in {figures[0].parent}")
