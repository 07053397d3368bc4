"""Camera stations: the ``station`` dimension of the station × month partitions.

A station is one all-sky camera at one site of one network. Its code is the partition key and the
``station`` column of every per-frame table (upper case: ``NYA``, ``GAKO``). What a station is —
network, camera, filters, where its files come from, which magnetometer and ceilometer go with it —
is configuration (:class:`Station`), never code:

- the primary station comes from the ``asi_*``, ``magnetometer_station`` and ``ceilometer_site``
  settings (UiO Ny-Ålesund by default);
- the sample source adds :data:`SAMPLE_THEMIS_STATION`, a synthetic THEMIS imager served in the
  real CDF and PGM formats;
- ``[stations.CODE]`` tables of the project file ``tame.toml`` (or a separate stations file, setting
  ``stations_file``, with ``[CODE]`` tables) add or replace stations, one table each::

      [stations.GAKO]
      network = "themis"            # "uio" | "themis"
      camera = "gako"               # UiO camera id, or the THEMIS site code
      image_format = "cdf"          # THEMIS: "cdf" (level-1) | "pgm" (UCalgary raw)
      folder = "/data/themis/gako"  # files already on disk ('' = download from the network's archive)
      skymap_file = "/data/themis/gako/themis_skymap_gako_20110305-+_vXX.sav"
      magnetometer_station = ""     # IMAGE station merged with this camera ('' = none)
      ceilometer_site = ""          # ceilometer merged with this camera ('' = none)
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

NETWORKS = ("uio", "themis")
THEMIS_FORMATS = ("cdf", "pgm")
_CODE = re.compile(r"^[A-Z0-9]{3,5}$")

#: The sample archive's THEMIS station: synthetic frames of a site named like Gillam (Manitoba),
#: written as hourly level-1 CDF files and one minute of raw PGM, with a lens-model skymap.
SAMPLE_THEMIS_SITE = "gill"
#: The sample archive's second synthetic THEMIS station (a site named like Churchill, Manitoba, 266 km
#: north of Gillam): its field of view overlaps GILL's; frames only for two hours of one night, in which
#: both cameras see the same auroral arc at a known height (mosaics, emission height by triangulation).
#: Not a default station: add ``[stations.CHUR]`` (network themis, camera chur, image_format cdf).
SAMPLE_OVERLAP_SITE = "chur"
#: Geodetic position (lat deg N, lon deg E, alt m) of the sample's synthetic THEMIS sites: the sample
#: generator renders their frames from it, their lens models (``geometry.lens``) project with it.
SAMPLE_SITE_POSITIONS: dict[str, tuple[float, float, float]] = {
    "gill": (56.38, -94.64, 140.0),
    "chur": (58.77, -94.17, 30.0),
}


@dataclass(frozen=True)
class Station:
    """One camera station (see the module docstring for the TOML form).

    ``code`` is the partition key and the tables' ``station`` value; ``wavelengths_nm`` the UiO
    filters (THEMIS imagers are unfiltered: empty, ``wavelength_0.1nm`` = 0).
    """

    code: str
    network: str
    camera: str
    wavelengths_nm: tuple[float, ...] = ()
    image_format: str = ""
    folder: str = ""
    skymap_file: str = ""
    magnetometer_station: str = ""
    ceilometer_site: str = ""

    def __post_init__(self):
        where = f"station {self.code!r}"
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise ValueError(f"{where}: a station code is 3-5 upper-case letters or digits (e.g. NYA, GAKO)")
        if self.network not in NETWORKS:
            raise ValueError(f"{where}: unknown network {self.network!r} (known: {', '.join(NETWORKS)})")
        if not re.fullmatch(r"[a-z0-9]{2,8}", str(self.camera)):
            raise ValueError(f"{where}: camera {self.camera!r} is not a lowercase camera id or site code")
        if self.network == "themis" and self.image_format not in THEMIS_FORMATS:
            raise ValueError(
                f"{where}: THEMIS image_format must be one of {', '.join(THEMIS_FORMATS)}, not {self.image_format!r}"
            )
        if self.network == "uio" and not self.wavelengths_nm:
            raise ValueError(f"{where}: a UiO station needs at least one wavelength (wavelengths_nm)")

    @property
    def key_maps(self) -> dict[str, dict[str, str]]:
        """Camera station → magnetometer station / ceilometer site, as the as-of merges take them."""
        return {
            "magnetometer": {self.code: self.magnetometer_station} if self.magnetometer_station else {},
            "ceilometer": {self.code: self.ceilometer_site} if self.ceilometer_site else {},
        }


_FIELDS = {f.name for f in fields(Station)}
#: Keys of a station table holding text (every key but ``wavelengths_nm``, a list of numbers).
_TEXT_KEYS = _FIELDS - {"code", "wavelengths_nm"}


def _toml_type(value) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _check_types(entry: dict, where: str) -> None:
    """ValueError naming ``where`` and the key for a value of the wrong TOML type."""
    for key in sorted(_TEXT_KEYS & set(entry)):
        if not isinstance(entry[key], str):
            raise ValueError(f"{where} {key} must be a string, not {_toml_type(entry[key])} ({entry[key]!r})")
    if "wavelengths_nm" in entry:
        value = entry["wavelengths_nm"]
        if not isinstance(value, list) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) for w in value
        ):
            raise ValueError(
                f"{where} wavelengths_nm must be a list of numbers (e.g. [557.7, 630.0]), "
                f"not {_toml_type(value)} ({value!r})"
            )


def stations_from_mapping(tables: dict, source: str, table_prefix: str = "") -> dict[str, Station]:
    """Stations of parsed TOML tables (station code → settings); ValueError naming ``source`` and the
    table (``[<table_prefix>CODE]``) for a bad entry: unknown keys, a value of the wrong type (text
    keys are strings, ``wavelengths_nm`` a list of numbers), a code that is not 3-5 upper-case letters
    or digits (a trailing newline included)."""
    stations = {}
    for code, entry in tables.items():
        table = f"[{table_prefix}{code}]" if _CODE.fullmatch(str(code)) else f"[{table_prefix}{str(code)!r}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: {table} must be a table of station settings")
        unknown = (set(entry) - _FIELDS) | ({"code"} & set(entry))
        if unknown:
            raise ValueError(
                f"{source}: {table} unknown key(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(_FIELDS - {'code'}))}"
            )
        _check_types(entry, f"{source}: {table}")
        values = {**entry, "code": code}
        try:
            if "wavelengths_nm" in values:
                values["wavelengths_nm"] = tuple(float(w) for w in values["wavelengths_nm"])
            stations[code] = Station(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {table} {exc}") from None
    return stations


def read_stations_file(path: str | Path) -> dict[str, Station]:
    """Stations of a TOML stations file (one table per station code); ValueError naming the file and
    the station for a bad entry, unknown keys and wrong types included, and naming the file when it
    cannot be read or decoded (TOML is UTF-8)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the stations file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: the stations file is not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: cannot read the stations file: {exc}") from None
    return stations_from_mapping(data, str(path))


@dataclass(frozen=True)
class StationTable:
    """The configured stations by code (ordered: the primary station first)."""

    stations: dict[str, Station] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return list(self.stations)

    def get(self, code: str) -> Station:
        """The station ``code``; ValueError listing the configured ones (how to add one included)."""
        if code not in self.stations:
            raise ValueError(
                f"station {code!r} is not configured (configured: {', '.join(self.stations) or 'none'}); "
                f"add a [stations.{code}] table to tame.toml (or the stations file)"
            )
        return self.stations[code]
