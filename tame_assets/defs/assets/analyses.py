"""Analysis layer: the paper's analyses and figures over all materialized months.

Figures are PNG + SVG under ``<data root>/figures/`` with an inline preview and their numbers in
the asset's metadata.
"""

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, asset

from tame_assets.analysis.figures import (
    backbone_tradeoff_figure,
    save_figure,
    svm_hyperparameter_figures,
)
from tame_assets.defs.assets.common import figure_metadata, refreshed_daily, settings_metadata
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource
from tame_assets.defs.tags import GPU_OP_TAGS

ANALYSIS = "analysis"


def _save_all(tame: TameResource, figures: dict) -> list:
    return [save_figure(fig, tame.paths.figures_dir, name) for name, fig in figures.items()]


#: Joins a per-frame table to ``asim_images`` on the frame's identity (a THEMIS file holds many frames).
_FRAME_JOIN = "USING (month, station, file_name, frame_index)"
#: The ``asim_images`` column that locates a frame (with the per-frame table's ``network`` and
#: ``frame_index``, see :func:`_frames_located`).
_FRAME_SOURCE = "i.local_path"


def _frames_located(table: pl.DataFrame) -> pl.DataFrame:
    """``local_path`` replaced by the frame item (``<path>#<index>`` for THEMIS frames)."""
    from tame_assets.sources.frame_reader import frame_items

    return table.with_columns(pl.Series("local_path", frame_items(table), pl.Utf8))


def _load(item: str) -> np.ndarray:
    from tame_assets.sources.frame_reader import grey_frame

    return grey_frame(item)


def _thumbnail(item: str, size: int = 96) -> np.ndarray:
    from tame_assets.ml.preprocessing import resize, scale_to_unit, to_grey

    return resize(scale_to_unit(to_grey(_load(item))), size)


def _primary_station(tame: TameResource) -> list[str]:
    """Query parameters selecting the primary station, the one with the ceilometer and magnetometer
    the paper's analyses compare with (the other stations' frames have no such truth)."""
    return [tame.settings.asi_station]


