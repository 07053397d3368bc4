"""Where each source archive lives: the real remote archives, or the embedded sample archive
served on a loopback HTTP server (so the same download clients run either way)."""

from __future__ import annotations

from dataclasses import dataclass

from tame_assets.config import SAMPLE_SOURCE, TameSettings


@dataclass(frozen=True)
class ArchiveLocations:
    uio_base_url: str
    image_base_url: str
    pangaea_url: str
    oath_url: str


def archive_locations(settings: TameSettings) -> ArchiveLocations:
    """Base URLs for the configured source. ``sample``: generate the sample archive under the data
    root once, serve it on 127.0.0.1 (one server per process) and point every client at it."""
    if settings.source != SAMPLE_SOURCE:
        return ArchiveLocations(settings.uio_base_url, settings.image_base_url, settings.pangaea_url, settings.oath_url)
    from tame_assets.sources.sample.generator import sample_locations

    return ArchiveLocations(**sample_locations(settings.paths))


def list_archive_days(settings: TameSettings, months: list[str]) -> list[str]:
    """Days (``YYYYMMDD``) with images in the archive for the configured camera and wavelengths."""
    from tame_assets.sources.http import HttpClient
    from tame_assets.sources.uio_asi import list_month_days

    urls = archive_locations(settings)
    client = HttpClient()
    days: set[str] = set()
    for month in months:
        for wavelength in settings.wavelengths_nm:
            days.update(list_month_days(client, urls.uio_base_url, settings.asi_camera, wavelength, month))
    return sorted(days)
