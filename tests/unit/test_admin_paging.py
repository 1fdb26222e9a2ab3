"""Lists a page at a time: every item once and in order, cursors checked, pages scoped by tenant."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from tenants import db as database
from tenants.models import ApiKey
from tenants.paging import Order, encode_cursor
from tests.conftest import Caller, issue_test_token

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def callers(app: Flask, client: FlaskClient, make_user: Any, make_tenant: Any) -> dict[str, Caller]:
    make_user("root@example.test", platform_admin=True)
    make_tenant("acme", {"boss@acme.test": "admin", "vic@acme.test": "viewer"})
    make_tenant("other", {"out@other.test": "admin"})
    return {
        name: Caller(client, issue_test_token(app, f"{name}@{domain}"))
        for name, domain in [("root", "example.test"), ("boss", "acme.test"),
                             ("vic", "acme.test"), ("out", "other.test")]
    }  # fmt: skip


def _register(caller: Caller, slug: str, *names: str) -> None:
    for name in names:
        made = caller("POST", f"/tenants/{slug}/collectors", {"name": name, "hostname": name})
        assert made.status_code == 201, made.get_data(as_text=True)


def _walk(caller: Caller, path: str, name: str) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list, following ``next_cursor``; checks the Link header on the way."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        response = caller("GET", path)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        items.extend(body[name])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            assert "Link" not in response.headers
            return items, pages
        link = response.headers["Link"]
        assert link.startswith("<")
        assert link.endswith('>; rel="next"')
        address = urlsplit(link[1 : -len('>; rel="next"')])
        assert address.path.startswith("/api/v1/")
        assert f"cursor={cursor}" in address.query
        path = address.path.removeprefix("/api/v1") + "?" + address.query


def _error_field(response: Any) -> str | None:
    assert response.status_code == 400, response.get_data(as_text=True)
    field: str | None = response.get_json()["error"].get("field")
    return field


def test_collectors_come_a_page_at_a_time_each_once_by_name(callers: dict[str, Caller]) -> None:
    names = [f"host-{n:02d}" for n in (7, 3, 11, 1, 5, 9, 2)]
    _register(callers["boss"], "acme", *names)
    _register(callers["out"], "other", "host-00", "host-04")
    items, pages = _walk(callers["vic"], "/tenants/acme/collectors?limit=3", "collectors")
    assert [item["name"] for item in items] == sorted(names)
    assert pages == 3
    whole = callers["vic"]("GET", "/tenants/acme/collectors").get_json()
    assert [item["name"] for item in whole["collectors"]] == sorted(names)
    assert whole["next_cursor"] is None


def test_a_collector_added_between_pages_is_neither_skipped_nor_repeated(
    callers: dict[str, Caller],
) -> None:
    _register(callers["boss"], "acme", "b", "d", "f")
    first = callers["vic"]("GET", "/tenants/acme/collectors?limit=2").get_json()
    assert [item["name"] for item in first["collectors"]] == ["b", "d"]
    _register(callers["boss"], "acme", "a", "e")
    cursor = first["next_cursor"]
    rest = callers["vic"]("GET", f"/tenants/acme/collectors?limit=2&cursor={cursor}").get_json()
    assert [item["name"] for item in rest["collectors"]] == ["e", "f"]


def _register_hosts(caller: Caller, *collectors: tuple[str, str]) -> None:
    for name, hostname in collectors:
        made = caller("POST", "/tenants/acme/collectors", {"name": name, "hostname": hostname})
        assert made.status_code == 201


def _searcher(caller: Caller) -> Callable[[str], list[str]]:
    """The names of acme's collectors that a search for a text finds."""

    def found(query: str) -> list[str]:
        response = caller("GET", f"/tenants/acme/collectors?q={quote(query)}")
        return [item["name"] for item in response.get_json()["collectors"]]

    return found


