"""The result format ``perfanalysis.loadtest/1``: the one definition that ``loadtest run``,
``loadtest upload`` and the admin app (tenants/loadtests/contract.py) all check against.

Standard library only, so the exporter imports it without the admin app. Every key, type, limit
and time format is written once, in the rules below (``DOCUMENT``), and so is the wording of
every refusal: a ``Problem`` names its field as a JSON pointer (``/levels/3/units_per_second``),
in ``field`` and at the start of its message. ``problems`` lists them in document order and then
the checks across fields, the first ``LISTED_PROBLEMS`` and how many more; the runner prints that
list, and the admin app answers 400 with the first (``read`` stops after ``READ_PROBLEMS``), so
both sides say the same thing about the same result. The admin app's OpenAPI schema of the upload
is built from the same rules.

A message quotes what the document holds only through ``shown``: a key, however written, is
safe to render in a page and to write to a log (no unpaired surrogate, which UTF-8 cannot
encode, no control or format character), and short. The work a document costs is bounded by its
size: problems past the limits above are counted, not kept, and only the first ``HINTED_KEYS``
unknown keys get a "did you mean" hint (a megabyte holds 35 000 keys, and difflib takes ~30 µs
a key).

Beyond types and ranges, the levels must make sense together:

* targets are whole percents, strictly ascending (so never duplicated), ending with 100;
* each level has one result per configured repeat, and its units lie between the smallest and
  largest repeat (a mean or a median of them);
* an accepted level's measured busy% lies within the tolerance band around its target; the 100 %
  level's is at least ``settings.full_load_min`` when the runner recorded it (results written
  before that field existed keep the band check);
* units never fall from one level to the next by more than the run's own noise: 5 % or three
  times the larger coefficient of variation of the two levels, whichever is more;
* ``max_units_per_second`` is the measured 100 % level's units (never extrapolated).

Each level's CV is recomputed from its repeats as the runner computes it (``stats.cv_percent``,
two decimals); the written ``cv_percent`` must be a number or null but is not used: the runner
computes it before rounding repeats to 0.1 units, so the two may differ by rounding.

Times are RFC 3339 date-times, the profile of ISO 8601 that OpenAPI's ``date-time`` names:
``2026-01-10T00:18:51Z``, or with an offset (``+02:00``) and a fraction of a second; ``T`` and
``Z`` may be lower case. They are from 1970 on in UTC, and at most a day after the checking
side's clock (a test ends before it is uploaded; clocks may be off).

Text is refused when it holds a control character or an unpaired surrogate (which JSON can
escape but neither UTF-8 nor the admin app's database can store). A ``kernel`` of null is a
kernel not recorded (the original system's results); an empty string says nothing and is
refused, as is an empty ``cpu_model``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from exporter.loadtest.stats import cv_percent

SCHEMA = "perfanalysis.loadtest/1"
PROVIDERS = ("aws", "azure", "gcp", "oci")
# as JSON Schema (ECMA 262) patterns too; the unpaired surrogates are refused apart (below)
WORD = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
MAX_REGION, MAX_INSTANCE_TYPE = 60, 80
MAX_UNITS = 1e12
MAX_CV = 1000.0  # sqrt(MAX_REPEATS) * 100: the largest CV of 100 non-negative repeats
CV_DECIMALS = 2
MIN_LEVELS, MAX_LEVELS = 2, 100
MAX_REPEATS = 100
MAX_ATTEMPTS = 1000
MAX_VCPUS = 4096
MAX_MEMORY = 1 << 50
MAX_BUFFER = 1 << 40
FULL_LOAD = 100
MIN_FULL_LOAD = 1  # the runner's --full-load-min range is 1 to 100
ROUNDING = 0.05  # busy% is written with one decimal
MIN_DIP = 0.05  # units may dip this much between levels even with no measured noise
FIRST_YEAR = 1970
FUTURE_SLACK = timedelta(days=1)
TIME_EXAMPLE = "2026-01-10T00:18:51Z"
LISTED_PROBLEMS = 100  # the most ``problems`` lists; a last entry says how many more there are
READ_PROBLEMS = 10  # ``read`` stops after this many: the admin app answers with the first
HINTED_KEYS = 5  # the unknown keys of a document that get a "did you mean" hint
MAX_SHOWN = 64  # the characters of a key a message shows; past them it is cut, marked "…"

_WORD = re.compile(WORD.replace("$", r"\Z"))
_NO_CONTROL = re.compile(NO_CONTROL.replace("$", r"\Z"))
_PATTERNS = {WORD: _WORD, NO_CONTROL: _NO_CONTROL}
_SURROGATE = re.compile("[\ud800-\udfff]")
_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


# ---- problems ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One way a document departs from the format: ``field`` is a JSON pointer ("/" for the
    document as a whole) whose keys are ``shown``, and ``message`` a sentence that begins by
    naming it."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


class Refused(ValueError):
    """A document that does not follow the format; ``problems`` holds the reasons found, in
    order (``read`` stops after the first ``READ_PROBLEMS``)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = tuple(problems)


