"""The tenant audit's fixes in the admin app (item 4, storage, is tests/integration's):

1. A duplicate stored by a concurrent request between a service's check and its insert is
   answered as the check answers it (409, the same message) on the API, the pages and the
   command line, not with a 500: collectors and users; a membership made meanwhile has its role
   set, as if the two requests had come one after the other.
2. A rotated key's successor is issued for as long as the old key was, unless told otherwise.
3. Tenant, collector and user names are stored in NFC and refuse characters that show nothing;
   a collector name differing from another only in case is taken; rows stored before are
   untouched and keep working.
5. What revocation and disabling say about key-cache-seconds, and ingest's missing database.

Runs on SQLite, and on PostgreSQL when DATABASE_URL is set (tests/conftest.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, Table, event, select
from sqlalchemy.orm import Session

from tenants import db as database
from tenants import validation
from tenants.access import system_actor
from tenants.errors import Invalid
from tenants.keys import issue_key
from tenants.models import ApiKey, AuditEvent, Collector, Membership, Tenant, User
from tenants.openapi import document
from tests.conftest import Caller, csrf, issue_test_token, login, table_snapshot
from tests.unit.field_errors import described_errors

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

Run = Callable[..., tuple[int, str, str]]
ROOT = "root@example.test"
TAKEN = "this tenant already has a collector named 'race-1'"
EMAIL_TAKEN = "a user with e-mail dana@example.test already exists"


@pytest.fixture
def root(app: Flask, make_user: Any, make_tenant: Any) -> Caller:
    """A platform admin's API caller, with tenant acme and its collector web1."""
    make_user(ROOT, platform_admin=True)
    make_tenant("acme")
    caller = Caller(app.test_client(), issue_test_token(app, ROOT))
    made = caller("POST", "/tenants/acme/collectors", {"name": "web1", "hostname": "web1"})
    assert made.status_code == 201, made.get_data(as_text=True)
    return caller


@pytest.fixture
def browser(app: Flask, root: Caller) -> FlaskClient:
    client = app.test_client()
    login(client, ROOT)
    return client


def post(client: FlaskClient, path: str, data: dict[str, str]) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf(client)})


def row_id(app: Flask, model: Any, **where: Any) -> int:
    with app.app_context():
        found = database.session().scalars(select(model.id).filter_by(**where)).one()
        assert isinstance(found, int)
        return found


def collector_names(app: Flask) -> list[str]:
    with app.app_context():
        return list(database.session().scalars(select(Collector.name).order_by(Collector.name)))


def events(app: Flask, action: str) -> int:
    with app.app_context():
        found = database.session().scalars(select(AuditEvent.id).where(AuditEvent.action == action))
        return len(found.all())


# ---------------------------------------------------------------------------------------------
# 1. A duplicate stored meanwhile


@contextmanager
def stored_meanwhile(
    engine: Engine, table: Table, values: dict[str, Any], new: type
) -> Iterator[list[bool]]:
    """When a session is about to store a new ``new`` (after the service's duplicate check, at
    the flush that inserts it), another connection stores ``values`` in ``table`` and commits,
    as a concurrent request would. The list yielded holds True once that happened."""
    done: list[bool] = []

    def before_flush(session: Session, *_: Any) -> None:
        if done or not any(isinstance(instance, new) for instance in session.new):
            return
        done.append(True)
        with engine.begin() as connection:
            connection.execute(table.insert().values(**values))

    event.listen(Session, "before_flush", before_flush)
    try:
        yield done
    finally:
        event.remove(Session, "before_flush", before_flush)


@contextmanager
def collector_meanwhile(app: Flask, name: str = "race-1") -> Iterator[list[bool]]:
    values = {"tenant_id": row_id(app, Tenant, slug="acme"), "name": name, "hostname": "other"}
    engine = app.extensions["pa_engine"]
    with stored_meanwhile(engine, Collector.__table__, values, Collector) as done:
        yield done


