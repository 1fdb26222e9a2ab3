"""A new password is refused when it is only white space, one character repeated or one of the
most common ones, on every path that sets one (command line, API, account page); a name shown in
lists refuses the bidirectional overrides, embeddings and isolates that disguise how it reads as
it refuses control characters, and keeps the other format characters (marks, joiners)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tenants import db as database
from tenants import validation
from tenants.crypto import COMMON_PASSWORDS, MIN_PASSWORD_LENGTH, password_problem
from tenants.errors import Invalid
from tenants.models import User
from tests.conftest import (
    PASSWORD,
    TEST_SECRET,
    Caller,
    csrf,
    issue_test_token,
    login,
    table_snapshot,
)
from tests.unit.field_errors import described_errors

WHITE = "password must not be only white space"
REPEATED = "password must not be one character repeated"
COMMON = "password is one of the most common passwords: choose another"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (" " * 12, WHITE),
        ("\t \u3000\n" * 3, WHITE),  # any white space, an ideographic space too
        ("a" * 12, REPEATED),
        ("!" * 1024, REPEATED),
        ("\u00e9" * 13, REPEATED),
        ("password1234", COMMON),
        ("PassWord1234", COMMON),  # compared case-insensitively
        ("123456789012", COMMON),
        ("QWERTYUIOPAS", COMMON),
    ],
)
def test_a_weak_password_is_refused_saying_what_is_wrong(password: str, message: str) -> None:
    assert password_problem(password) == message


@pytest.mark.parametrize(
    "password", [PASSWORD, "aaaaaaaaaaab", "  two  words  ", "Zq3-x8_Lk2Rm0vWp", "password12345x"]
)
def test_a_long_uncommon_password_passes(password: str) -> None:
    assert password_problem(password) is None


def test_the_length_rule_comes_first_and_the_common_list_holds_only_long_lowercase_entries() -> (
    None
):
    assert password_problem(" " * 11) == "password must be at least 12 characters"
    assert password_problem("a" * 1025) == "password must be at most 1024 characters"
    assert 20 <= len(COMMON_PASSWORDS) <= 60
    for common in COMMON_PASSWORDS:
        assert len(common) >= MIN_PASSWORD_LENGTH, common
        assert common == common.casefold(), common
        assert password_problem(common.upper()) == COMMON


@pytest.fixture
def admin_run(
    app: Flask, database_url: str, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """``perfanalysis admin`` with the test database; (exit status, standard error)."""
    from tenants.cli import run

    def invoke(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        status = run([f"--database-url={database_url}", f"--secret-key={TEST_SECRET}", *args])
        return status, capsys.readouterr().err

    return invoke


def emails(app: Flask) -> list[str]:
    with app.app_context():
        return list(database.session().scalars(select(User.email).order_by(User.email)))


@pytest.mark.usefixtures("fast_password_hashing")
def test_create_user_on_the_command_line_refuses_a_weak_password(
    app: Flask, admin_run: Callable[..., tuple[int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERFANALYSIS_NEW_PASSWORD", " " * 12)
    assert admin_run("create-user", "dana@example.test") == (2, f"perfanalysis admin: {WHITE}\n")
    monkeypatch.setenv("PERFANALYSIS_NEW_PASSWORD", "Password1234")
    assert admin_run("create-user", "dana@example.test") == (2, f"perfanalysis admin: {COMMON}\n")
    assert emails(app) == []
    monkeypatch.setenv("PERFANALYSIS_NEW_PASSWORD", "a reasonable passphrase")
    assert admin_run("create-user", "dana@example.test")[0] == 0
    assert emails(app) == ["dana@example.test"]


@pytest.fixture
def root(app: Flask, make_user: Any, make_tenant: Any) -> Caller:
    """A platform admin's API caller, with tenant acme and its collector web1."""
    make_user("root@example.test", platform_admin=True)
    make_tenant("acme")
    caller = Caller(app.test_client(), issue_test_token(app, "root@example.test"))
    made = caller("POST", "/tenants/acme/collectors", {"name": "web1", "hostname": "web1"})
    assert made.status_code == 201, made.get_data(as_text=True)
    return caller


