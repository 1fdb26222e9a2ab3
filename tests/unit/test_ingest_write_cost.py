"""What a write costs ingest's workers, beyond what it does: work the write path leaves out
(docs/architecture.md, ingest's Cost paragraph)."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.batch import NATIVE, BatchPreparer, BatchRules, ForcedTags
from ingest.ratelimit import Limit
from ingest.service import LabelledChildren
from tests.unit.test_ingest_parts import NOW_NS, CountingLimiter, identity, write_service

FORCED = ForcedTags("acme", "web-01")
native_only = pytest.mark.skipif(NATIVE is None, reason="ingest._batchfast is not built")


class SearchedBody(bytes):
    """A body that notes what it is searched for with ``in``."""

    searched: list[bytes]

    def __contains__(self, part: object) -> bool:
        self.searched.append(part)  # type: ignore[arg-type]
        return super().__contains__(part)  # type: ignore[operator]


def searched_body(text: bytes) -> SearchedBody:
    body = SearchedBody(text)
    body.searched = []
    return body


@native_only
def test_a_body_the_c_path_takes_is_not_searched_for_carriage_returns() -> None:
    preparer = BatchPreparer(BatchRules())
    text = b"".join(b"cpu,host=h%d value=%d %d\n" % (i, i, NOW_NS) for i in range(50))
    preparer.prepare(text, FORCED, "ns", NOW_NS)  # learns the series
    body = searched_body(text)
    expected = preparer.prepare(text, FORCED, "ns", NOW_NS)
    assert preparer.prepare(body, FORCED, "ns", NOW_NS) == expected
    assert b"\r" not in body.searched


@native_only
def test_a_body_with_crlf_line_ends_still_takes_the_c_path(monkeypatch: pytest.MonkeyPatch) -> None:
    preparer = BatchPreparer(BatchRules())
    text = b"".join(b"cpu,host=h%d value=%d %d\n" % (i, i, NOW_NS) for i in range(50))
    expected = preparer.prepare(text, FORCED, "ns", NOW_NS)
    monkeypatch.setattr(preparer, "_rewrite", None)  # the line path would fail: not taken
    crlf = text.replace(b"\n", b"\r\n")
    assert preparer.prepare(crlf, FORCED, "ns", NOW_NS) == expected


class CountingMetric:
    def __init__(self) -> None:
        self.asked: list[tuple[str, ...]] = []

    def labels(self, *values: str) -> Any:
        self.asked.append(values)
        return ("child", values)


def test_a_labelled_metrics_child_is_looked_up_once_per_label_values() -> None:
    children = LabelledChildren()
    metric, other = CountingMetric(), CountingMetric()
    assert children(metric, "v1", "204") == ("child", ("v1", "204"))
    assert children(metric, "v1", "204") == ("child", ("v1", "204"))
    assert children(metric, "v1", "400") == ("child", ("v1", "400"))
    assert children(other, "v1", "204") == ("child", ("v1", "204"))
    assert metric.asked == [("v1", "204"), ("v1", "400")]
    assert other.asked == [("v1", "204")]


def test_writes_count_their_points_through_one_child_per_tenant() -> None:
    service = write_service(Limit(0, 10), CountingLimiter())
    counter = service.metrics.points_accepted
    labels = counter.labels
    asked: list[tuple[str, ...]] = []

    def counted_labels(*values: str) -> Any:
        asked.append(values)
        return labels(*values)

    counter.labels = counted_labels  # type: ignore[method-assign]
    body = b"\n".join(b"cpu value=%d %d" % (i, NOW_NS - i) for i in range(5))
    for _ in range(3):
        service.write(identity(), "ns", body, NOW_NS)
    assert asked == [("acme",)]
    assert labels("acme")._value.get() == 15
