"""Go regular expressions (RE2 syntax), as node_exporter's flags take them, run on Python's ``re``.

node_exporter compiles its filter flags (``--collector.diskstats.device-exclude`` and the like)
with Go's regexp, and Python's ``re`` reads some of the same text differently or not at all:
``[[:digit:]]`` is a POSIX class in Go but, in Python, the set ``[:digt`` followed by a literal
``]``; Go's ``$`` is the end of the text where Python's also matches before a final newline; Go's
``\\d``, ``\\s``, ``\\w`` and ``\\b`` are ASCII where Python's are Unicode; ``\\z``, ``\\pL`` and
``\\x{41}`` exist only in Go; lookarounds, backreferences and possessive repeats only in Python.
``translate`` parses a pattern by Go's grammar (regexp/syntax with Perl flags, as
``regexp.Compile``) and writes a Python pattern that matches the same strings. Whatever Go
refuses is refused, and so is the little Python cannot express (Unicode scripts such as
``\\p{Greek}``), each saying what and where. Captures become non-capturing groups: a filter
only asks whether a name matches.
"""

from __future__ import annotations

import bisect
import functools
import re
import warnings
from dataclasses import dataclass, field, replace

MAX_RUNE = 0x10FFFF
MAX_REPEAT = 1000  # Go's bound on {n,m}
MAX_DEPTH = 100  # groups nested deeper are refused: Python's compiler recurses on them

Ranges = list[tuple[int, int]]

# Go's POSIX classes, ASCII only, as in regexp/syntax's perl_groups.go
POSIX_CLASSES: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)],
    "blank": [(0x09, 0x09), (0x20, 0x20)],
    "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
PERL_CLASSES: dict[str, Ranges] = {
    "d": POSIX_CLASSES["digit"],
    "s": [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)],  # no \v, unlike [[:space:]]
    "w": POSIX_CLASSES["word"],
}
# Go's Unicode general categories; its one-letter groups are their unions (C without Cn)
CATEGORIES = frozenset((
    "Cc", "Cf", "Co", "Cs", "Ll", "Lm", "Lo", "Lt", "Lu", "Mc", "Me", "Mn", "Nd", "Nl", "No",
    "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "Sc", "Sk", "Sm", "So", "Zl", "Zp", "Zs",
))  # fmt: skip
SIMPLE_ESCAPES = {"a": 0x07, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}
ESCAPE_HINTS = {
    "Z": " (Go writes the end of the text as \\z)",
    "u": " (Go writes a code point as \\x{hhhh})",
    "U": " (Go writes a code point as \\x{hhhhhh})",
}
FLAG_FIELDS = {"i": "fold", "m": "multi_line", "s": "dot_nl", "U": "ungreedy"}
PYTHON_ONLY_GROUPS = (  # (prefix, what it is, hint); "(?<" after the lookbehinds
    ("(?=", "the lookahead (?=", ""),
    ("(?!", "the negative lookahead (?!", ""),
    ("(?<=", "the lookbehind (?<=", ""),
    ("(?<!", "the negative lookbehind (?<!", ""),
    ("(?<", "the named group (?<name>", "; write (?P<name>...) instead"),
    ("(?P=", "the backreference (?P=", ""),
    ("(?>", "the atomic group (?>", ""),
    ("(?#", "the comment (?#", ""),
    ("(?(", "the conditional group (?(", ""),
)
_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(?:(,)(0|[1-9][0-9]*)?)?\}")
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"


class GoRegexError(ValueError):
    """A pattern Go refuses, or one Python cannot match the same way; the message says what."""


def compile_go(pattern: str) -> re.Pattern[str]:
    """The Python pattern matching what Go's ``regexp.MustCompile(pattern)`` matches."""
    translated = translate(pattern)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a FutureWarning here would be a translation bug
        try:
            return re.compile(translated)
        except (re.error, Warning, RecursionError) as exc:
            raise GoRegexError(f"cannot be translated to Python's re ({exc})") from None


