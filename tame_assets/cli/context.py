"""``tame conjunctions``: a satellite's magnetic footprint in a station's field of view, from a TLE
file or an ephemeris CSV the user has (:mod:`tame_assets.geometry.conjunctions`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import polars as pl
import typer

from tame_assets.cli.common import ConfigOption, DataRootOption, app, settings, write_frame
from tame_assets.config import UsageError
from tame_assets.months import months_between
from tame_assets.warehouse.store import Warehouse, station_file


def _when(text: str, option: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an ISO date or time (e.g. 2010-12-06 or 2010-12-06T05:00)"
        ) from None


def station_frames(warehouse: Warehouse, station: str, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """The station's ``asim_images`` rows with ``start <= time < end`` from the warehouse (empty if none)."""
    if "asim_images" not in warehouse.tables():
        return pl.DataFrame()
    table = warehouse.read("asim_images", months_between(start, end), station_file(station))
    if not table.height:
        return table
    return table.filter((pl.col("time") >= start) & (pl.col("time") < end))


@app.command()
def conjunctions(
    tle: list[Path] = typer.Option([], "--tle", help="TLE file (2- or 3-line sets); repeatable.", dir_okay=False),
    ephemeris: list[Path] = typer.Option(
        [],
        "--ephemeris",
        help="Ephemeris CSV: time, lat, lon, alt_km (optional satellite); repeatable.",
        dir_okay=False,
    ),
    station: str = typer.Option(..., "--station", help="Configured station code, e.g. GILL or NYA."),
    start: str = typer.Option(..., "--from", help="Start (ISO, naive UTC), inclusive."),
    end: str = typer.Option(..., "--to", help="End (ISO, naive UTC), exclusive."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the rows to F.csv (or .parquet)."),
    figure: Optional[Path] = typer.Option(
        None, "--figure", help="F.png (+ F.svg): the first pass's middle frame with the footprint track."
    ),
    min_elevation: Optional[float] = typer.Option(
        None, "--min-elevation", help="Lowest footprint elevation, deg (default: tame.toml's min_elevation_deg)."
    ),
    step: float = typer.Option(10.0, "--step", help="Seconds between positions when the warehouse has no frames."),
    config: ConfigOption = None,
    data_root: DataRootOption = None,
) -> None:
    """Times a satellite's magnetic footprint (IGRF, emission altitude) is in a station's view: at the
    station's frames in the warehouse (with pixel track and intensity), else every --step seconds."""
    from tame_assets.geometry.conjunctions import (
        conjunctions_for_sources,
        load_sources,
        pass_figures,
        regular_times,
        station_image_conjunctions,
    )
    from tame_assets.geometry.stations import station_skymap

    run = settings(config, data_root)
    if not tle and not ephemeris:
        raise UsageError("give a satellite: --tle FILE or --ephemeris FILE")
    t0, t1 = _when(start, "--from"), _when(end, "--to")
    if t1 <= t0:
        raise UsageError(f"--to {end} must be after --from {start}")
    if not 0 <= (min_el := run.conjunction_min_elevation_deg if min_elevation is None else min_elevation) <= 90:
        raise UsageError(f"--min-elevation {min_el} must be between 0 and 90 degrees")
    config_station = run.station(station)
    sources = load_sources(tle, ephemeris)
    frames = station_frames(Warehouse(run.paths), config_station.code, t0, t1)
    if frames.height:
        typer.echo(f"{frames.height} frames of {config_station.code} in the warehouse; {len(sources)} satellite(s)")
        table = station_image_conjunctions(config_station, frames, sources, min_el)
    else:
        if step <= 0:
            raise UsageError(f"--step {step} must be positive seconds")
        sky = station_skymap(config_station, None)
        if sky is None:
            raise UsageError(f"station {config_station.code} has no geometry (skymap_file or a lens model)")
        times = regular_times(t0, t1, step)
        typer.echo(f"no frames of {config_station.code} in the warehouse: {times.size} times every {step:g} s")
        table = conjunctions_for_sources(sources, times, sky, station=config_station.code, min_elevation_deg=min_el)
    passes = table.select("satellite", "pass_start", "pass_end").unique(maintain_order=True)
    for sat, p0, p1 in passes.iter_rows():
        n = table.filter((pl.col("satellite") == sat) & (pl.col("pass_start") == p0)).height
        typer.echo(f"{sat}: {p0:%Y-%m-%d %H:%M:%S} – {p1:%H:%M:%S} UTC, {n} time(s) in view")
    if not passes.height:
        typer.echo(f"no footprint in view of {config_station.code} above {min_el:g}° between {t0} and {t1}")
    if out is not None:
        write_frame(table, out)
        typer.echo(f"{table.height} rows → {out}")
    if figure is not None:
        from tame_assets.analysis.figures import save_figure

        made = next(iter(pass_figures(table, frames, limit=1)), None) if frames.height else None
        if made is None:
            raise UsageError("no figure: no conjunction frame in the warehouse to draw the track on")
        files = save_figure(made[1], Path(figure).parent, Path(figure).stem)
        typer.echo(f"figure → {files.png} (+ {files.svg.name})")
