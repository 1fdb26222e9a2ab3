"""Personal API tokens (``pat_…``): listed, revoked and given an expiry through the API, the
account page and the CLI; another user's token is never found, and a revoked token is refused
at once in the process that revoked it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.test import TestResponse

from tenants import db as database
from tenants.models import ApiToken, AuditEvent, utcnow
from tests.conftest import (
    TEST_SECRET,
    Caller,
    FrozenClock,
    csrf,
    issue_test_token,
    login,
    table_snapshot,
)

ANA, OUT, ROOT = "ana@acme.test", "out@other.test", "root@example.test"
PAT = re.compile(r"pat_[a-z2-7]{13}_[A-Za-z0-9_-]{43}")
TOKEN_FIELDS = {"token_id", "name", "state", "created_at", "expires_at", "last_used_at",
                "revoked_at"}  # fmt: skip
MARKUP = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def clock(principal_clock: FrozenClock) -> FrozenClock:
    return principal_clock


@dataclass
class People:
    """ana (analyst in acme), out (admin of another tenant), root (platform admin): one token each."""

    app: Flask
    ana: Caller
    out: Caller
    root: Caller

    def as_(self, token: str) -> Caller:
        return Caller(self.ana.client, token)


@pytest.fixture
def people(app: Flask, client: FlaskClient, make_user: Any, make_tenant: Any) -> People:
    make_user(ROOT, platform_admin=True)
    make_tenant("acme", {ANA: "analyst"})
    make_tenant("other", {OUT: "admin"})
    return People(
        app, *(Caller(client, issue_test_token(app, email)) for email in (ANA, OUT, ROOT))
    )


def _error(response: TestResponse, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error.get("field") == field


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row but the tokens' last use, which a request may write."""
    return table_snapshot(app, frozenset({"last_used_at"}))


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(database.session().scalars(query))


def _token_count(app: Flask) -> int:
    with app.app_context():
        return database.session().scalar(select(func.count()).select_from(ApiToken)) or 0


# ---- the API ----------------------------------------------------------------------------------


def test_token_list_shows_only_your_own_tokens_and_no_secret(people: People) -> None:
    created = people.ana("POST", "/me/tokens", {"name": "ci", "expires_in_days": 30})
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/v1/me/tokens"
    listed = people.ana("GET", "/me/tokens")
    assert listed.status_code == 200
    tokens = listed.get_json()["tokens"]
    assert [t["name"] for t in tokens] == ["ci", "tests"]  # newest first
    assert [t["token_id"] for t in tokens] == [created.get_json()["token_id"], people.ana.token_id]
    assert all(set(token) == TOKEN_FIELDS for token in tokens)
    assert tokens[0]["state"] == "active"
    assert tokens[0]["expires_at"] == created.get_json()["expires_at"]
    assert tokens[1]["expires_at"] is None
    assert tokens[1]["last_used_at"] is not None  # the listing request itself used it
    raw = listed.get_data(as_text=True)
    with people.app.app_context():
        hashes = database.session().scalars(select(ApiToken.secret_hash))
        for secret_hash in hashes:
            assert secret_hash not in raw
    for plaintext in (people.ana.token, created.get_json()["token"]):
        assert plaintext.split("_", 2)[2] not in raw
    for caller, own in ((people.out, people.out.token_id), (people.root, people.root.token_id)):
        assert [t["token_id"] for t in caller("GET", "/me/tokens").get_json()["tokens"]] == [own]


