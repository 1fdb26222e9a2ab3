"""Fixes from the admin API audit: a value given but too short says how long it must be (and the
API holds e-mail addresses to the app's one rule), a load test cannot finish in the future, the
load-test list's unknown collector is a 404 like the keys list's, and a cursor is refused by
every list but the kind it came from."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tenants import openapi, validation
from tenants.crypto import password_problem
from tenants.errors import Invalid
from tenants.loadtests.contract import FUTURE_SLACK, check
from tenants.models import utcnow
from tests.conftest import PASSWORD, Caller, issue_test_token, login
from tests.unit.test_loadtests_support import (
    ADMIN,
    ANALYST,
    OUTSIDER,
    World,
    build_world,
    document,
    run_ids,
)

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ROOT = "root@example.test"


def _refused(response: TestResponse, status: int, field: str) -> str:
    """The refusal's message, after checking its status and the field it names."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error.get("field") == field, error
    message: str = error["message"]
    return message


@pytest.fixture
def root(app: Flask, client: FlaskClient, make_user: Any) -> Caller:
    make_user(ROOT, platform_admin=True)
    return Caller(client, issue_test_token(app, ROOT))


# ---- a value given but too short, and the one e-mail rule ---------------------------------------


def test_a_too_short_password_says_what_the_cli_and_pages_say(root: Caller) -> None:
    refused = root("POST", "/users", {"email": "dana@example.test", "password": "short"})
    assert _refused(refused, 400, "password") == "password must be at least 12 characters"
    assert _refused(refused, 400, "password") == password_problem("short")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "", "password": PASSWORD}, "email"),
        ({"password": PASSWORD}, "email"),
        ({"email": "dana@example.test", "password": ""}, "password"),
        ({"email": "dana@example.test"}, "password"),
    ],
)
def test_an_empty_or_missing_value_is_still_required(
    root: Caller, body: dict[str, Any], field: str
) -> None:
    assert _refused(root("POST", "/users", body), 400, field) == f"{field} is required"


def test_the_schema_check_names_the_minimum_length_of_any_string() -> None:
    schema = {"type": "object", "properties": {"word": {"type": "string", "minLength": 3}}}
    openapi.REQUEST_SCHEMAS["_Probe"] = schema
    try:
        with pytest.raises(Invalid) as refused:
            openapi.check_body("_Probe", {"word": "ab"})
        assert refused.value.message == "word must be at least 3 characters"
        with pytest.raises(Invalid) as empty:
            openapi.check_body("_Probe", {"word": ""})
        assert empty.value.message == "word is required"
    finally:
        del openapi.REQUEST_SCHEMAS["_Probe"]


def test_a_short_address_the_cli_and_pages_accept_is_accepted_by_the_api(root: Caller) -> None:
    assert validation.email("a@b.c") == "a@b.c"  # the rule the command line and pages apply
    created = root("POST", "/users", {"email": "a@b.c", "password": PASSWORD})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["email"] == "a@b.c"


def test_the_api_publishes_and_applies_the_apps_own_e_mail_rule() -> None:
    assert openapi.EMAIL["pattern"] == validation.EMAIL_PATTERN
    assert openapi.EMAIL["maxLength"] == validation.MAX_EMAIL_LENGTH
    assert openapi.EMAIL["minLength"] == 1


@pytest.mark.parametrize(
    "address",
    [
        "a@b.c",
        "dana@example.test",
        "d\u00fcrer@m\u00fcnchen.de",
        "a\ufeff@b.cd",  # an invisible zero width no-break space
        "\ufeffa@b.cd",
        "a\u00a0b@c.de",  # a no-break space
        "a\u3000b@c.de",
        "a\u2028b@c.de",
        "a b@c.de",
        "a\tb@c.de",
        "a\x1fb@c.de",
        "a@b",
        "@b.cd",
        "a@@b.cd",
        "a@b.",
        "x" * 65 + "@b.cd",
        "x" * 64 + "@b.cd",
        "a@" + "b" * 190 + ".cd",
        "a@b." + "c" * 64,
    ],
)
def test_the_api_and_the_app_accept_and_refuse_the_same_addresses(address: str) -> None:
    def refusal(check: Any, *arguments: Any) -> str | None:
        """The field a check refuses, or None when it accepts."""
        try:
            check(*arguments)
        except Invalid as refused:
            return refused.field or "?"
        return None

    by_app = refusal(validation.email, address)
    by_api = refusal(openapi.check_body, "UserCreate", {"email": address, "password": PASSWORD})
    assert by_app == by_api
    assert by_api in (None, "email")


