"""OATH — Oslo Auroral THEMIS labelled set (Clausen & Nickisch 2018, JGR Space Physics; 5,824
THEMIS all-sky crops, CC BY 4.0).

Tarball layout: ``<top>/images/cropped_scaled/NNNNN.png`` (256×256 RGB crops; the grey image is in
the green channel), ``<top>/images/cropped_scaled_rotated/NNNNN.png`` and
``<top>/classifications/classifications.csv``: a free-text licence header, then the columns
``class2,class6,picNum,picType,rotAng`` (real file) or ``class2,class6,picNum,label,angle``.

Numbering (from the real label file, where every ``class6`` value has a single ``picType``):
class6 0 arc, 1 diffuse, 2 discrete, 3 cloudy, 4 moon, 5 clear — spelled ``noaurora`` in the real
file; class2 0 aurora (class6 0–2), 1 no aurora (class6 3–5). ``rotAng`` is the rotation of the
``_rotated`` image in degrees.

Table ``oath_images``: pic_num, class6, label (canonical name above), class2, angle, pic_type (as
written), path (cropped_scaled), path_rotated (NULL when that file is absent).
"""

from __future__ import annotations

import csv
import gzip
import io
import lzma
import tarfile
import zlib
from pathlib import Path

import polars as pl

from tame_assets.files import write_text_atomic
from tame_assets.sources.errors import OathFormatError
from tame_assets.sources.http import HttpClient

#: Version of the tarball/label parsing rules; part of the ``oath_images`` asset's code_version.
PARSER_VERSION = "2"
#: Largest tarball member extracted (bytes); OATH's PNG crops are ~100 kB, its label file < 1 MB.
MAX_MEMBER_BYTES = 256 * 2**20
#: Largest total written by one extraction (bytes).
MAX_TOTAL_BYTES = 16 * 2**30
#: Largest ratio of bytes written to tarball size: OATH holds PNGs, which gzip cannot shrink, so a
#: tarball that expands much more than this is a decompression bomb.
MAX_EXPANSION_RATIO = 20.0
CLASS6_NAMES = ("arc", "diffuse", "discrete", "cloudy", "moon", "clear")
#: Spellings of each class name accepted in the picType/label column.
ALIASES = {"noaurora": "clear", "no aurora": "clear", "no-aurora": "clear", "clear": "clear"}
HEADER_VARIANTS = (
    ("class2", "class6", "picNum", "picType", "rotAng"),
    ("class2", "class6", "picNum", "label", "angle"),
)

OATH_SCHEMA = {
    "pic_num": pl.Int64,
    "class6": pl.Int64,
    "label": pl.Utf8,
    "class2": pl.Int64,
    "angle": pl.Float64,
    "pic_type": pl.Utf8,
    "path": pl.Utf8,
    "path_rotated": pl.Utf8,
}


def _canonical(name: str) -> str:
    name = name.strip().lower()
    return ALIASES.get(name, name)