def test_a_revoked_token_is_refused_at_once_in_this_process(
    people: People, clock: FrozenClock
) -> None:
    created = people.ana("POST", "/me/tokens", {"name": "ci"}).get_json()
    ci = people.as_(created["token"])
    assert ci("GET", "/me").status_code == 200  # now cached by the PrincipalCache
    browser = _logged_in(people.app, ANA)  # a token revokes only itself
    revoke = f"/api/v1/me/tokens/{created['token_id']}"
    revoked = browser.delete(revoke, headers={"X-CSRF-Token": csrf(browser)})
    assert revoked.status_code == 204
    assert revoked.get_data() == b""
    _error(ci("GET", "/me"), 401, "unauthenticated")  # the clock has not moved
    listed = {t["token_id"]: t for t in people.ana("GET", "/me/tokens").get_json()["tokens"]}
    assert listed[created["token_id"]]["state"] == "revoked"
    assert listed[created["token_id"]]["revoked_at"] is not None
    assert browser.delete(revoke, headers={"X-CSRF-Token": csrf(browser)}).status_code == 204
    events = _audit(people.app, "token.revoke")
    assert len(events) == 1  # revoking twice records it once
    assert (events[0].actor, events[0].target_id) == (ANA, created["token_id"])
    assert events[0].details == {"name": "ci", "user": ANA}


def test_a_token_can_revoke_itself(people: People, clock: FrozenClock) -> None:
    assert people.ana("DELETE", f"/me/tokens/{people.ana.token_id}").status_code == 204
    _error(people.ana("GET", "/me/tokens"), 401, "unauthenticated")


def test_another_users_token_is_not_found_and_keeps_working(
    people: People, clock: FrozenClock
) -> None:
    before = snapshot(people.app)
    for stranger in (people.out, people.root):
        response = stranger("DELETE", f"/me/tokens/{people.ana.token_id}")
        _error(response, 404, "not_found")
        assert people.ana.token_id not in response.get_data(as_text=True)
    for unknown in ("aaaaaaaaaaaaa", "short", "AAAAAAAAAAAAA", "a" * 40, "%00"):
        _error(people.out("DELETE", f"/me/tokens/{unknown}"), 404, "not_found")
    assert snapshot(people.app) == before
    assert _audit(people.app, "token.revoke") == []
    assert people.ana("GET", "/me").status_code == 200


