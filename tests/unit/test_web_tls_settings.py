"""web.tls-cert-file and web.tls-key-file: refused at start-up, with the settings named, unless
they are a PEM certificate and its unencrypted key; then gunicorn's certfile and keyfile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.settings import load as load_ingest
from perfanalysis.config import ConfigError
from tenants.settings import load as load_admin
from tests.support.tls import make_pki

SECRET = "web-tls-test-secret-" + "t" * 40
LOADERS: dict[str, tuple[Callable[..., dict[str, Any]], str]] = {
    "admin": (load_admin, "PERFANALYSIS_ADMIN_"),
    "ingest": (load_ingest, "PERFANALYSIS_INGEST_"),
}


def settings(component: str, **tls: Path) -> dict[str, Any]:
    load, prefix = LOADERS[component]
    env = {f"{prefix}SECRET_KEY": SECRET, f"{prefix}DATABASE_URL": "sqlite://"}
    env.update({f"{prefix}WEB_TLS_{name.upper()}_FILE": str(path) for name, path in tls.items()})
    return load([], env)


def refusal(component: str, **tls: Path) -> str:
    with pytest.raises(ConfigError) as refused:
        settings(component, **tls)
    return str(refused.value)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize("component", LOADERS)
def test_a_certificate_and_its_key_become_gunicorns_options(component: str, pki: Any) -> None:
    from perfanalysis.web_tls import gunicorn_options

    values = settings(component, cert=pki.cert, key=pki.key)
    assert gunicorn_options(values) == {"certfile": str(pki.cert), "keyfile": str(pki.key)}
    assert gunicorn_options(settings(component)) == {}  # plain HTTP by default


@pytest.mark.parametrize("component", LOADERS)
def test_half_a_pair_is_refused(component: str, pki: Any) -> None:
    assert "setting web.tls-cert-file: needs web.tls-key-file as well" in refusal(
        component, cert=pki.cert
    )
    assert "setting web.tls-key-file: given without web.tls-cert-file" in refusal(
        component, key=pki.key
    )


@pytest.mark.parametrize("component", LOADERS)
def test_a_key_of_another_certificate_is_refused(component: str, pki: Any, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    message = refusal(component, cert=pki.cert, key=other.key)
    assert "settings web.tls-cert-file and web.tls-key-file" in message
    assert str(other.key) in message


def test_an_encrypted_key_is_refused_without_asking_for_a_passphrase(
    pki: Any, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    assert "unencrypted private key" in refusal("ingest", cert=pki.cert, key=encrypted)


def test_files_that_are_missing_or_not_pem_are_refused(pki: Any, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    assert "not a PEM certificate" in refusal("admin", cert=garbage, key=pki.key)
    missing = refusal("ingest", cert=tmp_path / "missing.crt", key=pki.key)
    assert "PERFANALYSIS_INGEST_WEB_TLS_CERT_FILE" in missing
    assert "no such file" in missing


def test_ingest_can_require_client_certificates(pki: Any) -> None:
    import ssl

    from perfanalysis.web_tls import gunicorn_options

    values = settings("ingest", cert=pki.cert, key=pki.key, client_ca=pki.ca)
    assert gunicorn_options(values) == {
        "certfile": str(pki.cert),
        "keyfile": str(pki.key),
        "ca_certs": str(pki.ca),
        "cert_reqs": ssl.CERT_REQUIRED,
    }


def test_a_client_ca_needs_https_and_must_be_pem(pki: Any, tmp_path: Path) -> None:
    assert (
        "setting web.tls-client-ca-file: needs web.tls-cert-file and web.tls-key-file: client "
        "certificates need HTTPS"
    ) in refusal("ingest", client_ca=pki.ca)
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    refused = refusal("ingest", cert=pki.cert, key=pki.key, client_ca=not_pem)
    assert f"setting web.tls-client-ca-file: {not_pem} is not a PEM CA bundle" in refused
