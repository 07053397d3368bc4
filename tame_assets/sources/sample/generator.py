"""The embedded SAMPLE archive: a small, deterministic, synthetic copy of every source in its real
format and URL layout, served on 127.0.0.1 so the platform runs end to end without a network.

Archive layout (mirrors the remote archives)::

    asim/nya4/5577/YYYY/YYYYMMDD/utHH/nya4_YYYYMMDD_HHMMSS_5577_cal.png   UiO all-sky images
    asim/avail.csv                                                       UiO availability index
    image/iaga2002/NAL/YYYY/nalYYYYMMDDvmin.min                          IMAGE NAL data store (IAGA-2002)
    pangaea/10.1594/PANGAEA.880300                                       ceilometer collection export
    pangaea/10.1594/PANGAEA.88YYYYMM                                     one child dataset per month
    oath/oath_v1.1_sample.tgz                                            OATH-format labelled set
    themis/cdf/thg/l1/asi/gill/YYYY/MM/thg_l1_asf_gill_YYYYMMDDHH_v01.cdf THEMIS level-1 CDF (synthetic GILL)
    themis/pgm/YYYY/MM/DD/gill_themis19/utHH/YYYYMMDD_HHMM_gill_themis19_full.pgm.gz  THEMIS raw PGM
    themis/cdf/thg/l1/asi/chur/YYYY/MM/thg_l1_asf_chur_YYYYMMDDHH_v01.cdf THEMIS level-1 CDF (synthetic CHUR)

Served by :class:`~tame_assets.sources.sample.server.SampleArchiveHandler`, which also emulates the
IMAGE request form (``POST image/cgi-bin/imagecgi/image-data.cgi``; the answer links a column file
generated from the IAGA-2002 store) and answers PANGAEA exports only with ``?format=textfile``.

Contents: UiO images (camera nya4, 557.7 nm) at irregular times, ``images_per_day`` per day, every
third one 16-bit; each image's class (arc, diffuse, discrete, cloudy, moon, clear) comes from a
persistent activity/weather state (it changes with probability 0.35 between consecutive images), so
classes cluster in time. One image per month (the first of the 15th) is deliberately truncated: the
pipeline must quarantine it, not lose it. NAL 1-minute XYZF files (baselines X 7900, Y 800,
Z 52600 nT; F not recorded = 88888.00) with negative X bays while arcs/discrete forms are seen
(≈350/500 nT, diffuse 180 nT) and a few 99999.00 gaps. Ceilometer at 5-minute cadence: cloud base
250–1600 m while the images are cloudy, otherwise no cloud or (25 %) high cloud 2200–6000 m, and
two outages (absent records) per month. OATH tarball: ``oath_images`` balanced crops (green
channel only, like the real ones) plus rotated copies and a labels CSV with a licence header.
A synthetic THEMIS station (site ``gill``, 256×256 16-bit, white light): per month
:data:`THEMIS_DAYS` × :data:`THEMIS_HOURS` hourly CDF files of :data:`THEMIS_FRAMES_PER_HOUR`
frames (classes drawn like the UiO images; its own random stream, so the UiO data do not change),
and one minute of raw PGM (20 frames, 3 s apart) on the first THEMIS day of the first month.
Overlapping cameras: a second synthetic THEMIS station (site ``chur``, 266 km north of GILL) has CDF
files only for the THEMIS hours of the first THEMIS day of the first month (:data:`OVERLAP_HOURS`); in
those hours GILL's frames are replaced by renders of the same sky: one auroral arc (sometimes two) as a
thin layer at a known height (100 → 150 km over the two hours, :data:`OVERLAP_HEIGHTS_KM`) drifting
equatorward, rendered through each camera's own lens (:func:`~tame_assets.sources.sample.sky.render_shell_sky`);
the manifest records the height of every overlap time (``overlap_heights_km``).

Deterministic: the same seed gives byte-identical files (fixed PNG settings, tar/gzip mtimes 0).
None of it is real data; the manifest (written last) records the expected row counts.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import gzip
import io
import json
import shutil
import tarfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from tame_assets.config import SAMPLE_MONTHS, PathLayout
from tame_assets.files import atomic_dir, sweep_stale_temps
from tame_assets.months import month_bounds
from tame_assets.sources.ceilometer import write_pangaea_tab
from tame_assets.sources.magnetometer import parse_iaga2002, write_iaga2002
from tame_assets.sources.sample.sky import (
    LABELS,
    fisheye_look,
    quantise,
    random_shell_arc,
    render_oath,
    render_shell_sky,
    render_sky,
    shell_lat_lon,
)
from tame_assets.sources.themis import (
    cdf_file_name,
    parse_themis_filename,
    pgm_file_name,
    relative_archive_path,
    write_themis_cdf,
    write_themis_pgm,
)
from tame_assets.sources.uio_asi import AVAIL_CSV, write_avail_csv
from tame_assets.stations import SAMPLE_OVERLAP_SITE, SAMPLE_SITE_POSITIONS, SAMPLE_THEMIS_SITE

CAMERA, WAVELENGTH_CODE, MAG_STATION, CEILOMETER_SITE = "nya4", "5577", "NAL", "NYA"
NAL_BASELINE_NT = (7900.0, 800.0, 52600.0)
#: Peak negative X-bay amplitude (nT) while each class is seen.
ACTIVITY_NT = {"arc": 350.0, "discrete": 500.0, "diffuse": 180.0, "cloudy": 40.0, "moon": 10.0, "clear": 10.0}
MANIFEST = "manifest.json"
#: Bumped whenever the generator's output changes; an archive of another version is regenerated.
GENERATOR_VERSION = 6
ASIM_DIR, MAGNETOMETER_DIR, CEILOMETER_DIR = "asim", "image", "pangaea"
THEMIS_CDF_DIR, THEMIS_PGM_DIR = "themis/cdf", "themis/pgm"
#: The synthetic THEMIS station's files: days of each month, UT hours of each day, frames per hour file.
THEMIS_DAYS, THEMIS_HOURS, THEMIS_FRAMES_PER_HOUR = (6, 20), (5, 6), 12
THEMIS_DEVICE, THEMIS_SIZE = "themis19", 256
#: Gillam (Manitoba), degrees north / east, for the PGM headers.
GILL_LAT_DEG, GILL_LON_DEG = 56.38, -94.64
#: The overlap night: the second THEMIS station's hours (the first THEMIS day of the first month) and the
#: range of the arc's height over them (km, rising linearly from frame to frame).
OVERLAP_HOURS, OVERLAP_HEIGHTS_KM = THEMIS_HOURS, (100.0, 150.0)
#: The real ceilometer collection's dataset number; the sample's children are ``88YYYYMM``.
CEILOMETER_COLLECTION_ID = 880300
OATH_TARBALL = "oath/oath_v1.1_sample.tgz"


@dataclass
class SampleManifest:
    """What the archive holds: expected row counts per table (total and per month), the names of
    the deliberately corrupt images and the class drawn for every image."""

    seed: int
    months: list[str]
    version: int = GENERATOR_VERSION
    expected_rows: dict[str, int] = field(default_factory=dict)
    rows_per_month: dict[str, dict[str, int]] = field(default_factory=dict)
    corrupt_images: list[str] = field(default_factory=list)
    image_classes: dict[str, str] = field(default_factory=dict)
    #: Ground truth per month for tests: magnetometer rows with NULL X (99999 gaps), ceilometer
    #: rows that are missing (absent records) and rows with a cloud base.
    truth_per_month: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Class of every synthetic THEMIS frame, keyed ``<file name>#<frame index>``.
    themis_classes: dict[str, str] = field(default_factory=dict)
    #: Height (km) of the arc both overlapping cameras see, keyed by frame time ``YYYY-MM-DDTHH:MM:SS``.
    overlap_heights_km: dict[str, float] = field(default_factory=dict)
    oath_class_counts: dict[str, int] = field(default_factory=dict)


def _save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", compress_level=6)


def _image_schedule(rng: np.random.Generator, month: str, images_per_day: int) -> list[tuple[dt.datetime, str]]:
    """Irregular image times of a polar-night month with a persistent class sequence."""
    start, end = month_bounds(month)
    out, state = [], str(rng.choice(LABELS))
    day = start
    while day < end:
        seconds = np.sort(
            rng.choice(86400 // 30, images_per_day, replace=False) * 30 + rng.integers(0, 30, images_per_day)
        )
        for s in seconds:
            if rng.random() > 0.65:  # weather/activity persists between consecutive images
                state = str(rng.choice(LABELS))
            out.append((day + dt.timedelta(seconds=int(s)), state))
        day += dt.timedelta(days=1)
    return out


def _activity(times: np.ndarray, schedule: list[tuple[dt.datetime, str]], values: dict[str, float]) -> np.ndarray:
    """Per-sample value of the class seen in the nearest image (within 2 h), smoothed (30 min)."""
    img_t = np.array([np.datetime64(t, "s").astype(np.int64) for t, _ in schedule])
    img_v = np.array([values[c] for _, c in schedule])
    idx = np.clip(np.searchsorted(img_t, times), 1, len(img_t) - 1)
    left, right = img_t[idx - 1], img_t[idx]
    nearest = np.where(times - left <= right - times, idx - 1, idx)
    level = np.where(np.abs(img_t[nearest] - times) <= 7200, img_v[nearest], 0.0)
    kernel = np.hanning(31)
    return np.convolve(level, kernel / kernel.sum(), mode="same")


def _write_images(root: Path, rng: np.random.Generator, schedule, size: int, manifest: SampleManifest) -> int:
    first_of_15th = None
    for i, (t, label) in enumerate(schedule):
        name = f"{CAMERA}_{t:%Y%m%d_%H%M%S}_{WAVELENGTH_CODE}_cal.png"
        path = root / ASIM_DIR / CAMERA / WAVELENGTH_CODE / f"{t:%Y}" / f"{t:%Y%m%d}" / f"ut{t:%H}" / name
        _save_png(render_sky(label, rng, size=size, bit_depth=16 if i % 3 == 0 else 8), path)
        manifest.image_classes[name] = label
        if t.day == 15 and first_of_15th is None:
            first_of_15th = path
    if first_of_15th is not None:  # one deliberately truncated PNG: it must be quarantined, not lost
        data = first_of_15th.read_bytes()
        first_of_15th.write_bytes(data[: len(data) // 2])
        manifest.corrupt_images.append(first_of_15th.name)
    return len(schedule)


def _write_magnetometer(root: Path, rng: np.random.Generator, month: str, schedule) -> tuple[int, int]:
    """Daily 1-minute XYZF IAGA-2002 files of NAL; returns (rows, rows with missing X)."""
    start, end = month_bounds(month)
    minutes = int((end - start).total_seconds() // 60)
    times = np.datetime64(start, "s").astype(np.int64) + 60 * np.arange(minutes)
    bay = _activity(times, schedule, ACTIVITY_NT)
    diurnal = 20 * np.sin(2 * np.pi * (times % 86400) / 86400)
    walk = np.cumsum(rng.normal(0, 0.4, (3, minutes)), axis=1)
    x = NAL_BASELINE_NT[0] - bay * (1 + 0.2 * rng.standard_normal(minutes)) + diurnal + walk[0]
    y = NAL_BASELINE_NT[1] + 0.3 * bay * rng.standard_normal(minutes) + walk[1]
    z = NAL_BASELINE_NT[2] + 0.4 * bay + walk[2]
    values = np.stack([x, y, z])
    for _ in range(3):  # data gaps (written as 99999.00)
        g = int(rng.integers(0, minutes - 120))
        values[:, g : g + int(rng.integers(10, 90))] = np.nan
    frame = pl.DataFrame(
        {
            "time": pl.Series((times * 1_000_000).astype("datetime64[us]")).cast(pl.Datetime("us")),
            "x_nt": values[0],
            "y_nt": values[1],
            "z_nt": values[2],
        }
    ).with_columns(pl.col(c).fill_nan(None) for c in ("x_nt", "y_nt", "z_nt"))
    for (day,), part in frame.group_by(pl.col("time").dt.date(), maintain_order=True):
        path = (
            root
            / MAGNETOMETER_DIR
            / "iaga2002"
            / MAG_STATION
            / f"{day:%Y}"
            / f"{MAG_STATION.lower()}{day:%Y%m%d}vmin.min"
        )
        write_iaga2002(
            part, path, MAG_STATION, "Ny-Alesund", 78.92, 11.95, source_of_data="tame_assets sample (synthetic)"
        )
    return frame.height, int(np.isnan(values[0]).sum())


def _write_ceilometer(root: Path, rng: np.random.Generator, month: str, schedule) -> tuple[int, int, int]:
    """One 5-minute PANGAEA ``.tab`` for the month; returns (rows incl. missing, missing, cloudy)."""
    start, end = month_bounds(month)
    n = int((end - start).total_seconds() // 300)
    times = np.datetime64(start, "s").astype(np.int64) + 300 * np.arange(n)
    cloudy = _activity(times, schedule, {c: float(c == "cloudy") for c in LABELS}) > 0.3
    high_cloud = rng.random(n) < 0.25
    cbh = np.where(cloudy, rng.uniform(250, 1600, n), np.where(high_cloud, rng.uniform(2200, 6000, n), np.nan))
    missing = np.zeros(n, bool)
    for _ in range(2):  # instrument outages (records absent from the file)
        g = int(rng.integers(1, n - 40))
        missing[g : g + int(rng.integers(6, 36))] = True
    frame = pl.DataFrame(
        {
            "time": pl.Series((times * 1_000_000).astype("datetime64[us]")).cast(pl.Datetime("us")),
            "cbh_m": pl.Series(cbh).fill_nan(None),
            "missing": missing,
        }
    )
    write_pangaea_tab(
        frame,
        pangaea_dataset_path(root, ceilometer_child_id(month)),
        f"Ceilometer cloud base height at Ny-Alesund ({month})",
    )
    return n, int(missing.sum()), int((~missing & ~np.isnan(cbh)).sum())


def ceilometer_child_id(month: str) -> int:
    """Dataset number of the sample's child for ``month``: ``88YYYYMM``."""
    return int("88" + month.replace("-", ""))