class ResultFileError(ValueError):
    """The bytes are not UTF-8 text or not JSON; the message completes "FILE is ..."."""


class _Enough(Exception):
    """Raised by ``_Found.add`` to end a check that has found all the problems it wants."""


class _Found:
    """The problems of one check, in the order found: the first ``keep`` are kept, the rest only
    counted (``count``), so that a document of a megabyte of mistakes costs a short list; with
    ``stop``, the check ends (``_Enough``) once ``keep`` are found. ``unknown_keys`` counts the
    unknown keys seen, for ``_did_you_mean``."""

    def __init__(self, keep: int, *, stop: bool = False) -> None:
        self.kept: list[Problem] = []
        self.count = 0
        self.unknown_keys = 0
        self._keep, self._stop = keep, stop

    def add(self, problem: Problem) -> None:
        self.count += 1
        if len(self.kept) < self._keep:
            self.kept.append(problem)
        if self._stop and self.count >= self._keep:
            raise _Enough

    def listed(self) -> list[Problem]:
        """The problems kept and, when there were more, a last entry that says how many."""
        more = self.count - len(self.kept)
        if not more:
            return list(self.kept)
        return [*self.kept, Problem("/", f"... and {more} more problem{'s' if more > 1 else ''} "
                                         f"(only the first {len(self.kept)} are listed)")]  # fmt: skip


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(text: str) -> str:
    """``text`` as a message quotes it, safe to render and to log: a character that is not
    printable (a control, a format character such as U+202E, an unpaired surrogate) is written
    as JSON escapes it (``\\u001f``, ``\\u202e``, ``\\ud800``; ``\\U`` and eight digits above
    U+FFFF) and a backslash is doubled, so an escape is never the text itself; past
    ``MAX_SHOWN`` characters it is cut, marked "…"."""
    cut = text[:MAX_SHOWN]
    if not cut.isprintable() or "\\" in cut:
        cut = "".join(_escaped(char) for char in cut)
    return cut + "…" if len(text) > MAX_SHOWN else cut


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def pointer(*parts: str | int) -> str:
    """The JSON pointer of ``parts``, each part ``shown``."""
    return "/" + "/".join(shown(str(part)).replace("~", "~0").replace("/", "~1") for part in parts)


def _child(where: str, part: str | int) -> str:
    return pointer(part) if not where else where + pointer(part)


class _Invalid:
    """What a rule returns for a value it refused (a problem is recorded)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


# ---- rules: one per field --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A field's type and limits. ``nullable``: null is a value (not known); ``optional``: the
    key may be left out (results written before it existed)."""

    nullable: bool = False
    optional: bool = False

    def check(self, value: Any, where: str, out: _Found) -> Any:
        """The value as read (a float for a number), or INVALID with the problem put in ``out``."""
        if value is None and self.nullable:
            return None
        return self._check(value, where, out)

    def _check(self, value: Any, where: str, out: _Found) -> Any:
        raise NotImplementedError

    def _or_null(self) -> str:
        return " or null" if self.nullable else ""


