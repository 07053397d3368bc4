"""A user's labelled image set: a folder of images plus a labels CSV (``filename,label`` required,
other columns kept as strings; one named file/path/is_aurora becomes ``csv_<name>``). Any label vocabulary works; the aurora / no-aurora mapping is
configurable (default: every label except those in :data:`NON_AURORAL_LABELS` is auroral).

Table ``labelled_images``: file, path, label, is_aurora, then the CSV's other columns in order.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

import polars as pl

from tame_assets.labels import NON_AURORAL_LABELS, is_auroral
from tame_assets.sources.errors import LabelsFormatError

#: Labels that mean "no aurora" by default (case-insensitive); every other label is auroral.
REQUIRED_COLUMNS = ("filename", "label")


def read_labelled_set(labels_csv: Path, image_dir: Path | None = None,
                      non_auroral: Iterable[str] = NON_AURORAL_LABELS) -> pl.DataFrame:
    """Read ``labels_csv`` whose ``filename`` entries are relative to ``image_dir`` (default: the
    CSV's ``images/`` sibling folder when it exists, else the CSV's folder).

    Raises :class:`LabelsFormatError` naming the CSV (and line) for a missing required column, a
    wrong number of cells, an empty filename/label, or an image file that does not exist.
    """
    labels_csv = Path(labels_csv)
    if image_dir is None:
        image_dir = labels_csv.parent / "images" if (labels_csv.parent / "images").is_dir() else labels_csv.parent
    image_dir = Path(image_dir)
    source = str(labels_csv)
    try:
        handle = open(labels_csv, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise LabelsFormatError(source, None, f"cannot read ({exc.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise LabelsFormatError(source, 1, f"missing required column(s): {', '.join(missing)} (header: {header})")
        rows: list[list[str]] = []
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
            rows.append([name, str(path), label, *(row[c] for c in header if c not in REQUIRED_COLUMNS)])
    extra = [f"csv_{c}" if c in ("file", "path", "is_aurora") else c for c in header if c not in REQUIRED_COLUMNS]
    columns = ["file", "path", "label", *extra]
    table = pl.DataFrame(rows, schema={c: pl.Utf8 for c in columns}, orient="row")
    return table.with_columns(
        pl.Series("is_aurora", is_auroral(table["label"].to_list(), non_auroral), dtype=pl.Boolean)
    ).select("file", "path", "label", "is_aurora", *extra)
