"""One configuration parser for every component.

Each setting is declared once, with a flag (``--web.listen-address``) and an environment variable
derived from it under the component's prefix (``PERFANALYSIS_EXPORTER_WEB_LISTEN_ADDRESS``).
Precedence is flag, then environment (the prefixed variable, then the conventional one a
setting may name, such as ``DATABASE_URL``), then default. A flag given twice is refused, as
node_exporter's parser (kingpin) refuses it, rather than the last value silently winning, unless
its setting is declared ``repeatable`` (then its value is the list of values given). Parsing never
stops at the first problem: it collects every error, names the flag or variable at fault, and
raises them together so an operator fixes a bad deployment in one pass.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

Converter = Callable[[str], Any]


class ConfigError(Exception):
    """Raised with every problem found while parsing one component's configuration."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class HelpRequested(Exception):
    """Raised when ``-h``/``--help`` is given; carries the rendered help text."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)


class VersionRequested(HelpRequested):
    """Raised for ``--version`` where the spec has a version: printed, exit 0, as help is."""


@dataclass(frozen=True)
class Setting:
    """A single setting: ``flag`` is written without the leading dashes."""

    flag: str
    help: str
    default: Any = None
    convert: Converter = str
    boolean: bool = False
    secret: bool = False
    metavar: str = "VALUE"
    validate: Callable[[Any], str | None] | None = None
    repeatable: bool = False  # the flag may be given several times; the value is then a list
    # a conventional variable (DATABASE_URL) read when the prefixed one is unset: a value taken
    # from it is named by it in errors, for that is the variable the operator set
    conventional_env: str | None = None

    @property
    def dest(self) -> str:
        return re.sub(r"[^0-9a-zA-Z]+", "_", self.flag).strip("_").lower()

    def env_name(self, prefix: str) -> str:
        return f"{prefix}{re.sub(r'[^0-9a-zA-Z]+', '_', self.flag).strip('_').upper()}"

    def env_names(self, prefix: str) -> tuple[str, ...]:
        """The variables read for this setting, the one that wins first."""
        own = self.env_name(prefix)
        return (own,) if self.conventional_env is None else (own, self.conventional_env)


@dataclass
class Spec:
    """All settings of one component, with its environment prefix."""

    program: str
    env_prefix: str
    description: str
    settings: list[Setting] = field(default_factory=list)
    # cross-setting rules: each gets the parsed values and returns problems found
    checks: list[Callable[[dict[str, Any]], list[str]]] = field(default_factory=list)
    # old flag names still accepted for a setting (old -> setting's flag), with a warning
    aliases: dict[str, str] = field(default_factory=dict)
    # boolean flags of the program this one replaces, for things it lacks (flag -> why): turning
    # one off is accepted with a warning (it changes nothing), turning it on is refused
    absent: dict[str, str] = field(default_factory=dict)
    version: str | None = None  # what --version prints; no --version flag when None

    def add(self, setting: Setting) -> None:
        if any(s.flag == setting.flag for s in self.settings):
            raise ValueError(f"duplicate setting {setting.flag}")
        self.settings.append(setting)

    def by_flag(self) -> dict[str, Setting]:
        return {s.flag: s for s in self.settings}

    def help_text(self) -> str:
        lines = [f"usage: {self.program} [flags]", "", self.description, "", "flags:"]
        for s in self.settings:
            name = f"--[no-]{s.flag}" if s.boolean else f"--{s.flag}={s.metavar}"
            value = _shown_default(s)
            default = "" if value is None else f" (default: {value!r})"
            lines.append(f"  {name}{' ...' if s.repeatable else ''}")
            lines.append(f"      {s.help}{default} [env {s.env_name(self.env_prefix)}]")
        if self.version is not None:
            lines += ["  --version", "      Show the version and exit."]
        return "\n".join(lines)

    def markdown_table(self) -> str:
        rows = ["| flag | environment variable | default | meaning |", "|---|---|---|---|"]
        for s in self.settings:
            value = _shown_default(s)
            default = "" if value is None else f"`{value}`"
            cells = (f"`--{s.flag}`", f"`{s.env_name(self.env_prefix)}`", default, s.help)
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(rows)


def _shown_default(setting: Setting) -> Any:
    """The default as people write it (a compiled pattern as its text); None if not shown."""
    if setting.secret or setting.default in (None, ""):
        return None
    default = setting.default
    return default.pattern if isinstance(default, re.Pattern) else default


TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of true/false/1/0/yes/no/on/off, got {text!r}")


def parse(
    spec: Spec,
    argv: Sequence[str],
    environ: Mapping[str, str],
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Parse ``argv`` and ``environ`` against ``spec``; raise ConfigError listing every problem.

    Warnings that stop nothing (a deprecated flag name, turning off something this program
    lacks) are appended to ``notes``, for the caller to log once its logging is set up.
    """
    settings = spec.by_flag()
    errors: list[str] = []
    warnings: list[str] = []
    raw: dict[str, list[tuple[str, str]]] = {}  # flag -> each (text, where); flags replace env

    for s in spec.settings:
        env = next((name for name in s.env_names(spec.env_prefix) if name in environ), None)
        if env is not None:
            raw[s.flag] = [(environ[env], f"environment variable {env}")]
    known_envs = {s.env_name(spec.env_prefix) for s in spec.settings}
    for env in sorted(environ):
        if env.startswith(spec.env_prefix) and env not in known_envs:
            hint = _suggest(env, known_envs)
            errors.append(f"environment variable {env}: not a known setting{hint}")

    given: dict[str, list[str]] = {}  # flag -> each value as given on the command line

    def record(flag: str, text: str, where: str, shown: str) -> None:
        if flag not in given:
            raw[flag] = []  # the command line replaces the environment
        raw[flag].append((text, where))
        given.setdefault(flag, []).append(shown)

    i = 0
    args = list(argv)
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in ("-h", "--help"):
            raise HelpRequested(spec.help_text())
        if arg == "--version" and spec.version is not None:
            raise VersionRequested(spec.version)
        if not arg.startswith("--"):
            errors.append(f"argument {arg!r}: unexpected positional argument")
            continue
        name, has_value, value = arg[2:].partition("=")
        negated = False
        if name not in settings and name.startswith("no-") and name[3:] in settings:
            name, negated = name[3:], True
        if name not in settings and _absent_flag(
            spec, name, bool(has_value), value, errors, warnings
        ):
            continue
        alias = None
        if name in spec.aliases:
            alias, name = name, spec.aliases[name]
            warnings.append(f"flag --{alias} is DEPRECATED, use --{name} (the same setting)")
        setting = settings.get(name)
        if setting is None:
            errors.append(f"flag --{name}: unknown flag{_suggest(name, settings, spec.aliases)}")
            continue
        where = f"flag --{'no-' if negated else ''}{alias or name}"
        if setting.boolean:
            if negated and has_value:
                errors.append(f"{where}: takes no value")
                continue
            record(name, "false" if negated else (value if has_value else "true"), where, arg)
            continue
        if negated:
            errors.append(f"{where}: --{name} is not a boolean flag")
            continue
        if not has_value:
            if i >= len(args) or (args[i].startswith("--") and args[i] != "--"):
                errors.append(f"{where}: needs a value")
                continue
            value = args[i]
            i += 1
        shown = "<hidden>" if setting.secret else repr(value)
        record(name, value, where, shown if alias is None else f"{shown} as --{alias}")
    repeated = {
        name: each
        for name, each in given.items()
        if len(each) > 1 and not settings[name].repeatable
    }
    for name, each in repeated.items():
        errors.append(f"flag --{name}: given {_times(len(each))} ({_listed(each)})")

    values: dict[str, Any] = {}
    for s in spec.settings:
        if s.flag in repeated:
            continue
        if s.flag not in raw:
            # defaults are written as an operator would type them, and converted the same way
            textual = isinstance(s.default, str) and not s.boolean
            default = s.convert(s.default) if textual else s.default
            values[s.dest] = ([] if default is None else [default]) if s.repeatable else default
            continue
        converted = [_converted(s, text, where, errors) for text, where in raw[s.flag]]
        if all(value is not _FAILED for value in converted):
            values[s.dest] = converted if s.repeatable else converted[0]
    if not errors:
        for check in spec.checks:
            errors.extend(check(values))
    if errors:
        raise ConfigError(errors)
    if notes is not None:
        notes.extend(warnings)
    return values


