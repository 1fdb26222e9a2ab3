"""The upload format ``perfanalysis.loadtest/1``, checked strictly.

Every refusal is ``Invalid`` whose ``field`` is a JSON pointer into the document
(``/levels/3/units_per_second``). Beyond types and ranges, the levels must make sense together:

* targets are whole percents, strictly ascending (so never duplicated), ending with 100;
* each level has one result per configured repeat, and its units lie between the smallest and
  largest repeat (a mean or a median of them);
* an accepted level's measured busy% lies within the tolerance band around its target; the 100 %
  level's is at least ``settings.full_load_min`` when the runner recorded it (results written
  before that field existed keep the band check);
* units never fall from one level to the next by more than the run's own noise: 5 % or three
  times the larger coefficient of variation of the two levels, whichever is more;
* ``max_units_per_second`` is the measured 100 % level's units (never extrapolated).

Each level's CV is recomputed from its repeats as the client computes it (sample standard
deviation over the mean, two decimals); the uploaded ``cv_percent`` must be a number but is not
used. The client computes it before rounding repeats to 0.1 units, so the two may differ by
rounding, and a server refusing on a difference would refuse genuine results; one taking it
as given would show and use a figure the repeats contradict.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tenants.errors import Invalid
from tenants.models import utcnow

SCHEMA = "perfanalysis.loadtest/1"
PROVIDERS = ("aws", "azure", "gcp", "oci")
WORD = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
MAX_UNITS = 1e12
FIRST_YEAR = 1970
MAX_CV = 1000.0
CV_DECIMALS = 2  # as the client writes it
MAX_LEVELS = 100
MIN_LEVELS = 2
MAX_REPEATS = 100
MAX_MEMORY = 1 << 50
MAX_BUFFER = 1 << 40
ROUNDING = 0.05  # busy% is reported with one decimal
FULL_LOAD = 100
MIN_FULL_LOAD = 1  # the runner's --full-load-min range is 1 to 100
MIN_DIP = 0.05  # units may dip this much between levels even with no measured noise
FUTURE_SLACK = timedelta(days=1)

_WORD = re.compile(WORD.replace("$", r"\Z"))
_NO_CONTROL = re.compile(NO_CONTROL.replace("$", r"\Z"))


@dataclass(frozen=True)
class Host:
    hostname: str
    cpu_model: str
    vcpus: int
    memory_bytes: int
    kernel: str
    cloud_provider: str | None
    region: str | None
    instance_type: str | None


@dataclass(frozen=True)
class Unit:
    name: str
    buffer_bytes: int


@dataclass(frozen=True)
class Settings:
    window_seconds: float
    repeats: int
    tolerance_points: float
    unit: Unit
    full_load_min: float | None = None  # None: not recorded (older results)


@dataclass(frozen=True)
class Level:
    target_busy_percent: int
    measured_busy_percent: float
    units_per_second: float
    repeats: tuple[float, ...]
    cv_percent: float | None
    attempts: int
    accepted: bool


@dataclass(frozen=True)
class LoadTestDocument:
    started_at: datetime
    finished_at: datetime
    host: Host
    settings: Settings
    levels: tuple[Level, ...]
    max_units_per_second: float
    repeatability_cv_percent: float | None  # None: not measured (the original's results)
    raw: dict[str, Any]  # the checked document, as uploaded


# ---- parsing ----------------------------------------------------------------------------------


def parse_bytes(data: bytes) -> LoadTestDocument:
    """Decode and check an uploaded file or request body."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("the load test result is not UTF-8 text", "/") from None
    try:
        value = json.loads(text, parse_constant=_non_finite, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise Invalid(f"the key {exc.key!r} appears twice in one object", "/") from None
    except (ValueError, RecursionError):
        raise Invalid("the load test result is not valid JSON", "/") from None
    return check(value)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _non_finite(name: str) -> float:
    """NaN and Infinity are read, then refused by the field they appear in."""
    return float(name.replace("Infinity", "inf"))


# ---- field checks -----------------------------------------------------------------------------


def _pointer(*parts: str | int) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _object(
    value: Any, path: tuple[str | int, ...], fields: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    where = _pointer(*path) if path else "/"
    if not isinstance(value, dict):
        raise Invalid(f"{where} must be a JSON object", where)
    for name in value:
        if name not in fields and name not in optional:
            raise Invalid(f"{_pointer(*path, name)}: unknown field", _pointer(*path, name))
    for name in fields:
        if name not in value:
            raise Invalid(f"{_pointer(*path, name)} is required", _pointer(*path, name))
    return value


def _number(value: Any, where: str, low: float, high: float, above_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{where} must be a number", where)
    number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
    if not math.isfinite(number):
        raise Invalid(f"{where} must be a finite number", where)
    if number < low or (above_low and number == low):
        relation = "more than" if above_low else "at least"
        raise Invalid(f"{where} must be {relation} {low:g}", where)
    if number > high:
        raise Invalid(f"{where} must be at most {high:g}", where)
    return number


def _integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{where} must be a whole number", where)
    if not low <= value <= high:
        raise Invalid(f"{where} must be between {low} and {high}", where)
    return value


def _string(value: Any, where: str, low: int, high: int, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{where} must be a string", where)
    if not low <= len(value) <= high:
        raise Invalid(f"{where} must be {low} to {high} characters", where)
    if not pattern.match(value):
        raise Invalid(f"{where} has characters that are not allowed", where)
    return value


def _optional_word(value: Any, where: str, high: int) -> str | None:
    return None if value is None else _string(value, where, 1, high, _WORD)


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(f"{where} must be an ISO 8601 time such as 2026-01-10T00:18:51Z", where)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{where} must be an ISO 8601 time such as 2026-01-10T00:18:51Z", where
        ) from None
    if moment.tzinfo is None or "T" not in value.upper():
        raise Invalid(f"{where} must be a date and time with its UTC offset (e.g. ...Z)", where)
    try:
        moment = moment.astimezone(UTC)  # as stored: 0001-01-01T00:00+01:00 has no UTC time
        in_range = moment.year >= FIRST_YEAR
    except OverflowError:
        in_range = False
    if not in_range:
        raise Invalid(f"{where} must be in the years {FIRST_YEAR} to 9999 (UTC)", where)
    return moment


# ---- the document ----------------------------------------------------------------------------

TOP_FIELDS = ("schema", "started_at", "finished_at", "host", "settings", "levels",
              "max_units_per_second", "repeatability_cv_percent")  # fmt: skip
HOST_FIELDS = ("hostname", "cpu_model", "vcpus", "memory_bytes", "kernel", "cloud_provider",
               "region", "instance_type")  # fmt: skip
SETTINGS_FIELDS = ("window_seconds", "repeats", "tolerance_points", "unit")
OPTIONAL_SETTINGS = ("full_load_min",)
UNIT_FIELDS = ("name", "buffer_bytes")
LEVEL_FIELDS = ("target_busy_percent", "measured_busy_percent", "units_per_second", "repeats",
                "cv_percent", "attempts", "accepted")  # fmt: skip


def check(value: Any) -> LoadTestDocument:
    top = _object(value, (), TOP_FIELDS)
    if top["schema"] != SCHEMA:
        raise Invalid(f"/schema must be {SCHEMA!r}", "/schema")
    latest = utcnow() + FUTURE_SLACK  # a test ends before it is uploaded; clocks may be off
    started = _timestamp(top["started_at"], "/started_at")
    if started > latest:
        raise Invalid("/started_at is in the future", "/started_at")
    finished = _timestamp(top["finished_at"], "/finished_at")
    if finished > latest:
        raise Invalid("/finished_at is in the future", "/finished_at")
    if finished < started:
        raise Invalid("/finished_at is before /started_at", "/finished_at")
    settings = _settings(top["settings"])
    levels = _levels(top["levels"], settings)
    maximum = _number(top["max_units_per_second"], "/max_units_per_second", 0, MAX_UNITS, True)
    if not _close(maximum, levels[-1].units_per_second):
        raise Invalid(
            f"/max_units_per_second ({maximum:g}) must equal the 100% level's units_per_second "
            f"({levels[-1].units_per_second:g})",
            "/max_units_per_second",
        )
    return LoadTestDocument(
        started_at=started,
        finished_at=finished,
        host=_host(top["host"]),
        settings=settings,
        levels=levels,
        max_units_per_second=maximum,
        repeatability_cv_percent=_repeatability(top["repeatability_cv_percent"], levels[-1]),
        raw=top,
    )


def _repeatability(value: Any, full: Level) -> float | None:
    """The run's repeatability: the 100% level's CV of repeats (recomputed), None if it was not
    accepted or has no CV. The uploaded figure must be a CV but is not used: clients before
    2026-11-24 sent the mean of every level's CV, and the lower levels' repeats are the
    controller's quotas, not the machine's noise, so one field would hold two measures."""
    if value is not None:
        _number(value, "/repeatability_cv_percent", 0, MAX_CV)
    return full.cv_percent if full.accepted else None


def _host(value: Any) -> Host:
    host = _object(value, ("host",), HOST_FIELDS)
    provider = host["cloud_provider"]
    if provider is not None and provider not in PROVIDERS:
        raise Invalid(f"/host/cloud_provider must be one of {', '.join(PROVIDERS)} or null",
                      "/host/cloud_provider")  # fmt: skip
    return Host(
        hostname=_string(host["hostname"], "/host/hostname", 1, 253, _NO_CONTROL),
        cpu_model=_string(host["cpu_model"], "/host/cpu_model", 0, 200, _NO_CONTROL),
        vcpus=_integer(host["vcpus"], "/host/vcpus", 1, 4096),
        memory_bytes=_integer(host["memory_bytes"], "/host/memory_bytes", 1, MAX_MEMORY),
        kernel=_string(host["kernel"], "/host/kernel", 0, 100, _NO_CONTROL),
        cloud_provider=provider,
        region=_optional_word(host["region"], "/host/region", 60),
        instance_type=_optional_word(host["instance_type"], "/host/instance_type", 80),
    )


def _settings(value: Any) -> Settings:
    settings = _object(value, ("settings",), SETTINGS_FIELDS, OPTIONAL_SETTINGS)
    unit = _object(settings["unit"], ("settings", "unit"), UNIT_FIELDS)
    recorded = "full_load_min" in settings
    return Settings(
        window_seconds=_number(settings["window_seconds"], "/settings/window_seconds", 0, 3600, True),
        repeats=_integer(settings["repeats"], "/settings/repeats", 1, MAX_REPEATS),
        tolerance_points=_number(
            settings["tolerance_points"], "/settings/tolerance_points", 0, 50, True
        ),
        unit=Unit(
            name=_string(unit["name"], "/settings/unit/name", 1, 60, _WORD),
            buffer_bytes=_integer(unit["buffer_bytes"], "/settings/unit/buffer_bytes", 1, MAX_BUFFER),
        ),
        full_load_min=_number(settings["full_load_min"], "/settings/full_load_min",
                              MIN_FULL_LOAD, FULL_LOAD) if recorded else None,
    )  # fmt: skip


def _levels(value: Any, settings: Settings) -> tuple[Level, ...]:
    if not isinstance(value, list):
        raise Invalid("/levels must be an array", "/levels")
    if not MIN_LEVELS <= len(value) <= MAX_LEVELS:
        raise Invalid(f"/levels must hold {MIN_LEVELS} to {MAX_LEVELS} levels", "/levels")
    levels = tuple(_level(item, index, settings) for index, item in enumerate(value))
    for index in range(1, len(levels)):
        _ascending(levels[index - 1], levels[index], index)
    if levels[-1].target_busy_percent != FULL_LOAD:
        raise Invalid("/levels must end with the measured 100% level", "/levels")
    for index, level in enumerate(levels):
        _consistent(level, index, settings)
    for index in range(1, len(levels)):
        _grows(levels[index - 1], levels[index], index)
    return levels


def _level(value: Any, index: int, settings: Settings) -> Level:
    level = _object(value, ("levels", index), LEVEL_FIELDS)

    def at(name: str) -> str:
        return _pointer("levels", index, name)

    target = _integer(level["target_busy_percent"], at("target_busy_percent"), 1, 100)
    measured = _number(level["measured_busy_percent"], at("measured_busy_percent"), 0, 100)
    units = _number(level["units_per_second"], at("units_per_second"), 0, MAX_UNITS, True)
    repeats = _repeats(level["repeats"], at("repeats"), settings.repeats)
    if level["cv_percent"] is not None:
        _number(level["cv_percent"], at("cv_percent"), 0, MAX_CV)
    accepted = level["accepted"]
    if not isinstance(accepted, bool):
        raise Invalid(f"{at('accepted')} must be true or false", at("accepted"))
    result = Level(
        target_busy_percent=target,
        measured_busy_percent=measured,
        units_per_second=units,
        repeats=repeats,
        cv_percent=cv_of(repeats),
        attempts=_integer(level["attempts"], at("attempts"), 1, 1000),
        accepted=accepted,
    )
    return result


def cv_of(repeats: tuple[float, ...] | list[float]) -> float | None:
    """The coefficient of variation of a level's repeats in percent, as the load-test client
    computes it (exporter/loadtest/stats.py): the sample standard deviation over the mean, None
    below two repeats or at a mean of 0."""
    if len(repeats) < 2:
        return None
    average = statistics.fmean(repeats)
    if average == 0:
        return None
    return round(100.0 * statistics.stdev(repeats) / average, CV_DECIMALS)


def _consistent(level: Level, index: int, settings: Settings) -> None:
    """Units between the smallest and largest repeat; an accepted level within its band, or the
    100% level at the busy% the runner accepted it at."""
    units, measured, target = (level.units_per_second, level.measured_busy_percent,
                               level.target_busy_percent)  # fmt: skip
    if not min(level.repeats) * (1 - 1e-9) <= units <= max(level.repeats) * (1 + 1e-9):
        where = _pointer("levels", index, "units_per_second")
        raise Invalid(f"{where} ({units:g}) must lie between the smallest and the largest of "
                      "its repeats", where)  # fmt: skip
    if not level.accepted:
        return
    where = _pointer("levels", index, "measured_busy_percent")
    if target == FULL_LOAD and settings.full_load_min is not None:
        if measured < settings.full_load_min - ROUNDING:
            raise Invalid(f"{where} ({measured:g}) is below /settings/full_load_min "
                          f"({settings.full_load_min:g}) of a 100% level marked accepted", where)  # fmt: skip
    elif abs(measured - target) > settings.tolerance_points + ROUNDING:
        raise Invalid(f"{where} ({measured:g}) is outside the tolerance band "
                      f"{target}±{settings.tolerance_points:g} of a level marked accepted", where)  # fmt: skip


def _repeats(value: Any, where: str, expected: int) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise Invalid(f"{where} must be an array of numbers", where)
    if len(value) != expected:
        raise Invalid(f"{where} must hold {expected} results (settings.repeats)", where)
    return tuple(_number(item, f"{where}/{i}", 0, MAX_UNITS) for i, item in enumerate(value))


def _ascending(previous: Level, level: Level, index: int) -> None:
    target = _pointer("levels", index, "target_busy_percent")
    if level.target_busy_percent == previous.target_busy_percent:
        raise Invalid(f"{target}: level {level.target_busy_percent}% appears twice", target)
    if level.target_busy_percent < previous.target_busy_percent:
        raise Invalid(f"{target}: levels must be in ascending order of target_busy_percent",
                      target)  # fmt: skip


def _grows(previous: Level, level: Level, index: int) -> None:
    noise = max(MIN_DIP, 3 * max(previous.cv_percent or 0, level.cv_percent or 0) / 100)
    if level.units_per_second < previous.units_per_second * (1 - noise):
        units = _pointer("levels", index, "units_per_second")
        raise Invalid(
            f"{units} ({level.units_per_second:g}) falls below the {previous.target_busy_percent}% "
            f"level's {previous.units_per_second:g} by more than the run's noise "
            f"({noise * 100:.0f}%): units must grow with busy%",
            units,
        )


# ---- the document as read ---------------------------------------------------------------------

DERIVED_TOP = ("repeatability_cv_percent",)  # the server derives these from the repeats
DERIVED_LEVEL = ("cv_percent",)
TIMES = ("started_at", "finished_at")


def canonical(raw: dict[str, Any]) -> dict[str, Any]:
    """A checked document as the server reads it, to recognise a result uploaded again: numbers
    as floats (182 and 182.0 are one value), times in UTC, and the figures the server derives
    from the repeats left out (a client's own CV changes nothing stored)."""
    top = {name: _normal(value) for name, value in raw.items() if name not in DERIVED_TOP}
    top["levels"] = [{name: _normal(value) for name, value in level.items()
                      if name not in DERIVED_LEVEL} for level in raw["levels"]]  # fmt: skip
    for name in TIMES:
        top[name] = _timestamp(raw[name], _pointer(name)).isoformat()
    return top


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _normal(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) + 0.0  # also -0.0 to 0.0; checked integers are below 2**53
    return value


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
