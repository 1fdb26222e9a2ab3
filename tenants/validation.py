"""Checks for user-supplied fields; each failure names the field and what is wrong with it."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tenants.errors import Invalid

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
LABEL_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,62}$")
TOKEN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
# Control characters and the white space (with U+FEFF, the invisible "zero width no-break space"
# a pasted text may start with) that no e-mail address holds, as explicit character classes: the
# API's OpenAPI document publishes EMAIL_PATTERN, so it is written in the common subset of
# ECMA-262 and Python regular expressions (Python's \s and ECMA-262's differ).
CONTROL = r"\x00-\x1f\x7f"
# Unicode's separators (categories Zs, Zl and Zp), as a character class's contents
SEPARATORS = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPACE = rf"\x85{SEPARATORS}\ufeff"
EMAIL_PART = rf"[^@{CONTROL}{SPACE}]"
# The one e-mail rule: the command line, the pages and the API (tenants.openapi.EMAIL) use it.
EMAIL_PATTERN = rf"^{EMAIL_PART}{{1,64}}@{EMAIL_PART}{{1,189}}\.{EMAIL_PART}{{1,63}}$"
EMAIL = re.compile(EMAIL_PATTERN.removesuffix("$") + r"\Z")
MAX_EMAIL_LENGTH = 254
MAX_LABELS = 20
# in one command-line label's value, a comma followed by what looks like another label's key=
SECOND_PAIR = re.compile(r",\s*[a-zA-Z_][a-zA-Z0-9_]{0,62}\s*=")
# The bidirectional embeddings, overrides and isolates (U+202A-202E, U+2066-2069) a shown text must
# not hold: they reorder the characters after them, e.g. U+202E RIGHT-TO-LEFT OVERRIDE shows
# "acme\u202egpj.exe" as "acmeexe.jpg". Other format characters are kept: the marks U+200E,
# U+200F and U+061C (right-to-left keyboards add them and they cannot reverse text), the joiners
# Persian, Indic scripts and emoji need, the soft hyphen and emoji tag sequences (in ``text``; a
# ``name`` refuses them but where a script or an emoji needs them: see _joins_script).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# What a name (``name``: a tenant's, a collector's, a user's) must not hold besides: characters that
# show nothing, so that "web-1\u200b" would pass for "web-1". Every format character (category Cf:
# zero width space, joiners, word joiner, U+FEFF, the soft hyphen, marks, tags), and the other
# default-ignorable code points of Unicode (DerivedCoreProperties.txt) and blanks drawn as nothing.
INVISIBLE_RANGES = (
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG and JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ and AA
    (0x180B, 0x180F),  # MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
    (0x2065, 0x2065),  # unassigned among the invisible operators
    (0x2800, 0x2800),  # BRAILLE PATTERN BLANK
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTORS 1-16
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # unassigned, default ignorable
    (0xE0000, 0xE0FFF),  # tags, VARIATION SELECTORS 17-256 and the unassigned rest
)


def readable_number(value: float) -> str:
    """``1,234,567`` or ``2.5``: the number as typed, with thousands separators and no exponent."""
    return f"{Decimal(repr(value)).normalize():,f}"


def text(value: Any, field: str, max_length: int = 200, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise Invalid(f"{field} is required", field)
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string", field)
    result: str = value.strip()
    if required and not result:
        raise Invalid(f"{field} is required", field)
    if len(result) > max_length:
        raise Invalid(f"{field} must be at most {max_length} characters", field)
    if result and not NAME.match(result):
        raise Invalid(f"{field} must not contain control characters", field)
    _refuse_format_characters(result, field)
    return result


# A run of the separators a name may hold, shown in a page as one space: "web 1" with a no-break
# space, with two spaces or with an ideographic space (what a Japanese keyboard types) all read
# "web 1".
SEPARATOR_RUN = re.compile(rf"[{SEPARATORS}]+")


def name(value: Any, field: str, max_length: int = 200, required: bool = True) -> str:
    """A name people tell apart by sight: ``text``'s rules, in Unicode's composed form (NFC, so
    that "cafe\u0301" and "caf\u00e9", alike on screen, are one name), each run of spaces of any
    kind one ASCII space (SEPARATOR_RUN), without characters that show nothing
    (``is_invisible``); one that holds only such characters is blank."""
    if isinstance(value, str):
        value = SEPARATOR_RUN.sub(" ", unicodedata.normalize("NFC", value))
    result = text(value, field, max_length, required)
    for position, char in enumerate(result, 1):
        if is_invisible(char) and not _joins_script(result, position - 1):
            found = f"{describe(char)} at character {position}"
            if not "".join(c for c in result if not is_invisible(c)).strip():
                raise Invalid(
                    f"{field} must not be blank: it holds only invisible characters ({found})",
                    field,
                )
            raise Invalid(
                f"{field} must not contain invisible or formatting characters, which make names "
                f"that look alike differ: found {found}",
                field,
            )
    return result


JOINERS = frozenset("\u200c\u200d")  # ZERO WIDTH NON-JOINER and JOINER
EMOJI_VARIATION_SELECTORS = frozenset("\ufe0e\ufe0f")
NO_JOINERS = (
    "LATIN",
    "GREEK",
    "CYRILLIC",
)  # scripts whose words never need one ("\u00e9\u200c\u00e9")


def _joins_script(value: str, index: int) -> bool:
    """Whether the invisible character at ``index`` is one a script or an emoji needs: a joiner
    between two visible non-ASCII characters (Persian "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", Indic
    conjuncts, "\U0001f469\u200d\U0001f4bb"), or a text/emoji variation selector after a symbol. Beside ASCII,
    or at either end, they only make look-alikes ("web-1\u200c")."""

    def shown_non_ascii(at: int) -> bool:
        if not 0 <= at < len(value) or ord(value[at]) <= 0x7F or is_invisible(value[at]):
            return False
        return not unicodedata.name(value[at], "").startswith(NO_JOINERS)

    char = value[index]
    if char in JOINERS:
        before = index - 1
        while before >= 0 and value[before] in EMOJI_VARIATION_SELECTORS:
            before -= 1  # "\u2764\ufe0f\u200d\U0001f525": the joiner follows a selector
        return shown_non_ascii(before) and shown_non_ascii(index + 1)
    if char in EMOJI_VARIATION_SELECTORS:  # after a symbol ("\u2764\ufe0f"), not after "\u00e9"
        return shown_non_ascii(index - 1) and unicodedata.category(value[index - 1]) == "So"
    return False


def is_invisible(char: str) -> bool:
    """Whether ``char`` shows nothing in a name (a format character or another invisible one)."""
    if unicodedata.category(char) == "Cf":
        return True
    point = ord(char)
    return any(low <= point <= high for low, high in INVISIBLE_RANGES)


def describe(char: str) -> str:
    """``U+200B ZERO WIDTH SPACE``: the code point and, where it has one, its name."""
    return f"U+{ord(char):04X} {unicodedata.name(char, '')}".rstrip()


def format_character(value: str) -> str | None:
    """The first bidirectional embedding, override or isolate (U+202A-202E, U+2066-2069) in
    ``value``, as ``U+202E RIGHT-TO-LEFT OVERRIDE``; else None."""
    for char in value:
        if char in BIDI_CONTROLS:
            return describe(char)
    return None


def _refuse_format_characters(value: str, field: str, what: str = "") -> None:
    found = format_character(value)
    if found:
        raise Invalid(
            f"{field}{what} must not contain bidirectional override, embedding or isolate "
            f"characters, which can disguise how it reads: found {found}",
            field,
        )


def slug(value: Any, field: str = "slug") -> str:
    result = text(value, field, 40)
    if not SLUG.match(result):
        raise Invalid(
            f"{field} must be 1-40 lowercase letters, digits and inner hyphens, e.g. acme-prod",
            field,
        )
    return result


def email(value: Any, field: str = "email") -> str:
    result = text(value, field, MAX_EMAIL_LENGTH).lower()
    if len(result) > MAX_EMAIL_LENGTH:  # lower-casing can lengthen a string (İ becomes two)
        raise Invalid(f"{field} must be at most {MAX_EMAIL_LENGTH} characters", field)
    if not EMAIL.match(result):
        raise Invalid(f"{field} is not an e-mail address", field)
    return result


def hostname(value: Any, field: str = "hostname") -> str:
    result = text(value, field, 253)
    if not HOSTNAME.match(result):
        raise Invalid(f"{field} must be a DNS hostname (letters, digits, hyphens and dots)", field)
    return result


def optional_token(value: Any, field: str, max_length: int = 80) -> str | None:
    if value is None or value == "":
        return None
    result = text(value, field, max_length).lower()
    if not TOKEN.match(result):
        raise Invalid(f"{field} must be lowercase letters, digits, '.', '_' or '-'", field)
    return result


def optional_int(value: Any, field: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Invalid(f"{field} must be a whole number", field)
    if isinstance(value, str):
        digits = value.strip()
        if not (digits.isascii() and digits.isdigit()):
            raise Invalid(f"{field} must be a whole number", field)
        if len(digits.lstrip("0")) > len(str(high)):  # int() refuses over 4,300 digits
            raise Invalid(
                f"{field} must be between {readable_number(low)} and {readable_number(high)}", field
            )
        value = int(digits)
    if not isinstance(value, int):
        raise Invalid(f"{field} must be a whole number", field)
    if not low <= value <= high:
        raise Invalid(
            f"{field} must be between {readable_number(low)} and {readable_number(high)}", field
        )
    return value


def optional_number(value: Any, field: str, low: float, high: float) -> float | None:
    """A finite number in [low, high], given as a JSON number or a form's text; None if blank."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Invalid(f"{field} must be a number", field)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise Invalid(f"{field} must be a number", field) from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"{field} must be a number", field)
    if not low <= value <= high:
        raise Invalid(
            f"{field} must be between {readable_number(low)} and {readable_number(high)}", field
        )
    return float(value)


