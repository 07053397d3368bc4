"""The live path end to end on real PNG frames, a real saved classifier, real Parquet/DuckDB and a real
webhook receiver: rows once per frame across restarts, faults, alerts, the rolling keogram."""

import shutil

import polars as pl

from tame_assets.live.alerts import AlertRule, Condition
from tame_assets.live.runner import LiveRunner
from tame_assets.live.table import LIVE_TABLE
from tame_assets.warehouse.store import Warehouse, open_views_database
from tame_assets_tests.live.conftest import deliver, fit_classifier
from tame_assets_tests.live.receiver import Receiver

ALWAYS = AlertRule("always", (Condition.parse("p_aurora >= 0"),), frames=3, rearm_frames=2)


def runner(settings, folder, classifier, **options) -> LiveRunner:
    return LiveRunner(
        settings, "NYA", folder, classifier_dir=classifier, rules=options.pop("rules", [ALWAYS]), **options
    )


def steps(live: LiveRunner, n: int = 2) -> list:
    return [live.step() for _ in range(n)]  # a file counts once unchanged across two polls


def catalog(settings) -> pl.DataFrame:
    return Warehouse(settings.paths).sql("SELECT * FROM aurora_catalog_live ORDER BY time")


def test_restart_mid_replay_loses_no_frame_and_repeats_none(live_settings, live_classifier, night_frames, tmp_path):
    watch = tmp_path / "watch"
    first = runner(live_settings, watch, live_classifier)
    deliver(night_frames[:2], watch)
    assert sum(r.new for r in steps(first)) == 2
    deliver(night_frames[2:4], watch)  # these land while the process is down (killed: no close())
    del first
    second = runner(live_settings, watch, live_classifier)
    assert len(second.table.done) == 2
    deliver(night_frames[4:6], watch)
    assert sum(r.new for r in steps(second)) == 4
    # a crash between the table write and the state file: the table alone still says what is done
    (live_settings.paths.local_root / "live" / "NYA.json").unlink()
    third = runner(live_settings, watch, live_classifier)
    assert sum(r.new for r in steps(third)) == 0
    rows = catalog(live_settings)
    assert rows["file"].to_list() == [p.name for p in night_frames[:6]]  # every frame once, in time order
    assert rows["ok"].all() and (rows["source"] == "live").all() and rows["pred"].null_count() == 0
    assert rows["latency_s"].min() >= 0
    with open_views_database(live_settings.paths) as con:  # tame.duckdb has the view too
        assert con.execute("SELECT count(DISTINCT file), count(*) FROM aurora_catalog_live").fetchone() == (6, 6)


def test_truncated_duplicate_and_late_frames(live_settings, live_classifier, night_frames, tmp_path):
    watch = tmp_path / "watch"
    live = runner(live_settings, watch, live_classifier)
    deliver(night_frames[4:6], watch)
    broken = watch / night_frames[6].name
    broken.write_bytes(night_frames[6].read_bytes()[:400])  # a truncated transfer
    steps(live)
    deliver(night_frames[:2], watch)  # late: older than what was cataloged
    (watch / "again").mkdir()
    shutil.copyfile(night_frames[5], watch / "again" / night_frames[5].name)  # duplicate delivery
    results = steps(live)
    assert sum(r.new for r in results) == 2 and sum(r.duplicates for r in results) == 1
    rows = live.table.rows().sort("time")
    assert rows.height == 5 and rows["file"].n_unique() == 5
    bad = rows.filter(~pl.col("ok")).row(0, named=True)
    assert bad["local_path"] == str(broken) and str(broken) in bad["error"] and bad["pred"] is None
    quarantine = Warehouse(live_settings.paths).sql("SELECT * FROM quarantine WHERE asset = 'live_frames'")
    assert quarantine["file"].to_list() == [str(broken)] and quarantine["reason"][0] == bad["error"]
    deliver(night_frames[7:8], watch)  # the path went on after the bad frame
    assert sum(r.new for r in steps(live)) == 1


