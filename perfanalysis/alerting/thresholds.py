"""Load and validate provisioning/thresholds.yaml: defaults, per-tenant overrides, receivers.

Every problem is reported at once, each as ``FILE: key.path: what is wrong``, because the file is
edited by hand and a generator that stops at the first typo makes for slow round trips. A tenant's
override is merged field by field over the defaults (``{warning: 70}`` keeps the default critical
and ``for``), and the merged result is checked again, so warning-above-critical is caught even when
the two come from different places.

Receivers are never emptied by accident: a ``notify`` (a tenant's or the top-level one) that is
null, ``{}`` or lists no webhook nor e-mail is refused, because it would route alerts to the
``null`` receiver, which drops them. Muting is written out: ``notify: {mute: true}``. What is
valid but probably not meant comes back as ``Thresholds.warnings`` (the command prints them and
goes on): no default receiver (no top-level ``notify``, or a muted one), and no ``watchdog``
heartbeat. A mapping key YAML 1.1 reads as a boolean or null (``on:``, ``no:``, ``~:``) is
refused as written, quoted in the hint, rather than reported as ``True``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from perfanalysis import strictyaml
from perfanalysis.alerting.catalogue import RULES, SEVERITIES, Level, RuleDef
from perfanalysis.alerting.durations import format_duration, parse_duration

# the admin app's own rules for a tenant's slug and an e-mail address: tenants.validation needs
# only the standard library, so this does not pull in the admin app
from tenants.validation import EMAIL, SLUG

# Alertmanager's smtp_smarthost is split by Go's net.SplitHostPort: host:port, or [IPv6]:port.
HOSTPORT = re.compile(r"^(?:\[(?P<ipv6>[^\[\]]+)\]|(?P<host>[^\s:\[\]/@]+)):(?P<port>\d{1,5})$")
# What Go's url.Parse (so Alertmanager) accepts in a host name and in a URL's user:password, ASCII.
HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=")
USERINFO_CHARS = HOST_CHARS | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ:%@")
PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a % that does not start an escape
TOP_KEYS = ("defaults", "tenants", "notify", "smtp", "watchdog")
NOTIFY_KEYS = ("webhooks", "emails", "mute")
WATCHDOG_KEYS = ("webhooks", "mute")
# YAML 1.1 resolves these plain scalars to booleans and null; as mapping keys they are kept as
# written (_Loader) so that an error names the key as the file spells it.
BOOL_TAG, NULL_TAG = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"
AMBIGUOUS_TAG = "tag:perfanalysis,2026:ambiguous-key"
# Rules whose key changed because their meaning did: an old value must not be read in new units.
RENAMED = {
    "disk_io_saturation": (
        "renamed to disk_io_queue_length, which counts requests in flight (iostat's aqu-sz, "
        "node-mixin's signal; 10 is its default) instead of the fraction of time busy, which "
        "reads near 1 on SSD and NVMe devices far from saturation: set a queue length there"
    ),
}


class ThresholdsError(ValueError):
    """The thresholds file is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Setting:
    """One rule's settings in one scope, after merging a tenant's overrides over the defaults."""

    enabled: bool
    for_seconds: int
    warning: float | None = None
    critical: float | None = None
    severity: str | None = None  # condition rules only
    params: Mapping[str, float] = field(default_factory=dict)

    def levels(self) -> list[Level]:
        if not self.enabled:
            return []
        if self.severity is not None:
            return [Level(self.severity, None, self.for_seconds, self.params)]
        pairs = (("warning", self.warning), ("critical", self.critical))
        return [Level(s, t, self.for_seconds, self.params) for s, t in pairs if t is not None]


@dataclass(frozen=True)
class Notify:
    """Where alerts go. Falsy when it lists no receiver: alerts then go to ``null`` (dropped),
    which the file must say with ``mute: true``."""

    webhooks: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    mute: bool = False

    def __bool__(self) -> bool:
        return bool(self.webhooks or self.emails)


@dataclass(frozen=True)
class Smtp:
    smarthost: str
    sender: str
    require_tls: bool = True


@dataclass(frozen=True)
class Tenant:
    slug: str
    settings: Mapping[str, Setting]
    notify: Notify | None  # None: the tenant's alerts go to the default receiver


@dataclass(frozen=True)
class Thresholds:
    source: str
    defaults: Mapping[str, Setting]
    tenants: Mapping[str, Tenant]
    notify: Notify = Notify()
    smtp: Smtp | None = None
    watchdog: Notify | None = None  # the Watchdog's heartbeat; None: not configured
    warnings: tuple[str, ...] = ()  # valid but probably not meant, each as FILE: key: warning: ...


