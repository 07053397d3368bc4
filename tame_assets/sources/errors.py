"""One error family for every source: a bad input names its file and, where there is one, its line."""

from __future__ import annotations

import polars as pl

#: Quarantine rows a source reports for inputs it could not use: the frame's or file's time (naive UTC,
#: NULL when unknown), station, file and the one-line reason (the error's message). The warehouse's
#: ``quarantine`` table adds the asset that recorded them (:data:`tame_assets.warehouse.store.QUARANTINE_SCHEMA`).
QUARANTINE_SCHEMA = {"time": pl.Datetime("us"), "station": pl.Utf8, "file": pl.Utf8, "reason": pl.Utf8}


class SourceFormatError(ValueError):
    """A malformed input file; the message names the file and the line (1-based) when known."""

    def __init__(self, source: str, line: int | None, reason: str):
        self.source, self.line, self.reason = str(source), line, reason
        super().__init__(f"{source}" + (f", line {line}" if line else "") + f": {reason}")


class LabelsFormatError(SourceFormatError):
    """A bad labels CSV."""


class OathFormatError(SourceFormatError):
    """A malformed OATH label file or tarball."""


class MagnetometerFormatError(SourceFormatError):
    """A malformed magnetometer file (IAGA-2002 or IMAGE column format)."""


class PangaeaFormatError(SourceFormatError):
    """A malformed PANGAEA ceilometer file."""


class ImageReadError(ValueError):
    """An image file cannot be decoded; names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")
