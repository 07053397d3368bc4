"""``tame`` command line: demo, materialize, classify, train, sql, info, months, ui."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import typer

from tame_assets.config import MAX_IMAGE_PIXELS, MAX_PIXELS_ENV, PARTITIONS_START, SAMPLE_MONTHS, TameSettings
from tame_assets.months import parse_month

app = typer.Typer(help="TAME aurora-image platform (Dagster assets, Parquet + DuckDB).", no_args_is_help=True)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


DATA_ROOT_HELP = "Data root: a folder or s3://bucket/prefix (default $TAME_DATA_ROOT or ./data)."


def _settings(data_root: Optional[str]) -> TameSettings:
    """The run's settings: defaults (and ``$TAME_DATA_ROOT``), the data root given on the command line."""
    return TameSettings(data_root=data_root) if data_root else TameSettings()


def _usage_error(message: str) -> None:
    """Print one line to stderr and exit with status 2 (a usage error, as for bad options)."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


def _months(values: list[str]) -> list[str]:
    """Validated ``YYYY-MM`` months within the monthly partitions (PARTITIONS_START to the current
    UTC month); otherwise a one-line usage error, exit code 2."""
    latest = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    months = []
    for value in values:
        try:
            month = parse_month(value).strftime("%Y-%m")
        except ValueError as exc:
            _usage_error(f"--month: {exc}")
        if not PARTITIONS_START <= month <= latest:
            _usage_error(f"--month {month} is outside the monthly partitions {PARTITIONS_START}..{latest}")
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
        typer.echo(f"no data for {', '.join(empty)} in the configured {settings.source} archive "
                   f"(it has {_month_span(sorted(available))}; see `tame months`)", err=True)
        raise typer.Exit(2)
    return months


def _month_span(months: list[str]) -> str:
    if not months:
        return "no months"
    return ", ".join(months) if len(months) <= 6 else f"{len(months)} months, {months[0]}..{months[-1]}"


#: Days per month with daily summary figures and movies in ``tame demo`` (``tame materialize``: every day).
DEMO_DAILY_PRODUCTS = 4


@app.command()
def demo(
    data_root: Optional[str] = typer.Option(None, help=DATA_ROOT_HELP),
    months: list[str] = typer.Option(list(SAMPLE_MONTHS), "--month", help="Months to materialize."),
) -> None:
    """Materialize every asset for the embedded SAMPLE archive (synthetic data) into the data root
    (daily summary figures and movies for the DEMO_DAILY_PRODUCTS busiest days of each month; the
    labelled-set evaluation on the sample's OATH-format set with the default backbone — the real UiO
    set with every backbone is `tame materialize --select labelled_set_evaluation`)."""
    from dataclasses import replace

    from tame_assets.analysis.labelled_sets import OATH_SET
    from tame_assets.defs.runner import materialize_everything

    base = _settings(data_root)  # the labelled-set evaluation: the sample's set, with the default backbone
    settings = replace(base, daily_products_max_days=DEMO_DAILY_PRODUCTS, labelled_set_dir=OATH_SET,
                       labelled_set_backbones=(base.backbone,))
    months = _months_with_data(settings, _months(months))
    typer.echo(f"TAME demo on the embedded sample archive (synthetic data) → {settings.paths.data_root}")
    started = time.perf_counter()
    ok = materialize_everything(settings, months, echo=typer.echo)
    _print_summary(settings)
    typer.echo(f"{'done' if ok else 'FAILED'} in {time.perf_counter() - started:.0f} s")
    raise typer.Exit(0 if ok else 1)


@app.command()
def materialize(
    month: list[str] = typer.Option([], "--month", help="Monthly partition(s) YYYY-MM."),
    select: Optional[str] = typer.Option(None, help="Comma-separated asset names (default: all)."),
    data_root: Optional[str] = typer.Option(None, help=DATA_ROOT_HELP),
    compute: str = typer.Option("", help="Where per-frame work runs: local | dask-local | dask://HOST:PORT | slurm | pbs "
                                "(default $TAME_COMPUTE, else the settings file's mode, else local)."),
    compute_settings: str = typer.Option("", help="TOML of cluster parameters (queue, cores, memory, walltime, "
                                         "job_script_prologue, …; default $TAME_COMPUTE_SETTINGS)."),
    station: list[str] = typer.Option([], "--station", help="Camera station(s), e.g. NYA, GAKO (default: every configured one)."),
    stations_file: str = typer.Option("", help="TOML file adding stations (network, camera, image_format, folder, "
                                      "skymap_file, …; see docs/networks.md)."),
) -> None:
    """Materialize assets: per-station ones for each --station, monthly ones for each --month,
    unpartitioned ones once."""
    from dataclasses import replace

    from tame_assets.defs.runner import materialize_selection

    names = [s.strip() for s in select.split(",")] if select else None
    settings = replace(_settings(data_root), compute=compute, compute_settings_file=compute_settings,
                       stations_file=str(Path(stations_file).resolve()) if stations_file else "")
    months = _months(month)
    try:
        stations = [settings.station(code.strip().upper()).code for code in station] or None
        archived = [s for s in settings.station_table().stations.values()
                    if (stations is None or s.code in stations) and s.network == "uio" and not s.folder]
        if months and archived:
            months = _months_with_data(settings, months)
        settings.compute_settings  # a bad --compute or settings file: one clear error before any run
        ok = materialize_selection(settings, names, months, echo=typer.echo, stations=stations)
    except ValueError as exc:  # unknown assets or stations, a bad stations file, monthly assets without --month
        _usage_error(str(exc))
    raise typer.Exit(0 if ok else 1)


@app.command()
def classify(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of all-sky images."),
    out: Path = typer.Option(Path("predictions.parquet"), help="Output Parquet (or .csv)."),
    model: Optional[Path] = typer.Option(None, help="Saved classifier (default: the oath_classifier asset's)."),
    batch_size: int = typer.Option(64, min=1),
    data_root: Optional[str] = typer.Option(None, help="Data root whose oath_classifier model to use (see tame demo)."),
    max_image_pixels: int = typer.Option(MAX_IMAGE_PIXELS, min=1, envvar=MAX_PIXELS_ENV,
                                         help="Largest image (width × height) decoded; larger ones get an error row."),
) -> None:
    """Classify every image in DIRECTORY; one output row per file (unreadable or oversized ones get an error)."""
    from tqdm import tqdm

    from tame_assets.ml.classifier import AsimClassifier

    paths = sorted(str(p) for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise typer.BadParameter(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {directory}")
    try:
        clf = AsimClassifier(model) if model else AsimClassifier(data_root=_settings(data_root).paths)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2)
    with tqdm(total=len(paths), unit="img", desc="classify") as bar:
        df = clf.classify_images(paths, batch_size=batch_size, progress=lambda done, total: bar.update(done - bar.n),
                                 max_image_pixels=max_image_pixels)
    _write_frame(df, out)
    typer.echo(df.group_by("pred").len().sort("len", descending=True))
    typer.echo(f"{df.height} rows → {out}")


@app.command()
def train(
    labels: Path = typer.Option(..., exists=True, dir_okay=False, help="CSV with filename,label columns."),
    images: Path = typer.Option(..., exists=True, file_okay=False, help="Folder holding the images."),
    out: Path = typer.Option(..., help="Where to save the classifier (directory)."),
    backbone: list[str] = typer.Option(["efficientnet_lite2"], help="Backbone(s); several are concatenated."),
    feature_kind: str = typer.Option("logits", help="logits (1000 ImageNet outputs) or pooled."),
    rotations: list[float] = typer.Option([0.0, 90.0, 180.0, 270.0], "--rotation",
                                          help="Rotations (degrees) whose features are averaged."),
    fine_tune: bool = typer.Option(False, "--fine-tune", help="Fine-tune the backbone's last block instead of an "
                                   "SVM on frozen features (more accurate, minutes for 300 images on 2 cores)."),
    epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs (with --fine-tune; default 8)."),
    networks: Optional[int] = typer.Option(None, help="With --fine-tune: networks trained from different initialisations, "
                                 "probabilities averaged (training time × N)."),
    blend_svm: bool = typer.Option(False, "--blend-svm", help="With --fine-tune: average the network's "
                                   "probabilities with an SVM on frozen features."),
    folds: int = typer.Option(5, help="Cross-validation folds for the reported metrics."),
) -> None:
    """Train a classifier on your own labelled images (any label set); prints its CV metrics."""
    from tame_assets.ml.classifier import AsimClassifier

    started = time.perf_counter()
    recipe = False
    if fine_tune:
        from tame_assets.ml.finetune import FineTuneConfig

        if len(backbone) != 1:
            raise typer.BadParameter("--fine-tune takes one --backbone")
        try:
            given = {k: v for k, v in {"epochs": epochs, "networks": networks}.items() if v is not None}
            recipe = FineTuneConfig(backbone=backbone[0], blend_frozen_svm=blend_svm, **given)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    from tame_assets.sources.labelled import LabelsFormatError

    try:
        clf = AsimClassifier.train(labels, images, backbone=backbone, feature_kind=feature_kind, rotations=rotations,
                                   folds=folds, fine_tune=recipe, progress=True)
    except LabelsFormatError as exc:
        _usage_error(str(exc))
    clf.save(out)
    typer.echo(f"labels: {', '.join(clf.classes)}")
    typer.echo(f"method: {clf.card.method} on {clf.card.backbone}")
    for key, value in clf.card.metrics.items():
        if isinstance(value, float):
            typer.echo(f"{key}: {value:.4f}")
        elif isinstance(value, int):
            typer.echo(f"{key}: {value}")
    typer.echo(f"saved → {out} ({time.perf_counter() - started:.0f} s)")


@app.command()
def skymap(
    file: str = typer.Argument(..., help="A THEMIS skymap .sav file, or a camera with a lens model (nya6, nya4)."),
    out: Path = typer.Option(..., "--out", help="Output Parquet: one row per pixel."),
    altitude: Optional[float] = typer.Option(None, "--altitude", help="Emission altitude, km (default 110)."),
    min_elevation: float = typer.Option(10.0, help="Pixels below this elevation (degrees) get no lat/lon."),
    image_format: str = typer.Option("cdf", help="THEMIS: rows as in the cdf or pgm files."),
) -> None:
    """Camera geometry per pixel: row, col, azimuth_deg, elevation_deg, lat_deg, lon_deg (row 0 = first stored row)."""
    from tame_assets.geometry import skymap_command

    try:
        table = skymap_command(file, altitude, out, min_elevation, image_format)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    typer.echo(f"{table.height:,} pixels ({table['lat_deg'].is_not_null().sum():,} with lat/lon) → {out}")


def _load_skymap(path: Optional[str], altitude: Optional[float], files: list[Path]):
    """The skymap for ``files``; THEMIS PGM rows differ from CDF rows (see tame_assets.geometry)."""
    if path is None:
        return None
    from tame_assets.geometry import skymap_for_file

    pgm = any(f.name.lower().endswith((".pgm", ".pgm.gz")) for f in files)
    try:
        return skymap_for_file(path, altitude, image_format="pgm" if pgm else "cdf")
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--skymap") from None


def _echo_movie(movie) -> None:
    typer.echo(f"{movie.n_frames} frames, {movie.duration_s:.1f} s → {movie.path}")


def _report_skipped(skipped: list[tuple[str, str]]) -> None:
    for name, reason in skipped:
        typer.echo(f"skipped {name}: {reason}", err=True)


@app.command()
def keogram(
    files: list[Path] = typer.Argument(..., help="UiO PNG or THEMIS CDF / PGM files (any order)."),
    out: Path = typer.Option(..., "--out", help="K.parquet (time, lat_deg|row, intensity) or K.png."),
    skymap_file: Optional[str] = typer.Option(None, "--skymap", help="Skymap (.sav or camera name): latitude instead of rows."),
    altitude: Optional[float] = typer.Option(None, "--altitude", help="Emission altitude, km (with --skymap)."),
    direction: str = typer.Option("ns", help="ns (north-south) or ew (east-west) slice through the zenith."),
) -> None:
    """Keogram of files you already have (no warehouse): one time per frame."""
    from tame_assets.products.commands import keogram_files_command

    sky = _load_skymap(skymap_file, altitude, files)
    try:
        result = keogram_files_command(files, out, sky, altitude if sky is None else None, direction=direction)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _report_skipped(result.skipped)
    typer.echo(f"{result.n_frames} frames ({result.coordinate}) → {result.out}")


@app.command()
def movie(
    files: list[Path] = typer.Argument(..., help="UiO PNG or THEMIS CDF / PGM files (any order)."),
    out: Path = typer.Option(..., "--out", help="Output MP4."),
    fps: float = typer.Option(10.0, help="Frames per second."),
) -> None:
    """MP4 movie of files you already have, each frame annotated with its UTC time."""
    from tame_assets.products.commands import movie_files_command

    try:
        result = movie_files_command(files, out, fps=fps)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _report_skipped(result.skipped)
    _echo_movie(result.movie)


@app.command()
def find(
    query: str = typer.Argument(..., help="SQL over the warehouse whose rows have `file` (e.g. SELECT * FROM aurora_catalog WHERE …)."),
    out: Path = typer.Option(..., "--out", help="The matching frames: .csv or .parquet."),
    movie_out: Optional[Path] = typer.Option(None, "--movie", help="Also an MP4 of the matching frames."),
    keogram_out: Optional[Path] = typer.Option(None, "--keogram", help="Also a keogram of them (.png or .parquet)."),
    data_root: Optional[str] = typer.Option(None, help=DATA_ROOT_HELP),
) -> None:
    """Export the frames a catalog query selects: their list, and optionally a movie or keogram of them."""
    import polars as pl

    from tame_assets.warehouse.store import Warehouse

    warehouse = Warehouse(_settings(data_root).paths)
    rows, _ = _query(warehouse, query)
    if "file" not in rows.columns:
        raise typer.BadParameter("the query must return a `file` column (the frame's file name), e.g. "
                                 "SELECT * FROM aurora_catalog WHERE …")
    keys = ["file", "frame_index"] if "frame_index" in rows.columns else ["file"]  # a THEMIS file holds many frames
    images = (warehouse.read("asim_images").select(pl.col("file_name").alias("file"), "frame_index", "local_path")
              .unique(keys, keep="first", maintain_order=True).select(*keys, "local_path"))
    rows = rows.join(images.cast({"frame_index": rows.schema["frame_index"]}) if "frame_index" in keys else images,
                     on=keys, how="left")
    _write_frame(rows, out)
    typer.echo(f"{rows.height} frames → {out}")
    paths = [p for p in rows["local_path"].drop_nulls().unique().to_list()]
    if movie_out and paths:
        from tame_assets.products.commands import movie_files_command

        _echo_movie(movie_files_command(paths, movie_out).movie)
    if keogram_out and paths:
        from tame_assets.products.commands import keogram_files_command

        result = keogram_files_command(paths, keogram_out)
        typer.echo(f"keogram of {result.n_frames} frames → {result.out}")


def _query(warehouse, query: str, max_rows: int | None = None):
    """Run a user's read-only SQL over the warehouse views (see :mod:`tame_assets.warehouse.sql_door`);
    returns (rows, more). A refused statement exits with code 2, a query error with code 1, one line each."""
    import duckdb

    from tame_assets.warehouse.sql_door import RefusedStatement, run_read_only

    try:
        return run_read_only(warehouse, query, max_rows)
    except RefusedStatement as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except duckdb.Error as exc:
        typer.echo(f"SQL error: {_first_line(exc)}", err=True)
        raise typer.Exit(1) from None


SQL_FORMATS = ("table", "csv", "json", "parquet")


def _sql_text(query: Optional[str], file: Optional[Path]) -> str:
    if file is not None and query is not None:
        raise typer.BadParameter("give the query either as an argument or with -f, not both")
    if file is not None:
        text = file.read_text()
    elif query == "-":
        text = sys.stdin.read()
    elif query is not None:
        text = query
    else:
        raise typer.BadParameter("no query: pass it as an argument, '-' for stdin, or -f FILE")
    if not text.strip():
        raise typer.BadParameter(f"the query from {file or 'stdin' if query == '-' else 'the argument'} is empty")
    return text


def _vector_summaries(df):
    """List/array columns (feature vectors) replaced by a summary such as ``[1000 floats]`` (table view)."""
    import polars as pl

    exprs = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, (pl.List, pl.Array)):
            inner = dtype.inner
            kind = "floats" if inner.is_float() else "ints" if inner.is_integer() else "values"
            length = pl.col(name).list.len() if isinstance(dtype, pl.List) else pl.lit(dtype.size)
            exprs.append(pl.when(pl.col(name).is_null()).then(pl.lit(None))
                         .otherwise(pl.format("[{} " + kind + "]", length)).alias(name))
    return df.with_columns(exprs) if exprs else df


def _flat_for_csv(df):
    """CSV cannot hold nested values: list columns become JSON-style text ``[1.0, 2.5, …]``."""
    import polars as pl

    exprs = [pl.format("[{}]", pl.col(n).cast(pl.List(pl.Utf8)).list.join(", ")).alias(n)
             for n, t in df.schema.items() if isinstance(t, (pl.List, pl.Array))]
    return df.with_columns(exprs) if exprs else df


def _print_table(df, max_rows: int, more: bool) -> None:
    import polars as pl

    shown = _vector_summaries(df)
    terminal = shutil.get_terminal_size((120, 40)).columns
    # as wide as the columns need (wide results wrap or scroll rather than squeezing every column)
    with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=48, tbl_width_chars=max(terminal, 20 * shown.width),
                   fmt_table_cell_list_len=4):
        typer.echo(shown)
    if more:
        typer.echo(f"(first {max_rows} rows; --max-rows N for more, --format csv|json|parquet --out FILE for all)")


def _write_result(df, fmt: str, out: Optional[Path]) -> None:
    """``df`` as CSV / JSON / Parquet to ``out`` (written to a temporary file, then renamed) or stdout."""
    writers: dict[str, Callable] = {
        "csv": lambda target: _flat_for_csv(df).write_csv(target),
        "json": lambda target: df.write_json(target),
        "parquet": lambda target: df.write_parquet(target),
    }
    if out is None:
        text = writers[fmt](None)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    _write_atomic(out, writers[fmt])
    typer.echo(f"{df.height} rows → {out}", err=True)


@app.command(context_settings={"ignore_unknown_options": True})
def sql(
    query: Optional[str] = typer.Argument(None, help="SQL over the tables (DuckDB dialect); '-' reads it from stdin. "
                                          "A query may start with a -- comment."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", exists=True, dir_okay=False, help="Read the query from FILE."),
    fmt: str = typer.Option("table", "--format", help="table (vector columns summarised), csv, json or parquet."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result to FILE (atomically) instead of stdout."),
    data_root: Optional[str] = typer.Option(None, help=DATA_ROOT_HELP),
    max_rows: int = typer.Option(50, min=1, help="Rows shown in the table view, the only ones computed (other formats write every row)."),
) -> None:
    """Run SQL over the warehouse tables; print a table or write CSV / JSON / Parquet.

    Read-only: writes, COPY, ATTACH, INSTALL/LOAD, SET and the like are refused (exit code 2); files
    outside the warehouse cannot be read; a query error exits with code 1. For an interactive shell:
    `cd data && duckdb -readonly tame.duckdb` (the duckdb-cli wheel).
    """
    from tame_assets.warehouse.store import Warehouse

    if fmt not in SQL_FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(SQL_FORMATS)}", param_hint="--format")
    if fmt == "table" and out is not None:
        raise typer.BadParameter("--out needs --format csv, json or parquet", param_hint="--out")
    if fmt == "parquet" and out is None:
        raise typer.BadParameter("--format parquet needs --out FILE", param_hint="--format")
    text = _sql_text(query, file)
    table_view = fmt == "table"
    df, more = _query(Warehouse(_settings(data_root).paths), text, max_rows if table_view else None)
    if table_view:
        _print_table(df, max_rows, more)
    else:
        _write_result(df, fmt, out)


def _first_line(exc: Exception) -> str:
    """DuckDB errors carry the query and a caret on further lines; the first line says what."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@app.command()