@pytest.mark.usefixtures("fast_password_hashing")
def test_the_api_refuses_a_weak_password_naming_the_field(app: Flask, root: Caller) -> None:
    for password, message in (("aaaaaaaaaaaa", REPEATED), ("qwertyuiopas", COMMON)):
        refused = root("POST", "/users", {"email": "eve@example.test", "password": password})
        assert refused.status_code == 400
        assert refused.get_json()["error"] == {
            "code": "invalid",
            "message": message,
            "field": "password",
        }
    assert "eve@example.test" not in emails(app)


@pytest.mark.usefixtures("fast_password_hashing")
def test_the_account_page_refuses_a_weak_new_password_next_to_its_field(
    app: Flask, make_user: Any
) -> None:
    make_user("ana@example.test")
    client = app.test_client()
    login(client, "ana@example.test")
    refused = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "1" * 16, "csrf_token": csrf(client)},
    )
    assert refused.status_code == 400
    assert described_errors(refused.get_data(as_text=True)) == {"new_password": REPEATED}
    login(client, "ana@example.test")  # the password is unchanged


SPOOFING = [
    ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("\u202d", "U+202D LEFT-TO-RIGHT OVERRIDE"),
    ("\u202a", "U+202A LEFT-TO-RIGHT EMBEDDING"),
    ("\u202b", "U+202B RIGHT-TO-LEFT EMBEDDING"),
    ("\u202c", "U+202C POP DIRECTIONAL FORMATTING"),
    ("\u2066", "U+2066 LEFT-TO-RIGHT ISOLATE"),
    ("\u2067", "U+2067 RIGHT-TO-LEFT ISOLATE"),
    ("\u2068", "U+2068 FIRST STRONG ISOLATE"),
    ("\u2069", "U+2069 POP DIRECTIONAL ISOLATE"),
]


def refusal(field: str, found: str) -> str:
    return (
        f"{field} must not contain bidirectional override, embedding or isolate characters, "
        f"which can disguise how it reads: found {found}"
    )


@pytest.mark.parametrize(("char", "found"), SPOOFING)
def test_a_name_with_an_invisible_formatting_character_is_refused_naming_it(
    char: str, found: str
) -> None:
    with pytest.raises(Invalid) as refused:
        validation.text(f"acme{char}gpj.exe", "name")
    assert (refused.value.message, refused.value.field) == (refusal("name", found), "name")


def test_joiners_marks_and_other_format_characters_are_kept() -> None:
    for name in (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "\U0001f469\u200d\U0001f4bb ops",
        "\u05e9\u05dc\u05d5\u05dd\u200e ACME",  # marks that right-to-left keyboards add
        "ACME\u200f \u0627\u0644\u0641\u0627",
        "\u0661\u061c\u0662",
        "Donau\u00addampf",  # a soft hyphen
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # a flag
        "a\u200bb\ufeff",
    ):
        assert validation.text(name, "name") == name


def test_user_tenant_and_collector_names_refuse_a_right_to_left_override(
    app: Flask, root: Caller
) -> None:
    rlo = "U+202E RIGHT-TO-LEFT OVERRIDE"
    before = table_snapshot(app, frozenset({"last_used_at"}))
    requests = [
        ("/users", {"email": "dana@example.test", "password": PASSWORD, "name": "Dana\u202e"}),
        ("/tenants", {"slug": "beta", "name": "Beta\u202eroC"}),
        ("/tenants/acme/collectors", {"name": "web\u202e2", "hostname": "web2"}),
        ("/tenants/acme/collectors", {"name": "web3", "hostname": "web3",
                                      "labels": {"team": "d\u202eb"}}),
    ]  # fmt: skip
    expected = [
        ("name", refusal("name", rlo)),
        ("name", refusal("name", rlo)),
        ("name", refusal("name", rlo)),
        ("labels", refusal("labels: label team", rlo)),
    ]
    for (path, body), (field, message) in zip(requests, expected, strict=True):
        refused = root("POST", path, body)
        assert refused.status_code == 400, path
        assert refused.get_json()["error"] == {"code": "invalid", "message": message,
                                               "field": field}  # fmt: skip
    assert table_snapshot(app, frozenset({"last_used_at"})) == before
