"""The pass-phrase callback every ``load_cert_chain`` here passes: private keys are unencrypted.

Without a callback OpenSSL asks for an encrypted key's pass phrase on the terminal, or fails
with EINVAL reading it from /dev/null under systemd; neither server nor client can answer it.
"""

from __future__ import annotations


class EncryptedKeyError(ValueError):
    """The private key file is encrypted."""


def refuse_passphrase() -> str:
    raise EncryptedKeyError("the key is encrypted")
