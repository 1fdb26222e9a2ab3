"""``perfanalysis exporter``: parse flags, build the registry, serve until SIGTERM or SIGINT."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

from exporter.app import build_registry
from exporter.collectors.filesystem import FilesystemCollector
from exporter.config import load
from exporter.http import ListenError, shown_address
from exporter.logformat import configure
from exporter.server import ExporterServer
from perfanalysis.config import ConfigError, HelpRequested

log = logging.getLogger("exporter")
PUSH_STOP_TIMEOUT = 5.0  # seconds a request in flight may take to finish at shutdown


def run(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    notes: list[str] = []
    try:
        values = load(argv, os.environ if environ is None else environ, notes)
    except HelpRequested as help_:  # and --version
        print(help_.text)
        return 0
    except ConfigError as exc:
        print("perfanalysis exporter: invalid configuration:", file=sys.stderr)
        for error in exc.errors:
            print(f"  - {error}", file=sys.stderr)
        return 2
    configure(values["log_level"], values["log_format"])
    for note in notes:
        log.warning("%s", note)
    registry = build_registry(values)
    (host, port), *more_addresses = values["web_listen_address"]
    make_server: Callable[..., ExporterServer] = ExporterServer
    pusher = None
    if values["push_url"]:
        from exporter.push.service import PushingExporterServer, PushSetupError, build_pusher

        try:
            pusher = build_pusher(values, registry)
        except PushSetupError as exc:
            print(f"perfanalysis exporter: cannot push: {exc}", file=sys.stderr)
            return 1
        make_server = functools.partial(PushingExporterServer, pusher=pusher)
    try:
        server = make_server(
            (host, port),
            registry,
            values["web_telemetry_path"],
            values["web_max_requests"],
            web_config=values["web_config_file"],
            max_connections=values["web_max_connections"],
            extra_addresses=more_addresses,
        )
    except OSError as exc:
        where = shown_address(*exc.address) if isinstance(exc, ListenError) else f"{host}:{port}"
        print(f"perfanalysis exporter: cannot listen on {where}: {exc}", file=sys.stderr)
        if pusher is not None:
            pusher.stop(0)
        return 1
    server.health_sources = [c for c in registry.collectors if isinstance(c, FilesystemCollector)]
    stop = threading.Event()

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d, shutting down", signum)
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info(
        "listening on %s, collectors: %s", ", ".join(server.addresses), ", ".join(registry.names)
    )
    if values["web_config_file"] is not None:
        log.info("web configuration: %s", values["web_config_file"].describe())
    if pusher is not None:
        pusher.start()
        log.info(
            "pushing every %gs to %s, %.3fs into each interval (this host's phase)",
            pusher.interval,
            values["push_url"],
            pusher.phase or 0.0,
        )
    server.serve_forever()
    server.server_close()
    if pusher is not None:
        pusher.stop(PUSH_STOP_TIMEOUT)
    return 0


if __name__ == "__main__":  # python -m exporter.main: the same as ``perfanalysis exporter``
    sys.exit(run(sys.argv[1:]))