def test_a_collector_stored_meanwhile_is_the_checks_409_on_the_api(
    app: Flask, root: Caller
) -> None:
    with collector_meanwhile(app) as staged:
        refused = root("POST", "/tenants/acme/collectors", {"name": "race-1", "hostname": "web"})
    assert staged
    assert refused.status_code == 409
    assert refused.get_json()["error"] == {"code": "conflict", "message": TAKEN, "field": "name"}
    assert collector_names(app) == ["race-1", "web1"]
    assert events(app, "collector.register") == 1  # web1's alone
    # the check itself answers the same, without a race
    again = root("POST", "/tenants/acme/collectors", {"name": "race-1", "hostname": "web"})
    assert again.get_json()["error"]["message"] == TAKEN


def test_a_collector_stored_meanwhile_is_the_checks_409_on_the_page(
    app: Flask, browser: FlaskClient
) -> None:
    with collector_meanwhile(app) as staged:
        refused = post(browser, "/tenants/acme/collectors", {"name": "race-1", "hostname": "web"})
    assert staged
    assert refused.status_code == 409
    assert described_errors(refused.get_data(as_text=True))["name"] == TAKEN
    assert collector_names(app) == ["race-1", "web1"]


def test_a_collector_stored_meanwhile_is_the_checks_refusal_on_the_command_line(
    app: Flask, root: Caller, admin_run: Run
) -> None:
    with collector_meanwhile(app) as staged:
        refused = admin_run("create-collector", "acme", "race-1", "--hostname", "web")
    assert staged
    assert refused == (1, "", f"perfanalysis admin: {TAKEN}\n")
    assert collector_names(app) == ["race-1", "web1"]


def test_a_name_differing_in_case_stored_meanwhile_is_a_409(app: Flask, root: Caller) -> None:
    """No unique index ignores case: the names are compared again once the new one is stored,
    with the tenant's row locked (PostgreSQL) or the database's write lock held (SQLite)."""
    with collector_meanwhile(app, "RACE-1") as staged:
        refused = root("POST", "/tenants/acme/collectors", {"name": "race-1", "hostname": "web"})
    assert staged
    assert refused.status_code == 409
    assert refused.get_json()["error"] == {
        "code": "conflict",
        "message": "this tenant already has a collector named 'RACE-1' (names that differ only "
        "in case are the same name)",
        "field": "name",
    }
    assert collector_names(app) == ["RACE-1", "web1"]
    assert events(app, "collector.register") == 1


@contextmanager
def user_meanwhile(app: Flask) -> Iterator[list[bool]]:
    values = {"email": "dana@example.test", "name": "", "password_hash": "x"}
    with stored_meanwhile(app.extensions["pa_engine"], User.__table__, values, User) as done:
        yield done


def emails(app: Flask) -> list[str]:
    with app.app_context():
        return list(database.session().scalars(select(User.email).order_by(User.email)))


def test_a_user_stored_meanwhile_is_the_checks_409_on_the_api_and_the_command_line(
    app: Flask, root: Caller, admin_run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"email": "dana@example.test", "password": "a reasonable passphrase"}
    with user_meanwhile(app) as staged:
        refused = root("POST", "/users", body)
    assert staged
    assert refused.status_code == 409
    assert refused.get_json()["error"] == {
        "code": "conflict",
        "message": EMAIL_TAKEN,
        "field": "email",
    }
    assert emails(app) == ["dana@example.test", ROOT]

    with app.app_context():
        db = database.session()
        db.delete(db.scalars(select(User).where(User.email == "dana@example.test")).one())
        db.commit()
    monkeypatch.setenv("PERFANALYSIS_NEW_PASSWORD", "a reasonable passphrase")
    with user_meanwhile(app) as staged:
        assert admin_run("create-user", "dana@example.test") == (
            1, "", f"perfanalysis admin: {EMAIL_TAKEN}\n",
        )  # fmt: skip
    assert staged
    assert events(app, "user.create") == 1  # root's alone


@contextmanager
def membership_meanwhile(app: Flask, role: str) -> Iterator[list[bool]]:
    values = {
        "user_id": row_id(app, User, email="dana@example.test"),
        "tenant_id": row_id(app, Tenant, slug="acme"),
        "role": role,
    }
    engine = app.extensions["pa_engine"]
    with stored_meanwhile(engine, Membership.__table__, values, Membership) as done:
        yield done


