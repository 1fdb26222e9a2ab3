"""The push client over TLS: a private CA by flag, client certificates (mutual TLS), renewals,
and the flags' checks at start-up."""

from __future__ import annotations

import os
import shutil
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.app import build_registry
from exporter.config import load
from exporter.push.client import PushClient, Verdict
from exporter.push.keyfile import KeyFile
from exporter.push.service import PushSetupError, build_pusher
from exporter.push.transport import TLSFiles
from tests.support.tls import PKI, make_pki
from tests.unit.test_push_client import Answer, Scripted, always, body, lines, scripted_servers
from tests.unit.test_push_settings import errors_of


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """Certificates from a CA nobody here trusts."""
    return make_pki(tmp_path_factory.mktemp("stranger"), "stranger")


@pytest.fixture
def https_server(pki: PKI) -> Iterator[Callable[..., Scripted]]:
    """``start(client_certificates=False)``: a scripted HTTPS server with pki's certificate for
    127.0.0.1; with client_certificates, it requires one signed by pki's CA."""
    with scripted_servers() as start:

        def start_https(client_certificates: bool = False) -> Scripted:
            server = start(always(Answer(204)))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(pki.cert, pki.key)
            if client_certificates:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(pki.ca)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            return server

        yield start_https


def https(server: Scripted) -> str:
    return server.url.replace("http://", "https://")


def deliver(server: Scripted, key_file: Path, tls: TLSFiles) -> Any:
    client = PushClient(https(server), KeyFile(str(key_file)), 5.0, tls)
    return client.deliver(body(lines(2)), 2)


def test_a_private_ca_is_trusted_by_flag_alone(
    https_server: Callable[..., Scripted], key_file: Path, pki: PKI
) -> None:
    server = https_server()
    refused = deliver(server, key_file, TLSFiles())
    assert refused.verdict is Verdict.RETRY
    assert "CERTIFICATE_VERIFY_FAILED" in refused.error
    assert deliver(server, key_file, TLSFiles(ca_file=str(pki.ca))).verdict is Verdict.SETTLED
    assert [r.lines for r in server.received] == [lines(2)]


def test_a_server_that_requires_a_client_certificate_gets_one(
    https_server: Callable[..., Scripted], key_file: Path, pki: PKI, stranger: PKI
) -> None:
    server = https_server(client_certificates=True)
    without = deliver(server, key_file, TLSFiles(ca_file=str(pki.ca)))
    assert without.verdict is Verdict.RETRY
    untrusted = TLSFiles(str(pki.ca), str(stranger.client_cert), str(stranger.client_key))
    assert deliver(server, key_file, untrusted).verdict is Verdict.RETRY
    assert server.received == []
    trusted = TLSFiles(str(pki.ca), str(pki.client_cert), str(pki.client_key))
    assert deliver(server, key_file, trusted).verdict is Verdict.SETTLED
    assert [r.lines for r in server.received] == [lines(2)]


def test_a_renewed_client_certificate_is_used_from_the_next_connection(
    https_server: Callable[..., Scripted], key_file: Path, pki: PKI, stranger: PKI, tmp_path: Path
) -> None:
    server = https_server(client_certificates=True)
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    shutil.copy(stranger.client_cert, cert)
    shutil.copy(stranger.client_key, key)
    client = PushClient(
        https(server), KeyFile(str(key_file)), 5.0, TLSFiles(str(pki.ca), str(cert), str(key))
    )
    assert client.deliver(body(lines(1)), 1).verdict is Verdict.RETRY
    for renewed, old in ((pki.client_cert, cert), (pki.client_key, key)):
        stamp = os.stat(old).st_mtime_ns
        shutil.copy(renewed, old)
        os.utime(old, ns=(stamp + 1_000_000_000, stamp + 1_000_000_000))
    assert client.deliver(body(lines(1)), 1).verdict is Verdict.SETTLED


def push_flags(key_file: Path, tmp_path: Path, url: str, *tls: str) -> list[str]:
    return [
        f"--push.url={url}",
        f"--push.key-file={key_file}",
        f"--push.spool-dir={tmp_path / 'spool'}",
        *tls,
    ]


def test_tls_flags_need_https_and_come_in_pairs(key_file: Path, tmp_path: Path, pki: PKI) -> None:
    assert errors_of(
        push_flags(key_file, tmp_path, "http://ingest:8087", f"--push.tls-ca-file={pki.ca}")
    ) == ["flag --push.tls-ca-file needs an https:// --push.url"]
    assert errors_of(
        push_flags(key_file, tmp_path, "https://ingest", f"--push.tls-cert-file={pki.client_cert}")
    ) == ["flag --push.tls-cert-file needs --push.tls-key-file"]
    assert errors_of(
        push_flags(key_file, tmp_path, "https://ingest", f"--push.tls-key-file={pki.client_key}")
    ) == ["flag --push.tls-key-file is given without --push.tls-cert-file"]


def setup_error(flags: list[str]) -> str:
    values = load(flags, {})
    with pytest.raises(PushSetupError) as refused:
        build_pusher(values, build_registry(values))
    return str(refused.value)


def test_unusable_tls_files_stop_the_start_naming_the_flags(
    key_file: Path, tmp_path: Path, pki: PKI
) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    url = "https://127.0.0.1:1"
    assert setup_error(
        push_flags(key_file, tmp_path, url, f"--push.tls-ca-file={not_pem}")
    ).startswith(f"--push.tls-ca-file: {not_pem} is not a PEM CA bundle")
    mismatched = setup_error(
        push_flags(
            key_file, tmp_path, url,
            f"--push.tls-cert-file={pki.client_cert}", f"--push.tls-key-file={pki.key}",
        )
    )  # fmt: skip
    assert mismatched.startswith(
        f"--push.tls-cert-file and --push.tls-key-file: {pki.client_cert} and {pki.key} are not "
        "a PEM certificate and its unencrypted private key"
    )
    assert not (tmp_path / "spool").exists()  # refused before the spool was made


def test_the_exporter_pushes_with_its_tls_files(key_file: Path, tmp_path: Path, pki: PKI) -> None:
    flags = push_flags(
        key_file, tmp_path, "https://127.0.0.1:1", f"--push.tls-ca-file={pki.ca}",
        f"--push.tls-cert-file={pki.client_cert}", f"--push.tls-key-file={pki.client_key}",
    )  # fmt: skip
    values = load(flags, {})
    pusher = build_pusher(values, build_registry(values))
    try:
        assert pusher.client.connection.tls == TLSFiles(
            str(pki.ca), str(pki.client_cert), str(pki.client_key)
        )
    finally:
        pusher.stop(1.0)