def test_a_token_with_an_expiry_is_refused_once_expired(people: People, clock: FrozenClock) -> None:
    created = people.ana("POST", "/me/tokens", {"name": "short-lived", "expires_in_days": 7})
    assert created.status_code == 201
    body = created.get_json()
    with people.app.app_context():
        stored = database.session().scalar(
            select(ApiToken.expires_at).where(ApiToken.token_id == body["token_id"])
        )
    assert stored is not None
    assert abs(stored - (utcnow() + timedelta(days=7))) < timedelta(minutes=1)
    issued = [e for e in _audit(people.app, "token.issue") if e.target_id == body["token_id"]]
    assert issued[0].details["expires_at"] == stored.isoformat()
    short_lived = people.as_(body["token"])
    assert short_lived("GET", "/me").status_code == 200
    with people.app.app_context():
        db = database.session()
        db.execute(
            update(ApiToken)
            .where(ApiToken.token_id == body["token_id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.commit()
    clock.now += people.app.extensions["pa_principals"].ttl
    _error(short_lived("GET", "/me"), 401, "unauthenticated")
    listed = {t["token_id"]: t for t in people.ana("GET", "/me/tokens").get_json()["tokens"]}
    assert listed[body["token_id"]]["state"] == "expired"


def test_no_expiry_given_or_null_means_never(people: People) -> None:
    for body in ({"name": "a"}, {"name": "b", "expires_in_days": None}):
        created = people.ana("POST", "/me/tokens", body)
        assert created.status_code == 201
        assert created.get_json()["expires_at"] is None
    assert (
        people.ana("POST", "/me/tokens", {"name": "c", "expires_in_days": 3650}).status_code == 201
    )


@pytest.mark.parametrize("days", [0, 3651, -1, "x", "7", True, 1.5, [7], {}])
def test_bad_expiry_is_named_and_nothing_is_stored(people: People, days: Any) -> None:
    before = snapshot(people.app)
    response = people.ana("POST", "/me/tokens", {"name": "ci", "expires_in_days": days})
    _error(response, 400, "invalid", "expires_in_days")
    assert snapshot(people.app) == before


def test_token_routes_need_credentials_and_session_writes_need_csrf(
    app: Flask, people: People
) -> None:
    anonymous = app.test_client()
    for method in ("GET", "POST"):
        _error(anonymous.open("/api/v1/me/tokens", method=method, json={"name": "x"}), 401,
               "unauthenticated")  # fmt: skip
    _error(anonymous.delete(f"/api/v1/me/tokens/{people.ana.token_id}"), 401, "unauthenticated")
    browser = app.test_client()
    login(browser, ANA)
    listed = browser.get("/api/v1/me/tokens")
    assert [t["token_id"] for t in listed.get_json()["tokens"]] == [people.ana.token_id]
    before = snapshot(app)
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        _error(browser.delete(f"/api/v1/me/tokens/{people.ana.token_id}", headers=headers), 400,
               "invalid")  # fmt: skip
    assert snapshot(app) == before
    accepted = browser.delete(
        f"/api/v1/me/tokens/{people.ana.token_id}", headers={"X-CSRF-Token": csrf(browser)}
    )
    assert accepted.status_code == 204


def test_the_document_describes_tokens_without_secrets(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert set(schemas["Token"]["properties"]) == TOKEN_FIELDS
    assert schemas["TokenCreate"]["properties"]["expires_in_days"]["maximum"] == 3650
    assert set(document["paths"]["/me/tokens"]) == {"get", "post"}
    revoke = document["paths"]["/me/tokens/{token_id}"]["delete"]
    assert {"204", "401", "404"} <= set(revoke["responses"])


# ---- the account page -------------------------------------------------------------------------


def _logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def _post(client: FlaskClient, path: str, data: dict[str, str], token: bool = True) -> TestResponse:
    fields = {**data, "csrf_token": csrf(client)} if token else data
    return client.post(path, data=fields)


def _html(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def test_account_page_lists_your_tokens_only(app: Flask, people: People) -> None:
    page = _logged_in(app, ANA).get("/account")
    assert page.status_code == 200
    assert f"pat_{people.ana.token_id}_…" in _html(page)
    assert people.out.token_id not in _html(page)
    assert PAT.search(_html(page)) is None
    assert f'action="/account/tokens/{people.ana.token_id}/revoke"' in _html(page)
    assert 'href="/account">Account</a>' in _html(page)
    theirs = _html(_logged_in(app, OUT).get("/account"))
    assert f"pat_{people.out.token_id}_…" in theirs
    assert people.ana.token_id not in theirs


def test_a_token_created_on_the_page_is_shown_once(app: Flask, people: People) -> None:
    client = _logged_in(app, ANA)
    form = {"name": "deploy", "expires_in_days": "30", "form_id": "token-form-1"}
    shown = _post(client, "/account/tokens", form)
    assert shown.status_code == 200
    assert "no-store" in shown.headers["Cache-Control"]
    plaintexts = PAT.findall(_html(shown))
    assert len(plaintexts) == 1, "the plaintext appears exactly once"
    assert "You will not see this token again" in _html(shown)
    assert people.as_(plaintexts[0])("GET", "/me").get_json()["email"] == ANA
    resent = _post(client, "/account/tokens", form)  # a reload of the answer resends the form
    assert resent.status_code == 303
    assert plaintexts[0] not in _html(resent) + resent.location
    assert "was shown once" in _html(client.get(resent.location))
    account = _html(client.get("/account"))
    assert PAT.search(account) is None
    assert "deploy" in account
    with client.session_transaction() as session:
        assert plaintexts[0] not in repr(dict(session))
    assert _token_count(app) == 4  # one per person, and this one
    events = _audit(app, "token.issue")
    assert events[-1].details["name"] == "deploy"
    assert events[-1].details["expires_at"] is not None


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"name": "", "expires_in_days": "7"}, "name"),
     ({"name": "deploy", "expires_in_days": "0"}, "expires_in_days"),
     ({"name": "deploy", "expires_in_days": "3651"}, "expires_in_days"),
     ({"name": "deploy", "expires_in_days": "soon"}, "expires_in_days")],
)  # fmt: skip
def test_token_form_errors_keep_the_input_and_store_nothing(
    app: Flask, people: People, fields: dict[str, str], field: str
) -> None:
    client = _logged_in(app, ANA)
    before = snapshot(app)
    refused = _post(client, "/account/tokens", {**fields, "form_id": "f-1"})
    assert refused.status_code == 400
    page = _html(refused)
    assert PAT.search(page) is None
    assert f'name="{field}" value="{fields[field]}"' in page
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page)
    assert snapshot(app) == before


