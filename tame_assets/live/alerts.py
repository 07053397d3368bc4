"""Alert rules over catalog rows, with hysteresis: one event is one alert.

A rule is a ``[alerts.NAME]`` table of ``tame.toml``::

    [alerts.bright_aurora]
    when = ["p_aurora >= 0.8", "pred != 'cloudy'"]   # every condition holds (AND)
    frames = 3            # ... for this many consecutive frames of a station → one alert
    rearm_frames = 3      # the rule fires again only after this many consecutive frames without it
    stations = []         # [] = every station

Conditions are ``<column> <op> <value>`` with op one of ``>= <= > < == !=`` and a number or a
quoted string; the column is any catalog column (``p_aurora``, ``p_aurora_calibrated``,
``p_cloudy``, ``pred``, ``cloud_detected``, ``dh_dt_nt_per_min`` …). A NULL value makes the
condition false (a frame without magnetometer data never satisfies a dH/dt rule).

:class:`AlertEngine` is fed rows in time order (live: as frames are cataloged; a frame older than
the last one evaluated for its station is not evaluated, so a late frame never re-fires an alert);
:func:`alerts_for_catalog` applies the same rules to a finished catalog (the batch comparison).
An alert names its frames by file (``<file>#<frame index>`` for a multi-frame network's file, THEMIS).
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from tame_assets.config import SettingsError, read_config_file
from tame_assets.sources.networks import get_network

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "!=": operator.ne}
_CONDITION = re.compile(
    r"^\s*(?P<column>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|'[^']*'|\"[^\"]*\"|true|false)\s*$"
)
_RULE_KEYS = {"when", "frames", "rearm_frames", "stations", "description"}

#: The ``alerts`` table (Parquet ``warehouse/alerts/month=YYYY-MM/part-<STATION>.parquet``).
ALERTS_SCHEMA = {
    "rule": pl.Utf8,
    "station": pl.Utf8,
    "time": pl.Datetime("us"),
    "last_time": pl.Datetime("us"),
    "frames": pl.List(pl.Utf8),
    "values": pl.Utf8,
    "fired_at": pl.Datetime("us"),
}


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: Any

    @classmethod
    def parse(cls, text: str) -> "Condition":
        match = _CONDITION.match(str(text))
        if not match:
            raise ValueError(
                f"condition {text!r} is not '<column> <op> <value>' (op: {' '.join(_OPS)}; value: a number, "
                "'text', true or false)"
            )
        raw = match["value"]
        if raw in ("true", "false"):
            value: Any = raw == "true"
        elif raw[0] in "'\"":
            value = raw[1:-1]
        else:
            value = float(raw)
        return cls(match["column"], match["op"], value)

    def holds(self, row: Mapping[str, Any]) -> bool:
        got = row.get(self.column)
        if got is None or (isinstance(got, float) and got != got):
            return False
        try:
            return bool(_OPS[self.op](got, self.value))
        except TypeError:
            return False

    def __str__(self) -> str:
        value = f"'{self.value}'" if isinstance(self.value, str) else str(self.value).lower()
        return f"{self.column} {self.op} {value}"


@dataclass(frozen=True)
class AlertRule:
    """Conditions holding for ``frames`` consecutive frames of a station fire one alert; the rule
    re-arms after ``rearm_frames`` consecutive frames on which they do not all hold."""

    name: str
    conditions: tuple[Condition, ...]
    frames: int = 3
    rearm_frames: int = 3
    stations: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError(f"alert rule {self.name!r} has no conditions")
        if self.frames < 1 or self.rearm_frames < 1:
            raise ValueError(f"alert rule {self.name!r}: frames and rearm_frames must be ≥ 1")

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(c.column for c in self.conditions))

    def holds(self, row: Mapping[str, Any]) -> bool:
        return all(c.holds(row) for c in self.conditions)

    def applies_to(self, station: str) -> bool:
        return not self.stations or station in self.stations


#: The rule used when the project file configures none: calibrated-or-raw p_aurora ≥ 0.8 on a frame
#: the classifier does not call cloudy, 3 frames in a row.
DEFAULT_RULES = (AlertRule("aurora", (Condition("p_aurora", ">=", 0.8), Condition("pred", "!=", "cloudy")), 3, 3),)


def rule_from_mapping(name: str, table: Mapping[str, Any], source: str = "alerts") -> AlertRule:
    """One rule from its TOML table; ValueError (one line, naming ``source`` and the table) otherwise."""
    where = f"{source}: [alerts.{name}]"
    unknown = sorted(set(table) - _RULE_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; keys: {', '.join(sorted(_RULE_KEYS))}")
    when = table.get("when")
    if isinstance(when, str):
        when = [when]
    if not isinstance(when, list) or not when or not all(isinstance(w, str) for w in when):
        raise ValueError(f'{where}: when must be a condition or a list of them, e.g. ["p_aurora >= 0.8"]')
    stations = table.get("stations", [])
    if not isinstance(stations, list) or not all(isinstance(s, str) for s in stations):
        raise ValueError(f"{where}: stations must be a list of station codes")
    for key in ("frames", "rearm_frames"):
        value = table.get(key, 3)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{where}: {key} = {value!r}: expected an integer ≥ 1")
    try:
        conditions = tuple(Condition.parse(w) for w in when)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return AlertRule(
        name,
        conditions,
        int(table.get("frames", 3)),
        int(table.get("rearm_frames", 3)),
        tuple(stations),
        str(table.get("description", "")),
    )


def rules_from_config(config_file: str | None) -> tuple[AlertRule, ...]:
    """The ``[alerts.NAME]`` rules of a project file (:data:`DEFAULT_RULES` when it has none);
    :class:`SettingsError` naming the file and the table for a bad one."""
    if not config_file:
        return DEFAULT_RULES
    tables = {k: v for k, v in read_config_file(config_file).get("alerts", {}).items() if isinstance(v, dict)}
    if not tables:
        return DEFAULT_RULES
    try:
        return tuple(rule_from_mapping(name, table, str(config_file)) for name, table in tables.items())
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


@dataclass
class _RuleState:
    run: list[dict] = field(default_factory=list)  # consecutive rows satisfying the rule (last `frames`)
    armed: bool = True
    misses: int = 0
    last_time: Any = None


@dataclass(frozen=True)
class Alert:
    rule: str
    station: str
    time: dt.datetime  # first frame of the run that fired
    last_time: dt.datetime
    frames: tuple[str, ...]
    values: tuple[dict, ...]
    fired_at: dt.datetime

    def payload(self) -> dict:
        """The webhook's JSON body."""
        return {
            "rule": self.rule,
            "station": self.station,
            "time": self.time.isoformat(),
            "last_time": self.last_time.isoformat(),
            "frames": list(self.frames),
            "values": list(self.values),
            "fired_at": self.fired_at.isoformat(),
        }

    def row(self) -> dict:
        return {
            "rule": self.rule,
            "station": self.station,
            "time": self.time,
            "last_time": self.last_time,
            "frames": list(self.frames),
            "values": json.dumps(list(self.values), default=str),
            "fired_at": self.fired_at,
        }


