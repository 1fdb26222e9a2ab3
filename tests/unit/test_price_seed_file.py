"""The price file of ``perfanalysis admin seed-prices``: a repeated key, a repeated machine row or
an unknown top-level key is refused by name, and the change count says what was stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import select

from tenants import db as database
from tenants.access import system_actor
from tenants.errors import Invalid
from tenants.loadtests.models import PriceEntry
from tenants.loadtests.prices import read_seed, seed_prices
from tests.unit.test_loadtests_support import table_rows

SEED = Path(__file__).resolve().parents[2] / "provisioning" / "prices.yaml"
T3 = ("{provider: aws, region: us-east-1, instance_type: %s, vcpus: 2, memory_gib: %s, "
      "usd_per_hour: '%s', source: s, as_of: 2025-06-01}")  # fmt: skip


def refused(path: Path, text: str) -> Invalid:
    path.write_text(text)
    with pytest.raises(Invalid) as caught:
        read_seed(path)
    return caught.value


def test_a_repeated_key_is_refused_naming_the_file_the_key_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    error = refused(path, f"prices: [{T3 % ('t3.medium', 4, '0.05')}]\n"
                          f"prices: [{T3 % ('c5.large', 4, '0.08')}]\n")  # fmt: skip
    assert error.message == (
        f"cannot read the price file {path}: line 2, column 1: found the key 'prices' a second "
        "time (first on line 1)"
    )
    assert error.field == "path"
    row = refused(path, "prices:\n  - " + (T3 % ("x", 4, "0.1")).replace("vcpus: 2", "vcpus: 2, vcpus: 3") + "\n")  # fmt: skip
    assert "found the key 'vcpus' a second time (first on line 2)" in row.message


@pytest.mark.parametrize(
    ("second", "machine"),
    [
        (T3 % ("t3.medium", 4, "0.07"), "aws us-east-1 t3.medium, 2 vCPUs, 4 GiB"),
        (T3 % ("T3.Medium", "4.0", "0.07"), "aws us-east-1 T3.Medium, 2 vCPUs, 4 GiB"),
    ],
)
def test_a_repeated_machine_row_is_refused_naming_both_rows(
    tmp_path: Path, second: str, machine: str
) -> None:
    path = tmp_path / "prices.yaml"
    error = refused(path, f"prices:\n  - {T3 % ('t3.medium', 4, '0.05')}\n"
                          f"  - {T3 % ('c5.large', 4, '0.08')}\n  - {second}\n")  # fmt: skip
    assert error.message == (
        f"{path}: prices[2] repeats the machine of prices[0] ({machine}): one row per machine"
    )
    assert error.field == "prices[2]"


def test_the_same_type_in_another_size_or_region_is_another_machine(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    other_region = (T3 % ("t3.medium", 4, "0.06")).replace("us-east-1", "eu-west-1")
    path.write_text(f"prices:\n  - {T3 % ('t3.medium', 4, '0.05')}\n"
                    f"  - {T3 % ('t3.medium', 8, '0.07')}\n  - {other_region}\n")  # fmt: skip
    assert len(read_seed(path)) == 3


def test_unknown_top_level_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    error = refused(path, f"prices: [{T3 % ('x', 4, '0.1')}]\nextra: 1\ncurrency: eur\n")
    assert error.message == (
        f"{path}: unknown top-level key currency, extra: the file holds only 'prices:'"
    )
    assert error.field == "currency"


def test_seed_prices_refuses_a_repeated_machine_and_stores_nothing(
    app: Flask, runner: Callable[..., Result], tmp_path: Path
) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(f"prices:\n  - {T3 % ('t3.medium', 4, '0.05')}\n"
                    f"  - {T3 % ('t3.medium', 4, '0.07')}\n")  # fmt: skip
    before = table_rows(app)
    result = runner("seed-prices", str(path))
    assert isinstance(result.exception, Invalid), result.output
    assert "prices[1] repeats the machine of prices[0]" in result.exception.message
    assert table_rows(app) == before


def test_the_change_count_is_what_changed(app: Flask, tmp_path: Path) -> None:
    rows = len(read_seed(SEED))
    with app.app_context():
        db = database.session()
        assert seed_prices(db, system_actor(), SEED) == rows
        assert seed_prices(db, system_actor(), SEED) == 0  # nothing changed the second time
        text = SEED.read_text()
        changed = tmp_path / "prices.yaml"
        changed.write_text(text.replace('usd_per_hour: "0.0416"', 'usd_per_hour: "0.05"', 1))
        assert seed_prices(db, system_actor(), changed) == 1
        stored = list(db.scalars(select(PriceEntry)))
        assert len(stored) == rows
        [t3] = [row for row in stored if row.machine_key()[:3] == ("aws", "us-east-1", "t3.medium")]
        assert str(t3.usd_per_hour) == "0.050000"
