"""The work unit pa-mem4m-v1 is the same work everywhere: pinned table and checksums."""

from __future__ import annotations

import hashlib

from exporter.loadtest.unit import BUFFER_BYTES, UNIT_NAME, WorkUnit, substitution_table

# CRC-32 of the buffer after 0, 1, 3 and 10 units: any change to the unit changes these, and then
# the unit needs a new name (results of different units are not comparable)
CHECKSUMS = {0: 0xACB398E2, 1: 0x1DC4CDAE, 3: 0xF2738FE1, 10: 0xF34C6AB9}


def test_the_unit_is_a_4_mib_buffer_named_v1() -> None:
    unit = WorkUnit()
    assert UNIT_NAME == "pa-mem4m-v1"
    assert BUFFER_BYTES == 4 * 1024 * 1024 == len(unit.buffer)


def test_the_table_is_a_fixed_permutation_of_the_byte_values() -> None:
    table = substitution_table()
    assert sorted(table) == list(range(256))
    assert table[:8].hex() == "2dcc55ee6a0d8b52"
    assert hashlib.sha256(table).hexdigest()[:16] == "1085b6108d52974f"


def test_checksums_after_n_units_are_pinned() -> None:
    unit = WorkUnit()
    seen = {0: unit.checksum()}
    for done in range(1, 11):
        unit.run()
        seen[done] = unit.checksum()
    assert {n: seen[n] for n in CHECKSUMS} == CHECKSUMS
    assert unit.completed == 10


def test_two_workers_doing_the_same_units_agree() -> None:
    first, second = WorkUnit(), WorkUnit()
    for _ in range(3):
        first.run()
        second.run()
    assert first.checksum() == second.checksum()
    assert first.buffer == second.buffer


def test_every_byte_changes_as_the_table_says() -> None:
    unit = WorkUnit()
    before = bytes(unit.buffer)
    unit.run()
    assert unit.buffer == before.translate(unit.table)
    changed = sum(1 for a, b in zip(before[:4096], unit.buffer[:4096], strict=True) if a != b)
    assert changed > 4000  # only the table's few fixed points stay the same
