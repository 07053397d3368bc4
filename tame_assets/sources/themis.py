"""THEMIS ground-based all-sky imagers (ASI): level-1 CDF and raw UCalgary PGM files.

Formats
-------
- **Level-1 CDF** (Berkeley SSL / CDAWeb), read with ``cdflib``. ``thg_l1_asf_<site>_<YYYYMMDDHH>_v01.cdf``
  holds one hour of full-resolution frames: variable ``thg_asf_<site>`` (n, 256, 256) ``CDF_UINT2``
  counts, ``thg_asf_<site>_epoch`` (``CDF_EPOCH``, start of exposure, ms) and ``thg_asf_<site>_time``
  (seconds since 1970-01-01, whole seconds in the real files). ``thg_l1_ast_<site>_<YYYYMMDD>_v01.cdf``
  is the daily thumbnail product, (n, 32, 32); its epoch variable is virtual (not stored), so its
  times come from ``_time`` and have 1 s resolution.
- **Raw PGM** (University of Calgary "stream0"): ``<YYYYMMDD>_<HHMM>_<site>_themis<NN>_full.pgm[.gz]``,
  one minute of frames, each a complete binary 16-bit PGM (``P5``, big-endian samples, maxval 65535)
  whose comment lines ``#"Key" value`` carry the metadata; the frame time is ``"Image request start"``
  (start of exposure, µs). Frames are concatenated; the file may be gzip-compressed.

Conventions
-----------
- Pixels are returned as stored: (n, rows, cols) ``uint16``, row 0 = the first row in the file, no flip.
- Times are naive UTC ``datetime64[ns]`` (start of exposure).
- A frame is identified by (file, frame index), index 0 = first frame in the file.
- Site codes are THEMIS's lowercase 4-letter codes (``gako``, ``gill``); in tables ``station`` is the
  upper-case code (``GAKO``, like UiO's ``NYA``) and ``camera`` the lowercase site code (one imager per
  site; the PGM imager id such as ``themis19`` goes to ``device``). THEMIS ASIs are unfiltered
  (white light), so ``wavelength_0.1nm`` is :data:`WHITE_LIGHT_WAVELENGTH` (0).

Archive layouts (relative paths are kept when downloading, under the destination folder)
----------------------------------------------------------------------------------------
- CDF: ``{base}/thg/l1/asi/<site>/<YYYY>/<MM>/thg_l1_asf_<site>_<YYYYMMDDHH>_v01.cdf``
  (base e.g. ``http://themis.ssl.berkeley.edu/data/themis`` or ``https://cdaweb.gsfc.nasa.gov/pub/data/themis``).
- PGM: ``{base}/<YYYY>/<MM>/<DD>/<site>_themis<NN>/ut<HH>/<YYYYMMDD>_<HHMM>_<site>_themis<NN>_full.pgm.gz``
  (base e.g. ``https://data.phys.ucalgary.ca/sort_by_project/THEMIS/asi/stream0``).

Faults: an unreadable CDF raises :class:`ThemisFormatError` (one line naming the file). A truncated
PGM keeps its complete frames; the rest is described in :attr:`ThemisFrames.error`. :func:`frames_table`
turns both into rows with ``ok = false`` and the reason, so nothing is silently dropped.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence
from urllib.parse import urljoin

import numpy as np
import polars as pl

from tame_assets.files import atomic_path, write_bytes_atomic
from tame_assets.months import month_of, parse_month
from tame_assets.sources.errors import QUARANTINE_SCHEMA, SourceFormatError
from tame_assets.sources.http import DownloadError, HttpClient
from tame_assets.sources.uio_asi import parse_listing

NETWORK = "themis"
#: ``wavelength_0.1nm`` of THEMIS frames: the imagers have no filter (white light / panchromatic).
WHITE_LIGHT_WAVELENGTH = 0

SITE_RE = re.compile(r"^[a-z0-9]{4}$")
DEVICE_RE = re.compile(r"^themis\d{2}$")
CDF_NAME_RE = re.compile(
    r"^thg_l1_(?P<product>asf|ast)_(?P<site>[a-z0-9]{4})_(?P<stamp>\d{8}|\d{10})_v(?P<version>\d{2})\.cdf$"
)
PGM_NAME_RE = re.compile(
    r"^(?P<date>\d{8})_(?P<hhmm>\d{4})_(?P<site>[a-z0-9]{4})_(?P<device>themis\d{2})_(?P<mode>[a-z0-9]+)"
    r"\.pgm(?P<gz>\.gz)?$"
)
#: PGM comment key holding the frame time (start of exposure).
PGM_TIME_KEY = "Image request start"
_PGM_COMMENT_RE = re.compile(r'^"(?P<key>[^"]+)"\s*(?P<value>.*)$')
_GZIP_MAGIC, _GZIP_CHUNK = b"\x1f\x8b", 1 << 16
_EPOCH_1970_MS = 62167219200000.0  # CDF_EPOCH (ms since 0000-01-01) of 1970-01-01T00:00:00


class ThemisFormatError(SourceFormatError):
    """A THEMIS file cannot be read; the message names the file and the reason, on one line."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        super().__init__(self.path, None, " ".join(str(reason).split()))


