"""Key usage flushed by several ingest workers at once, on PostgreSQL: each flush updates the
collectors in id order and locks its keys in id order before it writes their last use (an
UPDATE ... WHERE id IN (...) alone locks in its plan's order, a bitmap scan's being the rows'
order on disk), so two flushes of the same keys, counted in opposite orders, cannot deadlock,
and every point is stored by the flush that counted it, none deferred nor lost."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tenants import db as database
from tenants.keys import KeyVerifier
from tenants.models import ApiKey, Collector
from tests.support.keyfleet import make_fleet

pytestmark = pytest.mark.integration

ROUNDS = 5


def test_concurrent_flushes_in_opposite_orders_neither_deadlock_nor_lose_usage(
    app: Flask, make_tenant: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks and deadlocks are PostgreSQL's (set DATABASE_URL)")
    tenant = make_tenant("acme")
    sessions = app.extensions["pa_sessions"]
    hasher = app.extensions["pa_hasher"]
    with app.app_context():
        fleet = make_fleet(database.session(), hasher, tenant, 2_500)
    workers = [KeyVerifier(sessions, hasher, background=False) for _ in range(2)]
    orders = [fleet, fleet[::-1]]
    barrier = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def flush(worker: KeyVerifier) -> None:
        try:
            barrier.wait(timeout=30)
            worker.flush()
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    with caplog.at_level(logging.ERROR, "tenants.keys"):
        for round_ in range(1, ROUNDS + 1):
            for worker, order in zip(workers, orders, strict=True):
                for key in order:
                    worker.record_use(key.identity, 1)
            threads = [threading.Thread(target=flush, args=(w,)) for w in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
                assert not thread.is_alive(), "a flush still waits: deadlocked?"
            assert failures == []
            assert "could not record key usage" not in caplog.text  # e.g. deadlock detected
            with sessions() as db:
                stored = db.scalar(select(func.sum(Collector.points_received)))
                unused = db.scalar(select(func.count()).where(ApiKey.last_used_at.is_(None)))
            assert stored == round_ * len(fleet) * len(workers)  # nothing left for later
            assert unused == 0
