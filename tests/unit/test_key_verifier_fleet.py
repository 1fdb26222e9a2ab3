"""KeyVerifier at fleet scale: usage written in bulk by a background thread, never by a request;
accepted keys kept in a least-recently-used cache, revalidated in bulk so that they outlive a
push interval while a change is still felt within key-cache-seconds; refused key ids cached
apart, so that a flood of them costs one query per id per window and evicts no valid key.

Statements are counted with a SQLAlchemy event listener, not timed."""

from __future__ import annotations

import gc
import logging
import os
import random
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from perfanalysis.testing.servers import wait_until
from tenants import db as database
from tenants import keys
from tenants.crypto import CredentialHasher
from tenants.errors import Forbidden, Unauthenticated
from tenants.keys import KeyVerifier, _KeyCache
from tenants.models import HOST_TAG_FREE, ApiKey, Collector, Tenant, utcnow
from tenants.ttlcache import TtlCache
from tests.support.keyfleet import FleetKey, counting, make_fleet

PER_KEY = "api_keys.key_id ="  # a lookup of one key, on a request
IN_BULK = " IN ("  # the revalidation's


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def acme(app: Flask, make_tenant: Any) -> Tenant:
    tenant: Tenant = make_tenant("acme")
    return tenant


@pytest.fixture
def engine(app: Flask) -> Engine:
    result: Engine = app.extensions["pa_engine"]
    return result


@pytest.fixture
def sessions(app: Flask) -> sessionmaker[Session]:
    result: sessionmaker[Session] = app.extensions["pa_sessions"]
    return result


@pytest.fixture
def hasher(app: Flask) -> CredentialHasher:
    result: CredentialHasher = app.extensions["pa_hasher"]
    return result


@pytest.fixture
def fleet(app: Flask, acme: Tenant, hasher: CredentialHasher) -> Callable[[int], list[FleetKey]]:
    def make(size: int) -> list[FleetKey]:
        with app.app_context():
            return make_fleet(database.session(), hasher, acme, size)

    return make


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(
    sessions: sessionmaker[Session], hasher: CredentialHasher, clock: Clock
) -> KeyVerifier:
    verifier = KeyVerifier(sessions, hasher, ttl=2.0, flush_interval=5.0, clock=clock)
    assert not verifier.background  # a clock of its own: refresh and flush only when called
    return verifier


def stored_usage(sessions: sessionmaker[Session]) -> dict[int, tuple[int, Any, Any]]:
    """collector id -> (points received, last seen, its key's last use)."""
    with sessions() as db:
        rows = db.execute(
            select(Collector.id, Collector.points_received, Collector.last_seen_at,
                   ApiKey.last_used_at).join(ApiKey, ApiKey.collector_id == Collector.id)
        )  # fmt: skip
        return {collector: (points, seen, used) for collector, points, seen, used in rows}


# ---- usage write-back -------------------------------------------------------------------------


def test_a_request_never_writes_usage_however_long_since_the_last_flush(
    verifier: KeyVerifier, fleet: Callable[[int], list[FleetKey]], engine: Engine, clock: Clock
) -> None:
    keys_ = fleet(3)
    with counting(engine) as statements:
        for key in keys_:
            verifier.record_use(key.identity, 10)
        clock.now += 3600
        for key in keys_:
            verifier.record_use(key.identity, 5)
    assert statements.seen == []
    verifier.run_due()  # the background thread's round
    assert [points for points, _, _ in stored_usage(verifier.sessions).values()] == [15, 15, 15]


