"""The database login throttle's Retry-After: when the attempt that blocks leaves the window,
not a whole window from now."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from tenants import db as database
from tenants.errors import Throttled
from tenants.models import LoginFailure, utcnow
from tenants.throttle import ADDRESS_FACTOR, DatabaseThrottle, account_digest

WINDOW = 900
MAX_FAILURES = 3
SECRET = b"throttle-test-secret"


def failures_ago(app: Flask, ages: list[int], email: str, ip: str) -> None:
    with app.app_context():
        db = database.session()
        now, counted = utcnow(), account_digest(SECRET, email)
        for age in ages:
            db.add(LoginFailure(email=counted, ip=ip, at=now - timedelta(seconds=age)))
        db.commit()


def refusal(app: Flask, email: str, ip: str) -> Throttled:
    with app.app_context():
        throttle = DatabaseThrottle(database.session(), MAX_FAILURES, WINDOW, SECRET)
        with pytest.raises(Throttled) as refused:
            throttle.reserve(email, ip)
        return refused.value


def test_an_account_is_free_again_when_its_oldest_counted_attempt_expires(app: Flask) -> None:
    failures_ago(app, [800, 500, 10], "ana@acme.test", "10.0.0.1")
    assert 99 <= refusal(app, "ana@acme.test", "10.0.0.2").retry_after <= 101


def test_with_more_attempts_than_the_limit_the_wait_is_for_the_limit_th_newest(app: Flask) -> None:
    failures_ago(app, [880, 870, 600, 300, 20], "ana@acme.test", "10.0.0.1")
    # the three newest (600, 300 and 20 s old) must fall to two: 300 s until the 600 s one goes
    assert 299 <= refusal(app, "ana@acme.test", "10.0.0.3").retry_after <= 301


def test_an_address_waits_for_its_own_limit_th_newest(app: Flask) -> None:
    limit = ADDRESS_FACTOR * MAX_FAILURES
    ages = [850 - 10 * number for number in range(limit)]  # 850, 840, ... for other accounts
    for number, age in enumerate(ages):
        failures_ago(app, [age], f"user{number}@acme.test", "10.0.0.9")
    assert 49 <= refusal(app, "fresh@acme.test", "10.0.0.9").retry_after <= 51


def test_when_both_block_the_longer_wait_is_given(app: Flask) -> None:
    limit = ADDRESS_FACTOR * MAX_FAILURES
    failures_ago(app, [100] * MAX_FAILURES, "ana@acme.test", "10.0.0.5")
    failures_ago(app, [880] * (limit - MAX_FAILURES), "other@acme.test", "10.0.0.5")
    # the address is free in 20 s, the account in 800 s
    assert 799 <= refusal(app, "ana@acme.test", "10.0.0.5").retry_after <= 801