def pangaea_dataset_path(root: Path, dataset_id: int) -> Path:
    """Where the archive keeps the text export of PANGAEA dataset ``dataset_id``."""
    return Path(root) / CEILOMETER_DIR / "10.1594" / f"PANGAEA.{dataset_id}"


def write_ceilometer_collection(root: Path, months: list[str]) -> Path:
    """The collection's text export: PANGAEA metaheader, then one row per child (citation, DOI, the
    period its records cover) — the layout :func:`~tame_assets.sources.ceilometer.parse_collection_index` reads."""
    rows = []
    for month in months:
        start, end = month_bounds(month)
        rows.append(
            "\t".join(
                (
                    f"Sample data (synthetic): Ceilometer cloud base height at Ny-Alesund ({month})",
                    f"https://doi.org/10.1594/PANGAEA.{ceilometer_child_id(month)}",
                    f"{start:%Y-%m-%dT%H:%M}",
                    f"{end - dt.timedelta(minutes=5):%Y-%m-%dT%H:%M}",
                )
            )
        )
    text = (
        "\n".join(
            [
                "/* DATA DESCRIPTION:",
                "Citation:\ttame_assets sample archive (synthetic data in the layout of a PANGAEA collection): "
                f"Ceilometer cloud base height at Ny-Alesund. https://doi.org/10.1594/PANGAEA.{CEILOMETER_COLLECTION_ID}",
                f"Size:\t{len(months)} datasets",
                "*/",
                "Citation\tDOI\tDate/Time start\tDate/Time end",
                *rows,
            ]
        )
        + "\n"
    )
    path = pangaea_dataset_path(root, CEILOMETER_COLLECTION_ID)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _themis_frames(
    rng: np.random.Generator, start: dt.datetime, n: int, step_s: float, manifest: SampleManifest, name: str
) -> tuple[np.ndarray, list[dt.datetime]]:
    """``n`` synthetic 16-bit THEMIS frames from ``start`` every ``step_s`` seconds (persistent classes)."""
    frames, times, state = [], [], str(rng.choice(LABELS))
    for i in range(n):
        if rng.random() > 0.65:
            state = str(rng.choice(LABELS))
        frames.append(render_sky(state, rng, size=THEMIS_SIZE, bit_depth=16))
        times.append(start + dt.timedelta(seconds=i * step_s))
        manifest.themis_classes[f"{name}#{i}"] = state
    return np.stack(frames), times