_FAILED = object()  # a value that could not be converted (its error is recorded)
_URL_PASSWORD = re.compile(r"(//[^/?#@\s:]*:)[^/?#\s]*@")


def without_password(text: str) -> str:
    """``text`` with the password of any URL in it (``scheme://user:password@host``) shown as
    ``***``: a refused database or Redis URL is printed, and its password must not be."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def _converted(setting: Setting, text: str, where: str, errors: list[str]) -> Any:
    """``text`` converted and validated for ``setting``; _FAILED, with the error recorded."""
    try:
        parsed = parse_bool(text) if setting.boolean else setting.convert(text)
    except (ValueError, TypeError) as exc:
        shown = "<hidden>" if setting.secret else repr(without_password(text))
        errors.append(f"{where}: invalid value {shown}: {without_password(str(exc))}")
        return _FAILED
    if setting.validate is not None:
        problem = setting.validate(parsed)
        if problem:
            errors.append(f"{where}: {problem}")
            return _FAILED
    return parsed


def _absent_flag(
    spec: Spec, name: str, has_value: bool, value: str, errors: list[str], warnings: list[str]
) -> bool:
    """Handle ``--[no-]name`` when ``name`` is one of ``spec.absent``; False when it is not."""
    negated = name.startswith("no-")
    reason = spec.absent.get(name[3:] if negated else name)
    if reason is None:
        return False
    where = f"flag --{name}"
    if negated and has_value:
        errors.append(f"{where}: takes no value")
        return True
    try:
        turned_on = not negated and parse_bool(value if has_value else "true")
    except ValueError as exc:
        errors.append(f"{where}: invalid value {value!r}: {exc}")
        return True
    if turned_on:
        errors.append(f"{where}: {reason}")
    else:
        warnings.append(f"{where}: {reason}, so turning it off changes nothing")
    return True


def _times(count: int) -> str:
    return "twice" if count == 2 else f"{count} times"


def _listed(items: Sequence[str]) -> str:
    return f"{', '.join(items[:-1])} and {items[-1]}"


# words that say a filter flag keeps or drops what matches: a suggestion keeps the sense
_DROPPING = ("exclude", "ignore", "blacklist", "denylist")
_KEEPING = ("include", "whitelist", "allowlist")


def _sense(name: str) -> int:
    lowered = name.lower()
    return -1 if any(w in lowered for w in _DROPPING) else int(any(w in lowered for w in _KEEPING))


def _suggest(name: str, candidates: Any, aliases: Mapping[str, str] | None = None) -> str:
    """A close known name, never one of the opposite sense (include for an exclude flag); an
    old name is suggested as the setting it stands for."""
    aliases = aliases or {}
    sense = _sense(name)
    pool = [c for c in [*candidates, *aliases] if not sense or _sense(c) != -sense]
    close = difflib.get_close_matches(name, pool, n=1)
    return f" (did you mean {aliases.get(close[0], close[0])}?)" if close else ""


def regex(text: str) -> re.Pattern[str]:
    """Converter for regex settings, in Go's RE2 syntax as node_exporter reads its own (see
    perfanalysis.goregex): what Go refuses or Python cannot match alike is refused, saying where."""
    from perfanalysis.goregex import compile_go

    return compile_go(text)


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.I
)


def whole_number(text: str) -> int:
    """An integer written in decimal digits (no 1_000, no 1e3), as Go's strconv reads one."""
    if not _WHOLE_NUMBER.fullmatch(text.strip()):
        raise ValueError("expected a whole number, such as 40")
    return int(text)


