"""The live tables and the live state file.

``live_frames``: one row per frame the live path cataloged (the ``aurora_catalog`` columns plus
``day``, ``ok``, ``error``, ``local_path``, ``appeared_at``, ``cataloged_at``, ``latency_s``), in
``warehouse/live_frames/month=YYYY-MM/part-<STATION>-<YYYYMMDD>-<nnn>.parquet``: rows are appended
to the day's open chunk, rewritten atomically (a reader sees the old or the new chunk, never half of
one) until it holds :data:`CHUNK_ROWS` rows; then the next chunk starts. ``alerts``: the alerts of a
station's month, ``warehouse/alerts/month=YYYY-MM/part-<STATION>.parquet``.

The state file ``<local root>/live/<STATION>.json`` lists the file names done. On start the done set
is the state file's names plus the names in the station's ``live_frames`` chunks (the table is written
before the state file, so a crash between the two never processes a frame twice). For a multi-frame
network (THEMIS: an hour or a minute of frames per file) a frame is keyed by (``file``, ``frame_index``)
as in the batch tables: a file is done once all its frames are (the state file says so), and the frames
of a file cut short by a restart are in the chunks, so only its remaining frames are processed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import polars as pl

from tame_assets.config import PathLayout
from tame_assets.files import write_text_atomic
from tame_assets.warehouse.store import Warehouse

LIVE_TABLE = "live_frames"
ALERTS_TABLE = "alerts"
#: Rows per chunk file of a day (the open chunk is rewritten on every append).
CHUNK_ROWS = 500
_CHUNK = re.compile(r"^part-(?P<station>[A-Z0-9]{3,5})-(?P<day>\d{8})-(?P<n>\d{3,})\.parquet$")


def chunk_name(station: str, day: dt.date, n: int) -> str:
    return f"part-{station}-{day:%Y%m%d}-{n:03d}.parquet"


@dataclass
class _Chunk:
    n: int
    rows: pl.DataFrame


@dataclass
class LiveTable:
    """Appends a station's live rows; knows which files (and, for a multi-frame network, which frames of
    the files not done yet) are done."""

    layout: PathLayout
    station: str
    chunk_rows: int = CHUNK_ROWS
    multi_frame: bool = False
    done: set[str] = field(default_factory=set)
    frames_done: dict[str, set[int]] = field(default_factory=dict)  # multi-frame files not done: frame indices
    day_counts: dict[dt.date, int] = field(default_factory=dict)
    _open: dict[dt.date, _Chunk] = field(default_factory=dict)
    _failed: dict[str, pl.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.warehouse = Warehouse(self.layout)
        self.state_path = Path(self.layout.local_root) / "live" / f"{self.station}.json"
        self._load()

    # ------------------------------------------------------------------ start-up
    def _files(self) -> list[tuple[str, dt.date, int, Path]]:
        base = Path(self.warehouse.table_dir(LIVE_TABLE))
        out = []
        for path in base.glob("month=*/part-*.parquet") if base.exists() else []:
            m = _CHUNK.match(path.name)
            if m and m["station"] == self.station:
                out.append((path.parent.name[6:], dt.datetime.strptime(m["day"], "%Y%m%d").date(), int(m["n"]), path))
        return sorted(out, key=lambda t: (t[1], t[2]))

    def _load(self) -> None:
        if self.state_path.exists():
            self.done |= set(json.loads(self.state_path.read_text()).get("done", []))
        for month, day, n, path in self._files():
            rows = pl.read_parquet(path)
            self._mark_rows(rows)
            self.day_counts[day] = self.day_counts.get(day, 0) + rows.height
            if day not in self._open or self._open[day].n < n:
                self._open[day] = _Chunk(n, rows)
            failed = rows.filter(~pl.col("ok"))
            if failed.height:
                self._failed[month] = pl.concat(
                    [self._failed.get(month, failed.clear()), failed], how="diagonal_relaxed"
                )
        for name in self.done:
            self.frames_done.pop(name, None)

    def _mark_rows(self, rows: pl.DataFrame) -> None:
        """Count the frames of ``rows`` as done (a single-frame network's row: its file; a multi-frame
        file's row without a frame index, a file that could not be read at all: the file)."""
        if not self.multi_frame:
            self.done |= set(rows["file"].drop_nulls().to_list())
            return
        for name, index in rows.select("file", "frame_index").iter_rows():
            if name is None or name in self.done:
                continue
            if index is None:
                self.done.add(name)
                self.frames_done.pop(name, None)
            else:
                self.frames_done.setdefault(name, set()).add(int(index))

    def frame_done(self, name: str, index: int) -> bool:
        """Whether frame ``index`` of the file ``name`` has its row."""
        return name in self.done or index in self.frames_done.get(name, ())

    # ------------------------------------------------------------------ writing
    def append(self, rows: pl.DataFrame, complete: Sequence[str] = ()) -> list[str]:
        """Append ``rows`` (one station's; column ``day``) to their days' chunks, then the state
        file; ``complete``: the multi-frame files whose last frames these rows are. Returns the chunk
        paths written."""
        if rows.height == 0:
            if complete:
                self.mark_done(complete)
            return []
        written = []
        for (day,), part in rows.group_by("day", maintain_order=True):
            chunk = self._open.get(day)
            if chunk is None:
                chunk = self._open[day] = _Chunk(0, part.clear())
            elif chunk.rows.height >= self.chunk_rows:
                chunk = self._open[day] = _Chunk(chunk.n + 1, part.clear())
            chunk.rows = pl.concat([chunk.rows, part], how="diagonal_relaxed") if chunk.rows.height else part
            self.day_counts[day] = self.day_counts.get(day, 0) + part.height
            month = f"{day:%Y-%m}"
            written.append(
                self.warehouse.write_partition(LIVE_TABLE, chunk.rows, month, chunk_name(self.station, day, chunk.n))
            )
            failed = part.filter(~pl.col("ok"))
            if failed.height:
                previous = self._failed.get(month)
                self._failed[month] = (
                    pl.concat([previous, failed], how="diagonal_relaxed") if previous is not None else failed
                )
                self.warehouse.record_quarantine(
                    LIVE_TABLE,
                    month,
                    self._failed[month].select(
                        "time", "station", pl.col("local_path").alias("file"), pl.col("error").alias("reason")
                    ),
                    station=self.station,
                )
        self._mark_rows(rows)
        self.mark_done(complete)
        return written

    def mark_done(self, names: Iterable[str]) -> None:
        """Count the files ``names`` as done (all their frames have rows) and save the state file."""
        for name in names:
            self.done.add(name)
            self.frames_done.pop(name, None)
        self.save_state()

    def save_state(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "station": self.station,
            "done": sorted(self.done),
            "updated": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(),
        }
        write_text_atomic(self.state_path, json.dumps(state), fsync=False)

    def rows(self, day: dt.date | None = None) -> pl.DataFrame:
        """Every live row of the station (of ``day``), from the chunk files."""
        frames = [pl.read_parquet(p) for _, d, _, p in self._files() if day is None or d == day]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def append_alerts(self, alerts: pl.DataFrame) -> list[str]:
        """Add alert rows to their months' ``alerts`` files of this station."""
        written = []
        for (month,), part in alerts.with_columns(pl.col("time").dt.strftime("%Y-%m").alias("_m")).group_by(
            "_m", maintain_order=True
        ):
            name = f"part-{self.station}.parquet"
            path = Path(self.warehouse.partition_file(ALERTS_TABLE, month, name))
            new = part.drop("_m")
            table = pl.concat([pl.read_parquet(path), new], how="diagonal_relaxed") if path.exists() else new
            written.append(self.warehouse.write_partition(ALERTS_TABLE, table, month, name))
        return written
