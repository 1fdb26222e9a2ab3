"""ingest's access log: gunicorn's lines, with only the values its format names computed.

gunicorn's logger builds every value it could log for each request (the request's and the
answer's headers, the whole WSGI environ), copies each one escaped, and the log format then
picks a few: 0.18 ms of a worker's CPU per write under the bench's load (12% of ingest's own
path). This logger computes only the format's values, each as perfanalysis.serving's
RedactingLogger gives it (quotes escaped, then credentials' secrets redacted; a value gunicorn
does not know is ``-``), so the lines are the same, byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from perfanalysis.redact import redact_credentials
from perfanalysis.serving import RedactingLogger

MISSING = "-"


class _Recorder(Mapping[str, Any]):
    """Answers any key with 0 and notes it: the keys a log format asks for."""

    def __init__(self) -> None:
        self.keys_asked: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.keys_asked.append(key)
        return 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_asked)

    def __len__(self) -> int:
        return len(self.keys_asked)


def format_keys(log_format: str) -> tuple[str, ...]:
    """The mapping keys ``log_format`` names (``%(h)s``, ``%({x-link}i)s``), each once."""
    recorder = _Recorder()
    with contextlib.suppress(TypeError, ValueError):  # gunicorn's own logger fails on it too
        log_format % recorder
    return tuple(dict.fromkeys(recorder.keys_asked))


def _status(resp: Any) -> Any:
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _pairs(headers: Any) -> Any:
    return headers.items() if hasattr(headers, "items") else headers


def _last_named(pairs: Any, name: str) -> Any:
    """The value of the last pair whose name in lower case is ``name`` (gunicorn's dict of
    them keeps the last), else MISSING."""
    value: Any = MISSING
    for pair_name, pair_value in pairs:
        if pair_name.lower() == name:
            value = pair_value
    return value


class _Request:
    """What one access log line is made of."""

    __slots__ = ("environ", "logger", "req", "request_time", "resp")

    def __init__(self, logger: Any, resp: Any, req: Any, environ: Mapping[str, Any],
                 request_time: timedelta) -> None:  # fmt: skip
        self.logger, self.resp, self.req = logger, resp, req
        self.environ, self.request_time = environ, request_time


def _sent(r: _Request) -> Any:
    return getattr(r.resp, "sent", None)


def _request_line(r: _Request) -> str:
    environ = r.environ
    return f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"


# gunicorn's Logger.atoms (glogging.py), one function per atom
_PLAIN: dict[str, Callable[[_Request], Any]] = {
    "h": lambda r: r.environ.get("REMOTE_ADDR", "-"),
    "l": lambda r: "-",
    "u": lambda r: r.logger._get_user(r.environ) or "-",
    "t": lambda r: r.logger.now(),
    "r": _request_line,
    "s": lambda r: _status(r.resp),
    "m": lambda r: r.environ.get("REQUEST_METHOD"),
    "U": lambda r: r.environ.get("PATH_INFO"),
    "q": lambda r: r.environ.get("QUERY_STRING"),
    "H": lambda r: r.environ.get("SERVER_PROTOCOL"),
    "b": lambda r: (_sent(r) is not None and str(_sent(r))) or "-",
    "B": _sent,
    "f": lambda r: r.environ.get("HTTP_REFERER", "-"),
    "a": lambda r: r.environ.get("HTTP_USER_AGENT", "-"),
    "T": lambda r: r.request_time.seconds,
    "D": lambda r: r.request_time.seconds * 1_000_000 + r.request_time.microseconds,
    "M": lambda r: r.request_time.seconds * 1000 + int(r.request_time.microseconds / 1000),
    "L": lambda r: f"{r.request_time.seconds}.{r.request_time.microseconds:06d}",
    "p": lambda r: f"<{os.getpid()}>",
}


def atom(key: str, request: _Request) -> Any:
    """One value of gunicorn's atoms as SafeAtoms looks it up: ``{name}i``, ``{name}o`` and
    ``{name}e`` in any case, MISSING for what gunicorn does not have."""
    if not key.startswith("{"):
        plain = _PLAIN.get(key)
        return MISSING if plain is None else plain(request)
    key = key.lower()
    name, suffix = key[1:-2], key[-2:]
    if suffix == "}i":
        req = request.req
        return _last_named(_pairs(req.headers if hasattr(req, "headers") else req), name)
    if suffix == "}o":
        return _last_named(_pairs(request.resp.headers), name)
    if suffix == "}e":
        return _last_named(request.environ.items(), name)
    return MISSING


def logged(value: Any) -> Any:
    """A value as RedactingLogger logs it: quotes escaped (SafeAtoms), secrets redacted."""
    if isinstance(value, str):
        return redact_credentials(value.replace('"', '\\"'))
    return value


class AccessLogger(RedactingLogger):
    """RedactingLogger, whose access log computes only the values its format names."""

    _format: str | None = None
    _keys: tuple[str, ...] = ()

    def access(self, resp: Any, req: Any, environ: Any, request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        log_format = self.cfg.access_log_format
        if log_format != self._format:  # read again after a reload (SIGHUP)
            self._format, self._keys = log_format, format_keys(log_format)
        try:
            request = _Request(self, resp, req, environ, request_time)
            atoms = {key: logged(atom(key, request)) for key in self._keys}
            self.access_log.info(log_format, atoms or {"-": "-"})
        except Exception:
            self.error(traceback.format_exc())
