"""Keyset pagination: one page of a list in a stable order, and a cursor for the next page.

A fleet's tenant can have thousands of collectors and keys, so no list is read or sent whole.
Offsets would skip or repeat rows when others are added between two pages, and cost more the
deeper one goes; a keyset cursor (the sort key of the last row shown) does neither. The cursor
is base64url JSON of that key, after a tag of the kind of list it came from (what the list holds
and its order: the collectors, a tenant's members, the users...): opaque to clients, checked when
it comes back, so a cursor that was tampered with or belongs to another list is a 400 naming it,
never a server error. Within one kind of list a cursor only says where to start: the same list
of another tenant, or with another search, starts after the same key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from tenants.errors import Invalid

T = TypeVar("T")
Key = tuple[str | int | datetime, ...]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The longest cursor a list gives out: its tag and the longest key, an e-mail address of 254
# characters (a tenant's name has at most 200) of up to 4 UTF-8 bytes each, ~1,400 characters.
MAX_CURSOR_LENGTH = 2048
KIND_LENGTH = 8  # hex digits of a list kind's tag


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True)
class Order:
    """A list's sort: columns that together are unique, all ascending or all descending."""

    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: bool = False

    def __post_init__(self) -> None:
        """Refuses a column that may be NULL: NULL compares as neither before nor after a key,
        so its rows would drop out of every page after the first."""
        nullable = [
            f"{column.class_.__name__}.{column.key}"
            for column in self.columns
            if getattr(column.expression, "nullable", False)
        ]
        if nullable:
            raise ValueError(f"a list cannot be paged by a column that may be NULL: {nullable}")

    def by(self) -> list[ColumnElement[Any]]:
        return [column.desc() if self.descending else column.asc() for column in self.columns]

    def after(self, key: Key) -> ColumnElement[bool]:
        """Rows that come after ``key`` in this order, as nested comparisons rather than a row
        value, so that every value is bound with its own column's type on every database.

        The nested comparisons are an OR, which PostgreSQL applies only as a filter on the rows
        an index hands over: the first sort column's bound, redundant but ANDed on its own, is
        what lets an index on (filter, sort columns) start reading at the cursor instead of at
        the top of the list.
        """
        clauses: list[ColumnElement[bool]] = []
        for index, column in enumerate(self.columns):
            beyond = column < key[index] if self.descending else column > key[index]
            equal = [earlier == key[i] for i, earlier in enumerate(self.columns[:index])]
            clauses.append(and_(*equal, beyond) if equal else beyond)
        if len(clauses) == 1:
            return clauses[0]
        first = self.columns[0]
        start = first <= key[0] if self.descending else first >= key[0]
        return and_(start, or_(*clauses))

    def key_of(self, row: Any) -> Key:
        return tuple(getattr(row, column.key) for column in self.columns)

    def decode(self, cursor: str, field: str = "cursor", kind: str = "") -> Key:
        """The key in ``cursor``, which must be one ``encode_cursor(key, kind)`` made."""
        problem = f"{field} is not one this list gave out: start again without it"
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise Invalid(problem, field)
        try:
            tagged = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii") + b"=="))
        except (UnicodeError, binascii.Error, ValueError):
            raise Invalid(problem, field) from None
        if not isinstance(tagged, list) or len(tagged) != len(self.columns) + 1:
            raise Invalid(problem, field)
        tag, *values = tagged
        if tag != kind:  # another list's cursor
            raise Invalid(problem, field)
        try:
            return tuple(
                _typed(value, column.type.python_type)
                for value, column in zip(values, self.columns, strict=True)
            )
        except (TypeError, ValueError, OverflowError):
            raise Invalid(problem, field) from None


def _typed(value: object, kind: type) -> str | int | datetime:
    """A cursor's value as its column's type; raises ValueError (or TypeError) if it is not."""
    if kind is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has its offset")
        return moment.astimezone(UTC)
    if kind is int and type(value) is int and 0 <= value < 2**63:
        return value
    if kind is str and isinstance(value, str):
        return value
    raise TypeError(f"not a {kind.__name__}")


def list_kind(query: Select[*tuple[Any, ...]], order: Order) -> str:
    """The tag of a kind of list: what ``query`` selects and ``order`` sorts by, not its
    filters (a tenant, a search), so that a page's cursor is refused by any other kind."""
    selected = [
        f"{getattr(column.get('entity'), '__name__', '')}.{column['name']}"
        for column in query.column_descriptions
    ]
    direction = "desc" if order.descending else "asc"
    ordered = [f"{column.class_.__name__}.{column.key}" for column in order.columns]
    text = f"{','.join(selected)} by {','.join(ordered)} {direction}"
    return hashlib.sha256(text.encode()).hexdigest()[:KIND_LENGTH]


def encode_cursor(key: Key, kind: str = "") -> str:
    plain = [kind, *(value.isoformat() if isinstance(value, datetime) else value for value in key)]
    text = json.dumps(plain, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


def fetch_page(
    db: Session,
    query: Select[*tuple[Any, ...]],
    order: Order,
    limit: int,
    cursor: str | None = None,
    *,
    rows: bool = False,
    row_key: Callable[[Any], Any] | None = None,
) -> Page[Any]:
    """``limit`` rows of ``query`` after ``cursor``, and the cursor of the page after them.

    ``rows=True`` returns result rows (for queries of several entities); ``row_key`` picks,
    from such a row, the object whose attributes make the sort key.
    """
    kind = list_kind(query, order)
    if cursor:
        query = query.where(order.after(order.decode(cursor, kind=kind)))
    query = query.order_by(*order.by()).limit(limit + 1)
    found: Sequence[Any] = db.execute(query).all() if rows else db.scalars(query).all()
    items = list(found[:limit])
    more = len(found) > limit
    last = (row_key or (lambda row: row))(items[-1]) if more else None
    return Page(items, encode_cursor(order.key_of(last), kind) if more else None)