class _OverlapSky:
    """The overlap night's sky: per frame time one arc scene (own random stream) rendered into both
    stations' frames through their lenses at the scene's height."""

    def __init__(self, seed: int, n_frames: int):
        self.rng = np.random.default_rng(seed)
        self.look = fisheye_look(THEMIS_SIZE)
        lo, hi = OVERLAP_HEIGHTS_KM
        self.heights = lo + (hi - lo) * np.arange(n_frames) / max(n_frames - 1, 1)
        self.index = 0

    def frames(self, times: list[dt.datetime], manifest: SampleManifest) -> dict[str, np.ndarray]:
        """Frames (16-bit) of both sites for ``times``: site → (n, size, size)."""
        out = {SAMPLE_THEMIS_SITE: [], SAMPLE_OVERLAP_SITE: []}
        for t in times:
            i, self.index = self.index, self.index + 1
            height = float(np.round(self.heights[i], 1))
            progress = i / max(len(self.heights) - 1, 1)  # the arc drifts equatorward over the night
            arcs = [random_shell_arc(self.rng, height, 58.2 - 1.2 * progress, -94.4)]
            if self.rng.random() < 0.4:  # a fainter second arc poleward of the first, same height
                arcs.append(random_shell_arc(self.rng, height, arcs[0].lat0_deg + 0.9, -94.4))
            for site in out:
                lat, lon = shell_lat_lon(*self.look, *SAMPLE_SITE_POSITIONS[site], height)
                out[site].append(quantise(render_shell_sky(lat, lon, self.look[1], arcs, self.rng), 16))
            manifest.overlap_heights_km[f"{t:%Y-%m-%dT%H:%M:%S}"] = height
        return {site: np.stack(frames) for site, frames in out.items()}


