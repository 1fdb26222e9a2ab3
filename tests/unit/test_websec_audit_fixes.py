"""Fixes from the web-security audit of the admin app (/tmp/audit-websec/REPORT.md):

* a wrong current password on the password-change form counts in the login throttle, is refused
  429 with Retry-After once over it, and is audited;
* concurrent wrong passwords cannot outrun the throttle (the attempt is counted before argon2
  runs), with the database and with Redis;
* a refusal for the address says how long the address's block lasts, with Redis too;
* a CSRF token that is not ASCII is the usual 400, not a 500;
* a request no route takes gets its 404 or 405, not a CSRF refusal, and every error page is
  ``no-store``;
* HSTS over HTTPS;
* the proxy advice in docs/operations.md.
"""

from __future__ import annotations

import os
import re
import secrets
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from werkzeug.test import TestResponse

from tenants import db as database
from tenants.models import AuditEvent, LoginFailure
from tenants.throttle import account_digest
from tests.conftest import PASSWORD, TEST_SECRET, csrf, empty_tables, login

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

MAX_FAILURES = 3  # login.max-failures in these tests; an address may fail 4 times as often
WINDOW = 900
ADDRESS_LIMIT = 4 * MAX_FAILURES
WRONG = "not the password at all"
NEW_PASSWORD = "a brand new password 42"
GATE_DEADLINE = 30.0
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


class Visitor:
    """Unique e-mail addresses and one client address for a test, so that the counts of Redis,
    which outlive the test, are its own; ``forget`` removes them."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(4)
        self.ip = "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))
        self.emails: list[str] = []

    def email(self, name: str) -> str:
        address = f"{name}-{self.tag}@acme.test"
        self.emails.append(address)
        return address

    def client(self, app: Flask) -> FlaskClient:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = self.ip
        return client

    def forget(self, redis_url: str) -> None:
        if not redis_url:
            return
        import redis

        secret = TEST_SECRET.encode()
        keys = [f"pa:login:email:{account_digest(secret, email)}" for email in self.emails]
        keys.append(f"pa:login:ip:{self.ip}")
        redis.Redis.from_url(redis_url).delete(*keys)


@pytest.fixture(params=["database", "redis"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """The throttle's store: the admin database, or Redis (REDIS_URL; CI sets it)."""
    if request.param == "database":
        return ""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("needs REDIS_URL (CI sets it)")
    return url


@pytest.fixture
def visitor(redis_url: str) -> Iterator[Visitor]:
    visitor = Visitor()
    yield visitor
    visitor.forget(redis_url)


@pytest.fixture
def throttled_app(
    admin_settings: dict[str, Any], migrated_engine: Engine, redis_url: str
) -> Iterator[Flask]:
    from tenants.app import create_app

    empty_tables(migrated_engine)
    app = create_app(
        {**admin_settings, "redis_url": redis_url, "login_max_failures": MAX_FAILURES,
         "login_window_seconds": WINDOW}
    )  # fmt: skip
    app.config["TESTING"] = True
    yield app
    app.extensions["pa_engine"].dispose()


@pytest.fixture
def fast_unknown_logins(fast_password_hashing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown address is verified against a test-cost hash (fast_password_hashing's)."""
    from tenants import crypto

    monkeypatch.setattr("tenants.accounts._DUMMY_HASH", crypto.hash_password("dummy"))


def add_user(app: Flask, email: str) -> None:
    from tenants.access import system_actor
    from tenants.accounts import create_user

    with app.app_context():
        create_user(database.session(), system_actor(), email, PASSWORD)


def post_login(client: FlaskClient, email: str, password: str) -> TestResponse:
    client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf(client)}
    )


def change_password(client: FlaskClient, current: str) -> TestResponse:
    fields = {"current_password": current, "new_password": NEW_PASSWORD}
    return client.post("/account/password", data={**fields, "csrf_token": csrf(client)})


def audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(database.session().scalars(query))


def password_is(app: Flask, email: str, password: str) -> bool:
    from tenants.accounts import get_user_by_email
    from tenants.crypto import verify_password

    with app.app_context():
        user = get_user_by_email(database.session(), email)
        assert user is not None
        return verify_password(user.password_hash, password)


