"""Where each source archive lives: the real remote archives, or the embedded sample archive
served on a loopback HTTP server (so the same download clients run either way)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tame_assets.config import SAMPLE_MONTHS, SAMPLE_SOURCE, TameSettings
from tame_assets.sources.magnetometer import ImageRequester

#: Identity the sample source sends to its emulated IMAGE form (never sent to the real service).
SAMPLE_IMAGE_REQUESTER = ImageRequester(
    "tame_assets sample user", "tame_assets sample archive", "sample@tame-assets.invalid"
)


@dataclass(frozen=True)
class ArchiveLocations:
    uio_base_url: str
    image_base_url: str
    pangaea_url: str
    oath_url: str
    themis_cdf_base_url: str
    themis_pgm_base_url: str


def archive_locations(settings: TameSettings) -> ArchiveLocations:
    """Base URLs for the configured source. ``sample``: generate the sample archive under the data
    root once, serve it on 127.0.0.1 (one server per process) and point every client at it."""
    if settings.source != SAMPLE_SOURCE:
        return ArchiveLocations(
            settings.uio_base_url,
            settings.image_base_url,
            settings.pangaea_url,
            settings.oath_url,
            settings.themis_cdf_base_url,
            settings.themis_pgm_base_url,
        )
    from tame_assets.sources.sample.generator import sample_locations

    return ArchiveLocations(**sample_locations(settings.paths))


def image_requester(settings: TameSettings) -> ImageRequester:
    """Who the IMAGE data requests are made for: the configured ``image_requester_*`` settings
    (ValueError naming the empty ones), or a placeholder for the sample source."""
    if settings.source == SAMPLE_SOURCE:
        return SAMPLE_IMAGE_REQUESTER
    return ImageRequester(
        settings.image_requester_name, settings.image_requester_institute, settings.image_requester_email
    ).check()


def list_archive_days(settings: TameSettings, months: list[str]) -> list[str]:
    """Days (``YYYYMMDD``) with images in the archive for the configured camera and wavelengths:
    from the archive's ``avail.csv`` where it serves one, else from its listing pages."""
    from tame_assets.sources.http import HttpClient
    from tame_assets.sources.uio_asi import archive_days

    urls = archive_locations(settings)
    return archive_days(
        HttpClient(), urls.uio_base_url, settings.asi_camera, list(settings.wavelengths_nm), months
    ).days


def archive_image_months(client, base_url: str, camera: str, wavelengths_nm) -> list[str]:
    """Months (``YYYY-MM``) with at least one day folder of ``camera`` images at any of
    ``wavelengths_nm`` in the UiO-layout archive at ``base_url`` (``{base}/{camera}/{wavelength}/{year}/{YYYYMMDD}/``):
    one listing per wavelength folder and one per year folder. A missing folder (HTTP 404) has no months."""
    from tame_assets.sources.http import DownloadError
    from tame_assets.sources.uio_asi import parse_listing, wavelength_code, year_url

    def names(url: str) -> list[str]:
        try:
            return [link.rstrip("/").rsplit("/", 1)[-1] for link in parse_listing(client.get_text(url))]
        except DownloadError as exc:
            if exc.status == 404:
                return []
            raise

    months: set[str] = set()
    for wavelength in wavelengths_nm:
        folder = f"{base_url.rstrip('/')}/{camera}/{wavelength_code(wavelength)}/"
        for year in sorted({n for n in names(folder) if re.fullmatch(r"\d{4}", n)}):
            days = [n for n in names(year_url(base_url, camera, wavelength, int(year))) if re.fullmatch(r"\d{8}", n)]
            months.update(f"{d[:4]}-{d[4:6]}" for d in days if d.startswith(year))
    return sorted(months)


def available_months(settings: TameSettings) -> list[str]:
    """Months the configured image archive has data for: the sample archive's ``SAMPLE_MONTHS``
    (no server needed), or for ``source="remote"`` a listing of the UiO archive's year folders for
    the configured camera and wavelengths (network access)."""
    if settings.source == SAMPLE_SOURCE:
        return list(SAMPLE_MONTHS)
    from tame_assets.sources.http import HttpClient

    return archive_image_months(HttpClient(), settings.uio_base_url, settings.asi_camera, settings.wavelengths_nm)
