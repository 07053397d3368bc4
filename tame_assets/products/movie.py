"""Movies (H.264 MP4) of all-sky frames, each frame annotated with its UTC time and, when given, the
predicted class and p_aurora.

Encoding uses the ffmpeg binary bundled in the ``imageio-ffmpeg`` wheel (nothing is downloaded at
run time). Frames are streamed: one frame in memory at a time. Greyscale is scaled to 8 bits per
frame between its 1st and 99.5th percentiles (or a fixed ``intensity_range``), enlarged by an
integer factor to at least ``min_height`` pixels, padded with black to a multiple of 16 pixels, and
the text is drawn with PIL (no matplotlib). The MP4 is written to a temporary file next to ``out``
and renamed into place, so ``out`` is either the previous file or the complete new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import polars as pl

from tame_assets.files import atomic_path
from tame_assets.products.frame_stream import timed_frames, to_datetime64_array

_BLOCK = 16
#: Frame rates a movie may have (frames per second): what players and encoders handle.
MIN_FPS, MAX_FPS = 0.1, 240.0


@dataclass(frozen=True)
class MovieResult:
    path: Path
    n_frames: int
    duration_s: float  # n_frames / fps


class _Annotator:
    """Text lines for a frame time: UTC time, station, and the nearest prediction within ``tolerance_s``."""

    def __init__(self, annotations: pl.DataFrame | None, station: str, tolerance_s: float):
        self.station = station
        self.times = None
        if annotations is not None and annotations.height:
            missing = {"time", "pred"} - set(annotations.columns)
            if missing:
                raise ValueError(f"annotations need columns time, pred (and p_aurora); missing {sorted(missing)}")
            table = annotations.sort("time")
            self.times = to_datetime64_array(table["time"], "annotations.time").astype("int64")
            self.pred = table["pred"].cast(pl.Utf8).to_list()
            self.p_aurora = table["p_aurora"].to_list() if "p_aurora" in table.columns else [None] * table.height
        self.tolerance_us = int(tolerance_s * 1e6)

    def lines(self, time: np.datetime64) -> list[str]:
        out = [str(time.astype("datetime64[s]")).replace("T", " ") + " UTC"]
        if self.station:
            from tame_assets.analysis.figures import station_label

            out[0] = f"{station_label(self.station)}  {out[0]}"
        if self.times is not None:
            t = time.astype("int64")
            i = int(np.searchsorted(self.times, t))
            best = min((j for j in (i - 1, i) if 0 <= j < self.times.size), key=lambda j: abs(self.times[j] - t))
            if abs(self.times[best] - t) <= self.tolerance_us:
                p = self.p_aurora[best]
                out.append(f"{self.pred[best] or 'no class'}" + ("" if p is None else f"  P(aurora) {p:.2f}"))
            else:
                out.append("no prediction")
        return out


def to_display_uint8(frame: np.ndarray, intensity_range: tuple[float, float] | None = None) -> np.ndarray:
    """Scale a greyscale frame to uint8 between ``intensity_range`` (default: its 1st–99.5th percentiles)."""
    data = frame.astype(np.float32, copy=False)
    if intensity_range is None:
        finite = data[np.isfinite(data)]
        lo, hi = np.percentile(finite, (1, 99.5)) if finite.size else (0.0, 1.0)
    else:
        lo, hi = intensity_range
    scale = 255.0 / max(float(hi) - float(lo), 1e-12)
    return np.clip(np.nan_to_num((data - lo) * scale), 0, 255).astype(np.uint8)


def _canvas(frame8: np.ndarray, factor: int, size: tuple[int, int]) -> np.ndarray:
    big = np.repeat(np.repeat(frame8, factor, axis=0), factor, axis=1) if factor > 1 else frame8
    out = np.zeros((size[1], size[0]), np.uint8)
    out[: big.shape[0], : big.shape[1]] = big
    return out


def write_movie(
    frames: Iterable,
    times: Iterable | None,
    out: str | Path,
    annotations: pl.DataFrame | None = None,
    *,
    fps: float = 10.0,
    station: str = "",
    intensity_range: tuple[float, float] | None = None,
    min_height: int = 480,
    annotation_tolerance_s: float = 1.0,
    quality: int = 7,
) -> MovieResult:
    """Write an annotated MP4 of ``frames`` (with ``times``, or ``(time, frame)`` pairs) to ``out``.

    ``annotations``: a predictions table (``time, pred[, p_aurora]``); each frame shows the row
    nearest in time within ``annotation_tolerance_s`` (else "no prediction"). Returns the frame count
    and the duration ``n_frames / fps`` (s). Raises ValueError for no frames or a frame of another shape.
    """
    import imageio_ffmpeg
    from PIL import Image, ImageDraw, ImageFont

    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"{out}: movie output must end in .mp4")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"fps must be between {MIN_FPS:g} and {MAX_FPS:g} frames per second, got {fps:g}")
    out.parent.mkdir(parents=True, exist_ok=True)
    annotator = _Annotator(annotations, station, annotation_tolerance_s)
    writer = None
    n = 0
    with atomic_path(out, create=False) as tmp:  # ffmpeg creates the file and picks the format by its .mp4 name
        try:
            for index, (time, frame) in enumerate(timed_frames(frames, times)):
                if writer is None:
                    shape = frame.shape
                    factor = max(1, int(np.ceil(min_height / shape[0])))
                    size = tuple(-(-d * factor // _BLOCK) * _BLOCK for d in (shape[1], shape[0]))  # (width, height)
                    font = ImageFont.load_default(size=max(12, size[1] // 28))
                    writer = imageio_ffmpeg.write_frames(
                        str(tmp),
                        size,
                        pix_fmt_in="gray",
                        fps=fps,
                        quality=quality,
                        macro_block_size=1,
                        ffmpeg_log_level="error",
                    )
                    writer.send(None)
                elif frame.shape != shape:
                    raise ValueError(
                        f"frame {index} ({time}): shape {frame.shape} differs from the first frame's {shape}"
                    )
                image = Image.fromarray(_canvas(to_display_uint8(frame, intensity_range), factor, size))
                draw = ImageDraw.Draw(image)
                draw.multiline_text(
                    (8, 6), "\n".join(annotator.lines(time)), fill=255, font=font, stroke_width=2, stroke_fill=0
                )
                writer.send(np.ascontiguousarray(np.asarray(image)))
                n += 1
            if writer is None:
                raise ValueError(f"{out}: no frames to write")
            writer.close()
            writer = None
        finally:
            if writer is not None:
                writer.close()
    return MovieResult(out, n, n / fps)
