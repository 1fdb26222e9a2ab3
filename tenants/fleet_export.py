"""The fleet as the admin CLI shows it: listings of a tenant's collectors, keys and users (table,
CSV or JSON), and Prometheus file-SD target files generated from the registered collectors.

Everything is read a page at a time through the paged data-access functions
(``collectors_page``, ``keys_page``, ``users_page``, ``members_page``) and written out row by
row, so that a tenant of 10,000 collectors costs the memory of one page, never of the list. A
key's secret hash is never read into a row.

Target files are what ``provisioning/prometheus/prometheus.yml``'s ``file_sd_configs`` read (and
``perfanalysis alerting generate`` checks, perfanalysis.alerting.targets): one ``<slug>.yml`` per
tenant, one group per enabled collector, ``<hostname>:<port>`` labelled with ``tenant`` (what the
rules select each tenant's thresholds by) and ``collector`` (its name, as ingest tags its
points). A file is replaced whole (perfanalysis.atomicfile) and only when its contents change.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy.orm import Session

from perfanalysis import atomicfile
from tenants import csvsafe, validation
from tenants.access import Actor, visible_tenants_page
from tenants.accounts import members_page, memberships_of, users_page
from tenants.collectors import collectors_page
from tenants.errors import Invalid
from tenants.keys import keys_page
from tenants.models import ApiKey, Collector, Tenant, User, utcnow
from tenants.paging import Page

T = TypeVar("T")
PAGE_SIZE = 500
FORMATS = ("table", "csv", "json")
Write = Callable[[str], None]


def paged(fetch: Callable[[str | None], Page[T]]) -> Iterator[list[T]]:
    """Each page of a keyset-paged list, fetched when the one before has been used."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


# ---- listings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    value: Callable[[Any], Any]  # the row's value as JSON gives it (datetimes as they are)
    in_table: bool = True  # CSV and JSON hold every column; the table those a terminal fits


@dataclass(frozen=True)
class Listing:
    columns: tuple[Column, ...]
    pages: Iterator[list[Any]]


def _labels(collector: Collector) -> dict[str, str]:
    return dict(collector.labels or {})


COLLECTOR_COLUMNS = (
    Column("id", lambda c: c.id),
    Column("name", lambda c: c.name),
    Column("hostname", lambda c: c.hostname),
    Column("status", lambda c: c.status),
    Column("host_tag", lambda c: c.host_tag),
    Column("labels", _labels, in_table=False),
    Column("vcpus", lambda c: c.vcpus, in_table=False),
    Column("memory_bytes", lambda c: c.memory_bytes, in_table=False),
    Column("cloud_provider", lambda c: c.cloud_provider, in_table=False),
    Column("region", lambda c: c.region, in_table=False),
    Column("instance_type", lambda c: c.instance_type),
    Column("created_at", lambda c: c.created_at, in_table=False),
    Column("last_seen_at", lambda c: c.last_seen_at),
    Column("points_received", lambda c: c.points_received),
)


def collectors(db: Session, actor: Actor, tenant: Tenant) -> Listing:
    """The tenant's collectors by name."""
    pages = paged(lambda cursor: collectors_page(db, actor, tenant, PAGE_SIZE, cursor))
    return Listing(COLLECTOR_COLUMNS, pages)


def key_columns(now: datetime) -> tuple[Column, ...]:
    """A key's public parts: never its secret, nor the hash of it."""
    return (
        Column("key_id", lambda k: k.key_id),
        Column("prefix", lambda k: f"pak_{k.key_id}_", in_table=False),
        Column("name", lambda k: k.name),
        Column("collector", lambda k: k.collector.name),
        Column("state", lambda k: k.state(now)),
        Column("created_at", lambda k: k.created_at),
        Column("expires_at", lambda k: k.expires_at),
        Column("revoked_at", lambda k: k.revoked_at),
        Column("last_used_at", lambda k: k.last_used_at),
    )


def keys(db: Session, actor: Actor, tenant: Tenant) -> Listing:
    """The tenant's keys, newest first, each with its collector."""
    pages: Iterator[list[ApiKey]] = paged(
        lambda cursor: keys_page(db, actor, tenant, PAGE_SIZE, cursor)
    )
    return Listing(key_columns(utcnow()), pages)


