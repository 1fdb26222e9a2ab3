"""The InfluxQL ingest answers on /query: statements split as InfluxDB splits them, CREATE
DATABASE checked as InfluxDB 1.6.7 checks it (each case below was measured there)."""

from __future__ import annotations

import pytest

from ingest.influxql import CreateDatabase, QueryError, create_database, statements


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("CREATE DATABASE a", ["CREATE DATABASE a"]),
        ("CREATE DATABASE a;", ["CREATE DATABASE a"]),
        (" ; ;", []),
        ("CREATE DATABASE a; CREATE DATABASE b", ["CREATE DATABASE a", "CREATE DATABASE b"]),
        ('CREATE DATABASE "x;y" ;', ['CREATE DATABASE "x;y"']),
        ('CREATE DATABASE "a\\";b"', ['CREATE DATABASE "a\\";b"']),
        (
            "SELECT * FROM m WHERE t = 'a;b'; SHOW DATABASES",
            ["SELECT * FROM m WHERE t = 'a;b'", "SHOW DATABASES"],
        ),
    ],
)
def test_statements_split_at_semicolons_outside_quotes(query: str, expected: list[str]) -> None:
    assert statements(query) == expected


@pytest.mark.parametrize("query", ['CREATE DATABASE "a', "SELECT 'a; SHOW DATABASES"])
def test_an_unterminated_quote_is_refused(query: str) -> None:
    with pytest.raises(QueryError, match="unterminated quote at character"):
        statements(query)


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("CREATE DATABASE telegraf", "telegraf"),
        ('CREATE DATABASE "with"', '"with"'),
        ('CREATE DATABASE "telegraf"', '"telegraf"'),  # as Telegraf sends it
        ('CREATE DATABASE "te\\"l"', '"te\\"l"'),
        ("create database c with duration 3d replication 1 shard duration 1h name rp1", "c"),
        ("CREATE DATABASE b WITH DURATION 1d", "b"),
        ('CREATE DATABASE x WITH DURATION INF NAME "r"', "x"),
        ("CREATE  DATABASE\t_x1 WITH SHARD DURATION 1h30m", "_x1"),
    ],
)
def test_create_database_is_read_with_its_options(statement: str, name: str) -> None:
    assert create_database(statement, 1) == CreateDatabase(name)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE DATABASE",
        "CREATE DATABASE d WITH",
        "CREATE DATABASE 1e",
        "CREATE DATABASE e garbage",
        "CREATE DATABASE with",  # a keyword, unless quoted
        "CREATE DATABASE e WITH NAME r DURATION 1d",  # InfluxQL's order: DURATION first
        "CREATE DATABASE e WITH DURATION 1y",
    ],
)
def test_a_malformed_create_database_is_a_bad_request(statement: str) -> None:
    with pytest.raises(QueryError) as caught:
        create_database(statement, 2)
    assert not caught.value.forbidden
    assert caught.value.message.startswith(f"statement 2: {statement!r} is not valid")


@pytest.mark.parametrize(
    "statement", ["SHOW DATABASES", "SELECT * FROM cpu", "DROP DATABASE pa_acme", "nonsense"]
)
def test_any_other_statement_is_forbidden_and_named(statement: str) -> None:
    with pytest.raises(QueryError) as caught:
        create_database(statement, 1)
    assert caught.value.forbidden
    assert f"statement 1: {statement!r} is not answered here" in caught.value.message


def test_a_long_statement_is_shortened_in_the_message() -> None:
    with pytest.raises(QueryError) as caught:
        create_database("SELECT " + "x" * 200, 1)
    assert "'SELECT " + "x" * 50 + "...'" in caught.value.message
