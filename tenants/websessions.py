"""Signed-in browser sessions, recorded server-side.

The session cookie is signed, so nobody can forge one; but a signed cookie alone stays valid
until it expires, whatever happens to the browser that held it: logging out would only clear
that browser's copy. Each login therefore records a random session id (its SHA-256 only, like
every other credential here), the cookie carries the id, and a request is signed in only while
the record exists. Logging out deletes it; a password change deletes all of the user's records.
Expired records are removed at each login.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tenants.models import User, WebSession, utcnow

ID_BYTES = 32


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(db: Session, user: User, lifetime: timedelta) -> str:
    """A new session for ``user``; its id, for the cookie. Commits."""
    now = utcnow()
    db.execute(delete(WebSession).where(WebSession.expires_at <= now))
    session_id = secrets.token_urlsafe(ID_BYTES)
    db.add(WebSession(id_hash=id_hash(session_id), user_id=user.id, created_at=now,
                      expires_at=now + lifetime))  # fmt: skip
    db.commit()
    return session_id


def end(db: Session, session_id: str) -> None:
    """End one session (logging out). Commits."""
    db.execute(delete(WebSession).where(WebSession.id_hash == id_hash(session_id)))
    db.commit()


def end_all(db: Session, user_id: int) -> None:
    """End every session of a user (a password change, a disabled account); the caller commits,
    with that change."""
    db.execute(delete(WebSession).where(WebSession.user_id == user_id))


def owner(db: Session, session_id_hash: str) -> tuple[int, datetime] | None:
    """The user id and expiry of a live session record, by the hash of its id."""
    row = db.execute(
        select(WebSession.user_id, WebSession.expires_at).where(
            WebSession.id_hash == session_id_hash
        )
    ).first()
    return None if row is None else (row[0], row[1])
