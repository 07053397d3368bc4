"""Satellite conjunctions with a ground camera: where a satellite's magnetic footprint at the
emission altitude falls in a station's field of view, frame by frame.

Satellite positions come from TLE files (:func:`read_tle`, propagated with ``sgp4`` to TEME, rotated
to Earth-fixed by the IAU-82 Greenwich mean sidereal time; polar motion and UT1−UTC are ignored:
≤ 0.5 km) or from an ephemeris table a user provides (:func:`read_ephemeris_csv`: ``time, lat,
lon, alt_km``, geodetic; interpolated linearly in ECEF between samples at most
``max_gap_s`` apart). Footprints are traced along IGRF to the emission altitude
(:func:`tame_assets.geometry.fieldline.trace_igrf`), then seen from the station (azimuth,
elevation on WGS84) and mapped to the skymap's nearest pixel.

:func:`station_conjunctions` evaluates all of this at the station's frame times (so "the frames
nearest those times" are the frames themselves) and returns one row per frame whose footprint lies
in the field of view above ``min_elevation_deg``: :data:`CONJUNCTION_SCHEMA`. Consecutive such
frames less than ``PASS_GAP_S`` apart form one pass (``pass_start``/``pass_end``). ``x``/``y`` are
the pixel column/row in the frame as stored; ``intensity`` the frame's counts at that pixel (3×3
mean), read only for conjunction frames.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import polars as pl

from tame_assets.geometry.earth import ecef_to_geodetic, enu_to_ecef_direction, geodetic_to_ecef, ground_distance_km
from tame_assets.geometry.fieldline import trace_igrf
from tame_assets.sources.errors import SourceFormatError

#: A new pass starts after this many seconds without the footprint in view.
PASS_GAP_S = 300.0
#: Satellites whose sub-point is further than this from the station are not traced (km): the field
#: of view at 110 km and 0° elevation reaches ~1200 km; field lines tilt a LEO footprint ≲ 300 km.
PREFILTER_KM = 2500.0
CONJUNCTION_SCHEMA = {
    "satellite": pl.Utf8,
    "station": pl.Utf8,
    "pass_start": pl.Datetime("us"),
    "pass_end": pl.Datetime("us"),
    "time": pl.Datetime("us"),
    "sat_lat_deg": pl.Float64,
    "sat_lon_deg": pl.Float64,
    "sat_alt_km": pl.Float64,
    "foot_lat_deg": pl.Float64,
    "foot_lon_deg": pl.Float64,
    "altitude_km": pl.Float64,
    "azimuth_deg": pl.Float64,
    "elevation_deg": pl.Float64,
    "x": pl.Int32,
    "y": pl.Int32,
    "intensity": pl.Float64,
    "file_name": pl.Utf8,
    "frame_index": pl.Int32,
}
EPHEMERIS_SCHEMA = {
    "satellite": pl.Utf8,
    "time": pl.Datetime("us"),
    "lat_deg": pl.Float64,
    "lon_deg": pl.Float64,
    "alt_km": pl.Float64,
}


def empty_conjunctions() -> pl.DataFrame:
    return pl.DataFrame(schema=CONJUNCTION_SCHEMA)


# ----------------------------------------------------------------------------- satellite positions
def read_tle(path: str | Path) -> list[tuple[str, object]]:
    """``(name, sgp4 Satrec)`` of every element set in a TLE file (2-line sets, or 3-line with a name
    line; a set without a name is named by its catalogue number). :class:`SourceFormatError` naming
    the file and line for a malformed set."""
    from sgp4.api import Satrec

    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SourceFormatError(str(path), None, f"cannot read the TLE file ({exc.strerror or exc})") from None
    sats, name, i = [], None, 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
            continue
        if line.startswith("1 ") and i + 1 < len(lines) and lines[i + 1].startswith("2 "):
            try:
                sat = Satrec.twoline2rv(line, lines[i + 1].rstrip())
            except (ValueError, IndexError) as exc:
                raise SourceFormatError(str(path), i + 1, f"bad two-line element set ({exc})") from None
            sats.append((name or f"NORAD {sat.satnum}", sat))
            name, i = None, i + 2
            continue
        if line.startswith(("1 ", "2 ")):
            raise SourceFormatError(str(path), i + 1, "TLE line 1 must be followed by its line 2")
        name = line.removeprefix("0 ").strip()
        i += 1
    if not sats:
        raise SourceFormatError(str(path), None, "no two-line element set found")
    return sats


def teme_to_ecef(r_teme_km: np.ndarray, times) -> np.ndarray:
    """TEME positions (…, 3) km → Earth-fixed (…, 3) km: rotation by −GMST (IAU-82, UT1 ≈ UTC)."""
    from sgp4.propagation import gstime

    jd, fr = _julian(times)
    theta = np.array([gstime(a + b) for a, b in zip(jd.ravel(), fr.ravel())]).reshape(jd.shape)
    c, s = np.cos(theta), np.sin(theta)
    x, y, z = r_teme_km[..., 0], r_teme_km[..., 1], r_teme_km[..., 2]
    return np.stack([c * x + s * y, -s * x + c * y, z], axis=-1)


def _julian(times) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(times, dtype="datetime64[us]")
    days = (t - np.datetime64("2000-01-01T12:00:00", "us")) / np.timedelta64(86400, "s")
    whole = np.floor(days)
    return 2451545.0 + whole, days - whole


def tle_positions(satrec, times) -> pl.DataFrame:
    """Geodetic ``time, lat_deg, lon_deg, alt_km`` of an sgp4 ``Satrec`` at ``times`` (naive UTC);
    rows where sgp4 reports an error (decayed, …) are dropped."""
    t = np.asarray(times, dtype="datetime64[us]")
    jd, fr = _julian(t)
    error, r, _ = satrec.sgp4_array(jd, fr)
    ok = (error == 0) & np.isfinite(r).all(axis=1)
    ecef = teme_to_ecef(r[ok], t[ok])
    lat, lon, h = ecef_to_geodetic(ecef * 1000.0)
    return pl.DataFrame(
        {"time": pl.Series(t[ok]).cast(pl.Datetime("us")), "lat_deg": lat, "lon_deg": lon, "alt_km": h / 1000.0}
    )


def read_ephemeris_csv(path: str | Path, satellite: str | None = None) -> pl.DataFrame:
    """A user's ephemeris CSV (header ``time, lat, lon, alt_km``; optional ``satellite``; time ISO
    8601 naive UTC, geodetic degrees, km above WGS84) as :data:`EPHEMERIS_SCHEMA`, sorted by
    satellite and time. :class:`SourceFormatError` naming the file (and line) otherwise."""
    path = Path(path)
    try:
        raw = pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise SourceFormatError(str(path), None, f"unreadable ephemeris CSV ({exc})") from None
    missing = [c for c in ("time", "lat", "lon", "alt_km") if c not in raw.columns]
    if missing:
        raise SourceFormatError(str(path), 1, f"ephemeris CSV lacks column(s) {', '.join(missing)}")
    name = satellite or path.stem
    sat = raw["satellite"] if "satellite" in raw.columns else pl.Series([name] * raw.height)
    table = pl.DataFrame(
        {
            "satellite": sat,
            "time": raw["time"].str.to_datetime(time_unit="us", strict=False),
            "lat_deg": raw["lat"].cast(pl.Float64, strict=False),
            "lon_deg": raw["lon"].cast(pl.Float64, strict=False),
            "alt_km": raw["alt_km"].cast(pl.Float64, strict=False),
        }
    )
    bad = table.with_row_index("i").filter(pl.any_horizontal(pl.all().exclude("i", "satellite").is_null()))
    if bad.height:
        line = int(bad["i"][0]) + 2
        raise SourceFormatError(str(path), line, "time, lat, lon or alt_km is missing or not a number/ISO time")
    return table.sort("satellite", "time")


def interpolate_ephemeris(ephemeris: pl.DataFrame, times, max_gap_s: float = 120.0) -> pl.DataFrame:
    """One satellite's ephemeris (``time, lat_deg, lon_deg, alt_km``) at ``times``: a sample's own
    values at its time, else linear in ECEF between the two neighbouring samples when they are at
    most ``max_gap_s`` apart (else dropped)."""
    t = np.asarray(times, dtype="datetime64[us]")
    eph = ephemeris.sort("time")
    if eph.height < 2 or not t.size:
        return pl.DataFrame(schema={k: v for k, v in EPHEMERIS_SCHEMA.items() if k != "satellite"})
    et = eph["time"].to_numpy().astype("datetime64[us]").astype(np.int64)
    xyz = geodetic_to_ecef(eph["lat_deg"].to_numpy(), eph["lon_deg"].to_numpy(), eph["alt_km"].to_numpy() * 1000.0)
    ti = t.astype(np.int64)
    j = np.clip(np.searchsorted(et, ti, side="right"), 1, et.size - 1)
    lo, hi = et[j - 1], et[j]
    ok = (ti >= lo) & (ti <= hi) & (((hi - lo) <= max_gap_s * 1e6) | (ti == lo) | (ti == hi))
    f = ((ti - lo) / np.maximum(hi - lo, 1))[:, None]
    p = xyz[j - 1] + f * (xyz[j] - xyz[j - 1])
    lat, lon, h = ecef_to_geodetic(p[ok])
    return pl.DataFrame(
        {"time": pl.Series(t[ok]).cast(pl.Datetime("us")), "lat_deg": lat, "lon_deg": lon, "alt_km": h / 1000.0}
    )


# ----------------------------------------------------------------------------- seen from the station
def look_from_site(
    lat_deg, lon_deg, height_km, site_lat_deg, site_lon_deg, site_alt_m
) -> tuple[np.ndarray, np.ndarray]:
    """(azimuth_deg 0–360 from north through east, elevation_deg) of geodetic points seen from a site (WGS84)."""
    target = geodetic_to_ecef(lat_deg, lon_deg, np.asarray(height_km, dtype=float) * 1000.0)
    site = geodetic_to_ecef(site_lat_deg, site_lon_deg, site_alt_m)
    d = target - site
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    east = enu_to_ecef_direction(90.0, 0.0, site_lat_deg, site_lon_deg)
    north = enu_to_ecef_direction(0.0, 0.0, site_lat_deg, site_lon_deg)
    up = enu_to_ecef_direction(0.0, 90.0, site_lat_deg, site_lon_deg)
    e, n, u = d @ east, d @ north, d @ up
    return np.degrees(np.arctan2(e, n)) % 360.0, np.degrees(np.arcsin(np.clip(u, -1, 1)))


def _passes(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per time (sorted): start and end of the run of times it belongs to (gaps > PASS_GAP_S split)."""
    t = times.astype("datetime64[us]").astype(np.int64)
    new = np.r_[True, np.diff(t) > PASS_GAP_S * 1e6]
    run = np.cumsum(new) - 1
    starts = t[new]
    ends = np.r_[t[np.flatnonzero(new)[1:] - 1], t[-1]] if t.size else t
    return starts[run].astype("datetime64[us]"), ends[run].astype("datetime64[us]")


