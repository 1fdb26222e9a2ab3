"""Go's strconv.ParseFloat, which node_exporter 1.5.0 reads numbers with (udev's ATA properties;
expfmt's text format, through ``exporter.collectors.promparse``)."""

from __future__ import annotations

import math
import re

# Go's strconv.ParseFloat syntax (what node_exporter 1.5.0 parses the ATA properties with): no
# surrounding blanks, "_" only between digits, hexadecimal mantissas with a binary exponent.
GO_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
GO_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
GO_SPECIAL = re.compile(r"[+-]?(?:inf|infinity)|nan", re.IGNORECASE)


def _underscores_ok(text: str) -> bool:
    """Go's strconv.underscoreOK: each "_" between digits, or right after a base prefix."""
    body = text[1:] if text[:1] in "+-" else text
    hex_ = body[:2].lower() == "0x"
    saw = "0" if body[:2].lower() in ("0b", "0o", "0x") else "^"
    for c in body[2:] if saw == "0" else body:
        if c in "0123456789" or (hex_ and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def go_parse_float(text: str) -> float | None:
    """The value strconv.ParseFloat(text, 64) returns, or None where it returns an error."""
    if GO_SPECIAL.fullmatch(text):
        return float(text)
    if "_" in text:
        if not _underscores_ok(text):
            return None
        text = text.replace("_", "")
    try:
        if GO_HEX.fullmatch(text):
            value = float.fromhex(text)
        elif GO_DECIMAL.fullmatch(text):
            value = float(text)
        else:
            return None
    except OverflowError:
        return None
    return None if math.isinf(value) else value  # out of range: Go's ErrRange
