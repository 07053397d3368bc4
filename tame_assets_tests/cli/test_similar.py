"""`tame similar` on real UiO images: query by an image file and by an archive frame's time, CSV and
montage outputs, and user errors as one line."""

import datetime as dt

import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.ml.embeddings import EMBEDDING_MODEL_FILE, fit_embedding
from tame_assets.warehouse.similar import EMBEDDINGS_TABLE, embeddings_frame
from tame_assets.warehouse.store import Warehouse, station_file

runner = CliRunner()


@pytest.fixture(scope="module")
def real_archive(real_dir, tmp_path_factory):
    """A data root whose frame_embeddings hold the 4 real UiO images of October 2014 (Lite0 logits, fitted)."""
    from tame_assets.ml.features import extract_features

    folder = real_dir / "uio_asi_nya6"
    labels = pl.read_csv(folder / "labels.csv").filter(pl.col("filename").str.starts_with("nya6_201410")).head(8)
    paths = [str(folder / "images" / f) for f in labels["filename"]]
    X = extract_features(paths, backbone="efficientnet_lite0", feature_kind="logits", num_workers=0).features
    model = fit_embedding(
        X, labels["label"].to_numpy(), backbone="efficientnet_lite0", feature_kind="logits", appearance_dims=4
    )
    root = tmp_path_factory.mktemp("similar_cli") / "data"
    warehouse = Warehouse(root)
    (root / "models").mkdir(parents=True)
    model.save(root / "models" / EMBEDDING_MODEL_FILE)
    frames = pl.DataFrame(
        {
            "time": [dt.datetime.fromisoformat(t) for t in labels["datetime_utc"]],
            "network": "uio",
            "station": "NYA",
            "file_name": labels["filename"],
            "frame_index": pl.Series([0] * labels.height, dtype=pl.Int32),
            "local_path": paths,
        }
    )
    table = embeddings_frame(frames, model.transform(X), model.version)
    warehouse.write_partition(EMBEDDINGS_TABLE, table, "2014-10", station_file("NYA"))
    return root, frames


def test_query_by_image_file_finds_that_frame_first_and_writes_csv_and_montage(real_archive, tmp_path):
    root, frames = real_archive
    out, montage = tmp_path / "frames.csv", tmp_path / "m.png"
    query = frames["local_path"][2]
    args = ["similar", query, "--k", "3", "--out", str(out), "--montage", str(montage), "--data-root", str(root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = pl.read_csv(out, try_parse_dates=True)
    assert rows.height == 3 and rows["rank"].to_list() == [1, 2, 3]
    assert rows["file_name"][0] == frames["file_name"][2] and rows["similarity"][0] > 0.99
    assert rows["similarity"].is_sorted(descending=True) and "pred" in rows.columns  # catalog columns (NULL here)
    with Image.open(montage) as im:
        assert im.width > 400 and im.height > 150


def test_query_by_frame_time_excludes_the_frame_and_user_errors_are_one_line(real_archive):
    root, frames = real_archive
    when = frames["time"][0].isoformat()
    result = runner.invoke(app, ["similar", when, "--k", "20", "--station", "nya", "--data-root", str(root)])
    assert result.exit_code == 0, result.output
    assert "query: NYA " in result.output and f"{frames.height - 1} similar frames" in result.output
    for args, message in (
        (["2000-01-01T00:00:00"], "no frame with an embedding within 60 s"),
        (["no_such.png"], "no such image file"),
        ([when, "--where", "cloud_detected = false"], "aurora_catalog, which is not materialized"),
    ):
        result = runner.invoke(app, ["similar", *args, "--data-root", str(root)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert frames.height >= 3