def station_conjunctions(
    positions: pl.DataFrame,
    skymap,
    *,
    satellite: str,
    station: str,
    min_elevation_deg: float = 20.0,
    frames: pl.DataFrame | None = None,
    read_frame: Callable[[dict], np.ndarray | None] | None = None,
) -> pl.DataFrame:
    """:data:`CONJUNCTION_SCHEMA` rows for one satellite's positions (``time, lat_deg, lon_deg,
    alt_km`` at the station's frame times) and one station's ``skymap``: footprint at
    ``skymap.altitude_km`` (IGRF, northern hemisphere for a northern station), in view above
    ``min_elevation_deg`` and on a skymap pixel (within 2° of a pixel's look direction).

    ``frames`` (``time, file_name, frame_index`` and whatever ``read_frame`` needs; one row per
    frame) supply the file of each time; ``read_frame(row)`` the pixels for the intensity (None: no
    intensity)."""
    if not positions.height:
        return empty_conjunctions()
    near = ground_distance_km(
        skymap.site_lat_deg, skymap.site_lon_deg, positions["lat_deg"].to_numpy(), positions["lon_deg"].to_numpy()
    )
    positions = positions.filter(pl.Series(near <= PREFILTER_KM))
    if not positions.height:
        return empty_conjunctions()
    times = positions["time"].to_numpy().astype("datetime64[us]")
    hemisphere = "north" if skymap.site_lat_deg >= 0 else "south"
    foot_lat, foot_lon = trace_igrf(
        positions["lat_deg"].to_numpy(),
        positions["lon_deg"].to_numpy(),
        positions["alt_km"].to_numpy(),
        times,
        target_km=float(skymap.altitude_km),
        hemisphere=hemisphere,
    )
    az, el = look_from_site(
        foot_lat, foot_lon, float(skymap.altitude_km), skymap.site_lat_deg, skymap.site_lon_deg, skymap.site_alt_m
    )
    seen = np.isfinite(el) & (el >= float(min_elevation_deg))
    rows, cols = np.full(az.shape, np.nan), np.full(az.shape, np.nan)
    if seen.any():
        rows[seen], cols[seen] = skymap.nearest_pixel(az[seen], el[seen])
    inside = seen & np.isfinite(rows) & skymap_mask(skymap, rows, cols)
    if not inside.any():
        return empty_conjunctions()
    idx = np.flatnonzero(inside)
    start, end = _passes(times[idx])
    table = pl.DataFrame(
        {
            "satellite": [satellite] * idx.size,
            "station": [station] * idx.size,
            "pass_start": pl.Series(start).cast(pl.Datetime("us")),
            "pass_end": pl.Series(end).cast(pl.Datetime("us")),
            "time": pl.Series(times[idx]).cast(pl.Datetime("us")),
            "sat_lat_deg": positions["lat_deg"].to_numpy()[idx],
            "sat_lon_deg": positions["lon_deg"].to_numpy()[idx],
            "sat_alt_km": positions["alt_km"].to_numpy()[idx],
            "foot_lat_deg": foot_lat[idx],
            "foot_lon_deg": foot_lon[idx],
            "altitude_km": np.full(idx.size, float(skymap.altitude_km)),
            "azimuth_deg": az[idx],
            "elevation_deg": el[idx],
            "x": cols[idx].astype(np.int32),
            "y": rows[idx].astype(np.int32),
        }
    )
    return _with_frames(table, frames, read_frame).select(list(CONJUNCTION_SCHEMA)).cast(CONJUNCTION_SCHEMA)