def translate(pattern: str) -> str:
    """Python ``re`` syntax for a Go (RE2) pattern; GoRegexError when Go refuses it or when it
    has no Python equivalent."""
    return _Translator(pattern).run()


def _invalid(problem: str, position: int) -> GoRegexError:
    return GoRegexError(f"not a valid regular expression: {problem} at position {position}")


def _unsupported(problem: str, position: int, hint: str = "") -> GoRegexError:
    return GoRegexError(
        f"{problem} at position {position} is not supported by Go's regexp (RE2 syntax), which "
        f"node_exporter uses and this exporter follows{hint}"
    )


@dataclass(frozen=True)
class _Flags:
    fold: bool = False  # i
    multi_line: bool = False  # m
    dot_nl: bool = False  # s
    ungreedy: bool = False  # U


@dataclass(frozen=True)
class _Piece:
    text: str
    kind: str  # "atom", "repeated" or "assertion": the last two are wrapped before a repeat


@dataclass
class _Group:
    start: int  # position of its "(" (-1 for the whole pattern)
    flags: _Flags
    alternatives: list[str] = field(default_factory=list)
    pieces: list[_Piece] = field(default_factory=list)

    def text(self) -> str:
        return "|".join([*self.alternatives, "".join(p.text for p in self.pieces)])