# --- finding 1: the password-change form guesses the password without limit ---------------------


def test_wrong_current_passwords_are_throttled_as_logins_are_and_audited(
    throttled_app: Flask, visitor: Visitor
) -> None:
    ana = visitor.email("ana")
    add_user(throttled_app, ana)
    client = visitor.client(throttled_app)
    login(client, ana)
    for number in range(MAX_FAILURES):
        wrong = change_password(client, f"{WRONG} {number}")
        assert wrong.status_code == 400
        assert "the current password is wrong" in wrong.get_data(as_text=True)
    refused = change_password(client, PASSWORD)  # the right one, now too late
    page = refused.get_data(as_text=True)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= WINDOW
    assert "too many wrong passwords" in page
    assert re.search(r'name="current_password"[^>]*aria-invalid="true"', page)
    assert password_is(throttled_app, ana, PASSWORD)
    failures = audit(throttled_app, "user.password_change.failure")
    assert [(event.actor, event.ip) for event in failures] == [(ana, visitor.ip)] * MAX_FAILURES
    assert all(event.details == {} for event in failures)
    assert audit(throttled_app, "user.password_change") == []


def test_wrong_logins_throttle_the_password_change_of_the_same_account(
    throttled_app: Flask, visitor: Visitor
) -> None:
    ana = visitor.email("ana")
    add_user(throttled_app, ana)
    signed_in = visitor.client(throttled_app)
    login(signed_in, ana)
    guesser = visitor.client(throttled_app)
    for number in range(MAX_FAILURES):
        assert post_login(guesser, ana, f"{WRONG} {number}").status_code == 401
    refused = change_password(signed_in, PASSWORD)
    assert refused.status_code == 429
    assert password_is(throttled_app, ana, PASSWORD)


def test_the_right_current_password_changes_it_and_clears_the_accounts_count(
    throttled_app: Flask, visitor: Visitor
) -> None:
    ana = visitor.email("ana")
    add_user(throttled_app, ana)
    client = visitor.client(throttled_app)
    login(client, ana)
    for number in range(MAX_FAILURES - 1):
        assert change_password(client, f"{WRONG} {number}").status_code == 400
    changed = change_password(client, PASSWORD)
    assert changed.status_code == 302, changed.get_data(as_text=True)
    assert password_is(throttled_app, ana, NEW_PASSWORD)
    for _ in range(MAX_FAILURES - 1):  # the count started again
        assert post_login(visitor.client(throttled_app), ana, WRONG).status_code == 401


# --- finding 4: concurrent guesses outran the throttle -------------------------------------------


class Gate:
    """Holds every password check until each attempt has either been let in or refused, so that
    a throttle that counts only after the check would let every attempt in."""

    def __init__(self, attempts: int, verify: Callable[[str, str], bool]) -> None:
        self.attempts, self.real_verify = attempts, verify
        self.verified = self.refused = 0
        self.changed = threading.Condition()

    def _all_decided(self) -> bool:
        return self.verified + self.refused >= self.attempts

    def verify(self, stored_hash: str, password: str) -> bool:
        with self.changed:
            self.verified += 1
            self.changed.notify_all()
            self.changed.wait_for(self._all_decided, timeout=GATE_DEADLINE)
        return self.real_verify(stored_hash, password)

    def refusal(self) -> None:
        with self.changed:
            self.refused += 1
            self.changed.notify_all()


def race(
    app: Flask, visitor: Visitor, emails: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Gate, Counter[int]]:
    """One wrong login per e-mail, all at once from the visitor's address: the gate (how many
    passwords were checked) and the statuses."""
    import tenants.accounts

    gate = Gate(len(emails), tenants.accounts.verify_password)
    monkeypatch.setattr("tenants.accounts.verify_password", gate.verify)
    clients = []
    for email in emails:
        client = visitor.client(app)
        client.get("/login")
        clients.append((client, {"email": email, "password": WRONG, "csrf_token": csrf(client)}))

    def attempt(client_and_form: tuple[FlaskClient, dict[str, str]]) -> int:
        client, form = client_and_form
        status = client.post("/login", data=form).status_code
        if status == 429:
            gate.refusal()
        return status

    with ThreadPoolExecutor(len(emails)) as pool:
        statuses = Counter(pool.map(attempt, clients))
    return gate, statuses