def roles(app: Flask) -> list[str]:
    with app.app_context():
        query = select(Membership.role).join(User).where(User.email == "dana@example.test")
        return list(database.session().scalars(query))


@pytest.mark.parametrize("path", ["api", "page", "cli"])
def test_a_membership_made_meanwhile_gets_the_role_asked_for(
    app: Flask,
    root: Caller,
    make_user: Any,
    path: str,
    admin_run: Run,
) -> None:
    """Adding a member sets their role whether or not they are one: a request that finds them
    added since it looked does what it would have done a moment later, change the role."""
    make_user("dana@example.test")
    with membership_meanwhile(app, "viewer") as staged:
        if path == "api":
            body = {"email": "dana@example.test", "role": "analyst"}
            answer = root("POST", "/tenants/acme/members", body)
            assert answer.status_code in (200, 201), answer.get_data(as_text=True)
            assert answer.get_json()["role"] == "analyst"
        elif path == "page":
            client = app.test_client()
            login(client, ROOT)
            form = {"email": "dana@example.test", "role": "analyst"}
            answer = post(client, "/tenants/acme/members", form)
            assert answer.status_code == 303, answer.get_data(as_text=True)
        else:
            done = admin_run("add-member", "acme", "dana@example.test", "analyst")
            assert done == (0, "dana@example.test is analyst in acme\n", "")
    assert staged
    assert roles(app) == ["analyst"]
    assert events(app, "member.set") == 1