@dataclass(frozen=True)
class Text(Rule):
    low: int
    high: int
    pattern: str = NO_CONTROL
    allowed: str = "must not contain control characters (U+0000 to U+001F, U+007F)"

    def _check(self, value: Any, where: str, out: _Found) -> Any:
        if not isinstance(value, str):
            return _refuse(out, where, f"must be a string{self._or_null()}")
        if not value and self.low:
            return _refuse(out, where, "must not be empty" + (" (null when not known)"
                                                              if self.nullable else ""))  # fmt: skip
        if not self.low <= len(value) <= self.high:
            return _refuse(out, where, f"must be {self.low} to {self.high} characters long "
                                       f"(it has {len(value)})")  # fmt: skip
        if not _PATTERNS[self.pattern].match(value):
            return _refuse(out, where, self.allowed)
        if _SURROGATE.search(value):
            return _refuse(out, where, "holds an unpaired surrogate (\\ud800-\\udfff), which is "
                                       "not a character")  # fmt: skip
        return value


WORD_TEXT = "must be letters, digits, '.', '_' and '-', beginning with a letter or digit"


@dataclass(frozen=True)
class Whole(Rule):
    low: int
    high: int

    def _check(self, value: Any, where: str, out: _Found) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return _refuse(out, where, f"must be a whole number{self._or_null()}")
        if not self.low <= value <= self.high:
            return _refuse(out, where, f"must be between {self.low} and {self.high}")
        return value


@dataclass(frozen=True)
class Number(Rule):
    low: float
    high: float
    above_low: bool = False  # low itself is refused

    def _check(self, value: Any, where: str, out: _Found) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _refuse(out, where, f"must be a number{self._or_null()}")
        if isinstance(value, float) and not math.isfinite(value):
            return _refuse(out, where, "must be a finite number")
        if value < self.low or (self.above_low and value == self.low):
            relation = "more than" if self.above_low else "at least"
            return _refuse(out, where, f"must be {relation} {self.low:g}")
        if value > self.high:  # an int of any size compares exactly
            return _refuse(out, where, f"must be at most {self.high:g}")
        return float(value)


@dataclass(frozen=True)
class Choice(Rule):
    options: tuple[str, ...]

    def _check(self, value: Any, where: str, out: _Found) -> Any:
        if isinstance(value, str) and value in self.options:
            return value
        if len(self.options) == 1:
            return _refuse(out, where, f"must be {self.options[0]!r}")
        return _refuse(out, where, f"must be one of {', '.join(self.options)}{self._or_null()}")


@dataclass(frozen=True)
class Flag(Rule):
    def _check(self, value: Any, where: str, out: _Found) -> Any:
        if isinstance(value, bool):
            return value
        return _refuse(out, where, "must be true or false")


@dataclass(frozen=True)
class Time(Rule):
    def _check(self, value: Any, where: str, out: _Found) -> Any:
        found = _TIME.match(value) if isinstance(value, str) else None
        if found is None:
            return _refuse(out, where, "must be a date and time with its UTC offset (RFC 3339, "
                                       f"ISO 8601), such as {TIME_EXAMPLE}")  # fmt: skip
        try:
            moment = _time_of(found)
        except ValueError as exc:
            return _refuse(out, where, f"is not a valid date and time ({exc})")
        try:
            moment = moment.astimezone(UTC)  # as stored: 0001-01-01T00:00+01:00 has no UTC time
            in_range = moment.year >= FIRST_YEAR
        except OverflowError:
            in_range = False
        if not in_range:
            return _refuse(out, where, f"must be in the years {FIRST_YEAR} to 9999 (UTC)")
        return moment


