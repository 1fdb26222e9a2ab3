"""The real exporter with --web.config.file: HTTPS scrapes, basic auth, mutual TLS, reloads.

Certificates are made with the ``cryptography`` package (tests/support/tls.py): a throwaway CA, a
server certificate for 127.0.0.1 and a client certificate, so that clients verify the server for
real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter.webconfig import bcrypt_available
from perfanalysis.testing.servers import ExporterProcess, NodeExporter, ServerRegistry, wait_until
from tests.support.tls import PKI, make_pki
from tests.unit.test_webconfig import encrypted_copy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COLLECTORS = ["--collector.disable-defaults", "--collector.loadavg", "--collector.meminfo"]


class TLSExporter(ExporterProcess):
    """Our exporter behind --web.config.file, polled for readiness over HTTPS."""

    def __init__(
        self,
        base_dir: Path,
        web_config: Path,
        ca: Path,
        auth: tuple[str, str] | None = None,
        client: tuple[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(base_dir, [*COLLECTORS, f"--web.config.file={web_config}"], env)
        self.http.verify = str(ca)
        self.http.auth = auth
        self.http.cert = client

    @property
    def url(self) -> str:
        return f"https://{self.address}"


def session(ca: Path, **kwargs: Any) -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    http.verify = str(ca)
    for name, value in kwargs.items():
        setattr(http, name, value)
    return http


def bcrypt_hash(password: str) -> str:
    import bcrypt

    # node_exporter's docs make hashes with htpasswd, which writes $2y$: use that prefix
    hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10))
    return hashed.decode().replace("$2b$", "$2y$")


def test_https_scrape_works_and_plain_http_to_the_tls_port_does_not(
    servers: ServerRegistry, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: pki/server.crt\n  key_file: pki/server.key\n"
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
    )
    exporter = servers.start(TLSExporter(tmp_path / "s", config, pki.ca))
    response = exporter.request("GET", "/metrics")
    assert "node_load1 " in response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert exporter.request("GET", "/health").json()["status"] in ("ok", "degraded")
    # keep-alive over TLS: several scrapes on one connection
    for _ in range(3):
        assert "node_memory_MemTotal_bytes" in exporter.request("GET", "/metrics").text

    plain = session(pki.ca).get(f"http://{exporter.address}/metrics", timeout=10)
    assert plain.status_code == 400
    assert "HTTP request to an HTTPS server" in plain.text
    assert "node_load1" not in plain.text
    # a client that does not trust the CA gets no metrics either
    with pytest.raises(requests.exceptions.SSLError):
        session(Path(certifi_where())).get(f"{exporter.url}/metrics", timeout=10)
    assert "TLS (TLS12-TLS13)" in exporter.log_tail()


def certifi_where() -> str:
    import certifi

    return str(certifi.where())


@pytest.mark.skipif(
    not bcrypt_available(),
    reason="the bcrypt package is not installed: basic_auth_users is refused without it",
)
def test_basic_auth_over_tls_refuses_a_wrong_password_with_401(
    servers: ServerRegistry, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
        f"basic_auth_users:\n  prometheus: '{bcrypt_hash('correct horse')}'\n"
    )
    exporter = servers.start(
        TLSExporter(tmp_path / "s", config, pki.ca, auth=("prometheus", "correct horse"))
    )
    assert "node_load1 " in exporter.request("GET", "/metrics").text
    for auth in (("prometheus", "wrong"), ("someone", "correct horse"), None):
        answer = session(pki.ca, auth=auth).get(f"{exporter.url}/metrics", timeout=10)
        assert answer.status_code == 401, auth
        assert answer.headers["WWW-Authenticate"].startswith("Basic")
        assert "node_load1" not in answer.text
    assert session(pki.ca).get(f"{exporter.url}/health", timeout=10).status_code == 401


def test_basic_auth_without_bcrypt_refuses_to_start_and_says_what_to_install(
    tmp_path: Path,
) -> None:
    hidden = tmp_path / "no-bcrypt" / "bcrypt"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    config = tmp_path / "web.yml"
    config.write_text(
        "basic_auth_users:\n  prometheus: '$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "perfanalysis.cli", "exporter", f"--web.config.file={config}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": f"{tmp_path / 'no-bcrypt'}{os.pathsep}{ROOT}"},
    )
    assert result.returncode == 2
    assert "flag --web.config.file" in result.stderr
    assert "needs the 'bcrypt' package" in result.stderr
    assert "pip install bcrypt" in result.stderr


def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    servers: ServerRegistry, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    stranger = make_pki(tmp_path / "stranger", "stranger")
    config = tmp_path / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n"
        "  min_version: TLS13\n"
    )
    exporter = servers.start(
        TLSExporter(
            tmp_path / "s", config, pki.ca, client=(str(pki.client_cert), str(pki.client_key))
        )
    )
    assert "node_load1 " in exporter.request("GET", "/metrics").text
    for cert in (None, (str(stranger.client_cert), str(stranger.client_key))):
        with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one
            session(pki.ca, cert=cert).get(f"{exporter.url}/metrics", timeout=10)


def live_pair(tmp_path: Path, pki: PKI) -> tuple[Path, Path]:
    """A copy of the server pair in ``live/`` (for renewals to replace) and a web.yml using it."""
    live = tmp_path / "live"
    live.mkdir()
    (live / "tls.crt").write_bytes(pki.cert.read_bytes())
    (live / "tls.key").write_bytes(pki.key.read_bytes())
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: live/tls.crt\n  key_file: live/tls.key\n")
    return live, config


def test_a_renewed_certificate_is_served_without_a_restart(
    servers: ServerRegistry, tmp_path: Path
) -> None:
    first = make_pki(tmp_path / "first", "first")
    live, config = live_pair(tmp_path, first)
    exporter = servers.start(TLSExporter(tmp_path / "s", config, first.ca))
    pid = exporter.pid
    assert session(first.ca).get(f"{exporter.url}/metrics", timeout=10).status_code == 200

    second = make_pki(tmp_path / "second", "second")
    # as cert-manager or certbot would: new files moved into place
    for source, target in ((second.key, "tls.key"), (second.cert, "tls.crt")):
        (live / f".{target}.new").write_bytes(source.read_bytes())
        os.replace(live / f".{target}.new", live / target)
    assert session(second.ca).get(f"{exporter.url}/metrics", timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        session(first.ca).get(f"{exporter.url}/metrics", timeout=10)
    assert exporter.pid == pid


def test_a_renewed_key_that_is_encrypted_keeps_the_old_pair_serving(
    servers: ServerRegistry, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    live, config = live_pair(tmp_path, pki)
    exporter = servers.start(TLSExporter(tmp_path / "s", config, pki.ca))
    os.replace(encrypted_copy(pki.key, live / ".tls.key.new"), live / "tls.key")
    for _ in range(3):  # every connection is still served, with the pair loaded before
        assert session(pki.ca).get(f"{exporter.url}/metrics", timeout=10).status_code == 200
    wait_until(lambda: "keeping the old" in exporter.log_tail(), 10, 0.05, "the logged error")
    errors = [line for line in exporter.log_tail(200).splitlines() if " level=error " in line]
    assert len(errors) == 1  # once per change on disk, not once per connection
    assert "encrypted private keys are not supported" in errors[0]


class WithBasicAuth(NodeExporter):
    """node_exporter behind basic auth: ready once it answers at all (401 without credentials)."""

    ready_statuses = frozenset({200, 401})


class OursWithBasicAuth(ExporterProcess):
    ready_statuses = frozenset({200, 401})


@pytest.mark.skipif(not bcrypt_available(), reason="the bcrypt package is not installed")
def test_basic_auth_accepts_the_passwords_node_exporter_accepts(
    servers: ServerRegistry, tmp_path: Path
) -> None:
    """Debian's node_exporter 1.5.0 and ours on one web.yml: bcrypt reads a password's first 72
    bytes, and credentials are bytes (a Latin-1 password is fine)."""
    import bcrypt

    token = b"t0k3n-" * 14  # 84 bytes, as a generated secret may be
    users = {"long": token[:72], "latin": "café".encode("latin-1")}
    config = tmp_path / "web.yml"
    config.write_text(
        "basic_auth_users:\n"
        + "".join(
            f"  {user}: '{bcrypt.hashpw(password, bcrypt.gensalt(4)).decode()}'\n"
            for user, password in users.items()
        )
    )
    flags = ["--collector.disable-defaults", "--collector.loadavg", f"--web.config.file={config}"]
    theirs = servers.start(WithBasicAuth(tmp_path / "theirs", flags))
    ours = servers.start(OursWithBasicAuth(tmp_path / "ours", flags))
    cases = [
        (b"long", token, 200),
        (b"long", token[:72] + b"-ignored", 200),
        (b"long", token[:71], 401),
        (b"latin", "café".encode("latin-1"), 200),
        (b"latin", "café".encode(), 401),
        (b"nobody", token, 401),
    ]
    for user, password, expected in cases:
        answers = [
            requests.get(f"{server.url}/metrics", auth=(user, password), timeout=10).status_code  # type: ignore[arg-type]
            for server in (theirs, ours)
        ]
        assert answers == [expected, expected], (user, password)
