"""The report's YAML configuration: what to report on. Everything has a key; nothing is assumed.

See provisioning/examples/report.yaml for every key with its default. Loading checks the whole
file and raises ReportConfigError listing every problem as ``FILE: line N: key.path: what is
wrong`` (the line where the key, or the nearest key above a missing one, is written).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from perfanalysis import strictyaml
from perfanalysis.alerting.catalogue import FS_IGNORED_TYPES
from perfanalysis.alerting.durations import DurationOutOfRange
from perfanalysis.config import without_password
from perfanalysis.report import validate as v
from perfanalysis.report.settings import influxdb_base_url
from perfanalysis.report.timerange import parse_duration, parse_instant, written_duration
from perfanalysis.report.validate import MISSING, Problems, ReportConfigError

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
DEFAULT_PERCENTILES = (95.0, 97.5, 99.0)
DEFAULT_EXCLUDED_FSTYPES = FS_IGNORED_TYPES  # the alert rules' and dashboards' choice
MAX_BUCKETS = 200_000  # per series: beyond this a report is slow and its charts meaningless

TOP_KEYS = ("title", "tenant", "hosts", "time", "devices", "percentiles", "thresholds", "influxdb")
TIME_KEYS = ("last", "start", "end", "step", "max_points", "timezone")
DEVICE_KEYS = ("disk", "network", "mountpoints", "exclude_fstypes")
INFLUX_KEYS = ("url", "database", "username", "password_env", "password_file")


@dataclass(frozen=True)
class Thresholds:
    """Limits that raise a recommendation; ``None`` switches a rule off."""

    percentile: float = 95.0  # the percentile compared with the *_percent limits below
    cpu_busy_percent: float | None = 80.0
    memory_used_percent: float | None = 90.0
    disk_busy_percent: float | None = 80.0
    filesystem_used_percent: float | None = 85.0  # compared with the latest fill
    filesystem_full_within: int | None = 7 * 86400  # seconds: predicted full within this
    network_errors_per_second: float | None = 0.0  # mean receive + transmit errors
    data_missing_percent: float | None = 10.0  # steps without data


THRESHOLD_KEYS = tuple(Thresholds.__dataclass_fields__)
# (low, high, unit) of each number-valued limit; percentile and filesystem_full_within have their
# own checks (one of the percentiles; a duration)
THRESHOLD_RANGES: dict[str, tuple[float, float | None, str]] = {
    "cpu_busy_percent": (0, 100, "percent of CPU time busy"),
    "memory_used_percent": (0, 100, "percent of memory used"),
    "disk_busy_percent": (0, 100, "percent of time the disk was busy"),
    "filesystem_used_percent": (0, 100, "percent of the filesystem used"),
    "network_errors_per_second": (0, None, "errors per second"),
    "data_missing_percent": (0, 100, "percent of steps without data"),
}
# InfluxDB stores a time as int64 nanoseconds since the epoch (models.MinNanoTime and MaxNanoTime:
# 1677-09-21T00:12:43.145224194Z to 2262-04-11T23:47:16.854775806Z); the whole seconds inside
EARLIEST = datetime(1677, 9, 21, 0, 12, 44, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, 23, 47, 16, tzinfo=UTC)
# the longest duration anywhere in the file (time.last, time.step, filesystem_full_within): ten
# years with their leap days, beyond any retention worth a report; it keeps the range (a grid
# widened to whole steps, a predicted full date) far inside what InfluxDB and datetime handle
MAX_DURATION = 3653 * 86400
MAX_CONFIG_BYTES = 1024 * 1024  # the example with every key and comment is 6 KiB
MAX_PASSWORD_BYTES = 64 * 1024


@dataclass(frozen=True)
class TimeSpec:
    last: int | None  # seconds before now; else start and end
    start: datetime | None
    end: datetime | None
    step: int | None  # None: chosen from the range, max_points and the sampling interval
    max_points: int = 2500
    timezone: str = "UTC"


@dataclass(frozen=True)
class Choice:
    """A device (or mountpoint list) for every host, with per-host exceptions; None is auto."""

    default: Any = None
    per_host: dict[str, Any] = field(default_factory=dict)

    def for_host(self, host: str) -> Any:
        return self.per_host.get(host, self.default)


@dataclass(frozen=True)
class InfluxAccess:
    """Explicit read credentials: the report then needs no admin database."""

    username: str
    password: str
    url: str | None = None
    database: str | None = None


@dataclass(frozen=True)
class ReportConfig:
    source: str
    tenant: str
    hosts: tuple[str, ...]
    time: TimeSpec
    title: str = ""
    disk: Choice = Choice()
    network: Choice = Choice()
    mountpoints: Choice = Choice()
    exclude_fstypes: tuple[str, ...] = DEFAULT_EXCLUDED_FSTYPES
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES
    thresholds: Thresholds = Thresholds()
    influxdb: InfluxAccess | None = None

    @property
    def heading(self) -> str:
        return self.title or f"Performance report: {self.tenant}"


def load_config(
    path: str | os.PathLike[str], environ: dict[str, str] | None = None
) -> ReportConfig:
    """Read and check ``path``; ReportConfigError lists every problem."""
    source = str(path)
    try:
        text = read_bounded(Path(path), MAX_CONFIG_BYTES).decode("utf-8")
    except TooLarge as exc:
        raise ReportConfigError(
            [f"{source}: {exc}, which no report configuration is: is it the right file?"]
        ) from None
    except OSError as exc:
        raise ReportConfigError(
            [f"{source}: cannot read the file: {exc.strerror or exc}"]
        ) from None
    except UnicodeDecodeError:
        raise ReportConfigError([f"{source}: not UTF-8 text"]) from None
    try:
        document = strictyaml.load(text)  # a key given twice is refused, not the last one kept
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ReportConfigError([f"{source}: {where}not valid YAML: {reason}"]) from None
    if document is None:
        raise ReportConfigError(
            [
                f"{source}: no configuration in the file (empty, or comments only): give at "
                "least tenant, hosts and time (see provisioning/examples/report.yaml)"
            ]
        )
    lines = v.key_lines(yaml.compose(text, Loader=strictyaml.StrictSafeLoader))  # loads: safe
    return parse_config(document, source, dict(os.environ if environ is None else environ), lines)


class TooLarge(OSError):
    """A file longer than the report reads of its kind (``/dev/zero`` would never end)."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, refused (TooLarge) past ``limit``: reading a device or a huge
    file whole would take all memory, or never end."""
    with path.open("rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        size = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit // 1024} KiB"
        raise TooLarge(f"longer than {size}")
    return data


def parse_config(
    document: object,
    source: str,
    environ: dict[str, str],
    lines: dict[str, int] | None = None,
) -> ReportConfig:
    """``lines``: where each key path is in the file (validate.key_lines), for the messages."""
    problems = Problems(source, lines)
    top = v.mapping(problems, "", document, TOP_KEYS, required=("tenant", "hosts", "time"))
    tenant = _tenant(problems, v.lookup(top, "tenant"))
    hosts = _hosts(problems, v.lookup(top, "hosts"))
    time = _time(problems, v.lookup(top, "time"))
    title = _optional(problems, "title", v.lookup(top, "title"), v.text, "")
    devices = _devices(problems, v.lookup(top, "devices"), hosts or ())
    percentiles = _percentiles(problems, v.lookup(top, "percentiles"))
    thresholds = _thresholds(problems, v.lookup(top, "thresholds"), percentiles)
    influxdb = _influxdb(problems, v.lookup(top, "influxdb"), environ, Path(source).parent, tenant)
    problems.raise_if_any()
    if tenant is None or hosts is None or time is None or title is None:
        raise ReportConfigError(problems.errors or [f"{source}: invalid configuration"])
    if devices is None or thresholds is None:
        raise ReportConfigError(problems.errors or [f"{source}: invalid configuration"])
    return ReportConfig(
        source, tenant, hosts, time, title, *devices, percentiles, thresholds, influxdb
    )


def _optional(problems: Problems, path: str, value: Any, convert: Any, default: Any) -> Any:
    return default if value is MISSING else v.field(problems, path, value, convert)


def _tenant(problems: Problems, value: Any) -> str | None:
    if value is MISSING:
        return None
    if not isinstance(value, str) or not SLUG.match(value):
        got = strictyaml.show(value) if isinstance(value, str) else v.type_name(value)
        problems.add(
            "tenant",
            "expected a tenant slug: 1-40 lowercase letters, digits and "
            f"inner hyphens, e.g. acme-prod; got {got}",
        )
        return None
    return value


def _hosts(problems: Problems, value: Any) -> tuple[str, ...] | None:
    if value is MISSING:
        return None
    if isinstance(value, str):
        problems.add("hosts", f"expected a list of host names, e.g. [{value}]")
        return None
    return v.field(problems, "hosts", value, v.text_list)


def _time(problems: Problems, value: Any) -> TimeSpec | None:
    if value is MISSING:
        return None
    spec = v.mapping(problems, "time", value, TIME_KEYS)
    if spec is None:
        return None
    errors_before = len(problems.errors)
    last = _optional(problems, "time.last", spec.get("last", MISSING), _duration, None)
    start = _optional(problems, "time.start", spec.get("start", MISSING), _instant, None)
    end = _optional(problems, "time.end", spec.get("end", MISSING), _instant, None)
    step = _optional(problems, "time.step", spec.get("step", MISSING), _step, None)
    max_points = _optional(
        problems,
        "time.max_points",
        spec.get("max_points", MISSING),
        lambda x: v.integer(x, 10, MAX_BUCKETS),
        2500,
    )
    zone = _optional(problems, "time.timezone", spec.get("timezone", MISSING), _timezone, "UTC")
    given = [key for key in ("last", "start", "end") if key in spec]
    if "last" in spec and ("start" in spec or "end" in spec):
        problems.add("time", "give either last or start and end, not both")
    elif "last" not in spec and given != ["start", "end"]:
        missing = " and ".join(k for k in ("start", "end") if k not in spec)
        problems.add("time", f"give last (e.g. last: 24h) or both start and end; {missing} missing")
    if start and end and start >= end:
        problems.add("time.end", f"must be after time.start ({start.isoformat()})")
    seconds = last or ((end - start).total_seconds() if start and end and end > start else None)
    if seconds and step and 2 * step > seconds:
        problems.add("time.step", _too_long_a_step(step, last, seconds))
    elif seconds and step and seconds / step > MAX_BUCKETS:
        problems.add(
            "time.step",
            f"{seconds / step:,.0f} steps in the range; at most "
            f"{MAX_BUCKETS:,}: choose a longer step",
        )
    if len(problems.errors) > errors_before:
        return None
    return TimeSpec(last, start, end, step, max_points, zone)


def _too_long_a_step(step: int, last: int | None, seconds: float) -> str:
    """A range must hold two steps: a rate (CPU, disk, network) needs a step and the one before
    it. A step longer than time.last made a report of one step ending at the last whole step,
    up to a step before now: the range asked for could lie outside it altogether."""
    whole = (
        f"time.last ({written_duration(last)})"
        if last
        else f"the range from time.start to time.end ({written_duration(int(seconds))})"
    )
    longest = int(seconds // 2)
    fix = (
        f"choose a step of at most {written_duration(longest)}, or auto"
        if longest >= 1
        else "give a range of at least 2s"
    )
    return (
        f"{written_duration(step)} is {'longer than' if step > seconds else 'more than half of'} "
        f"{whole}: the range must hold at least two steps, since a rate (CPU, disk, network) "
        f"needs a step and the one before it; {fix}"
    )


def _duration(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 24h or 7d, got {v.type_name(value)}")
    try:
        seconds = parse_duration(value)
    except DurationOutOfRange:
        seconds = MAX_DURATION + 1
    if seconds > MAX_DURATION:
        raise ValueError(
            f"{value.strip()} is too long: at most {MAX_DURATION // 86400}d (ten years)"
        )
    return seconds


def _instant(value: Any) -> datetime:
    moment = parse_instant(value)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(
            f"{moment.isoformat().replace('+00:00', 'Z')} is outside what InfluxDB stores: "
            f"{_rfc3339(EARLIEST)} to {_rfc3339(LATEST)} (nanoseconds since 1970 in 64 bits)"
        )
    return moment


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _step(value: Any) -> int | None:
    if value == "auto":
        return None
    return _duration(value)


def _timezone(value: Any) -> str:
    name = v.text(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Paris or UTC"
        ) from None
    return name


def _devices(
    problems: Problems, value: Any, hosts: tuple[str, ...]
) -> tuple[Choice, Choice, Choice, tuple[str, ...]] | None:
    if value is MISSING:
        return Choice(), Choice(), Choice(), DEFAULT_EXCLUDED_FSTYPES
    spec = v.mapping(problems, "devices", value, DEVICE_KEYS)
    if spec is None:
        return None
    disk = _choice(problems, "devices.disk", spec.get("disk", MISSING), hosts, _device)
    network = _choice(problems, "devices.network", spec.get("network", MISSING), hosts, _device)
    mounts = _choice(
        problems, "devices.mountpoints", spec.get("mountpoints", MISSING), hosts, _mountpoints
    )
    excluded = spec.get("exclude_fstypes", MISSING)
    fstypes: tuple[str, ...] | None = DEFAULT_EXCLUDED_FSTYPES
    if excluded is not MISSING:
        fstypes = (
            ()
            if excluded == []
            else v.field(problems, "devices.exclude_fstypes", excluded, v.text_list)
        )
    if disk is None or network is None or mounts is None or fstypes is None:
        return None
    return disk, network, mounts, fstypes


def _device(value: Any) -> str | None:
    name = v.text(value)
    return None if name == "auto" else name


def _mountpoints(value: Any) -> tuple[str, ...] | None:
    if value == "auto":
        return None
    mounts = v.text_list(value)
    for mount in mounts:
        if not mount.startswith("/"):
            raise ValueError(f"{mount!r} is not a mountpoint: expected an absolute path")
    return mounts


def _choice(
    problems: Problems, path: str, value: Any, hosts: tuple[str, ...], convert: Any
) -> Choice | None:
    """``auto``, one value for all hosts, or a mapping of host to value (others auto)."""
    if value is MISSING:
        return Choice()
    if not isinstance(value, dict):
        converted = v.field(problems, path, value, convert)
        return None if converted is None and value != "auto" else Choice(converted)
    per_host = {}
    for host, item in value.items():
        where = v.join(path, host)
        if host not in hosts:
            problems.add(where, f"not one of the report's hosts ({', '.join(hosts) or 'none'})")
            continue
        before = len(problems.errors)
        converted = v.field(problems, where, item, convert)
        if len(problems.errors) == before:
            per_host[str(host)] = converted
    return Choice(None, per_host)


def _percentiles(problems: Problems, value: Any) -> tuple[float, ...]:
    if value is MISSING:
        return DEFAULT_PERCENTILES
    if not isinstance(value, list) or not value:
        problems.add(
            "percentiles",
            f"expected a non-empty list such as [95, 97.5, 99], got {v.type_name(value)}",
        )
        return DEFAULT_PERCENTILES
    found: list[float] = []
    for index, item in enumerate(value):
        number = v.field(problems, v.join("percentiles", index), item, v.number)
        if number is None:
            continue
        if not 0 < number < 100:
            problems.add(
                v.join("percentiles", index),
                f"must be above 0 and below 100 (the maximum is always shown), got {number:g}",
            )
        elif number in found:
            problems.add(v.join("percentiles", index), f"{number:g} is listed twice")
        else:
            found.append(number)
    return tuple(sorted(found)) or DEFAULT_PERCENTILES


def _thresholds(
    problems: Problems, value: Any, percentiles: tuple[float, ...]
) -> Thresholds | None:
    if value is MISSING:
        defaults = Thresholds()
        if defaults.percentile not in percentiles:
            problems.add(
                "thresholds.percentile",
                f"the default {defaults.percentile:g} is not among percentiles ({', '.join(f'{p:g}' for p in percentiles)}): set thresholds.percentile",
            )
        return defaults
    spec = v.mapping(problems, "thresholds", value, THRESHOLD_KEYS)
    if spec is None:
        return None
    values: dict[str, Any] = {}
    for key, item in spec.items():
        if key not in THRESHOLD_KEYS:
            continue
        path = v.join("thresholds", key)
        if key == "percentile":
            chosen = v.field(problems, path, item, v.number)
            if chosen is not None and chosen not in percentiles:
                problems.add(
                    path,
                    f"{chosen:g} is not among percentiles ({', '.join(f'{p:g}' for p in percentiles)})",
                )
            values[key] = chosen
        elif item is None:
            values[key] = None
        elif key == "filesystem_full_within":
            values[key] = v.field(problems, path, item, _duration)
        else:
            low, high, unit = THRESHOLD_RANGES[key]
            values[key] = v.field(
                problems, path, item, functools.partial(v.bounded, low=low, high=high, unit=unit)
            )
    if "percentile" not in spec and Thresholds.percentile not in percentiles:
        problems.add(
            "thresholds.percentile",
            f"the default {Thresholds.percentile:g} is not among percentiles: set it",
        )
    return Thresholds(**{k: x for k, x in values.items() if k != "percentile" or x is not None})


def _influxdb(
    problems: Problems, value: Any, environ: dict[str, str], base: Path, tenant: str | None
) -> InfluxAccess | None:
    if value is MISSING:
        return None
    spec = v.mapping(problems, "influxdb", value, INFLUX_KEYS, required=("username",))
    if spec is None:
        return None
    url = _optional(problems, "influxdb.url", spec.get("url", MISSING), _influxdb_url, None)
    database = _optional(problems, "influxdb.database", spec.get("database", MISSING), v.text, None)
    if database is not None and tenant is not None:
        _tenant_database(problems, database, tenant)
    username = _optional(problems, "influxdb.username", spec.get("username", MISSING), v.text, None)
    password = _password(problems, spec, environ, base)
    if username is None or password is None:
        return None
    return InfluxAccess(username, password, url, database)


def _tenant_database(problems: Problems, database: str, tenant: str) -> None:
    """A report reads its tenant's database only: another tenant's database would put that
    tenant's hosts under this tenant's name (every query also filters on the tenant tag)."""
    from perfanalysis.report.influx import ReportError
    from perfanalysis.report.source import database_for

    try:
        own = database_for(tenant)
    except ReportError as exc:
        problems.add("influxdb.database", f"cannot check it: {exc}")
        return
    if database != own:
        problems.add(
            "influxdb.database",
            f"{database} is not the database of tenant {tenant} ({own}): a report reads only "
            f"its own tenant's database; leave influxdb.database out or set it to {own}",
        )


def _influxdb_url(value: Any) -> str:
    """Checked as --influxdb.url is (settings.influxdb_base_url), with the same words."""
    url = v.text(value)
    try:
        return influxdb_base_url(url)
    except ValueError as exc:
        raise ValueError(f"invalid value {without_password(url)!r}: {exc}") from None


def _password(
    problems: Problems, spec: dict[str, Any], environ: dict[str, str], base: Path
) -> str | None:
    given = [key for key in ("password_env", "password_file") if key in spec]
    if len(given) != 1:
        problems.add(
            "influxdb",
            "give exactly one of password_env (an environment variable's "
            "name) or password_file (a file holding the password); passwords are never "
            "written in the report configuration",
        )
        return None
    key = given[0]
    name = v.field(problems, f"influxdb.{key}", spec[key], v.text)
    if name is None:
        return None
    if key == "password_env":
        if not environ.get(name):
            problems.add(
                "influxdb.password_env", f"environment variable {name} is not set or empty"
            )
            return None
        return environ[name]
    path = base / name
    try:
        secret = read_bounded(path, MAX_PASSWORD_BYTES).decode("utf-8").strip()
    except TooLarge as exc:
        problems.add("influxdb.password_file", f"{path} is {exc}: not a password file")
        return None
    except OSError as exc:
        problems.add("influxdb.password_file", f"cannot read {path}: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        problems.add("influxdb.password_file", f"{path} is not UTF-8 text")
        return None
    if not secret:
        problems.add("influxdb.password_file", f"{path} is empty")
        return None
    return secret