def info(data_root: Optional[str] = typer.Option(None, help=DATA_ROOT_HELP)) -> None:
    """Data root, tables, partitions present and row counts; unreadable tables and skipped folders."""
    _print_summary(_settings(data_root))


@app.command()
def months(data_root: Optional[str] = typer.Option(None, help=DATA_ROOT_HELP)) -> None:
    """Months the configured image archive has data for, and which of them are in the warehouse."""
    from tame_assets.sources.locations import available_months
    from tame_assets.warehouse.store import Warehouse

    settings = _settings(data_root)
    try:
        available = available_months(settings)
    except Exception as exc:  # noqa: BLE001 - network errors of any kind, reported in one line
        typer.echo(f"could not list the {settings.source} archive's months: {exc}", err=True)
        raise typer.Exit(1) from None
    present = set(Warehouse(settings.paths).months("asim_images"))
    typer.echo(f"{settings.source} archive: {len(available)} month(s) with images "
               f"(camera {settings.asi_camera}, {', '.join(f'{w:g}' for w in settings.wavelengths_nm)} nm)")
    for month in available:
        typer.echo(f"  {month}  {'materialized' if month in present else '-'}")


#: Start of the warning ``dagster dev`` prints on every start (it is superseded by ``dg dev`` from the
#: separate ``dagster-dg-cli`` package, which this project does not install).
DEV_SUPERSEDED = "Function `dev_command` is superseded"


