"""Who a request acts as: the user behind an API token or a session, cached per process.

Without a cache every authenticated request costs two or three queries (token or session record,
its user, last use) before the view runs: under load that was a third of the API's time. Entries
live at most ``ttl`` seconds, the bound key revocation already has (``key-cache-seconds``, at
most 5): a revoked or expired token, an ended session, a disabled user or a changed password is
refused within ``ttl`` seconds by every worker, and at once by the worker that made the change
(it calls ``forget_user``, ``forget_token`` or ``forget_session``).
Token secrets are still checked against their HMAC on every request; the cache holds no plaintext.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tenants import websessions
from tenants.crypto import TOKEN_PREFIX, CredentialHasher, split_credential
from tenants.db import transaction
from tenants.errors import Unauthenticated
from tenants.keys import store_rehash
from tenants.models import ApiToken, User, utcnow
from tenants.ttlcache import TtlCache

LAST_USE_RESOLUTION = 60.0  # seconds: a token's last use is written at most this often


@dataclass(frozen=True)
class _Token:
    pk: int
    secret_hash: str
    revoked: bool
    expires_at: datetime | None
    user_id: int
    user: User | None  # detached; None when the token's user is disabled


class PrincipalCache:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        hasher: CredentialHasher,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.hasher = hasher
        self.ttl = ttl
        self._clock = clock
        self._tokens: TtlCache[str, _Token | None] = TtlCache(ttl, clock)
        self._users: TtlCache[int, User | None] = TtlCache(ttl, clock)
        self._sessions: TtlCache[str, tuple[int, datetime] | None] = TtlCache(ttl, clock)
        self._last_use_written: dict[int, float] = {}

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = self._tokens.clock = self._users.clock = self._sessions.clock = clock

    def user_for_token(self, db: Session, credential: str) -> User:
        """The active user behind a bearer token, attached to ``db``; raises Unauthenticated."""
        parts = split_credential(credential)
        if parts is None or parts[0] != TOKEN_PREFIX:
            raise Unauthenticated("missing or malformed API token")
        _, token_id, secret = parts
        token = self._tokens.get(token_id, self._load_token)
        match = None if token is None else self.hasher.match(secret, token.secret_hash)
        if token is None or match is None:
            raise Unauthenticated("invalid API token")
        if token.revoked or (token.expires_at is not None and token.expires_at <= utcnow()):
            raise Unauthenticated("this API token is revoked or expired")
        if token.user is None:
            raise Unauthenticated("this API token's user is disabled")
        if match.rehash is not None:
            store_rehash(self.sessions, ApiToken, token.pk, token.secret_hash, match.rehash)
            self.forget_token(token_id)
        self._note_use(token.pk)
        return db.merge(token.user, load=False)

    def user_for_session(
        self, db: Session, user_id: int, password_stamp: str | None, session_id: str | None
    ) -> User | None:
        """The session's user attached to ``db``, or None if the session was ended (logged
        out) or expired, or its user is disabled, gone or re-passworded."""
        if not session_id:
            return None
        record = self._sessions.get(websessions.id_hash(session_id), self._load_session)
        if record is None or record[0] != user_id or record[1] <= utcnow():
            return None
        user = self._users.get(user_id, self._load_user)
        if user is None or password_stamp != user.password_changed_at.isoformat():
            return None
        return db.merge(user, load=False)

    def forget_user(self, user_id: int) -> None:
        """Drop what this process knows of a user (after a password change, say)."""
        self._users.discard_if(lambda key, _: key == user_id)
        self._sessions.discard_if(lambda _, record: record is not None and record[0] == user_id)
        self._tokens.discard_if(lambda _, token: token is not None and token.user_id == user_id)

    def forget_session(self, session_id: str) -> None:
        """Drop what this process knows of one session (after logging out)."""
        hashed = websessions.id_hash(session_id)
        self._sessions.discard_if(lambda key, _: key == hashed)

    def forget_token(self, token_id: str) -> None:
        """Drop what this process knows of one token (after revoking it)."""
        self._tokens.discard_if(lambda key, _: key == token_id)

    def _load_token(self, token_id: str) -> _Token | None:
        with transaction(self.sessions) as db:
            row = db.execute(
                select(ApiToken, User)
                .join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_id == token_id)
            ).first()
            if row is None:
                return None
            token, user = row
            return _Token(
                token.id,
                token.secret_hash,
                token.revoked_at is not None,
                token.expires_at,
                user.id,
                user if user.is_active else None,
            )

    def _load_session(self, session_id_hash: str) -> tuple[int, datetime] | None:
        with transaction(self.sessions) as db:
            return websessions.owner(db, session_id_hash)

    def _load_user(self, user_id: int) -> User | None:
        with transaction(self.sessions) as db:
            user = db.get(User, user_id)
            return user if user is not None and user.is_active else None

    def _note_use(self, token_pk: int) -> None:
        """Record a token's last use, to the minute, without a write on every request."""
        now = self._clock()
        last = self._last_use_written.get(token_pk)
        if last is not None and now - last < LAST_USE_RESOLUTION:
            return
        self._last_use_written[token_pk] = now
        with transaction(self.sessions) as db:
            db.execute(
                update(ApiToken).where(ApiToken.id == token_pk).values(last_used_at=utcnow())
            )
