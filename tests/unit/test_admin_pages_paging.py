"""Large tenants on the pages: a page of each list at a time, counts of the whole, a search."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.collectors import register_collector
from tenants.keys import issue_key
from tenants.models import ApiKey, Collector, utcnow
from tenants.views.pages import PAGE_ROWS
from tests.conftest import csrf, login

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ADMIN, VIEWER, OUTSIDER = "boss@a.test", "vic@a.test", "boss@b.test"
HOSTS = PAGE_ROWS + 12


@pytest.fixture
def big(app: Flask, make_tenant: Any) -> None:
    """Tenant a with HOSTS collectors (ten of them reporting), a key each; tenant b with one."""
    make_tenant("a", {ADMIN: "admin", VIEWER: "viewer"})
    make_tenant("b", {OUTSIDER: "admin"})
    with app.app_context():
        db = database.session()
        for slug, count in (("a", HOSTS), ("b", 1)):
            tenant = tenant_for(db, system_actor(), slug)
            for n in range(count):
                fields = {"name": f"{slug}-host-{n:03d}", "hostname": f"h{n}.{slug}.test"}
                collector = register_collector(db, system_actor(), tenant, fields)
                issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"], "")
        db.execute(
            update(Collector)
            .where(Collector.name < "a-host-010")
            .values(last_seen_at=utcnow() - timedelta(minutes=1))
        )
        db.commit()


def _client(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    login(client, email)
    return client


def _section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}"')
    return page[start : page.index("</section>", start)]


def _next_link(section: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', section)
    return found.group(1).replace("&amp;", "&") if found else None


def _collector_names(section: str) -> list[str]:
    return re.findall(r">(a-host-\d{3})</a></td>", section)


def test_the_overview_counts_everything_and_shows_a_page_of_each_list(
    app: Flask, big: None
) -> None:
    page = _client(app, VIEWER).get("/tenants/a").get_data(as_text=True)
    stats = re.findall(r"<li><strong>([\d,]+)</strong> ([a-z ]+)</li>", page)
    assert stats == [
        (str(HOSTS), "collectors"), ("10", "reporting"), (str(HOSTS), "active keys"),
        ("2", "members"),
    ]  # fmt: skip
    collectors = _section(page, "collectors")
    assert _collector_names(collectors) == [f"a-host-{n:03d}" for n in range(PAGE_ROWS)]
    assert len(re.findall(r'<tr id="key-', _section(page, "keys"))) == PAGE_ROWS
    assert _next_link(_section(page, "members")) is None


def test_next_page_links_walk_each_list_once(app: Flask, big: None) -> None:
    client = _client(app, ADMIN)
    seen: list[str] = []
    address: str | None = "/tenants/a"
    pages = 0
    while address:
        response = client.get(address)
        assert response.status_code == 200
        collectors = _section(response.get_data(as_text=True), "collectors")
        assert ("First page" in collectors) == (pages > 0)
        seen.extend(_collector_names(collectors))
        address = _next_link(collectors)
        pages += 1
    assert pages == 2
    assert seen == [f"a-host-{n:03d}" for n in range(HOSTS)]
    last = client.get("/tenants/a").get_data(as_text=True)
    keys_link = _next_link(_section(last, "keys"))
    assert keys_link is not None
    rest = client.get(keys_link).get_data(as_text=True)
    assert len(re.findall(r'<tr id="key-', _section(rest, "keys"))) == HOSTS - PAGE_ROWS
    assert "First page" in _section(rest, "keys")
    assert _next_link(_section(rest, "keys")) is None


def test_the_collector_search_finds_by_name_or_hostname_and_is_kept_across_pages(
    app: Flask, big: None
) -> None:
    client = _client(app, VIEWER)
    page = client.get("/tenants/a?q=HOST-00").get_data(as_text=True)
    assert _collector_names(_section(page, "collectors")) == [f"a-host-00{n}" for n in range(10)]
    assert 'value="HOST-00"' in page
    assert _collector_names(_section(client.get("/tenants/a?q=h61.a").get_data(as_text=True),
                                     "collectors")) == ["a-host-061"]  # fmt: skip
    everything = client.get("/tenants/a?q=.a.test").get_data(as_text=True)
    following = _next_link(_section(everything, "collectors"))
    assert following is not None
    assert "q=.a.test" in following
    rest = _collector_names(_section(client.get(following).get_data(as_text=True), "collectors"))
    assert rest == [f"a-host-{n:03d}" for n in range(PAGE_ROWS, HOSTS)]
    none = client.get("/tenants/a?q=<b>nothing").get_data(as_text=True)
    assert "contains “&lt;b&gt;nothing”" in none


def test_a_collectors_keys_come_a_page_at_a_time(app: Flask, big: None) -> None:
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "a")
        collector = db.scalars(select(Collector).where(Collector.name == "a-host-000")).one()
        for _ in range(PAGE_ROWS + 2):  # and the one it has: PAGE_ROWS + 3
            issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"], "")
        address = f"/tenants/a/collectors/{collector.id}"
        theirs = db.scalars(select(Collector.id).where(Collector.name == "b-host-000")).one()
    client = _client(app, VIEWER)
    first = _section(client.get(address).get_data(as_text=True), "keys")
    assert len(re.findall(r'<tr id="key-', first)) == PAGE_ROWS
    assert "First page" not in first
    following = _next_link(first)
    assert following is not None
    assert following.startswith(address + "?keys=")
    rest = _section(client.get(following).get_data(as_text=True), "keys")
    assert len(re.findall(r'<tr id="key-', rest)) == 3
    assert "First page" in rest
    assert _next_link(rest) is None
    shown = set(re.findall(r'<tr id="key-([^"]+)"', first + rest))
    with app.app_context():
        own = set(
            database.session().scalars(
                select(ApiKey.key_id).where(ApiKey.collector_id == collector.id)
            )
        )
    assert shown == own
    cursor = following.split("keys=")[1].split("#")[0]
    outsider = _client(app, OUTSIDER)
    assert outsider.get(f"{address}?keys={cursor}").status_code == 404
    assert outsider.get(f"/tenants/b/collectors/{collector.id}?keys={cursor}").status_code == 404
    other = outsider.get(f"/tenants/b/collectors/{theirs}?keys={cursor}").get_data(as_text=True)
    assert len(re.findall(r'<tr id="key-', _section(other, "keys"))) == 1


def test_a_bad_cursor_is_a_400_page(app: Flask, big: None) -> None:
    client = _client(app, VIEWER)
    for query in ("collectors=zzz", "keys=WyJ4Il0", "members=!!", "cursor=%00"):
        path = "/tenants?" + query if query.startswith("cursor") else "/tenants/a?" + query
        response = client.get(path)
        assert response.status_code == 400, path
        assert "is not one this list gave out" in response.get_data(as_text=True)


def test_another_tenants_pages_are_not_found_with_a_cursor(app: Flask, big: None) -> None:
    cursor_page = _client(app, VIEWER).get("/tenants/a").get_data(as_text=True)
    following = _next_link(_section(cursor_page, "collectors"))
    assert following is not None
    cursor = following.split("collectors=")[1].split("#")[0]
    outsider = _client(app, OUTSIDER)
    assert outsider.get(f"/tenants/a?collectors={cursor}").status_code == 404
    own = outsider.get(f"/tenants/b?collectors={cursor}").get_data(as_text=True)
    assert "a-host" not in own


def test_the_tenants_list_pages(app: Flask, make_user: Any, make_tenant: Any) -> None:
    make_user("root@platform.test", platform_admin=True)
    for n in range(PAGE_ROWS + 3):
        make_tenant(f"t{n:03d}")
    client = _client(app, "root@platform.test")
    first = client.get("/tenants").get_data(as_text=True)
    assert len(re.findall(r"<td><code>t\d{3}</code></td>", first)) == PAGE_ROWS
    following = _next_link(first)
    assert following is not None
    second = client.get(following).get_data(as_text=True)
    assert re.findall(r"<td><code>(t\d{3})</code></td>", second) == [
        f"t{n:03d}" for n in range(PAGE_ROWS, PAGE_ROWS + 3)
    ]
    assert _next_link(second) is None


def _return_to(section: str, action: str) -> str:
    """Where the row form posting to ``action`` asks to return."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', section, re.S)
    assert form is not None, action
    found = re.search(r'name="return_to" value="([^"]+)"', form[0])
    assert found is not None
    return html.unescape(found[1])


