"""The upload format ``perfanalysis.loadtest/1`` as the admin app reads it.

The format itself (every key, type, limit, time format, the checks across levels, and the
wording of each refusal) is defined once, in ``exporter.loadtest.contract``, which the load-test
runner checks its results against before it uploads them: a result the runner accepts is one the
admin app accepts, and the other way round. Here that check becomes the service's ``Invalid``
(400) naming the first problem's field as a JSON pointer (``/levels/3/units_per_second``), with
the runner's words, and a checked document gets its canonical form, which recognises a result
uploaded again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from exporter.loadtest import contract as shared
from exporter.loadtest.contract import (
    FULL_LOAD,
    FUTURE_SLACK,
    PROVIDERS,
    Host,
    LoadTestDocument,
    cv_of,
)
from tenants.errors import Invalid
from tenants.models import utcnow

# what the admin app's modules (and migration 0008) take from the shared contract through here
__all__ = ["FULL_LOAD", "FUTURE_SLACK", "NOT_RECORDED", "PROVIDERS", "Host", "LoadTestDocument", "canonical",
           "check", "cv_of", "parse_bytes"]  # fmt: skip


def parse_bytes(data: bytes) -> LoadTestDocument:
    """Decode and check an uploaded file or request body."""
    try:
        value = shared.decode(data)
    except shared.ResultFileError as exc:
        raise Invalid(f"the load test result is {exc}", "/") from None
    return check(value)


def check(value: Any) -> LoadTestDocument:
    """The checked document; ``Invalid`` naming the first problem, as the runner words it."""
    try:
        return shared.read(value, utcnow())
    except shared.Refused as refused:
        first = refused.problems[0]
        raise Invalid(first.message, first.field) from None


# ---- the document as read ---------------------------------------------------------------------

NOT_RECORDED = ""  # a kernel not recorded, as stored: the original's results said "" before null
DERIVED_TOP = ("repeatability_cv_percent",)  # the server derives these from the repeats
DERIVED_LEVEL = ("cv_percent",)
TIMES = ("started_at", "finished_at")


def canonical(raw: dict[str, Any]) -> dict[str, Any]:
    """A checked document as the server reads it, to recognise a result uploaded again: numbers
    as floats (182 and 182.0 are one value), times in UTC, a kernel not recorded as it was
    stored before null said so (""), and the figures the server derives from the repeats left
    out (a client's own CV changes nothing stored)."""
    top = {name: _normal(value) for name, value in raw.items() if name not in DERIVED_TOP}
    top["levels"] = [{name: _normal(value) for name, value in level.items()
                      if name not in DERIVED_LEVEL} for level in raw["levels"]]  # fmt: skip
    for name in TIMES:
        top[name] = _utc(raw[name]).isoformat()
    if top["host"].get("kernel") is None:
        top["host"]["kernel"] = NOT_RECORDED
    return top


def _utc(text: str) -> datetime:
    """A stored time in UTC. Read as leniently as stored documents were checked before the
    format named RFC 3339 (migration 0008 reads those too)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")).astimezone(
        UTC
    )


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _normal(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_normal(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) + 0.0  # also -0.0 to 0.0; checked integers are below 2**53
    return value