@dataclass(frozen=True)
class ThemisFrames:
    """Frames of one THEMIS file.

    ``frames`` (n, rows, cols) uint16 as stored; ``times`` (n,) naive-UTC datetime64[ns], start of
    exposure; ``site`` lowercase code; ``device`` the imager id (``themis19``) when the file names it
    (PGM), else None; ``product`` ``asf``/``ast`` (CDF) or the PGM mode (``full``); ``metadata`` one
    dict per frame (PGM comment keys → values; the file-level keys of the first frame's header, such as
    site and optics, are carried into every later frame's dict; empty for CDF); ``error`` None, or why
    frames after the last complete one are missing (truncated PGM).
    """

    path: Path
    site: str
    device: str | None
    format: str
    product: str
    frames: np.ndarray
    times: np.ndarray
    metadata: tuple[dict[str, str], ...] = field(default=())
    error: str | None = None

    @property
    def frame_index(self) -> np.ndarray:
        """0..n-1: the position of each frame in the file."""
        return np.arange(len(self.frames), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class ThemisFileName:
    """What a THEMIS file name says. ``start`` is the naive-UTC start of the period the file covers
    (hour for ``asf`` CDF, day for ``ast`` CDF, minute for PGM)."""

    name: str
    site: str
    device: str | None
    format: str  # "cdf" or "pgm"
    product: str  # "asf", "ast" or the PGM mode ("full")
    start: dt.datetime
    version: int | None = None
    gzipped: bool = False

    @property
    def station(self) -> str:
        return self.site.upper()


def check_site(site: str) -> str:
    """``site`` if it is a THEMIS site code (4 lowercase letters/digits), else ValueError."""
    if not isinstance(site, str) or not SITE_RE.fullmatch(site):
        raise ValueError(f"{site!r}: not a THEMIS site code (4 lowercase letters/digits, e.g. 'gako')")
    return site


def parse_themis_filename(name: str) -> ThemisFileName:
    """Parse a THEMIS CDF or PGM file name (see the module docstring); ValueError naming the file otherwise."""
    base = Path(name).name
    cdf, pgm = CDF_NAME_RE.match(base), PGM_NAME_RE.match(base)
    try:
        if cdf:
            stamp = cdf["stamp"]
            start = dt.datetime.strptime(stamp, "%Y%m%d%H" if len(stamp) == 10 else "%Y%m%d")
            if (cdf["product"] == "asf") != (len(stamp) == 10):
                raise ValueError(
                    f"{cdf['product']} files are stamped {'YYYYMMDDHH' if cdf['product'] == 'asf' else 'YYYYMMDD'}"
                )
            return ThemisFileName(base, cdf["site"], None, "cdf", cdf["product"], start, int(cdf["version"]))
        if pgm:
            start = dt.datetime.strptime(pgm["date"] + pgm["hhmm"], "%Y%m%d%H%M")
            return ThemisFileName(base, pgm["site"], pgm["device"], "pgm", pgm["mode"], start, None, bool(pgm["gz"]))
    except ValueError as exc:
        raise ValueError(f"{name}: invalid THEMIS file name ({exc})") from None
    raise ValueError(
        f"{name}: not a THEMIS file name (expected e.g. thg_l1_asf_gako_2011010617_v01.cdf "
        "or 20140310_0600_gill_themis19_full.pgm.gz)"
    )


def relative_archive_path(parsed: ThemisFileName) -> str:
    """The file's path in its archive, below the base URL: CDF ``thg/l1/asi/<site>/<YYYY>/<MM>/<name>``,
    PGM ``<YYYY>/<MM>/<DD>/<site>_<device>/ut<HH>/<name>``."""
    if parsed.format == "cdf":
        return f"thg/l1/asi/{parsed.site}/{parsed.start:%Y/%m}/{parsed.name}"
    return f"{parsed.start:%Y/%m/%d}/{parsed.site}_{parsed.device}/ut{parsed.start:%H}/{parsed.name}"


def cdf_file_name(site: str, start: dt.datetime, product: str = "asf", version: int = 1) -> str:
    """``thg_l1_asf_<site>_<YYYYMMDDHH>_v01.cdf`` (``ast``: daily stamp ``YYYYMMDD``)."""
    stamp = start.strftime("%Y%m%d%H" if product == "asf" else "%Y%m%d")
    return f"thg_l1_{product}_{check_site(site)}_{stamp}_v{version:02d}.cdf"


def pgm_file_name(site: str, device: str, start: dt.datetime, gzipped: bool = True) -> str:
    """``<YYYYMMDD>_<HHMM>_<site>_<device>_full.pgm[.gz]``."""
    if not DEVICE_RE.fullmatch(device or ""):
        raise ValueError(f"{device!r}: not a THEMIS imager id (expected themisNN, e.g. themis19)")
    return f"{start:%Y%m%d_%H%M}_{check_site(site)}_{device}_full.pgm" + (".gz" if gzipped else "")


# ---------------------------------------------------------------------------------------------- CDF
def _cdf_times(cdf, prefix: str, n: int, path) -> np.ndarray:
    """Frame times: the stored ``_epoch`` (ms) where it holds a valid value for the frame, else the
    ``_time`` seconds, else NaT. Raises when neither variable has one value per frame."""
    import cdflib

    names, times, found = (
        set(cdf.cdf_info().zVariables),
        np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"),
        False,
    )
    if f"{prefix}_time" in names:
        seconds = np.atleast_1d(np.asarray(cdf.varget(f"{prefix}_time"), dtype=np.float64))
        if len(seconds) == n:
            found, good = True, np.isfinite(seconds) & (seconds > 0)
            times[good] = (np.round(seconds[good] * 1e6).astype(np.int64) * 1000).astype("datetime64[ns]")
    if f"{prefix}_epoch" in names:  # virtual (a single stored record) in the ast product
        epoch = np.atleast_1d(np.asarray(cdf.varget(f"{prefix}_epoch"), dtype=np.float64))
        if len(epoch) == n:
            found, good = True, np.isfinite(epoch) & (epoch > _EPOCH_1970_MS)
            times[good] = np.asarray(cdflib.cdfepoch.to_datetime(epoch[good]), dtype="datetime64[ns]")
    if not found:
        raise ThemisFormatError(path, f"neither {prefix}_epoch nor {prefix}_time has one value per frame ({n})")
    return times


def read_themis_cdf(path: str | Path, pixels: bool = True) -> ThemisFrames:
    """Read a THEMIS ASI level-1 CDF (``asf`` full resolution or ``ast`` thumbnails).

    ``pixels=False`` reads the times only (0.2 s instead of 2.5 s for a 1200-frame hour file here);
    ``frames`` then has shape (n, 0, 0). Raises :class:`ThemisFormatError` for a missing, truncated or
    corrupt file, or one without the ``thg_as[ft]_<site>`` image variable and its times.
    """
    import cdflib

    path = Path(path)
    if not path.is_file():
        raise ThemisFormatError(path, "file not found")
    try:
        cdf = cdflib.CDF(path)
        names = cdf.cdf_info().zVariables
        images = [v for v in names if re.fullmatch(r"thg_as[ft]_[a-z0-9]{4}", v)]
        if len(images) != 1:
            raise ThemisFormatError(
                path, f"expected one thg_asf_<site>/thg_ast_<site> image variable, found {images or 'none'}"
            )
        prefix = images[0]
        if pixels:
            frames = np.asarray(cdf.varget(prefix))
            if frames.ndim == 2:  # a single record
                frames = frames[np.newaxis]
            if frames.ndim != 3 or frames.dtype != np.uint16:
                raise ThemisFormatError(
                    path, f"{prefix} is {frames.dtype} {frames.shape}, expected (n, rows, cols) uint16"
                )
        else:
            frames = np.zeros((cdf.varinq(prefix).Last_Rec + 1, 0, 0), dtype=np.uint16)
        if len(frames) == 0:
            raise ThemisFormatError(path, f"no records: {prefix} holds no frame")
        times = _cdf_times(cdf, prefix, len(frames), path)
    except ThemisFormatError:
        raise
    except Exception as exc:  # cdflib signals damaged files with many exception types
        raise ThemisFormatError(path, f"unreadable CDF ({type(exc).__name__}: {exc})") from None
    _, product, site = prefix.split("_")
    return ThemisFrames(path, site, None, "cdf", product, frames, times, tuple({} for _ in frames))


# ---------------------------------------------------------------------------------------------- PGM
def max_pgm_bytes(max_pixels: int | None = None) -> int:
    """Most bytes a PGM file may hold once decompressed: 4 bytes per pixel of the image cap
    (``[archives] max_image_pixels``; default 4096 × 4096 → 64 MiB: two 16-bit frames of the largest
    size admitted, or 512 THEMIS 256 × 256 frames, where a real minute file holds 20)."""
    from tame_assets.sources.images import default_max_pixels

    return 4 * int(max_pixels or default_max_pixels())


def _too_big(path: Path, limit: int) -> ThemisFormatError:
    return ThemisFormatError(
        path,
        f"decompresses to more than {limit:,} bytes (the cap of 4 bytes per pixel of [archives] "
        "max_image_pixels); refused as a decompression bomb",
    )


def _pgm_bytes(path: Path, limit: int) -> tuple[bytes, str | None]:
    """The (decompressed) file content and, for a damaged gzip stream, why it ends early.

    A truncated stream keeps everything decompressed (a prefix of a deflate stream decodes exactly).
    A corrupt stream (zlib error, e.g. a CRC mismatch found at the member's end) may already have
    produced wrong bytes, so the whole damaged gzip member is discarded; earlier members are kept.
    Decompression stops as soon as the output would pass ``limit`` bytes (:func:`max_pgm_bytes`):
    :class:`ThemisFormatError`, memory never above ``limit`` plus one chunk.
    """
    if path.stat().st_size > limit:  # raw, or compressed (gzip never shrinks data below ~1/1000)
        raise _too_big(path, limit)
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw, None
    out: list[bytes] = []
    size, offset = 0, 0
    while offset < len(raw):  # one gzip member per pass
        decoder, kept = zlib.decompressobj(16 + zlib.MAX_WBITS), len(out)
        while not decoder.eof and offset < len(raw):
            chunk = raw[offset : offset + _GZIP_CHUNK]
            try:
                piece = decoder.decompress(chunk, limit - size + 1)
                while decoder.unconsumed_tail and size + len(piece) <= limit:
                    piece += decoder.decompress(decoder.unconsumed_tail, limit - size - len(piece) + 1)
            except zlib.error as exc:
                good = b"".join(out[:kept])
                return good, (
                    f"corrupt gzip stream ({exc}) at compressed byte {offset} or before; the damaged "
                    f"member is discarded, {len(good)} decompressed bytes kept"
                )
            size += len(piece)
            if size > limit:
                raise _too_big(path, limit)
            out.append(piece)
            offset += len(chunk)
        if not decoder.eof:
            return b"".join(out), f"gzip stream truncated after {sum(map(len, out))} decompressed bytes"
        offset -= len(decoder.unused_data)
        if raw[offset : offset + 2] != _GZIP_MAGIC and raw[offset:].strip(b"\x00"):
            return b"".join(out), f"{len(raw) - offset} bytes after the gzip stream are not gzip data"
        if raw[offset : offset + 2] != _GZIP_MAGIC:
            break
    return b"".join(out), None


def _pgm_header(data: bytes, pos: int) -> tuple[dict[str, str], int, int, int, int]:
    """Parse one ``P5`` header at ``pos``: (comments, cols, rows, maxval, raster offset).
    Raises ValueError describing what is wrong."""
    if data[pos : pos + 2] != b"P5":
        raise ValueError(f"no P5 magic number at byte {pos}")
    comments: dict[str, str] = {}
    numbers: list[int] = []
    i = pos + 2
    while len(numbers) < 3:
        if i >= len(data):
            raise ValueError(f"header starting at byte {pos} ends early")
        c = data[i : i + 1]
        if c.isspace():
            i += 1
        elif c == b"#":
            end = data.find(b"\n", i)
            if end < 0:
                raise ValueError(f"header starting at byte {pos} ends early")
            match = _PGM_COMMENT_RE.match(data[i + 1 : end].decode("latin-1").strip())
            if match:
                comments[match["key"]] = match["value"].strip()  # a repeated key: the last value
            i = end + 1
        else:
            j = i
            while j < len(data) and data[j : j + 1].isdigit():
                j += 1
            if j == i or j >= len(data) or not data[j : j + 1].isspace():
                raise ValueError(f"bad header number at byte {i}")
            numbers.append(int(data[i:j]))
            i = j
    cols, rows, maxval = numbers
    if not (0 < cols and 0 < rows and 0 < maxval < 65536):
        raise ValueError(f"bad header values width={cols} height={rows} maxval={maxval} at byte {pos}")
    return comments, cols, rows, maxval, i + 1  # exactly one whitespace byte before the raster


def _pgm_time(comments: dict[str, str]) -> np.datetime64:
    """The frame time from its header, NaT when the key is missing or its value is not a time."""
    text = comments.get(PGM_TIME_KEY, "").removesuffix("UTC").strip()
    try:
        return np.datetime64(dt.datetime.fromisoformat(text), "ns")
    except ValueError:
        return np.datetime64("NaT", "ns")


def read_themis_pgm(path: str | Path, max_pixels: int | None = None) -> ThemisFrames:
    """Read a UCalgary THEMIS multi-frame 16-bit PGM (optionally gzip-compressed).

    Every complete frame is returned; a frame whose header has no valid ``"Image request start"`` gets
    the time NaT (:func:`frames_table` marks it not ok). When the file ends inside a frame or has bytes
    that are not a frame, reading stops there and :attr:`ThemisFrames.error` says where (frame index
    and byte offset). Site and device come from the file name, or from the ``"Site unique ID"`` /
    ``"Imager unique ID"`` header keys when the name is not a UCalgary one. A file without any frame
    (0 bytes, whitespace) has :attr:`ThemisFrames.error` ``no frame in the file``. Raises
    :class:`ThemisFormatError` when the file is missing, decompresses to more than
    :func:`max_pgm_bytes` of ``max_pixels`` (a decompression bomb: refused while inflating, memory
    bounded by the cap), or neither name nor header gives the site. A frame header declaring more
    than ``max_pixels`` pixels ends the reading like a damaged frame.
    """
    path = Path(path)
    if not path.is_file():
        raise ThemisFormatError(path, "file not found")
    max_pixels = max_pixels or max_pgm_bytes() // 4
    data, error = _pgm_bytes(path, max_pgm_bytes(max_pixels))
    frames, times, metadata = [], [], []
    pos, shape = 0, None
    while pos < len(data):
        if data[pos : pos + 2] != b"P5" and not data[pos:].strip():
            break  # trailing whitespace after the last frame
        try:
            comments, cols, rows, maxval, start = _pgm_header(data, pos)
            if rows * cols > max_pixels:
                raise ValueError(
                    f"{cols}×{rows} = {rows * cols:,} pixels exceeds the cap of {max_pixels:,} "
                    "(setting [archives] max_image_pixels)"
                )
            if shape is not None and (rows, cols) != shape:
                raise ValueError(f"size {rows}x{cols} differs from the first frame's {shape[0]}x{shape[1]}")
            size = rows * cols * (2 if maxval > 255 else 1)
            if start + size > len(data):
                raise ValueError(f"pixel data cut off ({len(data) - start} of {size} bytes)")
        except ValueError as exc:
            truncated = f" ({error})" if error else ""
            error = f"frame {len(frames)} at byte {pos}: {exc}{truncated}; {len(frames)} complete frames kept"
            break
        dtype = ">u2" if maxval > 255 else "u1"
        frames.append(
            np.frombuffer(data, dtype=dtype, count=rows * cols, offset=start).reshape(rows, cols).astype(np.uint16)
        )
        times.append(_pgm_time(comments))
        file_keys = {k: v for k, v in metadata[0].items() if k not in PGM_FRAME_HEADER_KEYS} if metadata else {}
        metadata.append({**file_keys, **comments})
        shape, pos = (rows, cols), start + size
    else:
        if error:
            error = f"{error}; {len(frames)} complete frames kept"
        elif not frames:
            error = f"no frame in the file ({len(data)} bytes{' decompressed' if path.suffix == '.gz' else ''})"
    try:
        parsed = parse_themis_filename(path.name)
        site, device, product = parsed.site, parsed.device, parsed.product
    except ValueError:
        site = metadata[0].get("Site unique ID", "") if metadata else ""
        device, product = (metadata[0].get("Imager unique ID") if metadata else None), "full"
        if not SITE_RE.fullmatch(site):
            raise ThemisFormatError(path, "site unknown: neither the file name nor a frame header gives it") from None
    stack = np.stack(frames) if frames else np.zeros((0, 256, 256), dtype=np.uint16)
    return ThemisFrames(
        path, site, device, "pgm", product, stack, np.asarray(times, dtype="datetime64[ns]"), tuple(metadata), error
    )


def read_themis_file(path: str | Path, pixels: bool = True, max_pixels: int | None = None) -> ThemisFrames:
    """Read a THEMIS CDF (``.cdf``) or PGM (``.pgm``, ``.pgm.gz``) file, by its name's extension.
    ``pixels=False``: CDF times only, see :func:`read_themis_cdf` (PGM files are always decoded);
    ``max_pixels``: the image cap of PGM frames and of a PGM's decompressed size (:func:`max_pgm_bytes`)."""
    name = Path(path).name.lower()
    if name.endswith(".cdf"):
        return read_themis_cdf(path, pixels)
    if name.endswith((".pgm", ".pgm.gz")):
        return read_themis_pgm(path, max_pixels)
    raise ThemisFormatError(path, "not a THEMIS file (expected .cdf, .pgm or .pgm.gz)")


# ---------------------------------------------------------------------------------------------- tables
FRAMES_SCHEMA = {
    "network": pl.Utf8,
    "station": pl.Utf8,
    "camera": pl.Utf8,
    "device": pl.Utf8,
    "wavelength_0.1nm": pl.Int32,
    "time": pl.Datetime("us"),
    "local_path": pl.Utf8,
    "frame_index": pl.Int32,
    "format": pl.Utf8,
    "ok": pl.Boolean,
    "error": pl.Utf8,
}


def _frame_rows(path: str | Path, verify_pixels: bool, max_pixels: int | None = None) -> list[dict]:
    """Rows of :data:`FRAMES_SCHEMA` for one file (see :func:`frames_table`)."""
    path_text = str(path)
    try:
        parsed = parse_themis_filename(Path(path).name)
    except ValueError:
        parsed = None
    base = {
        "network": NETWORK,
        "wavelength_0.1nm": WHITE_LIGHT_WAVELENGTH,
        "local_path": path_text,
        "station": parsed.station if parsed else None,
        "camera": parsed.site if parsed else None,
        "device": parsed.device if parsed else None,
        "format": parsed.format if parsed else None,
    }
    try:
        read = read_themis_file(path, pixels=verify_pixels, max_pixels=max_pixels)
    except ThemisFormatError as exc:
        time = parsed.start if parsed else None
        return [{**base, "time": time, "frame_index": None, "ok": False, "error": str(exc)}]
    base.update(station=read.site.upper(), camera=read.site, device=read.device, format=read.format)
    rows = []
    for index, time in enumerate(read.times):
        ok = not np.isnat(time)
        rows.append(
            {
                **base,
                "time": time.astype("datetime64[us]").item() if ok else None,
                "frame_index": index,
                "ok": ok,
                "error": None if ok else f"{path_text}: frame {index} has no valid time in the file",
            }
        )
    if read.error:
        rows.append(
            {**base, "time": None, "frame_index": len(read), "ok": False, "error": f"{path_text}: {read.error}"}
        )
    return rows


def frames_table(
    paths: Iterable[str | Path], verify_pixels: bool = True, max_pixels: int | None = None
) -> pl.DataFrame:
    """One row per frame of the THEMIS files ``paths`` (:data:`FRAMES_SCHEMA`), sorted by time, path, index.

    Columns: ``network`` ('themis'), ``station`` (upper-case site, ``GAKO``), ``camera`` (lowercase
    site, ``gako``), ``device`` (``themis19`` for PGM, NULL for CDF), ``wavelength_0.1nm``
    (:data:`WHITE_LIGHT_WAVELENGTH`), ``time`` (naive UTC, start of exposure), ``local_path`` (path as
    given; ``local_path`` as in ``asim_images``), ``frame_index`` (0-based position in the file), ``format``
    (``cdf``/``pgm``), ``ok``, ``error``. A frame is identified by (``local_path``, ``frame_index``). Faults
    keep a row with ``ok = false`` and a
    one-line ``error`` naming the file: an unreadable file gives one row (``frame_index`` NULL, ``time``
    from its name); a truncated PGM gives its complete frames plus one row for the incomplete rest.
    ``verify_pixels=False`` skips decoding CDF pixel data (times only: 0.2 s instead of 2.5 s for a
    1200-frame hour file here), so a CDF whose image blocks are damaged but whose times read is then
    listed as ok. A file without any frame (a CDF with no records, a 0-byte PGM) is an unreadable file;
    ``max_pixels`` caps PGM frames and decompressed PGM sizes (:func:`read_themis_pgm`).
    """
    rows = [row for path in paths for row in _frame_rows(path, verify_pixels, max_pixels)]
    return pl.DataFrame(rows, schema=FRAMES_SCHEMA).sort("time", "local_path", "frame_index", nulls_last=True)


LOCAL_FILES_SCHEMA = {
    "path": pl.Utf8,
    "file_name": pl.Utf8,
    "site": pl.Utf8,
    "device": pl.Utf8,
    "format": pl.Utf8,
    "product": pl.Utf8,
    "start": pl.Datetime("us"),
}


def find_local_files(
    folder: str | Path, site: str | None = None, month: str | None = None, products: Sequence[str] = ("asf", "full")
) -> pl.DataFrame:
    """THEMIS files (either format, any sub-folder layout) below ``folder``, sorted by start and path.

    Columns :data:`LOCAL_FILES_SCHEMA`: path, file_name, site, device (PGM only), format (cdf/pgm),
    product (asf/ast/full), start (naive UTC start of the hour/day/minute the file covers). Only file
    names that parse as THEMIS names are listed; ``site`` (``gako``), ``month`` (``YYYY-MM``, by start)
    and ``products`` filter them (thumbnails ``ast`` are left out by default).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    if site is not None:
        check_site(site)
    if month is not None:
        parse_month(month)
    rows = []
    for path in folder.rglob("*"):
        if not path.is_file() or not path.name.lower().endswith((".cdf", ".pgm", ".pgm.gz")):
            continue
        try:
            parsed = parse_themis_filename(path.name)
        except ValueError:
            continue
        if (site and parsed.site != site) or parsed.product not in products:
            continue
        if month and month_of(parsed.start) != month:
            continue
        rows.append(
            {
                "path": str(path),
                "file_name": path.name,
                "site": parsed.site,
                "device": parsed.device,
                "format": parsed.format,
                "product": parsed.product,
                "start": parsed.start,
            }
        )
    return pl.DataFrame(rows, schema=LOCAL_FILES_SCHEMA).sort("start", "path")


# ---------------------------------------------------------------------------------------------- download
def _listing(client: HttpClient, url: str) -> list[str] | None:
    """Names directly inside the index page ``url`` (``name`` or ``name/``); None when it is a 404."""
    try:
        links = parse_listing(client.get_text(url))
    except DownloadError as exc:
        if exc.status == 404:
            return None
        raise
    names = set()
    for link in links:
        absolute = urljoin(url, link)
        if absolute.startswith(url) and absolute != url:
            rest = absolute[len(url) :]
            if "/" not in rest.rstrip("/"):
                names.add(rest)
    return sorted(names)


def list_cdf_month(
    client: HttpClient, base: str, site: str, month: str, products: Sequence[str] = ("asf",)
) -> list[str]:
    """URLs of the level-1 CDFs of ``site`` in ``month`` (``YYYY-MM``) under ``base`` (the folder that
    holds ``thg/``); empty when the month has no folder."""
    page = f"{base.rstrip('/')}/thg/l1/asi/{check_site(site)}/{parse_month(month):%Y/%m}/"
    out = []
    for name in _listing(client, page) or []:
        match = CDF_NAME_RE.match(name)
        if match and match["site"] == site and match["product"] in products:
            out.append(urljoin(page, name))
    return sorted(out)


def list_pgm_month(client: HttpClient, base: str, site: str, month: str, device: str | None = None) -> list[str]:
    """URLs of the UCalgary PGM files of ``site`` (optionally one imager ``device``, e.g. ``themis19``)
    in ``month``, crawling ``<YYYY>/<MM>/<DD>/<site>_themisNN/utHH/``; empty when the month has no folder."""
    first_day = parse_month(month)
    check_site(site)
    if device is not None and not DEVICE_RE.fullmatch(device):
        raise ValueError(f"{device!r}: not a THEMIS imager id (expected themisNN, e.g. themis19)")
    month_page = f"{base.rstrip('/')}/{first_day:%Y/%m}/"
    imager_re = re.compile(re.escape(f"{site}_{device}/") if device else site + r"_themis\d{2}/")
    out = []
    for day in (d for d in _listing(client, month_page) or [] if re.fullmatch(r"\d{2}/", d)):
        day_page = urljoin(month_page, day)
        for imager in (i for i in _listing(client, day_page) or [] if imager_re.fullmatch(i)):
            imager_page = urljoin(day_page, imager)
            for hour in (h for h in _listing(client, imager_page) or [] if re.fullmatch(r"ut\d{2}/", h)):
                hour_page = urljoin(imager_page, hour)
                for name in _listing(client, hour_page) or []:
                    match = PGM_NAME_RE.match(name)
                    if match and match["site"] == site:
                        out.append(urljoin(hour_page, name))
    return sorted(out)


FILES_SCHEMA = {
    "start": pl.Datetime("us"),
    "network": pl.Utf8,
    "station": pl.Utf8,
    "camera": pl.Utf8,
    "device": pl.Utf8,
    "format": pl.Utf8,
    "file_name": pl.Utf8,
    "url": pl.Utf8,
    "local_path": pl.Utf8,
    "bytes": pl.Int64,
    "sha256": pl.Utf8,
}


def fetch_themis_month(
    client: HttpClient,
    base: str,
    layout: str,
    site: str,
    month: str,
    dest_root: Path,
    device: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Download every file of ``site`` in ``month`` from a THEMIS archive to ``dest_root/<archive path>``.

    ``layout``: ``"cdf"`` (Berkeley/CDAWeb level-1 tree under ``base``) or ``"pgm"`` (UCalgary stream0
    tree under ``base``). Returns (files table :data:`FILES_SCHEMA`, one row per downloaded file
    sorted by start; quarantine rows :data:`QUARANTINE_SCHEMA` for listed names that are not THEMIS
    names or lie outside the month). Files already complete on disk are not downloaded again
    (:meth:`HttpClient.download`); download failures raise :class:`DownloadError`. Frame-level checks
    are :func:`frames_table`'s job.
    """
    if layout == "cdf":
        urls = list_cdf_month(client, base, site, month)
    elif layout == "pgm":
        urls = list_pgm_month(client, base, site, month, device)
    else:
        raise ValueError(f"{layout!r}: unknown THEMIS archive layout (expected 'cdf' or 'pgm')")
    rows, quarantine = [], []
    dest_root = Path(dest_root)
    for i, url in enumerate(urls):
        name = url.rsplit("/", 1)[-1]
        parsed = parse_themis_filename(name)  # listings keep only names that match
        if month_of(parsed.start) != month:
            quarantine.append(
                {
                    "time": parsed.start,
                    "station": parsed.station,
                    "file": name,
                    "reason": f"{name}: listed under {month} but starts {parsed.start:%Y-%m-%d %H:%M} [{url}]",
                }
            )
        else:
            dest = dest_root / relative_archive_path(parsed)
            result = client.download(url, dest)
            rows.append(
                {
                    "start": parsed.start,
                    "network": NETWORK,
                    "station": parsed.station,
                    "camera": parsed.site,
                    "device": parsed.device,
                    "format": parsed.format,
                    "file_name": name,
                    "url": url,
                    "local_path": str(dest),
                    "bytes": result.bytes,
                    "sha256": result.sha256,
                }
            )
        if progress:
            progress(i + 1, len(urls))
    return (
        pl.DataFrame(rows, schema=FILES_SCHEMA).sort("start", "file_name"),
        pl.DataFrame(quarantine, schema=QUARANTINE_SCHEMA),
    )


# ---------------------------------------------------------------------------------------------- writers
def _check_frames(frames, times) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames)
    times = np.asarray(times, dtype="datetime64[ns]")
    if frames.ndim != 3 or frames.dtype != np.uint16:
        raise ValueError(f"frames must be (n, rows, cols) uint16, got {frames.dtype} {frames.shape}")
    if len(times) != len(frames) or np.isnat(times).any():
        raise ValueError(f"need one valid time per frame: {len(times)} times for {len(frames)} frames")
    return frames, times