@asset(
    deps=["asim_ceilometer"],
    group_name=ANALYSIS,
    kinds={"scikitlearn", "matplotlib"},
    automation_condition=refreshed_daily(),
)
def cloud_validation(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Clear-sky detection (1 − p_cloudy) vs ceilometer truth (no cloud or CBH ≥ 2000 m): ROC/AUC,
    accuracy vs threshold, operating points, daily clear fraction, class fractions per CBH bin."""
    from tame_assets.analysis.cloud_validation import cloud_validation as validate
    from tame_assets.analysis.cloud_validation import cloud_validation_figures

    result = validate(tame.warehouse.sql("SELECT * FROM asim_ceilometer WHERE station = ?", _primary_station(tame)))
    path = tame.warehouse.write_partition("cloud_validation_daily", result.daily_clear_fraction)
    tame.warehouse.write_partition("cloud_validation_by_cbh", result.class_fractions_by_cbh)
    context.log.info(f"AUC {result.auc:.3f}, best accuracy {result.best_accuracy:.3f} at {result.best_threshold:.3f}")
    figures = _save_all(tame, cloud_validation_figures(result))
    return MaterializeResult(
        metadata=figure_metadata(
            figures, {**result.numbers(), "report": result.report, "daily_table": path}, context=context
        )
    )


@asset(
    deps=["asim_ceilometer", "asim_images"],
    group_name=ANALYSIS,
    kinds={"matplotlib"},
    automation_condition=refreshed_daily(),
)
def cloud_examples(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Example all-sky frames per ceilometer category (no cloud, cloud base < 2 km, 2–5 km, ≥ 5 km),
    spread evenly in time, each with its UTC time, predicted class and p_cloudy (the paper's
    cloud-example figure)."""
    from tame_assets.analysis.cloud_validation import cloud_examples as pick_examples
    from tame_assets.analysis.cloud_validation import cloud_examples_figure
    from tame_assets.analysis.figures import period_text

    table = _frames_located(
        tame.warehouse.sql(
            f"SELECT c.*, {_FRAME_SOURCE} FROM asim_ceilometer c JOIN asim_images i {_FRAME_JOIN} WHERE station = ?",
            _primary_station(tame),
        )
    )
    examples = pick_examples(table)
    fig = cloud_examples_figure(examples, _thumbnail, period=period_text(table["time"]))
    figures = [save_figure(fig, tame.paths.figures_dir, "cloud_examples")]
    shown = examples.select("cloud_category", "n_in_category", "time", "file_name", "pred", "p_cloudy", "cbh_m")
    return MaterializeResult(metadata=figure_metadata(figures, {"images": shown}, context=context))


@asset(
    deps=["asim_magnetometer", "asim_ceilometer"],
    group_name=ANALYSIS,
    kinds={"scikitlearn", "matplotlib"},
    automation_condition=refreshed_daily(),
)
def magnetometer_model(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Ridge (alpha 1) from features to H − mean(H) at the magnetometer on auroral clear-sky images,
    paper split; MSE/MAE/R² raw and Savitzky–Golay smoothed, all features and greedy subset."""
    from tame_assets.analysis.magnetometer_model import magnetometer_figures
    from tame_assets.analysis.magnetometer_model import magnetometer_model as fit

    table = tame.warehouse.sql(
        "SELECT m.*, c.cbh_m, c.cloud_detected FROM asim_magnetometer m "
        "LEFT JOIN asim_ceilometer c ON c.month = m.month AND c.station = m.station AND c.file_name = m.file_name "
        "AND c.frame_index = m.frame_index WHERE m.station = ?",
        _primary_station(tame),
    )
    numbers, figures, series = {}, [], []
    for subset in ("all", "greedy"):
        result = fit(table, feature_subset=subset)
        numbers[f"{subset}_n_features"] = len(result.features_used)
        for split, scores in result.scores.items():
            for key, value in scores.items():
                numbers[f"{subset}_{split}_{key}"] = value
        figures += _save_all(
            tame, magnetometer_figures(result, f"magnetometer_model_{subset}", tame.settings.magnetometer_station)
        )
        series.append(result.series.with_columns(pl.lit(subset).alias("feature_subset")))
        context.log.info(
            f"{subset}: test R² raw {result.scores['raw_test']['r2']:.3f}, "
            f"smoothed {result.scores['smoothed_test']['r2']:.3f}"
        )
    numbers["n_rows"] = result.n_rows
    tame.warehouse.write_partition("magnetometer_model_series", pl.concat(series))
    return MaterializeResult(metadata=figure_metadata(figures, numbers, context=context))


@warehouse_asset(
    deps=["asim_features", "asim_predictions", "asim_images"],
    group_name=ANALYSIS,
    kinds={"umap", "matplotlib"},
    automation_condition=refreshed_daily(),
)
def umap_embedding(context: AssetExecutionContext) -> pl.DataFrame:
    """2-D UMAP of every image's features (read over all months with SQL), with a cluster figure of
    example images around it; table ``time, station, file_name, pred, umap_x, umap_y``."""
    tame: TameResource = context.resources.tame
    from tame_assets.analysis.inspection import cluster_figure
    from tame_assets.analysis.inspection import umap_embedding as embed

    data = _frames_located(
        tame.warehouse.sql(
            f"SELECT f.time, station, file_name, frame_index, f.network, f.features, p.pred, {_FRAME_SOURCE} "
            "FROM asim_features f "
            f"JOIN asim_predictions p {_FRAME_JOIN} JOIN asim_images i {_FRAME_JOIN} "
            "WHERE f.features IS NOT NULL ORDER BY f.time, station"
        )
    )
    xy = embed(np.asarray(data["features"].to_list(), dtype=np.float32))
    table = data.select("time", "station", "file_name", "pred").with_columns(
        pl.Series("umap_x", xy[:, 0]), pl.Series("umap_y", xy[:, 1])
    )
    fig = cluster_figure(
        xy,
        data["pred"].to_list(),
        _LazyImages({}, data["local_path"].to_list()),
        examples=12,
        times=data["time"],
        station=data["station"].cast(pl.Utf8).to_list(),
    )
    figures = [save_figure(fig, tame.paths.figures_dir, "umap_clusters")]
    context.add_output_metadata(figure_metadata(figures, context=context))
    return table


class _LazyImages:
    """Sequence of thumbnails loaded on first access (only the few shown are decoded)."""

    def __init__(self, cache: dict, paths: list[str]):
        self.cache, self.paths = dict(cache), paths

    def __getitem__(self, i):
        if i not in self.cache:
            self.cache[i] = _thumbnail(self.paths[int(i)])
        return self.cache[i]

    def __len__(self):
        return len(self.paths)


@asset(
    deps=["asim_predictions", "asim_images"],
    group_name=ANALYSIS,
    kinds={"matplotlib"},
    automation_condition=refreshed_daily(),
)
def confidence_galleries(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Per class: lowest/highest-confidence and highest-entropy images."""
    from tame_assets.analysis.inspection import confidence_gallery

    preds = _frames_located(
        tame.warehouse.sql(f"SELECT p.*, {_FRAME_SOURCE} FROM asim_predictions p JOIN asim_images i {_FRAME_JOIN}")
    )
    fig, picked = confidence_gallery(preds, _thumbnail)
    figures = [save_figure(fig, tame.paths.figures_dir, "confidence_galleries")]
    return MaterializeResult(metadata=figure_metadata(figures, {"images": picked}, context=context))


@asset(
    deps=["oath_classifier", "asim_predictions", "asim_images"],
    group_name=ANALYSIS,
    kinds={"pytorch", "matplotlib"},
    op_tags=GPU_OP_TAGS,
    automation_condition=refreshed_daily(),
)
def occlusion_test(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """4×4 occlusion of the most confidently auroral image: where does the prediction change?"""
    from tame_assets.analysis.inspection import occlusion_figure
    from tame_assets.analysis.inspection import occlusion_test as occlude
    from tame_assets.ml.classifier import AsimClassifier
    from tame_assets.ml.features import extract_features

    clf = AsimClassifier.load(tame.paths.classifier_path)
    best = _frames_located(
        tame.warehouse.sql(
            f"SELECT file_name, frame_index, p.network, p.time, {_FRAME_SOURCE}, p.pred, p.p_aurora "
            "FROM asim_predictions p "
            f"JOIN asim_images i {_FRAME_JOIN} WHERE p.pred IS NOT NULL "
            "ORDER BY p.p_aurora DESC, p.time LIMIT 1"
        )
    ).row(0, named=True)
    image = _load(best["local_path"])

    def predict(images):
        result = extract_features(images, backbone=clf.card.backbones[0], feature_kind=clf.card.feature_kind)
        return clf.predict_features(result.features)[1]

    table, base = occlude(image, predict, clf.classes)
    fig = occlusion_figure(image, table, base, clf.classes, image_label=f"{best['file_name']} ({best['time']} UTC)")
    figures = [save_figure(fig, tame.paths.figures_dir, "occlusion_test")]
    changed = int(table["changed"].sum())
    return MaterializeResult(
        metadata=figure_metadata(
            figures, {"image": best["file_name"], "tiles_changing_prediction": changed, "tiles": table}, context=context
        )
    )


@warehouse_asset(group_name=ANALYSIS, kinds={"matplotlib"})
def svm_hyperparameter_maps(context: AssetExecutionContext, svm_search: pl.DataFrame) -> MaterializeResult:
    """Linear SVC accuracy vs C and the RBF C × γ accuracy map from ``svm_search``."""
    tame: TameResource = context.resources.tame
    search = svm_search
    figures = _save_all(tame, svm_hyperparameter_figures(search))
    best = search.sort(
        ["acc6_mean", "kernel", "C", "gamma"], descending=[True, False, False, False], nulls_last=True
    ).row(0, named=True)
    numbers = {"best_kernel": best["kernel"], "best_C": best["C"], "best_acc6_mean": best["acc6_mean"]}
    return MaterializeResult(
        metadata={
            **figure_metadata(figures, numbers, context=context),
            **settings_metadata("svm_hyperparameter_maps", tame.settings),
        }
    )


@warehouse_asset(group_name=ANALYSIS, kinds={"matplotlib"})
def backbone_tradeoff(context: AssetExecutionContext, backbone_benchmark: pl.DataFrame) -> MaterializeResult:
    """Backbone runtime per image vs ridge accuracy."""
    tame: TameResource = context.resources.tame
    bench = backbone_benchmark
    figures = [save_figure(backbone_tradeoff_figure(bench), tame.paths.figures_dir, "backbone_tradeoff")]
    return MaterializeResult(
        metadata={
            **figure_metadata(figures, {"results": bench}, context=context),
            **settings_metadata("backbone_tradeoff", tame.settings),
        }
    )