def skymap_mask(skymap, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """True where (rows, cols) (float, NaN allowed) is a usable pixel of the skymap (``skymap.mask``)."""
    ok = np.isfinite(rows) & np.isfinite(cols)
    out = np.zeros(rows.shape, dtype=bool)
    mask = skymap.mask if hasattr(skymap, "mask") else np.isfinite(skymap.elevation_deg)
    out[ok] = mask[rows[ok].astype(int), cols[ok].astype(int)]
    return out


def _with_frames(table: pl.DataFrame, frames: pl.DataFrame | None, read_frame) -> pl.DataFrame:
    if frames is None or not frames.height:
        return table.with_columns(
            pl.lit(None, pl.Float64).alias("intensity"),
            pl.lit(None, pl.Utf8).alias("file_name"),
            pl.lit(None, pl.Int32).alias("frame_index"),
        )
    keyed = frames.with_columns(pl.col("time").cast(pl.Datetime("us"))).unique("time", keep="first").sort("time")
    joined = table.sort("time").join(keyed, on="time", how="left")
    values = []
    for row in joined.iter_rows(named=True):
        frame = read_frame(row) if read_frame is not None and row.get("file_name") else None
        values.append(pixel_mean(frame, row["y"], row["x"]) if frame is not None else None)
    return joined.with_columns(
        pl.Series("intensity", values, dtype=pl.Float64),
        pl.col("frame_index").cast(pl.Int32)
        if "frame_index" in joined.columns
        else pl.lit(None, pl.Int32).alias("frame_index"),
    )


def pixel_mean(frame: np.ndarray, row: int, col: int, half: int = 1) -> float:
    """Mean of the (2·half+1)² pixels around (row, col), clipped at the frame edges."""
    r0, c0 = max(row - half, 0), max(col - half, 0)
    return float(np.mean(frame[r0 : row + half + 1, c0 : col + half + 1], dtype=np.float64))


def conjunctions_for_sources(
    sources: Iterable[tuple[str, object]],
    frame_times,
    skymap,
    *,
    station: str,
    min_elevation_deg: float,
    frames: pl.DataFrame | None = None,
    read_frame=None,
    max_gap_s: float = 120.0,
) -> pl.DataFrame:
    """Conjunctions of several satellites: ``sources`` yields ``(name, Satrec)`` (TLE) or ``(name,
    ephemeris DataFrame)`` pairs; each is evaluated at ``frame_times``."""
    tables = []
    t = np.asarray(frame_times, dtype="datetime64[us]")
    for name, source in sources:
        if isinstance(source, pl.DataFrame):
            positions = interpolate_ephemeris(source, t, max_gap_s=max_gap_s)
        else:
            positions = tle_positions(source, t)
        tables.append(
            station_conjunctions(
                positions,
                skymap,
                satellite=name,
                station=station,
                min_elevation_deg=min_elevation_deg,
                frames=frames,
                read_frame=read_frame,
            )
        )
    tables = [x for x in tables if x.height]
    return pl.concat(tables).sort("satellite", "time") if tables else empty_conjunctions()


def load_sources(tle_files: Iterable[str | Path] = (), ephemeris_files: Iterable[str | Path] = ()) -> list:
    """``(name, Satrec | ephemeris DataFrame)`` of every TLE set and every ephemeris CSV's satellites."""
    sources: list = []
    for path in tle_files:
        sources.extend(read_tle(path))
    for path in ephemeris_files:
        table = read_ephemeris_csv(path)
        for (name,), group in table.group_by("satellite", maintain_order=True):
            sources.append((name, group.drop("satellite")))
    return sources


def regular_times(start: dt.datetime, end: dt.datetime, step_s: float) -> np.ndarray:
    """``start, start + step, …`` before ``end`` (datetime64[us])."""
    step = np.timedelta64(int(round(step_s * 1e6)), "us")
    return np.arange(np.datetime64(start, "us"), np.datetime64(end, "us"), step)


def conjunction_figure(frame: np.ndarray, track: pl.DataFrame, *, satellite: str, station: str, time: dt.datetime):
    """The frame (as stored, row 0 at the top) with the footprint's pixel track of its pass (x, y per
    frame, the frame's own point highlighted); title with satellite, station and UTC time."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    finite = np.asarray(frame, dtype=float)
    lo, hi = np.percentile(finite, [1, 99.5])
    ax.imshow(finite, cmap="gray", vmin=lo, vmax=hi, origin="upper")
    ax.plot(track["x"], track["y"], ".-", color="tab:orange", lw=1.2, ms=5, label="footprint track (one dot per frame)")
    now = track.filter(pl.col("time") == time)
    if now.height:
        ax.plot(now["x"], now["y"], "o", mfc="none", mec="red", ms=12, mew=2, label=f"footprint {time:%H:%M:%S} UTC")
    for end in (track.row(0, named=True), track.row(track.height - 1, named=True)):
        ax.annotate(
            f" {end['time']:%H:%M:%S}",
            (end["x"], end["y"]),
            color="tab:orange",
            fontsize=8,
            xytext=(6, 0),
            textcoords="offset points",
        )
    altitude = float(track["altitude_km"][0])
    ax.set_title(
        f"{satellite} magnetic footprint ({altitude:.0f} km, IGRF) over {station}\n{time:%Y-%m-%d %H:%M:%S} UTC"
    )
    ax.set_xlabel("image column x (pixel)")
    ax.set_ylabel("image row y (pixel)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def station_image_conjunctions(
    station,
    images: pl.DataFrame,
    sources: list,
    min_elevation_deg: float,
    *,
    progress: Callable[[str], None] | None = None,
) -> pl.DataFrame:
    """Conjunctions of ``sources`` (:func:`load_sources`) with a configured ``station``'s frames
    (an ``asim_images`` table: ``time, valid, wavelength_0.1nm, file_name, frame_index, local_path,
    network``), per wavelength at its emission altitude, with the station's skymap
    (:func:`tame_assets.geometry.stations.station_skymap`). Empty without sources, valid frames or
    geometry (no frame is read then)."""
    from tame_assets.geometry.stations import station_skymap
    from tame_assets.sources.frame_reader import frame_item, grey_frame

    if not sources or not images.height:
        return empty_conjunctions()
    valid = images.filter(pl.col("valid")) if "valid" in images.columns else images
    code_col = "wavelength_0.1nm" if "wavelength_0.1nm" in valid.columns else None
    groups = valid.group_by(code_col, maintain_order=True) if code_col else [((0,), valid)]

    def read(row):
        return grey_frame(frame_item(row["local_path"], row["frame_index"], row["network"]), missing_ok=True)

    tables = []
    for (code,), group in groups:
        group = group.sort("time")
        first = next((f for f in (read(r) for r in group.head(5).iter_rows(named=True)) if f is not None), None)
        sky = station_skymap(station, int(code or 0), first.shape if first is not None else None)
        if sky is None:
            if progress:
                progress(f"no geometry for station {station.code}: no conjunctions")
            continue
        table = conjunctions_for_sources(
            sources,
            group["time"].to_numpy().astype("datetime64[us]"),
            sky,
            station=station.code,
            min_elevation_deg=min_elevation_deg,
            frames=group.select("time", "file_name", "frame_index", "local_path", "network"),
            read_frame=read,
        )
        if progress:
            progress(f"{station.code} {int(code or 0)}: {table.height} frames with a footprint in view")
        tables.append(table)
    tables = [t for t in tables if t.height]
    return pl.concat(tables) if tables else empty_conjunctions()


def pass_figures(table: pl.DataFrame, images: pl.DataFrame, limit: int = 6) -> Iterable[tuple[str, object]]:
    """``(name, figure)`` per pass of a conjunctions table (up to ``limit``): the pass's middle frame
    (from ``images``: ``file_name, frame_index, local_path, network``) with the footprint's pixel track;
    name ``<station>_<satellite>_<YYYYmmdd_HHMMSS>``."""
    from tame_assets.sources.frame_reader import frame_item, grey_frame

    if not table.height:
        return
    paths = images.select("file_name", "frame_index", "local_path", "network").unique(["file_name", "frame_index"])
    done = 0
    for (satellite, _), track in table.group_by("satellite", "pass_start", maintain_order=True):
        if done >= limit:
            break
        track = track.sort("time")
        middle = track.row(track.height // 2, named=True)
        where = paths.filter(
            (pl.col("file_name") == middle["file_name"]) & (pl.col("frame_index") == middle["frame_index"])
        )
        if not where.height:
            continue
        row = where.row(0, named=True)
        frame = grey_frame(frame_item(row["local_path"], row["frame_index"], row["network"]), missing_ok=True)
        if frame is None:
            continue
        fig = conjunction_figure(frame, track, satellite=satellite, station=middle["station"], time=middle["time"])
        safe = "".join(ch if ch.isalnum() else "_" for ch in satellite)
        done += 1
        yield f"{middle['station']}_{safe}_{middle['time']:%Y%m%d_%H%M%S}", fig
