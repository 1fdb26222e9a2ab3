"""From a request body to the payload written to storage, or to the list of its bad lines.

Every line is checked by ``lineprotocol.parse_line``'s rules and by the service's limits, and
rewritten with the tags the key forces (``ForcedTags``: ``tenant`` and ``collector``, and
``host`` for a collector pinned to its hostname; a client's own are replaced), timestamps in
nanoseconds. No key may write a field named as one of those three tags. A batch with any bad
line raises InvalidBatch: nothing is written.

Speed matters here (architecture target: ingest at least 0.8 of direct writes), so the body
stays bytes (valid UTF-8 is checked once, then only lines the exact parser must see are decoded)
and most lines take a fast path: one possessive regular expression accepts lines without
backslashes or quotes whose numbers are certainly in range; the series part (measurement and
tags) is rewritten once and cached, since a collector sends the same series every interval.

A batch whose series are all cached, each line with a timestamp, is checked and rewritten whole.
Where the optional C extension ``ingest._batchfast`` was built (setup.py; it needs a C compiler
at install time) this is one pass over the body: split, look up, validate by the same grammar
as the regular expression, and write the payload into one buffer. Instead of a lookup per line
it follows the series of the last batch that began with the same series (a memo), as long as
they come in the same order. Elsewhere the same checks run in Python's C-level loops and one
regular expression (``_whole_batch``). Both accept exactly the same batches and give the same
payload; anything else (None) goes line by line. Every line the fast paths do not accept goes
through the exact parser. Tests hold the C path to the Python one and the fast paths to the
exact parser. Field values pass through in the client's validated spelling (``1.`` and
``1.0`` are the same float to InfluxDB); escapes, tag order and timestamps are canonical.

Points without a timestamp get the time the request was received, the same for the whole batch
(as InfluxDB itself does), so the payload ingest writes is fully determined and a replay of it
overwrites rather than duplicates. A client retrying such a batch still duplicates it: collectors
should send timestamps, as ours does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, repeat
from operator import contains, itemgetter
from typing import Final

from ingest.lineprotocol import (
    KEY_SEPARATOR,
    MAX_KEY_BYTES,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    PRECISION_NS,
    FieldValue,
    LineProtocolError,
    Point,
    Unsigned,
    escape_key,
    format_point,
    parse_line,
    series_key,
    split_lines,
    tag_value_problem,
)

# A batch's series (each followed by a newline) and their rewritten heads, which the C path
# follows in a later batch with the same series in the same order.
Memo = tuple[bytes, tuple[bytes, ...]]
# ingest._batchfast.whole_batch(body, cache, memo, lowest, highest, zeros, max_line_bytes,
#                               max_fields, max_points, allow_unsigned, refused_field_keys)
#     -> (payload, points, memo) | None
NativeWholeBatch = Callable[
    [
        bytes,
        dict[bytes, bytes],
        Memo | None,
        bytes,
        bytes,
        bytes,
        int,
        int,
        int,
        bool,
        tuple[bytes, ...],
    ],
    tuple[bytes, int, Memo] | None,
]


def _load_native() -> NativeWholeBatch | None:
    """The C whole-batch path, or None where it was not built (no compiler at install time)."""
    try:
        from ingest._batchfast import whole_batch
    except ImportError:
        return None
    native: NativeWholeBatch = whole_batch
    return native


NATIVE: Final = _load_native()

# A line's head (its rewritten series and a space) and the rest after it no longer than this
# together leave room for its longest field key (the rest holds it): series key, separator and
# field key within InfluxDB's MAX_KEY_BYTES.
_KEY_ROOM: Final = MAX_KEY_BYTES - len(KEY_SEPARATOR) + 1


@dataclass(frozen=True)
class BatchRules:
    """Limits every point must meet; durations in nanoseconds."""

    max_line_bytes: int = 65_536
    max_tags: int = 64
    max_fields: int = 256
    max_points: int = 100_000
    max_age_ns: int = 7 * 86_400 * 10**9
    max_future_ns: int = 600 * 10**9
    allow_unsigned: bool = False
    max_issues: int = 100


@dataclass(frozen=True)
class LineIssue:
    line: int  # 1-based, counting every line of the body
    reason: str


class InvalidBatch(Exception):
    """The batch has bad lines: ``issues`` lists the first ``max_issues``, ``count`` all."""

    def __init__(self, issues: Sequence[LineIssue], count: int, points: int) -> None:
        self.issues = list(issues)
        self.count = count
        self.points = points
        super().__init__(
            f"{count} invalid line(s); first: line {issues[0].line}: {issues[0].reason}"
        )


class TooManyPoints(Exception):
    def __init__(self, points: int, limit: int) -> None:
        self.points = points
        self.limit = limit
        super().__init__(f"{points} points in one request; at most {limit} are accepted")


@dataclass(frozen=True)
class PreparedBatch:
    payload: bytes  # canonical line protocol, nanosecond timestamps
    points: int


class ForcedTags:
    """The tags a key's points are written with, whatever the client sent: ``collector`` and
    ``tenant``, and ``host`` when the key's collector is pinned to its hostname (``host``
    None: the client's own ``host`` tag is kept, for a collector that pushes for many hosts).

    A field may not have the name of a forced tag, nor be named ``host`` from a free key: where
    a measurement has a field and a tag of one name, InfluxQL reads the unqualified name
    (``WHERE host = 'x'``, as every dashboard filters) as the field. ``refused_field_keys``
    names them, for every path.
    """

    def __init__(self, tenant: str, collector: str, host: str | None = None) -> None:
        named = [("tenant", tenant), ("collector", collector)]
        if host is not None:
            named.append(("host", host))
        for key, value in named:
            problem = tag_value_problem(value)
            if problem:
                raise ValueError(f"the {key} name {value!r} cannot be a tag value: it {problem}")
        self.pairs: tuple[tuple[str, str], ...] = tuple(sorted(named))
        self.keys: tuple[str, ...] = tuple(key for key, _ in self.pairs)
        self.keys_bytes: tuple[bytes, ...] = tuple(key.encode() for key in self.keys)
        self.refused_field_keys: tuple[str, ...] = tuple(sorted({*self.keys, "host"}))
        self.refused_field_keys_bytes: tuple[bytes, ...] = tuple(
            key.encode() for key in self.refused_field_keys
        )
        self.escaped: tuple[tuple[bytes, bytes], ...] = tuple(
            (key.encode(), escape_key(value).encode()) for key, value in self.pairs
        )
        # no value holds a NUL (a control character, refused above): the key is unambiguous
        self.cache_key = "\x00".join(value for _, value in named)
        # The longest line the whole-batch paths take with these tags: its rewritten head is at
        # most its series, what these tags add (",key=value" each; a client's own tag of a
        # forced key goes) and a space, so head and rest together are at most the line and that.
        added = sum(len(key) + len(value) + 2 for key, value in self.escaped)
        self.fitting_line_bytes = _KEY_ROOM - added


def _fast_patterns(
    allow_unsigned: bool, refused_field_keys: tuple[str, ...]
) -> tuple[re.Pattern[bytes], re.Pattern[bytes], str]:
    """A line with no backslash or quote whose numbers are certainly in range, and its part
    after the series (for series already seen); both for UTF-8 bytes. Field keys named as one
    of ``refused_field_keys`` are not matched (the exact parser refuses them).

    Groups: series (measurement and tags), fields, timestamp. Integers of up to 18 digits and
    floats of up to 200 integral digits with a 2-digit exponent cannot overflow; longer ones
    are left to the exact parser. Possessive quantifiers keep the match linear. Bytes of
    non-ASCII characters match the name classes, as those characters do in the exact parser.
    """
    name = r'[^\x00-\x20\x7f,=\\"_#][^\x00-\x20\x7f,=\\"]*+'
    tag_key = r"(?!time=)" + name  # refused by InfluxDB: the exact parser says so
    reserved = "|".join(re.escape(key) for key in ("time", *refused_field_keys))
    field_key = rf"(?!(?:{reserved})=)" + name  # refused: InfluxDB's, then ours
    tag_value = r'[^\x00-\x20\x7f,=\\"]++'
    unsigned = r"|[0-9]{1,19}+u" if allow_unsigned else ""
    value = (
        r"(?>-?+[0-9]{1,18}+i" + unsigned + r"|-?+(?:[0-9]{1,200}+(?:\.[0-9]*+)?+|\.[0-9]++)"
        r"(?:[eE][+-]?+[0-9]{1,2}+)?+|t(?:rue)?+|T(?:rue|RUE)?+|f(?:alse)?+|F(?:alse|ALSE)?+)"
    )
    fields = f"{field_key}={value}(?:,{field_key}={value})*+"
    rest = rf"({fields})(?: (-?+[0-9]{{1,19}}+))?+"
    line = rf"({name}(?:,{tag_key}={tag_value})*+) {rest}"
    return re.compile(line.encode()), re.compile(rest.encode()), fields


def _block_pattern(fields: str, digits: int) -> re.Pattern[bytes]:
    """Many lines' parts after the series, each with a timestamp of exactly ``digits`` digits."""
    rest = f"{fields} [1-9][0-9]{{{digits - 1}}}+"
    return re.compile(f"(?:{rest}\n)*+{rest}".encode())