def at_once(count: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(i)`` for each i in threads released together; each one's answer, or its error."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call(index)
        except Exception as exc:  # a 500 under TESTING propagates
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def statuses_at_once(callers: list[Caller], path: str, body: dict[str, Any]) -> list[Any]:
    """The statuses of one request sent by every caller at once (an error's repr for a 500)."""
    answers = at_once(len(callers), lambda i: callers[i]("POST", path, body))
    return sorted((getattr(a, "status_code", None) or repr(a) for a in answers), key=str)


def test_eight_identical_creates_at_once_answer_one_201_and_409s(app: Flask, root: Caller) -> None:
    callers = [Caller(app.test_client(), root.token) for _ in range(8)]
    once = [201] + [409] * 7
    for round_ in range(3):
        collector = {"name": f"race-{round_}", "hostname": "web"}
        assert statuses_at_once(callers, "/tenants/acme/collectors", collector) == once
        user = {"email": f"user{round_}@example.test", "password": "a reasonable passphrase"}
        assert statuses_at_once(callers, "/users", user) == once
        member = {"email": f"user{round_}@example.test", "role": "viewer"}
        assert set(statuses_at_once(callers, "/tenants/acme/members", member)) <= {200, 201}
    assert collector_names(app) == ["race-0", "race-1", "race-2", "web1"]
    with app.app_context():
        members = database.session().scalars(select(Membership.user_id)).all()
    assert len(members) == len(set(members)) == 3


# ---------------------------------------------------------------------------------------------
# 2. Rotation keeps the key's lifetime


def when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def near(moment: datetime | None, days: float) -> bool:
    expected = datetime.now(UTC) + timedelta(days=days)
    return moment is not None and abs(moment - expected) < timedelta(minutes=1)


def issued(root: Caller, expires_in_days: int | None) -> dict[str, Any]:
    collector = root("GET", "/tenants/acme/collectors").get_json()["collectors"][0]["id"]
    body: dict[str, Any] = {"collector_id": collector, "expires_in_days": expires_in_days}
    made = root("POST", "/tenants/acme/keys", body)
    assert made.status_code == 201, made.get_data(as_text=True)
    key: dict[str, Any] = made.get_json()
    return key


def test_a_rotated_key_is_issued_for_as_long_as_the_old_one(root: Caller) -> None:
    old = issued(root, 30)
    rotated = root("POST", f"/tenants/acme/keys/{old['key_id']}/rotate", {"overlap_hours": 1})
    assert rotated.status_code == 201
    assert near(when(rotated.get_json()["expires_at"]), 30)
    old_now = root("GET", f"/tenants/acme/keys/{old['key_id']}").get_json()
    assert near(when(old_now["expires_at"]), 1 / 24)

    # rotated again within the overlap: its expiry was cut, its successor keeps the lifetime
    again = root("POST", f"/tenants/acme/keys/{old['key_id']}/rotate", {"overlap_hours": 1})
    assert near(when(again.get_json()["expires_at"]), 30)
    # and the successor's own successor
    newer = root("POST", f"/tenants/acme/keys/{rotated.get_json()['key_id']}/rotate")
    assert near(when(newer.get_json()["expires_at"]), 30)

    never = issued(root, None)
    rotated = root("POST", f"/tenants/acme/keys/{never['key_id']}/rotate")
    assert rotated.get_json()["expires_at"] is None


def test_rotation_sets_the_new_keys_expiry_when_asked(app: Flask, root: Caller) -> None:
    old = issued(root, 30)
    path = f"/tenants/acme/keys/{old['key_id']}/rotate"
    before = table_snapshot(app, frozenset({"last_used_at"}))
    for value, message in [
        (0, "expires_in_days must be between 1 and 3,650"),
        (3651, "expires_in_days must be between 1 and 3,650"),
        ("7", "expires_in_days must be a whole number"),
        (None, "expires_in_days must not be null"),
    ]:
        refused = root("POST", path, {"expires_in_days": value})
        assert refused.status_code == 400, value
        assert refused.get_json()["error"] == {
            "code": "invalid",
            "message": message,
            "field": "expires_in_days",
        }
    assert table_snapshot(app, frozenset({"last_used_at"})) == before  # the old key unchanged
    rotated = root("POST", path, {"expires_in_days": 7, "overlap_hours": 0})
    assert rotated.status_code == 201
    assert near(when(rotated.get_json()["expires_at"]), 7)
    never = issued(root, None)
    rotated = root("POST", f"/tenants/acme/keys/{never['key_id']}/rotate", {"expires_in_days": 2})
    assert near(when(rotated.get_json()["expires_at"]), 2)


def the_key(app: Flask, **where: Any) -> ApiKey:
    with app.app_context():
        key: ApiKey = database.session().scalars(select(ApiKey).filter_by(**where)).one()
        return key


def test_the_command_line_rotates_keeping_the_lifetime_or_as_told(
    app: Flask, root: Caller, admin_run: Run
) -> None:
    old = issued(root, 30)
    status, _, err = admin_run("rotate-key", "acme", old["key_id"])
    assert status == 0, err
    old_pk = the_key(app, key_id=old["key_id"]).id
    assert near(the_key(app, rotated_from_id=old_pk).expires_at, 30)

    other = issued(root, 30)
    refused = admin_run("rotate-key", "acme", other["key_id"], "--expires-in-days", "0")
    assert refused[0] == 2
    assert "Invalid value for '--expires-in-days': 0 is not in the range 1<=x<=3650" in refused[2]
    assert the_key(app, key_id=other["key_id"]).expires_at == when(other["expires_at"])
    status, _, err = admin_run("rotate-key", "acme", other["key_id"], "--expires-in-days", "5")
    assert status == 0, err
    other_pk = the_key(app, key_id=other["key_id"]).id
    assert near(the_key(app, rotated_from_id=other_pk).expires_at, 5)


def test_the_rotate_form_keeps_the_lifetime_when_blank_and_takes_days(
    app: Flask, root: Caller, browser: FlaskClient
) -> None:
    old = issued(root, 30)
    path = f"/tenants/acme/keys/{old['key_id']}/rotate"
    page = browser.get("/tenants/acme").get_data(as_text=True)
    assert 'name="expires_in_days"' in page

    refused = post(browser, path, {"overlap_hours": "1", "expires_in_days": "0"})
    assert refused.status_code == 400
    assert described_errors(refused.get_data(as_text=True)) == {
        "expires_in_days": "expires_in_days must be between 1 and 3,650"
    }
    assert the_key(app, key_id=old["key_id"]).expires_at == when(old["expires_at"])

    shown = post(browser, path, {"overlap_hours": "1", "expires_in_days": ""})
    assert shown.status_code == 200
    old_pk = the_key(app, key_id=old["key_id"]).id
    first = the_key(app, rotated_from_id=old_pk)
    assert near(first.expires_at, 30)
    shown = post(browser, f"/tenants/acme/keys/{first.key_id}/rotate", {"expires_in_days": "3"})
    assert shown.status_code == 200
    assert near(the_key(app, rotated_from_id=first.id).expires_at, 3)


# ---------------------------------------------------------------------------------------------
# 3. Names


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("web-1\u200b", "U+200B ZERO WIDTH SPACE at character 6"),
        ("\u200bweb-1", "U+200B ZERO WIDTH SPACE at character 1"),
        ("we\u200db", "U+200D ZERO WIDTH JOINER at character 3"),
        ("we\u200cb", "U+200C ZERO WIDTH NON-JOINER at character 3"),
        ("web\u2060", "U+2060 WORD JOINER at character 4"),
        ("web\ufeff1", "U+FEFF ZERO WIDTH NO-BREAK SPACE at character 4"),
        ("Donau\u00addampf", "U+00AD SOFT HYPHEN at character 6"),
        ("acme\u200e", "U+200E LEFT-TO-RIGHT MARK at character 5"),
        ("web\u180e", "U+180E MONGOLIAN VOWEL SEPARATOR at character 4"),
        ("web\u034f1", "U+034F COMBINING GRAPHEME JOINER at character 4"),
        ("web\ufe0f", "U+FE0F VARIATION SELECTOR-16 at character 4"),
        ("web \u3164", "U+3164 HANGUL FILLER at character 5"),
        ("web\u2800", "U+2800 BRAILLE PATTERN BLANK at character 4"),
        ("web\U000e0041", "U+E0041 TAG LATIN CAPITAL LETTER A at character 4"),
        ("\u00e9\u200c\u00e9", "U+200C ZERO WIDTH NON-JOINER at character 2"),
        ("\u0434\u200d\u0434", "U+200D ZERO WIDTH JOINER at character 2"),
        ("\u0645\u06cc\u200c", "U+200C ZERO WIDTH NON-JOINER at character 3"),
        ("caf\u00e9\ufe0f", "U+FE0F VARIATION SELECTOR-16 at character 5"),
    ],
)
def test_a_name_with_an_invisible_character_is_refused_naming_it(typed: str, found: str) -> None:
    with pytest.raises(Invalid) as refused:
        validation.name(typed, "name")
    assert refused.value.field == "name"
    assert refused.value.message == (
        "name must not contain invisible or formatting characters, which make names that look "
        f"alike differ: found {found}"
    )


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("\u200b", "U+200B ZERO WIDTH SPACE at character 1"),
        (" \u2060\ufeff ", "U+2060 WORD JOINER at character 1"),  # stripped of the spaces
        ("\u3164\u3164", "U+3164 HANGUL FILLER at character 1"),
    ],
)
def test_a_name_of_invisible_characters_alone_is_blank(typed: str, found: str) -> None:
    with pytest.raises(Invalid) as refused:
        validation.name(typed, "collector name")
    assert refused.value.message == (
        f"collector name must not be blank: it holds only invisible characters ({found})"
    )


