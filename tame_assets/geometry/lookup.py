"""Which skymap goes with a file, a folder or a camera name (used by ``tame skymap`` / ``tame keogram``)."""

from __future__ import annotations

from pathlib import Path

from tame_assets.geometry.lens import CAMERA_LENSES, camera_site, lens_skymap
from tame_assets.geometry.skymap import (
    DEFAULT_MIN_ELEVATION_DEG,
    EMISSION_ALTITUDE_KM,
    WHITE_LIGHT,
    Skymap,
    emission_altitude_km,
    read_themis_skymap,
)


def _uio_image_skymap(png: Path, altitude_km: float | None, min_elevation_deg: float) -> Skymap:
    from PIL import Image

    from tame_assets.sources.uio_asi import parse_asi_filename

    parsed = parse_asi_filename(png.name)
    try:
        with Image.open(png) as img:
            cols, rows = img.size
    except OSError as err:
        raise ValueError(f"{png}: unreadable image ({err})") from None
    site = camera_site(parsed.camera)
    if altitude_km is None:
        altitude_km = emission_altitude_km(round(parsed.wavelength_nm * 10))
    return lens_skymap((rows, cols), site.lens, site, altitude_km, parsed.camera, min_elevation_deg)


def skymap_for_file(
    path_or_camera: str | Path,
    altitude_km: float | None = None,
    min_elevation_deg: float = DEFAULT_MIN_ELEVATION_DEG,
    image_format: str = "cdf",
) -> Skymap:
    """The skymap for a THEMIS skymap ``.sav`` (rows of ``image_format`` images, "cdf" or "pgm"),
    a UiO image (``nya6_…_5577_cal.png``: the camera's lens model at that image's size), a folder
    holding exactly one ``themis_skymap_*.sav`` or UiO images of one camera, or a camera name in
    :data:`~tame_assets.geometry.lens.CAMERA_LENSES` (``nya6``). ``altitude_km=None``: the default
    emission altitude of the wavelength (110 km for white light and 557.7 nm, 230 km for 630.0 nm)."""
    text = str(path_or_camera).strip()
    path = Path(text)
    if not path.exists():
        if text.lower() in CAMERA_LENSES:
            site = camera_site(text)
            altitude = EMISSION_ALTITUDE_KM[WHITE_LIGHT] if altitude_km is None else altitude_km
            return lens_skymap(site.lens.image_shape, site.lens, site, altitude, text.lower(), min_elevation_deg)
        raise ValueError(
            f"{text}: no such file or folder, and not a camera with a lens model "
            f"(known cameras: {', '.join(sorted(CAMERA_LENSES))})"
        )
    if path.is_dir():
        savs = sorted(path.glob("themis_skymap_*.sav"))
        if len(savs) > 1:
            raise ValueError(f"{path}: {len(savs)} THEMIS skymaps ({', '.join(p.name for p in savs)}); name one")
        if savs:
            path = savs[0]
        else:
            pngs = sorted(path.glob("*.png"))
            cameras = sorted({p.name.split("_", 1)[0].lower() for p in pngs})
            if not pngs:
                raise ValueError(f"{path}: folder holds neither a themis_skymap_*.sav nor UiO .png images")
            if len(cameras) > 1:
                raise ValueError(f"{path}: images of several cameras ({', '.join(cameras)}); name one image")
            path = pngs[0]
    suffix = path.suffix.lower()
    if suffix == ".sav":
        altitude = EMISSION_ALTITUDE_KM[WHITE_LIGHT] if altitude_km is None else altitude_km
        return read_themis_skymap(path, altitude, image_format=image_format, min_elevation_deg=min_elevation_deg)
    if suffix == ".png":
        return _uio_image_skymap(path, altitude_km, min_elevation_deg)
    raise ValueError(f"{path}: not a THEMIS skymap (.sav) or UiO image (.png)")
