"""Skymap figure: elevation and latitude/longitude contours over the pixel grid (matplotlib)."""

from __future__ import annotations

import numpy as np

from tame_assets.geometry.skymap import Skymap


def _arrow_towards(skymap: Skymap, azimuth_deg: float) -> tuple[float, float, float, float] | None:
    """(col, row, dcol, drow) from the zenith pixel towards ``azimuth_deg`` at elevation ~70°."""
    el, az = skymap.elevation_deg, skymap.azimuth_deg
    if not np.isfinite(el).any():
        return None
    r0, c0 = np.unravel_index(np.nanargmax(el), el.shape)
    with np.errstate(invalid="ignore"):
        ring = (el > 65) & (el < 75)
    if not ring.any():
        return None
    diff = np.abs((az - azimuth_deg + 180.0) % 360.0 - 180.0)
    diff = np.where(ring, diff, np.inf)
    r1, c1 = np.unravel_index(np.argmin(diff), diff.shape)
    return float(c0), float(r0), float(c1 - c0), float(r1 - r0)


def skymap_figure(skymap: Skymap, image: np.ndarray | None = None):
    """Figure (pixel grid, row 0 at the top as stored): elevation contours every 10° (the
    ``min_elevation_deg`` one bold), geodetic latitude/longitude contours at ``altitude_km``, arrows
    towards north and east from the zenith; ``image`` (same shape) drawn underneath if given."""
    import matplotlib.pyplot as plt

    rows, cols = skymap.shape
    fig, ax = plt.subplots(figsize=(8.2, 7.2), layout="constrained")
    if image is not None:
        if np.shape(image) != skymap.shape:
            raise ValueError(f"image shape {np.shape(image)} differs from the skymap's {skymap.shape}")
        finite = np.asarray(image, dtype=float)
        lo, hi = np.nanpercentile(finite, [1, 99.5])
        ax.imshow(finite, cmap="gray", vmin=lo, vmax=hi, origin="upper")
    else:
        ax.imshow(
            np.where(skymap.mask, 1.0, np.where(np.isfinite(skymap.elevation_deg), 0.6, 0.0)),
            cmap="gray",
            vmin=0,
            vmax=1.2,
            origin="upper",
        )
    levels = np.arange(10, 90, 10)
    cs = ax.contour(skymap.elevation_deg, levels=levels, colors="tab:orange", linewidths=0.8)
    ax.clabel(cs, fmt="%d°", fontsize=8)
    ax.contour(skymap.elevation_deg, levels=[skymap.min_elevation_deg], colors="tab:orange", linewidths=2.0)
    from tame_assets.geometry.places import lat_text, lon_text, station_label

    lat, lon = skymap.lat_deg, skymap.lon_deg
    handles = [plt.Line2D([], [], color="tab:orange", label="Elevation (°)")]
    if np.isfinite(lat).any():
        for values, color, name in ((lat, "tab:blue", "Latitude (°N)"), (lon, "tab:green", "Longitude (°E/°W)")):
            lo, hi = np.nanmin(values), np.nanmax(values)
            step = max(0.5, float(np.round((hi - lo) / 8 * 2) / 2))
            lv = np.arange(np.ceil(lo / step) * step, hi, step)
            if lv.size:
                c = ax.contour(values, levels=lv, colors=color, linewidths=0.8, linestyles="--")
                text = lat_text if values is lat else lon_text
                ax.clabel(c, fmt=lambda v, text=text: text(v, 0 if float(v).is_integer() else 1), fontsize=8)
            handles.append(plt.Line2D([], [], color=color, linestyle="--", label=name))
    for azimuth, label, color in ((0.0, "N", "red"), (90.0, "E", "magenta")):
        arrow = _arrow_towards(skymap, azimuth)
        if arrow is not None:
            ax.annotate(
                "",
                xy=(arrow[0] + arrow[2], arrow[1] + arrow[3]),
                xytext=(arrow[0], arrow[1]),
                arrowprops=dict(arrowstyle="-|>", color=color, lw=2),
            )
            ax.text(
                arrow[0] + 1.25 * arrow[2],
                arrow[1] + 1.25 * arrow[3],
                label,
                color=color,
                fontsize=12,
                fontweight="bold",
                ha="center",
                va="center",
            )
    valid = f"valid {skymap.valid_from:%Y-%m-%d}" if skymap.valid_from else "validity open"
    valid += f" – {skymap.valid_to:%Y-%m-%d}" if skymap.valid_to else " onwards" if skymap.valid_from else ""
    ax.set_title(
        f"{station_label(str(skymap.station))} skymap, {skymap.network.upper()} camera {skymap.camera} "
        f"({skymap.station}): latitude/longitude at {skymap.altitude_km:g} km (WGS84)\n{valid}; site "
        f"{lat_text(skymap.site_lat_deg, 3)} {lon_text(skymap.site_lon_deg, 3)}; {skymap.row_convention}",
        fontsize=9,
    )
    ax.set_xlabel("Column (pixel)")
    ax.set_ylabel("Row (pixel, 0 = first stored row)")
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig
