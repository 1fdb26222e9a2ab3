"""``--log.format``: node_exporter's log lines, logfmt (its default) or JSON, on stderr.

node_exporter logs through go-kit: ``ts=2026-11-24T23:35:59.239Z caller=diskstats_common.go:99
level=warn msg="..."``. The same keys, in the same order, let one log pipeline parse both.
"""

from __future__ import annotations

import json
import logging
import time

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}  # fmt: skip
LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn",
               logging.ERROR: "error", logging.CRITICAL: "error"}  # fmt: skip


def fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, str]:
    """A record's key-value pairs, in go-kit's order, with the logger's name and any traceback."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    pairs = {
        "ts": f"{stamp}.{int(record.msecs):03d}Z",
        "caller": f"{record.module}.py:{record.lineno}",
        "level": LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    if record.exc_info:
        pairs["err"] = formatter.formatException(record.exc_info)
    return pairs


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt(value)}" for key, value in fields(record, self).items())


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(fields(record, self), ensure_ascii=False, separators=(",", ":"))


def _logfmt(value: str) -> str:
    """Bare when it needs no quoting, else a JSON string (the escapes logfmt readers expect)."""
    if value and all(c.isprintable() and c not in ' ="\\' for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def configure(level: str, log_format: str) -> None:
    """Log to stderr at ``level`` (debug, info, warn, error) in ``log_format`` (logfmt, json);
    as logging.basicConfig, a no-op when the root logger has handlers already (under pytest)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if log_format == "json" else LogfmtFormatter())
    logging.basicConfig(level=LEVELS[level], handlers=[handler])
