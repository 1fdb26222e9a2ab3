"""A collector pinned to its host: ``host`` forced as ``tenant`` and ``collector`` are.

ForcedTags with a host, on every path of BatchPreparer (exact, line, whole-batch in Python and
in C): the client's host tag replaced, a field named ``host`` refused from every key as a shadow
of the host tag, and the cache never lending a free key's series to a pinned one. The write
service forces the host its key's lookup names.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.batch import NATIVE, BatchPreparer, BatchRules, ForcedTags, InvalidBatch, _Window
from ingest.lineprotocol import parse_line
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit
from ingest.service import WriteService
from tenants.keys import Identity

NOW = 1_700_000_000_000_000_000
PINNED = ForcedTags("acme", "web-01", "web-01.acme.test")
FREE = ForcedTags("acme", "web-01")
native_only = pytest.mark.skipif(NATIVE is None, reason="ingest._batchfast is not built")


def preparers() -> list[BatchPreparer]:
    """One preparer per whole-batch path: C where it is built, and Python."""
    made = [BatchPreparer(BatchRules(), native=False)]
    if NATIVE is not None:
        made.append(BatchPreparer(BatchRules()))
    return made


def payload(preparer: BatchPreparer, body: str, forced: ForcedTags, fast: bool = True) -> str:
    return preparer.prepare(body.encode(), forced, "ns", NOW, fast=fast).payload.decode()


def test_forced_tags_with_a_host_hold_it_in_key_order() -> None:
    assert PINNED.pairs == (
        ("collector", "web-01"),
        ("host", "web-01.acme.test"),
        ("tenant", "acme"),
    )
    assert PINNED.keys == ("collector", "host", "tenant")
    assert PINNED.keys_bytes == (b"collector", b"host", b"tenant")
    assert FREE.keys == ("collector", "tenant")
    for forced in (PINNED, FREE):
        assert forced.refused_field_keys == ("collector", "host", "tenant")
        assert forced.refused_field_keys_bytes == (b"collector", b"host", b"tenant")
    assert PINNED.cache_key != FREE.cache_key
    assert ForcedTags("acme", "web-01", "other").cache_key != PINNED.cache_key
    assert PINNED.fitting_line_bytes == FREE.fitting_line_bytes - len(",host=web-01.acme.test")


def test_a_host_that_cannot_be_a_tag_value_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="the host name 'web\\\\\\\\' cannot be a tag value"):
        ForcedTags("acme", "web-01", "web\\")
    with pytest.raises(ValueError, match="host name '' cannot be a tag value: it is empty"):
        ForcedTags("acme", "web-01", "")


BODY = (
    f"cpu,cpu=0,host=other value=1.5 {NOW}\n"
    f"cpu,cpu=1 value=2.5 {NOW}\n"
    f"mem,host=web-01.acme.test,zone=z used=3i {NOW}"
)
EXPECTED = (
    f"cpu,collector=web-01,cpu=0,host=web-01.acme.test,tenant=acme value=1.5 {NOW}\n"
    f"cpu,collector=web-01,cpu=1,host=web-01.acme.test,tenant=acme value=2.5 {NOW}\n"
    f"mem,collector=web-01,host=web-01.acme.test,tenant=acme,zone=z used=3i {NOW}"
)


@pytest.mark.parametrize("preparer", preparers(), ids=lambda p: "c" if p._native else "python")
def test_a_pinned_keys_points_get_its_host_on_every_path(preparer: BatchPreparer) -> None:
    assert payload(preparer, BODY, PINNED, fast=False) == EXPECTED  # the exact parser
    assert payload(preparer, BODY, PINNED) == EXPECTED  # the line path, learning the series
    assert payload(preparer, BODY, PINNED) == EXPECTED  # the whole-batch path, all cached
    for line in EXPECTED.split("\n"):
        assert dict(parse_line(line).tags)["host"] == "web-01.acme.test"


@native_only
def test_the_c_path_takes_a_pinned_batch_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    preparer = BatchPreparer(BatchRules())
    payload(preparer, BODY, PINNED)

    def no_python(*args: Any) -> None:
        raise AssertionError("the batch left the C path")

    monkeypatch.setattr(preparer, "_whole_batch", no_python)
    monkeypatch.setattr(preparer, "_rewrite", no_python)
    assert payload(preparer, BODY, PINNED) == EXPECTED


@pytest.mark.parametrize("preparer", preparers(), ids=lambda p: "c" if p._native else "python")
def test_a_free_keys_points_keep_their_host_after_a_pinned_key_sent_the_same_series(
    preparer: BatchPreparer,
) -> None:
    """The series cache and the C path's memos are kept per forced tags: the pinned key's
    rewritten heads are never lent to the free key, nor the other way round."""
    free_expected = (
        f"cpu,collector=web-01,cpu=0,host=other,tenant=acme value=1.5 {NOW}\n"
        f"cpu,collector=web-01,cpu=1,tenant=acme value=2.5 {NOW}\n"
        f"mem,collector=web-01,host=web-01.acme.test,tenant=acme,zone=z used=3i {NOW}"
    )
    for _ in range(3):
        for forced, expected in ((PINNED, EXPECTED), (FREE, free_expected), (PINNED, EXPECTED)):
            assert payload(preparer, BODY, forced) == expected


SHADOWS = [
    f'cpu,cpu=0 value=1,host="other" {NOW}',
    f"cpu,cpu=0 host=1i {NOW}",
    f"cpu,cpu=0 host=t,value=1 {NOW}",
]


SHADOW_REASONS = {
    "pinned": "field 'host' has the name of a tag ingest sets from the key, and InfluxQL would "
    "read the field for the tag: rename the field",
    "free": "field 'host' has the name of the host tag the dashboards filter on, and InfluxQL "
    "would read the field for the tag: rename the field",
}


@pytest.mark.parametrize("preparer", preparers(), ids=lambda p: "c" if p._native else "python")
@pytest.mark.parametrize("shadow", SHADOWS)
@pytest.mark.parametrize("key", ["pinned", "free"])
def test_a_field_named_host_is_refused_from_every_key(
    preparer: BatchPreparer, shadow: str, key: str
) -> None:
    """InfluxQL reads an unqualified ``host`` as the field where both exist: a pinned key could
    otherwise answer ``WHERE host = 'victim'`` with its own points, and one point of a free
    key's would take the measurement out of every dashboard's host filter. Refused on every
    path, with the series cached (the whole-batch paths) and not (the line and exact paths)."""
    forced = {"pinned": PINNED, "free": FREE}[key]
    for fast in (True, False, True):
        with pytest.raises(InvalidBatch) as refused:
            preparer.prepare(f"cpu,cpu=0 value=1 {NOW}\n{shadow}".encode(), forced, "ns", NOW,
                             fast=fast)  # fmt: skip
        assert [(issue.line, issue.reason) for issue in refused.value.issues] == [
            (2, SHADOW_REASONS[key])
        ]
        payload(preparer, f"cpu,cpu=0 value=1 {NOW}", forced)  # cpu,cpu=0 now cached


@native_only
@pytest.mark.parametrize("forced", [PINNED, FREE], ids=["pinned", "free"])
def test_the_c_path_sends_a_batch_with_a_host_field_to_the_exact_parser(
    forced: ForcedTags,
) -> None:
    """Taken whole, the batch would reach storage: the C path must leave it to the exact one."""
    preparer = BatchPreparer(BatchRules())
    payload(preparer, f"cpu,cpu=0 value=1 {NOW}", forced)
    assert preparer._native is not None
    window = _Window(NOW, preparer.rules)
    for fields in ("host=1i", "value=1,host=2", "host=t,value=1"):
        assert preparer._whole_body(f"cpu,cpu=0 {fields} {NOW}".encode(), forced, 1, window) is None
    taken = preparer._whole_body(f"cpu,cpu=0 hosts=1i {NOW}".encode(), forced, 1, window)
    assert taken is not None
    assert taken.points == 1


LINES = [
    "cpu,cpu=0,host=other value=1",
    "cpu,host=a\\ b value=2i",
    "cpu value=3",
    "mem,host=web-01.acme.test used=4i",
    "mem used=5i",
    "mem used=5i,host=6i",  # the same series: cached, then sent with a shadowing field
    'disk,host=x free="7"',
    "disk,hosts=x free=7",
    "disk,hosts=x host=t",
    "net,tenant=evil,collector=spoof,host=h value=8",
]


@native_only
@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(LINES), min_size=1, max_size=6), min_size=1, max_size=4),
    st.sampled_from([PINNED, FREE]),
)
def test_c_and_python_agree_on_pinned_and_free_batches(
    batches: list[list[str]], forced: ForcedTags
) -> None:
    native, python = BatchPreparer(BatchRules()), BatchPreparer(BatchRules(), native=False)

    def outcome(preparer: BatchPreparer, body: bytes) -> Any:
        try:
            return preparer.prepare(body, forced, "ns", NOW)
        except InvalidBatch as exc:
            return [(issue.line, issue.reason) for issue in exc.issues]

    for lines in batches:
        body = "\n".join(f"{line} {NOW - number}" for number, line in enumerate(lines)).encode()
        assert outcome(native, body) == outcome(python, body)


# ----------------------------------------------------------------------------------------------
# The write service: the host its key's lookup names


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def write(self, database: str, payload: bytes) -> None:
        self.payloads.append(payload)

    def health(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


class NoLimit:
    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        return 0.0

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        pass


class NoUsage:
    def record_use(self, identity: Identity, points: int) -> None:
        pass


def test_the_write_service_forces_the_host_of_the_keys_lookup() -> None:
    writer = Recorder()
    service = WriteService(
        verifier=NoUsage(),  # type: ignore[arg-type]
        preparer=BatchPreparer(BatchRules()),
        limiter=NoLimit(),  # type: ignore[arg-type]
        default_limit=Limit(0, 1000),
        writer=writer,  # type: ignore[arg-type]
        metrics=IngestMetrics(),
        retry_after=1,
    )
    free = Identity(1, "acme", "pa_acme", 2, "web-01", "k" * 13, 3)
    pinned = Identity(1, "acme", "pa_acme", 2, "web-01", "k" * 13, 3,
                      pinned_host="web-01.acme.test")  # fmt: skip
    body = f"cpu,host=other value=1 {NOW}".encode()
    for identity in (pinned, free, pinned):
        service.write(identity, "ns", body, NOW)
    assert writer.payloads == [
        f"cpu,collector=web-01,host=web-01.acme.test,tenant=acme value=1 {NOW}".encode(),
        f"cpu,collector=web-01,host=other,tenant=acme value=1 {NOW}".encode(),
        f"cpu,collector=web-01,host=web-01.acme.test,tenant=acme value=1 {NOW}".encode(),
    ]
