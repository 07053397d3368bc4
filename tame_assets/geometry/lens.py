"""Fisheye lens models for cameras without an official skymap (the UiO all-sky imagers).

A :class:`LensModel` maps a pixel centre (row, col) to (azimuth, elevation):

- ``rho`` = distance (px) from the optical centre (``x0_px`` = column, ``y0_px`` = row, both in
  0-based pixel-centre coordinates of the stored image);
- zenith angle θ from ``rho``: ``equidistant`` θ = 90° · rho / R (default), or ``equisolid``
  rho = √2 · R · sin(θ/2), with R = ``horizon_radius_px`` the radius of the horizon (θ = 90°);
- ψ = angle of the pixel around the centre, clockwise (as displayed, row 0 on top) from "up"
  (towards row 0); azimuth = ``rotation_deg`` + ψ when ``east="right"`` (a map-like view from
  above), ``rotation_deg`` − ψ when ``east="left"`` (the sky seen from below, usual for all-sky
  images); so ``rotation_deg`` is the azimuth seen straight "up" from the centre;
- pixels with elevation below ``horizon_cut_deg`` (default 0°, the horizon) are NaN, and so are
  pixels outside ``data_circle_px`` = (x, y, radius) when given (the lit disk of the stored
  images, which need not be centred on the optical axis).

Parameters are in pixels of ``image_shape``; for another shape they are scaled about the image
edges (a pixel-centre coordinate p becomes (p + ½)·s − ½ with s = new size / old size).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from tame_assets.geometry.skymap import DEFAULT_MIN_ELEVATION_DEG, Skymap, project_to_altitude, validate_altitude_km
from tame_assets.stations import SAMPLE_OVERLAP_SITE, SAMPLE_SITE_POSITIONS

PROJECTIONS = ("equidistant", "equisolid")
EAST_SIDES = ("left", "right")


@dataclass(frozen=True)
class LensModel:
    """Fisheye lens (module docstring): centre, horizon radius, rotation, east side, horizon cut."""

    x0_px: float
    y0_px: float
    horizon_radius_px: float
    rotation_deg: float = 0.0
    east: str = "left"
    projection: str = "equidistant"
    horizon_cut_deg: float = 0.0
    image_shape: tuple[int, int] = (0, 0)
    data_circle_px: tuple[float, float, float] | None = None

    def __post_init__(self):
        if self.projection not in PROJECTIONS:
            raise ValueError(f"lens projection must be one of {PROJECTIONS}, not {self.projection!r}")
        if self.east not in EAST_SIDES:
            raise ValueError(f"lens east side must be one of {EAST_SIDES}, not {self.east!r}")
        if not self.horizon_radius_px > 0:
            raise ValueError(f"lens horizon radius must be > 0 px, not {self.horizon_radius_px}")
        if len(self.image_shape) != 2 or min(self.image_shape) < 1:
            raise ValueError(f"lens image_shape must be (rows, cols) ≥ 1, not {self.image_shape}")

    @classmethod
    def centred(cls, shape: tuple[int, int], **kwargs) -> LensModel:
        """Centre in the middle of ``shape``, horizon on the inscribed circle (radius min(shape)/2 − ½)."""
        rows, cols = shape
        return cls(
            x0_px=(cols - 1) / 2,
            y0_px=(rows - 1) / 2,
            horizon_radius_px=(min(rows, cols) - 1) / 2,
            image_shape=(rows, cols),
            **kwargs,
        )

    def for_shape(self, shape: tuple[int, int]) -> LensModel:
        """This lens rescaled to images of ``shape`` (rows, cols); ValueError if not square-scaled."""
        shape = (int(shape[0]), int(shape[1]))
        if shape == tuple(self.image_shape):
            return self
        sy, sx = shape[0] / self.image_shape[0], shape[1] / self.image_shape[1]
        if abs(sy - sx) > 0.02:
            raise ValueError(f"lens fitted for {self.image_shape} cannot be scaled to {shape} (aspect ratio differs)")
        circle = self.data_circle_px
        if circle is not None:
            circle = ((circle[0] + 0.5) * sx - 0.5, (circle[1] + 0.5) * sy - 0.5, circle[2] * (sx + sy) / 2)
        return dataclasses.replace(
            self,
            x0_px=(self.x0_px + 0.5) * sx - 0.5,
            y0_px=(self.y0_px + 0.5) * sy - 0.5,
            horizon_radius_px=self.horizon_radius_px * (sx + sy) / 2,
            image_shape=shape,
            data_circle_px=circle,
        )

    def look_directions(self, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(azimuth_deg, elevation_deg) per pixel centre of an image of ``shape`` (default ``image_shape``)."""
        lens = self.for_shape(shape if shape is not None else self.image_shape)
        rows, cols = np.indices(lens.image_shape, dtype=float)
        return lens.pixel_to_look(rows, cols)

    def pixel_to_look(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """(azimuth_deg 0–360, elevation_deg) of pixel coordinates (NaN below the horizon cut)."""
        rows, cols = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
        az, el = _model_look(self, rows, cols)
        bad = ~(el >= self.horizon_cut_deg)
        if self.data_circle_px is not None:
            x, y, radius = self.data_circle_px
            bad = bad | (np.hypot(cols - x, rows - y) > radius)
        return np.where(bad, np.nan, np.mod(az, 360.0)), np.where(bad, np.nan, el)

    def look_to_pixel(self, azimuth_deg, elevation_deg) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`pixel_to_look`: (row, col) pixel coordinates (float) of a direction."""
        zenith = 90.0 - np.asarray(elevation_deg, dtype=float)
        if self.projection == "equidistant":
            rho = zenith / 90.0
        else:
            rho = np.sqrt(2) * np.sin(np.radians(zenith) / 2)
        psi = np.asarray(azimuth_deg, dtype=float) - self.rotation_deg
        psi = np.radians(psi if self.east == "right" else -psi)
        r = rho * self.horizon_radius_px
        return self.y0_px - r * np.cos(psi), self.x0_px + r * np.sin(psi)


@dataclass(frozen=True)
class CameraSite:
    """A camera's network, station and geodetic position (deg, deg east −180..180, m above the
    WGS84 ellipsoid) with the lens model used for it and a note on how good that model is."""

    network: str
    station: str
    lat_deg: float
    lon_deg: float
    alt_m: float
    lens: LensModel
    accuracy: str


#: Ny-Ålesund (Svalbard): 78.9227° N, 11.9265° E, ~50 m (consistent with the settlement's
#: 78.92° N 11.93° E; a ±50 m height error moves 110-km points by < 0.05 km).
#: nya6: fitted to 258 star detections (28 bright stars) in the 122 "aurora-less" 557.7 nm
#: calibrated PNGs of 2014–2020 (:func:`tame_assets.geometry.stars.calibrate_lens`); the stored
#: image is mirrored (east right of north, a view from above) and rotated: "up" looks to azimuth
#: 325.9°; the lit disk (centre 234, 234, radius 234.5 px) ends at elevation 15–18°.
NYA_LAT_DEG, NYA_LON_DEG, NYA_ALT_M = 78.9227, 11.9265, 50.0

CAMERA_LENSES: dict[str, CameraSite] = {
    "nya6": CameraSite(
        network="uio",
        station="NYA",
        lat_deg=NYA_LAT_DEG,
        lon_deg=NYA_LON_DEG,
        alt_m=NYA_ALT_M,
        lens=LensModel(
            x0_px=229.87,
            y0_px=235.08,
            horizon_radius_px=278.07,
            rotation_deg=325.87,
            east="right",
            projection="equisolid",
            horizon_cut_deg=0.0,
            image_shape=(469, 469),
            data_circle_px=(234.0, 234.0, 234.5),
        ),
        accuracy="star fit: median 0.30°, 95th percentile 0.79°, max 0.98° (258 detections of 28 stars, 2014–2020; "
        "equidistant fits worse: median 0.58°)",
    ),
    "nya4": CameraSite(
        network="uio",
        station="NYA",
        lat_deg=NYA_LAT_DEG,
        lon_deg=NYA_LON_DEG,
        alt_m=NYA_ALT_M,
        lens=LensModel.centred((192, 192), rotation_deg=0.0, east="left", projection="equidistant"),
        accuracy="exact for the synthetic sample images (they are rendered with this model; their "
        "auroral forms are randomly rotated, so the orientation is nominal)",
    ),
    # The sample archive's synthetic THEMIS station (site code of Gillam, Manitoba: 56.38° N, 94.64° W):
    # its frames are rendered on a centred 256×256 disk. The real Gillam imager has an official skymap
    # (.sav): configure it with the station's ``skymap_file`` instead.
    "gill": CameraSite(
        network="themis",
        station="GILL",
        lat_deg=56.38,
        lon_deg=-94.64,
        alt_m=140.0,
        lens=LensModel.centred((256, 256), rotation_deg=0.0, east="left", projection="equidistant"),
        accuracy="exact for the synthetic sample frames (rendered on this centred disk; orientation nominal); "
        "not for the real Gillam imager",
    ),
    # The sample's second synthetic THEMIS station, 266 km north of GILL (overlapping fields of view): its
    # overlap frames are rendered through this lens from a 3-D arc at a known height (north up, east left).
    SAMPLE_OVERLAP_SITE: CameraSite(
        network="themis",
        station=SAMPLE_OVERLAP_SITE.upper(),
        lat_deg=SAMPLE_SITE_POSITIONS[SAMPLE_OVERLAP_SITE][0],
        lon_deg=SAMPLE_SITE_POSITIONS[SAMPLE_OVERLAP_SITE][1],
        alt_m=SAMPLE_SITE_POSITIONS[SAMPLE_OVERLAP_SITE][2],
        lens=LensModel.centred((256, 256), rotation_deg=0.0, east="left", projection="equidistant"),
        accuracy="exact for the synthetic sample frames (rendered through this lens); a synthetic site",
    ),
}


def camera_site(camera: str) -> CameraSite:
    """The :data:`CAMERA_LENSES` entry for ``camera`` (case-insensitive); ValueError naming the known ones."""
    key = camera.strip().lower()
    if key not in CAMERA_LENSES:
        raise ValueError(f"no lens model for camera {camera!r}; known: {', '.join(sorted(CAMERA_LENSES))}")
    return CAMERA_LENSES[key]


def lens_skymap(
    shape: tuple[int, int],
    lens: LensModel,
    site: CameraSite,
    altitude_km: float,
    camera: str,
    min_elevation_deg: float = DEFAULT_MIN_ELEVATION_DEG,
    valid_from=None,
    valid_to=None,
) -> Skymap:
    """Skymap of an image of ``shape`` (rows, cols) from a lens model at ``site``, lat/lon of pixel
    centres at ``altitude_km`` (WGS84); rows as stored in the camera's image files."""
    az, el = lens.look_directions(shape)
    lat, lon = project_to_altitude(az, el, site.lat_deg, site.lon_deg, site.alt_m, altitude_km, min_elevation_deg)
    used = lens.for_shape(shape)
    source = (
        f"lens model {used.projection} centre=({used.x0_px:.2f}, {used.y0_px:.2f}) px "
        f"R={used.horizon_radius_px:.2f} px rotation={used.rotation_deg:.2f}° east-{used.east} "
        f"cut={used.horizon_cut_deg:g}°"
    )
    return Skymap(
        network=site.network,
        station=site.station,
        camera=camera,
        azimuth_deg=az,
        elevation_deg=el,
        site_lat_deg=site.lat_deg,
        site_lon_deg=site.lon_deg,
        site_alt_m=site.alt_m,
        altitude_km=validate_altitude_km(altitude_km),
        lat_deg=lat,
        lon_deg=lon,
        valid_from=valid_from,
        valid_to=valid_to,
        source=source,
        row_convention="image rows as stored in the PNG",
        min_elevation_deg=float(min_elevation_deg),
    )