def labels(value: Any, field: str = "labels") -> dict[str, str]:
    """Labels as an object, the form's ``"key=value, key=value"`` or the command line's
    ``["key=value", ...]`` (whose values may hold commas, but not ``,key=``: the old
    ``--label "a=1,b=2"`` would otherwise become one label); a key given twice is refused."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = _label_pairs(value.split(","), field)
    elif isinstance(value, list | tuple) and all(isinstance(part, str) for part in value):
        for part in value:
            if SECOND_PAIR.search(part.partition("=")[2]):
                raise Invalid(
                    f"{field}: {part.strip()!r} looks like more than one key=value: repeat "
                    "--label for each label (a value may hold commas, but not ',key=')",
                    field,
                )
        value = _label_pairs(value, field)
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be an object of string values", field)
    if len(value) > MAX_LABELS:
        raise Invalid(f"{field} may hold at most {MAX_LABELS} labels", field)
    clean = {}
    for key, val in value.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise Invalid(f"{field}: label name {key!r} must match [a-zA-Z_][a-zA-Z0-9_]*", field)
        if not isinstance(val, str) or len(val) > 200 or not (val == "" or NAME.match(val)):
            raise Invalid(f"{field}: label {key} must be a string of at most 200 characters", field)
        _refuse_format_characters(val, field, f": label {key}")
        clean[key] = val
    return clean


def _label_pairs(parts: Sequence[str], field: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in parts:
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        if not sep:
            raise Invalid(f"{field}: {part.strip()!r} is not key=value", field)
        key, val = key.strip(), val.strip()
        if key in pairs:
            raise Invalid(
                f"{field}: label {key} is given twice ({pairs[key]!r} and {val!r})", field
            )
        pairs[key] = val
    return pairs


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads(..., object_pairs_hook=unique_keys)``: an object naming a key twice is
    refused (json keeps the last silently), e.g. ``{"labels": {"a": "1", "a": "2"}}``."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Invalid(f"the key {key!r} is given twice in one JSON object")
        result[key] = value
    return result
