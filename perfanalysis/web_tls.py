"""HTTPS served by gunicorn itself for admin and ingest: two settings, their check, the options.

Both components can also sit behind a TLS-terminating proxy (docs/operations.md, TLS); these
settings are for when nothing is in front of them, e.g. exporters on other machines pushing
straight to ingest. The certificate and key are loaded once at start-up as a check, so a wrong
pair, an encrypted key or a certificate that is not PEM stops the start with a message that
names the settings; gunicorn loads them again in each worker.
"""

from __future__ import annotations

import ssl
from typing import Any

from perfanalysis.config import Setting, readable_file

CERT, KEY = "web.tls-cert-file", "web.tls-key-file"


def settings() -> list[Setting]:
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
    ]


def problems(values: dict[str, Any]) -> list[str]:
    cert, key = values["web_tls_cert_file"], values["web_tls_key_file"]
    if cert and not key:
        return [f"setting {CERT}: needs {KEY} as well"]
    if key and not cert:
        return [f"setting {KEY}: given without {CERT}"]
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key, password=_no_passphrase)
        except (ssl.SSLError, OSError, ValueError) as exc:
            return [
                f"settings {CERT} and {KEY}: {cert} and {key} are not a PEM certificate and its "
                f"unencrypted private key ({exc})"
            ]
    return []


def gunicorn_options(values: dict[str, Any]) -> dict[str, str]:
    cert = values["web_tls_cert_file"]
    return {"certfile": cert, "keyfile": values["web_tls_key_file"]} if cert else {}


def _no_passphrase() -> str:
    """Without this, OpenSSL would ask for an encrypted key's passphrase on the terminal."""
    raise ValueError("the key is encrypted; gunicorn cannot ask for its passphrase")
