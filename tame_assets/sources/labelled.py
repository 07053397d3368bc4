"""A user's labelled image set: a folder of images plus a labels CSV (``filename,label`` required,
other columns kept). Any label set works; the aurora / no-aurora mapping is configurable."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import polars as pl

#: Labels that mean "no aurora" by default; every other label is auroral.
NON_AURORAL_LABELS = frozenset({"aurora-less", "clear", "cloudy", "moon", "noaurora", "no-aurora"})


class LabelsFormatError(ValueError):
    def __init__(self, source: str, line: int | None, reason: str):
        super().__init__(f"{source}" + (f", line {line}" if line else "") + f": {reason}")


def is_auroral(labels: Iterable[str], non_auroral: Iterable[str] = NON_AURORAL_LABELS) -> list[bool]:
    non = {l.lower() for l in non_auroral}
    return [str(l).lower() not in non for l in labels]


def read_labelled_set(labels_csv: Path, image_dir: Path, non_auroral: Iterable[str] = NON_AURORAL_LABELS) -> pl.DataFrame:
    """Table ``labelled_images``: file, path, label, is_aurora, then the CSV's other columns.

    Raises :class:`LabelsFormatError` naming the CSV (and line) for a missing column, an empty label
    or an image file that does not exist.
    """
    labels_csv, image_dir = Path(labels_csv), Path(image_dir)
    try:
        table = pl.read_csv(labels_csv, infer_schema_length=0)
    except Exception as exc:  # polars raises several types for malformed CSV
        raise LabelsFormatError(str(labels_csv), None, f"unreadable CSV ({exc})") from None
    missing = {"filename", "label"} - set(table.columns)
    if missing:
        raise LabelsFormatError(str(labels_csv), 1, f"missing required column(s): {', '.join(sorted(missing))}")
    paths = []
    for line, (name, label) in enumerate(zip(table["filename"], table["label"]), start=2):
        if not name or not label:
            raise LabelsFormatError(str(labels_csv), line, "empty filename or label")
        path = image_dir / name
        if not path.exists():
            raise LabelsFormatError(str(labels_csv), line, f"image {path} does not exist")
        paths.append(str(path))
    extra = [c for c in table.columns if c not in ("filename", "label")]
    return table.select(
        pl.col("filename").alias("file"),
        pl.Series("path", paths),
        pl.col("label"),
        pl.Series("is_aurora", is_auroral(table["label"], non_auroral)),
        *extra,
    )
