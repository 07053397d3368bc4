"""One bad image (decompression bomb, above the pixel cap, truncated) is one quarantined row naming the
file — in the raw image asset, feature extraction and `tame classify` — and costs no memory."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from PIL import Image

from tame_assets.defs.checks import all_checks
from tame_assets.defs.definitions import all_assets
from tame_assets.defs.resources import TameResource
from tame_assets.sources.images import ImageReadError, check_image, load_image_array
from tame_assets.warehouse.store import Warehouse

TAME = str(Path(sys.executable).with_name("tame"))


def write_blank_png(path: Path, width: int, height: int) -> Path:
    """A valid 8-bit greyscale PNG of zeros, compressed row by row (never held in memory): a few
    hundred kB on disk declaring width × height pixels — a decompression bomb when large."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row, body = zlib.compressobj(6), bytes(width + 1), []  # filter byte 0 + the row
    body += [packer.compress(row) for _ in range(height)]
    body.append(packer.flush())
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", b"".join(body))
        + chunk(b"IEND", b"")
    )
    return path


def _peak_rss_mb(code: str, *args: str) -> float:
    """Peak resident memory (MiB) of a fresh Python process running ``code``."""
    probe = f"import resource, sys\n{code}\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    run = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True)
    return float(run.stdout.split()[-1])


def test_12000_square_png_is_refused_from_its_header_before_decoding(tmp_path):
    bomb = write_blank_png(tmp_path / "bomb.png", 12_000, 12_000)
    small = write_blank_png(tmp_path / "small.png", 512, 512)
    assert bomb.stat().st_size < 1_000_000  # tiny file, 144 million pixels
    reason = check_image(bomb)
    assert "12000×12000" in reason and "exceeds the cap of 16,777,216" in reason and "max_image_pixels" in reason
    with pytest.raises(ImageReadError, match="bomb.png: image too large"):
        load_image_array(bomb)
    code = "from tame_assets.sources.images import check_image; print(check_image(sys.argv[1]))"
    baseline, refused = _peak_rss_mb(code, str(small)), _peak_rss_mb(code, str(bomb))
    assert refused < baseline + 20  # decoding it would take 144 MB more
    assert check_image(bomb, max_pixels=12_000 * 12_000) is None  # a raised cap lets it through


def test_bomb_beyond_pillows_own_limit_is_a_reason_not_an_exception(tmp_path):
    bomb = write_blank_png(tmp_path / "huge.png", 15_000, 15_000)  # 225 Mpx > 2 × Pillow's MAX_IMAGE_PIXELS
    reason = check_image(bomb, max_pixels=10**9)
    assert reason is not None and "DecompressionBombError" in reason


def _asi_png(path: Path, size: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 4000, (size, size), dtype=np.uint16)
    Image.fromarray(pixels).save(path)


@pytest.mark.e2e
def test_month_with_a_bomb_an_oversized_and_a_truncated_image_keeps_every_row(tmp_path, loopback_server):
    hour = tmp_path / "www" / "asi" / "nya4" / "5577" / "2010" / "20101207" / "ut23"
    names = [f"nya4_20101207_2334{s:02d}_5577_cal.png" for s in range(0, 60, 10)]
    for i, name in enumerate(names[:3]):
        _asi_png(hour / name, 64, i)
    write_blank_png(hour / names[3], 12_000, 12_000)  # decompression bomb
    _asi_png(hour / names[4], 1100, 4)  # a real image, above the configured cap of 1000 × 1000
    _asi_png(hour / names[5], 64, 5)
    (hour / names[5]).write_bytes((hour / names[5]).read_bytes()[:-400])  # truncated
    served = loopback_server(tmp_path / "www")
    tame = TameResource(
        data_root=str(tmp_path / "data"), source="remote", uio_base_url=f"{served.url}/asi", max_image_pixels=1_000_000
    )
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("stations", ["NYA"])
    result = materialize(
        [*all_assets, *all_checks],
        selection=["asim_images"],
        partition_key="2010-12|NYA",
        resources={"tame": tame},
        instance=instance,
        raise_on_error=True,
    )
    assert result.success
    wh = Warehouse(tmp_path / "data")
    table = wh.read_partition("asim_images", "2010-12", "part-NYA.parquet")
    assert table["file_name"].to_list() == names
    assert table["valid"].to_list() == [True, True, True, False, False, False]
    quarantine = wh.sql("select file, reason from quarantine where asset = 'asim_images' order by file")
    reasons = dict(quarantine.iter_rows())
    assert list(reasons) == names[3:]
    assert "image too large: 12000×12000" in reasons[names[3]]
    assert "1100×1100" in reasons[names[4]] and "1,000,000" in reasons[names[4]]
    assert "truncated" in reasons[names[5]] or "unreadable" in reasons[names[5]]


