"""HTTPS served by gunicorn itself for admin and ingest: the settings, their check, the options.

Both components can also sit behind a TLS-terminating proxy (docs/operations.md, TLS); these
settings are for when nothing is in front of them, e.g. exporters on other machines pushing
straight to ingest. The certificate and key are loaded once at start-up as a check, so a wrong
pair, an encrypted key or a certificate that is not PEM stops the start with a message that
names the settings; gunicorn loads them again in each worker. Ingest can require client
certificates as well (mutual TLS): exporters present theirs with --push.tls-cert-file.
"""

from __future__ import annotations

import ssl
from typing import Any

from perfanalysis.config import Setting, readable_file
from perfanalysis.tlskey import refuse_passphrase

CERT, KEY, CLIENT_CA = "web.tls-cert-file", "web.tls-key-file", "web.tls-client-ca-file"


def settings(client_ca: bool = False) -> list[Setting]:
    """The settings; with ``client_ca`` (ingest, whose clients are machines), the CA bundle
    that clients' certificates must be signed by too (mutual TLS)."""
    return [
        Setting(
            CERT,
            "PEM certificate (with its chain) to serve HTTPS with, with web.tls-key-file; plain "
            "HTTP when unset (then terminate TLS in front: docs/operations.md, TLS).",
            None,
            readable_file,
            metavar="FILE",
        ),
        Setting(
            KEY,
            "PEM private key of web.tls-cert-file, unencrypted.",
            None,
            readable_file,
            metavar="FILE",
        ),
    ] + (
        [
            Setting(
                CLIENT_CA,
                "PEM bundle of the CAs whose client certificates are required (mutual TLS): a "
                "client without one cannot connect at all, whatever key it holds. Needs "
                "web.tls-cert-file; unset, no client certificate is asked for.",
                None,
                readable_file,
                metavar="FILE",
            )
        ]
        if client_ca
        else []
    )


def problems(values: dict[str, Any]) -> list[str]:
    cert, key = values["web_tls_cert_file"], values["web_tls_key_file"]
    if cert and not key:
        return [f"setting {CERT}: needs {KEY} as well"]
    if key and not cert:
        return [f"setting {KEY}: given without {CERT}"]
    client_ca = values.get("web_tls_client_ca_file")
    if client_ca and not cert:
        return [f"setting {CLIENT_CA}: needs {CERT} and {KEY}: client certificates need HTTPS"]
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key, password=refuse_passphrase)
        except (ssl.SSLError, OSError, ValueError) as exc:
            return [
                f"settings {CERT} and {KEY}: {cert} and {key} are not a PEM certificate and its "
                f"unencrypted private key ({exc})"
            ]
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (ssl.SSLError, OSError, ValueError) as exc:
            return [f"setting {CLIENT_CA}: {client_ca} is not a PEM CA bundle ({exc})"]
    return []


def gunicorn_options(values: dict[str, Any]) -> dict[str, Any]:
    cert = values["web_tls_cert_file"]
    if not cert:
        return {}
    options: dict[str, Any] = {"certfile": cert, "keyfile": values["web_tls_key_file"]}
    client_ca = values.get("web_tls_client_ca_file")
    if client_ca:
        options.update(ca_certs=client_ca, cert_reqs=ssl.CERT_REQUIRED)
    return options
