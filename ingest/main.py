"""``perfanalysis ingest [flags]``: parse the settings, then serve the write API under gunicorn.

Before anything imports prometheus_client, PROMETHEUS_MULTIPROC_DIR is pointed at a directory
the workers share (the operator's, rid of a previous run's metrics files, or a private temporary
one removed at exit), so /metrics adds up all workers (ingest/metrics.py).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

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
        check_metrics_dir(settings["database_url"])
    except HelpRequested as exc:
        print(exc.text)
        return 0
    except ConfigError as exc:
        return invalid(exc)
    logging.basicConfig(
        level=settings["log_level"].upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        metrics_dir, owned = prepare_metrics_dir()
    except ConfigError as exc:
        return invalid(exc)
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


def invalid(exc: ConfigError) -> int:
    print("perfanalysis ingest: invalid configuration:", file=sys.stderr)
    for error in exc.errors:
        print(f"  {error}", file=sys.stderr)
    return 2


def check_metrics_dir(database_url: str) -> None:
    """PROMETHEUS_MULTIPROC_DIR, when given, made if missing and refused (ConfigError naming it)
    when it is not a directory this user may write in, or not one for metrics alone: it holds
    the SQLite database of ``database_url``, or another *.db file, which /metrics would read as
    a metrics file (prometheus_client reads every *.db file there) and fail."""
    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        return
    directory = Path(given)
    where = f"{MULTIPROC_ENV} ({given})"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file stands where the directory or one of its parents must be
        raise ConfigError([f"{where}: not a directory"]) from None
    except OSError as exc:
        raise ConfigError([f"{where}: cannot make the directory: {exc.strerror or exc}"]) from None
    if not directory.is_dir():
        raise ConfigError([f"{where}: not a directory"])
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError([f"{where}: not writable by this user: the workers write their "
                           "metrics there"])  # fmt: skip
    database = _sqlite_file(database_url)
    if database is not None and any(
        _same_directory(parent, directory)
        for parent in (database.parent, database.resolve().parent)
    ):
        raise ConfigError(
            [f"{where}: holds the admin database {database} (setting database-url): give the "
             "metrics a directory of their own, which ingest clears of a previous run's metrics "
             "files"]
        )  # fmt: skip
    try:
        foreign = sorted(
            entry.name for entry in directory.glob("*.db") if not _is_metrics_file(entry)
        )
    except OSError as exc:
        raise ConfigError([f"{where}: cannot be read: {exc.strerror or exc}"]) from None
    if foreign:
        raise ConfigError(
            [f"{where}: holds {', '.join(foreign[:3])}{' and more' if len(foreign) > 3 else ''}, "
             "not prometheus_client's metrics files: /metrics reads every *.db file there and "
             "would fail; give the metrics a directory of their own"]
        )  # fmt: skip


# prometheus_client's own files (prometheus_client/values.py, MultiProcessValue): TYPE_PID.db,
# and gauge_MODE_PID.db for each multiprocess mode of a gauge (Gauge._MULTIPROC_MODES)
_GAUGE_MODES = ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum",
                "mostrecent", "livemostrecent")  # fmt: skip
METRICS_FILE = re.compile(
    rf"(?:counter|histogram|summary|gauge_(?:{'|'.join(_GAUGE_MODES)}))_[0-9]+\.db"
)


def _is_metrics_file(path: Path) -> bool:
    return bool(METRICS_FILE.fullmatch(path.name)) and path.is_file() and not path.is_symlink()


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (a file: URI's path too); None for any other."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return None
    if path.startswith("file:"):
        path = unquote(urlsplit(path).path)
    return Path(path) if path else None


def _same_directory(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:  # the database's directory is not there (then nor is the database)
        return False


def prepare_metrics_dir() -> tuple[str, bool]:
    """The multiprocess metrics directory, rid of a previous run's metrics files (and of
    nothing else), and whether it is ours to remove; check_metrics_dir has checked it."""
    if "prometheus_client" in sys.modules:
        log.warning("prometheus_client was imported early: /metrics shows one worker at a time")
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        try:
            for stale in Path(given).glob("*.db"):
                if _is_metrics_file(stale):
                    stale.unlink(missing_ok=True)
        except OSError as exc:
            raise ConfigError(
                [f"{MULTIPROC_ENV} ({given}): cannot remove a previous run's metrics files: "
                 f"{exc.strerror or exc}"]
            ) from None  # fmt: skip
        return given, False
    made = tempfile.mkdtemp(prefix="perfanalysis-ingest-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made, True


def serve(settings: dict[str, Any]) -> None:
    from ingest.accesslog import AccessLogger
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
        logger_class=AccessLogger,
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