_FIELD_KEYS = re.compile(rb"([^,=]+)=")
_FIRST = itemgetter(0)
_THIRD = itemgetter(2)


def _timestamp_text(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration_text(ns: int) -> str:
    seconds = ns // 10**9
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class _Grammar:
    """The fast paths' patterns for one set of refused field keys."""

    def __init__(self, allow_unsigned: bool, refused_field_keys: tuple[str, ...]) -> None:
        line_pattern, rest_pattern, self.fields_pattern = _fast_patterns(
            allow_unsigned, refused_field_keys
        )
        self.line = line_pattern.fullmatch
        self.rest = rest_pattern.fullmatch
        self.blocks: dict[int, re.Pattern[bytes]] = {}

    def block(self, digits: int) -> re.Pattern[bytes]:
        block = self.blocks.get(digits)
        if block is None:
            block = self.blocks[digits] = _block_pattern(self.fields_pattern, digits)
        return block


class BatchPreparer:
    """Validates and rewrites bodies under one set of rules; holds a bounded series cache.

    The cache maps a series as sent (bytes) to its rewritten form followed by the space that
    separates it from the fields, per key's forced tags. ``native=False`` keeps to the Python
    whole-batch path even where the C one is built (for tests).
    """

    def __init__(
        self, rules: BatchRules, series_cache_size: int = 200_000, native: bool = True
    ) -> None:
        self.rules = rules
        self._native = NATIVE if native else None
        # per refused field keys (one set in practice: the forced tags' keys and host)
        self._grammars: dict[tuple[str, ...], _Grammar] = {}
        self._cache: dict[str, dict[bytes, bytes]] = {}
        self._cache_limit = series_cache_size
        self._cached = 0
        # per forced tags, per first series of a batch: the memo the C path follows
        self._memos: dict[str, dict[bytes, Memo]] = {}
        self._memo_lines = 0

    def _grammar(self, forced: ForcedTags) -> _Grammar:
        refused = forced.refused_field_keys
        grammar = self._grammars.get(refused)
        if grammar is None:
            grammar = self._grammars[refused] = _Grammar(self.rules.allow_unsigned, refused)
        return grammar

    def prepare(
        self, body: bytes, forced: ForcedTags, precision: str, now_ns: int, fast: bool = True
    ) -> PreparedBatch:
        """The payload for storage; raises InvalidBatch or TooManyPoints.

        ``precision`` must be a key of PRECISION_NS (the caller answers 400 otherwise);
        ``fast=False`` sends every line through the exact parser (for tests).
        """
        multiplier = PRECISION_NS[precision]
        # A body that is not UTF-8 goes line by line through the exact parser, which names each
        # bad line, undecodable or not; the fast paths would pass bytes they never decode.
        if fast and not body.isascii():
            fast = _is_utf8(body)
        window = _Window(now_ns, self.rules)
        if fast and self._native is not None:
            # The C path refuses any CR (no name, value or timestamp holds one), so a body is
            # searched for CRs only after it was refused: then CR LF -> LF once, as split_lines
            # does (a CR LF inside a string stays there), and the C path is asked again.
            whole = self._whole_body(body, forced, multiplier, window)
            if whole is None and b"\r" in body and b'"' not in body:
                whole = self._whole_body(body.replace(b"\r\n", b"\n"), forced, multiplier, window)
            if whole is not None:
                return whole
        lines, starts = split_lines(body)
        if len(lines) > self.rules.max_points:
            points = sum(1 for line in lines if not _skipped(line))
            if points > self.rules.max_points:
                raise TooManyPoints(points, self.rules.max_points)
        if fast and self._native is None and starts is None:
            complete = lines[:-1] if len(lines) > 1 and not lines[-1] else lines
            whole = self._whole_batch(complete, forced, multiplier, window)
            if whole is not None:
                return whole
        out, issues, issue_count, skipped = self._rewrite(
            lines, starts, forced, multiplier, window, fast
        )
        if issue_count:
            raise InvalidBatch(issues, issue_count, len(lines) - skipped)
        return PreparedBatch(b"\n".join(out), len(out))

    def _rewrite(
        self,
        lines: list[bytes],
        starts: list[int] | None,
        forced: ForcedTags,
        multiplier: int,
        window: _Window,
        fast: bool,
    ) -> tuple[list[bytes], list[LineIssue], int, int]:
        """Each line rewritten, or the issues; ``starts`` holds each line's number in the body
        where a string spans lines (None: line i is the body's line i + 1). With ``fast`` off,
        lines may be any bytes: one that is not UTF-8 is an issue."""
        out: list[bytes] = []
        append = out.append
        issues: list[LineIssue] = []
        issue_count = skipped = 0
        max_bytes = self.rules.max_line_bytes
        max_fields = self.rules.max_fields
        cache = self._series_cache(forced) if fast else {}
        cached = cache.get
        rest_match = self._grammar(forced).rest
        low, high, now_stamp = window.low, window.high, window.now_text.encode()
        for index, line in enumerate(lines):
            try:
                if len(line) > max_bytes:
                    raise LineProtocolError(f"line longer than {max_bytes} bytes")
                # A cached series was checked whole: it has no space, so it ends at the first.
                series, _, rest = line.partition(b" ")
                head = cached(series)
                if head is None and fast:
                    head = self._learn_series(line, forced, cache)
                # a line long enough that a field key might not fit: the exact path measures it
                fits = head is not None and len(head) + len(rest) <= _KEY_ROOM
                found = rest_match(rest) if fits else None
                if head is None or found is None:
                    text = line.decode()  # UnicodeDecodeError only with fast off (prepare)
                    if _skipped(line):
                        skipped += 1
                    else:
                        append(self._exact(text, forced, multiplier, window))
                    continue
                fields, stamp = found.groups()
                if b"," in fields:
                    keys = _FIELD_KEYS.findall(fields)
                    if len(keys) > max_fields or len(set(keys)) != len(keys):
                        append(self._exact(line.decode(), forced, multiplier, window))
                        continue
                if stamp is None:
                    stamp = now_stamp
                else:
                    ns = int(stamp) * multiplier
                    if not low <= ns <= high:
                        raise LineProtocolError(window.problem(ns))
                    if multiplier != 1 or stamp[:1] == b"0" or stamp[:2] == b"-0":
                        stamp = b"%d" % ns
                append(head + fields + b" " + stamp)
            except (LineProtocolError, UnicodeDecodeError) as exc:
                issue_count += 1
                if len(issues) < self.rules.max_issues:
                    number = index + 1 if starts is None else starts[index]
                    reason = (
                        f"not valid UTF-8 at byte {exc.start + 1}"
                        if isinstance(exc, UnicodeDecodeError)
                        else str(exc)
                    )
                    issues.append(LineIssue(number, reason))
        return out, issues, issue_count, skipped

    def _whole_body(
        self, body: bytes, forced: ForcedTags, multiplier: int, window: _Window
    ) -> PreparedBatch | None:
        """_whole_batch in C, on the body before it is split (a final newline ends the last
        line): the same checks and payload, in one pass. It also returns None for more than
        max_points lines, which the line path then refuses as prepare() does before _whole_batch,
        and for lines too long to be sure of InfluxDB's key limit, as _whole_batch does.
        """
        cache = self._cache.get(forced.cache_key)
        bounds = window.digit_bounds(multiplier)
        if not cache or bounds is None or self._native is None:
            return None
        _, lowest, highest, zeros = bounds
        rules = self.rules
        max_line_bytes = min(rules.max_line_bytes, forced.fitting_line_bytes)
        space = body.find(b" ", 0, max_line_bytes)
        first = body[:space] if space > 0 else b""
        memo = self._memos.get(forced.cache_key, {}).get(first)
        found = self._native(
            body,
            cache,
            memo,
            lowest,
            highest,
            zeros,
            max_line_bytes,
            rules.max_fields,
            rules.max_points,
            rules.allow_unsigned,
            forced.refused_field_keys_bytes,
        )
        if found is None:
            return None
        payload, points, followed = found
        if followed is not memo:
            self._remember(forced.cache_key, first, memo, followed)
        return PreparedBatch(payload, points)

    def _remember(self, cache_key: str, first: bytes, old: Memo | None, new: Memo) -> None:
        """Keep ``new`` in place of ``old``; all memos hold as many lines as the cache at most."""
        self._memo_lines += len(new[1]) - (0 if old is None else len(old[1]))
        if self._memo_lines > self._cache_limit:  # bounded memory: start again when full
            self._memos.clear()
            self._memo_lines = len(new[1])
        self._memos.setdefault(cache_key, {})[first] = new

    def _whole_batch(
        self, lines: list[bytes], forced: ForcedTags, multiplier: int, window: _Window
    ) -> PreparedBatch | None:
        """Every line at once, in C-level loops and one regular expression, when each is a plain
        point of an already-seen series with a timestamp; None sends the batch line by line.
        Used where the C extension is not built; the reference the C path is tested against.

        The same checks as the line path, arranged for speed: series looked up in the cache
        (which holds only series that passed the line checks), every part after the series
        matched by one pattern, timestamps of one digit count compared as text.
        """
        cache = self._cache.get(forced.cache_key)
        bounds = window.digit_bounds(multiplier)
        if not cache or bounds is None:
            return None
        digits, lowest, highest, zeros = bounds
        # longer lines go line by line: there, one whose key may not fit goes to the exact path
        if max(map(len, lines)) > min(self.rules.max_line_bytes, forced.fitting_line_bytes):
            return None
        parts = list(map(bytes.partition, lines, repeat(b" ")))
        try:
            heads = list(map(cache.__getitem__, map(_FIRST, parts)))
        except KeyError:
            return None
        rests = list(map(_THIRD, parts))
        del parts
        block = self._grammar(forced).block(digits)
        joined = b"\n".join(rests)
        if block.fullmatch(joined) is None:
            return None
        stamps = list(map(itemgetter(slice(-digits, None)), rests))
        if min(stamps) < lowest or max(stamps) > highest:
            return None
        if b"," in joined:
            for rest in compress(rests, map(contains, rests, repeat(b","))):
                keys = _FIELD_KEYS.findall(rest)
                if len(keys) > self.rules.max_fields or len(set(keys)) != len(keys):
                    return None
        if zeros:
            rests = [rest + zeros for rest in rests]
        # head (with its space), rest, newline, head, rest, ...: one join, no string per line
        pieces = [b"\n"] * (3 * len(rests) - 1)
        pieces[0::3] = heads
        pieces[1::3] = rests
        return PreparedBatch(b"".join(pieces), len(lines))

    def _series_cache(self, forced: ForcedTags) -> dict[bytes, bytes]:
        if self._cached > self._cache_limit:  # bounded memory: start again when full
            self._cache.clear()
            self._cached = 0
        return self._cache.setdefault(forced.cache_key, {})

    def _learn_series(
        self, line: bytes, forced: ForcedTags, cache: dict[bytes, bytes]
    ) -> bytes | None:
        """The rewritten series of a line the fast pattern accepts whole, now cached; else None."""
        found = self._grammar(forced).line(line)
        return None if found is None else self._rewrite_series(found.group(1), forced, cache)

    def _rewrite_series(
        self, series: bytes, forced: ForcedTags, cache: dict[bytes, bytes]
    ) -> bytes | None:
        """Measurement and tags with the forced tags, sorted, and a space; None if the exact
        parser must see it. UTF-8 sorts as its characters do, so the order is the exact path's."""
        parts = series.split(b",")
        pairs = [(key, value) for key, _, value in (part.partition(b"=") for part in parts[1:])]
        if len({key for key, _ in pairs}) != len(pairs):
            return None
        own = [pair for pair in pairs if pair[0] not in forced.keys_bytes]
        if len(own) > self.rules.max_tags:
            return None
        own.extend(forced.escaped)
        own.sort()
        head = parts[0] + b"," + b",".join([key + b"=" + value for key, value in own]) + b" "
        # no room for a field key of one byte after the series key: the exact path names the line
        if len(head) - 1 + len(KEY_SEPARATOR) + 1 > MAX_KEY_BYTES:
            return None
        cache[series] = head
        self._cached += 1
        return head

    def _exact(self, line: str, forced: ForcedTags, multiplier: int, window: _Window) -> bytes:
        """The exact path: parse, apply the rules, format canonically; raises LineProtocolError."""
        point = parse_line(line)
        if not self.rules.allow_unsigned and any(
            isinstance(value, Unsigned) for _, value in point.fields
        ):
            raise LineProtocolError(
                "unsigned integers (5u) are not accepted: the storage (InfluxDB 1.x) has no "
                "unsigned type; send an integer (5i)"
            )
        own = tuple(pair for pair in point.tags if pair[0] not in forced.keys)
        if len(own) > self.rules.max_tags:
            raise LineProtocolError(f"{len(own)} tags; at most {self.rules.max_tags} are accepted")
        if len(point.fields) > self.rules.max_fields:
            raise LineProtocolError(
                f"{len(point.fields)} fields; at most {self.rules.max_fields} are accepted"
            )
        shadowing = [key for key, _ in point.fields if key in forced.refused_field_keys]
        if shadowing:
            tag = (
                "a tag ingest sets from the key"
                if shadowing[0] in forced.keys
                else "the host tag the dashboards filter on"
            )
            raise LineProtocolError(
                f"field {shadowing[0]!r} has the name of {tag}, and InfluxQL would read the "
                "field for the tag: rename the field"
            )
        stamp: int | str = window.now_text
        if point.timestamp is not None:
            stamp = point.timestamp * multiplier
            if not window.low <= stamp <= window.high:
                raise LineProtocolError(window.problem(stamp))
        own_and_forced = Point(point.measurement, own + forced.pairs, point.fields)
        key = series_key(own_and_forced)
        _check_key_length(key, point.fields)
        return format_point(own_and_forced, stamp, key).encode()

    def field_type_conflicts(self, body: bytes) -> InvalidBatch | None:
        """The lines of a batch that give a measurement's field another type than an earlier
        line gave it, as InvalidBatch; None when there are none.

        InfluxDB 1.6.7 refuses a whole write that does so when the write creates the shard (a
        new database, a new shard group): ``field type conflict`` without ``partial write``.
        prepare() does not look for this, to keep its fast paths fast: the service asks only
        when storage answered so. Every line is parsed again, by the exact parser, numbered as
        prepare() numbers them; ``body`` is one that prepare() accepted.
        """
        lines, starts = split_lines(body)
        first: dict[tuple[str, str], tuple[str, int]] = {}
        issues: list[LineIssue] = []
        count = points = 0
        for index, line in enumerate(lines):
            if _skipped(line):
                continue
            try:
                point = parse_line(line.decode())
            except (UnicodeDecodeError, LineProtocolError):  # not in a batch prepare() accepted
                continue
            points += 1
            number = index + 1 if starts is None else starts[index]
            reason = ""
            for key, value in point.fields:
                kind = _type_name(value)
                first_kind, first_line = first.setdefault((point.measurement, key), (kind, number))
                if first_kind != kind and not reason:  # the line's first conflict names it
                    reason = (
                        f"field {key[:40]!r} of measurement {point.measurement[:40]!r} is {kind} "
                        f"here and {first_kind} on line {first_line}: InfluxDB refuses a batch "
                        "that gives a field two types"
                    )
            if reason:
                count += 1
                if len(issues) < self.rules.max_issues:
                    issues.append(LineIssue(number, reason))
        return InvalidBatch(issues, count, points) if count else None


class _Window:
    """The accepted time range of one request, in nanoseconds."""

    def __init__(self, now_ns: int, rules: BatchRules) -> None:
        self.now_ns = now_ns
        self.now_text = str(now_ns)
        self.rules = rules
        self.low = max(MIN_TIMESTAMP, now_ns - rules.max_age_ns)
        self.high = min(MAX_TIMESTAMP, now_ns + rules.max_future_ns)

    def digit_bounds(self, multiplier: int) -> tuple[int, bytes, bytes, bytes] | None:
        """For a power-of-ten precision whose accepted timestamps all have one digit count:
        that count, the lowest and highest accepted timestamps as text, and the zeros that
        turn one into nanoseconds. None for other precisions and windows."""
        zeros = len(str(multiplier)) - 1
        if multiplier != 10**zeros:
            return None
        low = -(-self.low // multiplier)
        high = self.high // multiplier
        if low <= 0 or len(str(low)) != len(str(high)):
            return None
        return len(str(low)), b"%d" % low, b"%d" % high, b"0" * zeros

    def problem(self, ns: int) -> str:
        if not MIN_TIMESTAMP <= ns <= MAX_TIMESTAMP:
            return "timestamp out of range (InfluxDB stores 1677-09-21 to 2262-04-11)"
        if ns < self.low:
            return (
                f"timestamp {_timestamp_text(ns)} is older than "
                f"{_duration_text(self.rules.max_age_ns)}: check the precision and the clock"
            )
        return (
            f"timestamp {_timestamp_text(ns)} is more than "
            f"{_duration_text(self.rules.max_future_ns)} in the future: check the precision "
            "and the clock"
        )


def _skipped(line: bytes) -> bool:
    """Blank lines (of spaces and tabs, or empty) and comments, indented or not, carry no point.
    A line of other whitespace (a vertical tab, a no-break space...) is not blank: the exact
    parser refuses it, as InfluxDB does."""
    stripped = line.lstrip(b" \t")
    return not stripped or stripped[:1] == b"#"


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _type_name(value: FieldValue) -> str:
    """A field value's type, as InfluxDB names it in its field type conflicts."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Unsigned):
        return "an unsigned integer"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    return "a string"


def _check_key_length(key: str, fields: Sequence[tuple[str, FieldValue]]) -> None:
    """Refuse a point InfluxDB would refuse as ``max key length exceeded``: for each field, its
    series key (escaped, with the forced tags), KEY_SEPARATOR and the escaped field key must
    fit in MAX_KEY_BYTES."""
    key_bytes = len(key.encode())
    room = MAX_KEY_BYTES - len(KEY_SEPARATOR) - key_bytes
    name_bytes, name = max((len(escape_key(name).encode()), name) for name, _ in fields)
    if name_bytes > room:
        raise LineProtocolError(
            f"series key (measurement and tags, with the tags ingest sets from the key) of "
            f"{key_bytes} bytes with field key {name[:40]!r} of {name_bytes}: InfluxDB refuses "
            f"a point whose series key, {len(KEY_SEPARATOR)} bytes and a field key take more "
            f"than {MAX_KEY_BYTES} (here {key_bytes + len(KEY_SEPARATOR) + name_bytes})"
        )
