"""``--web.config.file``: TLS and basic authentication in the manner of node_exporter.

The file has the format of the Prometheus exporter-toolkit (``tls_server_config``,
``http_server_config``, ``basic_auth_users``), so a node_exporter web configuration works
unchanged as long as it uses what is listed in ``FIELDS``; anything else is refused by name at
start-up rather than ignored. Relative paths are taken from the file's own directory, as the
toolkit does.

Memory: this module is imported only when the flag is given. ``ssl`` is imported only when the
file configures TLS, ``bcrypt`` only when it lists users, pyyaml (through
``perfanalysis.strictyaml``, which refuses a key given twice, as exporter-toolkit does) only to
read the file. An exporter without the flag loads none of them.

* TLS: the certificate, key and client CA files are checked when the exporter starts (a key that
  does not match its certificate is an error then, not at the first scrape) and re-read when one
  of them changes on disk, so a renewed certificate needs no restart; renewed files that cannot be
  used are logged at ERROR once and the old context is kept. An encrypted key is refused (never
  a pass-phrase prompt on the terminal). A plain-HTTP request to the TLS port is answered
  ``400 Client sent an HTTP request to an HTTPS server``, as Go does. TLS 1.0 and 1.1 are refused:
  OpenSSL's default security level offers them no cipher, so such clients could never connect.
* The file itself is re-read when it changes on disk (a ``stat`` per request and per connection),
  as node_exporter reads it for every request: new users, headers and TLS settings apply without
  a restart. A changed file that is invalid is logged at ERROR once and every request is answered
  500 until it is fixed -- never served with the old users, which would keep a revoked password
  working. Turning TLS on or off needs a restart (until then requests are refused).
* Basic auth: ``basic_auth_users`` maps user names to bcrypt hashes (``htpasswd -nBC 10 "" | tr -d
  ':\\n'``). Checking a bcrypt hash costs ~70 ms at cost 10, so results are cached, checks are
  serialised, and an unknown user is checked against a decoy hash as costly as the most costly
  configured one, so that timing tells nothing about which users exist. ``$2$`` hashes are checked
  as Go's bcrypt checks them (as ``$2a$``/``$2b$``); an error from the check is logged once per
  user. As in node_exporter, credentials are compared as bytes (a password
  need not be UTF-8) and bcrypt reads a password's first 72 bytes. Verification needs the
  ``bcrypt`` package; without it a file that lists users is refused with a message saying so.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exporter.http import Request, Response
from perfanalysis.tlskey import EncryptedKeyError, refuse_passphrase

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to complete the TLS handshake
PLAIN_HTTP_ANSWER = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
)
TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
# refused: OpenSSL's default security level (here and on current distributions) offers no cipher
# TLS 1.0/1.1 can use, so those clients could never connect; lowering it would weaken every
# connection
REFUSED_TLS_VERSIONS = ("TLS10", "TLS11")
# exporter-toolkit's names; the ones Python's ssl module cannot honour are refused with a reason
CLIENT_AUTH_TYPES = {
    "NoClientCert": "none",
    "VerifyClientCertIfGiven": "optional",
    "RequireAndVerifyClientCert": "required",
}
UNSUPPORTED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# the headers (and the values) exporter-toolkit lets an operator add to every response
EXTRA_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")
# bcrypt (cost 10) of a password nobody knows: unknown users are checked against it, its cost
# field raised to the highest configured cost (decoy_hash), so that an answer for an unknown user
# takes as long as one for a known user with a wrong password
DECOY_HASH = b"$2b$10$e6x7WG83GZmhixz/7mlYXuMnAkctc6eq2ubcWOIdpU2aTwWN98jGu"
INVALID_FILE_ANSWER = b"Internal Server Error: the web configuration file is invalid\n"
AUTH_CACHE_SIZE = 100
BCRYPT_MAX_PASSWORD = 72  # bytes of a password bcrypt uses; the rest is ignored
BCRYPT_MISSING = (
    "basic_auth_users needs the 'bcrypt' package to verify passwords, and it is not installed: "
    "install it next to the exporter (pip install bcrypt) or remove basic_auth_users"
)

# (key, default, meaning): what the file may hold. docs/configuration.md is generated from this.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("tls_server_config.cert_file", "",
     "PEM certificate (chain) the exporter presents. With key_file, turns TLS on."),
    ("tls_server_config.key_file", "", "PEM private key of cert_file."),
    ("tls_server_config.client_auth_type", "NoClientCert",
     "NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert (mutual TLS). "
     "RequestClientCert and RequireAnyClientCert are refused: Python's ssl module verifies every "
     "client certificate it asks for."),
    ("tls_server_config.client_ca_file", "",
     "PEM CA bundle that client certificates must chain to; required by the verifying "
     "client_auth_type values, refused with NoClientCert."),
    ("tls_server_config.min_version", "TLS12",
     "Oldest TLS version accepted: TLS12 or TLS13. TLS10 and TLS11 are refused: OpenSSL's default "
     "security level offers no cipher those versions can use, so such clients could never "
     "connect."),
    ("tls_server_config.max_version", "TLS13", "Newest TLS version accepted: TLS12 or TLS13."),
    ("tls_server_config.prefer_server_cipher_suites", "true",
     "true: the server's cipher order is preferred (OpenSSL's server preference); false: the "
     "client's."),
    ("http_server_config.headers", "",
     "Headers added to every response: Strict-Transport-Security, X-Content-Type-Options "
     "(nosniff), X-Frame-Options (deny, sameorigin), X-XSS-Protection, Content-Security-Policy."),
    ("http_server_config.http2", "true",
     "Accepted for compatibility and ignored: the exporter speaks HTTP/1.1."),
    ("basic_auth_users", "",
     "User name to bcrypt hash (made with the bcrypt package every install has, or htpasswd "
     "-nBC 10; see the one-liner below). When set, every path needs one of these users; a wrong "
     "or missing password is answered 401 with WWW-Authenticate: Basic. $2$, $2a$, $2b$, $2x$ "
     "and $2y$ hashes are checked as node_exporter (Go) checks them."),
)  # fmt: skip
TLS_KEYS = {key.split(".", 1)[1] for key, _, _ in FIELDS if key.startswith("tls_server_config.")}
TLS_BOOL_KEYS = {"prefer_server_cipher_suites"}
HTTP_KEYS = {key.split(".", 1)[1] for key, _, _ in FIELDS if key.startswith("http_server_config.")}
TOP_KEYS = {key.split(".", 1)[0] for key, _, _ in FIELDS}
# exporter-toolkit settings this exporter knows of but does not implement
NOT_IMPLEMENTED = {
    "rate_limit": "use --web.max-requests to bound concurrent scrapes",
    "tls_server_config.cert": "give the certificate in cert_file",
    "tls_server_config.key": "give the key in key_file",
    "tls_server_config.client_ca": "give the CA bundle in client_ca_file",
    "tls_server_config.cipher_suites": "Python's ssl defaults (OpenSSL's) apply",
    "tls_server_config.curve_preferences": "OpenSSL's defaults apply",
    "tls_server_config.client_allowed_sans": "use a dedicated client CA instead",
}


class WebConfigError(Exception):
    """Every problem found in a web configuration file."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class TLSSettings:
    cert_file: str
    key_file: str
    client_auth: str = "none"  # none, optional or required
    client_ca_file: str = ""
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    prefer_server_cipher_suites: bool = True


