"""The result document, schema ``perfanalysis.loadtest/1``, and its validation.

Per level: the target, the mean measured busy% and units per second (all cores) over its repeats,
each repeat's units per second, their coefficient of variation (sample standard deviation over the
mean; null with one repeat), the windows it took (attempts) and whether it was accepted. Overall:
``max_units_per_second`` is the measured 100% level's units and ``repeatability_cv_percent`` that
level's own CV (null when it was not accepted or has one repeat). Only at 100% are a repeat's
units counted throughput: below, they are the quota the controller asked for, and their CV shows
how far it moved the load between repeats, not how repeatable the machine is.
``settings.full_load_min`` is the busy% that accepted the 100% level (optional: results written
before it was recorded lack it).

``validate`` checks what this runner guarantees: keys (no unknown one, as the admin app refuses
those) and types (numbers finite), levels in ascending order ending with 100, one result per
repeat, every level's units more than 0 (the runner stops at a level that did no work), the
maximum equal to the 100% level. ``parse`` reads a result file as the admin app does: UTF-8 (a
byte order mark allowed) and no key twice in one object. The admin app checks more
(accepted levels within their band, an accepted 100% level at ``full_load_min`` or more, units
growing with busy% beyond the run's noise), and a run whose levels failed on a disturbed host may
not pass those.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.loadtest.cloud import PROVIDERS
from exporter.loadtest.controller import (
    DEFAULT_FULL_LOAD_MIN,
    FULL_LOAD,
    UNITS_DECIMALS,
    LevelOutcome,
)
from exporter.loadtest.host import HostFacts
from exporter.loadtest.unit import BUFFER_BYTES, UNIT_NAME

SCHEMA = "perfanalysis.loadtest/1"

# every key the admin app takes (tenants/loadtests/contract.py), and no other
TOP_FIELDS = ("schema", "started_at", "finished_at", "host", "settings", "levels",
              "max_units_per_second", "repeatability_cv_percent")  # fmt: skip
HOST_FIELDS = ("hostname", "cpu_model", "vcpus", "memory_bytes", "kernel", "cloud_provider",
               "region", "instance_type")  # fmt: skip
SETTINGS_FIELDS = ("window_seconds", "repeats", "tolerance_points", "unit", "full_load_min")
UNIT_FIELDS = ("name", "buffer_bytes")
LEVEL_FIELDS = ("target_busy_percent", "measured_busy_percent", "units_per_second", "repeats",
                "cv_percent", "attempts", "accepted")  # fmt: skip


@dataclass(frozen=True)
class RunSettings:
    window_seconds: float
    repeats: int
    tolerance_points: float
    full_load_min: float = DEFAULT_FULL_LOAD_MIN

    def to_json(self) -> dict[str, Any]:
        return {
            "window_seconds": self.window_seconds,
            "repeats": self.repeats,
            "tolerance_points": self.tolerance_points,
            "full_load_min": self.full_load_min,
            "unit": {"name": UNIT_NAME, "buffer_bytes": BUFFER_BYTES},
        }


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def level_json(outcome: LevelOutcome) -> dict[str, Any]:
    return {
        "target_busy_percent": outcome.target,
        "measured_busy_percent": round(outcome.busy_percent, 1),
        "units_per_second": round(outcome.units_per_second, UNITS_DECIMALS),
        "repeats": [round(units, UNITS_DECIMALS) for units in outcome.units],
        "cv_percent": _rounded(outcome.cv_percent, 2),
        "attempts": outcome.attempts,
        "accepted": outcome.accepted,
    }


def build(
    started_at: datetime,
    finished_at: datetime,
    host: HostFacts,
    settings: RunSettings,
    outcomes: Sequence[LevelOutcome],
) -> dict[str, Any]:
    full = [o for o in outcomes if o.target == FULL_LOAD]
    if not full:
        raise ValueError("a result needs the measured 100% level")
    # the throughput's own noise, from the level price-performance uses; not the lower levels',
    # whose units are quotas (their CV is the controller's moves)
    repeatability = full[0].cv_percent if full[0].accepted else None
    return {
        "schema": SCHEMA,
        "started_at": timestamp(started_at),
        "finished_at": timestamp(finished_at),
        "host": host.to_json(),
        "settings": settings.to_json(),
        "levels": [level_json(outcome) for outcome in outcomes],
        "max_units_per_second": round(full[0].units_per_second, UNITS_DECIMALS),
        "repeatability_cv_percent": _rounded(repeatability, 2),
    }


# --- validation: every problem, each named by its path -------------------------------------------


# --- reading a result file ----------------------------------------------------------------------


class ResultFileError(ValueError):
    """The file is not UTF-8 text or not JSON; the message completes "FILE is ..."."""


class _Object(dict[str, Any]):
    """A JSON object as read, with the keys it held more than once."""

    repeated: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object()
    repeated: list[str] = []
    for key, value in pairs:
        if key in result and key not in repeated:
            repeated.append(key)
        result[key] = value
    result.repeated = tuple(repeated)
    return result


def parse(data: bytes) -> Any:
    """The document in ``data``, read as the admin app reads an upload: UTF-8 only (a byte order
    mark allowed), where Python's json would take UTF-16 and UTF-32 too. ResultFileError when it
    is not UTF-8 text or not JSON. A key given twice in one object is kept for ``validate`` to
    name by its path (``host.vcpus``), with every other problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultFileError(f"not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except RecursionError:
        raise ResultFileError("not JSON: nested too deeply") from None
    except ValueError as exc:
        raise ResultFileError(f"not JSON: {exc}") from None


def _repeated_keys(document: Any) -> list[str]:
    """``path: ...`` for each key that appears twice in one object, in document order; walked
    without recursion, as deep as json could read."""
    problems: list[str] = []
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, _Object):
            problems += [f"{_join(where, key)}: the key appears more than once in one object "
                         "(the admin app refuses it; which value was meant?)"
                         for key in value.repeated]  # fmt: skip
            stack += [(_join(where, key), item) for key, item in reversed(value.items())]
        elif isinstance(value, list):
            stack += [
                (f"{where}[{index}]", item) for index, item in reversed(list(enumerate(value)))
            ]
    return problems


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_keys(
    where: str, value: dict[str, Any], known: Sequence[str], problems: list[str]
) -> None:
    """Every key of ``value`` is one of ``known``: the admin app refuses any other."""
    for key in value:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(
                f"{_join(where, str(key))}: unknown key{hint}; the admin app refuses it"
            )


