"""Search by example and novelty: the embedding model fitted on the labelled set, per station × month
the frames' embeddings with their novelty, the similarity index with an example montage, and a
check reporting the month's most unusual frames."""

import warnings

import numpy as np
import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    PreviewWarning,
    asset,
    asset_check,
)

from tame_assets.defs.assets.common import (
    Partition,
    configured_oath_features,
    extra_metadata,
    figure_metadata,
    follows_new_partitions,
    settings_metadata,
    station_month_partitions,
)
from tame_assets.defs.io_manager import warehouse_asset
from tame_assets.defs.resources import TameResource
from tame_assets.ml.embeddings import EMBEDDING_MODEL_FILE, EMBEDDING_RECIPE, NOVELTY_MODEL_FILE
from tame_assets.months import month_bounds
from tame_assets.sources.frame_reader import FRAME_KEY_COLUMNS

SEARCH = "search"
#: Frames the novelty check shows; neighbours in the example montage.
NOVELTY_SHOWN = 6
MONTAGE_NEIGHBOURS = 5
#: Share of a month's frames beyond every reference frame (novelty 1.0) above which the check warns:
#: the labelled set does not cover what this station sees.
MAX_BEYOND_REFERENCE = 0.5
CODE_VERSION = f"embedding={EMBEDDING_RECIPE}"


def _models(tame: TameResource):
    from tame_assets.ml.embeddings import EmbeddingModel, NoveltyModel

    folder = tame.paths.models_dir
    if not (folder / EMBEDDING_MODEL_FILE).exists():
        raise FileNotFoundError(f"{folder / EMBEDDING_MODEL_FILE} is missing: materialize embedding_model first")
    return EmbeddingModel.load(folder / EMBEDDING_MODEL_FILE), NoveltyModel.load(folder / NOVELTY_MODEL_FILE)


@asset(deps=["oath_features"], group_name=SEARCH, kinds={"scikitlearn"}, code_version=CODE_VERSION)
def embedding_model(context: AssetExecutionContext, tame: TameResource) -> MaterializeResult:
    """The projection from the configured backbone's features to search embeddings (PCA appearance part
    ⊕ logistic-regression label part, :mod:`tame_assets.ml.embeddings`), fitted on the labelled set the
    classifier learns from (``oath_features``), and the novelty reference (that set's embeddings);
    saved under ``models/``."""
    from tame_assets.ml.embeddings import NoveltyModel, fit_embedding, l2_normalise

    settings = tame.settings
    X, y = configured_oath_features(tame)
    model = fit_embedding(
        X,
        y,
        backbone=settings.backbone,
        feature_kind=settings.feature_kind,
        provenance=f"oath_features ({len(y)} labelled images)",
    )
    novelty = NoveltyModel.fit(l2_normalise(X))  # raw features: see ml/embeddings.py, Novelty
    folder = tame.paths.models_dir
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / EMBEDDING_MODEL_FILE)
    novelty.save(folder / NOVELTY_MODEL_FILE)
    context.log.info(f"embedding {model.version}: {model.dim} dimensions from {len(y)} labelled images")
    return MaterializeResult(
        metadata={
            "embedding_version": model.version,
            "dim": model.dim,
            "labelled_images": len(y),
            "classes": MetadataValue.json(model.classes),
            "path": MetadataValue.path(str(folder / EMBEDDING_MODEL_FILE)),
            **settings_metadata("embedding_model", settings),
        }
    )