def _write_themis(root: Path, rng: np.random.Generator, month: str, first: bool, manifest: SampleManifest) -> int:
    """The synthetic THEMIS station's CDF hour files of ``month`` (and the PGM minute for ``first``); for
    ``first`` also the overlap night (GILL's frames of those hours replaced, the second station's files)."""
    start, _ = month_bounds(month)
    n = 0
    overlap = _OverlapSky(manifest.seed + 2, len(OVERLAP_HOURS) * THEMIS_FRAMES_PER_HOUR) if first else None
    for day in THEMIS_DAYS:
        for hour in THEMIS_HOURS:
            t0 = start.replace(day=day, hour=hour)
            name = cdf_file_name(SAMPLE_THEMIS_SITE, t0)
            frames, times = _themis_frames(
                rng, t0, THEMIS_FRAMES_PER_HOUR, 3600 / THEMIS_FRAMES_PER_HOUR, manifest, name
            )
            if overlap is not None and day == THEMIS_DAYS[0] and hour in OVERLAP_HOURS:
                both = overlap.frames(times, manifest)
                frames = both[SAMPLE_THEMIS_SITE]
                other = cdf_file_name(SAMPLE_OVERLAP_SITE, t0)
                write_themis_cdf(
                    root / THEMIS_CDF_DIR / relative_archive_path(parse_themis_filename(other)),
                    both[SAMPLE_OVERLAP_SITE],
                    times,
                    SAMPLE_OVERLAP_SITE,
                )
                for i in range(len(times)):
                    manifest.themis_classes[f"{name}#{i}"] = manifest.themis_classes[f"{other}#{i}"] = "arc"
            write_themis_cdf(
                root / THEMIS_CDF_DIR / relative_archive_path(parse_themis_filename(name)),
                frames,
                times,
                SAMPLE_THEMIS_SITE,
            )
            n += len(frames)
    if first:
        t0 = start.replace(day=THEMIS_DAYS[0], hour=THEMIS_HOURS[0])
        name = pgm_file_name(SAMPLE_THEMIS_SITE, THEMIS_DEVICE, t0)
        frames, times = _themis_frames(rng, t0, 20, 3.0, manifest, name)
        write_themis_pgm(
            root / THEMIS_PGM_DIR / relative_archive_path(parse_themis_filename(name)),
            frames,
            times,
            SAMPLE_THEMIS_SITE,
            THEMIS_DEVICE,
            latitude_deg=GILL_LAT_DEG,
            longitude_deg=GILL_LON_DEG,
        )
    return n


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _write_oath(root: Path, rng: np.random.Generator, n_images: int) -> dict[str, int]:
    labels = [LABELS[i % len(LABELS)] for i in range(n_images)]
    rng.shuffle(labels)
    header = (
        "-------------------------------------------------------------------------------\n"
        "SAMPLE DATA in the format of the OATH dataset (Clausen & Nickisch 2018).\n"
        "Synthetic images generated by tame_assets.sources.sample.generator; licensed CC BY 4.0.\n"
        "-------------------------------------------------------------------------------\n"
        "class2,class6,picNum,picType,rotAng\n"
    )
    rows = []
    path = root / OATH_TARBALL
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for i, label in enumerate(labels, start=1):
            image = render_oath(label, rng)
            image[..., 0] = image[..., 2] = 0  # as the real OATH crops: the grey image in green only
            angle = int(rng.integers(0, 360))
            rotated = np.asarray(Image.fromarray(image).rotate(angle, resample=Image.BILINEAR))
            _tar_add(tar, f"oath_v1.1/images/cropped_scaled/{i:05d}.png", _png_bytes(image))
            _tar_add(tar, f"oath_v1.1/images/cropped_scaled_rotated/{i:05d}.png", _png_bytes(rotated))
            class6 = LABELS.index(label)
            rows.append(f"{int(class6 >= 3)},{class6},{i:05d},{'noaurora' if label == 'clear' else label},{angle:03d}")
        _tar_add(tar, "oath_v1.1/classifications/classifications.csv", (header + "\n".join(rows) + "\n").encode())
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return {label: labels.count(label) for label in LABELS}