def test_a_fleets_usage_is_written_in_a_few_sorted_bulk_statements(
    verifier: KeyVerifier,
    fleet: Callable[[int], list[FleetKey]],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys_ = fleet(2_500)
    shuffled = keys_[:]
    random.Random(7).shuffle(shuffled)
    for key in shuffled:
        verifier.record_use(key.identity, key.identity.collector_id % 100 + 1)
    written: list[list[int]] = []
    write = verifier._write
    monkeypatch.setattr(verifier, "_write", lambda statement, rows: (
        written.append([row["pk"] for row in rows]), write(statement, rows)
    ))  # fmt: skip
    write_keys = verifier._written
    monkeypatch.setattr(verifier, "_written", lambda pks, used, before: (
        written.append(list(pks)), write_keys(pks, used, before)
    )[1])  # fmt: skip
    before = utcnow()
    with counting(engine) as statements:
        verifier.flush()
    assert statements.count("UPDATE", "collectors") == 3  # 2,500 rows, 1,000 a statement
    assert statements.count("WITH", "UPDATE api_keys") == 3
    assert len(statements.seen) == 6  # nothing else: 20,490 statements for 10,245 keys before
    collectors = sorted(key.identity.collector_id for key in keys_)
    key_pks = sorted(key.identity.key_pk for key in keys_)
    assert [pk for rows in written[:3] for pk in rows] == collectors  # in id order
    assert [pk for rows in written[3:] for pk in rows] == key_pks
    usage = stored_usage(verifier.sessions)
    for key in keys_:
        points, seen, used = usage[key.identity.collector_id]
        assert points == key.identity.collector_id % 100 + 1
        assert seen >= before
        assert used >= before


def test_a_keys_last_use_is_written_at_most_once_a_minute_whichever_worker_flushes(
    verifier: KeyVerifier,
    fleet: Callable[[int], list[FleetKey]],
    sessions: sessionmaker[Session],
    hasher: CredentialHasher,
    engine: Engine,
    clock: Clock,
) -> None:
    (key,) = fleet(1)
    other_worker = KeyVerifier(sessions, hasher, ttl=2.0, clock=clock)

    def last_used() -> Any:
        return stored_usage(sessions)[key.identity.collector_id][2]

    verifier.record_use(key.identity, 1)
    verifier.flush()
    first = last_used()
    assert first is not None
    other_worker.record_use(key.identity, 1)
    other_worker.flush()  # within the minute: its statement changes nothing
    assert last_used() == first
    clock.now += 59
    verifier.record_use(key.identity, 1)
    with counting(engine) as statements:
        verifier.flush()
    assert (
        statements.count("WITH", "UPDATE api_keys") == 0
    )  # this worker wrote it under a minute ago
    assert statements.count("UPDATE", "collectors") == 1  # points and last seen: every flush
    assert stored_usage(sessions)[key.identity.collector_id][0] == 3
    with sessions.begin() as db:  # a minute on: the stored last use is older
        db.execute(update(ApiKey).values(last_used_at=first - timedelta(seconds=61)))
    clock.now += 1
    verifier.record_use(key.identity, 1)
    verifier.flush()
    assert last_used() >= first


def test_a_failed_statement_keeps_its_usage_for_the_next_flush(
    verifier: KeyVerifier,
    fleet: Callable[[int], list[FleetKey]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys_ = fleet(1_500)
    for key in keys_:
        verifier.record_use(key.identity, 2)
    write = verifier._write
    calls = [0]

    def second_fails(statement: Any, rows: list[dict[str, Any]]) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("the admin database went away")
        write(statement, rows)

    monkeypatch.setattr(verifier, "_write", second_fails)
    with caplog.at_level(logging.ERROR, "tenants.keys"):
        verifier.flush()
    assert "could not record key usage (500 collectors, 1500 keys); kept" in caplog.text
    usage = stored_usage(verifier.sessions)
    assert sorted(points for points, _, _ in usage.values()) == [0] * 500 + [2] * 1000
    verifier.record_use(keys_[-1].identity, 3)
    monkeypatch.setattr(verifier, "_write", write)
    verifier.flush()
    usage = stored_usage(verifier.sessions)
    assert sum(points for points, _, _ in usage.values()) == 1_500 * 2 + 3  # none lost, none twice
    assert all(used is not None for _, _, used in usage.values())


def test_pending_usage_is_bounded_and_what_it_could_not_hold_is_reported(
    verifier: KeyVerifier,
    fleet: Callable[[int], list[FleetKey]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(keys, "MAX_PENDING", 2)
    first, second, third = fleet(3)
    for key in (first, second, third, first):
        verifier.record_use(key.identity, 10)
    with caplog.at_level(logging.WARNING, "tenants.keys"):
        verifier.flush()
    assert "10 accepted points were not counted" in caplog.text
    usage = stored_usage(verifier.sessions)
    assert [usage[key.identity.collector_id][0] for key in (first, second, third)] == [20, 10, 0]


# ---- the cache ----------------------------------------------------------------------------------


def test_a_full_ttl_cache_drops_its_least_recently_used_entry_not_all() -> None:
    clock = Clock()
    cache: TtlCache[str, str] = TtlCache(2.0, clock, max_entries=3)
    loads: list[str] = []

    def load(key: str) -> str:
        loads.append(key)
        return key.upper()

    for key in "abca":
        cache.get(key, load)
    cache.get("d", load)  # full: b, used least recently, goes
    for key in "acd":
        assert cache.get(key, load) == key.upper()
    assert loads == ["a", "b", "c", "d"]
    cache.get("b", load)
    assert loads[-1] == "b"
    clock.now += 2.0
    cache.get("a", load)
    assert loads[-1] == "a"  # and an entry lives ttl seconds at most


def test_accepted_keys_past_the_bound_push_out_the_least_recently_used_only(
    verifier: KeyVerifier, fleet: Callable[[int], list[FleetKey]], engine: Engine
) -> None:
    verifier._cache = _KeyCache(verifier.ttl, max_keys=3)
    k0, k1, k2, k3 = fleet(4)
    for key in (k0, k1, k2, k0, k3):  # k1 is the least recently used when k3 comes
        verifier.verify(key.plaintext)
    with counting(engine) as statements:
        for key in (k0, k2, k3):
            verifier.verify(key.plaintext)
        assert statements.count("SELECT") == 0
        verifier.verify(k1.plaintext)
        assert statements.count("SELECT", PER_KEY) == 1


def made_up_id(number: int) -> str:
    """A well-formed key id (13 base32 characters) that no key has."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    digits = []
    for _ in range(13):
        number, digit = divmod(number, 32)
        digits.append(alphabet[digit])
    return "".join(digits)


def test_a_flood_of_unknown_key_ids_costs_one_query_each_per_window_and_evicts_no_valid_key(
    verifier: KeyVerifier, fleet: Callable[[int], list[FleetKey]], engine: Engine, clock: Clock
) -> None:
    verifier._cache = _KeyCache(verifier.ttl, max_keys=50, max_refused=100)
    valid = fleet(50)
    for key in valid:
        verifier.verify(key.plaintext)
    made_up = [f"pak_{made_up_id(n)}_{'s' * 43}" for n in range(300)]  # 3 x the refused bound
    with counting(engine) as statements:
        for credential in made_up:
            with pytest.raises(Unauthenticated, match="invalid collector key"):
                verifier.verify(credential)
        assert statements.count("SELECT", PER_KEY) == 300
        statements.clear()
        for key in valid:
            verifier.verify(key.plaintext)  # not one pushed out
        for _ in range(5):  # the flood again, within the window: the ids it still holds
            for credential in made_up[-100:]:
                with pytest.raises(Unauthenticated):
                    verifier.verify(credential)
        assert statements.seen == []
        clock.now += verifier.ttl
        verifier.refresh()  # the valid keys: one bulk query
        for credential in made_up[-100:]:
            with pytest.raises(Unauthenticated):
                verifier.verify(credential)
        assert statements.count("SELECT", PER_KEY) == 100  # the next window: once again each
        assert statements.count("SELECT", IN_BULK) == 1


def test_a_revoked_key_is_refused_from_the_refused_cache_within_the_window(
    verifier: KeyVerifier, fleet: Callable[[int], list[FleetKey]], engine: Engine
) -> None:
    (key,) = fleet(1)
    with verifier.sessions.begin() as db:
        db.execute(update(ApiKey).values(revoked_at=utcnow()))
    with counting(engine) as statements:
        for _ in range(10):
            with pytest.raises(Unauthenticated, match="revoked"):
                verifier.verify(key.plaintext)
    assert statements.count("SELECT") == 1
    assert len(verifier._cache) == 0  # it takes no accepted key's place


# ---- revalidation -------------------------------------------------------------------------------


def test_a_fleet_pushing_every_15_s_is_served_without_a_query_per_push(
    verifier: KeyVerifier, fleet: Callable[[int], list[FleetKey]], engine: Engine, clock: Clock
) -> None:
    keys_ = fleet(1_500)
    for key in keys_:
        verifier.verify(key.plaintext)
    with counting(engine) as statements:
        for second in range(1, 61):
            clock.now += 1.0
            verifier.run_due()  # what the background thread does, every ttl / 2
            if second % 15 == 0:
                for key in keys_:
                    verifier.verify(key.plaintext)
    assert statements.count("SELECT", PER_KEY) == 0  # 6,000 lookups before
    assert statements.count("SELECT", IN_BULK) == 2 * 60  # 1,500 keys: two queries a round
    assert all(len(rows[0]) <= keys.BULK_ROWS for _, rows in statements.matching("SELECT"))


def test_without_a_revalidation_a_key_read_ttl_seconds_ago_is_looked_up_again(
    verifier: KeyVerifier, fleet: Callable[[int], list[FleetKey]], engine: Engine, clock: Clock
) -> None:
    (key,) = fleet(1)
    verifier.verify(key.plaintext)
    with counting(engine) as statements:
        clock.now += 1.9
        verifier.verify(key.plaintext)
        assert statements.seen == []
        clock.now += 0.1
        verifier.verify(key.plaintext)  # the refresh fell behind: the request looks it up
        assert statements.count("SELECT", PER_KEY) == 1


def _revoke(db: Session, key: FleetKey) -> None:
    db.execute(update(ApiKey).values(revoked_at=utcnow()))


def _expire(db: Session, key: FleetKey) -> None:
    db.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))


def _disable_collector(db: Session, key: FleetKey) -> None:
    db.execute(update(Collector).values(status="disabled"))


def _disable_tenant(db: Session, key: FleetKey) -> None:
    db.execute(update(Tenant).values(status="disabled"))


def _free_the_host_tag(db: Session, key: FleetKey) -> None:
    db.execute(update(Collector).values(host_tag=HOST_TAG_FREE))


def _rename_the_host(db: Session, key: FleetKey) -> None:
    db.execute(update(Collector).values(hostname="moved.x"))


def _change_the_secret(db: Session, key: FleetKey) -> None:
    db.execute(update(ApiKey).values(secret_hash="0" * 64))


def _delete_the_key(db: Session, key: FleetKey) -> None:
    db.execute(delete(ApiKey))


def _refused(error: type[Exception], message: str) -> Callable[[KeyVerifier, FleetKey], None]:
    def check(verifier: KeyVerifier, key: FleetKey) -> None:
        with pytest.raises(error, match=message):
            verifier.verify(key.plaintext)

    return check


def _pinned_to(host: str | None) -> Callable[[KeyVerifier, FleetKey], None]:
    def check(verifier: KeyVerifier, key: FleetKey) -> None:
        assert verifier.verify(key.plaintext).pinned_host == host

    return check


CHANGES = {
    "revoked": (_revoke, _refused(Unauthenticated, "revoked")),
    "expired": (_expire, _refused(Unauthenticated, "expired")),
    "collector disabled": (_disable_collector, _refused(Forbidden, "collector is disabled")),
    "tenant disabled": (_disable_tenant, _refused(Forbidden, "tenant is disabled")),
    "host tag freed": (_free_the_host_tag, _pinned_to(None)),
    "hostname changed": (_rename_the_host, _pinned_to("moved.x")),
    "secret changed": (_change_the_secret, _refused(Unauthenticated, "invalid collector key")),
    "key deleted": (_delete_the_key, _refused(Unauthenticated, "invalid collector key")),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_is_felt_within_the_ttl_with_or_without_a_revalidation(
    verifier: KeyVerifier,
    fleet: Callable[[int], list[FleetKey]],
    sessions: sessionmaker[Session],
    hasher: CredentialHasher,
    clock: Clock,
    change: str,
) -> None:
    (key,) = fleet(1)
    behind = KeyVerifier(sessions, hasher, ttl=2.0, clock=clock)  # its refresh falls behind
    make, felt = CHANGES[change]
    for each in (verifier, behind):
        assert each.verify(key.plaintext).pinned_host == key.identity.pinned_host
    clock.now += 1.0
    verifier.refresh()  # read at 1001: trusted until 1003
    with sessions.begin() as db:
        make(db, key)
    clock.now += 0.5
    assert verifier.verify(key.plaintext) == key.identity  # within the window: still cached
    verifier.refresh()  # the next round reads the change
    felt(verifier, key)
    clock.now += 0.4
    assert behind.verify(key.plaintext) == key.identity  # read at 1000, less than 2 s ago
    clock.now += 0.1
    felt(behind, key)  # 2 s on: looked up again, on the request


def test_a_key_unused_for_ten_minutes_is_no_longer_revalidated(
    verifier: KeyVerifier, fleet: Callable[[int], list[FleetKey]], engine: Engine, clock: Clock
) -> None:
    busy, idle = fleet(2)
    verifier.verify(busy.plaintext)
    verifier.verify(idle.plaintext)
    for second in range(1, int(keys.IDLE_AFTER) + 2):
        clock.now += 1.0
        if second % 15 == 0:
            verifier.verify(busy.plaintext)
    with counting(engine) as statements:
        verifier.refresh()
    ((_, rows),) = statements.matching("SELECT", IN_BULK)
    assert len(rows[0]) == 1  # the busy key's id alone
    assert len(verifier._cache) == 1
    with counting(engine) as statements:
        verifier.verify(idle.plaintext)  # used again: looked up
    assert statements.count("SELECT", PER_KEY) == 1


def test_a_key_looked_up_during_a_revalidation_keeps_the_fresher_read(
    verifier: KeyVerifier, fleet: Callable[[int], list[FleetKey]], clock: Clock
) -> None:
    """A refresh's rows, read before a request's own lookup, do not overwrite it."""
    (key,) = fleet(1)
    verifier.verify(key.plaintext)
    in_use = verifier._cache.in_use(clock.now, keys.IDLE_AFTER)
    with verifier.sessions() as db:
        stale = {row[0]: tuple(row) for row in db.execute(keys._KEY_STATE)}
    with verifier.sessions.begin() as db:
        _free_the_host_tag(db, key)
    clock.now += 2.0
    assert verifier.verify(key.plaintext).pinned_host is None  # looked up: read at 1002
    verifier._cache.revalidated(in_use, stale, 1000.5)  # a refresh that began at 1000.5
    assert verifier.verify(key.plaintext).pinned_host is None


# ---- the background thread ----------------------------------------------------------------------


def test_the_background_thread_writes_usage_and_feels_a_revocation(
    app: Flask, fleet: Callable[[int], list[FleetKey]], sessions: sessionmaker[Session],
    hasher: CredentialHasher,
) -> None:  # fmt: skip
    (key,) = fleet(1)
    verifier = KeyVerifier(sessions, hasher, ttl=0.2, flush_interval=0.1)
    assert verifier.background
    verifier.verify(key.plaintext)
    verifier.record_use(key.identity, 5)
    wait_until(lambda: stored_usage(sessions)[key.identity.collector_id][0] == 5, timeout=10,
               what="the thread to write the usage")  # fmt: skip
    with sessions.begin() as db:
        _revoke(db, key)

    def refused() -> bool:
        try:
            verifier.verify(key.plaintext)
        except Unauthenticated:
            return True
        return False

    wait_until(refused, timeout=10, what="the revocation to be felt")
    verifier.record_use(key.identity, 2)
    thread = verifier._thread
    assert thread is not None
    verifier.close()  # worker exit: the thread stops, what is pending is written
    assert not thread.is_alive()
    assert stored_usage(sessions)[key.identity.collector_id][0] == 7


def test_the_background_thread_ends_with_its_verifier(
    fleet: Callable[[int], list[FleetKey]], sessions: sessionmaker[Session],
    hasher: CredentialHasher,
) -> None:  # fmt: skip
    (key,) = fleet(1)
    verifier = KeyVerifier(sessions, hasher, ttl=0.2, flush_interval=0.1)
    verifier.verify(key.plaintext)
    thread = verifier._thread
    assert thread is not None
    assert thread.is_alive()
    del verifier
    gc.collect()
    wait_until(lambda: not thread.is_alive(), timeout=10, what="the thread to end")


def test_a_forked_worker_starts_its_own_thread_and_leaves_the_parents_usage_to_it(
    app: Flask, fleet: Callable[[int], list[FleetKey]], sessions: sessionmaker[Session],
    hasher: CredentialHasher,
) -> None:  # fmt: skip
    """gunicorn forks its workers: the child has none of the parent's threads, may find a lock
    held by one of them, and must not write the usage its parent will."""
    (key,) = fleet(1)
    verifier = KeyVerifier(sessions, hasher, ttl=0.2, flush_interval=0.1)
    verifier.verify(key.plaintext)  # the parent's thread runs
    verifier.flush_interval = 3600.0  # the parent's 7 points wait for its own flush
    verifier.record_use(key.identity, 7)
    with warnings.catch_warnings(), verifier._usage_lock:  # held by the parent as it forks
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, Python 3.12+
        pid = os.fork()
    if pid == 0:
        code = 3
        try:
            app.extensions["pa_engine"].dispose(close=False)  # the parent's connections stay its
            if not verifier._usage_lock.acquire(timeout=2):
                os._exit(1)
            verifier._usage_lock.release()
            verifier.flush_interval = 0.1
            verifier.record_use(key.identity, 5)
            wait_until(lambda: stored_usage(sessions)[key.identity.collector_id][0] == 5,
                       timeout=10, what="the child's thread to write its usage")  # fmt: skip
            code = 0
        except TimeoutError:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "1: a lock held for good; 2: no flush"
    verifier.close()
    assert stored_usage(sessions)[key.identity.collector_id][0] == 12  # 5 + 7, each once


def test_the_thread_is_not_started_by_a_verifier_that_caches_nothing(
    fleet: Callable[[int], list[FleetKey]], sessions: sessionmaker[Session],
    hasher: CredentialHasher,
) -> None:  # fmt: skip
    (key,) = fleet(1)
    verifier = KeyVerifier(sessions, hasher, ttl=0)
    verifier.verify(key.plaintext)
    assert verifier._thread is None
    verifier.record_use(key.identity, 1)  # usage still needs writing
    assert verifier._thread is not None
    verifier.close()
    with sessions() as db:
        assert db.scalar(select(func.sum(Collector.points_received))) == 1


def test_a_key_another_worker_wrote_is_tried_again_so_its_last_use_lags_a_minute_at_most(
    fleet: Callable[[int], list[FleetKey]],
    sessions: sessionmaker[Session],
    hasher: CredentialHasher,
    clock: Clock,
) -> None:
    """Before, a worker whose write another worker's had made unnecessary took the key for
    written and dropped its uses for a minute more: the stored last use lagged up to two. It is
    tried again with the time of its use, not a later flush's, which would run ahead of it."""
    (key,) = fleet(1)
    worker_a = KeyVerifier(sessions, hasher, ttl=2.0, clock=clock)
    worker_b = KeyVerifier(sessions, hasher, ttl=2.0, clock=clock)
    worker_a.record_use(key.identity, 1)
    worker_a.flush()
    worker_b.record_use(key.identity, 1)
    attempted = utcnow()
    worker_b.flush()  # A wrote it under a minute ago: nothing written, the use kept
    [(pk, at)] = worker_b._retry.items()
    assert pk == key.identity.key_pk
    assert attempted <= at <= utcnow()
    with sessions.begin() as db:  # A's write is now a minute old
        db.execute(update(ApiKey).values(last_used_at=utcnow() - timedelta(seconds=61)))
    worker_b.flush()  # B's kept use is written now, though B saw no use since, with its time
    assert stored_usage(sessions)[key.identity.collector_id][2] == at
    assert worker_b._retry == {}
