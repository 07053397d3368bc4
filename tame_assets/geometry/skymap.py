"""Skymaps: where every pixel of an all-sky camera looks (azimuth, elevation) and where that line
of sight meets the aurora's emission altitude (geodetic latitude/longitude of the pixel centre).

Conventions (every array here is H×W, indexed ``[row, col]``):

- row 0 is the image's first row **as stored in the data file the skymap is meant for** (for
  THEMIS: the level-1 CDF ``thg_asf_<site>`` frames by default, see :func:`read_themis_skymap`);
  col 0 is the first column; a pixel's values refer to its centre.
- azimuth in degrees from geographic north through east, 0–360; elevation in degrees above the
  local horizontal (WGS84 normal); NaN where the pixel sees nothing (outside the optics, or below
  the horizon cut).
- latitude geodetic, longitude east-positive in −180..180 (THEMIS files store 0–360; converted),
  altitudes in km above the WGS84 ellipsoid; ``lat_deg``/``lon_deg`` are NaN where elevation is
  below ``min_elevation_deg`` (default 10°: below it a pixel spans tens of km at 110 km and the
  projection is dominated by the assumed altitude) or undefined.
- times naive UTC; ``valid_to=None`` = still valid.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from tame_assets.files import atomic_path
from tame_assets.geometry.earth import look_to_geodetic

#: Default emission altitude (km) per wavelength in 0.1 nm (the file-name code; 0 = white light,
#: i.e. unfiltered cameras such as THEMIS): green 557.7 nm and blue 427.8 nm peak near 110 km,
#: red 630.0 nm near 230 km (200–250 km is usual).
WHITE_LIGHT = 0
EMISSION_ALTITUDE_KM: dict[int, float] = {5577: 110.0, 6300: 230.0, 4278: 110.0, WHITE_LIGHT: 110.0}

DEFAULT_MIN_ELEVATION_DEG = 10.0
SKYMAP_COLUMNS = ("row", "col", "azimuth_deg", "elevation_deg", "lat_deg", "lon_deg")


def emission_altitude_km(wavelength_0_1nm: int | None) -> float:
    """Default emission altitude (km) for a wavelength code in 0.1 nm (``None``/0: white light)."""
    code = WHITE_LIGHT if wavelength_0_1nm is None else int(wavelength_0_1nm)
    if code not in EMISSION_ALTITUDE_KM:
        raise ValueError(
            f"no default emission altitude for wavelength {code} (0.1 nm); "
            f"known: {sorted(EMISSION_ALTITUDE_KM)} — pass the altitude explicitly"
        )
    return EMISSION_ALTITUDE_KM[code]


def validate_altitude_km(altitude_km: float) -> float:
    """An emission altitude in km as float; ValueError unless 50 ≤ altitude ≤ 1000 km."""
    value = float(altitude_km)
    if not np.isfinite(value) or not 50.0 <= value <= 1000.0:
        raise ValueError(f"emission altitude must be between 50 and 1000 km, not {altitude_km!r}")
    return value


@dataclass(frozen=True, eq=False)
class Skymap:
    """Per-pixel viewing geometry of one camera for one validity period (see module conventions).

    ``network``/``station``/``camera`` identify the camera (e.g. ``themis``/``gako``/``themis20``,
    ``uio``/``NYA``/``nya6``); ``source`` says where the geometry came from (the skymap file's
    path, or ``lens model …``); ``row_convention`` which stored image rows row 0 refers to."""

    network: str
    station: str
    camera: str
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    site_lat_deg: float
    site_lon_deg: float
    site_alt_m: float
    altitude_km: float
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    valid_from: datetime | None
    valid_to: datetime | None
    source: str
    row_convention: str
    min_elevation_deg: float = DEFAULT_MIN_ELEVATION_DEG

    def __post_init__(self):
        shape = self.azimuth_deg.shape
        for name in ("elevation_deg", "lat_deg", "lon_deg"):
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"skymap {self.camera}: {name} has shape {getattr(self, name).shape}, azimuth_deg {shape}"
                )
        if len(shape) != 2:
            raise ValueError(f"skymap {self.camera}: arrays must be 2-D (rows, cols), not {shape}")
        if not -180.0 <= self.site_lon_deg <= 180.0:
            raise ValueError(f"skymap {self.camera}: site longitude {self.site_lon_deg} outside −180..180")

    @property
    def shape(self) -> tuple[int, int]:
        return self.azimuth_deg.shape

    @property
    def mask(self) -> np.ndarray:
        """True where the pixel is usable: elevation defined and ≥ ``min_elevation_deg``."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.elevation_deg) & (self.elevation_deg >= self.min_elevation_deg)

    def at_altitude(self, altitude_km: float, min_elevation_deg: float | None = None) -> Skymap:
        """The same skymap with ``lat_deg``/``lon_deg`` recomputed at ``altitude_km`` (WGS84 ray–shell
        intersection, :func:`tame_assets.geometry.earth.look_to_geodetic`)."""
        min_el = self.min_elevation_deg if min_elevation_deg is None else float(min_elevation_deg)
        lat, lon = project_to_altitude(
            self.azimuth_deg,
            self.elevation_deg,
            self.site_lat_deg,
            self.site_lon_deg,
            self.site_alt_m,
            altitude_km,
            min_el,
        )
        return dataclasses.replace(
            self, altitude_km=validate_altitude_km(altitude_km), lat_deg=lat, lon_deg=lon, min_elevation_deg=min_el
        )

    def aacgm(self, when: datetime) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel AACGM-v2 (mlat_deg, mlon_deg) of ``lat_deg``/``lon_deg`` at ``altitude_km`` at the
        epoch ``when`` (computed on demand, :func:`tame_assets.geometry.magnetic.skymap_aacgm`)."""
        from tame_assets.geometry.magnetic import skymap_aacgm

        return skymap_aacgm(self, when)

    def nearest_pixel(self, azimuth_deg, elevation_deg, max_angle_deg: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) as float arrays of the pixels looking closest to each direction (degrees);
        NaN where no pixel looks within ``max_angle_deg``."""
        from scipy.spatial import cKDTree

        def unit(az, el):
            az, el = np.radians(np.asarray(az, dtype=float)), np.radians(np.asarray(el, dtype=float))
            return np.stack([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)], axis=-1)

        pixels = unit(self.azimuth_deg, self.elevation_deg).reshape(-1, 3)
        defined = np.flatnonzero(np.isfinite(pixels).all(axis=1))
        queries = unit(np.atleast_1d(azimuth_deg), np.atleast_1d(elevation_deg))
        chord, index = cKDTree(pixels[defined]).query(np.nan_to_num(queries, nan=9.0))
        ok = chord <= 2 * np.sin(np.radians(max_angle_deg) / 2)
        rows, cols = np.unravel_index(defined[np.where(ok, index, 0)], self.shape)
        return np.where(ok, rows, np.nan), np.where(ok, cols, np.nan)

    def to_table(self):
        """polars DataFrame, one row per pixel in row-major order: ``row, col, azimuth_deg,
        elevation_deg, lat_deg, lon_deg`` (NaN → null so DuckDB sees SQL NULL)."""
        import polars as pl

        rows, cols = np.indices(self.shape, dtype=np.int32)
        data = {"row": rows.ravel(), "col": cols.ravel()}
        for name in SKYMAP_COLUMNS[2:]:
            data[name] = np.asarray(getattr(self, name), dtype=np.float64).ravel()
        return pl.DataFrame(data).fill_nan(None)

    def describe(self) -> dict[str, str]:
        """Scalar metadata as strings (stored in the Parquet file's key-value metadata)."""
        return {
            "network": self.network,
            "station": self.station,
            "camera": self.camera,
            "site_lat_deg": repr(self.site_lat_deg),
            "site_lon_deg": repr(self.site_lon_deg),
            "site_alt_m": repr(self.site_alt_m),
            "altitude_km": repr(self.altitude_km),
            "min_elevation_deg": repr(self.min_elevation_deg),
            "valid_from": self.valid_from.isoformat() if self.valid_from else "",
            "valid_to": self.valid_to.isoformat() if self.valid_to else "",
            "source": self.source,
            "row_convention": self.row_convention,
        }


