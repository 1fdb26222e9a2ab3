"""Secrets at rest: password hashing, API key material, and encryption of stored credentials.

* Passwords: argon2id (argon2-cffi's defaults), a slow hash.
* Keys and tokens: ``<prefix>_<id>_<secret>``; the 256-bit secret is stored only as
  HMAC-SHA256 under a key derived from the server secret, found by id, compared in constant time.
  No slow hash is needed: the secret has full entropy.
* InfluxDB read passwords: Fernet (AES-128-CBC + HMAC) under another derived key, because the
  Grafana datasource needs them back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_PREFIX = "pak"  # collector keys: "PerfAnalysis key"
TOKEN_PREFIX = "pat"  # noqa: S105 (a prefix, not a secret): user tokens for the API: "PerfAnalysis token"
ID_BYTES = 8
SECRET_BYTES = 32
CREDENTIAL = re.compile(r"^(pak|pat)_([a-z2-7]{13})_([A-Za-z0-9_-]{43})$")
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > 1024:
        return "password must be at most 1024 characters"
    return None


def derive(secret_key: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the server secret with HKDF-SHA256."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"perfanalysis {purpose}".encode()
    ).derive(secret_key.encode())


@dataclass(frozen=True)
class NewCredential:
    """A freshly issued key or token: ``plaintext`` is shown once and never stored."""

    public_id: str
    secret_hash: str
    plaintext: str


class CredentialHasher:
    def __init__(self, secret_key: str) -> None:
        self._key = derive(secret_key, "api credentials")

    def digest(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()

    def issue(self, prefix: str) -> NewCredential:
        public_id = base64.b32encode(secrets.token_bytes(ID_BYTES)).decode().rstrip("=").lower()
        secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
        return NewCredential(public_id, self.digest(secret), f"{prefix}_{public_id}_{secret}")

    def matches(self, secret: str, secret_hash: str) -> bool:
        return hmac.compare_digest(self.digest(secret), secret_hash)


def split_credential(text: str) -> tuple[str, str, str] | None:
    """(prefix, public id, secret) of a well-formed key or token, else None."""
    match = CREDENTIAL.match(text.strip())
    return (match.group(1), match.group(2), match.group(3)) if match else None


class Vault:
    """Encrypts credentials the platform must read back (a tenant's InfluxDB read password)."""

    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive(secret_key, "stored credentials")))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("stored credential cannot be decrypted with this secret key") from None
