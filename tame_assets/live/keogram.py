"""The rolling keogram of the night: one north–south pixel column per frame (any network's frame, read
by :func:`tame_assets.sources.frame_reader.read_frame`: a UiO PNG, or frame ``<path>#<index>`` of a
THEMIS file), kept in memory (and in
``<local root>/live/<STATION>_keogram.npz`` so a restart keeps the night), redrawn to
``figures/live/<STATION>_keogram.png`` (+ .svg) by atomic replace with
:func:`tame_assets.products.keogram.keogram_figure`."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tame_assets.files import write_bytes_atomic
from tame_assets.products.keogram import Keogram, pixel_path
from tame_assets.sources.frame_reader import grey_frame

#: Frames older than this before the newest one leave the rolling keogram (s).
WINDOW_S = 18 * 3600.0


@dataclass
class RollingKeogram:
    station: str
    figures_dir: Path
    state_path: Path
    wavelength: str = ""
    window_s: float = WINDOW_S
    times: list[np.datetime64] = field(default_factory=list)
    columns: list[np.ndarray] = field(default_factory=list)
    shape: tuple[int, int] | None = None
    drawn_frames: int = 0

    def __post_init__(self) -> None:
        if self.state_path.exists():
            with np.load(self.state_path) as saved:
                self.times = list(saved["time"].astype("datetime64[us]"))
                self.columns = list(saved["intensity"])
                self.shape = tuple(int(v) for v in saved["shape"]) if saved["shape"].size else None

    def add(self, item: str, time: dt.datetime, max_pixels: int | None = None) -> bool:
        """Sample the zenith column of the frame ``item`` names (a file, or ``<path>#<index>``); False
        when it cannot (unreadable, another size)."""
        try:
            frame = grey_frame(item, max_pixels=max_pixels)
        except Exception:
            return False
        if self.shape is None:
            self.shape = tuple(frame.shape)
        if tuple(frame.shape) != self.shape:
            return False
        self.times.append(np.datetime64(time, "us"))
        self.columns.append(pixel_path(self.shape, "ns").sample(frame))
        return True

    def keogram(self) -> Keogram:
        times = np.array(self.times, dtype="datetime64[us]")
        order = np.argsort(times, kind="stable")
        times = times[order]
        keep = times >= times[-1] - np.timedelta64(int(self.window_s * 1e6), "us") if times.size else slice(None)
        intensity = np.array(self.columns, dtype=np.float32)[order][keep]
        coordinate = np.arange(intensity.shape[1]) if intensity.size else np.array([])
        return Keogram(times[keep], coordinate, "row", intensity)

    def draw(self) -> Path | None:
        """Redraw the figure (PNG + SVG, atomic replace) and save the columns; None before two frames."""
        if len(set(self.times)) < 2:
            return None
        from tame_assets.analysis.figures import save_figure
        from tame_assets.products.keogram import keogram_figure

        keo = self.keogram()
        self.times, self.columns = list(keo.time), list(keo.intensity)  # the window only
        fig = keogram_figure(keo, station=self.station, wavelength=self.wavelength)
        fig.suptitle(f"{fig._suptitle.get_text()} — live, {len(keo.time)} frames", fontsize=10)
        files = save_figure(fig, self.figures_dir, f"{self.station}_keogram")
        buffer = io.BytesIO()
        np.savez(buffer, time=keo.time.astype("int64"), intensity=keo.intensity, shape=np.array(self.shape or ()))
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.state_path, buffer.getvalue(), fsync=False)
        self.drawn_frames = len(self.times)
        return files.png
