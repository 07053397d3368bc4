"""The skymap of a configured station (:class:`tame_assets.stations.Station`)."""

from __future__ import annotations

from tame_assets.geometry.lens import CAMERA_LENSES, camera_skymap
from tame_assets.geometry.skymap import Skymap, emission_altitude_km, read_themis_sav, read_themis_skymap
from tame_assets.stations import Station


def station_skymap(
    station: Station,
    wavelength_0_1nm: int | None,
    shape: tuple[int, int] | None = None,
    altitude_km: float | None = None,
) -> Skymap | None:
    """``station``'s skymap at ``altitude_km`` (default: the wavelength's emission altitude, 110 km for
    557.7 nm and white light, 230 km for 630.0 nm): from its official file (``skymap_file``, THEMIS
    ``.sav``, rows as in its ``image_format``), else from its camera's lens model (images of ``shape``),
    else None (no geometry known: products fall back to pixel rows)."""
    altitude = emission_altitude_km(wavelength_0_1nm) if altitude_km is None else altitude_km
    if station.skymap_file:
        return read_themis_skymap(station.skymap_file, altitude, image_format=station.image_format or "cdf")
    if station.camera in CAMERA_LENSES:
        return camera_skymap(station.camera, altitude, shape=shape)
    return None


def station_site(station: Station) -> tuple[float, float, float] | None:
    """Geodetic (lat_deg, lon_deg, alt_m) of ``station``'s camera without building its skymap: from its
    skymap file (THEMIS ``.sav``), else its camera's lens-model entry, else None."""
    if station.skymap_file:
        sav = read_themis_sav(station.skymap_file)
        return sav.site_lat_deg, sav.site_lon_deg, sav.site_alt_m
    site = CAMERA_LENSES.get(station.camera)
    return (site.lat_deg, site.lon_deg, site.alt_m) if site else None
