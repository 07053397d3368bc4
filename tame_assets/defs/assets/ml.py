"""ML layer: transfer-learning features, backbone benchmark, SVM search, the OATH classifier,
monthly image features and predictions, and the real labelled-set evaluation."""

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from tame_assets.config import OFFLINE_BACKBONES
from tame_assets.defs.assets.common import (
    FORCE_TAG,
    REUSED_METADATA_KEY,
    asset_code_version,
    best_linear_c,
    chunk_logger,
    configured_oath_features,
    extra_metadata,
    figure_metadata,
    follows_new_partitions,
    partition_on_engine,
    progress_logger,
    reused_table,
    settings_metadata,
    station_month_partitions,
    up_to_date_version,
)
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource
from tame_assets.defs.tags import GPU_OP_TAGS
from tame_assets.labels import OATH_CLASSES
from tame_assets.ml.tables import (
    feature_matrix,
    features_frame,
    oath_feature_inputs,
)
from tame_assets.sources.frame_reader import FRAME_KEY_COLUMNS

ML = "ml"


@warehouse_asset(
    group_name=ML, kinds={"pytorch", "parquet"}, op_tags=GPU_OP_TAGS, code_version=asset_code_version("oath_features")
)
def oath_features(context: AssetExecutionContext, oath_images: pl.DataFrame):
    """CNN features of every OATH image for every offline-available backbone and feature kind.

    One row per (backbone, feature_kind, image): pic_num, label, features (FLOAT[]), histogram
    statistics, and the extraction cost (s_per_image, peak_rss_mb) of that backbone.
    """
    tame: TameResource = context.resources.tame
    if (reused := reused_table(context, tame.warehouse, tame.settings)) is not None:
        return reused
    from tame_assets.ml.features import extract_features, logits_from_pooled

    oath = oath_images
    paths, rotations = oath_feature_inputs(oath)
    frames = []
    for backbone, kinds in tame.benchmark_plan().items():
        result = extract_features(
            paths,
            backbone=backbone,
            feature_kind="pooled",
            oath=True,
            rotate_deg=rotations,
            progress=progress_logger(context, f"oath_features {backbone}", every=25),
        )
        context.log.info(f"{backbone}: {result.seconds:.1f} s for {len(paths)} images ({result.precision})")
        for kind in kinds:
            features = logits_from_pooled(backbone, result.features) if kind == "logits" else result.features
            frame = features_frame(result, features).with_columns(
                pl.Series("pic_num", oath["pic_num"]),
                pl.Series("label", oath["label"]),
                pl.lit(backbone).alias("backbone"),
                pl.lit(kind).alias("feature_kind"),
                pl.lit(result.seconds / max(len(paths), 1)).alias("s_per_image"),
                pl.lit(result.peak_rss_mb).alias("peak_rss_mb"),
            )
            frames.append(frame)
    context.add_output_metadata(settings_metadata("oath_features", tame.settings))
    return pl.concat(frames, how="diagonal_relaxed")


@warehouse_asset(group_name=ML, kinds={"scikitlearn", "parquet"}, code_version=asset_code_version("backbone_benchmark"))
def backbone_benchmark(context: AssetExecutionContext, oath_features: pl.DataFrame):
    """Per backbone and feature kind: s/image, peak memory, ridge (alpha 0.03) accuracy under the
    paper's protocol (10 index rotations, 70/30), six-class and binary, mean ± std."""
    tame: TameResource = context.resources.tame
    if (reused := reused_table(context, tame.warehouse, tame.settings)) is not None:
        return reused
    from tame_assets.ml.evaluation import ridge_protocol

    features = oath_features
    rows = []
    for (backbone, kind), group in features.group_by(["backbone", "feature_kind"], maintain_order=True):
        X, y = feature_matrix(group)
        scores = ridge_protocol(X, y, alpha=0.03)
        rows.append(
            {
                "backbone": backbone,
                "feature_kind": kind,
                "s_per_image": float(group["s_per_image"][0]),
                "peak_mem_mb": float(group["peak_rss_mb"][0]),
                **scores,
            }
        )
    table = pl.DataFrame(rows).sort(["acc6_mean", "backbone", "feature_kind"], descending=[True, False, False])
    context.add_output_metadata(
        {**extra_metadata(results=table), **settings_metadata("backbone_benchmark", tame.settings)}
    )
    return table