def test_concurrent_wrong_logins_for_one_account_check_at_most_the_allowed_passwords(
    throttled_app: Flask, visitor: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = visitor.email("ana")
    add_user(throttled_app, ana)
    attempts = 2 * MAX_FAILURES
    gate, statuses = race(throttled_app, visitor, [ana] * attempts, monkeypatch)
    assert gate.verified == MAX_FAILURES, statuses
    assert statuses == Counter({401: MAX_FAILURES, 429: attempts - MAX_FAILURES})


@pytest.mark.usefixtures("fast_unknown_logins")
def test_concurrent_wrong_logins_from_one_address_check_at_most_its_allowance(
    admin_settings: dict[str, Any],
    migrated_engine: Engine,
    redis_url: str,
    visitor: Visitor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tenants.app import create_app

    empty_tables(migrated_engine)
    app = create_app({**admin_settings, "redis_url": redis_url, "login_max_failures": 1})
    app.config["TESTING"] = True
    try:
        emails = [visitor.email(f"nobody{number}") for number in range(6)]  # the allowance is 4
        gate, statuses = race(app, visitor, emails, monkeypatch)
    finally:
        app.extensions["pa_engine"].dispose()
    assert gate.verified == 4, statuses
    assert statuses == Counter({401: 4, 429: 2})


def test_a_right_password_gives_its_attempt_back(throttled_app: Flask, visitor: Visitor) -> None:
    """Counted before the check, a login must not count once the password proves right: an
    office behind one address logs in all day."""
    ana = visitor.email("ana")
    add_user(throttled_app, ana)
    for _ in range(ADDRESS_LIMIT + 1):
        assert post_login(visitor.client(throttled_app), ana, PASSWORD).status_code == 302
    assert post_login(visitor.client(throttled_app), ana, WRONG).status_code == 401


@pytest.mark.usefixtures("fast_unknown_logins")
def test_what_was_typed_as_the_e_mail_is_counted_but_never_kept(
    throttled_app: Flask, visitor: Visitor, redis_url: str
) -> None:
    """A password typed in the e-mail field by mistake is counted under its HMAC, so it is in
    neither the login_failures table nor Redis's keys, and the throttle still refuses it."""
    typed = visitor.email("Hunter2-Secret")
    client = visitor.client(throttled_app)
    for _ in range(MAX_FAILURES):
        assert post_login(client, typed, WRONG).status_code == 401
    assert post_login(client, typed, WRONG).status_code == 429
    if redis_url:
        import redis

        kept = [key.decode() for key in redis.Redis.from_url(redis_url).keys("pa:login:*")]
        assert kept
        assert not any("hunter2" in key.lower() for key in kept)
    else:
        with throttled_app.app_context():
            rows = database.session().scalars(select(LoginFailure.email)).all()
        assert len(rows) == MAX_FAILURES
        assert all(re.fullmatch(r"[0-9a-f]{64}", row) for row in rows), rows


# --- finding 5: Redis said Retry-After: 1 for the address's block ------------------------------


@pytest.mark.usefixtures("fast_unknown_logins")
def test_a_refusal_for_the_address_says_how_long_the_address_is_blocked(
    throttled_app: Flask, visitor: Visitor
) -> None:
    client = visitor.client(throttled_app)
    for number in range(ADDRESS_LIMIT):
        assert post_login(client, visitor.email(f"nobody{number}"), WRONG).status_code == 401
    refused = post_login(client, visitor.email("fresh"), WRONG)
    assert refused.status_code == 429
    assert WINDOW - 60 <= int(refused.headers["Retry-After"]) <= WINDOW


def test_a_refusal_for_the_account_says_how_long_the_account_is_blocked(
    throttled_app: Flask, visitor: Visitor
) -> None:
    ana = visitor.email("ana")
    add_user(throttled_app, ana)
    client = visitor.client(throttled_app)
    for _ in range(MAX_FAILURES):
        assert post_login(client, ana, WRONG).status_code == 401
    refused = post_login(client, ana, PASSWORD)
    assert refused.status_code == 429
    assert WINDOW - 60 <= int(refused.headers["Retry-After"]) <= WINDOW


# --- finding 3: a CSRF token that is not ASCII ---------------------------------------------------


@pytest.mark.parametrize("token", ["é", "€", "x" * 42 + "é"])
def test_a_csrf_token_beyond_ascii_on_the_login_form_is_the_usual_400(
    client: FlaskClient, make_user: Any, token: str
) -> None:
    make_user("ana@acme.test")
    client.get("/login")
    refused = client.post(
        "/login", data={"email": "ana@acme.test", "password": PASSWORD, "csrf_token": token}
    )
    assert refused.status_code == 400
    assert "security token (CSRF)" in refused.get_data(as_text=True)


def test_a_csrf_header_beyond_ascii_on_the_api_is_the_usual_400(
    client: FlaskClient, make_user: Any
) -> None:
    make_user("ana@acme.test")
    login(client, "ana@acme.test")
    refused = client.post("/api/v1/me/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "é"})
    assert refused.status_code == 400
    assert "missing or wrong CSRF token" in refused.get_json()["error"]["message"]


# --- finding 9: 405 behind a CSRF message; error pages without no-store ---------------------------


def test_a_wrong_method_is_a_405_for_a_signed_in_api_client_without_a_token(
    client: FlaskClient, make_user: Any
) -> None:
    make_user("ana@acme.test", platform_admin=True)
    login(client, "ana@acme.test")
    answer = client.put("/api/v1/tenants", json={"slug": "x", "name": "X"})
    assert answer.status_code == 405
    assert answer.get_json()["error"]["code"] == "method_not_allowed"
    assert set(answer.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_a_wrong_method_on_a_page_is_a_405_not_a_missing_token(
    client: FlaskClient, make_user: Any
) -> None:
    make_user("ana@acme.test")
    login(client, "ana@acme.test")
    answer = client.put("/login", data={"email": "ana@acme.test"})
    assert answer.status_code == 405
    assert "CSRF" not in answer.get_data(as_text=True)


def test_a_post_to_no_page_is_a_404_not_a_missing_token(
    client: FlaskClient, make_user: Any
) -> None:
    make_user("ana@acme.test")
    login(client, "ana@acme.test")
    assert client.post("/no/such/page", data={}).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no/such/page", 404), ("PUT", "/account", 405), ("GET", "/static/none.css", 404)],
)
def test_error_pages_showing_the_signed_in_user_are_not_stored(
    client: FlaskClient, make_user: Any, method: str, path: str, status: int
) -> None:
    make_user("ana@acme.test")
    login(client, "ana@acme.test")
    answer = client.open(path, method=method)
    assert answer.status_code == status
    assert "ana@acme.test" in answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"


def test_static_files_stay_cacheable(client: FlaskClient) -> None:
    answer = client.get("/static/admin.css")
    assert answer.status_code == 200
    assert "no-store" not in answer.headers.get("Cache-Control", "")


# --- finding 6: HSTS -----------------------------------------------------------------------------


def _app_with(admin_settings: dict[str, Any], migrated_engine: Engine, **changes: Any) -> Flask:
    from tenants.app import create_app

    empty_tables(migrated_engine)
    return create_app({**admin_settings, **changes})


@pytest.mark.parametrize(
    ("settings", "base_url", "headers", "hsts"),
    [
        ({}, "http://localhost", {}, False),
        ({}, "https://localhost", {}, True),
        ({"web_trusted_proxies": 1}, "http://localhost", {"X-Forwarded-Proto": "https"}, True),
        ({}, "http://localhost", {"X-Forwarded-Proto": "https"}, False),  # no proxy trusted
        ({"session_secure_cookie": True}, "http://localhost", {}, True),
    ],
    ids=["http", "https", "trusted-proxy-https", "untrusted-forwarded-proto", "secure-cookie"],
)
def test_hsts_is_sent_over_https_and_with_a_secure_cookie(
    admin_settings: dict[str, Any],
    migrated_engine: Engine,
    settings: dict[str, Any],
    base_url: str,
    headers: dict[str, str],
    hsts: bool,
) -> None:
    app = _app_with(admin_settings, migrated_engine, **settings)
    try:
        answer = app.test_client().get("/login", base_url=base_url, headers=headers)
    finally:
        app.extensions["pa_engine"].dispose()
    assert answer.status_code == 200
    expected = "max-age=31536000" if hsts else None
    assert answer.headers.get("Strict-Transport-Security") == expected


@pytest.mark.integration
def test_admin_serving_https_itself_sends_hsts(tmp_path: Path) -> None:
    from tests.integration.test_web_tls import HTTPSAdmin
    from tests.support.tls import make_pki

    admin = HTTPSAdmin(tmp_path / "admin", make_pki(tmp_path / "pki")).start()
    try:
        for path in ("/login", "/no/such/page"):
            answer = admin.http.get(f"{admin.url}{path}", timeout=10, allow_redirects=False)
            assert answer.headers["Strict-Transport-Security"] == "max-age=31536000", path
    finally:
        admin.stop()


# --- findings 2, 7 and 8: the proxy advice in docs/operations.md ---------------------------------


def _section(title: str) -> str:
    text = OPERATIONS.read_text()
    start = text.index(f"\n{title}\n")
    following = re.search(r"\n#{1,3} ", text[start + len(title) + 2 :])
    return text[start : start + len(title) + 2 + (following.start() if following else len(text))]


def _blocks(section: str, language: str) -> list[str]:
    """The section's code blocks in ``language``, dedented (they may sit in a list item)."""
    return [
        textwrap.dedent(block) for block in re.findall(rf"```{language}\n(.*?)```", section, re.S)
    ]


INGEST_PATHS = {"/write", "/api/v2/write", "/query", "/ping"}


def test_the_documented_caddy_setup_publishes_only_ingests_client_paths() -> None:
    (caddyfile,) = _blocks(_section("### Ingest and admin"), "caddy")
    ingest = caddyfile[caddyfile.index("ingest.example.com {") : caddyfile.index("\n}\n")]
    matcher = re.search(r"@api path (.+)", ingest)
    assert matcher is not None
    assert set(matcher.group(1).split()) == INGEST_PATHS
    assert re.search(r"handle @api \{\s*reverse_proxy 127\.0\.0\.1:8087\s*\}", ingest)
    assert re.search(r"handle \{\s*respond 404\b[^\n]*\s*\}", ingest)
    assert ingest.count("reverse_proxy") == 1


def test_the_documented_nginx_setup_passes_the_host_and_the_client_address() -> None:
    (nginx,) = _blocks(_section("### Ingest and admin"), "nginx")
    admin = nginx[nginx.index("server_name admin.example.com;") :]
    for directive in (
        "proxy_set_header Host $host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ):
        assert directive in admin, directive
    ingest = nginx[: nginx.index("server_name admin.example.com;")]
    published = set(re.findall(r"location = (\S+)\s+\{", ingest))
    assert published == INGEST_PATHS
    assert re.search(r"location / \{\s*return 404;\s*\}", ingest)


def test_the_documented_ingress_publishes_only_ingests_client_paths() -> None:
    (manifest,) = _blocks(_section("### Ingest and admin"), "yaml")
    ingresses = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(manifest)}
    (ingest_rule,) = ingresses["ingest"]["spec"]["rules"]
    paths = ingest_rule["http"]["paths"]
    assert {(path["path"], path["pathType"]) for path in paths} == {
        (path, "Exact") for path in INGEST_PATHS
    }
    assert {path["backend"]["service"]["name"] for path in paths} == {"ingest"}


def test_scaling_out_does_not_say_the_login_throttle_is_per_worker() -> None:
    scaling = _section("## Scaling out")
    assert "login throttle is per worker" not in scaling
    assert "admin database" in scaling
