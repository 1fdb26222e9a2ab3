"""A fleet of collectors with one key each, inserted in bulk, and a counter of the SQL
statements an engine runs: what the key verifier's tests measure instead of time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session

from tenants.crypto import KEY_PREFIX, CredentialHasher
from tenants.keys import Identity
from tenants.models import ApiKey, Collector, Tenant


@dataclass(frozen=True)
class FleetKey:
    plaintext: str
    identity: Identity


def make_fleet(
    db: Session, hasher: CredentialHasher, tenant: Tenant, size: int, prefix: str = "host"
) -> list[FleetKey]:
    """``size`` collectors of ``tenant``, each with one key, in id order."""
    db.execute(insert(Collector), [
        {"tenant_id": tenant.id, "name": f"{prefix}-{n:05d}", "hostname": f"{prefix}-{n:05d}.x"}
        for n in range(size)
    ])  # fmt: skip
    collectors = db.execute(
        select(Collector.id, Collector.name, Collector.hostname)
        .where(Collector.tenant_id == tenant.id, Collector.name.startswith(f"{prefix}-"))
        .order_by(Collector.id)
    ).all()
    issued = [hasher.issue(KEY_PREFIX) for _ in collectors]
    db.execute(insert(ApiKey), [
        {"key_id": new.public_id, "secret_hash": new.secret_hash, "tenant_id": tenant.id,
         "collector_id": collector_id}
        for new, (collector_id, _, _) in zip(issued, collectors, strict=True)
    ])  # fmt: skip
    key_pks = {key_id: pk for key_id, pk in db.execute(select(ApiKey.key_id, ApiKey.id))}
    db.commit()
    return [
        FleetKey(new.plaintext, Identity(
            tenant.id, tenant.slug, tenant.influx_database, collector_id, name, new.public_id,
            key_pks[new.public_id], pinned_host=hostname,
        ))
        for new, (collector_id, name, hostname) in zip(issued, collectors, strict=True)
    ]  # fmt: skip


@dataclass
class Statements:
    """The statements run while counting, each with its rows of parameters (an executemany
    counts once, with all its rows)."""

    seen: list[tuple[str, list[Any]]] = field(default_factory=list)

    def matching(self, verb: str, text: str = "") -> list[tuple[str, list[Any]]]:
        """Those whose SQL begins with ``verb`` and holds ``text``."""
        return [
            (sql, rows)
            for sql, rows in self.seen
            if sql.lstrip().upper().startswith(verb.upper()) and text in sql
        ]

    def count(self, verb: str, text: str = "") -> int:
        return len(self.matching(verb, text))

    def clear(self) -> None:
        self.seen.clear()


@contextlib.contextmanager
def counting(engine: Engine) -> Iterator[Statements]:
    statements = Statements()

    def before(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        statements.seen.append((sql, list(params) if many else [params]))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
