"""gunicorn's gthread worker, except that a new connection waits for its first request in the
worker's poller instead of in a thread.

The stock worker hands every accepted connection to a thread, which then waits up to five
seconds for the first bytes. Connections that are opened before they are used (browsers'
preconnects, a load balancer's or a client library's connection pool, a load generator's
clients arriving over their think time) each hold a thread meanwhile. With as many idle new
connections as threads, requests on the other connections wait for a thread while the CPUs
are idle. Here an accepted connection goes straight to the path gunicorn itself takes after
those five seconds: non-blocking, in the poller, closed after the keep-alive timeout if nothing
comes. When its request arrives, it gets a thread like a kept-alive connection does.

This reuses gunicorn's own deferral (``finish_request`` with a deferred result), which exists
since gunicorn 27; ``test_silent_clients_do_not_hold_the_others_up`` in
tests/integration/test_admin_serve.py fails if an upgrade changes it.
"""

from __future__ import annotations

import errno
import socket
from concurrent.futures import Future
from typing import Any

from gunicorn.workers import gthread

WORKER_CLASS = "perfanalysis.gthread_worker.ThreadWorker"


class ThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    def accept(self, listener: socket.socket) -> None:
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        connection = gthread.TConn(self.cfg, client, address, listener.getsockname())
        waiting: Future[Any] = Future()
        waiting.set_result(gthread._DEFER)
        self.finish_request(connection, waiting)
