"""Issue 25 from the command line: every input error one line with exit code 2 (UTF-16 and undecodable
``-f`` files, ``--out`` naming a directory, ``--fps`` / ``--image-format`` out of range, ``tame find``
with one frame for a keogram or unreadable frames), and ``tame find`` resolving frames only through
the warehouse's image index, never a path the query returns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from tame_assets.cli import app
from tame_assets.warehouse.store import Warehouse

runner = CliRunner()
NAMES = ["nya6_20151210_150837_5577_cal.png", "nya6_20151210_150937_5577_cal.png"]


def _one_error_line(result) -> str:
    """The one ``Error: …`` line of a command that failed as a usage error (exit 2, no traceback)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (ValueError, OSError))
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture()
def root(tmp_path):
    """A warehouse whose image index (asim_images) holds two UiO frames (one readable, one corrupt)."""
    archive = tmp_path / "archive"
    archive.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 4000, (64, 64), dtype=np.uint16)).save(archive / NAMES[0])
    (archive / NAMES[1]).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    wh = Warehouse(tmp_path / "data")
    wh.write_partition(
        "asim_images",
        pl.DataFrame(
            {
                "time": [dt.datetime(2015, 12, 10, 15, 8, 37), dt.datetime(2015, 12, 10, 15, 9, 37)],
                "station": ["NYA", "NYA"],
                "file_name": NAMES,
                "frame_index": pl.Series([0, 0], dtype=pl.Int32),
                "local_path": [str(archive / n) for n in NAMES],
            }
        ),
        "2015-12",
    )
    wh.refresh_views()
    return tmp_path / "data"


def test_find_takes_paths_from_the_image_index_never_from_the_query(root, tmp_path):
    planted = tmp_path / "outside.png"  # a readable image outside the warehouse's index
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(planted)
    out = tmp_path / "frames.csv"
    query = f"SELECT file_name AS file, frame_index, '{planted}' AS local_path FROM asim_images ORDER BY time"
    result = runner.invoke(app, ["find", query, "--out", str(out), "--data-root", str(root)])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(out)
    assert table["local_path"].to_list() == [str(tmp_path / "archive" / n) for n in NAMES]
    assert str(planted) not in out.read_text()
    # a frame the index does not hold is refused, whatever path the query gives for it
    movie = tmp_path / "m.mp4"
    query = f"SELECT 'nya6_20151210_160000_5577_cal.png' AS file, '{planted}' AS local_path"
    result = runner.invoke(app, ["find", query, "--out", str(out), "--movie", str(movie), "--data-root", str(root)])
    line = _one_error_line(result)
    assert "not in the warehouse's image index (asim_images)" in line and not movie.exists()


def test_find_with_one_frame_for_a_keogram_or_unreadable_frames_is_one_line(root, tmp_path):
    out = tmp_path / "frames.parquet"
    one = f"SELECT file_name AS file FROM asim_images WHERE file_name = '{NAMES[0]}'"
    result = runner.invoke(
        app, ["find", one, "--out", str(out), "--keogram", str(tmp_path / "k.png"), "--data-root", str(root)]
    )
    assert "cadence" in _one_error_line(result)
    broken = f"SELECT file_name AS file FROM asim_images WHERE file_name = '{NAMES[1]}'"
    result = runner.invoke(
        app, ["find", broken, "--out", str(out), "--movie", str(tmp_path / "m.mp4"), "--data-root", str(root)]
    )
    assert "no readable frames" in _one_error_line(result)


def test_query_files_in_utf16_are_read_and_undecodable_ones_named(root, tmp_path):
    utf16 = tmp_path / "q16.sql"
    utf16.write_bytes("SELECT 41 + 1 AS answer".encode("utf-16"))  # with a byte-order mark
    result = runner.invoke(app, ["sql", "-f", str(utf16), "--format", "csv", "--data-root", str(root)])
    assert result.exit_code == 0 and result.stdout.split() == ["answer", "42"], result.output
    latin1 = tmp_path / "q.sql"
    latin1.write_bytes("SELECT 'Ny-Ålesund'".encode("latin-1"))
    line = _one_error_line(runner.invoke(app, ["sql", "-f", str(latin1), "--data-root", str(root)]))
    assert str(latin1) in line and "not valid UTF-8" in line


def test_out_naming_a_directory_is_one_line(root, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    line = _one_error_line(
        runner.invoke(app, ["sql", "SELECT 1", "--format", "csv", "--out", str(folder), "--data-root", str(root)])
    )
    assert line == f"Error: cannot write {folder}: it is a directory; give a file name"
    query = "SELECT file_name AS file FROM asim_images"
    line = _one_error_line(runner.invoke(app, ["find", query, "--out", str(folder), "--data-root", str(root)]))
    assert "is a directory" in line


def test_fps_and_image_format_out_of_range_are_refused(tmp_path):
    image = tmp_path / NAMES[0]
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)).save(image)
    movie = tmp_path / "m.mp4"
    line = _one_error_line(runner.invoke(app, ["movie", str(image), "--out", str(movie), "--fps", "1e9"]))
    assert "--fps" in line and "240" in line and not movie.exists()
    line = _one_error_line(
        runner.invoke(app, ["skymap", "nya6", "--out", str(tmp_path / "s.parquet"), "--image-format", "jpg"])
    )
    assert line == "Error: --image-format: 'jpg' is not one of cdf, pgm"
