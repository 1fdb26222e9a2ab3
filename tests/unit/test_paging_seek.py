"""A cursor's condition bounds the first sort column on its own, so that an index on the list's
filter and sort columns starts reading at the cursor, and pages exactly as the nested
comparisons alone did: on SQLite always, on PostgreSQL too when DATABASE_URL is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Integer, String, and_, delete, insert, or_, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from perfanalysis.testing.postgres import throwaway_database
from tenants.db import make_engine
from tenants.models import UTCDateTime
from tenants.paging import Key, Order, fetch_page


class Base(DeclarativeBase):
    pass


class Entry(Base):
    __tablename__ = "paging_seek_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tenant_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    name: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(20))


class NestedOnly(Order):
    """The cursor condition as it was before the first column's bound: the nested comparisons."""

    def after(self, key: Key) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = []
        for index, column in enumerate(self.columns):
            beyond = column < key[index] if self.descending else column > key[index]
            equal = [earlier == key[i] for i, earlier in enumerate(self.columns[:index])]
            clauses.append(and_(*equal, beyond) if equal else beyond)
        return or_(*clauses)


SORTS = [
    (Entry.created_at, Entry.id),
    (Entry.name, Entry.id),
    (Entry.created_at, Entry.name, Entry.id),
    (Entry.id,),
]
# few distinct values, so that most rows tie on the first sort column (two times a microsecond apart)
TIMES = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
]
NAMES = ["a", "ab", "b", "B"]
TENANT = 1
MOST_ROWS = 40

entries = st.lists(
    st.tuples(
        st.integers(1, 10_000),
        st.sampled_from([TENANT, TENANT, 2]),
        st.sampled_from(TIMES),
        st.sampled_from(NAMES),
    ),
    unique_by=lambda entry: entry[0],
    max_size=MOST_ROWS,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('paging-seek') / 'seek.db'}"
        made = make_engine(url)
        Base.metadata.create_all(made)
        yield made
        made.dispose()
        return
    server = os.environ.get("DATABASE_URL")
    if not server:
        pytest.skip("PostgreSQL's run needs DATABASE_URL")
    with throwaway_database(server, "pa_seek") as url:
        made = make_engine(url)
        Base.metadata.create_all(made)
        yield made
        made.dispose()


def _walk(db: Session, order: Order, limit: int) -> list[list[int]]:
    """The ids on each page of TENANT's entries, following each page's cursor to the end."""
    query = select(Entry).where(Entry.tenant_id == TENANT)
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        page = fetch_page(db, query, order, limit, cursor)
        pages.append([entry.id for entry in page.items])
        if page.next_cursor is None:
            return pages
        assert len(pages) <= MOST_ROWS, "the cursor does not move on"
        cursor = page.next_cursor


@settings(max_examples=150, deadline=None)
@given(
    rows=entries,
    sort=st.sampled_from(SORTS),
    descending=st.booleans(),
    limit=st.integers(1, 6),
)
def test_pages_are_those_of_the_nested_comparisons_alone(
    engine: Engine,
    rows: list[tuple[int, int, datetime, str]],
    sort: tuple[Any, ...],
    descending: bool,
    limit: int,
) -> None:
    with Session(engine) as db:
        db.execute(delete(Entry))
        if rows:
            db.execute(
                insert(Entry),
                [
                    {"id": id_, "tenant_id": tenant_id, "created_at": created_at, "name": name}
                    for id_, tenant_id, created_at, name in rows
                ],
            )
        db.commit()
        seeking = _walk(db, Order(sort, descending), limit)
        filtering = _walk(db, NestedOnly(sort, descending), limit)
        whole = db.scalars(
            select(Entry.id)
            .where(Entry.tenant_id == TENANT)
            .order_by(*Order(sort, descending).by())
        ).all()
    assert seeking == filtering
    assert seeking == ([whole[i : i + limit] for i in range(0, len(whole), limit)] or [[]])


@pytest.mark.parametrize("descending", [True, False])
def test_the_condition_bounds_the_first_column_on_its_own(descending: bool) -> None:
    """What lets an index seek: the first column's bound ANDed with the nested comparisons
    (which the property test above shows select the same rows)."""
    order = Order((Entry.created_at, Entry.id), descending)
    moment = TIMES[2]
    condition = order.after((moment, 7))
    start = Entry.created_at <= moment if descending else Entry.created_at >= moment
    conjuncts = list(getattr(condition, "clauses", []))
    assert any(conjunct.compare(start) for conjunct in conjuncts), str(condition)


def test_a_one_column_order_has_no_extra_bound() -> None:
    assert Order((Entry.id,)).after((7,)).compare(Entry.id > 7)


def test_a_column_that_may_be_null_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"may be NULL: \['Entry.note'\]"):
        Order((Entry.note, Entry.id))