@warehouse_asset(group_name=ML, kinds={"scikitlearn", "parquet"}, code_version=asset_code_version("svm_search"))
def svm_search(context: AssetExecutionContext, oath_features: pl.DataFrame):
    """Linear SVC over C and RBF SVC over C × γ on the configured backbone's OATH features,
    under the paper's protocol; the best linear C feeds ``oath_classifier``."""
    tame: TameResource = context.resources.tame
    if (reused := reused_table(context, tame.warehouse, tame.settings)) is not None:
        return reused
    from tame_assets.ml.evaluation import svm_search as run_search

    X, y = configured_oath_features(tame, oath_features)
    table, best_c = run_search(X, y, n_jobs=2)
    context.log.info(f"best linear C = {best_c:.3g}")
    context.add_output_metadata(
        {**extra_metadata(best_linear_C=float(best_c)), **settings_metadata("svm_search", tame.settings)}
    )
    return table


@asset(
    deps=["oath_features", "svm_search"],
    group_name=ML,
    kinds={"scikitlearn"},
    code_version=asset_code_version("oath_classifier"),
)
def oath_classifier(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """Linear SVC with probabilities at the best C, evaluated on a class-balanced 30 % held-out set;
    saved with its model card under ``models/oath_classifier/``."""
    from tame_assets.ml.classifier import fit_oath_classifier

    target = tame.paths.classifier_path
    version = up_to_date_version(context, tame.settings)
    if version is not None and target.exists():
        context.log.info(f"oath_classifier is up to date: reusing {target} (run tag {FORCE_TAG}=true recomputes)")
        previous = context.instance.get_latest_materialization_event(context.asset_key).asset_materialization
        return MaterializeResult(metadata={**previous.metadata, REUSED_METADATA_KEY: True}, data_version=version)

    X, y = configured_oath_features(tame)
    best_c = best_linear_c(tame.warehouse)
    settings = tame.settings
    clf, metrics = fit_oath_classifier(
        X,
        y,
        class_names=list(OATH_CLASSES),
        C=best_c,
        seed=0,
        backbone=settings.backbone,
        feature_kind=settings.feature_kind,
    )
    clf.save(target)
    context.log.info(f"held-out accuracy: six-class {metrics['accuracy6']:.3f}, binary {metrics['accuracy2']:.3f}")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(target)),
            "held_out_accuracy_6class": float(metrics["accuracy6"]),
            "held_out_accuracy_binary": float(metrics["accuracy2"]),
            "C": best_c,
            "backbone": settings.backbone,
            "feature_kind": settings.feature_kind,
            "metrics": MetadataValue.json(_jsonable(metrics)),
            "data": "OATH-format set from the configured source (sample data unless source='remote')",
            **settings_metadata("oath_classifier", settings),
        }
    )


@warehouse_asset(
    partitions_def=station_month_partitions,
    group_name=ML,
    kinds={"pytorch", "parquet"},
    op_tags=GPU_OP_TAGS,
    code_version=asset_code_version("asim_features"),
    automation_condition=follows_new_partitions(),
)
def asim_features(context: AssetExecutionContext, asim_images: pl.DataFrame) -> pl.DataFrame:
    """CNN features of every image of the month: one row per ``asim_images`` row (same order).

    Unreadable images keep their row with NULL features and ``ok = false`` and are recorded in
    ``quarantine`` with the reason.
    """
    tame: TameResource = context.resources.tame
    from tame_assets.compute import extract_features_distributed
    from tame_assets.sources.frame_reader import frame_items

    images = asim_images
    with partition_on_engine(context, tame, images) as (partition, settings, engine):
        result = extract_features_distributed(
            frame_items(images),
            engine,
            chunk_frames=settings.compute_settings.chunk_frames,
            backbone=settings.backbone,
            feature_kind=settings.feature_kind,
            progress=progress_logger(context, f"asim_features {partition.label}"),
            on_progress=chunk_logger(context, f"asim_features {partition.label}"),
            max_image_pixels=settings.max_image_pixels,
        )
    table = pl.concat(
        [images.select(FRAME_KEY_COLUMNS), features_frame(result)],
        how="horizontal_extend",
    ).with_columns(pl.lit(settings.backbone).alias("backbone"), pl.lit(settings.feature_kind).alias("feature_kind"))
    failed = table.filter(~pl.col("ok")).select(
        "time", "station", pl.col("file_name").alias("file"), pl.col("error").alias("reason")
    )
    tame.warehouse.record_quarantine("asim_features", partition.month, failed, station=partition.station)
    context.add_output_metadata(extra_metadata(quarantined=failed.height))
    return table


