"""Storage answers whose body is not UTF-8 (a proxy's Latin-1 error page), through both writers,
from a real loopback HTTP server.

influxdb-client decodes every answer's body as strict UTF-8 before it reads the status: the v2
writer raised UnicodeDecodeError for such a page, which ingest answered 500 (no Retry-After, the
tenant's rate tokens kept) whatever storage had said. Both writers must classify it by its
status, as for any other body.
"""

from __future__ import annotations

import time

import pytest

from ingest.app import batch_rules
from ingest.batch import BatchPreparer
from ingest.errors import IngestError
from ingest.metrics import IngestMetrics
from ingest.ratelimit import Limit
from ingest.service import WriteService
from ingest.settings import load
from ingest.storage import (
    StorageError,
    StorageRefused,
    StorageRejected,
    StorageTooLarge,
    StorageUnavailable,
    StorageWriter,
    V1Writer,
    V2Writer,
)
from tenants.keys import Identity
from tests.support.scripted_http import ScriptedHTTP

NOW_NS = time.time_ns()
SECRET = "s" * 40
LATIN1_PAGE = (
    "<html><head><title>Mauvaise passerelle</title></head><body><h1>502</h1>"
    "<p>Le serveur amont a répondu de façon invalide.</p></body></html>"
).encode("latin-1")
SHOWN_PAGE = LATIN1_PAGE.decode(errors="replace")  # each byte that is not UTF-8 as U+FFFD
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


def _answer(status: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _writer(kind: type, url: str) -> StorageWriter:
    return V1Writer(url, "", "", timeout=5) if kind is V1Writer else V2Writer(url, "t", "o", 5)


@pytest.mark.parametrize("writer_class", [V1Writer, V2Writer])
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("502 Bad Gateway", StorageUnavailable),
        ("503 Service Unavailable", StorageUnavailable),
        ("429 Too Many Requests", StorageUnavailable),
        ("401 Unauthorized", StorageRefused),
        ("413 Request Entity Too Large", StorageTooLarge),
        ("400 Bad Request", StorageRejected),
    ],
)
def test_a_latin1_error_page_is_classified_by_its_status(
    writer_class: type, status: str, kind: type
) -> None:
    storage = ScriptedHTTP([(_answer(status, LATIN1_PAGE), False)])
    writer = _writer(writer_class, storage.url)
    with pytest.raises(StorageError) as refused:
        writer.write("db", b"m v=1 1")
    writer.close()
    storage.close()
    assert type(refused.value) is kind
    assert refused.value.status == int(status.split()[0])
    assert refused.value.message == f"storage answered {status.split()[0]}: {SHOWN_PAGE}"


@pytest.mark.parametrize("writer_class", [V1Writer, V2Writer])
def test_a_write_after_a_latin1_error_page_reuses_the_connection(writer_class: type) -> None:
    """The page is read whole and the connection given back: nothing is left half-read."""
    storage = ScriptedHTTP([(_answer("502 Bad Gateway", LATIN1_PAGE), False), (NO_CONTENT, False)])
    writer = _writer(writer_class, storage.url)
    with pytest.raises(StorageUnavailable):
        writer.write("db", b"m v=1 1")
    writer.write("db", b"m v=2 2")
    writer.close()
    storage.close()
    assert storage.connections == 1
    assert storage.requests[1].endswith(b"\r\n\r\nm v=2 2")


def test_the_v2_writer_takes_a_2xx_whose_body_is_not_utf8() -> None:
    """Storage accepted the points: answering 500 would have the client send them again."""
    storage = ScriptedHTTP([(_answer("200 OK", LATIN1_PAGE), False)])
    writer = V2Writer(storage.url, "t", "o", 5)
    writer.write("db", b"m v=1 1")
    writer.close()
    storage.close()


def test_v2_health_says_down_for_a_latin1_error_page_to_its_empty_write() -> None:
    storage = ScriptedHTTP([(NO_CONTENT, False), (_answer("502 Bad Gateway", LATIN1_PAGE), False)])
    writer = V2Writer(storage.url, "t", "o", 5)
    health = writer.health()
    writer.close()
    storage.close()
    assert health == f"down: storage answered 502 to an empty write: {SHOWN_PAGE}"


class _Limiter:
    def __init__(self) -> None:
        self.given_back = 0

    def acquire(self, tenant: str, points: int, limit: Limit) -> float:
        return 0.0

    def release(self, tenant: str, points: int, limit: Limit) -> None:
        self.given_back += points


class _Verifier:
    def record_use(self, identity: Identity, points: int) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "answered", "given_back"),
    [
        # storage failing: the client keeps its points and retries after Retry-After
        ("502 Bad Gateway", 503, True),
        # too large: nothing was written, the client splits the batch
        ("413 Request Entity Too Large", 413, True),
        # any other 4xx: ingest's error, as for the v1 writer (module storage's docstring)
        ("400 Bad Request", 500, False),
    ],
)
def test_the_write_service_answers_a_latin1_page_from_v2_storage_as_from_v1(
    status: str, answered: int, given_back: bool
) -> None:
    for writer_class in (V1Writer, V2Writer):
        storage = ScriptedHTTP([(_answer(status, LATIN1_PAGE), False)])
        writer = _writer(writer_class, storage.url)
        limiter = _Limiter()
        service = WriteService(
            verifier=_Verifier(),  # type: ignore[arg-type]
            preparer=BatchPreparer(
                batch_rules(load([], {"PERFANALYSIS_INGEST_SECRET_KEY": SECRET})), 1000
            ),
            limiter=limiter,
            default_limit=Limit(50, 30),
            writer=writer,
            metrics=IngestMetrics(),
            retry_after=7,
        )
        identity = Identity(1, "acme", "pa_acme", 2, "web1", "k" * 13, 3, None, None)
        lines = b"\n".join(b"cpu value=%d %d" % (i, NOW_NS - i) for i in range(20))
        with pytest.raises(IngestError) as refused:
            service.write(identity, "ns", lines, NOW_NS)
        writer.close()
        storage.close()
        assert refused.value.status == answered, writer_class
        assert refused.value.retry_after == (7 if answered == 503 else None)
        assert limiter.given_back == (20 if given_back else 0)
