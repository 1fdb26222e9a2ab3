"""``perfanalysis exporter``: parse flags, build the registry, serve until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from types import FrameType

from exporter.app import build_registry
from exporter.collectors.filesystem import FilesystemCollector
from exporter.config import load
from exporter.server import ExporterServer
from perfanalysis.config import ConfigError, HelpRequested

log = logging.getLogger("exporter")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def run(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    try:
        values = load(argv, os.environ if environ is None else environ)
    except HelpRequested as help_:
        print(help_.text)
        return 0
    except ConfigError as exc:
        print("perfanalysis exporter: invalid configuration:", file=sys.stderr)
        for error in exc.errors:
            print(f"  - {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=LEVELS[values["log_level"]],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    registry = build_registry(values)
    host, port = values["web_listen_address"]
    try:
        server = ExporterServer(
            (host, port), registry, values["web_telemetry_path"], values["web_max_requests"]
        )
    except OSError as exc:
        print(f"perfanalysis exporter: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    server.health_sources = [c for c in registry.collectors if isinstance(c, FilesystemCollector)]
    stop = threading.Event()

    def shutdown(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d, shutting down", signum)
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    bound_host, bound_port = server.server_address[:2]
    log.info(
        "listening on %s:%d, collectors: %s", bound_host, bound_port, ", ".join(registry.names)
    )
    server.serve_forever(poll_interval=0.5)
    server.server_close()
    return 0
