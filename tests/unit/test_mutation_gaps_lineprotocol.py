"""Mutation-audit gaps in ingest/lineprotocol.py: text after a closing quote, the longest string
InfluxDB stores, and DEL (0x7f) in names, on the parser and on every batch path."""

from __future__ import annotations

import pytest

from ingest.batch import BatchRules
from ingest.lineprotocol import MAX_STRING_BYTES, LineProtocolError, parse_line, tag_value_problem
from tests.unit.test_ingest_batch import NOW
from tests.unit.test_mutation_gaps_batch import on_every_path

BIG = BatchRules(max_line_bytes=1 << 20)


@pytest.mark.parametrize(
    ("line", "column"),
    [('m s="a"xb=1', 8), ('m s="a"x', 8), ('m s="a""b"', 8), ('m s="a",t="b"c', 14)],
)
def test_text_after_a_closing_quote_is_refused(line: str, column: int) -> None:
    with pytest.raises(LineProtocolError) as caught:
        parse_line(line)
    assert "unexpected text after the string" in str(caught.value)
    assert str(caught.value).startswith(f"column {column}:")
    body = f"{line} {NOW}".encode()
    outcome = on_every_path(body, BatchRules())[0]
    assert outcome[0] == "invalid"
    assert "unexpected text after the string" in outcome[1][0][1]


def test_a_string_ends_at_its_closing_quote_before_a_comma_space_or_the_end() -> None:
    assert parse_line('m s="a",b=1').fields == (("s", "a"), ("b", 1.0))
    assert parse_line('m s="a" 5').fields == (("s", "a"),)
    assert parse_line('m s="a"').fields == (("s", "a"),)


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
def test_a_string_of_exactly_65535_bytes_is_taken_and_one_byte_more_is_not(char: str) -> None:
    size = len(char.encode())
    text = char * (MAX_STRING_BYTES // size)
    text += "a" * (MAX_STRING_BYTES - len(text.encode()))
    assert len(text.encode()) == MAX_STRING_BYTES
    assert parse_line(f'm s="{text}"').fields == (("s", text),)
    assert on_every_path(f'm s="{text}" {NOW}'.encode(), BIG)[0][0] == "prepared"
    longer = text + "a"
    with pytest.raises(LineProtocolError, match="string longer than 65535 bytes"):
        parse_line(f'm s="{longer}"')
    outcome = on_every_path(f'm s="{longer}" {NOW}'.encode(), BIG)[0]
    assert outcome[0] == "invalid"
    assert "string longer than 65535 bytes" in outcome[1][0][1]


def test_a_string_of_few_characters_but_too_many_bytes_is_refused() -> None:
    """16,384 four-byte characters: 65,536 bytes (the character count alone looks short)."""
    text = "😀" * 16_384
    with pytest.raises(LineProtocolError, match="string longer than 65535 bytes"):
        parse_line(f'm s="{text}"')


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("m\x7f v=1", "measurement"),
        ("m,t\x7f=1 v=1", "tag key"),
        ("m,t=a\x7f v=1", "tag value"),
        ("m v\x7f=1", "field key"),
        ("\x7f v=1", "measurement"),
    ],
)
def test_del_in_a_name_is_refused_as_a_control_character(line: str, what: str) -> None:
    with pytest.raises(LineProtocolError, match=f"{what} .* contains a control character"):
        parse_line(line)
    outcome = on_every_path(f"{line} {NOW}".encode(), BatchRules())[0]
    assert outcome[0] == "invalid"
    assert "contains a control character" in outcome[1][0][1]


def test_del_in_a_forced_tag_value_is_a_problem() -> None:
    assert tag_value_problem("web\x7f01") == "contains a control character"
    assert tag_value_problem("web~01") is None  # 0x7e, the last printable character