def _time_of(found: re.Match[str]) -> datetime:
    """The moment a match of the time pattern names; ValueError for one that does not exist."""
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = found.groups()
    offset = timedelta(0)
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError(f"no UTC offset {sign}{off_h}:{off_m}")
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
    micro = int((fraction or "0").ljust(6, "0")[:6])
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                    tzinfo=timezone(offset))  # fmt: skip


@dataclass(frozen=True)
class Numbers(Rule):
    """An array of numbers, each checked by ``item``."""

    item: Number
    low: int
    high: int

    def _check(self, value: Any, where: str, out: _Found) -> Any:
        if not isinstance(value, list):
            return _refuse(out, where, "must be an array of numbers")
        if not self.low <= len(value) <= self.high:
            return _refuse(out, where, f"must hold {self.low} to {self.high} numbers "
                                       f"(it holds {len(value)})")  # fmt: skip
        items = [self.item.check(item, _child(where, i), out) for i, item in enumerate(value)]
        return INVALID if any(item is INVALID for item in items) else tuple(items)


@dataclass(frozen=True)
class Object(Rule):
    """An object of the format: its keys given twice are told first, then its unknown keys, then
    its fields in order. A key given twice inside an unknown key's value, or inside a value of
    the wrong type, is not told: that value is refused already."""

    fields: dict[str, Rule] = field(default_factory=dict)

    def names(self) -> tuple[str, ...]:
        return tuple(self.fields)

    def required(self) -> tuple[str, ...]:
        return tuple(name for name, rule in self.fields.items() if not rule.optional)

    def _check(self, value: Any, where: str, out: _Found) -> Any:
        if not isinstance(value, dict):
            if not where:
                return _refuse(out, "", "the result must be a JSON object")
            return _refuse(out, where, "must be a JSON object")
        for name in value.repeated if isinstance(value, _Object) else ():
            _refuse(out, _child(where, name), "appears more than once in one object "
                                              "(which value was meant?)")  # fmt: skip
        for name in value:
            if name not in self.fields:
                hint = _did_you_mean(str(name), self.fields, out)
                _refuse(out, _child(where, str(name)), f"is not a field of the format{hint}")
        checked: dict[str, Any] = {}
        for name, rule in self.fields.items():
            if name in value:
                checked[name] = rule.check(value[name], _child(where, name), out)
            elif not rule.optional:
                checked[name] = _refuse(out, _child(where, name), "is required")
        return checked


@dataclass(frozen=True)
class Array(Rule):
    """An array of objects, each checked by ``item``."""

    item: Object
    low: int
    high: int

    def _check(self, value: Any, where: str, out: _Found) -> Any:
        if not isinstance(value, list):
            return _refuse(out, where, "must be an array")
        if not self.low <= len(value) <= self.high:
            _refuse(
                out, where, f"must hold {self.low} to {self.high} levels (it holds {len(value)})"
            )
            if len(value) > self.high:
                return INVALID
        items = [self.item.check(item, _child(where, i), out) for i, item in enumerate(value)]
        if len(value) < self.low:
            return INVALID
        return items


def _refuse(out: _Found, where: str, what: str) -> Any:
    out.add(Problem(where or "/", f"{where} {what}" if where else what))
    return INVALID


