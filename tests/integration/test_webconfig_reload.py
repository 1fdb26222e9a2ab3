"""The real exporter re-reads --web.config.file when it changes: a revoked password stops working
without a restart, a broken file refuses requests (logged once), a fixed one serves again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporter.webconfig import bcrypt_available
from perfanalysis.testing.servers import ServerRegistry, wait_until
from tests.integration.test_exporter_tls import TLSExporter, bcrypt_hash, session
from tests.support.tls import make_pki

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not bcrypt_available(), reason="the bcrypt package is not installed"),
]


def replace(path: Path, text: str) -> None:
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def test_a_revoked_password_stops_working_without_a_restart(
    servers: ServerRegistry, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    config = tmp_path / "web.yml"
    tls = f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
    config.write_text(tls + f"basic_auth_users:\n  prometheus: '{bcrypt_hash('leaked')}'\n")
    exporter = servers.start(
        TLSExporter(tmp_path / "s", config, pki.ca, auth=("prometheus", "leaked"))
    )

    def status(password: str) -> int:
        http = session(pki.ca, auth=("prometheus", password))
        return http.get(f"{exporter.url}/metrics", timeout=10).status_code

    assert status("leaked") == 200
    replace(config, tls + f"basic_auth_users:\n  prometheus: '{bcrypt_hash('fresh')}'\n")
    assert status("leaked") == 401
    assert status("fresh") == 200

    replace(config, tls + "basic_auth_users:\n  prometheus: fresh\n")  # a plain password
    for password in ("fresh", "leaked", "fresh"):
        assert status(password) == 500
    log = wait_until(
        lambda: "cannot be used" in (text := exporter.log_path.read_text()) and text,
        timeout=10,
        what="the error in the exporter's log",
    )
    assert log.count("every request is refused until it is fixed") == 1
    assert "basic_auth_users.prometheus: not a bcrypt hash" in log

    replace(config, tls + f"basic_auth_users:\n  prometheus: '{bcrypt_hash('fixed')}'\n")
    assert status("fixed") == 200
    assert status("fresh") == 401
