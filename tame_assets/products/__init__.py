"""Products every auroral study starts from: keograms, map projections, movies, the daily summary
figure and the calibration of p_aurora. Plain Python (numpy, polars; matplotlib imported inside the
figure functions), usable without Dagster.

Conventions: times are naive UTC (``datetime64[us]``), angles in degrees, altitudes in km, heights
in metres, magnetic field in nT. Camera geometry is duck-typed: any object with H×W arrays
``azimuth_deg``, ``elevation_deg``, ``lat_deg``, ``lon_deg`` (NaN outside the field of view) and a
scalar ``altitude_km`` (e.g. :class:`tame_assets.geometry.skymap.Skymap`) serves as a skymap.
"""