def project_to_altitude(
    azimuth_deg,
    elevation_deg,
    site_lat_deg,
    site_lon_deg,
    site_alt_m,
    altitude_km,
    min_elevation_deg=DEFAULT_MIN_ELEVATION_DEG,
):
    """Pixel-centre geodetic (lat_deg, lon_deg) at ``altitude_km``; NaN below ``min_elevation_deg``."""
    altitude_km = validate_altitude_km(altitude_km)
    if not -10.0 <= float(min_elevation_deg) < 90.0:
        raise ValueError(f"minimum elevation must be between −10° and 90°, not {min_elevation_deg!r}")
    el = np.asarray(elevation_deg, dtype=float)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(el) & (el >= min_elevation_deg) & np.isfinite(azimuth_deg)
    lat = np.full(el.shape, np.nan)
    lon = np.full(el.shape, np.nan)
    lat[usable], lon[usable] = look_to_geodetic(
        np.asarray(azimuth_deg, dtype=float)[usable], el[usable], site_lat_deg, site_lon_deg, site_alt_m, altitude_km
    )
    return lat, lon


# ----------------------------------------------------------------------------- THEMIS .sav
THEMIS_SKYMAP_NAME = re.compile(r"themis_skymap_(?P<site>[a-z0-9]{4})_(?P<start>\d{8})-(?P<stop>\d{8}|\+)_v\w+\.sav$")
IMAGE_FORMATS = ("cdf", "pgm")