def write_themis_cdf(path: str | Path, frames, times, site: str, product: str = "asf", compress: bool = False) -> Path:
    """Write frames as a THEMIS level-1 CDF with the real files' variables and types.

    ``frames`` (n, rows, cols) uint16, ``times`` naive-UTC start of exposure (datetime64/datetime).
    Variables: ``thg_<product>_<site>`` (CDF_UINT2, gzip), ``_column``/``_row`` (CDF_UINT2 indices),
    ``_time``/``_tend`` (CDF_REAL8 s since 1970; whole seconds and +1 s, as in the real files),
    ``_epoch`` (CDF_EPOCH, ms precision), ``_epoch0`` (1970-01-01) and ``range_epoch``. Written
    atomically (temporary file, then rename). ``compress=True`` gzips the image variable (level 6, 7
    records a block) as the real files do; cdflib then stamps each block with the current time, so
    the default (nothing compressed: cdflib's own default gzips every variable) keeps reruns byte-identical.
    """
    from cdflib.cdfwrite import CDF

    check_site(site)
    if product not in ("asf", "ast"):
        raise ValueError(f"{product!r}: THEMIS CDF product must be 'asf' or 'ast'")
    frames, times = _check_frames(frames, times)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, rows, cols = frames.shape
    prefix = f"thg_{product}_{site}"
    ms = (times.astype("datetime64[ms]").astype(np.int64)).astype(np.float64)
    epoch = ms + _EPOCH_1970_MS
    seconds = np.floor(ms / 1000.0)
    description = "Full resolution images" if product == "asf" else "Thumbnail images"
    with atomic_path(path, create=False) as tmp:  # cdflib creates its file, and only under a .cdf name
        cdf_path = tmp.with_name("frames.cdf")
        with CDF(cdf_path, cdf_spec={"Majority": "row_major", "Encoding": 6}) as cdf:
            cdf.write_globalattrs(
                {
                    "Project": {0: "THEMIS"},
                    "Source_name": {0: "THG_L1>THEMIS Ground Based Observatory"},
                    "Data_type": {0: f"{product.upper()}>All Sky Imager, {description}, High resolution"},
                    "Descriptor": {0: f"{site.upper()}>synthetic site"},
                    "Data_version": {0: "1"},
                    "Logical_source": {0: f"thg_l1_{product}_{site}"},
                    "Logical_file_id": {0: path.stem},
                    "Time_resolution": {0: "3s"},
                    "Generated_by": {0: "tame_assets.sources.themis.write_themis_cdf (synthetic data)"},
                }
            )
            image_spec = {
                "Variable": prefix,
                "Data_Type": 12,
                "Num_Elements": 1,
                "Rec_Vary": True,
                "Dim_Sizes": [rows, cols],
                "Compress": 6 if compress else 0,
                "Block_Factor": min(n, 7) or 1,
            }
            cdf.write_var(
                image_spec,
                {
                    "CATDESC": f"{description} of {rows}x{cols} pixels",
                    "DEPEND_0": f"{prefix}_epoch",
                    "DEPEND_1": f"{prefix}_column",
                    "DEPEND_2": f"{prefix}_row",
                    "DISPLAY_TYPE": "image",
                    "FIELDNAM": prefix,
                    "FILLVAL": [65535, "CDF_UINT2"],
                    "UNITS": "counts",
                    "VAR_TYPE": "data",
                    "DEPEND_TIME": f"{prefix}_time",
                    "DEPEND_EPOCH0": f"{prefix}_epoch0",
                },
                frames,
            )
            for axis, size in (("column", cols), ("row", rows)):
                cdf.write_var(
                    {
                        "Variable": f"{prefix}_{axis}",
                        "Data_Type": 12,
                        "Num_Elements": 1,
                        "Rec_Vary": False,
                        "Dim_Sizes": [size],
                        "Compress": 0,
                    },
                    {"CATDESC": f"Number of {axis} in image", "VAR_TYPE": "support_data"},
                    np.arange(size, dtype=np.uint16),
                )
            for name, values, note in (
                ("time", seconds, "Unleaped seconds"),
                ("tend", seconds + 1.0, "Unleaped seconds, end time of integration"),
            ):
                cdf.write_var(
                    {
                        "Variable": f"{prefix}_{name}",
                        "Data_Type": 22,
                        "Num_Elements": 1,
                        "Rec_Vary": True,
                        "Dim_Sizes": [],
                        "Compress": 0,
                    },
                    {
                        "CATDESC": f"{prefix}_{name}, UTC, in seconds since 01-Jan-1970 00:00:00",
                        "UNITS": "sec",
                        "VAR_TYPE": "support_data",
                        "VAR_NOTES": note,
                    },
                    values,
                )
            for name, values, rec_vary, catdesc in (
                ("epoch", epoch, True, "Epoch of start of image exposure"),
                ("epoch0", np.array([_EPOCH_1970_MS]), False, "EPOCH0 of THEMIS TIME BASE"),
            ):
                cdf.write_var(
                    {
                        "Variable": f"{prefix}_{name}",
                        "Data_Type": 31,
                        "Num_Elements": 1,
                        "Rec_Vary": rec_vary,
                        "Dim_Sizes": [],
                        "Compress": 0,
                    },
                    {"CATDESC": catdesc, "VAR_TYPE": "support_data"},
                    values,
                )
            cdf.write_var(
                {
                    "Variable": "range_epoch",
                    "Data_Type": 31,
                    "Num_Elements": 1,
                    "Rec_Vary": True,
                    "Dim_Sizes": [],
                    "Compress": 0,
                },
                {"CATDESC": "Epochs of first and last image in file", "VAR_TYPE": "support_data"},
                np.array([epoch.min(), epoch.max()]) if n else np.array([0.0, 0.0]),
            )
        os.replace(cdf_path, tmp)
    return path


