"""``perfanalysis admin serve``: the admin app under gunicorn, as deployed.

What gunicorn's worker class decides, and the Flask test client cannot show: connections are
kept alive, and clients that connect and say nothing hold neither a worker nor the others up; and
what its access log holds: no invitation link's secret.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from perfanalysis.testing.servers import (
    OwnComponent,
    ServerProcess,
    source_tree_environment,
    wait_until,
)

pytestmark = pytest.mark.integration
SECRET = "serve-test-secret-" + "s" * 40


class AdminProcess(OwnComponent, ServerProcess):
    """``python -m perfanalysis.cli admin serve`` on a free loopback port, on SQLite."""

    ready_path = "/health"

    def __init__(self, base_dir: str | os.PathLike[str], threads: int) -> None:
        super().__init__(base_dir)
        self.threads = threads

    def environment(self) -> dict[str, str]:
        return source_tree_environment(
            {
                "PERFANALYSIS_ADMIN_DATABASE_URL": f"sqlite:///{self.data_dir}/admin.db",
                "PERFANALYSIS_ADMIN_SECRET_KEY": SECRET,
                "PERFANALYSIS_ADMIN_WEB_LISTEN_ADDRESS": self.address,
                "PERFANALYSIS_ADMIN_WEB_WORKERS": "1",
                "PERFANALYSIS_ADMIN_WEB_THREADS": str(self.threads),
                "DATABASE_URL": "",
            }
        )

    def write_config(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "perfanalysis.cli", "admin", "init-db"],
            env=self.environment(),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def command(self) -> list[str]:
        return [sys.executable, "-m", "perfanalysis.cli", "admin", "serve"]


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminProcess]:
    process = AdminProcess(tmp_path_factory.mktemp("admin-serve"), threads=4)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _get(connection: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response


def test_one_connection_serves_many_requests(admin: AdminProcess) -> None:
    host, port = admin.address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        first = _get(connection, "/health")
        assert first.status == 200
        assert (first.getheader("Connection") or "").lower() != "close"
        local = connection.sock.getsockname()
        for path in ("/login", "/health", "/api/v1/openapi.json"):
            assert _get(connection, path).status == 200
            assert connection.sock.getsockname() == local  # no reconnection in between
    finally:
        connection.close()


def test_silent_clients_do_not_hold_the_others_up(admin: AdminProcess) -> None:
    """More silent connections than the only worker has threads; a real client is answered.

    A sync worker would sit on the first silent connection until gunicorn's 30 s timeout, and
    gunicorn's own gthread worker lends each new connection a thread for up to 5 s: both would
    exceed the socket timeout below. perfanalysis.gthread_worker parks new connections in the
    poller until their first request.
    """
    host, port = admin.address.rsplit(":", 1)
    silent = [
        socket.create_connection((host, int(port)), timeout=10) for _ in range(admin.threads + 2)
    ]
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=4)
        try:
            assert _get(connection, "/health").status == 200
            assert _get(connection, "/login").status == 200  # and kept alive
        finally:
            connection.close()
        silent[0].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = silent[0].makefile("rb").readline()
        assert answer.startswith(b"HTTP/1.1 200"), answer  # a parked connection is served
    finally:
        for sock in silent:
            sock.close()


def test_serve_refuses_a_bad_thread_count(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "perfanalysis.cli", "admin", "--web.threads", "0", "serve"],
        env=source_tree_environment(
            {
                "PERFANALYSIS_ADMIN_DATABASE_URL": f"sqlite:///{tmp_path}/a.db",
                "PERFANALYSIS_ADMIN_SECRET_KEY": SECRET,
                "DATABASE_URL": "",
            }
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "web.threads" in completed.stderr


def _admin_cli(admin: AdminProcess, *args: str, **env: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "perfanalysis.cli", "admin", *args],
        env={**admin.environment(), **env},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return completed.stdout


def test_the_access_log_holds_no_invitation_secret(admin: AdminProcess) -> None:
    """An invitation's link, requested as a browser does (the page, its stylesheet with the link
    as Referer, the login on the way back to it), leaves its secret in no access-log line."""
    _admin_cli(admin, "create-user", "root@serve.test", "--platform-admin",
               PERFANALYSIS_NEW_PASSWORD="serve test password")  # fmt: skip
    _admin_cli(admin, "create-tenant", "acme", "Acme")
    token = _admin_cli(admin, "issue-token", "--email", "root@serve.test", "--name", "t").strip()
    host, port = admin.address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(
            "POST", "/api/v1/tenants/acme/invitations",
            body=json.dumps({"email": "alice@serve.test", "role": "admin"}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        created = connection.getresponse()
        body = json.loads(created.read())
        assert created.status == 201, body
        link = body["url"]
        path = urlsplit(link).path
        secret = body["token"].split("_", 2)[2]
        shown = _get(connection, path)
        assert shown.status == 200
        assert shown.getheader("Referrer-Policy") == "no-referrer"
        connection.request("GET", "/static/admin.css", headers={"Referer": link})
        connection.getresponse().read()
        assert _get(connection, f"/login?next={quote(path, safe='')}").status == 200
        assert _get(connection, "/health?marker=last").status == 200
    finally:
        connection.close()

    def logged_to_the_end() -> str | None:
        text = admin.log_path.read_text(errors="replace")
        return text if "/health?marker=last" in text else None

    log = wait_until(logged_to_the_end, 10, what="the access log's last line")
    assert secret not in log
    redacted = "_".join(body["token"].split("_")[:2])  # pai_<token id>: the secret goes
    assert f"GET /invitations/{redacted}_[redacted] HTTP/1.1" in log
    assert f'"{link.split("/invitations/")[0]}/invitations/{redacted}_[redacted]"' in log
    assert f"/login?next=/invitations/{redacted}_[redacted]" in log
