"""``perfanalysis admin seed-prices FILE``: a bad price file is named, with its row and field
where there is one, and changes nothing; it never ends in a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask

from tenants import cli
from tenants.errors import Invalid
from tests.conftest import TEST_SECRET
from tests.unit.test_loadtests_support import table_rows

ROW = ("prices: [{provider: aws, region: us-east-1, instance_type: x, vcpus: 2, memory_gib: 4, "
       "usd_per_hour: '0.1', source: s, as_of: %s}]\n")  # fmt: skip


def seed(runner: Callable[..., Result], path: Path, text: str) -> Result:
    path.write_text(text)
    return runner("seed-prices", str(path))


@pytest.mark.parametrize(
    ("text", "message", "field"),
    [
        (ROW % "2025-02-30", "{path}: prices[0]: as_of must be a date such as 2025-06-01",
         "prices[0].as_of"),
        (ROW % "'2025-02-30'", "{path}: prices[0]: as_of must be a date such as 2025-06-01",
         "prices[0].as_of"),
        ("prices: " + "[" * 5000 + "]" * 5000 + "\n",
         "cannot read the price file {path}: line 1, column 108: nested too deeply: more than "
         "100 levels of lists and mappings", "path"),
        ("prices: [{vcpus: !!float two}]\n",
         "cannot read the price file {path}: line 1, column 18: 'two' is not a valid float "
         "(could not convert string to float: 'two')", "path"),
    ],
)  # fmt: skip
def test_a_bad_price_file_is_named(
    app: Flask, runner: Callable[..., Result], tmp_path: Path, text: str, message: str,
    field: str,
) -> None:  # fmt: skip
    path = tmp_path / "prices.yaml"
    before = table_rows(app)
    result = seed(runner, path, text)
    assert isinstance(result.exception, Invalid), result.exception
    assert result.exception.message == message.format(path=path)
    assert result.exception.field == field
    assert table_rows(app) == before


def test_dates_and_times_in_the_file_are_read_as_before(
    app: Flask, runner: Callable[..., Result], tmp_path: Path
) -> None:
    assert seed(runner, tmp_path / "date.yaml", ROW % "2025-01-01").exit_code == 0
    at_a_time = ROW.replace("instance_type: x", "instance_type: y") % "2025-01-01 10:00:00"
    assert seed(runner, tmp_path / "time.yaml", at_a_time).exit_code == 0


def test_the_command_exits_2_with_the_message(
    app: Flask, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("PERFANALYSIS_ADMIN_DATABASE_URL", database_url)
    monkeypatch.setenv("PERFANALYSIS_ADMIN_SECRET_KEY", TEST_SECRET)
    path = tmp_path / "prices.yaml"
    path.write_text(ROW % "2025-02-30")
    assert cli.run(["seed-prices", str(path)]) == 2  # bad input, as click's usage errors
    captured = capsys.readouterr()
    assert captured.err == (
        f"perfanalysis admin: {path}: prices[0]: as_of must be a date such as 2025-06-01\n"
    )
