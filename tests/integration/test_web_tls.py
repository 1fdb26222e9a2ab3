"""Ingest and admin serving HTTPS themselves (web.tls-cert-file, web.tls-key-file)."""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from ingest.testing import CollectorKey, IngestProcess, ingest_environment, issue_collector_key
from perfanalysis.testing.servers import InfluxDB, ServerRegistry
from tenants import db as database
from tests.conftest import TEST_SECRET
from tests.integration.test_admin_serve import AdminProcess
from tests.support.tls import PKI, make_pki

pytestmark = pytest.mark.integration


class HTTPSIngest(IngestProcess):
    def __init__(self, base_dir: str | os.PathLike[str], env: dict[str, str], ca: Path) -> None:
        super().__init__(base_dir, env)
        self.http.verify = str(ca)

    @property
    def url(self) -> str:
        return f"https://{self.address}"


class HTTPSAdmin(AdminProcess):
    def __init__(self, base_dir: str | os.PathLike[str], pki: Any) -> None:
        super().__init__(base_dir, threads=2)
        self.pki = pki
        self.http.verify = str(pki.ca)

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            "PERFANALYSIS_ADMIN_WEB_TLS_CERT_FILE": str(self.pki.cert),
            "PERFANALYSIS_ADMIN_WEB_TLS_KEY_FILE": str(self.pki.key),
        }

    @property
    def url(self) -> str:
        return f"https://{self.address}"


def https_ingest(
    servers: ServerRegistry,
    app: Flask,
    database_url: str,
    tmp_path: Path,
    pki: PKI,
    tenant: str,
    client_certificates: bool = False,
) -> tuple[HTTPSIngest, InfluxDB, CollectorKey]:
    """Ingest serving HTTPS with pki's certificate (and requiring client certificates from its
    CA), a real InfluxDB with auth, and a key for collector web-01 of ``tenant``."""
    influxdb = servers.influxdb(auth=True)
    with app.app_context():
        key = issue_collector_key(database.session(), app.extensions["pa_hasher"], tenant, "web-01")
    influxdb.create_database(key.database)
    tls = {"WEB_TLS_CERT_FILE": str(pki.cert), "WEB_TLS_KEY_FILE": str(pki.key)}
    if client_certificates:
        tls["WEB_TLS_CLIENT_CA_FILE"] = str(pki.ca)
    environment = ingest_environment(
        TEST_SECRET, database_url, influxdb, tmp_path / "metrics", LIMITS_RATE="0", **tls
    )
    ingest = HTTPSIngest(servers.base_dir, environment, pki.ca)
    if client_certificates:
        ingest.http.cert = (str(pki.client_cert), str(pki.client_key))  # polled for readiness
    return servers.start(ingest), influxdb, key


def test_ingest_over_https_stores_points_and_refuses_plain_http(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    ingest, influxdb, key = https_ingest(servers, app, database_url, tmp_path, pki, "tls")
    assert ingest.url.startswith("https://")
    now = int(time.time())
    body = "\n".join(f"cpu,host=h{i} value={i}.5 {now - 60 + i}" for i in range(10))
    http = requests.Session()
    http.trust_env = False
    http.verify = str(pki.ca)
    headers = {"Authorization": f"Token {key.key}"}
    written = http.post(f"{ingest.url}/write?precision=s", data=body, headers=headers, timeout=30)
    assert written.status_code == 204, written.text
    rows = influxdb.rows("SELECT count(value) FROM cpu", db=key.database)
    assert int(rows[0]["count"]) == 10

    with pytest.raises(requests.ConnectionError):
        http.post(f"http://{ingest.address}/write", data=body, headers=headers, timeout=10)
    unverified = requests.Session()
    unverified.trust_env = False  # and the system's CAs do not know this certificate
    with pytest.raises(requests.exceptions.SSLError):
        unverified.get(f"{ingest.url}/ping", timeout=10)


def test_admin_over_https(tmp_path: Path) -> None:
    admin = HTTPSAdmin(tmp_path / "admin", make_pki(tmp_path / "pki")).start()
    try:
        assert admin.http.get(f"{admin.url}/health", timeout=10).json()["status"] == "ok"
        login = admin.http.get(f"{admin.url}/login", timeout=10)
        assert login.status_code == 200
        assert "csrf_token" in login.text
        cookie = login.headers["Set-Cookie"]
        assert "; Secure" in cookie  # served over HTTPS: the session never goes out in clear
    finally:
        admin.stop()


def served_certificate(address: str, ca: Path) -> bytes:
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    return served


def test_a_renewed_certificate_is_served_without_a_restart_and_a_half_renewed_one_never(
    tmp_path: Path,
) -> None:
    """Renewed in place (cert-manager, certbot), as the files change; a new certificate whose
    new key has not arrived yet leaves the old pair in use instead of failing handshakes."""
    pki = make_pki(tmp_path / "pki")
    admin = HTTPSAdmin(tmp_path / "admin", pki).start()
    try:
        first = served_certificate(admin.address, pki.ca)
        assert first == ssl.PEM_cert_to_DER_cert(pki.cert.read_text())
        renewed = make_pki(tmp_path / "renewed", name="renewed")
        replace(pki.cert, renewed.cert.read_bytes())  # its key still the old one
        assert served_certificate(admin.address, pki.ca) == first
        replace(pki.key, renewed.key.read_bytes())
        now = served_certificate(admin.address, renewed.ca)
        assert now == ssl.PEM_cert_to_DER_cert(renewed.cert.read_text())
        admin.http.verify = str(renewed.ca)
        assert admin.http.get(f"{admin.url}/health", timeout=10).status_code == 200
    finally:
        admin.stop()


def replace(path: Path, content: bytes) -> None:
    """As a renewal does: a new file renamed over the old one."""
    new = path.with_name(path.name + ".new")
    new.write_bytes(content)
    os.replace(new, path)


def test_ingest_requiring_client_certificates_takes_the_exporters_push(
    servers: ServerRegistry, app: Flask, database_url: str, tmp_path: Path
) -> None:
    from exporter.push.client import PushClient, Verdict, compress
    from exporter.push.keyfile import KeyFile
    from exporter.push.transport import TLSFiles

    pki = make_pki(tmp_path / "pki")
    ingest, influxdb, key = https_ingest(
        servers, app, database_url, tmp_path, pki, "mtls", client_certificates=True
    )
    key_file = tmp_path / "collector.key"
    key_file.write_text(key.key + "\n")
    now = time.time_ns()
    body = "".join(f"cpu,host=h{i} value={i}.5 {now - i * 10**9}\n" for i in range(7)).encode()

    anonymous = PushClient(ingest.url, KeyFile(str(key_file)), 10.0, TLSFiles(str(pki.ca)))
    refused = anonymous.deliver(compress(body), 7)
    assert refused.verdict is Verdict.RETRY  # kept, to be sent once it has a certificate
    assert influxdb.rows("SHOW MEASUREMENTS", db=key.database) == []

    tls = TLSFiles(str(pki.ca), str(pki.client_cert), str(pki.client_key))
    pushed = PushClient(ingest.url, KeyFile(str(key_file)), 10.0, tls).deliver(compress(body), 7)
    assert pushed.verdict is Verdict.SETTLED, pushed.error
    rows = influxdb.rows("SELECT count(value) FROM cpu", db=key.database)
    assert int(rows[0]["count"]) == 7