@warehouse_asset(
    partitions_def=station_month_partitions,
    deps=["embedding_model"],
    group_name=SEARCH,
    kinds={"parquet"},
    code_version=CODE_VERSION,
    automation_condition=follows_new_partitions(),
)
def frame_embeddings(
    context: AssetExecutionContext, asim_images: pl.DataFrame, asim_features: pl.DataFrame
) -> pl.DataFrame:
    """Per frame of the month: its search embedding (int8 codes + scale, L2-normalised, with the
    embedding version), novelty score (mean cosine distance to the 10 nearest labelled-set frames) and
    novelty percentile (0–1 among the labelled set's own scores). Frames without features: NULL."""
    tame: TameResource = context.resources.tame
    from tame_assets.ml.embeddings import l2_normalise
    from tame_assets.warehouse.similar import embeddings_frame

    model, novelty = _models(tame)
    if asim_features.height and "backbone" in asim_features.columns:
        used = asim_features.select("backbone", "feature_kind").unique().rows()
        if used != [(model.backbone, model.feature_kind)]:
            raise ValueError(
                f"asim_features holds {used} features, the embedding model expects {model.backbone}/"
                f"{model.feature_kind}: re-materialize embedding_model"
            )
    keys = [c for c in FRAME_KEY_COLUMNS if c in asim_features.columns]
    frames = asim_features.select(keys).join(
        asim_images.select("file_name", "frame_index", "local_path"),
        on=["file_name", "frame_index"],
        how="left",
        maintain_order="left",
        nulls_equal=True,
    )
    X = np.full((asim_features.height, len(model.mean)), np.nan, np.float32)
    ok = asim_features["features"].is_not_null().to_numpy() if asim_features.height else np.zeros(0, bool)
    if ok.any():
        X[ok] = np.asarray(asim_features.filter(pl.col("features").is_not_null())["features"].to_list(), np.float32)
    E = model.transform(X)
    score, pct = novelty.score(l2_normalise(X)) if len(E) else (np.zeros(0), np.zeros(0))
    table = embeddings_frame(frames, E, model.version, (score, pct))
    context.add_output_metadata(
        extra_metadata(
            embedding_version=model.version,
            dim=model.dim,
            frames_embedded=int(ok.sum()),
            novelty_median=float(np.nanmedian(pct)) if ok.any() else None,
        )
    )
    return table


@warehouse_asset(
    partitions_def=station_month_partitions,
    group_name=SEARCH,
    kinds={"faiss", "parquet"},
    code_version=CODE_VERSION,
    automation_condition=follows_new_partitions(),
)
def similarity_index(context: AssetExecutionContext, frame_embeddings: pl.DataFrame) -> pl.DataFrame:
    """The month's exact cosine index (faiss ``IndexFlatIP``) of the station's frame embeddings, stored
    beside this table's Parquet (``<STATION>.faiss``); one row: vectors, dimension, embedding version.
    Metadata: an example query (the month's most typical frame) and its nearest neighbours as a montage."""
    tame: TameResource = context.resources.tame
    from tame_assets.warehouse.similar import build_partition_index

    partition = Partition.of(context.partition_key)
    row, _ = build_partition_index(tame.warehouse, partition.month, partition.station, frame_embeddings)
    figures = []
    typical = frame_embeddings.filter(pl.col("embedding").is_not_null())
    if typical.height > 1:
        query = typical.sort("novelty_score", "time").row(0, named=True)
        figures.append(_example_montage(tame, partition, query, typical.height))
    context.add_output_metadata(
        {
            **figure_metadata(figures, context=context),
            **extra_metadata(vectors=int(row["vectors"][0]), dim=int(row["dim"][0]), build_s=float(row["build_s"][0])),
        }
    )
    return row.with_columns(pl.col("build_s").cast(pl.Float64))


def _load_row(row: dict, max_pixels: int | None = None):
    from tame_assets.sources.frame_reader import frame_item, grey_frame

    if not row.get("local_path"):
        return None
    item = frame_item(row["local_path"], row.get("frame_index"), row.get("network") or "uio")
    return _thumbnail(grey_frame(item, max_pixels=max_pixels, missing_ok=True))


def _thumbnail(image, side: int = 160):
    """Every n-th pixel so the longer side is at most ``side`` (montage tiles; keeps SVGs small)."""
    if image is None:
        return None
    step = max(1, int(np.ceil(max(image.shape[:2]) / side)))
    return image[::step, ::step]


