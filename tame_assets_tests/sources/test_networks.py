"""Camera networks behind one interface: the registry, both networks' readers on the real files, one
result type for every fetch, and a toy third network reached by the frame reader without core changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tame_assets.sources import frame_reader, networks, themis, uio_asi
from tame_assets.sources.errors import ImageReadError
from tame_assets.sources.http import HttpClient
from tame_assets.sources.images import load_image_array
from tame_assets.sources.networks import (
    QUARANTINE_SCHEMA,
    STATION_FRAMES_SCHEMA,
    CameraNetwork,
    FetchResult,
    Frame,
    get_network,
    known_networks,
    network_of_file,
)
from tame_assets.stations import NETWORKS, Station

GAKO_CDF = "thg_l1_asf_gako_2011010617_v01.cdf"


# ----------------------------------------------------------------------------- registry
def test_registry_returns_each_network():
    assert known_networks()[:2] == ["uio", "themis"]
    for name in NETWORKS:  # every network a station may name has its interface
        network = get_network(name)
        assert network.name == name and isinstance(network, CameraNetwork)
    assert get_network("uio").multi_frame is False and get_network("themis").multi_frame is True


def test_unknown_network_is_one_line_listing_the_known_ones():
    with pytest.raises(ValueError) as err:
        get_network("rego")
    assert str(err.value) == "unknown camera network 'rego' (known: uio, themis)"
    with pytest.raises(ValueError, match="known: uio, themis"):
        frame_reader.frame_item("/x/a.png", 0, "rego")


def test_register_refuses_an_object_without_the_interface_and_a_taken_name():
    with pytest.raises(ValueError, match="not a camera network .*missing .*read_frame"):
        networks.register_network(type("Half", (), {"name": "half", "multi_frame": False})())
    with pytest.raises(ValueError, match="'uio' is already registered"):
        networks.register_network(get_network("uio"))
    with pytest.raises(ValueError, match="built in"):
        networks.unregister_network("themis")


@pytest.mark.parametrize(
    ("name", "network"),
    [
        ("nya6_20141020_165407_5577_cal.png", "uio"),
        (GAKO_CDF, "themis"),
        ("20140310_0600_gill_themis19_full.pgm.gz", "themis"),
        ("oath_0001.png", None),
        ("notes.txt", None),
    ],
)
def test_network_of_file_by_name(name, network):
    found = network_of_file(Path("/any/folder") / name)
    assert (found.name if found else None) == network


def test_file_names_parse_to_one_shape():
    uio = get_network("uio").parse_file_name("nya6_20141020_165407_5577_cal.png")
    assert (uio.network, uio.station, uio.camera, uio.time, uio.wavelength_nm) == (
        "uio",
        "NYA",
        "nya6",
        dt.datetime(2014, 10, 20, 16, 54, 7),
        557.7,
    )
    cdf = get_network("themis").parse_file_name(GAKO_CDF)
    assert (cdf.network, cdf.station, cdf.camera, cdf.time, cdf.wavelength_nm) == (
        "themis",
        "GAKO",
        "gako",
        dt.datetime(2011, 1, 6, 17),
        0.0,
    )
    with pytest.raises(ValueError, match="snapshot.png: not a UiO all-sky image name"):
        get_network("uio").parse_file_name("snapshot.png")


# ----------------------------------------------------------------------------- real files
@pytest.fixture(scope="module")
def uio_files(real_dir) -> list[Path]:
    files = sorted((real_dir / "uio_asi_nya6" / "images").glob("*.png"))[:3]
    if not files:
        pytest.skip("no UiO PNG in ../shared/data/real/uio_asi_nya6/images")
    return files


def test_uio_reader_on_real_files(uio_files):
    network = get_network("uio")
    for path in uio_files:
        assert network.owns_file(path)
        frame = frame_reader.read_frame(path)
        assert isinstance(frame, Frame) and frame.pixels.dtype == np.uint16 and frame.pixels.ndim == 2
        assert np.array_equal(frame.pixels, load_image_array(path))
        assert frame.time == uio_asi.parse_asi_filename(path.name).time
        [(time, grey)] = list(frame_reader.file_frames(path))
        assert time == frame.time and np.array_equal(grey, frame.pixels)
    assert frame_reader.frame_item(str(uio_files[0]), 0, "uio") == str(uio_files[0])
    with pytest.raises(ImageReadError, match="frame 1 not in the file"):
        network.read_frame(str(uio_files[0]), 1)


def test_themis_reader_on_real_cdf_and_pgm(real_dir):
    cdf = real_dir / "themis" / "cdf_gako" / GAKO_CDF
    pgms = sorted((real_dir / "themis" / "pgm_gill").glob("*.pgm*"))
    if not cdf.is_file() or not pgms:
        pytest.skip("real THEMIS files absent from ../shared/data/real/themis")
    for path, n in ((cdf, 23), (pgms[0], 20)):
        read = themis.read_themis_file(path)
        items = [frame_reader.frame_item(str(path), i, "themis") for i in range(len(read))]
        assert len(items) == n and items[5] == f"{path}#5"
        for index in (0, 5, n - 1):
            frame = frame_reader.read_frame(items[index])
            assert np.array_equal(frame.pixels, read.frames[index])
            assert np.datetime64(frame.time, "ns") == read.times[index]
        whole = list(frame_reader.file_frames(path))
        assert [t for t, _ in whole] == [t.astype("datetime64[us]").item() for t in read.times]
        with pytest.raises(ImageReadError) as err:
            frame_reader.read_frame(f"{path}#{n}")
        assert str(err.value) == f"{path}: frame {n} not in the file ({n} complete frames)"
    first = frame_reader.read_frame(f"{cdf}#0").time
    assert first == dt.datetime(2011, 1, 6, 17, 0, 0, 53000)  # docs/networks.md: 17:00:00.053 UTC


def _check_fetch(result, station: Station) -> pl.DataFrame:
    assert isinstance(result, FetchResult)
    assert result.frames.schema == pl.Schema(STATION_FRAMES_SCHEMA)
    assert result.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    frames = result.frames
    assert frames.height > 0 and frames["network"].unique().to_list() == [station.network]
    assert frames["station"].unique().to_list() == [station.code] and frames["time"].is_sorted()
    assert all(Path(p).is_file() for p in frames["local_path"])
    # the quarantine names exactly the files whose rows are not valid
    assert set(result.quarantine["file"]) == set(frames.filter(~pl.col("valid"))["file_name"])
    return frames


def test_every_archive_fetch_returns_the_same_columns(sample_archive, loopback_server, tmp_path):
    """A UiO month and THEMIS CDF and PGM months from the (loopback) sample archive: one FetchResult shape."""
    from tame_assets.sources.sample.generator import ASIM_DIR, THEMIS_CDF_DIR, THEMIS_PGM_DIR

    served = loopback_server(sample_archive)
    urls = {
        "uio_base_url": f"{served.url}/{ASIM_DIR}",
        "themis_cdf_base_url": f"{served.url}/{THEMIS_CDF_DIR}",
        "themis_pgm_base_url": f"{served.url}/{THEMIS_PGM_DIR}",
    }
    stations = [
        Station("NYA", "uio", "nya4", (557.7, 630.0)),
        Station("GILL", "themis", "gill", image_format="cdf"),
        Station("GILP", "themis", "gill", image_format="pgm"),
    ]
    found = {}
    for station in stations:
        result = frame_reader.fetch_station_month(station, "2010-12", urls, tmp_path / station.code, HttpClient())
        found[station.code] = _check_fetch(result, station)
    assert (~found["NYA"]["valid"]).sum() == 1  # the sample's one deliberately truncated PNG
    assert found["GILP"]["frame_index"].max() > 0 and set(found["NYA"]["frame_index"]) == {0}


def test_local_folder_fetch_returns_the_same_columns(real_dir, tmp_path):
    folder = real_dir / "themis" / "cdf_gako"
    if not (folder / GAKO_CDF).is_file():
        pytest.skip(f"{folder / GAKO_CDF} is absent")
    station = Station("GAKO", "themis", "gako", image_format="cdf", folder=str(folder))
    frames = _check_fetch(frame_reader.fetch_station_month(station, "2011-01", {}, tmp_path), station)
    assert frames.height == 23 and frames["valid"].all() and frames["url"].is_null().all()


# ----------------------------------------------------------------------------- a third network
class ToyNetwork:
    """A made-up network: ``<site>_<YYYYMMDDHH>.toy`` files = NumPy ``.npz`` archives of frames + times."""

    name = "toy"
    multi_frame = True

    def owns_file(self, path) -> bool:
        return Path(path).name.endswith(".toy")

    def parse_file_name(self, name):
        site, stamp = Path(name).name.removesuffix(".toy").split("_")
        return networks.FileName(
            Path(name).name, self.name, site.upper(), site, dt.datetime.strptime(stamp, "%Y%m%d%H"), 0.0
        )

    def fetch_month(
        self, station, month, urls, dest_root, *, client, progress=None, refresh=None, max_image_pixels=None
    ):
        rows = []
        for path in sorted(Path(station.folder).glob("*.toy")):
            with np.load(path) as data:
                for index, time in enumerate(data["times"]):
                    rows.append(
                        {
                            "time": time.astype("datetime64[us]").item(),
                            "network": self.name,
                            "station": station.code,
                            "camera": station.camera,
                            "wavelength_nm": 0.0,
                            "wavelength_0.1nm": 0,
                            "file_name": path.name,
                            "frame_index": index,
                            "url": None,
                            "local_path": str(path),
                            "bytes": path.stat().st_size,
                            "sha256": None,
                            "valid": True,
                        }
                    )
        return FetchResult(pl.DataFrame(rows, schema=STATION_FRAMES_SCHEMA), pl.DataFrame(schema=QUARANTINE_SCHEMA))

    def read_frame(self, path, index, max_pixels=None):
        with np.load(path) as data:
            if index is None or index >= len(data["frames"]):
                raise ImageReadError(path, f"frame {index} not in the file")
            return Frame(data["frames"][index], data["times"][index].astype("datetime64[us]").item())

    def iter_frames(self, path, max_pixels=None):
        with np.load(path) as data:
            for frame, time in zip(data["frames"], data["times"]):
                yield Frame(frame, time.astype("datetime64[us]").item())


@pytest.fixture()
def toy_network():
    network = networks.register_network(ToyNetwork())
    yield network
    networks.unregister_network(network.name)


def test_a_third_network_is_read_by_the_frame_reader(toy_network, tmp_path):
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 65535, size=(3, 8, 8), dtype=np.uint16)
    times = np.array(["2012-02-03T04:00:01", "2012-02-03T04:00:04", "2012-02-03T04:00:07"], dtype="datetime64[us]")
    path = tmp_path / "abcd_2012020304.toy"
    with path.open("wb") as out:  # np.savez would append .npz to the name
        np.savez(out, frames=frames, times=times)
    assert isinstance(toy_network, CameraNetwork) and "toy" in known_networks()
    assert network_of_file(path) is toy_network
    # a station of the toy network, fetched and read through the core's entry points
    station = type("ToyStation", (), {"code": "ABCD", "network": "toy", "camera": "abcd", "folder": str(tmp_path)})()
    table = toy_network.fetch_month(station, "2012-02", {}, tmp_path, client=None).frames
    items = frame_reader.frame_items(table)
    assert items == [f"{path}#{i}" for i in range(3)]
    for i, item in enumerate(items):
        frame = frame_reader.read_frame(item)
        assert np.array_equal(frame.pixels, frames[i]) and np.datetime64(frame.time, "us") == times[i]
        assert np.array_equal(frame_reader.grey_frame(item), frames[i])
    assert [t for t, _ in frame_reader.file_frames(path)] == [t.item() for t in times]
    assert frame_reader.grey_frame(f"{path}#9", missing_ok=True) is None
    with pytest.raises(ImageReadError, match=r"abcd_2012020304.toy: frame 9 not in the file"):
        frame_reader.load_frame(f"{path}#9")


def test_after_unregistering_the_toy_network_is_unknown(tmp_path):
    networks.register_network(ToyNetwork())
    networks.unregister_network("toy")
    assert "toy" not in known_networks() and network_of_file(tmp_path / "x_2012020304.toy") is None
    with pytest.raises(ValueError, match="unknown camera network 'toy'"):
        get_network("toy")