def test_alerts_reach_the_table_and_a_webhook(live_settings, live_classifier, night_frames, tmp_path):
    receiver = Receiver()
    try:
        watch = tmp_path / "watch"
        live = runner(live_settings, watch, live_classifier, webhook_url=receiver.url, keogram_every_s=0)
        deliver(night_frames[:4], watch)
        fired = [a for r in steps(live) for a in r.alerts]
        assert [a.frames for a in fired] == [tuple(p.name for p in night_frames[:3])]  # one event, one alert
        live.close()
        alerts = Warehouse(live_settings.paths).sql("SELECT * FROM alerts")
        assert alerts.height == 1 and alerts["frames"][0].to_list() == [p.name for p in night_frames[:3]]
        (body,) = receiver.bodies
        assert body["rule"] == "always" and body["frames"] == [p.name for p in night_frames[:3]]
        assert [v["file"] for v in body["values"]] == body["frames"] and 0 <= body["values"][0]["p_aurora"] <= 1
        png = live_settings.paths.figures_dir / "live" / "NYA_keogram.png"
        assert png.exists() and png.with_suffix(".svg").exists()
        assert live.keogram.drawn_frames == len(live.keogram.times) > 0  # the frames of the last 18 h
    finally:
        receiver.close()


def test_model_replaced_mid_night_is_reloaded(live_settings, live_classifier, night_frames, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(live_classifier, model)
    watch = tmp_path / "watch"
    live = runner(live_settings, watch, model)
    deliver(night_frames[:1], watch)
    steps(live)
    fit_classifier(model, seed=7)  # saved atomically over the running model's folder
    deliver(night_frames[1:2], watch)
    steps(live)
    assert live.models.reloads == 1
    rows = live.table.rows().sort("time")
    again = live._classify([str(watch / p.name) for p in night_frames[:2]])
    assert rows["p_aurora"][1] == again["p_aurora"][1]  # the new model's value
    assert rows["p_aurora"][0] != again["p_aurora"][0]  # the old model's row stays


def test_watch_folder_unreachable_for_a_while(live_settings, live_classifier, night_frames, tmp_path):
    watch = tmp_path / "mount" / "watch"
    live = runner(live_settings, watch, live_classifier)
    assert [r.reachable for r in steps(live)] == [False, False]
    deliver(night_frames[:2], watch)
    results = steps(live)
    assert results[-1].reachable and sum(r.new for r in results) == 2
    shutil.rmtree(watch)  # gone again (unmounted): waits
    assert not live.step().reachable
    deliver(night_frames[:3], watch)  # back, with the old files again and a new one
    assert sum(r.new for r in steps(live)) == 1
    assert live.table.rows().height == 3 and (Warehouse(live_settings.paths).table_files(LIVE_TABLE))


def test_a_magnetometer_in_the_warehouse_feeds_dh_dt_rules(live_settings, live_classifier, night_frames, tmp_path):
    import datetime as dt

    frames = night_frames[:2]  # 2010-12-01 13:52:00 and 14:58:33
    start = dt.datetime(2010, 12, 1, 13, 0)
    minutes = [start + dt.timedelta(minutes=i) for i in range(150)]
    h = [8000.0 - (12.5 * i if i >= 50 else 0.0) for i in range(150)]  # falling 12.5 nT/min from 13:50
    table = pl.DataFrame({"time": minutes, "station": "NAL", "h_nt": h})
    Warehouse(live_settings.paths).write_partition("magnetometer", table, "2010-12")
    substorm = AlertRule("substorm", (Condition.parse("dh_dt_nt_per_min <= -10"),), frames=1, rearm_frames=1)
    watch = tmp_path / "watch"
    live = runner(live_settings, watch, live_classifier, rules=[substorm])
    deliver(frames, watch)
    fired = [a for r in steps(live) for a in r.alerts]
    rows = live.table.rows().sort("time")
    assert rows["dh_dt_nt_per_min"].to_list() == [-12.5, -12.5] and rows["magnetometer_dt_s"].to_list() == [0.0, 27.0]
    assert [a.frames for a in fired] == [(frames[0].name,)]  # one event: dH/dt stays below −10 nT/min