def test_an_address_with_an_invisible_no_break_space_is_refused_everywhere(root: Caller) -> None:
    with pytest.raises(Invalid):
        validation.email("dana\ufeff@example.test")
    refused = root("POST", "/users", {"email": "dana\ufeff@example.test", "password": PASSWORD})
    _refused(refused, 400, "email")


# ---- a load test that finishes in the future ---------------------------------------------------


def _stamp(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_result_finishing_in_the_future_is_refused_as_one_starting_there_is() -> None:
    far = {
        **document(),
        "started_at": "2026-05-01T00:00:00Z",
        "finished_at": "9999-12-31T23:59:59Z",
    }
    with pytest.raises(Invalid) as refused:
        check(far)
    assert (refused.value.message, refused.value.field) == (
        "/finished_at is in the future",
        "/finished_at",
    )
    beyond = utcnow() + FUTURE_SLACK + timedelta(minutes=5)
    with pytest.raises(Invalid) as also:
        check({**document(), "started_at": _stamp(utcnow()), "finished_at": _stamp(beyond)})
    assert also.value.field == "/finished_at"


def test_a_finish_within_the_clock_skew_a_start_may_have_is_accepted() -> None:
    soon = utcnow() + FUTURE_SLACK - timedelta(minutes=5)
    result = check({**document(), "started_at": _stamp(soon - timedelta(minutes=1)),
                    "finished_at": _stamp(soon)})  # fmt: skip
    assert result.finished_at == soon.replace(microsecond=0)


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def test_the_api_refuses_a_future_finish_and_stores_nothing(
    app: Flask, client: FlaskClient, world: World
) -> None:
    analyst = Caller(client, issue_test_token(app, ANALYST))
    body = {
        **document(),
        "started_at": "2026-05-01T00:00:00Z",
        "finished_at": "9999-12-31T23:59:59Z",
    }
    refused = analyst("POST", "/tenants/a/loadtests", body)
    assert _refused(refused, 400, "/finished_at") == "/finished_at is in the future"
    assert run_ids(app, "a") == []


# ---- the load-test list's collector --------------------------------------------------------------


def test_the_load_test_list_of_a_collector_not_in_the_tenant_is_a_404_like_the_keys_list(
    app: Flask, client: FlaskClient, world: World
) -> None:
    boss = Caller(client, issue_test_token(app, OUTSIDER))  # tenant b's admin
    theirs = boss("GET", f"/tenants/b/loadtests?collector_id={world.collector_a}")
    missing = boss("GET", "/tenants/b/loadtests?collector_id=999999")
    keys = boss("GET", "/tenants/b/keys?collector_id=999999")
    _refused(theirs, 404, "collector_id")
    _refused(missing, 404, "collector_id")
    # another tenant's collector and none at all answer alike, and as the keys list does
    assert theirs.get_json() == missing.get_json() == keys.get_json()
    own = boss("GET", f"/tenants/b/loadtests?collector_id={world.collector_b}")
    assert own.status_code == 200
    assert own.get_json() == {"loadtests": [], "next_cursor": None}
    admin = Caller(client, issue_test_token(app, ADMIN))
    assert admin("GET", f"/tenants/a/loadtests?collector_id={world.collector_a}").status_code == 200


# ---- cursors belong to their kind of list --------------------------------------------------------

LISTS = {
    "tenants": "/tenants",
    "members": "/tenants/acme/members",
    "invitations": "/tenants/acme/invitations",
    "users": "/users",
    "collectors": "/tenants/acme/collectors",
    "keys": "/tenants/acme/keys",
}


@pytest.fixture
def cursors(root: Caller, make_tenant: Any) -> dict[str, str]:
    """The first page's next_cursor of each paged list (two items or more in each)."""
    make_tenant("acme", {"boss@acme.test": "admin", "vic@acme.test": "viewer"})
    make_tenant("beta")
    for name in ("web1", "web2"):
        made = root("POST", "/tenants/acme/collectors", {"name": name, "hostname": name})
        assert made.status_code == 201, made.get_data(as_text=True)
        issued = root("POST", "/tenants/acme/keys", {"collector_id": made.get_json()["id"]})
        assert issued.status_code == 201, issued.get_data(as_text=True)
    for email in ("new1@acme.test", "new2@acme.test"):
        invited = root("POST", "/tenants/acme/invitations", {"email": email, "role": "viewer"})
        assert invited.status_code == 201, invited.get_data(as_text=True)
    found = {}
    for name, path in LISTS.items():
        page = root("GET", f"{path}?limit=1")
        assert page.status_code == 200, page.get_data(as_text=True)
        found[name] = page.get_json()["next_cursor"]
        assert found[name], name
    return found


@pytest.mark.parametrize("given", list(LISTS))
@pytest.mark.parametrize("used_on", list(LISTS))
def test_a_cursor_is_refused_by_every_other_list(
    root: Caller, cursors: dict[str, str], given: str, used_on: str
) -> None:
    response = root("GET", f"{LISTS[used_on]}?limit=1&cursor={cursors[given]}")
    if given == used_on:
        assert response.status_code == 200, response.get_data(as_text=True)
    else:
        message = _refused(response, 400, "cursor")
        assert message == "cursor is not one this list gave out: start again without it"


def test_a_cursor_from_before_lists_were_told_apart_is_refused(
    root: Caller, cursors: dict[str, str]
) -> None:
    untagged = base64.urlsafe_b64encode(json.dumps(["boss@acme.test"]).encode()).decode()
    _refused(root("GET", f"/tenants/acme/members?cursor={untagged.rstrip('=')}"), 400, "cursor")


def test_the_pages_refuse_another_lists_cursor(
    app: Flask, root: Caller, cursors: dict[str, str]
) -> None:
    browser = app.test_client()
    login(browser, ROOT)
    assert browser.get(f"/tenants/acme?members={cursors['members']}").status_code == 200
    assert browser.get(f"/tenants/acme?members={cursors['collectors']}").status_code == 400
    assert browser.get(f"/tenants?cursor={cursors['members']}").status_code == 400


def test_a_list_takes_back_the_longest_cursor_it_gives_out(root: Caller, make_tenant: Any) -> None:
    """A cursor holds the last key shown: a 200-character name or a 254-character address, of
    characters up to 4 bytes long, still makes a cursor the list accepts."""
    wide = "\U0001f600"  # 4 bytes in UTF-8
    for slug in ("a-wide", "b-wide"):
        made = root("POST", "/tenants", {"slug": slug, "name": wide * 199 + slug[0]})
        assert made.status_code == 201, made.get_data(as_text=True)
    address = wide * 64 + "@" + wide * 185 + "." + wide * 3
    assert len(address) == validation.MAX_EMAIL_LENGTH
    for email in (address, "z" + address[1:]):
        made = root("POST", "/users", {"email": email, "password": PASSWORD})
        assert made.status_code == 201, made.get_data(as_text=True)
    for path, name in (("/tenants", "tenants"), ("/users", "users")):
        seen, cursor = 0, None
        while True:
            page = root("GET", f"{path}?limit=1" + (f"&cursor={cursor}" if cursor else ""))
            assert page.status_code == 200, page.get_data(as_text=True)
            seen += len(page.get_json()[name])
            cursor = page.get_json()["next_cursor"]
            if cursor is None:
                break
        assert seen >= 2
