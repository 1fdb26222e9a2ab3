"""Builds the push path from the exporter's settings and adds it to /health.

Everything that can fail for an operator's reason -- the key file, the spool directory (missing
rights, another exporter holding it) -- fails here, before the exporter listens, with a message
naming the flag to fix. A full file system is not one: the spool opens without a segment, the
exporter starts and serves /metrics, and the push path reports spool_error until there is room.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from exporter.config import default_spool_dir
from exporter.push.backoff import Backoff
from exporter.push.client import PushClient
from exporter.push.keyfile import KeyFile, KeyFileError
from exporter.push.lineproto import LineEncoder
from exporter.push.metrics import PushMetrics
from exporter.push.pusher import Pusher
from exporter.push.schedule import host_phase
from exporter.push.spool import Spool, SpoolError
from exporter.push.transport import TLSFileError, TLSFiles
from exporter.registry import Registry
from exporter.server import ExporterServer

BACKOFF_BASE = 0.5  # seconds: the first retry comes within half a second
TLS_FLAGS = {"ca": "--push.tls-ca-file", "cert": "--push.tls-cert-file and --push.tls-key-file"}


class PushSetupError(Exception):
    """The push path cannot start; the message says which setting to fix."""


def build_pusher(values: Mapping[str, Any], registry: Registry) -> Pusher:
    """A pusher (not started) for the parsed settings; its metrics join the registry's extras."""
    try:
        key = KeyFile(values["push_key_file"])
    except KeyFileError as exc:
        raise PushSetupError(f"--push.key-file: {exc}") from None
    tls = TLSFiles(
        values["push_tls_ca_file"], values["push_tls_cert_file"], values["push_tls_key_file"]
    )
    client = PushClient(values["push_url"], key, values["push_timeout"], tls)
    if tls.paths():
        try:
            client.connection.tls_context()  # checked now, kept for the first connection
        except TLSFileError as exc:
            flags = TLS_FLAGS[exc.which]
            raise PushSetupError(f"{flags}: {exc}") from None
    spool_dir = values["push_spool_dir"] or default_spool_dir()
    try:
        spool = Spool(spool_dir, values["push_spool_max_bytes"])
    except SpoolError as exc:
        raise PushSetupError(f"--push.spool-dir: {exc}") from None
    max_backoff = values["push_max_backoff"]
    host = values["push_host"] or socket.gethostname()
    interval = values["push_interval"]
    try:
        encoder = LineEncoder(host)
    except ValueError as exc:  # a hostname line protocol cannot carry
        raise PushSetupError(f"--push.host: {host!r}: {exc}") from None
    pusher = Pusher(
        registry,
        encoder,
        spool,
        client,
        Backoff(min(BACKOFF_BASE, max_backoff), max_backoff),
        interval,
        values["push_batch_size"],
        phase=host_phase(host, interval),
    )
    # served and pushed even with --web.disable-exporter-metrics, which excludes only the
    # process_* and build metrics: the alert rules and the ingest dashboard need these
    registry.extra.append(PushMetrics(pusher))
    return pusher


class PushingExporterServer(ExporterServer):
    """The exporter's server, with the push path's state in /health."""

    def __init__(self, *args: Any, pusher: Pusher, **kwargs: Any) -> None:
        self.pusher = pusher
        super().__init__(*args, **kwargs)

    def health(self) -> dict[str, Any]:
        report = super().health()
        report["push"] = push = self.pusher.status()
        if push["status"] not in ("ok", "starting"):
            report["status"] = "degraded"
        return report