@warehouse_asset(
    partitions_def=station_month_partitions,
    deps=["oath_classifier"],
    group_name=ML,
    kinds={"scikitlearn", "parquet"},
    code_version=asset_code_version("asim_predictions"),
    automation_condition=follows_new_partitions(),
)
def asim_predictions(context: AssetExecutionContext, asim_features: pl.DataFrame) -> pl.DataFrame:
    """Class of every image of the month: pred and p_arc … p_clear, p_aurora (sum of the auroral
    classes). Images without features get NULL pred and their error."""
    tame: TameResource = context.resources.tame
    from tame_assets.compute import classify_features_distributed

    with partition_on_engine(context, tame, asim_features) as (partition, settings, engine):
        table = classify_features_distributed(
            asim_features,
            tame.paths.classifier_path,
            engine,
            expect_backbone=settings.backbone,
            expect_feature_kind=settings.feature_kind,
            keys=FRAME_KEY_COLUMNS,
            chunk_rows=settings.compute_settings.chunk_frames,
            on_progress=chunk_logger(context, f"asim_predictions {partition.label}"),
        )
    counts = dict(table.group_by("pred").len().sort("pred").iter_rows())
    context.add_output_metadata(extra_metadata(class_counts={str(k): v for k, v in counts.items()}))
    return table


@warehouse_asset(deps=["oath_images"], group_name=ML, kinds={"pytorch", "scikitlearn"}, op_tags=GPU_OP_TAGS)
def labelled_set_evaluation(context: AssetExecutionContext) -> pl.DataFrame:
    """Stratified 5-fold CV accuracy (per-label and aurora vs no-aurora, mean ± std) of each offline
    backbone and feature kind on a labelled image set (default: the real UiO Ny-Ålesund set in
    ``../shared`` when present, else the sample's OATH-format set), with confusion-matrix figures;
    plus fine-tuned Lite2 when ``labelled_set_fine_tune`` is set."""
    tame: TameResource = context.resources.tame
    from tame_assets.analysis.figures import confusion_matrices_figure, save_figure
    from tame_assets.ml.finetune import FineTuneConfig
    from tame_assets.ml.labelled_eval import evaluate_labelled_set

    paths, labels, provenance = tame.labelled_set()
    context.log.info(f"labelled set: {len(paths)} images from {provenance}")
    settings = tame.settings
    backbones = list(settings.labelled_set_backbones or settings.benchmark_backbones or OFFLINE_BACKBONES)
    result = evaluate_labelled_set(
        paths,
        labels,
        backbones=backbones,
        feature_kinds=tame.settings.feature_kinds,
        oath="oath_images" in provenance,
        fine_tune=FineTuneConfig() if tame.settings.labelled_set_fine_tune else None,
    )
    table = result.table
    fig = save_figure(
        confusion_matrices_figure(
            result.confusion,
            result.class_names,
            title=f"5-fold CV confusion matrices, labelled set {provenance.rsplit('/', 1)[-1]}",
        ),
        tame.paths.figures_dir,
        "labelled_set_confusion",
    )
    context.add_output_metadata(
        {
            **extra_metadata(results=table, provenance=provenance),
            **figure_metadata([fig], context=context),
            **settings_metadata("labelled_set_evaluation", settings),
        }
    )
    return table


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