def generate_sample_archive(
    dest: Path, seed: int = 7, months=SAMPLE_MONTHS, images_per_day: int = 6, oath_images: int = 300, size: int = 192
) -> SampleManifest:
    """Write the sample archive under ``dest`` (deterministic for a given seed); returns its manifest."""
    dest = Path(dest)
    rng = np.random.default_rng(seed)
    manifest = SampleManifest(seed=seed, months=list(months))
    totals = {"asim_images": 0, "magnetometer": 0, "ceilometer": 0}
    for month in months:
        schedule = _image_schedule(rng, month, images_per_day)
        n_images = _write_images(dest, rng, schedule, size, manifest)
        n_mag, mag_missing = _write_magnetometer(dest, rng, month, schedule)
        n_ceil, ceil_missing, ceil_cloud = _write_ceilometer(dest, rng, month, schedule)
        counts = {"asim_images": n_images, "magnetometer": n_mag, "ceilometer": n_ceil}
        manifest.rows_per_month[month] = counts
        manifest.truth_per_month[month] = {
            "magnetometer_missing_x": mag_missing,
            "ceilometer_missing": ceil_missing,
            "ceilometer_cloud": ceil_cloud,
            "corrupt_images": sum(month.replace("-", "") in n for n in manifest.corrupt_images),
        }
        for k, v in counts.items():
            totals[k] += v
    write_ceilometer_collection(dest, list(months))
    images = pl.DataFrame(
        {"camera": CAMERA, "wavelength_nm": int(WAVELENGTH_CODE) / 10, "name": list(manifest.image_classes)}
    )
    write_avail_csv(
        images.with_columns(
            pl.col("name").str.extract(r"_(\d{8}_\d{6})_").str.to_datetime("%Y%m%d_%H%M%S").alias("time")
        ),
        dest / ASIM_DIR / AVAIL_CSV,
    )
    manifest.oath_class_counts = _write_oath(dest, rng, oath_images)
    themis_rng = np.random.default_rng(seed + 1)  # its own stream: the UiO data stay as they were
    for i, month in enumerate(months):
        manifest.rows_per_month[month]["themis_frames"] = _write_themis(dest, themis_rng, month, i == 0, manifest)
    totals["themis_frames"] = sum(manifest.rows_per_month[m]["themis_frames"] for m in months)
    manifest.expected_rows = {**totals, "oath_images": oath_images}
    (dest / MANIFEST).write_text(json.dumps(asdict(manifest), indent=1, sort_keys=True))
    return manifest