def camera_skymap(
    camera: str,
    altitude_km: float,
    shape: tuple[int, int] | None = None,
    min_elevation_deg: float = DEFAULT_MIN_ELEVATION_DEG,
) -> Skymap:
    """Lens-model skymap of a camera in :data:`CAMERA_LENSES` (``shape`` defaults to the lens's own)."""
    site = camera_site(camera)
    return lens_skymap(
        shape or site.lens.image_shape, site.lens, site, altitude_km, camera.strip().lower(), min_elevation_deg
    )


# ----------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class LensFit:
    """A fitted lens and its angular residuals (degrees, one per fitted pixel/point)."""

    lens: LensModel
    residual_deg: np.ndarray

    def summary(self) -> dict[str, float]:
        r = self.residual_deg
        return {
            "n": float(r.size),
            "median_deg": float(np.median(r)),
            "p95_deg": float(np.percentile(r, 95)),
            "max_deg": float(r.max()),
            "rms_deg": float(np.sqrt(np.mean(r**2))),
        }


def _unit(az_deg, el_deg) -> np.ndarray:
    az, el = np.radians(az_deg), np.radians(el_deg)
    return np.stack([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)], axis=-1)


def angular_distance_deg(az1, el1, az2, el2) -> np.ndarray:
    """Angle (degrees) between two look directions given as azimuth/elevation in degrees."""
    dot = np.sum(_unit(az1, el1) * _unit(az2, el2), axis=-1)
    return np.degrees(np.arccos(np.clip(dot, -1.0, 1.0)))


