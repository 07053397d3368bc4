"""The live path on a multi-frame network: the sample's THEMIS station GILL (hourly level-1 CDF files of
12 frames): one row per frame keyed (file, frame index) as the batch tables key them, a restart mid-file,
the batch rows of the day superseding the live ones, replay of THEMIS files."""

import dataclasses
import shutil

import polars as pl
import pytest

from tame_assets.config import TameSettings
from tame_assets.live.alerts import AlertRule, Condition
from tame_assets.live.replay import recorded_frames, replay
from tame_assets.live.runner import LiveRunner
from tame_assets.warehouse.store import Warehouse
from tame_assets_tests.live.conftest import deliver

ALWAYS = AlertRule("always", (Condition.parse("p_aurora >= 0"),), frames=3, rearm_frames=2)
DAY, LATER = "20101206", "20101220"


class Crash(BaseException):
    """The process killed between two commits."""


@pytest.fixture(scope="module")
def gill_files(sample_archive) -> dict[str, list]:
    """GILL's first CDF hour file of two days, and files the GILL live path ignores (its PGM minute, CHUR)."""
    themis = sample_archive / "themis"
    return {
        "day": sorted(themis.rglob(f"thg_l1_asf_gill_{DAY}05_v01.cdf")),
        "later": sorted(themis.rglob(f"thg_l1_asf_gill_{LATER}05_v01.cdf")),
        "others": sorted(themis.rglob(f"{DAY}_*gill*.pgm.gz")) + sorted(themis.rglob(f"thg_l1_asf_chur_{DAY}*.cdf")),
    }


def gill(tmp_path, classifier, watch, **options) -> LiveRunner:
    settings = TameSettings(data_root=str(tmp_path / "data"), source="sample", live_keogram_every_s=1e9)
    return LiveRunner(settings, "GILL", watch, classifier_dir=classifier, rules=[ALWAYS], **options)


def batch_rows(station, folder, classifier, tmp_path) -> pl.DataFrame:
    """What the month's batch run makes of ``folder``'s files on DAY: asim_images → features → predictions,
    the assets' functions (catalog columns ``file``, ``frame_index``)."""
    from tame_assets.ml.classifier import AsimClassifier
    from tame_assets.ml.features import extract_features
    from tame_assets.ml.tables import features_frame, predictions_frame
    from tame_assets.sources.frame_reader import FRAME_KEY_COLUMNS, fetch_station_month, frame_items

    station = dataclasses.replace(station, folder=str(folder))
    images, _ = fetch_station_month(station, "2010-12", {}, tmp_path / "downloads")
    images = images.filter(pl.col("time").dt.strftime("%Y%m%d") == DAY)
    features = features_frame(extract_features(frame_items(images), num_workers=0))
    table = pl.concat([images.select(FRAME_KEY_COLUMNS), features], how="horizontal")
    batch = predictions_frame(table, AsimClassifier.load(classifier), keys=FRAME_KEY_COLUMNS)
    return batch.rename({"file_name": "file"}).drop("wavelength_0.1nm", "error", strict=False)


def test_themis_frames_once_each_across_a_restart_mid_file_and_batch_rows_win(live_classifier, gill_files, tmp_path):
    watch = tmp_path / "watch"
    deliver(gill_files["day"] + gill_files["others"], watch)
    commits = []

    def crash_after_first_commit(summary):
        commits.append(summary)
        raise Crash

    first = gill(tmp_path, live_classifier, watch, frames_per_commit=5, on_commit=crash_after_first_commit)
    first.step()
    with pytest.raises(Crash):
        first.step()  # killed after the first 5 frames of the hour file
    assert commits[0]["rows"] == 5 and not first.table.done
    second = gill(tmp_path, live_classifier, watch)
    results = [second.step() for _ in range(2)]
    assert sum(r.new for r in results) == 7 and sum(r.duplicates for r in results) == 5
    rows = second.table.rows().sort("time")
    name = gill_files["day"][0].name
    assert rows["file"].to_list() == [name] * 12  # no PGM, no CHUR frame
    assert rows["frame_index"].to_list() == list(range(12)) and rows["ok"].all()
    assert rows["time"].dt.minute().to_list() == list(range(0, 60, 5))  # frame times from the file
    assert second.table.done == {name}
    assert not [a for r in results for a in r.alerts]  # the event fired before the crash, not again
    fired = Warehouse(second.settings.paths).sql("SELECT frames FROM alerts")["frames"].to_list()
    assert fired == [[f"{name}#{i}" for i in range(3)]]  # frames named <file>#<frame index>
    # a crash between the table write and the state file: the frames in the table count, none is redone
    second.table.state_path.unlink()
    live = gill(tmp_path, live_classifier, watch)
    assert sum(live.step().new for _ in range(2)) == 0 and live.table.done == {name}
    deliver(gill_files["later"], watch)
    assert sum(live.step().new for _ in range(2)) == 12

    # the month's batch run has the first day: the same rows, and they win in the catalog view
    batch = batch_rows(live.station, watch, live_classifier, tmp_path).sort("time")
    for column in ("file", "frame_index", "time", "pred"):
        assert batch[column].to_list() == rows[column].to_list(), column
    assert (batch["p_aurora"] - rows["p_aurora"]).abs().max() < 1e-6
    wh = Warehouse(live.settings.paths)
    wh.write_partition("aurora_catalog", batch, "2010-12", "part-GILL.parquet")
    view = wh.sql("SELECT * FROM aurora_catalog_live WHERE station = 'GILL' ORDER BY time")
    assert view.height == 24 and view.select("file", "frame_index").n_unique() == 24  # no frame twice, none lost
    assert view["source"].to_list() == ["batch"] * 12 + ["live"] * 12  # the later day is still live

    # the rolling keogram has the frames of the later hour file, read with the network's frame reader
    assert len(live.keogram.times) == 12 and {c.shape for c in live.keogram.columns} == {(256,)}


def test_an_unreadable_themis_file_keeps_one_row_and_is_not_retried(live_classifier, gill_files, tmp_path):
    watch = tmp_path / "watch"
    watch.mkdir()
    broken = watch / gill_files["day"][0].name
    broken.write_bytes(gill_files["day"][0].read_bytes()[:300])  # a truncated transfer
    live = gill(tmp_path, live_classifier, watch)
    assert sum(live.step().failed for _ in range(2)) == 1
    (row,) = live.table.rows().iter_rows(named=True)
    assert row["frame_index"] is None and not row["ok"] and str(broken) in row["error"]
    again = gill(tmp_path, live_classifier, watch)  # a restart: the file is done
    assert sum(r.new + r.failed for r in (again.step(), again.step())) == 0


def test_replay_plays_themis_files_into_a_watched_folder(gill_files, tmp_path):
    night = tmp_path / "night"
    night.mkdir()
    files = gill_files["later"] + gill_files["day"]
    for path in files:
        shutil.copyfile(path, night / path.name)
    frames = recorded_frames([night])
    assert [f.path.name for f in frames] == [p.name for p in reversed(files)]  # by the hour in the name
    delivered = replay(frames, tmp_path / "watch", speed=0)
    assert [d.target.read_bytes() for d in delivered] == [p.read_bytes() for p in reversed(files)]