@pytest.mark.parametrize(
    "needed",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: a non-joiner inside a word
        "\u0915\u094d\u200d\u0937",  # Devanagari: a joiner in a conjunct
        "\U0001f469\u200d\U0001f4bb ops",  # an emoji ZWJ sequence
        "\u2764\ufe0f\u200d\U0001f525 team",  # a variation selector, then a joiner
    ],
)
def test_joiners_and_selectors_a_script_or_an_emoji_needs_are_kept(needed: str) -> None:
    assert validation.name(needed, "name") == needed


def test_names_are_stored_composed_and_keep_what_shows() -> None:
    assert validation.name("cafe\u0301", "name") == "caf\u00e9"
    assert validation.name("  Ha\u0308user ", "name") == "H\u00e4user"
    for kept in ("web-1", "\u00e9cole", "\u0645\u06cc\u062e\u0648\u0627\u0647\u0645", "\u6771\u4eac",
                 "\U0001f469 ops", "a b"):  # fmt: skip
        assert validation.name(kept, "name") == kept
    assert validation.name("", "name", required=False) == ""
    with pytest.raises(Invalid, match="name must not contain bidirectional override"):
        validation.name("web\u202e1", "name")  # as before: the bidi refusal names its kind


@pytest.mark.parametrize(
    "typed",
    [
        "web\u00a01",
        "web  1",
        "web\u30001",
        "web\u202f1",
        "web \u2009 1",
        "web\u20281",
        " web\u00a0 1\u3000",
    ],
)
def test_every_run_of_spaces_in_a_name_is_one_plain_space(typed: str) -> None:
    """A page shows each of these as "web 1"; stored as typed, they would be look-alikes."""
    assert validation.name(typed, "name") == "web 1"