@app.command()
def ui(
    data_root: Optional[str] = typer.Option(None, help=DATA_ROOT_HELP),
    port: int = typer.Option(3000, help="Port of the web UI (on 127.0.0.1)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
) -> None:
    """The Dagster UI (web server + daemon) on the instance `tame` runs record.

    It shows every materialization, partition and check result the CLI produced (DAGSTER_HOME is
    <local root>/dagster_home unless $DAGSTER_HOME is set)."""
    from tame_assets.defs.runner import dagster_home

    settings = _settings(data_root)
    home = dagster_home(settings)
    env = {**os.environ, "DAGSTER_HOME": str(home), "TAME_DATA_ROOT": settings.paths.data_root}
    if settings.local_root:
        env["TAME_LOCAL_ROOT"] = settings.local_root
    typer.echo(f"Dagster UI on http://{host}:{port}  (DAGSTER_HOME={home}, data root {settings.paths.data_root})")
    command = [sys.executable, "-W", f"ignore:{DEV_SUPERSEDED}",  # "use 'dg dev'": dg is not installed
               "-m", "dagster", "dev", "-h", host, "-p", str(port), "-m", "tame_assets.defs.definitions"]
    try:
        raise typer.Exit(subprocess.call(command, env=env, cwd=home))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _print_summary(settings: TameSettings) -> None:
    from tame_assets.warehouse.store import Warehouse

    wh = Warehouse(settings.paths)
    typer.echo(f"data root: {wh.root}")
    db = wh.duckdb_path
    opener = (f"cd {db.parent} && duckdb -readonly {db.name}" if wh.relative_views
              else f"duckdb -readonly {db}")
    typer.echo(f"DuckDB views: {db}  (e.g. {opener} -c \"select count(*) from magnetometer\")")
    for table, status in wh.table_status().items():
        months = wh.months(table)
        span = f"{months[0]}..{months[-1]} ({len(months)} months)" if months else "unpartitioned"
        if isinstance(status, int):
            typer.echo(f"  {table:<28} {status:>10,} rows  {span}")
        else:
            typer.echo(f"  {table:<28} corrupt: {status}")
    for folder, reason in wh.skipped_folders().items():
        typer.echo(f"  skipped folder {folder!r}: {reason}")
    figures = sorted(settings.paths.figures_dir.glob("*.png"))
    if figures:
        typer.echo(f"figures: {len(figures)} PNG (+SVG) in {figures[0].parent}")


def _write_frame(df, out: Path) -> None:
    """``df`` as CSV (``.csv``) or Parquet (anything else), written atomically."""
    _write_atomic(out, df.write_csv if out.suffix == ".csv" else df.write_parquet)


def _write_atomic(out: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``out``, then rename it to ``out`` (a failed write
    leaves no partial file and the previous ``out`` intact)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        write(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
