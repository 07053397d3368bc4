"""Platform configuration: data root, stations, wavelengths and archive locations.

Everything here is plain Python so the domain code works without Dagster; the Dagster resource in
:mod:`tame_assets.resources` only wraps :class:`TameSettings`.

Conventions used throughout the package: timestamps are naive UTC, lengths in metres, magnetic
field in nT, wavelengths in nm (file names use 0.1 nm = Ångström, e.g. ``5577``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

#: Environment variable that overrides the default data root ``./data``.
DATA_ROOT_ENV = "TAME_DATA_ROOT"

#: First monthly partition (the paper's season starts November 2010).
PARTITIONS_START = "2010-11"

#: Months covered by the embedded sample archive.
SAMPLE_MONTHS = ("2010-12", "2011-01")

#: ``source`` value meaning "serve the embedded sample archive on a loopback HTTP server".
SAMPLE_SOURCE = "sample"

#: Real archive locations (used when ``source="remote"``).
UIO_ASI_BASE_URL = "http://tid.uio.no/plasma/aurora"
IMAGE_MAGNETOMETER_BASE_URL = "https://space.fmi.fi/image/www/data_download"
PANGAEA_CEILOMETER_URL = "https://doi.pangaea.de/10.1594/PANGAEA.880300?format=textfile"
OATH_URL = "http://tid.uio.no/plasma/oath/oath_v1.1_20181026.tgz"
#: SHA-256 the downloaded OATH tarball must have ("" = not checked). Set it to the digest of the
#: release you reviewed; a mismatch is an error naming the URL.
OATH_SHA256 = ""

#: Largest image accepted, in pixels (width × height), checked from the header before decoding.
MAX_IMAGE_PIXELS = 4096 * 4096
#: Environment variable overriding MAX_IMAGE_PIXELS for every image loader (also in worker processes).
MAX_PIXELS_ENV = "TAME_MAX_IMAGE_PIXELS"


def default_data_root() -> str:
    """Data root from ``$TAME_DATA_ROOT`` or ``./data`` (a local path or ``s3://bucket/prefix``)."""
    return os.environ.get(DATA_ROOT_ENV, "data")


@dataclass(frozen=True)
class TameSettings:
    """What to ingest and where to put it.

    ``source`` is ``"sample"`` (default: the embedded, generated sample archive served over HTTP on
    127.0.0.1 through the same download clients as the real archives) or ``"remote"`` (the real
    archives at the ``*_url`` locations below).
    """

    data_root: str = field(default_factory=default_data_root)
    source: str = SAMPLE_SOURCE
    asi_station: str = "NYA"
    asi_camera: str = "nya4"
    wavelengths_nm: tuple[float, ...] = (557.7,)
    magnetometer_station: str = "NAL"
    ceilometer_site: str = "NYA"
    uio_base_url: str = UIO_ASI_BASE_URL
    image_base_url: str = IMAGE_MAGNETOMETER_BASE_URL
    pangaea_url: str = PANGAEA_CEILOMETER_URL
    oath_url: str = OATH_URL
    backbone: str = "efficientnet_lite0"
    feature_kind: str = "logits"
    magnetometer_tolerance_s: float = 60.0
    ceilometer_tolerance_s: float = 300.0
    min_classifier_accuracy: float = 0.5
    #: Downloaded files whose data are younger than this many days are re-validated with the
    #: server on every run (None: those of the current and the previous month).
    refresh_days: int | None = None
    max_image_pixels: int = MAX_IMAGE_PIXELS
    oath_sha256: str = OATH_SHA256

    def with_root(self, data_root: str) -> "TameSettings":
        return replace(self, data_root=str(data_root))
