"""``perfanalysis ingest [flags]``: parse the settings, then serve the write API under gunicorn.

Before anything imports prometheus_client, PROMETHEUS_MULTIPROC_DIR is pointed at a directory
the workers share (the operator's, emptied of a previous run's files, or a private temporary
one removed at exit), so /metrics adds up all workers (ingest/metrics.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.settings import load
from perfanalysis.config import ConfigError, HelpRequested

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# No query string (%(U)s is the path alone) and no user (%(u)s may be a key sent as basic-auth
# user): a key sent where it should not be must not reach the logs as well.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'

log = logging.getLogger("ingest")


def run(argv: Sequence[str]) -> int:
    try:
        settings = load(argv)
        refuse_missing_database(settings["database_url"])
    except HelpRequested as exc:
        print(exc.text)
        return 0
    except ConfigError as exc:
        print("perfanalysis ingest: invalid configuration:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings["log_level"].upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    metrics_dir, owned = prepare_metrics_dir()
    master = os.getpid()
    try:
        serve(settings)
    finally:
        # gunicorn's workers are forked inside serve() and leave it by SystemExit through this
        # block too: only the master may remove the directory every worker still writes to
        if owned and os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def refuse_missing_database(url: str) -> None:
    """A SQLite file that is not there is a typo, not a database to create: ingest only reads
    it, and SQLite would make an empty one on which every key lookup fails. A database without
    the schema is not refused: ingest may start before the admin app's init-db has run (the
    Kubernetes manifests order nothing between them); /health reports it until then."""
    from tenants.schema import sqlite_file_problem

    problem = sqlite_file_problem(url)
    if problem:
        raise ConfigError([f"setting database-url: {problem}"])


def prepare_metrics_dir() -> tuple[str, bool]:
    """The multiprocess metrics directory, empty, and whether it is ours to remove."""
    if "prometheus_client" in sys.modules:
        log.warning("prometheus_client was imported early: /metrics shows one worker at a time")
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        return given, False
    made = tempfile.mkdtemp(prefix="perfanalysis-ingest-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made, True


def serve(settings: dict[str, Any]) -> None:
    from ingest.app import create_app
    from perfanalysis import web_tls
    from perfanalysis.serving import serve as serve_wsgi

    host, port = settings["web_listen_address"]
    serve_wsgi(
        lambda: create_app(settings),
        host,
        port,
        settings["web_workers"],
        settings["web_threads"],
        settings["web_request_timeout"],
        access_log_format=ACCESS_LOG_FORMAT,
        loglevel=settings["log_level"],
        # a worker must outlive its slowest storage write, or gunicorn kills it mid-request
        timeout=max(30, int(settings["storage_timeout"]) + 10),
        child_exit=child_exit,
        worker_exit=worker_exit,
        **web_tls.gunicorn_options(settings),
    )


def child_exit(server: Any, worker: Any) -> None:
    """In the arbiter: the exited worker's live values go (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker: write pending key use to the database and close connections."""
    app = getattr(worker, "wsgi", None)
    context = getattr(app, "extensions", {}).get("ingest")
    if context is not None:
        context.close()


if __name__ == "__main__":  # python -m ingest.main: the same as ``perfanalysis ingest``
    sys.exit(run(sys.argv[1:]))
