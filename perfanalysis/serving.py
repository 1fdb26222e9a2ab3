"""Runs a WSGI app under gunicorn from parsed settings (admin and ingest share this)."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger, SafeAtoms

from perfanalysis.gthread_worker import WORKER_CLASS, ThreadWorker
from perfanalysis.redact import redact_credentials


class RedactingAtoms(SafeAtoms):  # type: ignore[misc]
    """gunicorn's access-log values, each redacted as the log format asks for it (only those)."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return redact_credentials(value) if isinstance(value, str) else value


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, its access log without credentials' secrets (request line, path,
    query, Referer, any header or environ value a format names): whoever reads the logs cannot
    use an invitation's link, nor a key or token, from them."""

    atoms_wrapper_class = RedactingAtoms


class GunicornApp(BaseApplication):  # type: ignore[misc]
    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """The app, built in the worker; then what building it made is exempt from garbage
        collection. A full collection otherwise walks those objects too: about 125,000 for the
        admin app, 60-80 ms with every thread of the worker stopped, against 2-4 ms after."""
        app = self.factory()
        gc.collect()
        gc.freeze()
        return app


def serve(
    factory: Callable[[], Any],
    host: str,
    port: int,
    workers: int,
    threads: int,
    request_timeout: float,
    **options: Any,
) -> None:
    """gunicorn's gthread worker: an idle keep-alive or slow client holds a connection, not a worker
    (nor a thread, perfanalysis/gthread_worker.py)."""
    ThreadWorker.request_timeout = request_timeout  # the workers fork from this process
    GunicornApp(factory, gunicorn_options(host, port, workers, threads, **options)).run()


def gunicorn_options(
    host: str, port: int, workers: int, threads: int, **options: Any
) -> dict[str, Any]:
    """gunicorn's settings; its request parser is left on ``auto``, which takes the C parser
    (gunicorn_h1c, a dependency) unless a setting it does not support is on."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host or '0.0.0.0'}:{port}"
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": WORKER_CLASS,
        "threads": threads,
        "keepalive": 75,  # above load balancers' idle timeout (60 s): they never reuse a closed one
        "accesslog": "-",
        "logger_class": RedactingLogger,
        "errorlog": "-",
        "graceful_timeout": 10,
        "timeout": 30,
        # gunicorn 27's control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl):
        # admin, ingest and a second stack would take it from each other, and nothing uses it
        "control_socket_disable": True,
        **heartbeat_directory(),
        **options,
    }


def heartbeat_directory(shm: str = "/dev/shm") -> dict[str, str]:  # noqa: S108 (mkstemp, unlinked)
    """gunicorn's ``worker_tmp_dir`` in memory when this machine has one.

    Each worker shows the arbiter it is alive by changing the time of a file, at every turn of
    its loop. In /tmp on a disk that is a journalled metadata update, which can wait behind a
    busy disk (InfluxDB compacting beside ingest, say) long enough for the arbiter to kill a
    healthy worker after ``timeout``: gunicorn's documentation advises a tmpfs such as /dev/shm.
    """
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return {"worker_tmp_dir": shm}
    return {}