def _example_montage(tame: TameResource, partition: Partition, query: dict, frames: int):
    from tame_assets.analysis.figures import save_figure, station_label
    from tame_assets.analysis.search_figures import similarity_montage
    from tame_assets.ml.embeddings import dequantize
    from tame_assets.warehouse.similar import search

    vector = dequantize(np.asarray([query["embedding"]], np.int8), np.asarray([query["embedding_scale"]]))[0]
    start, end = month_bounds(partition.month)
    found = search(
        tame.warehouse,
        vector,
        k=MONTAGE_NEIGHBOURS,
        stations=[partition.station],
        start=start,
        end=end,
        exclude=(partition.station, query["time"]),
    )
    fig = similarity_montage(
        _load_row(query),
        f"{query['station']} {str(query['time'])[:19]}",
        found,
        _load_row,
        f"Search by example, {station_label(partition.station)} {partition.month}: the month's most typical frame "
        f"(query) and its {found.height} nearest\nframes of {frames} by embedding cosine (cos); below: station, "
        "time (UTC), catalog class",
    )
    return save_figure(fig, tame.paths.figures_dir, f"similarity_{partition.station}_{partition.month}")


def check_novelty(frames: pl.DataFrame, shown: int = NOVELTY_SHOWN) -> tuple[bool, str, dict, pl.DataFrame]:
    """(passed, description, metadata, the ``shown`` most unusual frames) for a month's
    ``frame_embeddings``: warns when more than :data:`MAX_BEYOND_REFERENCE` of the frames lie beyond
    every reference frame (the labelled set does not cover this station's sky)."""
    scored = frames.filter(pl.col("novelty").is_not_null())
    if not scored.height:
        return True, "no frames with embeddings this month: nothing to rank", {"frames": 0}, scored
    top = scored.sort(["novelty_score", "time"], descending=[True, False]).head(shown)
    beyond = float((scored["novelty"] >= 1.0).mean())
    passed = beyond <= MAX_BEYOND_REFERENCE
    listing = ", ".join(f"{str(t)[:19]} ({n:.2f})" for t, n in top.select("time", "novelty").iter_rows())
    description = (
        f"{scored.height} frames; {beyond:.0%} beyond every labelled-set frame (novelty 1.0)"
        + ("" if passed else f", above {MAX_BEYOND_REFERENCE:.0%}: the labelled set does not cover this sky")
        + f"; most unusual: {listing}"
    )
    metadata = {
        "frames": scored.height,
        "beyond_reference_fraction": beyond,
        "novelty_median": float(scored["novelty"].median()),
        "novelty_p99": float(scored["novelty"].quantile(0.99)),
        "most_unusual": MetadataValue.md(
            "| time (UTC) | novelty | distance | file |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {str(r['time'])[:19]} | {r['novelty']:.3f} | {r['novelty_score']:.3f} | {r['file_name']} |"
                for r in top.to_dicts()
            )
        ),
    }
    return passed, description, metadata, top


with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=PreviewWarning, message=".*partitions_def on an AssetCheckSpec")

    @asset_check(asset="frame_embeddings", partitions_def=station_month_partitions)
    def frame_embeddings_novelty(context: AssetCheckExecutionContext, tame: TameResource) -> AssetCheckResult:
        """The month's most unusual frames (novelty percentile against the labelled set) with a montage;
        warns when most frames lie beyond every labelled-set frame."""
        from tame_assets.analysis.figures import save_figure
        from tame_assets.analysis.search_figures import novelty_montage

        partition = Partition.of(context.partition_key)
        frames = partition.read(tame.warehouse, "frame_embeddings")
        passed, description, metadata, top = check_novelty(frames)
        if top.height:
            fig = save_figure(
                novelty_montage(top, _load_row, partition.month),
                tame.paths.figures_dir,
                f"novelty_{partition.station}_{partition.month}",
            )
            metadata.update(figure_metadata([fig]))
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.WARN,
            description=description,
            metadata=_per_station(metadata, partition),
        )


def _per_station(metadata: dict, partition: Partition) -> dict:
    """Numbers keyed by station (``frames [NYA]``) as the other checks do, so the UI plots one line per station."""
    out = {
        (f"{k} [{partition.station}]" if isinstance(v, (int, float)) and not isinstance(v, bool) else k): v
        for k, v in metadata.items()
    }
    return {**out, "station": partition.station, "month": partition.month}


search_checks = [frame_embeddings_novelty]