def _did_you_mean(name: str, fields: Iterable[str], out: _Found) -> str:
    """The hint for an unknown key: the field it is close to, for the first ``HINTED_KEYS`` of a
    document. A key longer than ``MAX_SHOWN`` gets none: it cannot be close (difflib's cutoff,
    0.6, takes keys at most 7/3 as long as a field name: 56 characters for the longest)."""
    out.unknown_keys += 1
    if out.unknown_keys > HINTED_KEYS or len(name) > MAX_SHOWN:
        return ""
    close = difflib.get_close_matches(name, fields, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


# ---- the format --------------------------------------------------------------------------------

NULLABLE_CV = Number(0, MAX_CV, nullable=True)
REGION = Text(1, MAX_REGION, WORD, WORD_TEXT, nullable=True)
INSTANCE_TYPE = Text(1, MAX_INSTANCE_TYPE, WORD, WORD_TEXT, nullable=True)
HOST = Object(fields={
    "hostname": Text(1, 253),
    "cpu_model": Text(1, 200),
    "vcpus": Whole(1, MAX_VCPUS),
    "memory_bytes": Whole(1, MAX_MEMORY),
    "kernel": Text(1, 100, nullable=True),
    "cloud_provider": Choice(PROVIDERS, nullable=True),
    "region": REGION,
    "instance_type": INSTANCE_TYPE,
})  # fmt: skip
UNIT = Object(fields={"name": Text(1, 60, WORD, WORD_TEXT), "buffer_bytes": Whole(1, MAX_BUFFER)})
SETTINGS = Object(fields={
    "window_seconds": Number(0, 3600, above_low=True),
    "repeats": Whole(1, MAX_REPEATS),
    "tolerance_points": Number(0, 50, above_low=True),
    "unit": UNIT,
    "full_load_min": Number(MIN_FULL_LOAD, FULL_LOAD, optional=True),
})  # fmt: skip
LEVEL = Object(fields={
    "target_busy_percent": Whole(1, FULL_LOAD),
    "measured_busy_percent": Number(0, FULL_LOAD),
    "units_per_second": Number(0, MAX_UNITS, above_low=True),
    "repeats": Numbers(Number(0, MAX_UNITS), 1, MAX_REPEATS),
    "cv_percent": NULLABLE_CV,
    "attempts": Whole(1, MAX_ATTEMPTS),
    "accepted": Flag(),
})  # fmt: skip
DOCUMENT = Object(fields={
    "schema": Choice((SCHEMA,)),
    "started_at": Time(),
    "finished_at": Time(),
    "host": HOST,
    "settings": SETTINGS,
    "levels": Array(LEVEL, MIN_LEVELS, MAX_LEVELS),
    "max_units_per_second": Number(0, MAX_UNITS, above_low=True),
    "repeatability_cv_percent": NULLABLE_CV,
})  # fmt: skip

TOP_FIELDS = DOCUMENT.names()
HOST_FIELDS = HOST.names()
SETTINGS_FIELDS = SETTINGS.names()
UNIT_FIELDS = UNIT.names()
LEVEL_FIELDS = LEVEL.names()


# ---- the document as read ----------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    hostname: str
    cpu_model: str
    vcpus: int
    memory_bytes: int
    kernel: str | None  # None: not recorded (the original system's results)
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
    cv_percent: float | None  # recomputed from the repeats
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
    repeatability_cv_percent: float | None  # the 100% level's CV; None when not measured
    raw: dict[str, Any]  # the checked document, as uploaded


def cv_of(repeats: Sequence[float]) -> float | None:
    """A level's CV in percent as the runner writes it: ``stats.cv_percent``, two decimals."""
    value = cv_percent(repeats)
    return None if value is None else round(value, CV_DECIMALS)


# ---- checking ----------------------------------------------------------------------------------


def problems(value: Any, now: datetime | None = None) -> list[Problem]:
    """The ways ``value`` departs from the format, the first ``LISTED_PROBLEMS`` of them and
    then, when there are more, an entry that says how many; empty when it conforms. ``now``:
    the clock that "in the future" is judged by (this host's when not given)."""
    out = _Found(LISTED_PROBLEMS)
    _read(value, now or datetime.now(UTC), out)
    return out.listed()


def read(value: Any, now: datetime | None = None) -> LoadTestDocument:
    """The checked document; ``Refused`` when it does not conform, with the first problems
    (the check stops after ``READ_PROBLEMS``), the first as ``problems`` lists it."""
    out = _Found(READ_PROBLEMS, stop=True)
    document = _read(value, now or datetime.now(UTC), out)
    if out.count or document is None:
        raise Refused(out.kept)
    return document


def fits(rule: Rule, value: Any) -> bool:
    """Whether ``rule`` takes ``value`` (null included, when the rule is nullable)."""
    return rule.check(value, "/", _Found(0)) is not INVALID


def host_problems(host: dict[str, Any]) -> list[Problem]:
    """The problems of a ``host`` object alone: what the runner checks before it runs, so that
    a host whose facts would be refused is told before the hour is spent."""
    out = _Found(LISTED_PROBLEMS)
    HOST.check(host, pointer("host"), out)
    return out.listed()


def _valid(value: Any) -> bool:
    """A checked object with no refused field, at any depth."""
    if value is INVALID:
        return False
    if isinstance(value, dict):
        return all(_valid(item) for item in value.values())
    if isinstance(value, list):
        return all(_valid(item) for item in value)
    return True


def _read(value: Any, now: datetime, out: _Found) -> LoadTestDocument | None:
    """The document, or None with its problems in ``out``; None too when ``out`` ended the
    check (``_Enough``)."""
    try:
        return _checked(value, now, out)
    except _Enough:
        return None


def _checked(value: Any, now: datetime, out: _Found) -> LoadTestDocument | None:
    top = DOCUMENT.check(value, "", out)
    if top is INVALID:
        return None
    started, finished = top["started_at"], top["finished_at"]
    latest = now.astimezone(UTC) + FUTURE_SLACK
    for name, moment in (("started_at", started), ("finished_at", finished)):
        if moment is not INVALID and moment > latest:
            _refuse(out, pointer(name), "is in the future")
    if started is not INVALID and finished is not INVALID and finished < started:
        _refuse(out, "/finished_at", "is before /started_at")
    settings = _settings(top["settings"])
    levels = _levels(top["levels"], settings, out)
    maximum = top["max_units_per_second"]
    if levels is not None and maximum is not INVALID:
        full = levels[-1].units_per_second
        if not math.isclose(maximum, full, rel_tol=1e-9, abs_tol=1e-9):
            _refuse(out, "/max_units_per_second", f"({maximum:g}) must equal the 100% level's "
                                                  f"units_per_second ({full:g})")  # fmt: skip
    if out.count or settings is None or levels is None or not _valid(top):
        return None
    return LoadTestDocument(
        started_at=started,
        finished_at=finished,
        host=Host(**top["host"]),
        settings=settings,
        levels=levels,
        max_units_per_second=maximum,
        repeatability_cv_percent=levels[-1].cv_percent if levels[-1].accepted else None,
        raw=value,
    )


def _settings(checked: Any) -> Settings | None:
    if not _valid(checked):
        return None
    return Settings(
        window_seconds=checked["window_seconds"],
        repeats=checked["repeats"],
        tolerance_points=checked["tolerance_points"],
        unit=Unit(**checked["unit"]),
        full_load_min=checked.get("full_load_min"),
    )


def _levels(checked: Any, settings: Settings | None, out: _Found) -> tuple[Level, ...] | None:
    """The levels, checked together once each is valid: one result per repeat, ascending targets
    ending with 100, each level consistent, units growing. None when any check failed."""
    if not _valid(checked):
        return None
    levels = tuple(
        Level(
            target_busy_percent=item["target_busy_percent"],
            measured_busy_percent=item["measured_busy_percent"],
            units_per_second=item["units_per_second"],
            repeats=item["repeats"],
            cv_percent=cv_of(item["repeats"]),
            attempts=item["attempts"],
            accepted=item["accepted"],
        )
        for item in checked
    )
    before = out.count
    if settings is not None:
        for index, level in enumerate(levels):
            if len(level.repeats) != settings.repeats:
                _refuse(out, pointer("levels", index, "repeats"),
                        f"must hold {settings.repeats} results (/settings/repeats), not "
                        f"{len(level.repeats)}")  # fmt: skip
    for index in range(1, len(levels)):
        _ascending(levels[index - 1], levels[index], index, out)
    if levels[-1].target_busy_percent != FULL_LOAD:
        _refuse(out, "/levels", "must end with the measured 100% level")
    if out.count > before or settings is None:
        return None
    for index, level in enumerate(levels):
        _consistent(level, index, settings, out)
    for index in range(1, len(levels)):
        _grows(levels[index - 1], levels[index], index, out)
    return None if out.count > before else levels


def _ascending(previous: Level, level: Level, index: int, out: _Found) -> None:
    target = pointer("levels", index, "target_busy_percent")
    if level.target_busy_percent == previous.target_busy_percent:
        _refuse(out, target, f"({level.target_busy_percent}) repeats the level before: each "
                             "level appears once")  # fmt: skip
    elif level.target_busy_percent < previous.target_busy_percent:
        _refuse(out, target, f"({level.target_busy_percent}) is below the level before "
                             f"({previous.target_busy_percent}): levels must be in ascending "
                             "order")  # fmt: skip


def _consistent(level: Level, index: int, settings: Settings, out: _Found) -> None:
    """Units between the smallest and largest repeat; an accepted level within its band, or the
    100% level at the busy% the runner accepted it at."""
    units, measured, target = (level.units_per_second, level.measured_busy_percent,
                               level.target_busy_percent)  # fmt: skip
    if not min(level.repeats) * (1 - 1e-9) <= units <= max(level.repeats) * (1 + 1e-9):
        _refuse(out, pointer("levels", index, "units_per_second"),
                f"({units:g}) must lie between the smallest and the largest of its repeats")  # fmt: skip
    if not level.accepted:
        return
    where = pointer("levels", index, "measured_busy_percent")
    if target == FULL_LOAD and settings.full_load_min is not None:
        if measured < settings.full_load_min - ROUNDING:
            _refuse(out, where, f"({measured:g}) is below /settings/full_load_min "
                                f"({settings.full_load_min:g}) of a 100% level marked accepted")  # fmt: skip
    elif abs(measured - target) > settings.tolerance_points + ROUNDING:
        _refuse(out, where, f"({measured:g}) is outside the tolerance band "
                            f"{target}±{settings.tolerance_points:g} of a level marked accepted")  # fmt: skip


def _grows(previous: Level, level: Level, index: int, out: _Found) -> None:
    noise = max(MIN_DIP, 3 * max(previous.cv_percent or 0, level.cv_percent or 0) / 100)
    if level.units_per_second < previous.units_per_second * (1 - noise):
        _refuse(out, pointer("levels", index, "units_per_second"),
                f"({level.units_per_second:g}) falls below the {previous.target_busy_percent}% "
                f"level's {previous.units_per_second:g} by more than the run's noise "
                f"({noise * 100:.0f}%): units must grow with busy%")  # fmt: skip


# ---- reading bytes -----------------------------------------------------------------------------


class _Object(dict[str, Any]):
    """A JSON object as read that held keys more than once; ``repeated`` names them."""

    repeated: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object of ``pairs``, with the last value of a repeated key (as json reads it); an
    ``_Object`` when it has one. In time linear in its size: a megabyte of keys each given
    twice is read in a moment."""
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    repeated: dict[str, None] = {}  # in the order first repeated
    for key, _ in pairs:
        if key in seen:
            repeated[key] = None
        seen.add(key)
    found = _Object(result)
    found.repeated = tuple(repeated)
    return found


def decode(data: bytes) -> Any:
    """The JSON value in ``data``: UTF-8 only (a byte order mark allowed), where Python's json
    would take UTF-16 and UTF-32 too. NaN and Infinity are read, for the field they are in to
    refuse; a key given twice in one object is kept for ``problems`` to name by its path.
    ResultFileError when the bytes are not UTF-8 text or not JSON."""
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
