"""The suite's own layout: pytest imports test modules by their base name (the test directories
are not packages), so two files of one name in different directories stop the whole run at
collection ("import file mismatch"), as tests/unit and tests/integration's
test_ingest_host_tag.py once did."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
