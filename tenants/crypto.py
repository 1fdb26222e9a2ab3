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
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_PREFIX = "pak"  # collector keys: "PerfAnalysis key"
TOKEN_PREFIX = "pat"  # noqa: S105 (a prefix, not a secret): user tokens for the API: "PerfAnalysis token"
ID_BYTES = 8
SECRET_BYTES = 32
CREDENTIAL = re.compile(r"^(pak|pat)_([a-z2-7]{13})_([A-Za-z0-9_-]{43})$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
# Passwords of at least MIN_PASSWORD_LENGTH characters that lead the published lists of the most
# used (and so first guessed) ones; compared case-insensitively. Short on purpose: it stops the
# obvious choices, not a determined guesser.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012", "1234567890123", "12345678901234", "123456789abc", "123123123123",
        "123456123456", "1234567890qwerty", "abc123456789", "abcd12345678", "abcdefghijkl",
        "1q2w3e4r5t6y", "1qaz2wsx3edc", "qazwsxedcrfv", "zaq12wsxcde3", "qwertyuiopas",
        "qwertyuiop12", "qwertyuiop123", "qwerty123456", "123456qwerty", "asdfghjkl123",
        "qwertyuiopasdfghjkl", "qwertyuiopasdfghjklzxcvbnm", "password1234", "password12345",
        "password123456", "password123!", "passwordpassword", "password@123", "p@ssw0rd1234",
        "administrator", "administrator1", "iloveyou1234", "letmein12345", "welcome12345",
        "welcome123456", "changeme1234", "trustno1trustno1", "football1234", "baseball1234",
        "sunshine1234", "superman1234", "princess1234", "monkey123456", "dragon123456",
    }
)  # fmt: skip

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, or None: the one rule for every path that sets one
    (create-user, the API, the account page); the demo admin's generated password passes it."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    if password.isspace():
        return "password must not be only white space"
    if len(set(password)) == 1:
        return "password must not be one character repeated"
    if password.casefold() in COMMON_PASSWORDS:
        return "password is one of the most common passwords: choose another"
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
    """HMACs of key and token secrets under the current server secret.

    ``previous_keys`` are earlier server secrets, accepted while a rotation is under way: a
    secret that matches under one of them is reported with its digest under the current one,
    so that the caller can store that instead (``match().rehash``).
    """

    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        self._key = derive(secret_key, "api credentials")
        self._previous = [derive(key, "api credentials") for key in previous_keys]

    def digest(self, secret: str) -> str:
        return _hmac_hex(self._key, secret)

    def issue(self, prefix: str) -> NewCredential:
        public_id = base64.b32encode(secrets.token_bytes(ID_BYTES)).decode().rstrip("=").lower()
        secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
        return NewCredential(public_id, self.digest(secret), f"{prefix}_{public_id}_{secret}")

    def match(self, secret: str, secret_hash: str) -> Match | None:
        """None unless ``secret_hash`` is the secret's HMAC under the current or a previous key."""
        current = self.digest(secret)
        if hmac.compare_digest(current, secret_hash):
            return Match(None)
        for key in self._previous:
            if hmac.compare_digest(_hmac_hex(key, secret), secret_hash):
                return Match(current)
        return None

    def matches(self, secret: str, secret_hash: str) -> bool:
        return self.match(secret, secret_hash) is not None


@dataclass(frozen=True)
class Match:
    rehash: str | None  # the digest under the current key, when a previous key matched


def _hmac_hex(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def split_credential(text: str) -> tuple[str, str, str] | None:
    """(prefix, public id, secret) of a well-formed key or token, else None."""
    match = CREDENTIAL.match(text.strip())
    return (match.group(1), match.group(2), match.group(3)) if match else None


class Vault:
    """Encrypts credentials the platform must read back (a tenant's InfluxDB read password).

    Encrypts under the current server secret; decrypts under it or any of ``previous_keys``.
    """

    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        self._fernet = MultiFernet(
            [_fernet(key, "stored credentials") for key in (secret_key, *previous_keys)]
        )

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("stored credential cannot be decrypted with this secret key") from None

    def reencrypt(self, token: str) -> str:
        """The same plaintext encrypted under the current key (after a secret rotation)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise ValueError("stored credential cannot be decrypted with this secret key") from None


def _fernet(secret_key: str, purpose: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derive(secret_key, purpose)))
