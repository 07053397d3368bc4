"""OATH — Oslo Auroral THEMIS labelled set (Clausen & Nickisch 2018; 5,824 images, CC BY 4.0).

Tarball layout: ``<top>/images/cropped_scaled/NNNNN.png``, ``<top>/images/cropped_scaled_rotated/``
and ``<top>/classifications/classifications.csv``: a free-text licence header, then the columns
``class2,class6,picNum,picType,rotAng`` (real file) or ``class2,class6,picNum,label,angle``.
class6: 0 arc, 1 diffuse, 2 discrete, 3 cloudy, 4 moon, 5 clear/no aurora (spelled ``noaurora``
in the real file); class2: 0 aurora, 1 no aurora. ``rotAng`` is the rotation in degrees.
"""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import polars as pl

from tame_assets.sources.http import HttpClient

CLASS6_NAMES = ("arc", "diffuse", "discrete", "cloudy", "moon", "clear")
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


class OathFormatError(ValueError):
    def __init__(self, source: str, line: int | None, reason: str):
        super().__init__(f"{source}" + (f", line {line}" if line else "") + f": {reason}")


def parse_classifications(path: Path, image_root: Path | None = None) -> pl.DataFrame:
    """Parse ``classifications.csv`` into the ``oath_images`` table (label = canonical class name).

    ``image_root`` (the folder holding ``images/``) fills ``path``/``path_rotated`` when the files exist.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    start = next((i for i, l in enumerate(lines) if tuple(c.strip() for c in l.split(",")) in HEADER_VARIANTS), None)
    if start is None:
        raise OathFormatError(str(path), None, f"no column header {' or '.join(','.join(h) for h in HEADER_VARIANTS)}")
    rows = []
    for number, record in enumerate(csv.reader(io.StringIO("\n".join(lines[start + 1:]))), start=start + 2):
        if not record:
            continue
        if len(record) != 5:
            raise OathFormatError(str(path), number, f"expected 5 columns, found {len(record)}")
        try:
            class2, class6, pic, angle = int(record[0]), int(record[1]), int(record[2]), float(record[4])
        except ValueError as exc:
            raise OathFormatError(str(path), number, f"not a number ({exc})") from None
        if not 0 <= class6 < 6 or class2 not in (0, 1):
            raise OathFormatError(str(path), number, f"class6 {class6} / class2 {class2} out of range")
        rows.append((pic, class6, CLASS6_NAMES[class6], class2, angle, record[3].strip()))
    table = pl.DataFrame(rows, schema=["pic_num", "class6", "label", "class2", "angle", "pic_type"], orient="row")

    def image(folder: str):
        if image_root is None:
            return pl.lit(None, dtype=pl.Utf8)
        base = Path(image_root) / "images" / folder
        return pl.format("{}/{}.png", pl.lit(str(base)), pl.col("pic_num").cast(pl.Utf8).str.zfill(5))

    table = table.with_columns(image("cropped_scaled").alias("path"), image("cropped_scaled_rotated").alias("path_rotated"))
    if image_root is not None:
        exists = [Path(p).exists() for p in table["path_rotated"].to_list()]
        if not all(exists):
            table = table.with_columns(pl.Series("path_rotated", [p if e else None for p, e in zip(table["path_rotated"], exists)], dtype=pl.Utf8))
    return table.cast(OATH_SCHEMA).select(list(OATH_SCHEMA))


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a tarball refusing absolute paths, ``..`` and links; returns the top folder."""
    dest = Path(dest).resolve()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not str(target).startswith(str(dest) + "/") and target != dest:
                raise OathFormatError(str(archive), None, f"unsafe path in tarball: {member.name}")
            if member.issym() or member.islnk():
                raise OathFormatError(str(archive), None, f"link in tarball refused: {member.name}")
        tar.extractall(dest, filter="data")
    tops = {Path(m).parts[0] for m in tarfile.open(archive).getnames() if m}
    return dest / tops.pop() if len(tops) == 1 else dest


def fetch_oath(client: HttpClient, url: str, dest_root: Path) -> pl.DataFrame:
    """Download the OATH tarball, extract it safely (once) and parse its labels."""
    dest_root = Path(dest_root)
    archive = dest_root / url.rsplit("/", 1)[-1].split("?")[0]
    result = client.download(url, archive)
    marker = dest_root / f".{archive.name}.{result.sha256[:16]}.extracted"
    top_file = dest_root / f".{archive.name}.top"
    if not marker.exists():
        top = safe_extract(archive, dest_root / "extracted")
        top_file.write_text(str(top))
        marker.touch()
    top = Path(top_file.read_text())
    return parse_classifications(top / "classifications" / "classifications.csv", image_root=top)
