"""Every figure function renders on small inputs built directly (no feature extraction) and is fit
for a paper: no two texts overlap and none leaves the figure (renderer text extents), every axes
with tick labels has an axis label, titles are non-empty and say when, time axes are UTC dates,
legends do not cover data, gaps are gaps, fractions come with counts."""

from __future__ import annotations

import datetime as dt
import re
from unittest.mock import patch

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from tame_assets.labels import OATH_CLASSES

TOLERANCE_PX = 1.5
YEAR = re.compile(r"\b(19|20)\d\d\b")


# ------------------------------------------------------------------------------------ checker
def drawn_texts(fig) -> list[tuple[Text, object]]:
    """(Text, window extent) of every non-empty Text artist actually drawn by ``fig.canvas.draw()``
    (tick labels, titles, axis labels, legend texts, annotations)."""
    drawn = []
    original = Text.draw

    def recording_draw(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    with patch.object(Text, "draw", recording_draw):
        fig.canvas.draw()
    return drawn


def text_overlaps(fig, tol: float = TOLERANCE_PX) -> list[str]:
    """Pairs of drawn texts whose extents overlap by more than ``tol`` px in both directions, and
    texts reaching outside the figure."""
    texts = drawn_texts(fig)
    problems = []
    box = fig.bbox
    for t, e in texts:
        lines = [line for line in t.get_text().splitlines() if line.strip()]
        if len(set(lines)) < len(lines):
            problems.append(f"repeated lines in one text: {t.get_text()!r}")
        if e.x0 < box.x0 - tol or e.y0 < box.y0 - tol or e.x1 > box.x1 + tol or e.y1 > box.y1 + tol:
            problems.append(f"outside the figure: {t.get_text()!r} {e.bounds}")
    for i, (t1, e1) in enumerate(texts):
        for t2, e2 in texts[i + 1 :]:
            w = min(e1.x1, e2.x1) - max(e1.x0, e2.x0)
            h = min(e1.y1, e2.y1) - max(e1.y0, e2.y0)
            if w > tol and h > tol:
                problems.append(f"overlap: {t1.get_text()!r} × {t2.get_text()!r}")
    return problems


MIN_FONT_PT = 8.0


def small_texts(fig, min_pt: float = MIN_FONT_PT) -> list[str]:
    """Drawn texts (captions, tick labels, legends, contour labels) smaller than ``min_pt`` points."""
    return [
        f"{t.get_fontsize():g} pt text: {t.get_text()!r}"
        for t, _ in drawn_texts(fig)
        if t.get_fontsize() < min_pt - 1e-6
    ]


def _has_ticklabels(axis) -> bool:
    return any(t.get_visible() and t.get_text().strip() for t in axis.get_ticklabels())


def unlabelled_axes(fig) -> list[str]:
    """Axes (or colour bars) showing tick labels without an axis label; image tiles without ticks pass.
    (Call after the figure was drawn.)"""
    problems = []
    for ax in fig.axes:
        if not ax.axison:
            continue
        colorbar = getattr(ax, "_colorbar", None)
        if colorbar is not None:
            axis = ax.yaxis if colorbar.orientation == "vertical" else ax.xaxis
            if not axis.get_label_text().strip():
                problems.append("colour bar without a label")
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if _has_ticklabels(axis) and not axis.get_label_text().strip():
                problems.append(f"{name} axis without a label in axes titled {ax.get_title()!r}")
    return problems


def figure_title(fig) -> str:
    """The figure's overall title: its suptitle, else the title of its only axes."""
    if fig._suptitle is not None and fig._suptitle.get_text().strip():
        return fig._suptitle.get_text()
    data_axes = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is None]
    return data_axes[0].get_title() if len(data_axes) == 1 else ""