@dataclass(frozen=True, eq=False)
class ThemisSkymapFile:
    """What a UCalgary THEMIS skymap ``.sav`` holds, arrays as ``scipy.io.readsav`` returns them
    (IDL's [x, y] becomes numpy [y, x]; no flips), longitudes converted to −180..180.

    ``elevation_deg``/``azimuth_deg``: 256×256 per pixel; ``corner_lat_deg``/``corner_lon_deg``:
    (n_altitudes, 257, 257) pixel corners (NaN outside the field of view) at ``corner_altitudes_km``
    (90, 110, 150 km); ``generation_info``: GENERATION_INFO as strings."""

    path: Path
    site_uid: str
    imager_uid: str
    project_uid: str
    site_lat_deg: float
    site_lon_deg: float
    site_alt_m: float
    elevation_deg: np.ndarray
    azimuth_deg: np.ndarray
    corner_altitudes_km: np.ndarray
    corner_lat_deg: np.ndarray
    corner_lon_deg: np.ndarray
    generation_info: dict[str, str]
    valid_from: datetime
    valid_to: datetime | None


def parse_themis_skymap_name(path: str | Path) -> tuple[str, datetime, datetime | None]:
    """``themis_skymap_gako_20110305-+_vXX.sav`` → ("gako", 2011-03-05 00:00, None).

    An end date (``-YYYYMMDD``) means valid through that day (returned as its 23:59:59);
    ``+`` = open-ended (None)."""
    name = Path(path).name
    match = THEMIS_SKYMAP_NAME.fullmatch(name)
    if not match:
        raise ValueError(
            f"{path}: not a THEMIS skymap name (expected themis_skymap_<site>_<YYYYMMDD>-<YYYYMMDD|+>_v<nn>.sav)"
        )
    try:
        start = datetime.strptime(match["start"], "%Y%m%d")
        stop = None if match["stop"] == "+" else datetime.strptime(match["stop"], "%Y%m%d")
    except ValueError as err:
        raise ValueError(f"{path}: bad date in skymap name ({err})") from None
    if stop is not None:
        stop = stop.replace(hour=23, minute=59, second=59)
    return match["site"], start, stop


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    if isinstance(value, np.ndarray):
        return " ".join(str(v) for v in value.ravel().tolist())
    return str(value)


def _lon180(lon):
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(lon), np.nan, (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0)


