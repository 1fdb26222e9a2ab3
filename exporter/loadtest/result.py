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

``validate`` is the admin app's own check (``contract``, one definition for both): every key,
type, limit and time format, and the levels together (ascending to 100, one result per repeat,
accepted levels within their band, units growing with busy% beyond the run's noise, the maximum
equal to the 100% level). ``parse`` reads a result file as the admin app does: UTF-8 (a byte
order mark allowed), a key given twice named by ``validate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.loadtest import contract
from exporter.loadtest.contract import (
    CV_DECIMALS,
    HOST_FIELDS,
    LEVEL_FIELDS,
    SCHEMA,
    SETTINGS_FIELDS,
    TOP_FIELDS,
    UNIT_FIELDS,
    ResultFileError,
)
from exporter.loadtest.controller import (
    DEFAULT_FULL_LOAD_MIN,
    FULL_LOAD,
    UNITS_DECIMALS,
    LevelOutcome,
)
from exporter.loadtest.host import HostFacts
from exporter.loadtest.unit import BUFFER_BYTES, UNIT_NAME

__all__ = [
    "HOST_FIELDS", "LEVEL_FIELDS", "SCHEMA", "SETTINGS_FIELDS", "TOP_FIELDS", "UNIT_FIELDS",
    "ResultFileError", "RunSettings", "build", "host_problems", "level_json", "parse", "timestamp",
    "validate",
]  # fmt: skip


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
        "cv_percent": _rounded(outcome.cv_percent, CV_DECIMALS),
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
        "repeatability_cv_percent": _rounded(repeatability, CV_DECIMALS),
    }


def parse(data: bytes) -> Any:
    """The document in ``data``, read as the admin app reads an upload (``contract.decode``):
    UTF-8 only, a byte order mark allowed; a key given twice is kept for ``validate`` to name.
    ResultFileError when it is not UTF-8 text or not JSON."""
    return contract.decode(data)


def validate(document: Any, now: datetime | None = None) -> list[str]:
    """Every way ``document`` departs from the format, each message naming its field; empty
    when it conforms, which is exactly when the admin app takes it (``contract.problems``)."""
    return [problem.message for problem in contract.problems(document, now)]


def host_problems(host: HostFacts) -> list[str]:
    """Why the admin app would refuse a result with these host facts; empty when it would not."""
    return [problem.message for problem in contract.host_problems(host.to_json())]