@dataclass(frozen=True)
class UserRow:
    user: User
    role: str | None = None  # in the tenant listed
    tenants: tuple[tuple[str, str], ...] = ()  # every (slug, role), when all users are listed


def _user_columns(member: bool) -> tuple[Column, ...]:
    columns = [
        Column("id", lambda r: r.user.id),
        Column("email", lambda r: r.user.email),
        Column("name", lambda r: r.user.name),
    ]
    if member:
        columns.append(Column("role", lambda r: r.role))
    columns += [
        Column("active", lambda r: r.user.is_active),
        Column("platform_admin", lambda r: r.user.is_platform_admin),
        Column("created_at", lambda r: r.user.created_at, in_table=False),
        Column("last_login_at", lambda r: r.user.last_login_at),
    ]
    if not member:
        columns.append(Column("tenants", lambda r: {slug: role for slug, role in r.tenants}))
    return tuple(columns)


def users(db: Session, actor: Actor, tenant: Tenant | None = None) -> Listing:
    """A tenant's members with their roles, or every user with their tenants (one query more a
    page), by e-mail."""
    if tenant is not None:
        members = paged(lambda cursor: members_page(db, actor, tenant, PAGE_SIZE, cursor))
        rows = ([UserRow(user, role) for user, role in page] for page in members)
        return Listing(_user_columns(member=True), rows)

    def with_tenants(page: list[User]) -> list[UserRow]:
        tenants = memberships_of(db, actor, page)
        return [UserRow(user, tenants=tuple((t.slug, role) for t, role in tenants[user.id]))
                for user in page]  # fmt: skip

    everyone = paged(lambda cursor: users_page(db, actor, PAGE_SIZE, cursor))
    return Listing(_user_columns(member=False), (with_tenants(page) for page in everyone))


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_value(value: Any) -> Any:
    return _timestamp(value) if isinstance(value, datetime) else value


def _cell(value: Any) -> str:
    """A value as CSV and the table show it: ISO 8601 UTC times, true/false, JSON for mappings
    (labels, a user's tenants)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


# C0 and C1 controls and DEL, and the bidirectional overrides: a name stored before names were
# checked must not move a terminal's cursor or reorder what follows it
_UNSHOWABLE = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [*range(0x20), *range(0x7F, 0xA0), *map(ord, validation.BIDI_CONTROLS)]
}


def shown(text: str) -> str:
    """The text with what a terminal would act on written as escapes (\\x1b, \\u202e)."""
    return text.translate(_UNSHOWABLE)


def _width(text: str) -> int:
    """Columns a terminal gives the text: wide East Asian characters two, combining marks none."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF"
        else 1
        for char in text
    )  # fmt: skip


def write_listing(listing: Listing, output_format: str, write: Write) -> int:
    """Write the listing in ``output_format`` (one of FORMATS) a page at a time; the rows
    written. A table's columns take the widths of the first page's values (a longer value
    later widens its column from its row on)."""
    if output_format not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)}, not {output_format!r}",
                      "format")  # fmt: skip
    if output_format == "json":
        return _write_json(listing, write)
    if output_format == "csv":
        return _write_csv(listing, write)
    return _write_table(listing, write)


def _write_json(listing: Listing, write: Write) -> int:
    count = 0
    for page in listing.pages:
        for row in page:
            item = {column.name: _json_value(column.value(row)) for column in listing.columns}
            write(("[\n  " if count == 0 else ",\n  ") + json.dumps(item, ensure_ascii=False))
            count += 1
    write("[]\n" if count == 0 else "\n]\n")
    return count


def _write_csv(listing: Listing, write: Write) -> int:
    """Text a spreadsheet would run as a formula gets a leading apostrophe (tenants.csvsafe)."""
    write(csvsafe.records([[column.name for column in listing.columns]], "\n"))
    count = 0
    for page in listing.pages:
        cells = [[_cell(column.value(row)) for column in listing.columns] for row in page]
        write(csvsafe.records(cells, "\n"))
        count += len(cells)
    return count


def _write_table(listing: Listing, write: Write) -> int:
    columns = [column for column in listing.columns if column.in_table]
    widths = [len(column.name) for column in columns]
    count = 0
    header_written = False
    for page in listing.pages:
        cells = [[shown(_cell(column.value(row))) or "-" for column in columns] for row in page]
        if not header_written:
            for line in cells:
                widths = _widened(widths, line)
            write(_table_line([column.name.upper() for column in columns], widths))
            header_written = True
        for line in cells:
            widths = _widened(widths, line)
            write(_table_line(line, widths))
        count += len(cells)
    if not header_written:
        write(_table_line([column.name.upper() for column in columns], widths))
    return count


