"""The admin app's influxdb.ingest-user and influxdb.ingest-password settings (tenants/settings.py)."""

from __future__ import annotations

import pytest

from perfanalysis.config import ConfigError
from tenants.app import storage_for
from tenants.influx import InfluxStorage
from tenants.settings import load
from tests.conftest import TEST_SECRET

PASSWORD = "ingest-password-that-must-never-be-echoed"
BASE = {
    "PERFANALYSIS_ADMIN_SECRET_KEY": TEST_SECRET,
    "PERFANALYSIS_ADMIN_DATABASE_URL": "sqlite://",
    "PERFANALYSIS_ADMIN_INFLUXDB_URL": "http://127.0.0.1:8086",
    "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_USER": "admin",
    "PERFANALYSIS_ADMIN_INFLUXDB_ADMIN_PASSWORD": "admin-password",
}


def test_the_ingest_user_reaches_the_storage_and_its_password_is_secret() -> None:
    settings = load(
        [],
        {
            **BASE,
            "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_USER": "ingest",
            "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD": PASSWORD,
        },
    )
    assert (settings["influxdb_ingest_user"], settings["influxdb_ingest_password"]) == (
        "ingest",
        PASSWORD,
    )
    storage = storage_for(settings)
    assert isinstance(storage, InfluxStorage)
    assert storage.ingest_user == "ingest"
    assert PASSWORD not in repr(storage)


def test_without_an_ingest_user_nothing_is_granted() -> None:
    storage = storage_for(load([], BASE))
    assert isinstance(storage, InfluxStorage)
    assert storage.ingest_user == ""


@pytest.mark.parametrize(
    ("env", "setting", "problem"),
    [
        ({"PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD": PASSWORD},
         "influxdb.ingest-password", "without influxdb.ingest-user"),
        ({"PERFANALYSIS_ADMIN_INFLUXDB_INGEST_USER": "ingest"},
         "influxdb.ingest-user", "needs influxdb.ingest-password"),
        ({"PERFANALYSIS_ADMIN_INFLUXDB_INGEST_USER": "admin",
          "PERFANALYSIS_ADMIN_INFLUXDB_INGEST_PASSWORD": PASSWORD},
         "influxdb.ingest-user", "must not be the InfluxDB admin user"),
    ],
)  # fmt: skip
def test_bad_ingest_user_settings_are_refused_naming_the_setting(
    env: dict[str, str], setting: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load([], {**BASE, **env})
    message = str(raised.value)
    assert f"setting {setting}: " in message
    assert problem in message
    assert PASSWORD not in message


def test_flags_work_like_the_environment() -> None:
    with pytest.raises(ConfigError, match="must not be the InfluxDB admin user"):
        load(["--influxdb.ingest-user=admin", f"--influxdb.ingest-password={PASSWORD}"], BASE)