def fit_lens_model(
    rows,
    cols,
    azimuth_deg,
    elevation_deg,
    image_shape: tuple[int, int],
    projection: str = "equidistant",
    initial: LensModel | None = None,
) -> LensFit:
    """Least-squares lens model (centre, horizon radius, rotation; both east sides tried) through
    points of known pixel position (row, col) and look direction (azimuth, elevation in degrees),
    e.g. an official skymap's pixels or identified stars. Residual = angle between the model's and
    the given direction. Starts from ``initial``'s centre and rotation when given, else from the
    highest point and the mean azimuth offset."""
    from scipy.optimize import least_squares

    rows, cols = np.asarray(rows, float).ravel(), np.asarray(cols, float).ravel()
    az, el = np.asarray(azimuth_deg, float).ravel(), np.asarray(elevation_deg, float).ravel()
    ok = np.isfinite(rows) & np.isfinite(cols) & np.isfinite(az) & np.isfinite(el)
    rows, cols, az, el = rows[ok], cols[ok], az[ok], el[ok]
    if rows.size < 4:
        raise ValueError(f"need at least 4 points with finite position and direction to fit a lens, got {rows.size}")
    target = _unit(az, el)
    top = np.argmax(el)
    y0, x0 = rows[top], cols[top]
    rho = np.hypot(cols - x0, rows - y0)
    low = el < 80
    radius0 = float(np.median(90.0 * rho[low] / (90.0 - el[low]))) if low.any() else float(max(image_shape)) / 2
    if initial is not None:
        x0, y0 = initial.x0_px, initial.y0_px
        radius0 = initial.horizon_radius_px if initial.projection == projection else radius0
    best = None
    for east in EAST_SIDES:
        psi = np.degrees(np.arctan2(cols - x0, -(rows - y0)))
        offset = az - psi if east == "right" else az + psi
        rotation0 = float(np.degrees(np.angle(np.mean(np.exp(1j * np.radians(offset))))))
        if initial is not None and initial.east == east:
            rotation0 = initial.rotation_deg

        def residuals(p, east=east):
            lens = LensModel(p[0], p[1], p[2], p[3], east, projection, -90.0, tuple(image_shape))
            r_az, r_el = _model_look(lens, rows, cols)
            return (_unit(r_az, r_el) - target).ravel()

        result = least_squares(residuals, [x0, y0, radius0, rotation0], method="lm")
        x, y, radius, rotation = result.x
        lens = LensModel(
            float(x),
            float(y),
            float(radius),
            float(rotation % 360.0),
            east,
            projection,
            0.0,
            tuple(int(s) for s in image_shape),
        )
        m_az, m_el = _model_look(lens, rows, cols)
        residual = angular_distance_deg(m_az, m_el, az, el)
        if best is None or np.mean(residual**2) < np.mean(best.residual_deg**2):
            best = LensFit(lens, residual)
    return best


