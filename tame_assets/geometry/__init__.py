"""Camera geometry: skymaps (per-pixel azimuth/elevation and geodetic lat/lon at an emission
altitude) from official THEMIS files or fisheye lens models, WGS84 projection, star checks.

Conventions: see :mod:`tame_assets.geometry.skymap`. Pure numpy/scipy (matplotlib only inside
:func:`skymap_figure`)."""

from tame_assets.geometry.earth import ground_distance_km, look_to_geodetic
from tame_assets.geometry.figure import skymap_figure
from tame_assets.geometry.lens import (
    CAMERA_LENSES,
    CameraSite,
    LensFit,
    LensModel,
    angular_distance_deg,
    camera_site,
    camera_skymap,
    fit_lens_model,
    lens_skymap,
    lit_disk_circle,
)
from tame_assets.geometry.lookup import skymap_for_file
from tame_assets.geometry.skymap import (
    DEFAULT_MIN_ELEVATION_DEG,
    EMISSION_ALTITUDE_KM,
    SKYMAP_COLUMNS,
    WHITE_LIGHT,
    Skymap,
    ThemisSkymapFile,
    emission_altitude_km,
    parse_themis_skymap_name,
    read_skymap_parquet,
    read_themis_sav,
    read_themis_skymap,
    to_image_rows,
    write_skymap_parquet,
)
from tame_assets.geometry.stars import calibrate_lens, match_stars, star_directions
from tame_assets.geometry.stations import station_skymap

__all__ = [
    "CAMERA_LENSES",
    "DEFAULT_MIN_ELEVATION_DEG",
    "EMISSION_ALTITUDE_KM",
    "SKYMAP_COLUMNS",
    "WHITE_LIGHT",
    "CameraSite",
    "LensFit",
    "LensModel",
    "Skymap",
    "ThemisSkymapFile",
    "angular_distance_deg",
    "calibrate_lens",
    "camera_site",
    "camera_skymap",
    "emission_altitude_km",
    "fit_lens_model",
    "ground_distance_km",
    "lens_skymap",
    "lit_disk_circle",
    "look_to_geodetic",
    "match_stars",
    "parse_themis_skymap_name",
    "read_skymap_parquet",
    "read_themis_sav",
    "read_themis_skymap",
    "skymap_figure",
    "skymap_for_file",
    "star_directions",
    "station_skymap",
    "to_image_rows",
    "write_skymap_parquet",
]