def load(path: str | Path) -> Thresholds:
    """Read and validate a thresholds file; ThresholdsError lists everything that is wrong."""
    source = str(path)
    try:
        data = strictyaml.load(Path(path).read_text(encoding="utf-8"), _Loader)
    except OSError as exc:
        raise ThresholdsError([f"{source}: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ThresholdsError([f"{source}: not UTF-8 text (byte {exc.start})"]) from None
    except strictyaml.DuplicateKeyError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ThresholdsError([f"{source}: {where}{exc.problem}"]) from None
    except strictyaml.StrictYAMLError as exc:  # an alias bomb, deep nesting, !!float two
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ThresholdsError([f"{source}: {where}{exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise ThresholdsError([f"{source}: not valid YAML: {exc}"]) from None
    return parse(data, source)


class _Key(str):
    """A mapping key YAML 1.1 reads as a boolean or null, as written (``on``, ``No``, ``~``)."""


class _Loader(strictyaml.StrictSafeLoader):
    """strictyaml's loader (a repeated key is an error) keeping boolean and null keys as _Key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag in (BOOL_TAG, NULL_TAG):
                    key_node.tag = AMBIGUOUS_TAG
        return super().construct_mapping(node, deep=deep)


def _ambiguous_key(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _Key:
    return _Key(node.value)


_Loader.add_constructor(AMBIGUOUS_TAG, _ambiguous_key)


def parse(data: Any, source: str = "thresholds") -> Thresholds:
    checker = _Checker(source)
    result = checker.thresholds(data)
    if checker.errors or result is None:
        raise ThresholdsError(checker.errors)
    return result


class _Checker:
    """Walks the parsed YAML, collecting errors instead of raising at the first one."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{self.source}: {path}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{self.source}: {path}: warning: {message}")

    def mapping(
        self, value: Any, path: str, allowed: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, got {_show(value)}")
            return {}
        result = {}
        for key, item in value.items():
            if isinstance(key, _Key | bool) or key is None:
                self.ambiguous_key(path, key)
            elif allowed is not None and key not in allowed:
                self.error(f"{path}.{key}", f"unknown key; expected one of: {', '.join(allowed)}")
            else:
                result[str(key)] = item
        return result

    def ambiguous_key(self, path: str, key: Any) -> None:
        """A key YAML reads as true, false or null: as loaded it is named as written; from
        ``parse`` on data already loaded, as YAML prints the value."""
        if isinstance(key, _Key):
            written = str(key) or "(an empty key)"
            meaning = "null" if _KEY_MEANING.get(str(key).lower()) is None else "a boolean"
        else:
            written = "null" if key is None else str(key).lower()
            meaning = "null" if key is None else "a boolean"
        self.error(
            f"{path}.{written}",
            f"YAML reads this key as {meaning}, not as text: quote it ('{written}':) to mean the "
            "name",
        )

    # -- the whole file

    def thresholds(self, data: Any) -> Thresholds | None:
        if not isinstance(data, dict):
            self.error("(top)", f"must be a mapping with {', '.join(TOP_KEYS)}, got {_show(data)}")
            return None
        top = self.mapping(data, "(top)", TOP_KEYS)
        if "defaults" not in top:
            self.error("defaults", "missing; every rule needs a default")
        raw_defaults = self.rules(top.get("defaults"), "defaults")
        for key in RULES:
            if "defaults" in top and key not in raw_defaults:
                self.error(f"defaults.{key}", "missing; every rule needs a default")
        defaults = {
            key: self.merge(RULES[key], raw, {}, f"defaults.{key}")
            for key, raw in raw_defaults.items()
        }
        tenants = self.tenants(top.get("tenants"), raw_defaults)
        notify = self.notify(top["notify"], "notify") if "notify" in top else Notify()
        watchdog = self.watchdog(top["watchdog"]) if "watchdog" in top else None
        smtp = self.smtp(top.get("smtp"), notify, tenants)
        self.warn_about_receivers(notify, watchdog, tenants, "notify" in top)
        if len(defaults) != len(RULES) or any(s is None for s in defaults.values()):
            return None
        complete = {k: s for k, s in defaults.items() if s is not None}
        return Thresholds(
            self.source, complete, tenants, notify, smtp, watchdog, tuple(self.warnings)
        )

    def warn_about_receivers(
        self,
        notify: Notify,
        watchdog: Notify | None,
        tenants: Mapping[str, Tenant],
        notify_given: bool,
    ) -> None:
        if not notify:
            falling = [slug for slug, tenant in tenants.items() if tenant.notify is None]
            whose = (
                f" (and of tenants {', '.join(falling)}, which have no notify)" if falling else ""
            )
            why = "is muted (mute: true)" if notify_given else "is not set"
            self.warn(
                "notify",
                f"{why}, so the default route goes to the null receiver: the alerts of "
                f"unlisted tenants, of targets without a tenant and the platform's own{whose} "
                "are dropped; list webhooks or emails there",
            )
        if watchdog is None:
            self.warn(
                "watchdog",
                "not set: the Watchdog alert, always firing, goes to a receiver without an "
                "integration, so nothing notices when Prometheus or Alertmanager stops; set "
                "watchdog.webhooks to an external heartbeat (a dead man's switch) that pages "
                "when its posts stop, or write watchdog: {mute: true} to go without",
            )

    def tenants(self, value: Any, raw_defaults: dict[str, dict[str, Any]]) -> dict[str, Tenant]:
        result = {}
        for slug, entry in sorted(self.mapping(value, "tenants").items()):
            path = f"tenants.{slug}"
            if not SLUG.match(slug):
                self.error(
                    path, "tenant slug must be 1-40 lowercase letters, digits and inner hyphens"
                )
                continue
            body = self.mapping(entry, path)
            notify = (
                self.notify(body.pop("notify"), f"{path}.notify", tenant=True)
                if "notify" in body
                else None
            )
            overrides = self.rules(body, path)
            settings = {}
            for key, default in raw_defaults.items():
                merged = self.merge(RULES[key], default, overrides.get(key, {}), f"{path}.{key}")
                if merged is not None:
                    settings[key] = merged
            result[slug] = Tenant(slug, settings, notify)
        return result

    # -- one rule's settings

    def rules(self, value: Any, path: str) -> dict[str, dict[str, Any]]:
        result = {}
        for key, entry in self.mapping(value, path).items():
            if key in RENAMED:
                self.error(f"{path}.{key}", RENAMED[key])
                continue
            if key not in RULES:
                known = ", ".join(RULES)
                self.error(
                    f"{path}.{key}", f"unknown rule; known rules (and notify for tenants): {known}"
                )
                continue
            result[key] = self.fields(RULES[key], entry, f"{path}.{key}")
        return result

    def fields(self, rule: RuleDef, value: Any, path: str) -> dict[str, Any]:
        levels = SEVERITIES if rule.thresholds else ("severity",)
        allowed = (*levels, "for", "enabled", *(p.name for p in rule.params))
        raw = self.mapping(value, path, allowed)
        out: dict[str, Any] = {}
        for name, item in raw.items():
            where = f"{path}.{name}"
            if name == "for":
                out[name] = self.duration(item, where, rule)
            elif name == "enabled":
                if not isinstance(item, bool):
                    self.error(where, f"must be true or false, got {_show(item)}")
                out[name] = item is not False
            elif name == "severity":
                if item not in SEVERITIES:
                    self.error(where, f"must be one of {', '.join(SEVERITIES)}, got {_show(item)}")
                out[name] = item
            elif name in SEVERITIES and item is None:
                out[name] = None  # removes this level
            elif name in SEVERITIES:
                bounds = (rule.low, rule.high, rule.low_open, rule.high_open)
                out[name] = self.number(item, where, *bounds, rule.unit, rule.low_reason)
            else:
                param = next(p for p in rule.params if p.name == name)
                bounds = (param.low, param.high, param.low_open, param.high_open)
                out[name] = self.number(item, where, *bounds, name)
        return out

    def merge(
        self, rule: RuleDef, default: dict[str, Any], override: dict[str, Any], path: str
    ) -> Setting | None:
        """Overlay a tenant's fields on the defaults; problems of the defaults alone are reported
        once, under ``defaults``, not again for every tenant."""
        in_defaults = path.startswith("defaults.")
        merged = {**default, **override}
        if any(v is _INVALID for v in merged.values()):
            return None
        missing = [n for n in ("for", *(p.name for p in rule.params)) if n not in merged]
        if not rule.thresholds and "severity" not in merged:
            missing.insert(0, "severity")
        if missing:
            if in_defaults:
                self.error(path, f"missing {', '.join(missing)}")
            return None
        setting = Setting(
            enabled=merged.get("enabled", True),
            for_seconds=merged["for"],
            warning=merged.get("warning"),
            critical=merged.get("critical"),
            severity=merged.get("severity"),
            params={p.name: merged[p.name] for p in rule.params},
        )
        if rule.thresholds and setting.enabled and (in_defaults or override):
            self.order(rule, setting, override, path)
        return setting

    def order(
        self,
        rule: RuleDef,
        setting: Setting,
        override: dict[str, Any],
        path: str,
    ) -> None:
        warning, critical = setting.warning, setting.critical
        if warning is None and critical is None:
            self.error(path, "needs a warning or a critical threshold (or enabled: false)")
            return
        if warning is None or critical is None:
            return

        def where(name: str) -> str:
            return "" if name in override or not override else ", from defaults"

        if rule.higher_is_worse and warning >= critical:
            relation = "below"
        elif not rule.higher_is_worse and warning <= critical:
            relation = "above"
        else:
            return
        self.error(
            path,
            f"warning ({warning:g}{where('warning')}) must be {relation} "
            f"critical ({critical:g}{where('critical')}): {rule.unit}",
        )

    # -- scalars

    def number(
        self,
        value: Any,
        path: str,
        low: float,
        high: float | None,
        low_open: bool,
        high_open: bool,
        unit: str,
        low_reason: str = "",
    ) -> float | object:
        """A threshold or parameter within its range; an open end excludes the bound (the rule
        could never fire there, could not tell it apart from another level, or would fire always:
        ``low_reason`` says so when the value is the bound itself)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(path, f"must be a number ({unit}), got {_show(value)}")
            return _INVALID
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or too_low or too_high:
            lower = f"above {low:g}" if low_open else f"at least {low:g}"
            upper = "" if high is None else f" and {'below' if high_open else 'at most'} {high:g}"
            why = f"; {low_reason}" if low_reason and value == low else ""
            self.error(path, f"must be {lower}{upper} ({unit}{why}), got {value!r}")
            return _INVALID
        return float(value)

    def duration(self, value: Any, path: str, rule: RuleDef) -> int | object:
        if not isinstance(value, str):
            self.error(path, f"must be a duration such as 30s, 10m or 1h30m, got {_show(value)}")
            return _INVALID
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return _INVALID
        if seconds > rule.max_for:
            self.error(
                path,
                f"must be at most {format_duration(rule.max_for)} ({rule.max_for_reason}), "
                f"got {value!r}",
            )
            return _INVALID
        if seconds < rule.min_for:
            self.error(
                path,
                f"must be at least {format_duration(rule.min_for)} (a condition rule with a "
                "shorter for fires on a single failed scrape or evaluation), got "
                f"{value!r}",
            )
            return _INVALID
        return seconds

    def notify(self, value: Any, path: str, tenant: bool = False) -> Notify:
        """A receiver list; one that lists nothing must say ``mute: true``."""
        body = self.mapping(value, path, NOTIFY_KEYS) if value is not None else {}
        webhooks = self.strings(body.get("webhooks"), f"{path}.webhooks")
        emails = self.strings(body.get("emails"), f"{path}.emails")
        for index, url in enumerate(webhooks):
            problem = webhook_problem(url)
            if problem:
                self.error(f"{path}.webhooks[{index}]", f"{problem}, got {url!r}")
        for index, address in enumerate(emails):
            if not EMAIL.match(address):
                self.error(f"{path}.emails[{index}]", f"is not an e-mail address: {address!r}")
        mute = self.mute(body, path, bool(webhooks or emails))
        if value is not None and not isinstance(value, dict):
            return Notify(mute=True)  # reported by mapping(); muted so nothing else complains
        if not (webhooks or emails or mute):
            instead = "remove notify to send them to the default receiver, " if tenant else ""
            whose = "the tenant's alerts" if tenant else "the alerts of the default route"
            self.error(
                path,
                f"{_emptiness(value)}: it would send {whose} to the null receiver, which "
                f"drops them; list webhooks or emails, {instead}or write {path.split('.')[-1]}: "
                "{mute: true} to drop them on purpose",
            )
            return Notify(mute=True)
        return Notify(tuple(webhooks), tuple(emails), mute)

    def watchdog(self, value: Any) -> Notify:
        """The heartbeat receiver: webhooks only (a mail every minute is no heartbeat)."""
        path = "watchdog"
        body = self.mapping(value, path, WATCHDOG_KEYS) if value is not None else {}
        webhooks = self.strings(body.get("webhooks"), f"{path}.webhooks")
        for index, url in enumerate(webhooks):
            problem = webhook_problem(url)
            if problem:
                self.error(f"{path}.webhooks[{index}]", f"{problem}, got {url!r}")
        mute = self.mute(body, path, bool(webhooks))
        if isinstance(value, dict | None) and not (webhooks or mute):
            self.error(
                path,
                f"{_emptiness(value)}: list the webhooks of an external heartbeat, or "
                "write watchdog: {mute: true} to go without one",
            )
        return Notify(tuple(webhooks), (), mute)

    def mute(self, body: Mapping[str, Any], path: str, receivers: bool) -> bool:
        value = body.get("mute", False)
        if not isinstance(value, bool):
            self.error(f"{path}.mute", f"must be true or false, got {_show(value)}")
            return True  # reported; nothing more to say about this receiver
        if value and receivers:
            self.error(
                f"{path}.mute",
                "true, but receivers are listed too: remove mute, or the receivers",
            )
        return value is True

    def strings(self, value: Any, path: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(path, f"must be a list of strings, got {_show(value)}")
            return []
        return value

    def smtp(self, value: Any, notify: Notify, tenants: Mapping[str, Tenant]) -> Smtp | None:
        users = ["notify.emails"] if notify.emails else []
        users += [
            f"tenants.{t.slug}.notify.emails"
            for t in tenants.values()
            if t.notify and t.notify.emails
        ]
        if value is None:
            if users:
                self.error("smtp", f"missing; needed to send e-mail ({', '.join(users)})")
            return None
        body = self.mapping(value, "smtp", ("smarthost", "from", "require_tls"))
        smarthost, sender = body.get("smarthost"), body.get("from")
        if not isinstance(smarthost, str) or not smarthost_valid(smarthost):
            self.error(
                "smtp.smarthost",
                f"must be host:port (or [IPv6]:port), the port from 1 to 65535, "
                f"got {_show(smarthost)}",
            )
        if not isinstance(sender, str) or not EMAIL.match(sender):
            self.error("smtp.from", f"must be an e-mail address, got {_show(sender)}")
        require_tls = body.get("require_tls", True)
        if not isinstance(require_tls, bool):
            self.error("smtp.require_tls", f"must be true or false, got {_show(require_tls)}")
        return Smtp(str(smarthost), str(sender), require_tls is not False)


def webhook_problem(url: str) -> str | None:
    """Why Alertmanager would refuse this webhook URL, or could never connect to it; None if not.

    Alertmanager parses it with Go's url.Parse and wants http(s) and a host. Python's urlsplit
    is more lenient (it drops tabs and newlines, and takes any character in a host name), so
    Go's rules are checked here: the generated alertmanager.yml must load.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "must not contain a control character (a tab, a newline, ...)"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # a malformed [IPv6] host
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host"
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = parts.hostname
    if not hostport.startswith("["):
        bad = sorted({c for c in host if c.isspace() or (c.isascii() and c not in HOST_CHARS)})
        if bad:
            shown = ", ".join(repr(c) for c in bad)
            return f"has a character a host name cannot have ({shown})"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    if any(c.isascii() and c not in USERINFO_CHARS for c in userinfo):
        return "has a character a URL's user:password part cannot have (escape it as %XX)"
    for part, name in (
        (userinfo, "user:password"),
        (parts.path, "path"),
        (parts.fragment, "#fragment"),
    ):
        if PERCENT.search(part):
            return f"has a % in its {name} that does not start a %XX escape"
    return None


def smarthost_valid(smarthost: str) -> bool:
    """host:port or [IPv6]:port, as Alertmanager splits it, with a port one can connect to."""
    match = HOSTPORT.match(smarthost)
    if match is None or any(ord(c) < 0x20 or ord(c) == 0x7F for c in smarthost):
        return False
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            return False
    return 1 <= int(match["port"]) <= 65535


_INVALID = object()  # a field that failed validation; the rule it belongs to is skipped
# How YAML 1.1 reads a bool or null key, by its lower-cased spelling (None: null).
_KEY_MEANING: dict[str, bool | None] = {
    **dict.fromkeys(("yes", "true", "on"), True),
    **dict.fromkeys(("no", "false", "off"), False),
    **dict.fromkeys(("~", "null", ""), None),
}


def _emptiness(value: Any) -> str:
    """How a receiver list came to be empty, as the file has it."""
    if value is None:
        return "is empty (null)"
    if not value:
        return "is empty ({})"
    return "lists no receiver"


def _show(value: Any) -> str:
    """The type and the value, cut short: a list of aliases may stand for millions of items."""
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {strictyaml.show(value)}"
