"""``tame similar``: search the archive by example (an image file or an archive frame's time)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tame_assets.cli.common import ConfigOption, DataRootOption, app, settings, write_atomic, write_frame
from tame_assets.config import UsageError

SHOWN_COLUMNS = ("rank", "similarity", "time", "station", "pred", "p_aurora", "cloud_detected", "h_nt", "novelty")


@app.command()
def similar(
    query: str = typer.Argument(
        ..., help="An image file (PNG, CDF, PGM) or an archive frame's time (YYYY-MM-DDTHH:MM:SS, UTC)."
    ),
    k: int = typer.Option(20, "--k", min=1, max=10_000, help="How many similar frames."),
    station: Optional[str] = typer.Option(None, "--station", help="Only this station's frames (e.g. NYA)."),
    start: Optional[str] = typer.Option(None, "--from", help="Only frames at or after this time (UTC)."),
    end: Optional[str] = typer.Option(None, "--to", help="Only frames before this time (UTC)."),
    where: Optional[str] = typer.Option(
        None, "--where", help='SQL predicate over aurora_catalog, read-only, e.g. "cloud_detected = false".'
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the frames: .csv or .parquet."),
    montage: Optional[Path] = typer.Option(
        None, "--montage", help="Also a montage of the query and its frames (.png/.svg)."
    ),
    data_root: DataRootOption = None,
    config: ConfigOption = None,
) -> None:
    """Frames most like an example, by embedding cosine, joined with the catalog (class, p_aurora, cloud, H)."""
    import duckdb
    import polars as pl

    from tame_assets.warehouse.provider import to_utc_naive
    from tame_assets.warehouse.similar import similar as run_similar
    from tame_assets.warehouse.sql_door import RefusedStatement
    from tame_assets.warehouse.store import Warehouse

    run_settings = settings(config, data_root)
    warehouse = Warehouse(run_settings.paths)
    try:
        t0, t1 = to_utc_naive(start), to_utc_naive(end)
    except ValueError as exc:
        raise UsageError(f"--from/--to: {exc}") from None
    try:
        found, info = run_similar(
            warehouse,
            query,
            k=k,
            station=station.upper() if station else None,
            start=t0,
            end=t1,
            where=where,
            max_image_pixels=run_settings.max_image_pixels,
        )
    except (FileNotFoundError, LookupError, ValueError, RefusedStatement, duckdb.Error) as exc:
        raise UsageError(str(exc).strip().splitlines()[0]) from None
    typer.echo(f"query: {info['label']} ({info['kind']}); {found.height} similar frames")
    if found.height:
        shown = found.select([c for c in SHOWN_COLUMNS if c in found.columns])
        with pl.Config(tbl_rows=min(found.height, 50), tbl_width_chars=160, tbl_hide_dataframe_shape=True):
            typer.echo(str(shown))
    if out:
        write_frame(found.drop("local_path", strict=False) if out.suffix == ".csv" else found, out)
        typer.echo(f"{found.height} frames → {out}")
    if montage:
        fig = _montage(info, found, run_settings.max_image_pixels)
        write_atomic(montage, lambda tmp: fig.savefig(tmp, format=montage.suffix.lstrip(".") or "png", dpi=110))
        typer.echo(f"montage → {montage}")


def _montage(info: dict, found, max_pixels: int | None):
    from tame_assets.analysis.search_figures import similarity_montage
    from tame_assets.sources.frame_reader import frame_item, grey_frame

    def load(row: dict):
        if not row.get("local_path"):
            return None
        item = frame_item(row["local_path"], row.get("frame_index"), row.get("network") or "uio")
        return _thumbnail(grey_frame(item, max_pixels=max_pixels, missing_ok=True))

    query_image = None
    if info["kind"] == "file":
        query_image = _thumbnail(grey_frame(info["path"], max_pixels=max_pixels, missing_ok=True))
    elif info["kind"] == "frame":
        query_image = load(info["row"])
    title = (
        f"Search by example: {info['label']} and its {found.height} most similar archive frames "
        "(embedding cosine, cos);\nbelow each: station, time (UTC), catalog class"
    )
    return similarity_montage(query_image, info["label"], found.head(19), load, title)


def _thumbnail(image, side: int = 200):
    if image is None:
        return None
    step = max(1, -(-max(image.shape[:2]) // side))
    return image[::step, ::step]