def test_a_name_of_spaces_alone_is_blank() -> None:
    with pytest.raises(Invalid, match="name is required"):
        validation.name("\u00a0\u3000", "name")


def test_a_collector_named_with_another_kind_of_space_is_the_same_name(
    app: Flask, root: Caller
) -> None:
    made = root(
        "POST", "/tenants/acme/collectors", {"name": "\u6771\u4eac\u3000db", "hostname": "c"}
    )
    assert made.status_code == 201
    assert made.get_json()["name"] == "\u6771\u4eac db"
    for alike in ("\u6771\u4eac db", "\u6771\u4eac\u00a0DB", "\u6771\u4eac  db"):
        refused = root("POST", "/tenants/acme/collectors", {"name": alike, "hostname": "c"})
        assert refused.status_code == 409, alike
    assert collector_names(app) == ["web1", "\u6771\u4eac db"]


def test_the_api_refuses_invisible_tenant_collector_and_user_names(
    app: Flask, root: Caller
) -> None:
    before = table_snapshot(app, frozenset({"last_used_at"}))
    for method, path, body in [
        ("POST", "/tenants", {"slug": "beta", "name": "\u200b"}),
        ("PATCH", "/tenants/acme", {"name": "Acme\u200b"}),
        ("POST", "/tenants/acme/collectors", {"name": "web1\u200b", "hostname": "web1"}),
        ("POST", "/users", {"email": "eve@example.test", "password": "a reasonable passphrase",
                            "name": "Eve\u2060"}),
    ]:  # fmt: skip
        refused = root(method, path, body)
        assert refused.status_code == 400, path
        error = refused.get_json()["error"]
        assert error["field"] == "name"
        assert "U+200B ZERO WIDTH SPACE" in error["message"] or "U+2060" in error["message"]
    assert table_snapshot(app, frozenset({"last_used_at"})) == before


def test_look_alike_collector_names_are_one_name(app: Flask, root: Caller) -> None:
    made = root("POST", "/tenants/acme/collectors", {"name": "cafe\u0301", "hostname": "c"})
    assert made.status_code == 201
    assert made.get_json()["name"] == "caf\u00e9"
    for name in ("caf\u00e9", "CAF\u00c9", "Cafe\u0301", "WEB1"):
        refused = root("POST", "/tenants/acme/collectors", {"name": name, "hostname": "c"})
        assert refused.status_code == 409, name
        assert refused.get_json()["error"]["field"] == "name"
    assert root("POST", "/tenants/acme/collectors", {"name": "WEB1", "hostname": "c"}).get_json()[
        "error"
    ]["message"] == (
        "this tenant already has a collector named 'web1' (names that differ only in case are "
        "the same name)"
    )
    assert collector_names(app) == ["caf\u00e9", "web1"]
    # another tenant may use the name
    root("POST", "/tenants", {"slug": "beta", "name": "Beta"})
    assert (
        root("POST", "/tenants/beta/collectors", {"name": "WEB1", "hostname": "c"}).status_code
        == 201
    )


