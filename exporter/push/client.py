"""Delivers one gzip-compressed line-protocol batch to ingest and says what became of it.

The decision per answer follows architecture decision 5 and the contract in
shared/reference/ingest.md (Prometheus remote-write, Telegraf and influxdb-client agree on it):

======================  =============================================================
2xx                     accepted: the spool may forget the batch
400, 422                rejected as bad data: never retried; dropped, counted, the
                        reasons ingest names are logged; of a 422, the points ingest
                        says storage wrote count as sent
401, 403                the key is refused: keep everything, report, re-read the key
                        file, retry later
413                     too large: split into halves and send each (one point that is
                        still too large is dropped as rejected)
429, 5xx, and any       keep and retry with backoff, honouring Retry-After
other answer (408: the
body came too slowly);
network errors and
timeouts
======================  =============================================================

Answers not named by the contract (404 from a wrong URL, 3xx, ...) keep the data: a
misconfiguration must cost a retry, never the data.
"""

from __future__ import annotations

import enum
import gzip
import json
import logging
import time
from dataclasses import dataclass

from exporter import __version__
from exporter.push.backoff import parse_retry_after
from exporter.push.keyfile import KeyFile
from exporter.push.transport import Connection, Endpoint, TLSFiles, TransportError

log = logging.getLogger(__name__)

WRITE_PATH = "/api/v2/write?precision=ns"
LOGGED_BODY = 2000


class Verdict(enum.Enum):
    SETTLED = "settled"  # every point acknowledged or refused for good: commit the batch
    RETRY = "retry"  # keep the batch, retry after a backoff
    UNAUTHORIZED = "unauthorized"  # keep the batch; the key is refused


@dataclass
class Delivery:
    verdict: Verdict
    sent: int = 0  # points ingest acknowledged
    rejected: int = 0  # points ingest refused for good
    retry_after: float | None = None  # seconds the server asked for, or 0 after a key change
    error: str = ""
    too_large_at: int | None = None  # the smallest point count ingest answered 413 to


def compress(lines: bytes) -> bytes:
    """gzip level 1: most of the size gain for a third of level 6's CPU (reference B6)."""
    return gzip.compress(lines, compresslevel=1, mtime=0)


def written_of_partial(body: bytes, points: int) -> int:
    """The points of a 422 that storage wrote, as ingest's ``written`` and ``rejected`` say; 0
    when the answer does not account for every point (storage's series limits, another server)."""
    try:
        said = json.loads(body)
    except ValueError:
        return 0
    if not isinstance(said, dict):
        return 0
    written, rejected = said.get("written"), said.get("rejected")
    if type(written) is not int or type(rejected) is not int or min(written, rejected) < 0:
        return 0
    return written if written + rejected == points else 0


class PushClient:
    def __init__(self, url: str, key: KeyFile, timeout: float, tls: TLSFiles | None = None) -> None:
        endpoint = Endpoint.parse(url)
        self.url = url
        self.key = key
        self.path = endpoint.base_path + WRITE_PATH
        self.connection = Connection(endpoint, timeout, f"perfanalysis-exporter/{__version__}", tls)
        self.requests: dict[str, int] = {}  # answers by status code, "timeout" or "error"

    def deliver(self, body: bytes, points: int) -> Delivery:
        """POST one gzip-compressed batch of ``points`` lines; split it on 413."""
        headers = {
            "Authorization": self.key.authorization,
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Encoding": "gzip",
        }
        try:
            response = self.connection.request("POST", self.path, body, headers)
        except TransportError as exc:
            self._count(exc.kind)
            return Delivery(Verdict.RETRY, error=f"{exc.kind}: {exc}")
        status = response.status
        self._count(str(status))
        detail = response.body[:LOGGED_BODY].decode("utf-8", "replace").strip()
        if 200 <= status < 300:
            return Delivery(Verdict.SETTLED, sent=points)
        if status in (400, 422):
            written = written_of_partial(response.body, points) if status == 422 else 0
            log.error(
                "ingest refused %d of %d points as bad data (%d), dropped: %s",
                points - written, points, status, detail,
            )  # fmt: skip
            return Delivery(
                Verdict.SETTLED,
                sent=written,
                rejected=points - written,
                error=f"{status}: {detail}",
            )
        if status == 413:
            return self._split(body, points)
        if status in (401, 403):
            changed = self.key.reload()
            return Delivery(
                Verdict.UNAUTHORIZED,
                retry_after=0.0 if changed else None,
                error=f"{status}: the collector key was refused: {detail}",
            )
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        return Delivery(Verdict.RETRY, retry_after=retry_after, error=f"{status}: {detail}")

    def _split(self, body: bytes, points: int) -> Delivery:
        if points <= 1:
            log.error("ingest refused one point as too large (413), dropped")
            return Delivery(Verdict.SETTLED, rejected=points, error="413: one point too large")
        lines = gzip.decompress(body).splitlines(keepends=True)
        half = len(lines) // 2
        total = Delivery(Verdict.SETTLED, too_large_at=points)
        for part in (lines[:half], lines[half:]):
            result = self.deliver(compress(b"".join(part)), len(part))
            total.sent += result.sent
            total.rejected += result.rejected
            total.error = result.error or total.error
            if result.too_large_at is not None:
                total.too_large_at = min(points, total.too_large_at or points, result.too_large_at)
            if result.verdict is not Verdict.SETTLED:  # keep the whole batch for the retry
                total.verdict, total.retry_after = result.verdict, result.retry_after
                break
        return total

    def _count(self, code: str) -> None:
        self.requests[code] = self.requests.get(code, 0) + 1

    def abort(self) -> None:
        self.connection.abort()

    def close(self) -> None:
        self.connection.close()