def number(text: str) -> float:
    """A decimal number (``2.5``, ``1e3``, ``inf``, ``nan``), as Go's strconv reads one; no
    ``1_000`` nor digits of other scripts, which Python's float() would take."""
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError("expected a number, such as 2.5")
    return float(text)


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise ValueError("must be greater than zero")
    if math.isinf(value):
        raise ValueError("must be finite")
    return value


def http_url(text: str) -> str:
    """An http:// or https:// URL with a host (and a valid port, if any), without the trailing
    slash; the same checks the HTTP clients make later, so a bad URL is a setting's error."""
    parts = urlsplit(text)  # raises ValueError for a malformed IPv6 host
    if parts.scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("no host in the URL")
    _ = parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    return text.rstrip("/")


def optional_http_url(text: str) -> str:
    """As http_url, or empty for not set."""
    return http_url(text) if text else text


MAX_TIMEOUT_SECONDS = 86400


def timeout_seconds(text: str) -> float:
    """A request timeout: HTTP clients overflow on huge ones, and a day is already absurd."""
    value = positive_float(text)
    if value > MAX_TIMEOUT_SECONDS:
        raise ValueError(f"must be at most {MAX_TIMEOUT_SECONDS} seconds (a day)")
    return value


def admin_database_url(text: str) -> str:
    """The admin app's database URL, checked and normalised by the admin app's own rule."""
    from tenants.settings import database_url

    return database_url(text)


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def non_negative_int(text: str) -> int:
    value = whole_number(text)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def readable_file(text: str) -> str:
    if os.path.isdir(text):
        raise ValueError("is a directory, not a file")
    if not os.path.isfile(text):
        raise ValueError("no such file" if not os.path.exists(text) else "not a regular file")
    if not os.access(text, os.R_OK):
        raise ValueError("not readable by this user")
    return text


_PORT = re.compile(r"[0-9]+")


def listen_address(text: str) -> tuple[str, int]:
    """Parse ``host:port``, ``:port`` or ``[v6]:port`` as node_exporter accepts them."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError("expected HOST:PORT, for example :9100 or 127.0.0.1:9100")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    # ASCII digits only: int() also takes " 80", "+80", "8_0" and digits of other scripts
    # (":٨٠٨٠" listened on 8080), none of which an operator means as a port
    if not _PORT.fullmatch(port_text):
        raise ValueError(f"port {port_text!r} is not a number (digits 0-9 only)")
    digits = port_text.lstrip("0") or "0"  # int() refuses more than 4300 digits
    if len(digits) > 5 or int(digits) > 65535:
        shown = port_text if len(port_text) <= 10 else f"{port_text[:10]}..."
        raise ValueError(f"port {shown} is out of range 0-65535")
    return host, int(digits)