def test_rows_stored_before_the_rules_keep_working(
    app: Flask, root: Caller, browser: FlaskClient, admin_run: Run
) -> None:
    """Existing names are checked only when written: a tenant named with a zero width space, a
    collector named with one and one stored decomposed (NFD) are listed, shown, keyed and
    disabled as before; a new collector whose name matches the decomposed one is still taken."""
    acme = row_id(app, Tenant, slug="acme")
    with app.app_context():
        db = database.session()
        db.get(Tenant, acme).name = "Acme\u200b"  # type: ignore[union-attr]
        for name in ("legacy\u200b", "cafe\u0301"):
            db.add(Collector(tenant_id=acme, name=name, hostname="old"))
        db.commit()
    listed = root("GET", "/tenants/acme/collectors").get_json()["collectors"]
    assert [c["name"] for c in listed] == ["cafe\u0301", "legacy\u200b", "web1"]
    assert root("GET", "/tenants/acme").get_json()["name"] == "Acme\u200b"
    assert browser.get("/tenants/acme").status_code == 200
    legacy = row_id(app, Collector, name="legacy\u200b")
    assert browser.get(f"/tenants/acme/collectors/{legacy}").status_code == 200
    keyed = root("POST", "/tenants/acme/keys", {"collector_id": legacy})
    assert keyed.status_code == 201
    status, _, err = admin_run("issue-key", "acme", "legacy\u200b")
    assert status == 0, err
    status, _, err = admin_run("issue-key", "acme", "caf\u00e9")  # typed composed: found
    assert status == 0, err
    disabled = root("PATCH", f"/tenants/acme/collectors/{legacy}", {"status": "disabled"})
    assert disabled.status_code == 200
    taken = root("POST", "/tenants/acme/collectors", {"name": "CAF\u00c9", "hostname": "c"})
    assert taken.status_code == 409
    assert taken.get_json()["error"]["message"].startswith(
        "this tenant already has a collector named 'cafe\u0301'"
    )
    renamed = root("PATCH", "/tenants/acme", {"name": "Acme"})
    assert renamed.status_code == 200
    assert renamed.get_json()["name"] == "Acme"


def test_the_demo_and_test_helpers_names_still_pass(app: Flask) -> None:
    """ingest/testing.py and make up name collectors after hosts; the rule changes nothing there."""
    with app.app_context():
        db = database.session()
        from tenants.collectors import register_collector
        from tenants.tenancy import NoStorage, create_tenant

        tenant = create_tenant(
            db, system_actor(), "t1", "T1", NoStorage(), app.extensions["pa_vault"]
        )
        collector = register_collector(db, system_actor(), tenant, {"name": "host-1.example",
                                                                    "hostname": "host-1.example"})  # fmt: skip
        key = issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"])
        assert key.key.expires_at is None


# ---------------------------------------------------------------------------------------------
# 5. What revoking and disabling say


def test_revoking_and_disabling_say_when_other_workers_refuse(
    app: Flask, browser: FlaskClient
) -> None:
    paths = document()["paths"]
    revoke_key = paths["/tenants/{slug}/keys/{key_id}/revoke"]["post"]["summary"]
    assert "at once" not in revoke_key
    assert "within key-cache-seconds (2 s by default, at most 5)" in revoke_key
    revoke_token = paths["/me/tokens/{token_id}"]["delete"]["summary"]
    assert "within key-cache-seconds (2 s by default, at most 5) by the others" in revoke_token
    users = browser.get("/users").get_data(as_text=True)
    assert "stops their logins at once" not in users
    assert (
        "at once on the server process that makes the change and within 2 s "
        "(key-cache-seconds) on the others"
    ) in users


def test_ingest_says_a_missing_database_may_be_a_deleted_tenants(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ingest.errors import IngestError
    from ingest.storage import classify
    from tests.unit.test_ingest_ops_fixes import NOW_NS, Writer, body, identity, service
    from tests.unit.test_ingest_ops_fixes import messages as logged

    writes = service(Writer(classify(404, '{"error":"database not found: \\"pa_acme\\""}')))
    with pytest.raises(IngestError):
        writes.write(identity(), "ns", body(3), NOW_NS)
    [(_, message)] = logged(caplog)
    assert "the database is missing: the tenant may have been deleted in the last " in message
    assert "key-cache-seconds" in message
    assert "else create it with perfanalysis admin provision-storage acme" in message