# --- validation ----------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    """A finite JSON number (NaN and Infinity, which Python's json reads, are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_time(document: dict[str, Any], key: str, problems: list[str]) -> None:
    value = document.get(key)
    if not isinstance(value, str) or not value.endswith("Z"):
        problems.append(f"{key}: expected an ISO 8601 UTC time ending in Z")
        return
    try:
        datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        problems.append(f"{key}: {value!r} is not an ISO 8601 time")


def _check_host(host: Any, problems: list[str]) -> None:
    if not isinstance(host, dict):
        problems.append("host: expected an object")
        return
    _check_keys("host", host, HOST_FIELDS, problems)
    for key in ("hostname", "cpu_model", "kernel"):
        if not isinstance(host.get(key), str) or not host[key]:
            problems.append(f"host.{key}: expected a non-empty string")
    if not _is_int(host.get("vcpus")) or host["vcpus"] < 1:
        problems.append("host.vcpus: expected an integer >= 1")
    if not _is_int(host.get("memory_bytes")) or host["memory_bytes"] < 1:
        problems.append("host.memory_bytes: expected an integer >= 1")
    for key in ("cloud_provider", "region", "instance_type"):
        if key not in host:
            problems.append(f"host.{key}: missing (null when unknown)")
        elif host[key] is not None and not isinstance(host[key], str):
            problems.append(f"host.{key}: expected a string or null")
    if host.get("cloud_provider") not in (None, *PROVIDERS):
        problems.append(f"host.cloud_provider: expected one of {', '.join(PROVIDERS)} or null")


def _check_settings(settings: Any, problems: list[str]) -> None:
    if not isinstance(settings, dict):
        problems.append("settings: expected an object")
        return
    _check_keys("settings", settings, SETTINGS_FIELDS, problems)
    if not _is_number(settings.get("window_seconds")) or settings["window_seconds"] <= 0:
        problems.append("settings.window_seconds: expected a number > 0")
    if not _is_int(settings.get("repeats")) or settings["repeats"] < 1:
        problems.append("settings.repeats: expected an integer >= 1")
    if not _is_number(settings.get("tolerance_points")) or settings["tolerance_points"] <= 0:
        problems.append("settings.tolerance_points: expected a number > 0")
    if "full_load_min" in settings and not (
        _is_number(settings["full_load_min"]) and 1 <= settings["full_load_min"] <= FULL_LOAD
    ):
        problems.append("settings.full_load_min: expected a number from 1 to 100")
    unit = settings.get("unit")
    if not isinstance(unit, dict):
        problems.append("settings.unit: expected an object")
        return
    _check_keys("settings.unit", unit, UNIT_FIELDS, problems)
    if not isinstance(unit.get("name"), str) or not unit["name"]:
        problems.append("settings.unit.name: expected a non-empty string")
    if not _is_int(unit.get("buffer_bytes")) or unit["buffer_bytes"] < 1:
        problems.append("settings.unit.buffer_bytes: expected an integer >= 1")