#: Comment keys of the first frame's header in a real UCalgary file, in file order (two keys repeat).
PGM_FILE_HEADER_KEYS = (
    "Revised",
    "Project unique ID",
    "Site unique ID",
    "Imager unique ID",
    "Imager model",
    "Imager comment",
    "Ccd type",
    "Ccd xsize",
    "Ccd ysize",
    "Ccd background",
    "Pixel depth",
    "Pixel aspect ratio",
    "Optical type",
    "Optical projection",
    "Optical center",
    "Computer name",
    "Operating system",
    "Project unique ID",
    "Site unique ID",
    "Site name",
    "Geodetic latitude",
    "Geodetic Longitude",
    "Geodetic altitude",
)
#: Comment keys every frame's header ends with (later frames carry only these).
PGM_FRAME_HEADER_KEYS = (
    "Mode unique ID",
    "Mode sequence number",
    "CCD device",
    "Exposure options",
    "Image request start",
    "Image readout start",
    "Exposure plus initial readout",
)


def _pgm_frame_header(
    site: str,
    device: str,
    time: np.datetime64,
    rows: int,
    cols: int,
    sequence: int,
    latitude_deg: float,
    longitude_deg: float,
    exposure_ms: float,
) -> bytes:
    request = time.astype("datetime64[us]").item()
    readout = request + dt.timedelta(milliseconds=exposure_ms)
    values = {
        "Revised": "2006-05-22",
        "Project unique ID": "themis-synthetic",
        "Site unique ID": site,
        "Imager unique ID": device,
        "Imager model": "synthetic (tame_assets)",
        "Imager comment": "synthetic data",
        "Ccd type": "none",
        "Ccd xsize": f"{cols} pixels",
        "Ccd ysize": f"{rows} pixels",
        "Ccd background": "0",
        "Pixel depth": "16 bits",
        "Pixel aspect ratio": "1.0",
        "Optical type": "THEMIS all-sky",
        "Optical projection": "a1=1.5,a3=0.0,b2=0.0,b4=0.0",
        "Optical center": f"x0={cols // 2},y0={rows // 2}",
        "Computer name": f"{site} synthetic",
        "Operating system": "none",
        "Site name": site.upper(),
        "Geodetic latitude": f"{latitude_deg:.4f}",
        "Geodetic Longitude": f"{longitude_deg:.4f}",
        "Geodetic altitude": "0.0",
        "Mode unique ID": "full",
        "Mode sequence number": str(sequence),
        "CCD device": "/dev/null",
        "Exposure options": f"WIDTH={cols} HEIGHT={rows}",
        "Image request start": f"{request:%Y-%m-%d %H:%M:%S.%f} UTC",
        "Image readout start": f"{readout:%Y-%m-%d %H:%M:%S.%f} UTC",
        "Exposure plus initial readout": f"{exposure_ms:9.2f} ms",
    }
    keys = (PGM_FILE_HEADER_KEYS if sequence == 0 else ()) + PGM_FRAME_HEADER_KEYS
    lines = ["P5"] + [f'#"{key}" {values[key]}' for key in keys] + [f"{cols} {rows}", "65535", ""]
    return "\n".join(lines).encode("latin-1")