def _widened(widths: list[int], cells: list[str]) -> list[int]:
    return [max(width, _width(cell)) for width, cell in zip(widths, cells, strict=True)]


def _table_line(cells: list[str], widths: list[int]) -> str:
    padded = [
        cell + " " * (width - _width(cell)) for cell, width in zip(cells, widths, strict=True)
    ]
    return "  ".join(padded).rstrip() + "\n"


# ---- Prometheus target files --------------------------------------------------------------------

HEADER = "# Generated by `perfanalysis admin export-targets` from the admin database"
SUFFIX = ".yml"  # the files provisioning/prometheus/prometheus.yml's file_sd_configs read
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def header(slug: str) -> str:
    return (
        f"{HEADER}: the enabled collectors of\n"
        f"# tenant {slug}, as <hostname>:<port> labelled with the tenant and the collector's name.\n"
        "# Do not edit: the next export replaces it. Register, disable or enable collectors.\n"
    )


@dataclass
class TargetFile:
    """One tenant's target file: its text and what went into it."""

    slug: str
    text: str
    targets: int
    reason: str = ""  # why it lists none: the tenant is disabled, or has no enabled collector
    left_out: list[str] = field(default_factory=list)  # collectors Prometheus could not scrape


def target_file(db: Session, actor: Actor, tenant: Tenant, port: int) -> TargetFile:
    """The tenant's target file, read a page of collectors at a time; a disabled tenant's lists
    no target, nor does it a disabled collector's. A hostname that is not a DNS name (stored
    before hostnames were checked) is left out and named in ``left_out``."""
    parts = [header(tenant.slug)]
    found = TargetFile(tenant.slug, "", 0)
    if not tenant.active:
        found.reason = "the tenant is disabled"
    else:
        for page in paged(lambda cursor: collectors_page(db, actor, tenant, PAGE_SIZE, cursor)):
            groups = []
            for collector in page:
                if not collector.active:
                    continue
                if not validation.HOSTNAME.match(collector.hostname):
                    found.left_out.append(
                        f"collector {collector.name!r}: hostname {collector.hostname!r} is not a "
                        "DNS name"
                    )
                    continue
                groups.append({"targets": [f"{collector.hostname}:{port}"],
                               "labels": {"tenant": tenant.slug, "collector": collector.name}})  # fmt: skip
            if groups:
                parts.append(yaml.dump(groups, Dumper=_Dumper, sort_keys=False, width=4096,
                                       allow_unicode=True))  # fmt: skip
                found.targets += len(groups)
        if not found.targets:
            found.reason = "no enabled collector"
    if not found.targets:
        parts.append("[]\n")
    found.text = "".join(parts)
    return found


@dataclass
class ExportResult:
    say: Callable[[str], None]  # one line a tenant or file, as it is done: what was done
    warn: Callable[[str], None]
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    left_alone: int = 0  # hand-written files that were kept where the registry says otherwise
    targets: int = 0
    tenants: int = 0

    @property
    def complete(self) -> bool:
        """Whether every target file says what the registry does."""
        return not self.left_alone

    def summary(self, directory: Path) -> str:
        parts = [f"{self.written} written", f"{self.unchanged} unchanged"]
        if self.removed:
            parts.append(f"{self.removed} removed")
        if self.left_alone:
            parts.append(f"{self.left_alone} hand-written left alone")
        tenants = f"{self.tenants} tenant{'s' if self.tenants != 1 else ''}"
        targets = f"{self.targets} target{'s' if self.targets != 1 else ''}"
        return f"{shown(str(directory))}: {tenants}, {targets}; files: {', '.join(parts)}"