def read_themis_sav(path: str | Path) -> ThemisSkymapFile:
    """Read a UCalgary THEMIS skymap IDL save file; ValueError naming the file and field on bad input."""
    from scipy.io import readsav

    path = Path(path)
    site_from_name, valid_from, valid_to = parse_themis_skymap_name(path)
    try:
        with warnings.catch_warnings():  # scipy warns "Not able to verify number of bytes" on these files
            warnings.simplefilter("ignore", UserWarning)
            record = readsav(str(path))["skymap"]
    except KeyError:
        raise ValueError(f"{path}: IDL save file has no 'skymap' structure") from None
    except Exception as err:  # scipy raises bare Exception/ValueError/struct.error on corrupt files
        raise ValueError(f"{path}: unreadable IDL save file ({type(err).__name__}: {err})") from None

    def field(name):
        try:
            return record[name][0]
        except (KeyError, ValueError, IndexError):
            raise ValueError(f"{path}: skymap structure lacks field {name}") from None

    elevation = np.asarray(field("FULL_ELEVATION"), dtype=float)
    azimuth = np.asarray(field("FULL_AZIMUTH"), dtype=float)
    altitudes_km = np.asarray(field("FULL_MAP_ALTITUDE"), dtype=float) / 1000.0
    corner_lat = np.asarray(field("FULL_MAP_LATITUDE"), dtype=float)
    corner_lon = _lon180(field("FULL_MAP_LONGITUDE"))
    rows, cols = elevation.shape if elevation.ndim == 2 else (0, 0)
    if elevation.ndim != 2 or azimuth.shape != elevation.shape:
        raise ValueError(
            f"{path}: FULL_ELEVATION {elevation.shape} / FULL_AZIMUTH {azimuth.shape} are not one 2-D grid"
        )
    expected = (altitudes_km.size, rows + 1, cols + 1)
    if corner_lat.shape != expected or corner_lon.shape != expected:
        raise ValueError(f"{path}: FULL_MAP_LATITUDE/LONGITUDE {corner_lat.shape} should be {expected}")
    site_uid = _text(field("SITE_UID")).lower()
    if site_uid != site_from_name:
        raise ValueError(f"{path}: SITE_UID {site_uid!r} differs from the file name's site {site_from_name!r}")
    info_record = field("GENERATION_INFO")
    info = {name.lower(): _text(info_record[name][0]) for name in info_record.dtype.names}
    return ThemisSkymapFile(
        path=path,
        site_uid=site_uid,
        imager_uid=_text(field("IMAGER_UID")),
        project_uid=_text(field("PROJECT_UID")),
        site_lat_deg=float(field("SITE_MAP_LATITUDE")),
        site_lon_deg=float(_lon180(float(field("SITE_MAP_LONGITUDE")))),
        site_alt_m=float(field("SITE_MAP_ALTITUDE")),
        elevation_deg=elevation,
        azimuth_deg=azimuth,
        corner_altitudes_km=altitudes_km,
        corner_lat_deg=corner_lat,
        corner_lon_deg=corner_lon,
        generation_info=info,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def to_image_rows(array: np.ndarray, image_format: str) -> np.ndarray:
    """A THEMIS ``.sav`` per-pixel (or per-corner) array, last two axes [row, col] as readsav gives
    them, re-ordered to the stored rows of ``image_format`` images.

    ``"cdf"``: level-1 CDF ``thg_asf_<site>`` frames are the .sav grid rotated by 180° (both axes
    reversed) — measured with 22 bright stars on the Gakona CDF of 2011-01-06 17:00 UT, see
    notes/geometry-readme.md. ``"pgm"``: raw UCalgary PGM frames as stored in the file are taken to
    be in the .sav order (what asilib assumes: it flips both the same way); not star-checked here."""
    if image_format == "cdf":
        return array[..., ::-1, ::-1].copy()
    if image_format == "pgm":
        return array.copy()
    raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, not {image_format!r}")


def read_themis_skymap(
    path: str | Path,
    altitude_km: float = EMISSION_ALTITUDE_KM[WHITE_LIGHT],
    image_format: str = "cdf",
    min_elevation_deg: float = DEFAULT_MIN_ELEVATION_DEG,
) -> Skymap:
    """Skymap from a THEMIS ``.sav`` with rows of ``image_format`` images (``"cdf"`` default, or
    ``"pgm"``, see :func:`to_image_rows`) and pixel-centre lat/lon computed at ``altitude_km``
    (WGS84; agrees with the file's own corner grid to 0.4 km at elevations ≥ 10°, see tests).
    Validity from the file name."""
    sav = read_themis_sav(path)
    az = to_image_rows(sav.azimuth_deg, image_format)
    el = to_image_rows(sav.elevation_deg, image_format)
    lat, lon = project_to_altitude(
        az, el, sav.site_lat_deg, sav.site_lon_deg, sav.site_alt_m, altitude_km, min_elevation_deg
    )
    return Skymap(
        network=sav.project_uid or "themis",
        station=sav.site_uid,
        camera=sav.imager_uid,
        azimuth_deg=az,
        elevation_deg=el,
        site_lat_deg=sav.site_lat_deg,
        site_lon_deg=sav.site_lon_deg,
        site_alt_m=sav.site_alt_m,
        altitude_km=validate_altitude_km(altitude_km),
        lat_deg=lat,
        lon_deg=lon,
        valid_from=sav.valid_from,
        valid_to=sav.valid_to,
        source=str(sav.path),
        row_convention=f"THEMIS {image_format.upper()} rows as stored",
        min_elevation_deg=float(min_elevation_deg),
    )


# ----------------------------------------------------------------------------- Parquet
def write_skymap_parquet(skymap: Skymap, path: str | Path) -> Path:
    """Write ``skymap.to_table()`` to ``path`` atomically (temporary file + rename; rerunning
    replaces it). Scalar metadata (site, altitude, validity, source) go into the Parquet key-value
    metadata under ``tame.skymap.*``."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise ValueError(f"{path}: skymap output must end in .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = skymap.to_table().to_arrow()
    meta = {f"tame.skymap.{k}".encode(): v.encode() for k, v in skymap.describe().items()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_skymap_parquet(path: str | Path) -> Skymap:
    """A skymap written by :func:`write_skymap_parquet` (arrays rebuilt from the rows, scalars from
    the key-value metadata); ValueError naming the file if it is not one."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable Parquet file ({err})") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k.startswith(b"tame.skymap.")}
    missing = [c for c in SKYMAP_COLUMNS if c not in table.column_names]
    if missing or "tame.skymap.camera" not in meta:
        raise ValueError(f"{path}: not a skymap file (missing {missing or 'tame.skymap metadata'})")
    meta = {k.removeprefix("tame.skymap."): v for k, v in meta.items()}
    rows = table.column("row").to_numpy()
    cols = table.column("col").to_numpy()
    shape = (int(rows.max()) + 1, int(cols.max()) + 1)
    if rows.size != shape[0] * shape[1]:
        raise ValueError(f"{path}: {rows.size} rows do not fill a {shape[0]}×{shape[1]} pixel grid")
    arrays = {}
    for name in SKYMAP_COLUMNS[2:]:
        grid = np.full(shape, np.nan)
        grid[rows, cols] = table.column(name).to_numpy(zero_copy_only=False)
        arrays[name] = grid

    def when(text):
        return datetime.fromisoformat(text) if text else None

    return Skymap(
        network=meta["network"],
        station=meta["station"],
        camera=meta["camera"],
        **arrays,
        site_lat_deg=float(meta["site_lat_deg"]),
        site_lon_deg=float(meta["site_lon_deg"]),
        site_alt_m=float(meta["site_alt_m"]),
        altitude_km=float(meta["altitude_km"]),
        valid_from=when(meta["valid_from"]),
        valid_to=when(meta["valid_to"]),
        source=meta["source"],
        row_convention=meta["row_convention"],
        min_elevation_deg=float(meta["min_elevation_deg"]),
    )
