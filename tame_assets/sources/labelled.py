"""A user's labelled image set: a folder of images plus a labels CSV (``filename,label`` required,
other columns kept as strings; one named file/path/is_aurora becomes ``csv_<name>``). Any label vocabulary
works; the aurora / no-aurora mapping is
configurable (default: every label except those in :data:`NON_AURORAL_LABELS` is auroral).

Table ``labelled_images``: file, path, label, is_aurora, then the CSV's other columns in order.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Iterable

import polars as pl

from tame_assets.labels import NON_AURORAL_LABELS, is_auroral
from tame_assets.sources.errors import LabelsFormatError

#: Labels that mean "no aurora" by default (case-insensitive); every other label is auroral.
REQUIRED_COLUMNS = ("filename", "label")


def _decode_csv(raw: bytes, source: str) -> str:
    """CSV bytes → text: a BOM decides (UTF-8, UTF-16 LE/BE); BOM-less UTF-16 is recognised by its
    NUL bytes; anything else must be UTF-8 — otherwise an error naming the file and line."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if raw.startswith(bom):
            raw, chosen = raw[len(bom) :], encoding
            break
    else:
        head = raw[:4096]
        odd_nuls, even_nuls = head[1::2].count(0), head[0::2].count(0)
        chosen = "utf-16-le" if odd_nuls > len(head) // 4 else "utf-16-be" if even_nuls > len(head) // 4 else "utf-8"
    try:
        return raw.decode(chosen)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1 if chosen == "utf-8" else None
        raise LabelsFormatError(
            source,
            line,
            f"not valid {chosen.upper()} (byte 0x{raw[exc.start]:02x}); save the CSV "
            "as UTF-8 (or UTF-16 with a byte-order mark)",
        ) from None


def read_labelled_set(
    labels_csv: Path, image_dir: Path | None = None, non_auroral: Iterable[str] = NON_AURORAL_LABELS
) -> pl.DataFrame:
    """Read ``labels_csv`` whose ``filename`` entries are relative to ``image_dir`` (default: the
    CSV's ``images/`` sibling folder when it exists, else the CSV's folder).

    The CSV may be UTF-8 (with or without BOM) or UTF-16 (BOM or recognisable NUL bytes). Labels are
    kept as written (case-sensitive), but two spellings of one label differing only in case or
    surrounding spaces (``Arc`` and ``arc``) are refused rather than guessed.

    Raises :class:`LabelsFormatError` naming the CSV (and line) for an undecodable file, a missing
    or repeated column, a wrong number of cells, an empty filename/label, an image file that does
    not exist, an image listed twice (with the same or different labels: it would sit in both the
    training and the test folds), or labels differing only in case.
    """
    labels_csv = Path(labels_csv)
    if image_dir is None:
        image_dir = labels_csv.parent / "images" if (labels_csv.parent / "images").is_dir() else labels_csv.parent
    image_dir = Path(image_dir)
    source = str(labels_csv)
    try:
        raw = labels_csv.read_bytes()
    except OSError as exc:
        raise LabelsFormatError(source, None, f"cannot read ({exc.strerror})") from None
    reader = csv.reader(io.StringIO(_decode_csv(raw, source), newline=""))
    header = [h.strip() for h in next(reader, [])]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise LabelsFormatError(
            source, 1, f"column(s) {', '.join(map(repr, repeated))} appear more than once (header: {header})"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise LabelsFormatError(source, 1, f"missing required column(s): {', '.join(missing)} (header: {header})")
    rows: list[list[str]] = []
    first_seen: dict[Path, tuple[int, str]] = {}
    spellings: dict[str, tuple[int, str]] = {}
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        line = reader.line_num
        if len(record) != len(header):
            raise LabelsFormatError(source, line, f"expected {len(header)} cells, found {len(record)}")
        row = dict(zip(header, record))
        name, label = row["filename"].strip(), row["label"].strip()
        if not name or not label:
            raise LabelsFormatError(source, line, "empty filename or label")
        path = image_dir / name
        if not path.is_file():
            raise LabelsFormatError(source, line, f"image {path} does not exist")
        key = path.resolve()
        if key in first_seen:
            before, before_label = first_seen[key]
            what = (
                f"with different labels: {before_label!r} (line {before}) and {label!r}"
                if before_label != label
                else f"twice (lines {before} and {line})"
            )
            raise LabelsFormatError(source, line, f"image {name} listed {what}")
        first_seen[key] = (line, label)
        spelling = spellings.setdefault(label.casefold(), (line, label))
        if spelling[1] != label:
            raise LabelsFormatError(
                source,
                line,
                f"label {label!r} and {spelling[1]!r} (line {spelling[0]}) differ only "
                "in case: write every label the same way",
            )
        rows.append([name, str(path), label, *(row[c] for c in header if c not in REQUIRED_COLUMNS)])
    extra = [f"csv_{c}" if c in ("file", "path", "is_aurora") else c for c in header if c not in REQUIRED_COLUMNS]
    columns = ["file", "path", "label", *extra]
    table = pl.DataFrame(rows, schema={c: pl.Utf8 for c in columns}, orient="row")
    return table.with_columns(
        pl.Series("is_aurora", is_auroral(table["label"].to_list(), non_auroral), dtype=pl.Boolean)
    ).select("file", "path", "label", "is_aurora", *extra)


def check_trainable(table: pl.DataFrame, source: str, min_per_label: int = 2) -> None:
    """Refuse a labelled set a classifier cannot be trained or cross-validated on: fewer than two
    labels, or a label with fewer than ``min_per_label`` images. Raises :class:`LabelsFormatError`
    naming the CSV (before any feature is extracted)."""
    counts = dict(table.group_by("label").len().sort("label").iter_rows())
    if len(counts) < 2:
        found = f"only the label {next(iter(counts))!r}" if counts else "no labelled images"
        raise LabelsFormatError(source, None, f"{found}: a classifier needs at least two labels")
    scarce = {label: n for label, n in counts.items() if n < min_per_label}
    if scarce:
        raise LabelsFormatError(
            source,
            None,
            f"label(s) with fewer than {min_per_label} images: {scarce} "
            "(each label needs images in every cross-validation split)",
        )