def write_themis_pgm(
    path: str | Path,
    frames,
    times,
    site: str,
    device: str,
    *,
    latitude_deg: float = float("nan"),
    longitude_deg: float = float("nan"),
    exposure_ms: float = 985.0,
) -> Path:
    """Write frames as a UCalgary THEMIS multi-frame PGM: per frame a ``P5`` header with the real
    files' comment keys (:data:`PGM_FILE_HEADER_KEYS` in the first frame, then
    :data:`PGM_FRAME_HEADER_KEYS` in every frame; ``"Image request start"`` = the frame time, µs),
    then big-endian 16-bit pixels, row 0 first. gzip-compressed when ``path`` ends in ``.gz``.
    Site latitude/longitude (degrees) go to the header (``nan`` when not given). Written atomically.
    """
    check_site(site)
    if not DEVICE_RE.fullmatch(device or ""):
        raise ValueError(f"{device!r}: not a THEMIS imager id (expected themisNN, e.g. themis19)")
    frames, times = _check_frames(frames, times)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, rows, cols = frames.shape
    body = b"".join(
        _pgm_frame_header(site, device, time, rows, cols, i, latitude_deg, longitude_deg, exposure_ms)
        + frame.astype(">u2").tobytes()
        for i, (frame, time) in enumerate(zip(frames, times))
    )
    if path.name.endswith(".gz"):
        body = gzip.compress(body, compresslevel=6, mtime=0)
    write_bytes_atomic(path, body)
    return path