def _is_optional_number(value: Any) -> bool:
    return value is None or (_is_number(value) and value >= 0)


def _check_level(where: str, level: Any, expected_repeats: Any, problems: list[str]) -> None:
    if not isinstance(level, dict):
        problems.append(f"{where}: expected an object")
        return
    _check_keys(where, level, LEVEL_FIELDS, problems)
    target = level.get("target_busy_percent")
    if not (isinstance(target, int) and _is_int(target) and 1 <= target <= 100):
        problems.append(f"{where}.target_busy_percent: expected an integer from 1 to 100")
    if not _is_number(level.get("measured_busy_percent")) or level["measured_busy_percent"] < 0:
        problems.append(f"{where}.measured_busy_percent: expected a number >= 0")
    if not _is_number(level.get("units_per_second")) or level["units_per_second"] <= 0:
        # as the admin app: a level that did no work measures nothing
        problems.append(f"{where}.units_per_second: expected a number > 0 (a level whose "
                        "workers did no work measures nothing; the admin app refuses it)")  # fmt: skip
    if "cv_percent" not in level or not _is_optional_number(level["cv_percent"]):
        problems.append(f"{where}.cv_percent: expected a number >= 0 or null")
    repeats = level.get("repeats")
    if not isinstance(repeats, list) or not repeats:
        problems.append(f"{where}.repeats: expected a non-empty list of numbers")
    elif not all(_is_number(value) and value >= 0 for value in repeats):
        problems.append(f"{where}.repeats: every value must be a number >= 0")
    elif _is_int(expected_repeats) and len(repeats) != expected_repeats:
        problems.append(f"{where}.repeats: expected {expected_repeats} results (settings.repeats)")
    if not _is_int(level.get("attempts")) or level["attempts"] < 1:
        problems.append(f"{where}.attempts: expected an integer >= 1")
    if not isinstance(level.get("accepted"), bool):
        problems.append(f"{where}.accepted: expected true or false")


def validate(document: Any) -> list[str]:
    """Every way ``document`` departs from the schema; empty when it conforms. A document read
    by ``parse`` has each key it held twice in one object named too."""
    if not isinstance(document, dict):
        return ["the result must be a JSON object"]
    problems = _repeated_keys(document)
    _check_keys("", document, TOP_FIELDS, problems)
    if document.get("schema") != SCHEMA:
        problems.append(f"schema: expected {SCHEMA!r}")
    _check_time(document, "started_at", problems)
    _check_time(document, "finished_at", problems)
    _check_host(document.get("host"), problems)
    settings = document.get("settings")
    _check_settings(settings, problems)
    repeats = settings.get("repeats") if isinstance(settings, dict) else None
    levels = document.get("levels")
    if not isinstance(levels, list) or len(levels) < 2:
        problems.append("levels: expected a list of at least two levels")
    else:
        for index, level in enumerate(levels):
            _check_level(f"levels[{index}]", level, repeats, problems)
        _check_targets(levels, problems)
    _check_maximum(document.get("max_units_per_second"), levels, problems)
    if "repeatability_cv_percent" not in document or not _is_optional_number(
        document["repeatability_cv_percent"]
    ):
        problems.append("repeatability_cv_percent: expected a number >= 0 or null")
    return problems


def _check_targets(levels: list[Any], problems: list[str]) -> None:
    targets = [level.get("target_busy_percent") for level in levels if isinstance(level, dict)]
    numbers = [t for t in targets if isinstance(t, int) and _is_int(t)]
    if len(numbers) != len(levels):
        return  # already reported per level
    if any(a >= b for a, b in itertools.pairwise(numbers)):
        problems.append("levels: target_busy_percent must be strictly ascending")
    if numbers[-1] != FULL_LOAD:
        problems.append("levels: the last level must be the measured 100% level")


def _check_maximum(maximum: Any, levels: Any, problems: list[str]) -> None:
    if not (_is_number(maximum) and maximum > 0):
        problems.append("max_units_per_second: expected a number > 0")
        return
    last = levels[-1] if isinstance(levels, list) and levels else None
    full = isinstance(last, dict) and last.get("target_busy_percent") == FULL_LOAD
    if full and isinstance(last, dict) and maximum != last.get("units_per_second"):
        problems.append("max_units_per_second: must equal the 100% level's units_per_second")
