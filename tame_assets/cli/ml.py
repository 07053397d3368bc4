"""``tame classify / train``: the classifier on your own images."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from tame_assets.cli.common import ConfigOption, DataRootOption, app, settings, write_frame
from tame_assets.config import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


@app.command()
def classify(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of all-sky images."),
    out: Path = typer.Option(Path("predictions.parquet"), help="Output Parquet (or .csv)."),
    model: Optional[Path] = typer.Option(None, help="Saved classifier (default: the oath_classifier asset's)."),
    batch_size: int = typer.Option(64, min=1),
    data_root: DataRootOption = None,
    max_image_pixels: Optional[int] = typer.Option(
        None,
        min=1,
        help="Largest image (width × height) decoded; larger "
        "ones get an error row (default: [archives] max_image_pixels).",
    ),
    config: ConfigOption = None,
) -> None:
    """Classify every image in DIRECTORY; one output row per file (unreadable or oversized ones get an error)."""
    from tqdm import tqdm

    from tame_assets.ml.classifier import AsimClassifier

    run_settings = settings(config, data_root, max_image_pixels=max_image_pixels)
    if out.is_dir():  # before minutes of classification, not after
        raise UsageError(f"cannot write {out}: it is a directory; give a file name")
    paths = sorted(str(p) for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise typer.BadParameter(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {directory}")
    try:
        clf = AsimClassifier(model) if model else AsimClassifier(data_root=run_settings.paths)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    with tqdm(total=len(paths), unit="img", desc="classify") as bar:
        df = clf.classify_images(
            paths,
            batch_size=batch_size,
            progress=lambda done, total: bar.update(done - bar.n),
            max_image_pixels=run_settings.max_image_pixels,
        )
    write_frame(df, out)
    typer.echo(df.group_by("pred").len().sort("len", descending=True))
    typer.echo(f"{df.height} rows → {out}")


@app.command()
def train(
    labels: Path = typer.Option(..., exists=True, dir_okay=False, help="CSV with filename,label columns."),
    images: Path = typer.Option(..., exists=True, file_okay=False, help="Folder holding the images."),
    out: Path = typer.Option(..., help="Where to save the classifier (directory)."),
    backbone: list[str] = typer.Option(["efficientnet_lite2"], help="Backbone(s); several are concatenated."),
    feature_kind: str = typer.Option("logits", help="logits (1000 ImageNet outputs) or pooled."),
    rotations: list[float] = typer.Option(
        [0.0, 90.0, 180.0, 270.0], "--rotation", help="Rotations (degrees) whose features are averaged."
    ),
    fine_tune: bool = typer.Option(
        False,
        "--fine-tune",
        help="Fine-tune the backbone's last block instead of an "
        "SVM on frozen features (more accurate, minutes for 300 images on 2 cores).",
    ),
    epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs (with --fine-tune; default 8)."),
    networks: Optional[int] = typer.Option(
        None,
        help="With --fine-tune: networks trained from different "
        "initialisations, probabilities averaged (training time × N).",
    ),
    blend_svm: bool = typer.Option(
        False,
        "--blend-svm",
        help="With --fine-tune: average the network's probabilities with an SVM on frozen features.",
    ),
    folds: int = typer.Option(5, help="Cross-validation folds for the reported metrics."),
    config: ConfigOption = None,
) -> None:
    """Train a classifier on your own labelled images (any label set); prints its CV metrics."""
    from tame_assets.ml.classifier import AsimClassifier

    settings(config)  # a bad project file is reported before minutes of training
    started = time.perf_counter()
    recipe = False
    if fine_tune:
        from tame_assets.ml.finetune import FineTuneConfig

        if len(backbone) != 1:
            raise typer.BadParameter("--fine-tune takes one --backbone")
        try:
            given = {k: v for k, v in {"epochs": epochs, "networks": networks}.items() if v is not None}
            recipe = FineTuneConfig(backbone=backbone[0], blend_frozen_svm=blend_svm, **given)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    clf = AsimClassifier.train(
        labels,
        images,
        backbone=backbone,
        feature_kind=feature_kind,
        rotations=rotations,
        folds=folds,
        fine_tune=recipe,
        progress=True,
    )  # LabelsFormatError: one line, exit 2
    clf.save(out)
    typer.echo(f"labels: {', '.join(clf.classes)}")
    typer.echo(f"method: {clf.card.method} on {clf.card.backbone}")
    for key, value in clf.card.metrics.items():
        if isinstance(value, float):
            typer.echo(f"{key}: {value:.4f}")
        elif isinstance(value, int):
            typer.echo(f"{key}: {value}")
    typer.echo(f"saved → {out} ({time.perf_counter() - started:.0f} s)")