def _place(address: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(address)
    return parts.path, parse_qs(parts.query)


def _collector_id(app: Flask, name: str) -> int:
    with app.app_context():
        found = database.session().scalar(select(Collector.id).where(Collector.name == name))
    assert found is not None
    return found


def test_disabling_a_collector_found_on_a_later_page_of_a_search_returns_there(
    app: Flask, big: None
) -> None:
    client = _client(app, ADMIN)
    searched = client.get("/tenants/a?q=.a.test").get_data(as_text=True)
    later = _next_link(_section(searched, "collectors"))
    assert later is not None
    action = f"/tenants/a/collectors/{_collector_id(app, 'a-host-055')}/disable"
    return_to = _return_to(_section(client.get(later).get_data(as_text=True), "collectors"), action)
    assert _place(return_to) == _place(later)
    disabled = client.post(action, data={"return_to": return_to, "csrf_token": csrf(client)})
    assert disabled.status_code == 303
    assert _place(disabled.location) == _place(later)
    assert urlsplit(disabled.location).fragment == "collectors"
    page = client.get(disabled.location).get_data(as_text=True)
    assert "Collector a-host-055 disabled" in page
    assert 'value=".a.test"' in page
    collectors = _section(page, "collectors")
    assert _collector_names(collectors) == [f"a-host-{n:03d}" for n in range(PAGE_ROWS, HOSTS)]
    assert f'action="{action.replace("disable", "enable")}"' in collectors


def test_a_refused_rotation_on_a_later_page_of_keys_is_shown_in_its_row(
    app: Flask, big: None
) -> None:
    client = _client(app, ADMIN)
    later = _next_link(_section(client.get("/tenants/a").get_data(as_text=True), "keys"))
    assert later is not None
    keys = _section(client.get(later).get_data(as_text=True), "keys")
    key_id = re.findall(r'<tr id="key-([a-z2-7]+)"', keys)[-1]
    action = f"/tenants/a/keys/{key_id}/rotate"
    refused = client.post(action, data={
        "overlap_hours": "9999", "return_to": _return_to(keys, action), "csrf_token": csrf(client),
    })  # fmt: skip
    assert refused.status_code == 400
    row = re.search(rf'<tr id="key-{key_id}".*?</tr>', refused.get_data(as_text=True), re.S)
    assert row is not None
    assert re.search(r'name="overlap_hours" value="9999"[^>]*aria-invalid="true"', row[0])
    assert "overlap_hours must be between 0 and 720" in row[0]


def _key_choices(page: str) -> list[str]:
    form = _section(page, "keys")
    select = form[form.index('<select name="collector_id"') : form.index("</select>")]
    return re.findall(r'<option value="\d+"(?: selected)?>([^<]+)</option>', select)


def test_issue_a_key_offers_the_collectors_listed(app: Flask, big: None) -> None:
    """Not every collector of the tenant: a fleet's would make a page of megabytes."""
    client = _client(app, ADMIN)
    page = client.get("/tenants/a").get_data(as_text=True)
    assert _key_choices(page) == [f"a-host-{n:03d}" for n in range(PAGE_ROWS)]
    assert "find others with the search" in page
    found = client.get("/tenants/a?q=host-061").get_data(as_text=True)
    assert _key_choices(found) == ["a-host-061"]
    assert "b-host" not in " ".join(_key_choices(found))


def test_a_refused_key_form_keeps_its_collector_though_not_on_the_first_page(
    app: Flask, big: None
) -> None:
    client = _client(app, ADMIN)
    chosen = _collector_id(app, "a-host-061")
    refused = client.post("/tenants/a/keys", data={
        "collector_id": str(chosen), "expires_in_days": "0", "csrf_token": csrf(client),
        "return_to": "tenant",
    })  # fmt: skip
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert f'<option value="{chosen}" selected>a-host-061</option>' in page
    assert _key_choices(page)[0] == "a-host-061"


def test_the_tenants_list_counts_each_tenant_and_shows_the_users_role(
    app: Flask, big: None, make_tenant: Any
) -> None:
    with app.app_context():
        db = database.session()
        b = tenant_for(db, system_actor(), "b")
        collector = register_collector(db, system_actor(), b, {"name": "b2", "hostname": "b2.b"})
        revoked = issue_key(db, system_actor(), b, collector, app.extensions["pa_hasher"], "")
        db.execute(update(ApiKey).where(ApiKey.key_id == revoked.key.key_id)
                   .values(revoked_at=utcnow()))  # fmt: skip
        db.commit()
    make_tenant("c", {ADMIN: "viewer"})
    rows = re.findall(
        r"<td><code>([a-z])</code></td>.*?<td class=\"num\">([\d,]+)</td>\s*"
        r"<td class=\"num\">([\d,]+)</td>\s*<td class=\"num\">([\d,]+)</td>\s*<td>([a-z]*)</td>",
        _client(app, ADMIN).get("/tenants").get_data(as_text=True),
        re.S,
    )
    assert rows == [("a", str(HOSTS), str(HOSTS), "2", "admin"), ("c", "0", "0", "1", "viewer")]
    outsider = _client(app, OUTSIDER).get("/tenants").get_data(as_text=True)
    assert re.findall(r"<td><code>([a-z])</code></td>", outsider) == ["b"]
    assert re.findall(r'<td class="num">(\d+)</td>', outsider) == ["2", "1", "1"]