def test_collectors_are_found_by_part_of_name_or_hostname(callers: dict[str, Caller]) -> None:
    _register_hosts(
        callers["boss"], ("Web-1", "web1.eu"), ("db-1", "db1.eu"), ("50%_off", "promo.us")
    )
    found = _searcher(callers["vic"])
    assert found("WEB") == ["Web-1"]
    assert found(".eu") == ["Web-1", "db-1"]
    assert found("%_") == ["50%_off"]  # % and _ are literal, not wildcards
    assert found("_") == ["50%_off"]
    assert found("nothing") == []


def test_collector_search_ignores_the_case_of_every_letter(callers: dict[str, Caller]) -> None:
    """Not only ASCII's: SQLite's own lower() leaves Ä as it is."""
    _register_hosts(callers["boss"], ("Büro-Ärzte", "praxis1.de"), ("ÉCOLE-3", "ecole3.fr"))
    found = _searcher(callers["vic"])
    assert found("büro-ärzte") == ["Büro-Ärzte"]
    assert found("BÜRO") == ["Büro-Ärzte"]
    assert found("école") == ["ÉCOLE-3"]
    assert found("ärzte") == ["Büro-Ärzte"]
    assert found("u") == []  # folding case is not stripping accents


def test_keys_with_the_same_creation_time_are_paged_by_id(
    app: Flask, callers: dict[str, Caller]
) -> None:
    _register(callers["boss"], "acme", "web1")
    collector_id = callers["vic"]("GET", "/tenants/acme/collectors").get_json()["collectors"][0][
        "id"
    ]
    for _ in range(5):
        issued = callers["boss"]("POST", "/tenants/acme/keys", {"collector_id": collector_id})
        assert issued.status_code == 201
    with app.app_context():
        db = database.session()
        db.execute(update(ApiKey).values(created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        db.commit()
    items, pages = _walk(callers["vic"], "/tenants/acme/keys?limit=2", "keys")
    assert pages == 3
    ids = [item["key_id"] for item in items]
    assert len(set(ids)) == 5
    every = callers["vic"]("GET", "/tenants/acme/keys?limit=1000").get_json()["keys"]
    assert ids == [item["key_id"] for item in every]


def _collector_ids(caller: Caller, slug: str) -> dict[str, int]:
    listed = caller("GET", f"/tenants/{slug}/collectors").get_json()["collectors"]
    return {item["name"]: item["id"] for item in listed}


def test_one_collectors_keys_are_paged_apart(callers: dict[str, Caller]) -> None:
    _register(callers["boss"], "acme", "web1", "web2")
    _register(callers["out"], "other", "db1")
    ids = _collector_ids(callers["vic"], "acme")
    for name, count in (("web1", 5), ("web2", 2)):
        for _ in range(count):
            issued = callers["boss"]("POST", "/tenants/acme/keys", {"collector_id": ids[name]})
            assert issued.status_code == 201
    items, pages = _walk(
        callers["vic"], f"/tenants/acme/keys?collector_id={ids['web1']}&limit=2", "keys"
    )
    assert pages == 3  # the Link header and cursors keep the collector
    assert len({item["key_id"] for item in items}) == 5
    assert {item["collector_id"] for item in items} == {ids["web1"]}
    web2 = callers["vic"]("GET", f"/tenants/acme/keys?collector_id={ids['web2']}").get_json()
    assert [item["collector_id"] for item in web2["keys"]] == [ids["web2"]] * 2


def test_another_tenants_collector_names_no_keys(callers: dict[str, Caller]) -> None:
    _register(callers["boss"], "acme", "web1")
    _register(callers["out"], "other", "db1")
    theirs = _collector_ids(callers["out"], "other")["db1"]
    issued = callers["out"]("POST", "/tenants/other/keys", {"collector_id": theirs})
    assert issued.status_code == 201
    refused = callers["boss"]("GET", f"/tenants/acme/keys?collector_id={theirs}")
    assert refused.status_code == 404
    assert refused.get_json()["error"]["field"] == "collector_id"
    assert "keys" not in refused.get_json()
    outsider = callers["out"]("GET", f"/tenants/acme/keys?collector_id={theirs}")
    assert outsider.status_code == 404


@pytest.mark.parametrize("value", ["0", "x", "-1", "99999999999", "1.5"])
def test_a_bad_collector_id_filter_is_a_400_naming_it(
    callers: dict[str, Caller], value: str
) -> None:
    refused = callers["vic"]("GET", f"/tenants/acme/keys?collector_id={value}")
    assert _error_field(refused) == "collector_id"


def test_members_users_and_tenants_are_paged(callers: dict[str, Caller], make_tenant: Any) -> None:
    make_tenant("beta", {f"m{n}@beta.test": "viewer" for n in range(5)})
    members, pages = _walk(callers["root"], "/tenants/beta/members?limit=2", "members")
    assert [m["email"] for m in members] == [f"m{n}@beta.test" for n in range(5)]
    assert pages == 3
    users, _ = _walk(callers["root"], "/users?limit=3", "users")
    emails = [u["email"] for u in users]
    assert emails == sorted(emails)
    assert len(emails) == 9
    tenants, pages = _walk(callers["root"], "/tenants?limit=1", "tenants")
    assert [t["slug"] for t in tenants] == ["acme", "beta", "other"]
    assert pages == 3


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        "AAAA",  # base64 of bytes that are not JSON
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),  # not a list
        encode_cursor(("a", "b")),  # two values for a one-column order
        encode_cursor((5,)),  # a number for a name
        "x" * 600,
    ],
)
def test_a_cursor_this_list_did_not_give_out_is_a_400_naming_it(
    callers: dict[str, Caller], cursor: str
) -> None:
    response = callers["vic"]("GET", f"/tenants/acme/collectors?cursor={cursor}")
    assert _error_field(response) == "cursor"