def legend_covers_data(fig) -> list[str]:
    """Legends inside an axes whose box covers a plotted point, line vertex, bar or scatter marker.
    (Call after the figure was drawn.)"""
    renderer = fig.canvas.get_renderer()
    problems = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        for artist in ax.get_children():
            if isinstance(artist, Line2D) and artist.get_visible():
                xy = np.column_stack(
                    [
                        mdates.date2num(v)
                        if np.issubdtype(np.asarray(v).dtype, np.datetime64)
                        else np.asarray(v, float)
                        for v in artist.get_data()
                    ]
                )
                pts = artist.get_transform().transform(xy[np.isfinite(xy).all(axis=1)])
            elif isinstance(artist, PathCollection):
                pts = artist.get_offset_transform().transform(artist.get_offsets())
            elif isinstance(artist, Rectangle) and artist is not ax.patch and artist.get_height():
                e = artist.get_window_extent(renderer)
                if box.overlaps(e):
                    problems.append(f"legend over a bar in {ax.get_title()!r}")
                continue
            else:
                continue
            inside = (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
            if inside.any():
                problems.append(
                    f"legend over {int(inside.sum())} data point(s) of {artist.get_label()!r} in {ax.get_title()!r}"
                )
    return problems


def date_axes(fig) -> list:
    """Axes whose x axis shows dates (a matplotlib.dates formatter)."""
    kinds = (mdates.DateFormatter, mdates.ConciseDateFormatter, mdates.AutoDateFormatter)
    return [ax for ax in fig.axes if isinstance(ax.xaxis.get_major_formatter(), kinds)]


def assert_fit_for_paper(fig, time_axis: bool = False, when: bool = True):
    """All checks above (one draw); ``time_axis``: the figure must have a UTC date axis; ``when``:
    its title must name a year."""
    problems = text_overlaps(fig)  # draws the figure
    problems += unlabelled_axes(fig) + legend_covers_data(fig) + small_texts(fig)
    title = figure_title(fig)
    if not title.strip():
        problems.append("no figure title")
    elif when and not YEAR.search(title):
        problems.append(f"title does not say when: {title!r}")
    if time_axis:
        axes = date_axes(fig)
        if not axes:
            problems.append("no UTC date axis")
        for ax in axes:
            if _has_ticklabels(ax.xaxis) and "UTC" not in ax.get_xlabel():
                problems.append(f"date axis label does not say UTC: {ax.get_xlabel()!r}")
    plt.close(fig)
    assert not problems, "\n".join(problems)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ----------------------------------------------------------------------------- synthetic inputs
def _times(n: int, nights: int = 3, step_s: int = 60) -> list[dt.datetime]:
    """``n`` image times at ``step_s`` cadence from 18 UTC, spread over ``nights`` nights in Dec 2010."""
    per = int(np.ceil(n / nights))
    return [dt.datetime(2010, 12, 3 + i // per, 18) + dt.timedelta(seconds=step_s * (i % per)) for i in range(n)]


def predictions_table(n: int = 72, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(len(OATH_CLASSES), 0.6), size=n)
    times = _times(n)
    return pl.DataFrame(
        {
            "time": times,
            "station": ["nya4"] * n,
            "file_name": [f"nya4_{t:%Y%m%d_%H%M%S}_5577.png" for t in times],
            "pred": [OATH_CLASSES[i] for i in proba.argmax(axis=1)],
            **{f"p_{c}": proba[:, j] for j, c in enumerate(OATH_CLASSES)},
            "p_aurora": proba[:, :3].sum(axis=1),
            "local_path": [f"img{i}" for i in range(n)],
        }
    )


def fake_image(path: str, size: int = 48) -> np.ndarray:
    """A sky-like disc with a brightness set by the path (fast stand-in for decoding a file)."""
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    level = (sum(map(ord, path)) % 7 + 1) / 8
    return np.where(xx**2 + yy**2 < 1, level * np.exp(-4 * (yy - 0.2) ** 2), 0.0)


def ceilometer_matches(n: int = 400, seed: int = 1) -> pl.DataFrame:
    """An ``asim_ceilometer``-like table: cloudy rows at CBHs from 0 to 8 km (a few sparse bins)."""
    rng = np.random.default_rng(seed)
    preds = predictions_table(n, seed)
    cloud = rng.random(n) < 0.6
    cbh = np.where(cloud, rng.gamma(2.0, 900.0, n), np.nan)
    cbh[:3] = [7450.0, 7480.0, 7900.0]  # bins of 1–2 images
    cloud[:3] = True
    p_cloudy = np.clip(np.where(cloud & (cbh < 2000), 0.7, 0.2) + rng.normal(0, 0.2, n), 0, 1)
    return preds.with_columns(
        pl.Series("p_cloudy", p_cloudy),
        pl.Series("cloud_detected", cloud),
        pl.Series("cbh_m", cbh).fill_nan(None),
        pl.Series("missing", np.zeros(n, bool)),
    )


def magnetometer_rows(n: int = 330, seed: int = 2) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    h = 40 * np.sin(t / 25) + rng.normal(0, 5, n)
    features = np.column_stack([h / 40 + rng.normal(0, 0.3, n) for _ in range(3)] + [rng.normal(size=(n, 5))])
    return pl.DataFrame(
        {
            "time": _times(n),
            "pred": ["arc"] * n,
            "h_nt": 10_000 + h,
            "features": features.tolist(),
            "cloud_detected": [False] * n,
            "cbh_m": [None] * n,
        },
        schema_overrides={"cbh_m": pl.Float64},
    )


def magnetometer_month(gap: bool = True) -> pl.DataFrame:
    """Two days of 1-minute X/Y/Z/H (nT) with a 6-hour hole (no rows) and a 2-hour run of NULLs."""
    times = [dt.datetime(2010, 12, 1) + dt.timedelta(minutes=m) for m in range(2 * 1440)]
    if gap:
        times = times[:600] + times[960:]
    n = len(times)
    t = np.arange(n)
    x = 10_500 + 30 * np.sin(t / 200)
    nulls = np.zeros(n, bool)
    if gap:
        nulls[1500:1620] = True
    col = lambda v: pl.Series(np.where(nulls, np.nan, v)).fill_nan(None)  # noqa: E731
    return pl.DataFrame(
        {
            "time": times,
            "station": ["NAL"] * n,
            "x_nt": col(x),
            "y_nt": col(x * 0.1),
            "z_nt": col(x * 5),
            "h_nt": col(np.hypot(x, x * 0.1)),
        }
    )


def svm_search_table() -> pl.DataFrame:
    rows = []
    for C in np.logspace(-3, 3, 13):
        rows.append(
            {
                "kernel": "linear",
                "C": C,
                "gamma": None,
                "acc6_mean": 0.6 + 0.02 * np.log10(C + 1),
                "acc6_std": 0.02,
                "acc2_mean": 0.9,
                "acc2_std": 0.01,
            }
        )
        for g in np.logspace(-5, 0, 11):
            rows.append(
                {
                    "kernel": "rbf",
                    "C": C,
                    "gamma": g,
                    "acc6_mean": 0.5 + 0.1 * np.exp(-abs(np.log10(g) + 3)),
                    "acc6_std": 0.02,
                    "acc2_mean": 0.9,
                    "acc2_std": 0.01,
                }
            )
    return pl.DataFrame(rows)


def benchmark_table() -> pl.DataFrame:
    rows = [
        {"backbone": b, "feature_kind": k, "n_images": 300, "s_per_image": s * f, "acc6_mean": a + d, "acc6_std": 0.03}
        for b, s, a in (
            ("efficientnet_lite0", 0.02, 0.71),
            ("efficientnet_lite1", 0.021, 0.72),
            ("efficientnet_lite2", 0.035, 0.74),
        )
        for k, f, d in (("pooled", 1.0, 0.0), ("concat", 1.02, 0.005))
    ]
    return pl.DataFrame(rows)


def occlusion_inputs():
    from tame_assets.analysis.inspection import occlusion_test

    image = fake_image("occluded", 64)

    def predict(images):  # class flips with the image's mean brightness: some tiles change it
        return np.array(
            [
                [0.7, 0.1, 0.1, 0.05, 0.03, 0.02] if im.mean() > 0.12 else [0.1, 0.7, 0.1, 0.05, 0.03, 0.02]
                for im in images
            ]
        )

    table, base = occlusion_test(image, predict, OATH_CLASSES)
    return image, table, base


def build(name: str):
    """The named figure (as saved by its asset) rendered on the small inputs above."""
    from tame_assets.analysis import cloud_validation as cv
    from tame_assets.analysis import figures, inspection, magnetometer_model

    if name == "confidence_galleries":
        return inspection.confidence_gallery(predictions_table(), fake_image)[0]
    if name.startswith("cloud_") and name != "cloud_examples":
        return cv.cloud_validation_figures(cv.cloud_validation(ceilometer_matches()))[name]
    if name == "cloud_examples":
        return cv.cloud_examples_figure(cv.cloud_examples(ceilometer_matches()), fake_image)
    if name.startswith("magnetometer_model"):
        result = magnetometer_model.magnetometer_model(magnetometer_rows())
        return magnetometer_model.magnetometer_figures(result, magnetometer_station="NAL")[name]
    if name.startswith("svm_"):
        return figures.svm_hyperparameter_figures(svm_search_table())[name]
    if name == "backbone_tradeoff":
        return figures.backbone_tradeoff_figure(benchmark_table())
    if name == "magnetometer_quicklook":
        return figures.magnetometer_quicklook_figure(magnetometer_month(), "NAL", "2010-12")
    if name == "umap_clusters":
        rng = np.random.default_rng(0)
        embedding = np.concatenate([rng.normal(c, 0.4, (40, 2)) for c in ((0, 0), (3, 1), (1, 4), (5, 5), (-2, 3))])
        preds = predictions_table(len(embedding))
        return inspection.cluster_figure(
            embedding,
            preds["pred"].to_list(),
            [fake_image(p) for p in preds["local_path"]],
            examples=12,
            times=preds["time"],
            station="nya4",
        )
    if name == "labelled_set_confusion":
        names = ["arc", "diffuse", "discrete", "aurora-less"]
        return figures.confusion_matrices_figure(
            {"efficientnet_lite0 / pooled": np.eye(4) * 40 + 3, "efficientnet_lite2 / pooled": np.eye(4) * 50 + 1},
            names,
            title="Labelled set, 5-fold CV",
        )
    if name == "occlusion_test":
        image, table, base = occlusion_inputs()
        return inspection.occlusion_figure(image, table, base, OATH_CLASSES, image_label="nya4 2010-12-03 18:00:07 UTC")
    if name in ("keogram", "keogram_two_nights", "auroral_map", "daily_summary"):
        return product_figure(name)
    raise KeyError(name)


def product_figure(name: str):
    """The product figures (keogram, auroral map, daily summary) on the products tests' synthetic sky."""
    from tame_assets.products.keogram import keogram_array, keogram_figure
    from tame_assets.products.projection import grid_for_skymaps, map_caption, map_figure, project_frame
    from tame_assets.products.summary import daily_summary_figure
    from tame_assets_tests.products.test_products import DAY, summary_inputs
    from tame_assets_tests.synthetic_skymap import ideal_skymap

    sky = ideal_skymap(48, 62.4, -145.2)
    if name.startswith("keogram"):
        t0 = np.datetime64("2011-01-06T17:00", "us")
        seconds = np.arange(0, 3600, 30)
        if name == "keogram_two_nights":
            seconds = np.r_[seconds, 8 * 86400 + np.arange(0, 900, 30)]
        frames = [np.random.default_rng(int(s)).integers(0, 4000, (48, 48)).astype(np.uint16) for s in seconds]
        keo = keogram_array(frames, t0 + seconds * np.timedelta64(1, "s"), sky, bin_deg=0.25)
        return keogram_figure(keo, station="GAKO", wavelength="white light")
    if name == "auroral_map":
        grid = grid_for_skymaps([sky], lat_step_deg=0.2)
        image = project_frame(np.arange(48 * 48, dtype=np.uint16).reshape(48, 48), sky, grid, "nearest")
        return map_figure(
            image,
            grid,
            stations="GAKO",
            time=dt.datetime(2011, 1, 6, 17, 0, 33),
            product="auroral map",
            caption=map_caption("moon", 0.24, False, 110),
        )
    keo, predictions, ceilometer, magnetometer = summary_inputs()
    return daily_summary_figure(keo, predictions, ceilometer, magnetometer, "NYA", DAY)


#: figure name → (has a UTC time axis, title must name a year)
FIGURES = {
    "confidence_galleries": (False, True),
    "cloud_roc": (False, True),
    "cloud_accuracy_threshold": (False, True),
    "cloud_daily_clear_fraction": (True, True),
    "cloud_class_fractions_by_cbh": (False, True),
    "cloud_examples": (False, True),
    "magnetometer_model_series": (True, True),
    "magnetometer_model_scatter": (False, True),
    "svm_linear_accuracy": (False, False),
    "svm_rbf_map": (False, False),
    "backbone_tradeoff": (False, False),
    "magnetometer_quicklook": (True, True),
    "umap_clusters": (False, True),
    "labelled_set_confusion": (False, False),
    "occlusion_test": (False, True),
    "keogram": (True, True),
    "keogram_two_nights": (True, True),
    "auroral_map": (False, True),
    "daily_summary": (True, True),
}


# ------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_is_fit_for_a_paper(name):
    time_axis, when = FIGURES[name]
    assert_fit_for_paper(build(name), time_axis=time_axis, when=when)


def test_checker_catches_the_old_bugs():
    """The checks fail on the defects the figures used to have (so passing them means something)."""
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    for _ in range(3):  # the old gallery header: appended once per class row
        axes[0].set_title("lowest confidence\n" + axes[0].get_title())
    axes[1].text(0.5, 0.5, "one label"), axes[1].text(0.5, 0.5, "another label")
    problems = text_overlaps(fig)
    assert any("repeated lines" in p for p in problems) and any("overlap" in p for p in problems)
    plt.close(fig)

    fig, ax = plt.subplots()
    ax.imshow(np.random.default_rng(0).random((4, 4)))
    ax.set(xlabel="C", ylabel="γ", title="RBF map 2010")
    fig.colorbar(ax.images[0], ax=ax)  # no label, as svm_rbf_map had
    fig.canvas.draw()
    assert unlabelled_axes(fig) == ["colour bar without a label"]
    plt.close(fig)

    fig, ax = plt.subplots()  # legend on the data, index instead of time (old magnetometer_model_series)
    ax.plot(np.arange(50), np.full(50, 1.0), label="observed")
    ax.legend(loc="center left")
    ax.set(xlabel="image index", ylabel="nT", title="raw 2010")
    fig.canvas.draw()
    assert legend_covers_data(fig) and not date_axes(fig)
    with pytest.raises(AssertionError, match="no UTC date axis"):
        assert_fit_for_paper(fig, time_axis=True)

    fig, ax = plt.subplots()
    ax.plot(_times(10), np.arange(10))
    ax.set(ylabel="nT", xlabel="time", title="Magnetometer")  # date axis not labelled UTC, no year in title
    with pytest.raises(AssertionError, match="(?s)does not say when.*does not say UTC"):
        assert_fit_for_paper(fig, time_axis=True)


def _drawn(fig) -> list[str]:
    return [t.get_text() for t, _ in drawn_texts(fig)]


def test_confidence_gallery_headers_once_tiles_dated_and_numbers_named():
    from tame_assets.analysis.inspection import confidence_gallery

    preds = predictions_table()
    fig, picked = confidence_gallery(preds, fake_image, per_class=3)
    texts = _drawn(fig)
    for kind in ("lowest confidence", "highest confidence", "highest entropy"):
        assert sum(t.startswith(kind) for t in texts) == 1, kind
    # every tile names its station and UTC date and time (two caption lines, ≥ 8 pt: small_texts)
    stamps = [t.replace("\n", " ") for t in texts if re.fullmatch(r"nya4 \d{4}-\d\d-\d\d\n\d\d:\d\d:\d\d", t)]
    assert len(stamps) == picked.height == 3 * 3 * len(OATH_CLASSES)
    expected = {"nya4 " + str(t).replace("T", " ")[:19] for t in picked["time"].cast(pl.Utf8)}
    assert set(stamps) == expected
    assert not small_texts(fig)
    assert sum(t.startswith("conf ") for t in texts) == 2 * 3 * len(OATH_CLASSES)
    assert sum(t.startswith("H ") for t in texts) == 3 * len(OATH_CLASSES)
    assert "confidence = max class probability" in " ".join(texts) and "entropy" in fig._suptitle.get_text()
    plt.close(fig)


def test_cbh_bins_show_counts_and_hatch_sparse_bins():
    from tame_assets.analysis.cloud_validation import MIN_BIN_IMAGES, cloud_validation, cloud_validation_figures

    result = cloud_validation(ceilometer_matches())
    bins = result.class_fractions_by_cbh
    assert (bins["n"] < MIN_BIN_IMAGES).any() and (bins["n"] >= MIN_BIN_IMAGES).any()
    fig = cloud_validation_figures(result)["cloud_class_fractions_by_cbh"]
    fractions, counts = fig.axes[:2]
    heights = sorted(round(p.get_height()) for p in counts.patches)
    assert heights == sorted(bins["n"].to_list())
    assert "images" in counts.get_ylabel()
    hatched = sorted(p.get_x() for p in fractions.patches if p.get_hatch())
    assert np.allclose(hatched, sorted(bins.filter(pl.col("n") < MIN_BIN_IMAGES)["cbh_bin_m"].to_list()))
    plt.close(fig)


def _shaded_spans(ax) -> list:
    """x extents (matplotlib date numbers) of the gap shading in ``ax``."""
    from matplotlib.colors import to_rgb

    from tame_assets.analysis.figures import GAP_COLOUR

    return sorted(
        (round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6))
        for p in ax.patches
        if to_rgb(p.get_facecolor()) == to_rgb(GAP_COLOUR)
    )


def test_magnetometer_quicklook_names_baseline_and_shows_gaps():
    from tame_assets.analysis.figures import gap_intervals, magnetometer_quicklook_figure

    month = magnetometer_month()
    valid = month["x_nt"].is_not_null().to_numpy()
    gaps = gap_intervals(month["time"], valid, 180)
    assert len(gaps) == 2  # the 6-hour hole and the 2-hour NULL run
    assert [round(float((b - a) / np.timedelta64(1, "m"))) for a, b in gaps] == [361, 121]
    fig = magnetometer_quicklook_figure(month, "NAL", "2010-12")
    x_median = month["x_nt"].median()
    assert "monthly median" in fig._suptitle.get_text() and f"X {x_median:,.0f}" in fig._suptitle.get_text()
    assert all("median" in ax.get_ylabel() and "nT" in ax.get_ylabel() for ax in fig.axes)
    fig.canvas.draw()
    for ax in fig.axes:
        assert np.isnan(np.asarray(ax.get_lines()[0].get_ydata(), float)).sum() == 2  # the line breaks twice
        spans = _shaded_spans(ax)  # both gaps and the rest of the month after the two days
        expected = [(mdates.date2num(a), mdates.date2num(b)) for a, b in gaps]
        expected.append((mdates.date2num(month["time"].max()), mdates.date2num(dt.datetime(2011, 1, 1))))
        assert np.allclose(spans, sorted(expected), atol=1e-6)
    plt.close(fig)


def test_magnetometer_quicklook_on_real_boulder_minutes(real_dir):
    from tame_assets.analysis.figures import magnetometer_quicklook_figure
    from tame_assets.sources.magnetometer import parse_iaga2002

    files = sorted((real_dir / "magnetometer").glob("bou2014110*vmin.min"))
    table = pl.concat([parse_iaga2002(f) for f in files])
    fig = magnetometer_quicklook_figure(table, "BOU", "2014-11")
    fig.canvas.draw()
    ax = fig.axes[0]
    assert not np.isnan(np.asarray(ax.get_lines()[0].get_ydata(), float)).any()  # 7 complete days: no break
    assert _shaded_spans(ax) == [
        tuple(np.round(mdates.date2num([dt.datetime(2014, 11, 7, 23, 59), dt.datetime(2014, 12, 1)]), 6))
    ]
    assert_fit_for_paper(fig, time_axis=True)


def test_smoothing_stays_inside_blocks_and_leaves_edges_out():
    from scipy.signal import savgol_filter

    from tame_assets.analysis.magnetometer_model import SG_WINDOW, contiguous_blocks, smooth_in_blocks

    split = np.array(["test"] * 60 + ["train"] * 200 + ["test"] * 30)
    blocks = contiguous_blocks(split)
    assert list(np.unique(blocks)) == [0, 1, 2]
    rng = np.random.default_rng(0)
    values = np.where(split == "train", 100.0, 0.0) + rng.normal(0, 1, split.size)
    smooth = smooth_in_blocks(values, blocks)
    half = SG_WINDOW // 2
    first = savgol_filter(values[:60], SG_WINDOW, 5)
    assert np.allclose(smooth[half : 60 - half], first[half : 60 - half])
    assert np.isnan(smooth[:half]).all() and np.isnan(smooth[60 - half : 60 + half]).all()
    assert np.isnan(smooth[260:]).all()  # block of 30 < window: nothing smoothed
    assert np.nanmax(np.abs(smooth[:60])) < 5  # the 100 nT step of the next block does not leak in


def test_model_smoothed_scores_count_only_smoothed_rows():
    from tame_assets.analysis.magnetometer_model import SG_WINDOW, magnetometer_model

    result = magnetometer_model(magnetometer_rows())
    s = result.series
    test = s.filter(pl.col("split") == "test")
    blocks = [n for n in (result.train_start, result.n_rows - result.train_start - result.n_train) if n]
    expected = sum(max(n - 2 * (SG_WINDOW // 2), 0) for n in blocks)
    assert result.scores["smoothed_test"]["n"] == expected == test["h_obs_smoothed_nt"].drop_nulls().len()
    assert result.scores["raw_test"]["n"] == test.height


def test_umap_thumbnails_stay_off_the_scatter_and_title():
    fig = build("umap_clusters")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    scatter = next(ax for ax in fig.axes if ax.collections)
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == 12
    title = fig._suptitle.get_window_extent(renderer)
    for tile in tiles:
        box = tile.get_tightbbox(renderer)
        assert not box.overlaps(scatter.get_tightbbox(renderer)) and not box.overlaps(title)
    assert not [a for a in scatter.texts if getattr(a, "arrow_patch", None) is not None]  # no leader lines
    numbers = sorted(int(t.get_text()) for t in scatter.texts)
    assert numbers == list(range(1, 13))
    # each thumbnail names its station and UTC time, in captions of at least 8 pt
    for tile in tiles:
        caption = tile.xaxis.label
        assert re.fullmatch(r"nya4 \d{4}-\d\d-\d\d\n\d\d:\d\d:\d\d UTC", caption.get_text()), caption.get_text()
        assert caption.get_fontsize() >= MIN_FONT_PT and tile.title.get_fontsize() >= MIN_FONT_PT
    plt.close(fig)


def test_cloud_examples_per_category_with_time_and_class():
    from tame_assets.analysis.cloud_validation import CBH_CATEGORIES, NO_CLOUD, cloud_examples, cloud_examples_figure

    table = ceilometer_matches()
    examples = cloud_examples(table, per_category=3)
    for label, low, high in CBH_CATEGORIES:
        rows = examples.filter(pl.col("cloud_category") == label)
        assert 1 <= rows.height <= 3 and rows["cloud_detected"].all()
        assert ((rows["cbh_m"] >= low) & (rows["cbh_m"] < high)).all()
    clear = examples.filter(pl.col("cloud_category") == NO_CLOUD)
    assert clear.height == 3 and not clear["cloud_detected"].any()
    n_clear = int((~table["cloud_detected"]).sum())
    assert clear["n_in_category"][0] == n_clear
    fig = cloud_examples_figure(examples, fake_image, per_category=3)
    texts = _drawn(fig)
    for row in examples.iter_rows(named=True):
        assert f"{row['station']} {row['time']:%Y-%m-%d %H:%M:%S}" in texts  # station and UTC time
        assert any(t.startswith(f"{row['pred']}, P(cloudy) {row['p_cloudy']:.2f}") for t in texts)  # words, not columns
    assert f"{NO_CLOUD}\n({n_clear} images)" in texts
    assert_fit_for_paper(fig)


def test_cloud_examples_need_a_ceilometer_match():
    from tame_assets.analysis.cloud_validation import cloud_examples

    table = ceilometer_matches(20).with_columns(pl.lit(True).alias("missing"))
    with pytest.raises(ValueError, match="no image has a usable ceilometer match"):
        cloud_examples(table)


def test_cloud_examples_on_real_images(real_dir, tmp_path):
    """Real 16-bit Ny-Ålesund frames at their real times (ceilometer values synthetic): the figure
    decodes them, dates each tile and is saved as PNG and SVG."""
    from PIL import Image

    from tame_assets.analysis.cloud_validation import cloud_examples, cloud_examples_figure
    from tame_assets.analysis.figures import save_figure

    folder = real_dir / "uio_asi_nya6"
    labels = pl.read_csv(folder / "labels.csv", try_parse_dates=True).head(80)
    n = labels.height
    table = ceilometer_matches(n).with_columns(
        labels["datetime_utc"].alias("time"),
        labels["filename"].alias("file_name"),
        pl.Series("local_path", [str(folder / "images" / f) for f in labels["filename"]]),
        pl.lit("nya6").alias("station"),
    )

    def load(path):
        with Image.open(path) as im:
            a = np.asarray(im, dtype=np.float32)
        return a / max(np.percentile(a, 99.5), 1)

    examples = cloud_examples(table)
    fig = cloud_examples_figure(examples, load)
    assert "nya6" in fig._suptitle.get_text()
    files = save_figure(fig, tmp_path, "cloud_examples")
    assert files.png.stat().st_size > 10_000 and files.svg.read_text().startswith("<?xml")