def lit_disk_circle(images) -> tuple[float, float, float, float]:
    """Circle through the edge of the lit disk of fisheye images: (x_px, y_px, radius_px, rms_px).

    ``images``: one image or a stack (n, rows, cols); a pixel is lit when non-zero in more than half
    of the images. Algebraic least-squares circle through the centres of the lit pixels that touch
    an unlit one (radius to the disk's outer edge ≈ returned radius + ½ px); ``rms_px`` is the
    residual of those pixels from the circle."""
    stack = np.asarray(images)
    if stack.ndim == 2:
        stack = stack[None]
    lit = (stack > 0).mean(axis=0) > 0.5
    padded = np.pad(lit, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    rows, cols = np.nonzero(lit & ~interior)
    if rows.size < 10:
        raise ValueError(f"images have no lit disk to fit ({rows.size} edge pixels)")
    design = np.column_stack([2 * cols, 2 * rows, np.ones(rows.size)])
    (x, y, k), *_ = np.linalg.lstsq(design, cols.astype(float) ** 2 + rows.astype(float) ** 2, rcond=None)
    radius = float(np.sqrt(k + x * x + y * y))
    rms = float(np.sqrt(np.mean((np.hypot(cols - x, rows - y) - radius) ** 2)))
    return float(x), float(y), radius, rms


def _model_look(lens: LensModel, rows, cols):
    """Model (azimuth unwrapped, elevation) without the horizon cut (zenith angles > 90° allowed)."""
    dx, dy = cols - lens.x0_px, rows - lens.y0_px
    rho = np.hypot(dx, dy) / lens.horizon_radius_px
    if lens.projection == "equidistant":
        zenith = 90.0 * rho
    else:
        zenith = np.degrees(2 * np.arcsin(np.clip(rho / np.sqrt(2), 0, 1)))
    psi = np.degrees(np.arctan2(dx, -dy))
    return lens.rotation_deg + (psi if lens.east == "right" else -psi), 90.0 - zenith