def parse_classifications(path: Path, image_root: Path | None = None) -> pl.DataFrame:
    """Parse ``classifications.csv`` into the ``oath_images`` table.

    ``image_root`` (the folder holding ``images/``) fills ``path``/``path_rotated``; without it both
    are NULL. A row whose class numbers are out of range, or whose name contradicts its class6
    number, is an error naming the line.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    start = next((i for i, ln in enumerate(lines) if tuple(c.strip() for c in ln.split(",")) in HEADER_VARIANTS), None)
    if start is None:
        raise OathFormatError(str(path), None, f"no column header {' or '.join(','.join(h) for h in HEADER_VARIANTS)}")
    rows = []
    for number, record in enumerate(csv.reader(io.StringIO("\n".join(lines[start + 1 :]))), start=start + 2):
        if not record or not "".join(record).strip():
            continue
        if len(record) != 5:
            raise OathFormatError(str(path), number, f"expected 5 columns, found {len(record)}")
        try:
            class2, class6, pic, angle = int(record[0]), int(record[1]), int(record[2]), float(record[4])
        except ValueError as exc:
            raise OathFormatError(str(path), number, f"not a number ({exc})") from None
        if not 0 <= class6 < len(CLASS6_NAMES) or class2 != int(class6 >= 3):
            raise OathFormatError(str(path), number, f"class6 {class6} / class2 {class2} out of range or inconsistent")
        name = record[3].strip()
        if _canonical(name) in CLASS6_NAMES and _canonical(name) != CLASS6_NAMES[class6]:
            raise OathFormatError(str(path), number, f"{name!r} contradicts class6 {class6} ({CLASS6_NAMES[class6]})")
        rows.append((pic, class6, CLASS6_NAMES[class6], class2, angle, name))
    table = pl.DataFrame(rows, schema=["pic_num", "class6", "label", "class2", "angle", "pic_type"], orient="row")
    if table["pic_num"].is_duplicated().any():
        raise OathFormatError(
            str(path), None, f"duplicate picNum {table.filter(pl.col('pic_num').is_duplicated())['pic_num'][0]}"
        )

    def image_paths(folder: str, keep_missing: bool) -> pl.Series:
        if image_root is None:
            return pl.Series([None] * table.height, dtype=pl.Utf8)
        base = Path(image_root) / "images" / folder
        paths = [base / f"{n:05d}.png" for n in table["pic_num"].to_list()]
        return pl.Series([str(p) if keep_missing or p.exists() else None for p in paths], dtype=pl.Utf8)

    table = table.with_columns(
        image_paths("cropped_scaled", keep_missing=True).alias("path"),
        image_paths("cropped_scaled_rotated", keep_missing=False).alias("path_rotated"),
    )
    return table.cast(OATH_SCHEMA).select(list(OATH_SCHEMA))


def safe_extract(
    archive: Path,
    dest: Path,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_expansion_ratio: float = MAX_EXPANSION_RATIO,
) -> Path:
    """Extract a tarball refusing absolute paths, ``..``, links and special files, a member above
    ``max_member_bytes``, and a total above ``max_total_bytes`` or ``max_expansion_ratio`` × the
    tarball's size. Every member header is checked (stopping at the first refusal) before anything
    is written. Returns the single top-level folder (or ``dest`` when there are several).
    A file that is not a tarball, or a truncated or corrupt one, is an :class:`OathFormatError` naming it."""
    dest = Path(dest).resolve()
    total_cap = min(max_total_bytes, int(max_expansion_ratio * Path(archive).stat().st_size))
    try:
        members = _extract(archive, dest, max_member_bytes, total_cap, max_total_bytes, max_expansion_ratio)
    except tarfile.ReadError as exc:
        why = "not a tar archive (gzip, bzip2, xz or plain)" if "could not be opened" in str(exc) else str(exc)
        raise OathFormatError(str(archive), None, f"{why}; delete the file to download it again") from None
    except (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, tarfile.TarError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise OathFormatError(
            str(archive), None, f"truncated or corrupt tarball ({reason}); delete the file to download it again"
        ) from None
    tops = {Path(m.name).parts[0] for m in members if Path(m.name).parts}
    return dest / tops.pop() if len(tops) == 1 else dest


def _extract(
    archive: Path, dest: Path, max_member_bytes: int, total_cap: int, max_total_bytes: int, max_expansion_ratio: float
) -> list[tarfile.TarInfo]:
    """The checks and extraction of :func:`safe_extract`; returns the members written."""
    with tarfile.open(archive) as tar:
        members, total = [], 0
        for member in tar:  # headers one by one: a bomb is refused without inflating the rest
            target = (dest / member.name).resolve()
            if member.name.startswith(("/", "\\")) or (target != dest and dest not in target.parents):
                raise OathFormatError(str(archive), None, f"unsafe path in tarball: {member.name}")
            if not (member.isfile() or member.isdir()):
                raise OathFormatError(str(archive), None, f"link or special file in tarball refused: {member.name}")
            if member.size > max_member_bytes:
                raise OathFormatError(
                    str(archive),
                    None,
                    f"member {member.name} is {member.size:,} bytes, above the cap of {max_member_bytes:,}",
                )
            total += member.size
            if total > total_cap:
                raise OathFormatError(
                    str(archive),
                    None,
                    f"members add up to more than {total_cap:,} bytes "
                    f"({max_expansion_ratio:g} × the tarball or {max_total_bytes:,}): refused as a "
                    "decompression bomb",
                )
            members.append(member)
        dest.mkdir(parents=True, exist_ok=True)
        tar.extractall(dest, members=members, filter="data")
    return members


def fetch_oath(client: HttpClient, url: str, dest_root: Path, sha256: str | None = None) -> pl.DataFrame:
    """Download the OATH tarball to ``dest_root``, extract it safely (once per tarball content)
    under ``dest_root/extracted/`` and parse its labels.

    ``sha256`` (hex, e.g. the pinned ``oath_sha256`` setting) is verified after download and also
    for a tarball already on disk; a mismatch is a :class:`~tame_assets.sources.http.DownloadError`
    naming the URL."""
    return fetch_oath_versioned(client, url, dest_root, sha256)[0]


def fetch_oath_versioned(
    client: HttpClient, url: str, dest_root: Path, sha256: str | None = None
) -> tuple[pl.DataFrame, str]:
    """:func:`fetch_oath` and the SHA-256 (hex) of the tarball the table comes from."""
    dest_root = Path(dest_root)
    archive = dest_root / url.rsplit("/", 1)[-1].split("?")[0]
    result = client.download(url, archive, sha256=sha256)
    marker = dest_root / f".{archive.name}.{result.sha256[:16]}.extracted"
    if not marker.exists():
        top = safe_extract(archive, dest_root / "extracted")
        write_text_atomic(marker, str(top))
    top = Path(marker.read_text())
    labels = top / "classifications" / "classifications.csv"
    if not labels.exists():
        raise OathFormatError(url, None, "tarball has no classifications/classifications.csv")
    return parse_classifications(labels, image_root=top), result.sha256