def test_revoking_on_the_page_refuses_the_token_at_once(
    app: Flask, people: People, clock: FrozenClock
) -> None:
    ci = people.as_(issue_test_token(app, ANA, "ci"))
    assert ci("GET", "/me").status_code == 200
    client = _logged_in(app, ANA)
    revoked = _post(client, f"/account/tokens/{ci.token_id}/revoke", {})
    assert revoked.status_code == 303
    page = _html(client.get(revoked.location))
    assert f"Token pat_{ci.token_id}_… (ci) revoked" in page
    row = re.search(rf'<tr id="token-{ci.token_id}".*?</tr>', page, re.S)
    assert row is not None
    assert 'data-state="revoked"' in row.group(0)
    assert "/revoke" not in row.group(0)
    _error(ci("GET", "/me"), 401, "unauthenticated")
    assert people.ana("GET", "/me").status_code == 200


def test_token_forms_without_the_csrf_token_are_refused(app: Flask, people: People) -> None:
    client = _logged_in(app, ANA)
    before = snapshot(app)
    writes = [("/account/tokens", {"name": "ci"}),
              (f"/account/tokens/{people.ana.token_id}/revoke", {})]  # fmt: skip
    for path, data in writes:
        assert _post(client, path, data, token=False).status_code == 400, path
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400, path
    assert snapshot(app) == before
    assert people.ana("GET", "/me").status_code == 200


def test_another_users_token_cannot_be_revoked_on_the_page(app: Flask, people: People) -> None:
    strangers = {email: _logged_in(app, email) for email in (OUT, ROOT)}
    before = snapshot(app)
    for email, client in strangers.items():
        response = _post(client, f"/account/tokens/{people.ana.token_id}/revoke", {})
        assert response.status_code == 404, email
        assert people.ana.token_id not in _html(response)
        assert _post(client, "/account/tokens/%00/revoke", {}).status_code == 404
    assert snapshot(app) == before
    assert people.ana("GET", "/me").status_code == 200


def test_the_account_page_needs_a_login(client: FlaskClient, people: People) -> None:
    response = client.get("/account")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=/account")
    before = snapshot(client.application)
    assert client.post("/account/tokens", data={"name": "x"}).status_code == 302
    assert snapshot(client.application) == before


def test_markup_in_token_names_is_escaped(app: Flask, people: People) -> None:
    client = _logged_in(app, ANA)
    shown = _post(client, "/account/tokens", {"name": MARKUP})
    refused = _post(client, "/account/tokens", {"name": MARKUP, "expires_in_days": "0"})
    for page in (_html(shown), _html(refused), _html(client.get("/account"))):
        assert MARKUP not in page
        assert ESCAPED in page


def test_password_is_changed_on_the_account_page(app: Flask, people: People) -> None:
    client = _logged_in(app, ANA)
    assert client.get("/account/password").location == "/account#password"
    wrong = _post(client, "/account/password",
                  {"current_password": "not it at all", "new_password": "a new password 5678"})  # fmt: skip
    assert wrong.status_code == 400
    assert "the current password is wrong" in _html(wrong)
    assert "not it at all" not in _html(wrong)
    assert re.search(r'name="current_password"[^>]*aria-invalid="true"', _html(wrong))