@dataclass
class WebConfig:
    path: str
    tls: TLSSettings | None = None
    users: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def tls_server(self) -> TLSServer | None:
        return TLSServer(self.tls) if self.tls is not None else None

    def live(self, checkpw: Callable[[bytes, bytes], bool] | None = None) -> LiveWebConfig:
        """This configuration, re-read from its file whenever the file changes."""
        return LiveWebConfig(self, checkpw)

    def describe(self) -> str:
        parts = []
        if self.tls is not None:
            parts.append(f"TLS ({self.tls.min_version}-{self.tls.max_version}")
            if self.tls.client_auth != "none":
                parts[-1] += f", client certificates {self.tls.client_auth}"
            parts[-1] += ")"
        if self.users:
            parts.append(f"basic auth ({len(self.users)} user{'s' if len(self.users) > 1 else ''})")
        return ", ".join(parts) or "plain HTTP, no authentication"


@dataclass(frozen=True)
class Guard:
    """What a request goes through: basic auth (when users are listed) and the extra headers;
    ``refused`` (the file is unusable) answers every request 500."""

    auth: BasicAuth | None
    headers: dict[str, str]
    refused: bool = False

    @classmethod
    def of(cls, config: WebConfig, checkpw: Callable[[bytes, bytes], bool] | None) -> Guard:
        return cls(BasicAuth(config.users, checkpw) if config.users else None, dict(config.headers))

    def answer(self, app: Callable[[Request], Response], request: Request) -> Response:
        if self.refused:  # as node_exporter: its handler fails the request when the file is bad
            return Response(500, INVALID_FILE_ANSWER)
        if self.auth is not None and not self.auth.check(request.headers.get("authorization")):
            response = Response(401, b"Unauthorized\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="perfanalysis exporter"'
        else:
            response = app(request)
        response.headers.update(self.headers)
        return response


def _file_stamp(path: str) -> tuple[int, int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (info.st_ino, info.st_size, info.st_mtime_ns)


class LiveWebConfig:
    """The configuration in force, re-read when its file changes on disk.

    node_exporter reads the file for every request; this checks its ``stat`` per request and per
    TLS connection and loads it again when the inode, size or modification time changed. A
    changed file that cannot be used is logged once and every request is answered 500 until it
    is fixed: serving on with the old users would keep a revoked password working.
    """

    def __init__(
        self, config: WebConfig, checkpw: Callable[[bytes, bytes], bool] | None = None
    ) -> None:
        self.path = config.path
        self._checkpw = checkpw
        self._lock = threading.Lock()
        self._stamp = _file_stamp(config.path)
        self._guard = Guard.of(config, checkpw)
        self._tls = config.tls_server()
        self._tls_on = config.tls is not None

    def current(self) -> Guard:
        stamp = _file_stamp(self.path)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._reload()
                    self._stamp = stamp  # tried once per change on disk, not per request
        return self._guard

    def _reload(self) -> None:
        try:
            config = load(self.path)
            if (config.tls is not None) != self._tls_on:
                raise WebConfigError(
                    [
                        "tls_server_config: TLS cannot be turned "
                        f"{'on' if config.tls is not None else 'off'} while the exporter runs: "
                        "restart it"
                    ]
                )
            tls = self._tls
            if config.tls is not None and (tls is None or tls.settings != config.tls):
                tls = TLSServer(config.tls)
            guard = Guard.of(config, self._checkpw)
        except Exception as exc:  # whatever it is, do not serve with the old users
            self._guard = Guard(None, {}, refused=True)
            problems = "; ".join(exc.problems) if isinstance(exc, WebConfigError) else repr(exc)
            log.error(
                "web configuration file %s changed and cannot be used; every request is refused "
                "until it is fixed: %s",
                self.path,
                problems,
            )
            return
        self._tls, self._guard = tls, guard
        log.info("web configuration file %s changed: now %s", self.path, config.describe())

    def wrap(self, app: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """The app behind the configuration in force at each request."""

        def guarded(request: Request) -> Response:
            return self.current().answer(app, request)

        return guarded

    def tls_server(self) -> LiveWebConfig | None:
        """What wraps accepted connections (self), or None without TLS."""
        return self if self._tls_on else None

    def accept(self, connection: socket.socket) -> socket.socket | None:
        self.current()
        assert self._tls is not None
        return self._tls.accept(connection)


def load(path: str) -> WebConfig:
    """Read, validate and try out a web configuration file; WebConfigError lists every problem."""
    import yaml  # only with --web.config.file

    from perfanalysis import strictyaml

    try:
        with open(path, "rb") as handle:  # PyYAML decodes it, naming the byte that is not UTF-8
            document = strictyaml.load(handle)
    except OSError as exc:
        raise WebConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from None
    except strictyaml.StrictYAMLError as exc:
        # a repeated key is refused as exporter-toolkit refuses it: PyYAML would keep the last of
        # the two, so a second tls_server_config could turn TLS off without a word; so are an
        # alias bomb, deep nesting and a scalar its tag cannot be (!!float two)
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise WebConfigError([f"{path}: {where}{exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise WebConfigError([f"{path} is not valid YAML: {exc}"]) from None
    config = parse(document, path)
    if config.tls is not None:
        try:
            build_context(config.tls)
        except WebConfigError as exc:
            raise WebConfigError(exc.problems) from None
    return config


def parse(document: Any, path: str) -> WebConfig:
    """Validate the parsed YAML; paths are made absolute against the file's directory."""
    problems: list[str] = []
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise WebConfigError([f"{path}: expected a mapping at the top level"])
    base = os.path.dirname(os.path.abspath(path))
    _unknown(document, TOP_KEYS, "", problems)
    tls = _parse_tls(document.get("tls_server_config"), base, problems)
    headers = _parse_http(document.get("http_server_config"), problems)
    users = _parse_users(document.get("basic_auth_users"), problems)
    if problems:
        raise WebConfigError(problems)
    return WebConfig(os.path.abspath(path), tls, users, headers)


def _unknown(section: Mapping[Any, Any], known: set[str], prefix: str, problems: list[str]) -> None:
    for key in section:
        name = f"{prefix}{key}"
        if key in known:
            continue
        if name in NOT_IMPLEMENTED:
            problems.append(f"{name}: not supported by this exporter ({NOT_IMPLEMENTED[name]})")
            continue
        close = difflib.get_close_matches(str(key), sorted(known), n=1)
        hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
        problems.append(f"{name}: unknown setting{hint}")


def _section(value: Any, name: str, problems: list[str]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{name}: expected a mapping")
        return {}
    return value


def _string(section: Mapping[str, Any], key: str, name: str, problems: list[str]) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{name}.{key}: expected a string")
        return ""
    return value


def _parse_tls(value: Any, base: str, problems: list[str]) -> TLSSettings | None:
    name = "tls_server_config"
    section = _section(value, name, problems)
    _unknown(section, TLS_KEYS, f"{name}.", problems)
    strings = {key: _string(section, key, name, problems) for key in TLS_KEYS - TLS_BOOL_KEYS}
    prefer = section.get("prefer_server_cipher_suites")
    if prefer is not None and not isinstance(prefer, bool):
        problems.append(f"{name}.prefer_server_cipher_suites: expected true or false")
    if not any(strings[k] for k in ("cert_file", "key_file", "client_ca_file", "client_auth_type")):
        return None  # no TLS, as exporter-toolkit: plain HTTP
    before = len(problems)
    if not strings["cert_file"]:
        problems.append(f"{name}: missing cert_file")
    if not strings["key_file"]:
        problems.append(f"{name}: missing key_file")
    auth_type = strings["client_auth_type"] or "NoClientCert"
    client_auth = CLIENT_AUTH_TYPES.get(auth_type, "")
    if auth_type in UNSUPPORTED_CLIENT_AUTH:
        problems.append(
            f"{name}.client_auth_type: {auth_type} is not supported: Python's ssl module verifies "
            "every client certificate it asks for; use VerifyClientCertIfGiven or "
            "RequireAndVerifyClientCert with client_ca_file"
        )
    elif not client_auth:
        problems.append(
            f"{name}.client_auth_type: invalid {auth_type!r}; expected one of "
            f"{', '.join(CLIENT_AUTH_TYPES)}"
        )
    if strings["client_ca_file"] and client_auth == "none":
        problems.append(
            f"{name}.client_ca_file: client CAs are configured without a client auth policy: "
            "set client_auth_type to RequireAndVerifyClientCert (or VerifyClientCertIfGiven)"
        )
    if client_auth in ("optional", "required") and not strings["client_ca_file"]:
        problems.append(
            f"{name}.client_ca_file: required with client_auth_type {auth_type}: the CA bundle "
            "client certificates are verified against"
        )
    versions = {}
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        versions[key] = strings[key] or default
        if versions[key] not in TLS_VERSIONS:
            problems.append(
                f"{name}.{key}: unknown TLS version {versions[key]!r}; expected one of "
                f"{', '.join(TLS_VERSIONS)}"
            )
        elif versions[key] in REFUSED_TLS_VERSIONS:
            problems.append(
                f"{name}.{key}: {versions[key]} is refused: OpenSSL's security level on this "
                "system offers no cipher TLS 1.0/1.1 clients can use, so they could never connect "
                "(lowering it would weaken every connection); use TLS12 or TLS13"
            )
    if (
        versions["min_version"] in TLS_VERSIONS
        and versions["max_version"] in TLS_VERSIONS
        and TLS_VERSIONS.index(versions["min_version"])
        > TLS_VERSIONS.index(versions["max_version"])
    ):
        problems.append(f"{name}: min_version is newer than max_version")
    if len(problems) > before:
        return None

    def absolute(path: str) -> str:
        return os.path.join(base, path) if path and not os.path.isabs(path) else path

    return TLSSettings(
        cert_file=absolute(strings["cert_file"]),
        key_file=absolute(strings["key_file"]),
        client_auth=client_auth,
        client_ca_file=absolute(strings["client_ca_file"]),
        min_version=versions["min_version"],
        max_version=versions["max_version"],
        prefer_server_cipher_suites=prefer is not False,
    )


def _parse_http(value: Any, problems: list[str]) -> dict[str, str]:
    name = "http_server_config"
    section = _section(value, name, problems)
    _unknown(section, HTTP_KEYS, f"{name}.", problems)
    if "http2" in section and not isinstance(section["http2"], bool):
        problems.append(f"{name}.http2: expected true or false")
    headers = _section(section.get("headers"), f"{name}.headers", problems)
    result: dict[str, str] = {}
    for header, text in headers.items():
        allowed = EXTRA_HEADERS.get(str(header))
        if allowed is None:
            problems.append(
                f"{name}.headers: HTTP header {header!r} can not be configured; allowed: "
                f"{', '.join(EXTRA_HEADERS)}"
            )
            continue
        if not isinstance(text, str) or any(c in text for c in "\r\n"):
            problems.append(f"{name}.headers.{header}: expected a single-line string")
            continue
        if allowed and text not in allowed:
            problems.append(
                f"{name}.headers.{header}: invalid value {text!r}; expected one of "
                f"{', '.join(allowed)}"
            )
            continue
        if text:
            result[str(header)] = text
    return result


def _parse_users(value: Any, problems: list[str]) -> dict[str, str]:
    name = "basic_auth_users"
    section = _section(value, name, problems)
    users: dict[str, str] = {}
    for user, hashed in section.items():
        if not isinstance(user, str) or not user or ":" in user:
            problems.append(f"{name}: user name {user!r} must be a non-empty string without ':'")
            continue
        if not isinstance(hashed, str):
            problems.append(f"{name}.{user}: expected a bcrypt hash string")
            continue
        match = BCRYPT_HASH.match(hashed)
        if not match:
            problems.append(
                f"{name}.{user}: not a bcrypt hash (expected $2b$10$ and 53 more characters, as "
                "bcrypt.hashpw(password, bcrypt.gensalt(10)) or htpasswd -nBC 10 make); plain "
                "passwords are refused"
            )
            continue
        if not 4 <= int(match.group(1)) <= 31:
            problems.append(f"{name}.{user}: bcrypt cost {match.group(1)} is outside 4-31")
            continue
        users[user] = hashed
    if users and not bcrypt_available():
        problems.append(f"{name}: {BCRYPT_MISSING}")
    return users


def bcrypt_available() -> bool:
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# TLS


def build_context(settings: TLSSettings) -> ssl.SSLContext:
    """An SSLContext for the settings; WebConfigError naming the file that is wrong."""
    import ssl

    problems = []
    for key in ("cert_file", "key_file", "client_ca_file"):
        path = getattr(settings, key)
        if path and not os.path.isfile(path):
            problems.append(f"tls_server_config.{key}: {path}: no such file")
        elif path and not os.access(path, os.R_OK):
            problems.append(f"tls_server_config.{key}: {path}: not readable by this user")
    if problems:
        raise WebConfigError(problems)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
    try:
        context.minimum_version = versions[settings.min_version]
        context.maximum_version = versions[settings.max_version]
    except (ValueError, ssl.SSLError) as exc:
        raise WebConfigError([f"tls_server_config: TLS versions: {exc}"]) from None
    try:
        context.load_cert_chain(settings.cert_file, settings.key_file, password=refuse_passphrase)
    except EncryptedKeyError:
        problem = (
            f"tls_server_config.key_file: {settings.key_file}: encrypted private keys are not "
            "supported (the exporter cannot ask for a pass phrase): give the key unencrypted"
        )
        raise WebConfigError([problem]) from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = "the key does not match the certificate" if "MISMATCH" in str(exc) else str(exc)
        problem = (
            f"tls_server_config: cannot use cert_file {settings.cert_file} with key_file "
            f"{settings.key_file}: {reason}"
        )
        raise WebConfigError([problem]) from None
    if settings.client_ca_file:
        try:
            context.load_verify_locations(cafile=settings.client_ca_file)
        except ssl.SSLError as exc:
            raise WebConfigError(
                [f"tls_server_config.client_ca_file: {settings.client_ca_file}: {exc}"]
            ) from None
    if not settings.prefer_server_cipher_suites:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    context.verify_mode = {
        "none": ssl.CERT_NONE,
        "optional": ssl.CERT_OPTIONAL,
        "required": ssl.CERT_REQUIRED,
    }[settings.client_auth]
    return context


def _stamp(settings: TLSSettings) -> tuple[tuple[int, int, int], ...]:
    stamps = []
    for path in (settings.cert_file, settings.key_file, settings.client_ca_file):
        if not path:
            continue
        try:
            info = os.stat(path)
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns))
        except OSError:
            stamps.append((0, 0, 0))
    return tuple(stamps)


class TLSServer:
    """Wraps accepted connections in TLS; re-reads the files when they change on disk."""

    def __init__(self, settings: TLSSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._stamp = _stamp(settings)
        self._context = build_context(settings)

    def context(self) -> ssl.SSLContext:
        stamp = _stamp(self.settings)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self._context = build_context(self.settings)
                        log.info("TLS certificate files changed on disk: reloaded")
                    except Exception as exc:  # whatever it is, keep serving with the old files
                        log.error("TLS files changed but cannot be used, keeping the old: %s", exc)
                    self._stamp = stamp  # tried once per change on disk, not per connection
        return self._context

    def accept(self, connection: socket.socket) -> socket.socket | None:
        """The connection after a TLS handshake, or None when it is not to be served."""
        import ssl

        connection.settimeout(HANDSHAKE_TIMEOUT)
        try:
            first = connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return None
        if not first:
            return None
        if first != b"\x16":  # not a TLS handshake record
            if first.isalpha():  # a plain HTTP request line: say what is wrong, as Go does
                with contextlib.suppress(OSError):
                    connection.sendall(PLAIN_HTTP_ANSWER)
            return None
        try:
            return self.context().wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            return None


# ---------------------------------------------------------------------------------------------
# Basic authentication


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, caching the outcome."""

    def __init__(
        self, users: Mapping[str, str], checkpw: Callable[[bytes, bytes], bool] | None = None
    ) -> None:
        if checkpw is None:
            import bcrypt

            checkpw = bcrypt.checkpw
        self._checkpw = checkpw
        # users and passwords are compared as bytes, as Go does: a password need not be UTF-8
        self._users = {user.encode(): hashed.encode("ascii") for user, hashed in users.items()}
        self.decoy = decoy_hash(max((bcrypt_cost(h) for h in self._users.values()), default=10))
        self._logged: set[bytes] = set()  # users whose check failed with an error, logged once
        self._cache: dict[bytes, bool] = {}
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()  # bcrypt is CPU-bound: one check at a time

    def check(self, header: str | None) -> bool:
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        known = user in self._users
        hashed = self._users.get(user, self.decoy)
        key = hashlib.sha256(b"\0".join((user, hashed, password))).digest()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached and known
        with self._bcrypt_lock:
            try:
                # bcrypt reads only the first 72 bytes, as Go's (node_exporter's) and htpasswd's
                # do; the bcrypt package refuses longer passwords instead of ignoring the rest
                ok = self._checkpw(password[:BCRYPT_MAX_PASSWORD], go_compatible(hashed))
            except Exception as exc:  # never a silent always-401: say so, once per user
                ok = False
                who = user if known else b""
                if who not in self._logged:
                    self._logged.add(who)
                    shown = who.decode(errors="replace") if known else "(unknown users' decoy)"
                    log.error("basic auth: checking a password of %s failed: %r", shown, exc)
        ok = ok and known
        with self._cache_lock:
            if len(self._cache) >= AUTH_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = ok
        return ok


def bcrypt_cost(hashed: bytes) -> int:
    return int(hashed.split(b"$")[2])


def decoy_hash(cost: int) -> bytes:
    """DECOY_HASH with its cost field set to ``cost``: checking against it costs as much as
    checking against a user's hash of that cost (its digest matches no password, which is all
    a decoy needs), and making it costs nothing."""
    return b"$2b$%02d$" % cost + DECOY_HASH[len(b"$2b$10$") :]


def go_compatible(hashed: bytes) -> bytes:
    """A ``$2$`` hash as ``$2b$``: Go's bcrypt (node_exporter's) accepts it and computes it as it
    does ``$2a$``/``$2b$`` (the key with its NUL byte, the first 72 bytes), the bcrypt package
    refuses it ('Invalid salt')."""
    return b"$2b$" + hashed[3:] if hashed.startswith(b"$2$") else hashed


def parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) as raw bytes from an ``Authorization: Basic …`` header value, else None.

    Bytes, not text: Go's servers compare the decoded credentials byte for byte, so a password
    in Latin-1 (or any bytes) works there and must work here.
    """
    import binascii

    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = binascii.a2b_base64(encoded.strip().encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None