def frame_label(row: Mapping[str, Any]) -> str:
    """A row's frame as alerts name it: ``file``, or ``file#frame_index`` for a multi-frame network."""
    file, index = row.get("file"), row.get("frame_index")
    try:
        multi = get_network(row.get("network")).multi_frame
    except ValueError:  # no or an unknown network: the file names the frame
        multi = False
    return f"{file}#{index}" if multi and index is not None else str(file)


def alerts_frame(alerts: Iterable[Alert]) -> pl.DataFrame:
    return pl.DataFrame([a.row() for a in alerts], schema=ALERTS_SCHEMA)


class AlertEngine:
    """Evaluates rules frame by frame per station, with hysteresis (see module docstring)."""

    def __init__(self, rules: Sequence[AlertRule] = DEFAULT_RULES):
        self.rules = tuple(rules)
        self._state: dict[tuple[str, str], _RuleState] = {}

    def feed(self, row: Mapping[str, Any], now: dt.datetime | None = None) -> list[Alert]:
        """Evaluate one catalog row (``station``, ``time``, ``file`` and the rules' columns); the
        alerts it fires (at most one per rule)."""
        fired = []
        station, time = row["station"], row["time"]
        for rule in self.rules:
            if not rule.applies_to(station):
                continue
            state = self._state.setdefault((rule.name, station), _RuleState())
            if state.last_time is not None and time <= state.last_time:
                continue  # late or repeated frame: the sequence already moved on
            state.last_time = time
            if rule.holds(row):
                state.misses = 0
                state.run = [*state.run[-(rule.frames - 1) :], dict(row)] if rule.frames > 1 else [dict(row)]
                if state.armed and len(state.run) >= rule.frames:
                    state.armed = False
                    fired.append(self._alert(rule, station, state.run, now))
            else:
                state.run = []
                state.misses += 1
                if not state.armed and state.misses >= rule.rearm_frames:
                    state.armed = True
        return fired

    def feed_frame(self, rows: pl.DataFrame, now: dt.datetime | None = None) -> list[Alert]:
        """:meth:`feed` every row of ``rows`` in time order."""
        out: list[Alert] = []
        for row in rows.sort("time").iter_rows(named=True):
            out.extend(self.feed(row, now))
        return out

    @staticmethod
    def _alert(rule: AlertRule, station: str, run: list[dict], now: dt.datetime | None) -> Alert:
        now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        values = tuple({"time": r["time"], "file": r.get("file"), **{c: r.get(c) for c in rule.columns}} for r in run)
        return Alert(
            rule.name,
            station,
            run[0]["time"],
            run[-1]["time"],
            tuple(frame_label(r) for r in run),
            values,
            now,
        )


def alerts_for_catalog(catalog: pl.DataFrame, rules: Sequence[AlertRule] = DEFAULT_RULES) -> list[Alert]:
    """The alerts ``rules`` fire on a finished catalog (e.g. a night of ``aurora_catalog``), frames
    in time order per station — what the live path fires when the same frames arrive in order."""
    engine = AlertEngine(rules)
    return engine.feed_frame(catalog)