# ---- the CLI ----------------------------------------------------------------------------------


def test_cli_issues_a_token_once_and_revokes_it(
    app: Flask, people: People, runner: Any, clock: FrozenClock
) -> None:
    result = runner("issue-token", "--email", "ANA@acme.test", "--name", "cron",
                    "--expires-in-days", "90")  # fmt: skip
    assert result.exit_code == 0, result.output
    plaintext = result.stdout.strip().splitlines()[-1]
    assert PAT.fullmatch(plaintext)
    token_id = plaintext.split("_")[1]
    assert f"token id {token_id}; the token, shown once:" in result.stderr
    cron = people.as_(plaintext)
    assert cron("GET", "/me").get_json()["email"] == ANA
    listed = {t["token_id"]: t for t in people.ana("GET", "/me/tokens").get_json()["tokens"]}
    assert listed[token_id]["name"] == "cron"
    assert listed[token_id]["expires_at"] is not None
    issued = _audit(app, "token.issue")[-1]
    assert (issued.actor, issued.actor_user_id, issued.details["user"]) == ("cli", None, ANA)
    result = runner("revoke-token", token_id)
    assert result.exit_code == 0, result.output
    assert f"revoked token {token_id} of {ANA}" in result.output
    _error(cron("GET", "/me"), 401, "unauthenticated")
    assert _audit(app, "token.revoke")[-1].actor == "cli"


def test_cli_writes_a_token_to_a_private_file(
    app: Flask, people: People, runner: Any, tmp_path: Any
) -> None:
    target = tmp_path / "ana.token"
    result = runner("issue-token", "--email", ANA, "--name", "file", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert PAT.search(result.output) is None
    assert PAT.fullmatch(target.read_text().strip())
    assert target.stat().st_mode & 0o777 == 0o600


def test_cli_issues_no_token_when_its_file_cannot_be_written(
    app: Flask, people: People, runner: Any, tmp_path: Any
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    target = blocker / "ana.token"
    before = _token_count(app)
    result = runner("issue-token", "--email", ANA, "--name", "file", "--output", str(target))
    assert result.exit_code == 1
    assert f"cannot write the token to {target}: Not a directory; no token was issued" in (
        result.output
    )
    assert _token_count(app) == before


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [(["issue-token", "--email", "ghost@acme.test", "--name", "x"], 1, "no user with e-mail"),
     (["issue-token", "--email", ANA, "--name", " "], 2, "name is required"),
     (["issue-token", "--email", ANA], 2, "Missing option '--name'"),
     (["issue-token", "--email", ANA, "--name", "x", "--expires-in-days", "0"], 2,
      "'--expires-in-days': 0 is not in the range 1<=x<=3650"),
     (["issue-token", "--email", ANA, "--name", "x", "--expires-in-days", "3651"], 2,
      "'--expires-in-days'"),
     (["issue-token", "--email", ANA, "--name", "x", "--expires-in-days", "soon"], 2,
      "'soon' is not a valid integer"),
     (["revoke-token", "aaaaaaaaaaaaa"], 1, "no such API token"),
     (["revoke-token", "not-an-id"], 1, "no such API token"),
     (["revoke-token"], 2, "Missing argument 'TOKEN_ID'")],
)  # fmt: skip
def test_cli_token_commands_refuse_bad_input_clearly(
    app: Flask,
    people: People,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    status: int,
    message: str,
) -> None:
    from tenants.cli import run

    before = snapshot(app)
    settings = [f"--database-url={database_url}", f"--secret-key={TEST_SECRET}"]
    assert run([*settings, *args]) == status
    assert message in capsys.readouterr().err
    assert snapshot(app) == before