def _classify(folder: Path, model: Path, out: Path) -> float:
    """Run `tame classify` in a child process; returns that process's peak resident memory (MiB)."""
    code = (
        "import subprocess; run = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "assert run.returncode == 0, run.stderr\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); sys.exit()"
    )
    probe = f"import resource, sys\n{code}"
    run = subprocess.run(
        [sys.executable, "-c", probe, TAME, "classify", str(folder), "--model", str(model), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return float(run.stdout.split()[-1])


@pytest.mark.e2e
def test_tame_classify_gives_the_huge_png_an_error_row_and_stays_small(small_classifier, sample_image_folder, tmp_path):
    model, _ = small_classifier
    folder = sample_image_folder(4)
    baseline = _classify(folder, model, tmp_path / "clean.parquet")
    write_blank_png(folder / "zz_bomb.png", 12_000, 12_000)
    with_bomb = _classify(folder, model, tmp_path / "preds.parquet")
    preds = pl.read_parquet(tmp_path / "preds.parquet")
    assert preds.height == 5
    bad = preds.filter(pl.col("file").str.ends_with("zz_bomb.png")).row(0, named=True)
    assert bad["pred"] is None and "zz_bomb.png" in bad["error"] and "image too large" in bad["error"]
    assert preds.filter(pl.col("error").is_null()).height == 4
    assert with_bomb < baseline + 60, (baseline, with_bomb)  # decoding it: +144 MB raw, ~GB preprocessed


def test_an_image_quarantined_as_truncated_is_fetched_again_once_complete_and_good_ones_are_not(
    tmp_path, loopback_server
):
    import datetime as dt

    from tame_assets.sources import uio_asi
    from tame_assets.sources.http import HttpClient, RefreshPolicy

    hour = tmp_path / "www" / "nya4" / "5577" / "2010" / "20101207" / "ut23"
    good, partial = (f"nya4_20101207_2334{s:02d}_5577_cal.png" for s in (0, 10))
    _asi_png(hour / good, 64, 0)
    _asi_png(hour / partial, 64, 1)
    complete = (hour / partial).read_bytes()
    (hour / partial).write_bytes(complete[: len(complete) // 2])  # the archive still uploading it
    served = loopback_server(tmp_path / "www")

    def fetch(refresh):
        return uio_asi.fetch_month(
            HttpClient(backoff_s=0.01), served.url, "nya4", [557.7], "2010-12", tmp_path / "raw", refresh=refresh
        )

    table, quarantine = fetch(RefreshPolicy(today=dt.date(2010, 12, 8)))
    assert table["valid"].to_list() == [True, False] and quarantine["file"].to_list() == [partial]
    (hour / partial).write_bytes(complete)  # upload finished
    table, quarantine = fetch(RefreshPolicy(today=dt.date(2011, 6, 1)))  # outside the refresh window: kept
    assert table["valid"].to_list() == [True, False]
    table, quarantine = fetch(RefreshPolicy(today=dt.date(2010, 12, 8)))
    assert table["valid"].to_list() == [True, True] and quarantine.height == 0
    hour_path = "/nya4/5577/2010/20101207/ut23/"
    assert served.count(hour_path + good) == 1 and served.count(hour_path + partial) == 2
