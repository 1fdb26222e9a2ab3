"""The messages of a refused form as a screen reader meets them: each one next to its field and
tied to it by ``aria-describedby``."""

from __future__ import annotations

import html
import re

FIELD_ERROR = re.compile(r'<small class="field-error"(?: id="([^"]*)")?>(.*?)</small>', re.DOTALL)
CONTROL = re.compile(r"<(?:input|select|textarea)\b[^>]*>")


def described_errors(page: str) -> dict[str, str]:
    """``{field name: message}`` for each field described by a field error; fails when a field
    error is tied to no field, or an ``aria-describedby`` names no element of the page."""
    errors = {}
    for match in FIELD_ERROR.finditer(page):
        assert match[1], f"a field error without an id: {match[2]}"
        errors[match[1]] = html.unescape(match[2])
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    described = {}
    for control in CONTROL.findall(page):
        names = re.search(r'\sname="([^"]*)"', control)
        references = re.search(r'\saria-describedby="([^"]*)"', control)
        if names is None or references is None:
            continue
        for reference in references[1].split():
            assert reference in ids, f"aria-describedby names no element: {reference}"
            if reference in errors:
                described[names[1]] = errors.pop(reference)
    assert errors == {}, f"field errors tied to no field: {errors}"
    return described