def read_manifest(archive: Path) -> SampleManifest:
    """The manifest of a generated archive (``<archive>/manifest.json``)."""
    data = json.loads((Path(archive) / MANIFEST).read_text())
    data.setdefault("version", 1)
    return SampleManifest(**data)


def sample_archive_dir(data_root: str | Path | PathLayout) -> Path:
    """``sample_archive/`` under the data root's local root (see :class:`~tame_assets.config.PathLayout`)."""
    layout = data_root if isinstance(data_root, PathLayout) else PathLayout.for_root(data_root)
    return layout.sample_archive_dir


def _is_current(archive: Path) -> bool:
    try:
        return read_manifest(archive).version == GENERATOR_VERSION
    except (OSError, ValueError, TypeError):
        return False


def sample_cache_dir(layout: PathLayout | None = None) -> Path | None:
    """Where this generator version's archive is cached: ``<setting sample_cache>/sample_archive-v<N>``
    (default folder ``~/.cache/tame_assets``; None when the setting is ``off``)."""
    base = (layout or PathLayout.for_root("data")).sample_cache_dir
    return None if base is None else base / f"sample_archive-v{GENERATOR_VERSION}"


def _install(archive: Path, fill) -> Path:
    """Make ``archive`` a complete archive of this generator version with ``fill(folder)`` unless it is
    one already. Safe when several processes call it at once: an exclusive file lock serialises them,
    ``fill`` writes a private temporary sibling folder (:func:`~tame_assets.files.atomic_dir`) that is
    renamed into place, and the manifest (the completion marker) is its last file."""
    if _is_current(archive):
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive.parent / f".{archive.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _is_current(archive):
                sweep_stale_temps(archive.parent)
                with atomic_dir(archive) as tmp:  # replaces an incomplete archive or another version's
                    fill(tmp)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return archive


