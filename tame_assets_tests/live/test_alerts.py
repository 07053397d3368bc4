import datetime as dt

import polars as pl
import pytest

from tame_assets.config import SettingsError
from tame_assets.live.alerts import (
    AlertEngine,
    AlertRule,
    Condition,
    alerts_for_catalog,
    rule_from_mapping,
    rules_from_config,
)

T0 = dt.datetime(2010, 12, 29, 18, 0)


def rows(p_values, pred="arc", station="NYA"):
    return pl.DataFrame(
        {
            "station": station,
            "time": [T0 + dt.timedelta(seconds=10 * i) for i in range(len(p_values))],
            "file": [f"f{i}.png" for i in range(len(p_values))],
            "p_aurora": p_values,
            "pred": [pred if p is not None else None for p in p_values],
        }
    )


RULE = AlertRule("aurora", (Condition.parse("p_aurora >= 0.8"), Condition.parse("pred != 'cloudy'")), 3, 2)


def test_one_event_is_one_alert_and_the_rule_rearms_after_n_false_frames():
    #            run of 3 → alert; stays high (no 2nd); 1 low (not re-armed); high again (no alert);
    #            2 low → re-armed; 3 high → second alert
    p = [0.9, 0.85, 0.95, 0.9, 0.99, 0.1, 0.9, 0.9, 0.9, 0.2, 0.3, 0.9, 0.9, 0.9]
    alerts = alerts_for_catalog(rows(p), [RULE])
    assert [(a.frames, a.time) for a in alerts] == [
        (("f0.png", "f1.png", "f2.png"), T0),
        (("f11.png", "f12.png", "f13.png"), T0 + dt.timedelta(seconds=110)),
    ]
    assert alerts[0].values[0]["p_aurora"] == 0.9 and alerts[0].payload()["frames"] == ["f0.png", "f1.png", "f2.png"]


def test_null_values_cloudy_frames_and_late_frames_never_fire():
    assert alerts_for_catalog(rows([0.9, None, 0.9, 0.9]), [RULE]) == []
    assert alerts_for_catalog(rows([0.9, 0.9, 0.9], pred="cloudy"), [RULE]) == []
    engine = AlertEngine([RULE])
    table = rows([0.9, 0.9, 0.1, 0.9])
    assert engine.feed_frame(table.head(2)) == []
    late = table.slice(0, 1).with_columns(pl.lit("late.png").alias("file"))  # an old frame arriving late
    assert engine.feed_frame(late) == [] and engine.feed_frame(table.slice(2, 2)) == []


def test_live_feed_in_pieces_equals_the_batch_rule():
    p = [0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.95, 0.99, 0.97]
    table = pl.concat([rows(p), rows(p, station="GILL")])
    engine = AlertEngine([RULE])
    live = [
        a
        for i in range(0, 10, 3)
        for a in engine.feed_frame(table.filter(pl.col("file").is_in([f"f{j}.png" for j in range(i, i + 3)])))
    ]
    batch = alerts_for_catalog(table, [RULE])
    key = lambda a: (a.station, a.time, a.frames)  # noqa: E731
    assert sorted(map(key, live)) == sorted(map(key, batch)) and len(batch) == 4


def test_rules_come_from_the_project_file(tmp_path):
    path = tmp_path / "tame.toml"
    path.write_text(
        '[alerts]\nwebhook_url = "http://127.0.0.1:9/x"\n\n'
        '[alerts.bright]\nwhen = ["p_aurora >= 0.8", "pred != \'cloudy\'"]\nframes = 3\nrearm_frames = 5\n\n'
        '[alerts.substorm]\nwhen = "dh_dt_nt_per_min <= -10"\nframes = 1\nstations = ["NYA"]\n'
    )
    from tame_assets.config import load_settings

    settings = load_settings(path)
    assert settings.alerts_webhook_url == "http://127.0.0.1:9/x"
    bright, substorm = rules_from_config(settings.config_file)
    assert (bright.name, bright.frames, bright.rearm_frames) == ("bright", 3, 5)
    assert str(bright.conditions[1]) == "pred != 'cloudy'"
    assert substorm.conditions == (Condition("dh_dt_nt_per_min", "<=", -10.0),) and substorm.stations == ("NYA",)
    table = rows([0.1, 0.1]).with_columns(pl.Series("dh_dt_nt_per_min", [-3.0, -12.5]))
    (alert,) = alerts_for_catalog(table, [substorm])
    assert alert.frames == ("f1.png",) and alert.values[0]["dh_dt_nt_per_min"] == -12.5
    path.write_text('[alerts.bad]\nwhen = "p_aurora => 0.8"\n')
    with pytest.raises(SettingsError, match=r"tame.toml: \[alerts.bad\]: condition 'p_aurora => 0.8'"):
        rules_from_config(str(path))


@pytest.mark.parametrize(
    "table, message",
    [
        ({"when": []}, "when must be"),
        ({"when": "p_aurora >= 0.8", "frames": 0}, "frames = 0"),
        ({"when": "p_aurora >= 0.8", "frame": 3}, "unknown key(s) frame"),
        ({"when": "p_aurora >= x"}, "is not '<column> <op> <value>'"),
    ],
)
def test_bad_rules_are_one_line_naming_the_table(table, message):
    with pytest.raises(ValueError, match="tame.toml: \\[alerts.r\\]") as error:
        rule_from_mapping("r", table, "tame.toml")
    assert message in str(error.value) and "\n" not in str(error.value)