class _Translator:
    """Go's parser (regexp/syntax/parse.go) step by step, writing Python syntax as it goes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.stack = [_Group(-1, _Flags())]
        self.last_repeat = -1  # where the repetition operator just read starts (-1: none)

    @property
    def group(self) -> _Group:
        return self.stack[-1]

    def run(self) -> str:
        for index, char in enumerate(self.text):
            if 0xD800 <= ord(char) <= 0xDFFF:  # a byte that was not UTF-8 (surrogateescape)
                raise _invalid("invalid UTF-8", index)
        while self.pos < len(self.text):
            self.step()
        if len(self.stack) > 1:
            raise _invalid("missing closing )", self.group.start)
        return self.group.text()

    def step(self) -> None:
        text, pos = self.text, self.pos
        char = text[pos]
        repeat = -1
        if char == "(":
            if text.startswith("(?", pos):
                self.perl_group()
            else:
                self.open_group(pos, self.group.flags, pos + 1)
        elif char == "|":
            self.group.alternatives.append("".join(p.text for p in self.group.pieces))
            self.group.pieces = []
            self.pos += 1
        elif char == ")":
            self.close_group()
        elif char == "^":
            self.add("(?m:^)" if self.group.flags.multi_line else "^", "assertion", pos + 1)
        elif char == "$":
            self.add("(?m:$)" if self.group.flags.multi_line else r"\Z", "assertion", pos + 1)
        elif char == ".":
            self.add("(?s:.)" if self.group.flags.dot_nl else ".", "atom", pos + 1)
        elif char == "[":
            self.char_class()
        elif char in "*+?":
            repeat = self.repeat(pos, pos + 1, char)
        elif char == "{" and (match := _REPEAT.match(text, pos)):
            low, comma, high = match.group(1), match.group(2), match.group(3)
            least = int(low)
            most = int(high) if high else (None if comma else least)
            if least > MAX_REPEAT or (most is not None and (most > MAX_REPEAT or least > most)):
                raise _invalid(f"invalid repeat count {match.group()}", pos)
            repeat = self.repeat(pos, match.end(), match.group())  # Python reads it alike
        elif char == "\\":
            self.escape_outside_class()
        else:
            self.literal(ord(char), pos + 1)
        self.last_repeat = repeat

    def add(self, text: str, kind: str, end: int) -> None:
        self.group.pieces.append(_Piece(text, kind))
        self.pos = end

    def literal(self, code: int, end: int) -> None:
        char = _char(code)
        if self.group.flags.fold and chr(code).lower() != chr(code).upper():
            char = f"(?i:{char})"
        self.add(char, "atom", end)

    def repeat(self, start: int, end: int, spec: str) -> int:
        lazy = self.text.startswith("?", end)
        if lazy:
            end += 1
        if self.last_repeat >= 0:
            raise _invalid(
                f"invalid nested repetition operator {self.text[self.last_repeat : end]}"
                " (Go has no possessive or doubled repetition)",
                self.last_repeat,
            )
        if not self.group.pieces:
            raise _invalid(f"missing argument to repetition operator {self.text[start:end]}", start)
        piece = self.group.pieces.pop()
        atom = piece.text if piece.kind == "atom" else f"(?:{piece.text})"
        non_greedy = lazy != self.group.flags.ungreedy
        self.add(atom + spec + ("?" if non_greedy else ""), "repeated", end)
        return start

    def open_group(self, start: int, flags: _Flags, end: int) -> None:
        if len(self.stack) > MAX_DEPTH:
            raise GoRegexError(
                f"groups nest more than {MAX_DEPTH} deep at position {start}: not supported here"
            )
        self.stack.append(_Group(start, flags))
        self.pos = end

    def close_group(self) -> None:
        if len(self.stack) == 1:
            raise _invalid("unexpected )", self.pos)
        inner = self.stack.pop()
        self.add(f"(?:{inner.text()})", "atom", self.pos + 1)

    def perl_group(self) -> None:
        """``(?P<name>``, ``(?flags)`` and ``(?flags:``; every other ``(?`` is refused."""
        text, start = self.text, self.pos
        if text.startswith("(?P<", start) and len(text) - start > 4:
            close = text.find(">", start)
            if close < 0:
                raise _invalid(f"invalid named capture {text[start:]}: missing >", start)
            name = text[start + 4 : close]
            if not name or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
                raise _invalid(f"invalid named capture {text[start : close + 1]}", start)
            self.open_group(start, self.group.flags, close + 1)
            return
        for prefix, what, hint in PYTHON_ONLY_GROUPS:
            if text.startswith(prefix, start):
                raise _unsupported(what, start, hint)
        flags, index, negating, saw_flag = self.group.flags, start + 2, False, False
        while index < len(text):
            char = text[index]
            index += 1
            if char in FLAG_FIELDS:
                flags = replace(flags, **{FLAG_FIELDS[char]: not negating})
                saw_flag = True
            elif char == "-" and not negating:
                negating, saw_flag = True, False
            elif char in ":)" and not (negating and not saw_flag):
                if char == ":":
                    self.open_group(start, flags, index)
                else:
                    self.group.flags = flags
                    self.pos = index
                return
            else:
                break
        problem = f"invalid or unsupported Perl syntax {text[start:index]}"
        raise _invalid(f"{problem} (Go knows the flags i, m, s and U)", start)

    def escape_outside_class(self) -> None:
        text, pos = self.text, self.pos
        after = text[pos + 1 : pos + 2]
        if after == "A":
            self.add(r"\A", "assertion", pos + 2)
        elif after == "z":
            self.add(r"\Z", "assertion", pos + 2)
        elif after in ("b", "B"):
            self.add(f"(?a:\\{after})", "assertion", pos + 2)  # Go's word boundary is ASCII
        elif after == "C":
            raise _invalid(r"invalid escape sequence \C (Go matches no single bytes)", pos)
        elif after == "Q":  # \Q...\E: literal text, to \E or the end
            close = text.find(r"\E", pos + 2)
            end = len(text) if close < 0 else close
            for index in range(pos + 2, end):
                self.literal(ord(text[index]), index + 1)
            self.pos = end if close < 0 else close + 2
        elif after and after in "pPdDsSwW":
            ranges, end = self.class_escape(pos)
            self.add(self.class_text(ranges, negated=False), "atom", end)
        else:
            code, end = self.escape(pos)
            self.literal(code, end)

    def escape(self, pos: int) -> tuple[int, int]:
        """The code point of the single-character escape at ``pos`` and where it ends."""
        text = self.text
        if pos + 1 >= len(text):
            raise _invalid("trailing backslash at end of expression", pos)
        char, end = text[pos + 1], pos + 2
        if char.isascii() and not char.isalnum():
            return ord(char), end
        if char in "1234567" and not (end < len(text) and text[end] in _OCTAL):
            raise _unsupported(f"the backreference {text[pos:end]}", pos)
        if char in _OCTAL:
            code = int(char)
            for _ in range(2):
                if end < len(text) and text[end] in _OCTAL:
                    code, end = code * 8 + int(text[end]), end + 1
            return code, end
        if char == "x":
            if text.startswith("{", end):
                close = text.find("}", end)
                digits = text[end + 1 : close] if close >= 0 else ""
                if digits and all(c in _HEX for c in digits) and int(digits, 16) <= MAX_RUNE:
                    return int(digits, 16), close + 1
                raise _invalid(f"invalid escape sequence {text[pos : max(close + 1, end)]}", pos)
            digits = text[end : end + 2]
            if len(digits) == 2 and all(c in _HEX for c in digits):
                return int(digits, 16), end + 2
            raise _invalid(f"invalid escape sequence {text[pos : end + len(digits)]}", pos)
        if char in SIMPLE_ESCAPES:
            return SIMPLE_ESCAPES[char], end
        raise _invalid(f"invalid escape sequence \\{char}{ESCAPE_HINTS.get(char, '')}", pos)

    def class_escape(self, pos: int) -> tuple[Ranges, int]:
        """``\\d``-style and ``\\p``-style classes at ``pos``, as code point ranges."""
        text = self.text
        kind = text[pos + 1]
        if kind in "dDsSwW":
            return self.group_ranges(PERL_CLASSES[kind.lower()], kind.isupper()), pos + 2
        positive = kind == "p"
        if pos + 2 >= len(text):
            raise _invalid(f"invalid character class range \\{kind}", pos)
        if text[pos + 2] != "{":
            name, end = text[pos + 2], pos + 3
        else:
            close = text.find("}", pos)
            if close < 0:
                raise _invalid(f"invalid character class range {text[pos:]}: missing }}", pos)
            name, end = text[pos + 3 : close], close + 1
        if name.startswith("^"):
            positive, name = not positive, name[1:]
        ranges = unicode_class(name)
        if ranges is None:
            raise GoRegexError(
                f"unknown or unsupported Unicode class {text[pos:end]} at position {pos}: "
                "Any and the general categories (L, Lu, Ll, N, Nd, P, S, Z, C, ...) are "
                "supported, not scripts such as \\p{Greek}"
            )
        return self.group_ranges(ranges, not positive), end

    def group_ranges(self, ranges: Ranges, negated: bool) -> Ranges:
        """A class's ranges, negated as Go does under (?i): folded first, then complemented."""
        if not negated:
            return ranges
        return _complement(_folded(ranges) if self.group.flags.fold else ranges)

    def char_class(self) -> None:
        text, start = self.text, self.pos
        index = start + 1
        negated = text.startswith("^", index)
        if negated:
            index += 1
        ranges: Ranges = []
        first = True  # "]" first is a literal
        while first or index >= len(text) or text[index] != "]":
            if index >= len(text):
                raise _invalid("missing closing ]", start)
            first = False
            if text.startswith("[:", index) and len(text) - index > 2:
                close = text.find(":]", index + 2)
                if close >= 0:
                    name = text[index + 2 : close]
                    members = POSIX_CLASSES.get(name.removeprefix("^"))
                    if members is None:
                        raise _invalid(
                            f"invalid character class {text[index : close + 2]} (Go knows "
                            f"[:{':], [:'.join(POSIX_CLASSES)}:], each also as [:^name:])",
                            index,
                        )
                    ranges += self.group_ranges(members, name.startswith("^"))
                    index = close + 2
                    continue
            if text.startswith("\\", index) and text[index + 1 : index + 2] in tuple("pPdDsSwW"):
                more, index = self.class_escape(index)
                ranges += more
                continue
            low, after = self.class_char(index, start)
            high = low
            if text.startswith("-", after) and after + 1 < len(text) and text[after + 1] != "]":
                high, end = self.class_char(after + 1, start)
                if high < low:
                    raise _invalid(f"invalid character class range {text[index:end]}", index)
                after = end
            ranges.append((low, high))
            index = after
        self.add(self.class_text(ranges, negated), "atom", index + 1)

    def class_char(self, index: int, start: int) -> tuple[int, int]:
        if index >= len(self.text):
            raise _invalid("missing closing ]", start)
        if self.text[index] == "\\":
            return self.escape(index)
        return ord(self.text[index]), index + 1

    def class_text(self, ranges: Ranges, negated: bool) -> str:
        merged = _merged(ranges)
        if not merged:  # Python has no empty set: one that matches nothing, or its opposite
            merged, negated = [(0, MAX_RUNE)], not negated
        items = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in merged)
        text = f"[{'^' if negated else ''}{items}]"
        return f"(?i:{text})" if self.group.flags.fold else text


def unicode_class(name: str) -> Ranges | None:
    """Go's ``\\p{name}`` for Any and the general categories; None for other names."""
    if name == "Any":
        return [(0, MAX_RUNE)]
    if name not in CATEGORIES and not (len(name) == 1 and name in "CLMNPSZ"):
        return None
    table = _category_table()
    return _merged(
        [r for category in CATEGORIES if category.startswith(name) for r in table[category]]
    )


@functools.cache
def _category_table() -> dict[str, Ranges]:
    """Code point ranges of each general category, from Python's Unicode database (a pass over
    every code point, about 0.4 s, once and only for a pattern with ``\\p``)."""
    import unicodedata

    table: dict[str, Ranges] = {}
    current, start = unicodedata.category("\0"), 0
    for code in range(1, MAX_RUNE + 2):
        category = unicodedata.category(chr(code)) if code <= MAX_RUNE else ""
        if category != current:
            table.setdefault(current, []).append((start, code - 1))
            current, start = category, code
    return table


def _merged(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _complement(ranges: Ranges) -> Ranges:
    result: Ranges = []
    next_free = 0
    for low, high in _merged(ranges):
        if low > next_free:
            result.append((next_free, low - 1))
        next_free = high + 1
    if next_free <= MAX_RUNE:
        result.append((next_free, MAX_RUNE))
    return result


def _folded(ranges: Ranges) -> Ranges:
    """The ranges with every character that matches one of theirs under (?i) added."""
    merged = _merged(ranges)
    starts = [low for low, _ in merged]

    def contains(code: int) -> bool:
        index = bisect.bisect_right(starts, code) - 1
        return index >= 0 and code <= merged[index][1]

    extra = [(c, c) for orbit in _case_orbits() if any(map(contains, orbit)) for c in orbit]
    return _merged(merged + extra)


@functools.cache
def _case_orbits() -> list[tuple[int, ...]]:
    """Characters that match each other under (?i), in Go as in Python: a letter, its other
    cases and their look-alikes (s, S and the long s; k, K and the Kelvin sign). A pass over
    every code point, once, and only for a negated class under (?i)."""
    orbits: dict[str, set[int]] = {}
    for code in range(MAX_RUNE + 1):
        char = chr(code)
        upper = char.upper()
        key = upper.lower() if len(upper) == 1 else char.lower()
        if len(key) == 1 and (key != char or upper != char):
            orbits.setdefault(key, {ord(key)}).add(code)
    return [tuple(sorted(orbit)) for orbit in orbits.values() if len(orbit) > 1]


def _char(code: int) -> str:
    """One code point as Python pattern text that is literal anywhere, in a set or not."""
    char = chr(code)
    if char.isascii() and (char.isalnum() or char == "_"):
        return char
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