def ensure_sample_archive(data_root: str | Path | PathLayout) -> Path:
    """The sample archive under ``<data_root>/sample_archive/``: kept if it is complete and of this
    generator version, else copied from the cache (:func:`sample_cache_dir`, generated there once per
    version; the output is deterministic, so a copy is what generating would write) or generated in
    place when there is no usable cache. Returns its path."""
    layout = data_root if isinstance(data_root, PathLayout) else PathLayout.for_root(data_root)
    archive = sample_archive_dir(layout)
    if _is_current(archive):
        return archive
    cache = sample_cache_dir(layout)
    if cache is not None:
        try:
            _install(cache, generate_sample_archive)
        except OSError:  # an unwritable cache folder: generate in the data root instead
            cache = None
    if cache is None:
        return _install(archive, generate_sample_archive)
    return _install(archive, lambda folder: shutil.copytree(cache, folder, dirs_exist_ok=True))


class SampleArchiveServer:
    """The sample archive served by :func:`tame_assets.sources.sample.server.start_server` on 127.0.0.1.

    ``SampleArchiveServer.for_root(data_root)`` returns this process's server for that archive
    (started on first use, a daemon thread, stopped at interpreter exit); it can also be used as a
    context manager for a private server.
    """

    _instances: dict[Path, "SampleArchiveServer"] = {}
    _lock = threading.Lock()

    def __init__(self, archive: Path):
        from tame_assets.sources.sample.server import SampleArchiveHandler, server_url, start_server

        self.archive = Path(archive)
        self._server = start_server(self.archive, handler=SampleArchiveHandler)
        self._server.request_log, self._server.generated, self._server.lock = [], {}, threading.Lock()
        self._server.image_rows = self.image_rows
        self.url = server_url(self._server)

    @property
    def request_log(self) -> list:
        """Every request the server received (:class:`~tame_assets.sources.sample.server.RecordedRequest`)."""
        return self._server.request_log

    def image_rows(self, station: str, start: dt.datetime, hours: int) -> pl.DataFrame | None:
        """Magnetometer rows of ``station`` in [start, start + hours) from the archive's IAGA-2002 store
        (what the emulated IMAGE form answers with); None when the store has no file for that period."""
        end = start + dt.timedelta(hours=hours)
        days = {(start + dt.timedelta(hours=h)).date() for h in range(hours)}
        files = [
            self.archive / MAGNETOMETER_DIR / "iaga2002" / station / f"{d:%Y}" / f"{station.lower()}{d:%Y%m%d}vmin.min"
            for d in sorted(days)
        ]
        frames = [parse_iaga2002(f) for f in files if f.is_file()]
        if not frames:
            return None
        return pl.concat(frames).filter((pl.col("time") >= start) & (pl.col("time") < end))

    @classmethod
    def for_root(cls, data_root: str | Path | PathLayout) -> "SampleArchiveServer":
        archive = ensure_sample_archive(data_root)
        with cls._lock:
            server = cls._instances.get(archive)
            if server is None:
                server = cls._instances[archive] = cls(archive)
            return server

    def locations(self) -> dict[str, str]:
        """Archive URLs (the fields of :class:`tame_assets.sources.locations.ArchiveLocations`)."""
        return {
            "uio_base_url": f"{self.url}/{ASIM_DIR}",
            "image_base_url": f"{self.url}/{MAGNETOMETER_DIR}",
            "pangaea_url": (
                f"{self.url}/{CEILOMETER_DIR}/10.1594/PANGAEA.{CEILOMETER_COLLECTION_ID}?format=textfile&charset=UTF-8"
            ),
            "oath_url": f"{self.url}/{OATH_TARBALL}",
            "themis_cdf_base_url": f"{self.url}/{THEMIS_CDF_DIR}",
            "themis_pgm_base_url": f"{self.url}/{THEMIS_PGM_DIR}",
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            if self._instances.get(self.archive) is self:
                del self._instances[self.archive]

    def __enter__(self) -> "SampleArchiveServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sample_locations(data_root: str | Path | PathLayout) -> dict[str, str]:
    """Archive URLs (as in :class:`tame_assets.sources.locations.ArchiveLocations`) for the sample archive."""
    return SampleArchiveServer.for_root(data_root).locations()
