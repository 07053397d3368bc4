"""The rolling daily summary figure of the live day: drawn from the live rows, redrawn with new frames,
never stopping the live path."""

import datetime as dt
import logging

import numpy as np
import polars as pl
from PIL import Image

from tame_assets.live import runner as runner_module
from tame_assets.live.runner import LiveRunner
from tame_assets.live.summary import live_summary_figure
from tame_assets_tests.live.conftest import deliver


def live_rows(day: dt.date) -> pl.DataFrame:
    """Live rows of one night: a frame every 10 s 18:00–20:00 and 21:00–22:00 UTC (a gap), the last
    frame unreadable, H on half of them, a cloud base on a few."""
    start = dt.datetime.combine(day, dt.time(18))
    times = [start + dt.timedelta(seconds=10 * i) for i in range(720)]
    times += [start + dt.timedelta(hours=3, seconds=10 * i) for i in range(360)]
    n = len(times)
    rng = np.random.default_rng(0)
    p = np.clip(np.sin(np.linspace(0, 6, n)) * 0.5 + 0.5 + rng.normal(0, 0.05, n), 0, 1)
    ok = np.ones(n, bool)
    ok[-1] = False
    return pl.DataFrame(
        {
            "network": "uio",
            "station": "NYA",
            "time": times,
            "file": [f"f{i}.png" for i in range(n)],
            "frame_index": pl.Series([0] * n, dtype=pl.Int32),
            "pred": [("arc" if v > 0.5 else "clear") if k else None for v, k in zip(p, ok)],
            "p_aurora": np.where(ok, p, np.nan),
            "p_arc": p,
            "p_clear": 1 - p,
            "p_aurora_calibrated": np.where(ok, p**2, np.nan),
            "cloud_detected": [True if 200 <= i < 260 else None for i in range(n)],
            "cbh_m": [800.0 if 200 <= i < 260 else None for i in range(n)],
            "h_nt": [8000.0 - i * 0.1 if i % 2 == 0 else None for i in range(n)],
            "ok": ok,
            "day": [day] * n,
        }
    ).with_columns(pl.col("p_aurora", "p_aurora_calibrated").fill_nan(None))


def test_live_summary_figure_title_panels_and_calibrated_line():
    import matplotlib.pyplot as plt

    day = dt.date(2010, 12, 1)
    fig = live_summary_figure(live_rows(day), "NYA", day)
    try:
        title = fig.get_suptitle()
        assert "NYA" in title and "2010-12-01" in title and "live, 1079 frames (1 unreadable)" in title
        assert "latest frame 21:59:50 UTC" in title
        labels = {a.get_ylabel() for a in fig.axes}
        assert "Cloud base\nheight (m)" in labels and any(label.startswith("H − median (nT)") for label in labels)
        (ax,) = [a for a in fig.axes if a.get_ylabel().startswith("P(aurora)")]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[-2:] == ["P(aurora)", "P(aurora), calibrated"] and "arc" in legend
        assert fig.axes[-1].get_xlabel() == "Time (UTC)"
    finally:
        plt.close(fig)


def test_daily_summary_is_written_redrawn_and_a_failure_does_not_stop_the_path(
    live_settings, live_classifier, night_frames, tmp_path, monkeypatch, caplog
):
    watch = tmp_path / "watch"
    live = LiveRunner(live_settings, "NYA", watch, classifier_dir=live_classifier, rules=[], keogram_every_s=0)
    png = live_settings.paths.figures_dir / "live" / "NYA_daily_summary.png"
    svg = png.with_suffix(".svg")
    deliver(night_frames[:1], watch)
    results = [live.step() for _ in range(2)]
    assert [r.summary for r in results] == [None, png]
    with Image.open(png) as image:
        assert image.size[0] > 800 and image.size[1] > 800
    assert "Ny-Ålesund (NYA) daily summary, 2010-12-01 (UTC) — live, 1 frame;" in svg.read_text()
    first = png.stat()
    assert live.step().summary is None  # nothing new: not redrawn

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(runner_module, "draw_live_summary", broken)
    deliver(night_frames[1:2], watch)
    with caplog.at_level(logging.ERROR):
        results = [live.step() for _ in range(2)]
    assert sum(r.new for r in results) == 1 and results[-1].summary is None  # the row is there, no figure
    assert results[-1].keogram is not None and "live daily summary of NYA not drawn" in caplog.text
    monkeypatch.undo()
    assert live.step().summary == png  # retried on the next poll
    assert png.stat().st_ino != first.st_ino  # atomically replaced
    assert "live, 2 frames;" in svg.read_text()
