"""ingest's access log (ingest/accesslog.py): the lines of perfanalysis.serving's
RedactingLogger, byte for byte, without computing what the format does not name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ingest import main
from ingest.accesslog import AccessLogger, format_keys
from perfanalysis.serving import GunicornApp, RedactingLogger, gunicorn_options

KEY = "pak_abcdefghijk23_" + "s" * 43
FORMATS = [
    main.ACCESS_LOG_FORMAT,
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',  # gunicorn's default
    "%(h)s %(l)s %(u)s %(t)s %(r)s %(s)s %(m)s %(U)s %(q)s %(H)s %(b)s %(B)s %(f)s %(a)s "
    "%(T)s %(D)s %(M)s %(L)s %(p)s",
    "%({authorization}i)s %({USER-AGENT}i)s %({x-dup}i)s %({Server}o)s %({remote_addr}e)s "
    "%({missing}i)s %({missing}o)s %({missing}e)s %({bad}x)s %(unknown)s %(Z)s",
    "%(D)06d %(T)d %(M)r %% %(h)s %(h)s",
    "no values at all",
]


class CountingEnviron(dict[str, Any]):
    """A WSGI environ that counts how often it is walked whole."""

    walked = 0

    def items(self) -> Any:
        self.walked += 1
        return super().items()

    def __iter__(self) -> Iterator[str]:
        self.walked += 1
        return super().__iter__()


def request_parts() -> tuple[Any, Any, CountingEnviron]:
    environ = CountingEnviron(
        REQUEST_METHOD="POST",
        RAW_URI="/write?db=x&precision=ns",
        PATH_INFO="/write",
        QUERY_STRING="db=x&precision=ns",
        SERVER_PROTOCOL="HTTP/1.1",
        REMOTE_ADDR="192.0.2.7",
        HTTP_USER_AGENT='telegraf "1.28"',
        HTTP_AUTHORIZATION=f"Token {KEY}",
    )
    headers = [("USER-AGENT", 'telegraf "1.28"'), ("AUTHORIZATION", f"Token {KEY}"),
               ("X-DUP", "first"), ("X-DUP", "second")]  # fmt: skip
    request = SimpleNamespace(headers=headers)
    response = SimpleNamespace(status="204 No Content", sent=0, headers=[("Server", "gunicorn")])
    return request, response, environ


def logged_line(logger_class: type[RedactingLogger], log_format: str, tmp_path: Path) -> str:
    log_path = tmp_path / f"{logger_class.__name__}.log"
    app = GunicornApp(lambda: None, gunicorn_options(
        "127.0.0.1", 8000, 1, 1, accesslog=str(log_path), access_log_format=log_format
    ))  # fmt: skip
    logger = logger_class(app.cfg)
    logger.now = lambda: "[25/Nov/2026:12:00:00 +0000]"  # type: ignore[method-assign]
    request, response, environ = request_parts()
    try:
        logger.access(response, request, environ, timedelta(seconds=1, microseconds=2345))
        for handler in logger.access_log.handlers:
            handler.flush()
        return log_path.read_text()
    finally:
        for handler in list(logger.access_log.handlers):
            logger.access_log.removeHandler(handler)
            handler.close()


@pytest.mark.parametrize("log_format", FORMATS)
def test_the_lines_are_redacting_loggers_byte_for_byte(log_format: str, tmp_path: Path) -> None:
    ours = logged_line(AccessLogger, log_format, tmp_path)
    assert ours == logged_line(RedactingLogger, log_format, tmp_path)
    assert ours.endswith("\n")
    assert "s" * 43 not in ours


def test_only_the_values_the_format_names_are_computed(tmp_path: Path) -> None:
    """gunicorn's logger walks the whole environ (and every header) for each request; ingest's
    format names none of them, so ingest's logger does not."""
    app = GunicornApp(lambda: None, gunicorn_options(
        "127.0.0.1", 8000, 1, 1, accesslog=str(tmp_path / "a.log"),
        access_log_format=main.ACCESS_LOG_FORMAT,
    ))  # fmt: skip
    for logger_class, walks in ((RedactingLogger, 1), (AccessLogger, 0)):
        logger = logger_class(app.cfg)
        request, response, environ = request_parts()
        try:
            logger.access(response, request, environ, timedelta(milliseconds=3))
        finally:
            for handler in list(logger.access_log.handlers):
                logger.access_log.removeHandler(handler)
                handler.close()
        assert environ.walked == walks, logger_class


def test_format_keys_are_the_names_in_order_once() -> None:
    assert format_keys(main.ACCESS_LOG_FORMAT) == ("h", "t", "m", "U", "H", "s", "b", "M", "a")
    assert format_keys("%(a)s %(a)s %({X}i)s %%") == ("a", "{X}i")


def test_ingest_serves_with_this_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("perfanalysis.serving.serve", lambda *args, **options: seen.update(options))
    main.serve(main.load(["--secret-key=" + "k" * 40, "--database-url=sqlite://"], {}))
    assert seen["logger_class"] is AccessLogger
    assert seen["access_log_format"] == main.ACCESS_LOG_FORMAT
