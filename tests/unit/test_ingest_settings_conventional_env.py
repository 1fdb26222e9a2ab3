"""DATABASE_URL and REDIS_URL, the conventional variables that ingest, the admin app and the
report read when their PERFANALYSIS_* variable is unset: a bad value's error names the variable
it came from. Before, it named the PERFANALYSIS_* one, which the operator had never set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from ingest.settings import load as load_ingest
from perfanalysis.config import ConfigError, Setting, Spec, parse
from perfanalysis.grafana.settings import load as load_grafana
from perfanalysis.report.settings import load as load_report
from tenants.settings import load as load_admin

SECRET = "s" * 40
BAD_DATABASE_URL = "mysql://perf:hunter2@db.example/admin"
BAD_REDIS_URL = "redis://perf:hunter2@redis.example:sixtythree/0"
Loader = Callable[[Sequence[str], Mapping[str, str]], dict[str, Any]]
COMPONENTS: list[tuple[str, Loader, dict[str, str]]] = [
    ("PERFANALYSIS_INGEST_", load_ingest, {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET}),
    ("PERFANALYSIS_ADMIN_", load_admin, {"PERFANALYSIS_ADMIN_SECRET_KEY": SECRET}),
]


def errors_of(load: Loader, environ: Mapping[str, str], argv: Sequence[str] = ()) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load(argv, environ)
    return refused.value.errors


@pytest.mark.parametrize(("prefix", "load", "base"), COMPONENTS)
@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("DATABASE_URL", BAD_DATABASE_URL, "expected a sqlite:// or postgresql:// URL"),
        ("REDIS_URL", BAD_REDIS_URL, "port 'sixtythree' is not a number"),
    ],
)
def test_a_bad_conventional_variable_is_named_as_itself_with_its_password_hidden(
    prefix: str, load: Loader, base: dict[str, str], variable: str, value: str, why: str
) -> None:
    (error,) = errors_of(load, {**base, variable: value})
    assert error.startswith(f"environment variable {variable}: invalid value ")
    assert why in error
    assert prefix not in error
    assert "hunter2" not in error
    assert "perf:***@" in error


@pytest.mark.parametrize(("prefix", "load", "base"), COMPONENTS)
@pytest.mark.parametrize(
    ("variable", "value"), [("DATABASE_URL", BAD_DATABASE_URL), ("REDIS_URL", BAD_REDIS_URL)]
)
def test_the_prefixed_variable_wins_and_is_the_one_named(
    prefix: str, load: Loader, base: dict[str, str], variable: str, value: str
) -> None:
    """Where both are set, the conventional one is not read at all: only the prefixed one's
    value can be at fault."""
    (error,) = errors_of(load, {**base, variable: "sqlite:///unused.db", prefix + variable: value})
    assert error.startswith(f"environment variable {prefix}{variable}: invalid value ")


@pytest.mark.parametrize(("prefix", "load", "base"), COMPONENTS)
def test_a_good_conventional_value_is_taken_and_a_flag_still_wins(
    prefix: str, load: Loader, base: dict[str, str]
) -> None:
    environ = {**base, "DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/1"}
    values = load([], environ)
    assert values["database_url"] == "postgresql+psycopg://u@h/db"
    assert values["redis_url"] == "redis://h:6379/1"
    flagged = load(["--redis-url=redis://other:6379/2"], {**environ, "REDIS_URL": BAD_REDIS_URL})
    assert flagged["redis_url"] == "redis://other:6379/2"


def test_the_reports_database_url_names_database_url() -> None:
    errors = errors_of(load_report, {"DATABASE_URL": BAD_DATABASE_URL}, ["--config=r.yaml"])
    assert [e for e in errors if "DATABASE_URL" in e] == [
        "environment variable DATABASE_URL: invalid value 'mysql://perf:***@db.example/admin': "
        "expected a sqlite:// or postgresql:// URL"
    ]


def test_grafana_sync_names_database_url_through_the_admin_settings() -> None:
    environ = {
        "PERFANALYSIS_GRAFANA_URL": "http://grafana.example",
        "PERFANALYSIS_GRAFANA_TOKEN": "token",
        "PERFANALYSIS_GRAFANA_INFLUXDB_URL": "http://influxdb.example",
        "PERFANALYSIS_ADMIN_SECRET_KEY": SECRET,
        "DATABASE_URL": BAD_DATABASE_URL,
    }
    errors = errors_of(load_grafana, environ)
    assert errors[0].startswith("admin settings: environment variable DATABASE_URL: ")
    assert "hunter2" not in errors[0]


def test_a_conventional_variable_is_read_only_for_the_setting_that_names_it() -> None:
    spec = Spec("p", "P_", "test")
    spec.add(Setting("url", "a URL", "", conventional_env="URL"))
    spec.add(Setting("name", "a name", ""))
    assert parse(spec, [], {"URL": "u", "NAME": "n"}) == {"url": "u", "name": ""}
    assert parse(spec, [], {"URL": "u", "P_URL": "p"})["url"] == "p"
    assert spec.settings[0].env_names("P_") == ("P_URL", "URL")
    assert spec.settings[1].env_names("P_") == ("P_NAME",)