@pytest.mark.parametrize(
    "values",
    [
        ["2026-01-01T00:00:00", 1],  # a time without its offset
        ["2026-13-01T00:00:00+00:00", 1],
        ["0001-01-01T00:00:00+01:00", 1],  # before the first UTC moment
        ["2026-01-01T00:00:00+00:00", -1],
        ["2026-01-01T00:00:00+00:00", 2**63],
        ["2026-01-01T00:00:00+00:00", True],
        ["2026-01-01T00:00:00+00:00", 1.5],
    ],
)
def test_a_keys_cursor_with_a_bad_time_or_id_is_a_400(
    callers: dict[str, Caller], values: list[Any]
) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
    assert _error_field(callers["vic"]("GET", f"/tenants/acme/keys?cursor={cursor}")) == "cursor"


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "x", "1e3"])
def test_a_limit_out_of_range_is_a_400_naming_it(callers: dict[str, Caller], limit: str) -> None:
    assert _error_field(callers["vic"]("GET", f"/tenants/acme/keys?limit={limit}")) == "limit"


def test_another_tenants_list_is_not_found_with_or_without_a_cursor(
    callers: dict[str, Caller],
) -> None:
    _register(callers["boss"], "acme", "a1", "a2", "a3")
    _register(callers["out"], "other", "a0", "a4", "zz")
    cursor = callers["vic"]("GET", "/tenants/acme/collectors?limit=1").get_json()["next_cursor"]
    for path in ("collectors", "keys", "members"):
        for query in ("", f"?cursor={cursor}", "?limit=1"):
            refused = callers["vic"]("GET", f"/tenants/other/{path}{query}")
            assert refused.status_code == 404, (path, query)
    # a cursor only says where to start: the list stays the caller's own tenant's
    theirs = callers["out"]("GET", f"/tenants/other/collectors?cursor={cursor}").get_json()
    assert [item["name"] for item in theirs["collectors"]] == ["a4", "zz"]


def test_only_platform_admins_page_through_users(callers: dict[str, Caller]) -> None:
    assert callers["boss"]("GET", "/users?limit=1").status_code == 403


def test_a_cursor_keeps_a_times_microseconds_and_offset() -> None:
    order = Order((ApiKey.created_at, ApiKey.id), descending=True)
    moment = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    assert order.decode(encode_cursor((moment, 42))) == (moment, 42)