def is_generated(path: Path) -> bool:
    """Whether the file starts with this module's header (a file that cannot be read is not)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(HEADER)).decode("utf-8", "replace") == HEADER
    except OSError:
        return False


def _lists_targets(path: Path) -> int:
    """How many targets a hand-written file gives Prometheus (one it refuses gives none)."""
    from perfanalysis.alerting.targets import TargetFileError, read_target_file

    try:
        return read_target_file(path).targets
    except TargetFileError:
        return 0


def _is_target_list(data: bytes) -> bool:
    """Whether a file's text is a target file's shape: a YAML list, or empty (comments only),
    and not, say, prometheus.yml (a mapping) in a DIR given by mistake."""
    import yaml

    try:
        document = next(iter(yaml.safe_load_all(data)), None)
    except yaml.YAMLError:
        return False
    return document is None or isinstance(document, list)


def _current(path: Path) -> bytes | None:
    """What the file holds; None when there is none. OSError (naming it) when it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise OSError(exc.errno, "it is a directory, not a target file", str(path)) from None


def export_targets(
    db: Session,
    actor: Actor,
    directory: Path,
    port: int,
    tenants: Iterable[Tenant] | None = None,
    prune: bool = False,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> ExportResult:
    """Write each tenant's target file into ``directory`` (every tenant when ``tenants`` is
    None), each only when its contents change.

    Nothing is removed without ``prune``. With it, the file of a tenant that lists no target is
    removed rather than written empty, and when every tenant is exported, so is each ``*.yml``
    of the directory whose name is no tenant's slug and that this command wrote (its generated
    header): a file it did not write is never removed (a wrong DIR must not cost
    prometheus.yml). A file without the generated header
    (written by hand) that lists targets is left alone, and said, unless ``prune``: its hosts
    would be lost. Each tenant's or file's outcome is given to ``say`` as it is done, problems
    to ``warn``, with control characters escaped as the table's are (a file in the directory,
    a collector stored before names were checked, may hold them). OSError (naming the file)
    when a file cannot be read, written or removed.
    """
    result = ExportResult(lambda line: say(shown(line)), lambda line: warn(shown(line)))
    every = tenants is None
    if tenants is None:
        tenants = (tenant for page in paged(
            lambda cursor: visible_tenants_page(db, actor, PAGE_SIZE, cursor)) for tenant in page)  # fmt: skip
    slugs: set[str] = set()
    for tenant in tenants:
        slugs.add(tenant.slug)
        result.tenants += 1
        _export_one(result, target_file(db, actor, tenant, port), directory, prune)
    if every:
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            if path.stem in slugs or not path.is_file():
                continue
            if not is_generated(path):  # not this command's: prometheus.yml, say, or by hand
                result.say(f"{path}: no tenant {path.stem}: left as it is (not written by "
                           "export-targets, which removes only its own files)")  # fmt: skip
                continue
            whose = "generated"
            if prune:
                path.unlink()
                result.removed += 1
                result.say(f"{path}: no tenant {path.stem}: removed ({whose})")
            else:
                result.say(f"{path}: no tenant {path.stem}: left as it is ({whose}; "
                                    "--prune removes it)")  # fmt: skip
    return result


def _export_one(result: ExportResult, found: TargetFile, directory: Path, prune: bool) -> None:
    path = directory / f"{found.slug}{SUFFIX}"
    for problem in found.left_out:
        result.warn(f"{found.slug}: {problem}: left out of {path}")
    result.targets += found.targets
    count = f"{found.targets} target{'s' if found.targets != 1 else ''}"
    what = count if found.targets else f"no target ({found.reason})"
    before = _current(path)
    if before is not None and not is_generated(path) and not _is_target_list(before):
        result.left_alone += 1
        result.warn(
            f"{found.slug}: {path} is not a target file (not a YAML list of target groups) and "
            "export-targets did not write it: left as it is, even with --prune; is DIR the "
            "directory of target files?"
        )
        return
    if before is not None and not is_generated(path):
        listed = _lists_targets(path)
        if listed and not prune:
            result.left_alone += 1
            result.warn(
                f"{found.slug}: {path} was written by hand and lists {listed} "
                f"target{'s' if listed != 1 else ''}: left as it is, so it does not list the "
                f"registered collectors ({what}); move its hosts into the registry, then run "
                "again with --prune to replace it"
            )
            return
    if prune and not found.targets:
        if before is None:
            result.say(f"{found.slug}: {what}: no file")
            return
        path.unlink()
        result.removed += 1
        result.say(f"{found.slug}: {what}: {path} removed")
        return
    data = found.text.encode()
    if before == data:
        result.unchanged += 1
        result.say(f"{found.slug}: {what}: {path} unchanged")
        return
    atomicfile.write(path, data)
    result.written += 1
    result.say(f"{found.slug}: {what}: {path} written")
