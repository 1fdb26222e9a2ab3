"""Delivers one gzip-compressed line-protocol batch to ingest and says what became of it.

The decision per answer is the contract push clients share (Prometheus remote-write, Telegraf and
influxdb-client agree on it; docs/architecture.md, the exporter's push):

======================  =============================================================
2xx                     accepted: the spool may forget the batch
400, 422                rejected as bad data: never retried; dropped, counted, the
                        reasons ingest names are logged; of a 422, the points ingest
                        says storage wrote count as sent; of a 400 whose answer names
                        the bad lines (ingest's ``invalid_lines``), only those are
                        dropped and the others sent again at once, so that one odd
                        series (a textfile metric) does not cost the host's batch
401, 403                the key is refused: keep everything, report, re-read the key
                        file, retry later
413                     too large: split into halves and send each (one point that is
                        still too large on its own is dropped, counted as too_large)
429, 5xx, and any       keep and retry with backoff, honouring Retry-After
other answer (408: the
body came too slowly);
network errors and
other timeouts
a timeout while the     cut: keep and retry with backoff, in halves (below)
request was sent or its
answer awaited
======================  =============================================================

Answers not named by the contract (404 from a wrong URL, 3xx, ...) keep the data: a
misconfiguration must cost a retry, never the data.

One batch may take several requests (a 413's halves, a 400's good lines sent again). The pusher
bounds them by its next sample (``Delivering.run``'s deadline): each request gets at most the
time left until then, and a request that would get too little is not started; the chain goes on
after the sample where it stopped, its answers so far kept.

A request that fails (a 401/403, a 429, 5xx or other retryable answer, a network error) ends
``run`` with that failure (RETRY or UNAUTHORIZED, ``failed_at`` its points), and the next
``run`` sends that request again: the chain goes on from the first part ingest has not
acknowledged, after the pusher's backoff, rather than from the batch's start. (Until 2026-11-25
a failure ended the chain, and the retry sent the whole batch again, the parts ingest had
acknowledged too.) Every delivery ``run`` returns says what the batch's points have come to so
far: ``sent``, ``rejected`` and ``too_large``, settled for good. Requests follow the batch's
order, so while ingest has refused none of them, what it acknowledged is the batch's first
points (``Delivering.acknowledged_first``): the pusher commits the spool records they cover.

A request that times out while it is sent or its answer awaited (a slow uplink, a backlog batch
larger than the link carries in the time, a slow or hanging ingest) is cut, whatever limited its
time: the deadline or --push.timeout. Sent again whole, it would time out again each time.
``run`` then returns a CUT delivery, and the chain goes on at the next ``run`` with what the cut
request carried in two halves, each halved again if cut in turn, down to CUT_MIN_POINTS (sent
whole from there on): the answers so far are kept, so no acknowledged point is sent again. The
pusher lowers its batch size below ``cut_at`` too, and backs off as after any failure. A request
that timed out while it was connecting (a lookup, a connect, a TLS handshake) or with its answer
begun (a trickle) says nothing about its size: it fails as any timeout does (RETRY).

A 413 says the request was too large, but not why: too many points (or bytes) for ingest or a
proxy in front of it, or one point too large whatever the batch. Only a 413'd request whose two
halves were then both taken without a 413 of their own proves the former: ``too_large_at`` is
the smallest such request, which the pusher lowers its batch size below. A 413 that splitting
narrowed down to one point proves nothing about the batch size: that point is dropped, and the
requests on the way to it do not count.
"""

from __future__ import annotations

import enum
import gzip
import json
import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeGuard

from exporter import __version__
from exporter.push.backoff import parse_retry_after
from exporter.push.keyfile import KeyFile
from exporter.push.transport import Connection, Endpoint, Response, TLSFiles, TransportError

log = logging.getLogger(__name__)

WRITE_PATH = "/api/v2/write?precision=ns"
LOGGED_BODY = 2000
LOGGED_LINE = 200
# A request cut by the deadline is sent again in halves while it holds more points than this:
# about 1 KiB gzipped (8 kbit/s over a 1 s interval); smaller ones are sent again whole, since
# a link that cannot carry that is not slow for the request's size.
CUT_MIN_POINTS = 64


class Verdict(enum.Enum):
    SETTLED = "settled"  # every point acknowledged or refused for good: commit the batch
    RETRY = "retry"  # keep the batch, retry after a backoff
    UNAUTHORIZED = "unauthorized"  # keep the batch; the key is refused
    CUT = "cut"  # a request timed out sent or awaited: the batch goes on at the next run, in halves


@dataclass
class Delivery:
    verdict: Verdict
    sent: int = 0  # points ingest acknowledged
    rejected: int = 0  # points ingest refused for good
    retry_after: float | None = None  # seconds the server asked for, or 0 after a key change
    error: str = ""
    too_large: int = 0  # points ingest refused as too large (413) each on its own: dropped
    too_large_at: int | None = None  # the smallest 413'd point count whose halves were taken
    split: bool = False  # ingest answered 413 to this request (or a part), sent in halves
    cut_at: int | None = None  # of a CUT: the points of the request that was cut
    failed_at: int | None = None  # of a RETRY or UNAUTHORIZED: the failed request's, sent again


@dataclass
class Tally:
    """The points of a batch settled for good so far, counted as each answer settles them."""

    sent: int = 0
    rejected: int = 0
    too_large: int = 0


def compress(lines: bytes) -> bytes:
    """gzip level 1: most of the size gain for a third of level 6's CPU (reference B6)."""
    return gzip.compress(lines, compresslevel=1, mtime=0)


def _json_object(answer: bytes) -> dict[str, Any]:
    """The answer's JSON object, or an empty one when it is none (a proxy's page, a list)."""
    try:
        said = json.loads(answer)
    except ValueError:
        return {}
    return said if isinstance(said, dict) else {}


def invalid_lines_of(answer: bytes, points: int) -> set[int]:
    """The line numbers (1-based) a 400 from ingest names as bad (``invalid_lines``, at most 100
    of them), or an empty set when the answer names none it can be trusted for: not ingest's
    JSON (a proxy's 400), or a number outside the batch."""
    listed = _json_object(answer).get("invalid_lines")
    if not isinstance(listed, list):
        return set()
    lines: set[int] = set()
    for entry in listed:
        number = entry.get("line") if isinstance(entry, dict) else None
        if type(number) is not int or not 1 <= number <= points:
            return set()  # one untrustworthy entry (a list, which a set cannot hold, say): none
        lines.add(number)
    return lines


def written_of_partial(body: bytes, points: int) -> int:
    """The points of a 422 that storage wrote, as ingest's ``written`` and ``rejected`` say; 0
    when the answer does not account for every point (storage's series limits, another server)."""
    said = _json_object(body)
    written, rejected = said.get("written"), said.get("rejected")
    if type(written) is not int or type(rejected) is not int or min(written, rejected) < 0:
        return 0
    return written if written + rejected == points else 0


# Yields (body, points) of each request to make, or the Delivery of one that failed (the answer
# it is sent then is that of the same request made again); returns the batch's Delivery.
Steps = Generator["tuple[bytes, int] | Delivery", "Response | TransportError", Delivery]


def is_cut(answer: Response | TransportError) -> TypeGuard[TransportError]:
    """Whether a request timed out while it was sent or its answer awaited: cut for its size (or
    ingest's slowness), whether the deadline or --push.timeout limited its time."""
    return (
        isinstance(answer, TransportError) and answer.kind == "timeout" and answer.awaiting_answer
    )


class DeadlineCut(TransportError):
    """A request that timed out at the deadline it was given (the pusher's next sample), not at
    its own timeout: the same timeout, said so in its message."""

    def __init__(self, timed_out: TransportError) -> None:
        # the same words each time (not the seconds left): logged once while it repeats
        super().__init__(
            "timeout",
            f"timed out {timed_out.stage or 'on the way'}, all the time left before a sample",
            timed_out.stage,
        )


class PushClient:
    def __init__(self, url: str, key: KeyFile, timeout: float, tls: TLSFiles | None = None) -> None:
        endpoint = Endpoint.parse(url)
        self.url = url
        self.key = key
        self.path = endpoint.base_path + WRITE_PATH
        self.connection = Connection(endpoint, timeout, f"perfanalysis-exporter/{__version__}", tls)
        self.requests: dict[str, int] = {}  # answers by status code, "timeout" or "error"

    @property
    def timeout(self) -> float:
        """--push.timeout: the longest one request may take."""
        return self.connection.timeout

    def deliver(self, body: bytes, points: int) -> Delivery:
        """POST one gzip-compressed batch of ``points`` lines; split it on 413. Each request
        may take up to the timeout; one cut (see the module) ends it with a CUT delivery, one
        that fails with that failure, each saying what was settled before it."""
        delivery = self.start(body, points).run()
        assert delivery is not None  # no deadline: never interrupted (a CUT is returned)
        return delivery

    def start(self, body: bytes, points: int) -> Delivering:
        """The requests that deliver a batch, to ``run`` (within a deadline if need be)."""
        return Delivering(self, body, points)

    def _request(self, body: bytes, timeout: float) -> Response | TransportError:
        headers = {
            "Authorization": self.key.authorization,
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Encoding": "gzip",
        }
        try:
            return self.connection.request("POST", self.path, body, headers, timeout)
        except TransportError as exc:
            return exc

    def _steps(self, body: bytes, points: int, tally: Tally) -> Steps:
        """Deliver a batch: yield each request's body and points, receive its answer, and count
        in ``tally`` the points each answer settles; yield the Delivery of a request that
        failed, and receive the answer to the same request made again; return the batch's
        Delivery, always SETTLED (its counts are in ``tally``)."""
        response = yield body, points
        while True:
            if is_cut(response):
                self._count(response.kind)
                if points > CUT_MIN_POINTS:
                    return (yield from self._after_cut(body, points, tally))
                response = yield body, points  # too few to halve: the same request again, in place
                continue
            if isinstance(response, TransportError):
                self._count(response.kind)
                failure = Delivery(Verdict.RETRY, error=f"{response.kind}: {response}")
                response = yield failure
                continue
            status = response.status
            self._count(str(status))
            detail = response.body[:LOGGED_BODY].decode("utf-8", "replace").strip()
            if 200 <= status < 300:
                tally.sent += points
                return Delivery(Verdict.SETTLED)
            if status == 400 and (bad := invalid_lines_of(response.body, points)):
                return (yield from self._without(body, points, bad, detail, tally))
            if status in (400, 422):
                written = written_of_partial(response.body, points) if status == 422 else 0
                log.error(
                    "ingest refused %d of %d points as bad data (%d), dropped: %s",
                    points - written, points, status, detail,
                )  # fmt: skip
                tally.sent += written
                tally.rejected += points - written
                return Delivery(Verdict.SETTLED, error=f"{status}: {detail}")
            if status == 413:
                return (yield from self._split(body, points, tally))
            if status in (401, 403):
                changed = self.key.reload()
                failure = Delivery(
                    Verdict.UNAUTHORIZED,
                    retry_after=0.0 if changed else None,
                    error=f"{status}: the collector key was refused: {detail}",
                )
            else:
                retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
                failure = Delivery(
                    Verdict.RETRY, retry_after=retry_after, error=f"{status}: {detail}"
                )
            response = yield failure

    def _without(self, body: bytes, points: int, bad: set[int], detail: str, tally: Tally) -> Steps:
        """Drop the lines ingest named as bad (1-based) and send the rest as a new request;
        what becomes of the batch is what becomes of the rest, plus the bad lines refused."""
        lines = gzip.decompress(body).splitlines(keepends=True)
        if len(lines) != points:  # not the batch the line numbers count: refuse it all
            tally.rejected += points
            return Delivery(Verdict.SETTLED, error=f"400: {detail}")
        kept = [line for number, line in enumerate(lines, 1) if number not in bad]
        log.error(
            "ingest refused %d of %d points as bad data (400), dropped; sending the other %d: %s",
            len(bad), points, len(kept), detail,
        )  # fmt: skip
        tally.rejected += len(bad)
        if not kept:
            return Delivery(Verdict.SETTLED, error=f"400: {detail}")
        rest = yield from self._steps(compress(b"".join(kept)), len(kept), tally)
        rest.error = rest.error or f"400: {detail}"
        return rest

    def _split(self, body: bytes, points: int, tally: Tally) -> Steps:
        if points <= 1:
            line = gzip.decompress(body)
            log.error(
                "ingest refused a point of %d bytes as too large (413) on its own, dropped: %s",
                len(line), line[:LOGGED_LINE].decode("utf-8", "replace").strip(),
            )  # fmt: skip
            tally.too_large += points
            return Delivery(
                Verdict.SETTLED, error="413: a point too large on its own, dropped", split=True
            )
        total = Delivery(Verdict.SETTLED, split=True)
        if (yield from self._halves(body, points, total, tally)):  # the batch's size was refused
            total.too_large_at = points
        return total

    def _after_cut(self, body: bytes, points: int, tally: Tally) -> Steps:
        """Send again what a request that was cut carried, in halves; what becomes of the
        batch is what becomes of them. (A request of at most CUT_MIN_POINTS is sent again whole
        by _steps itself: the chain never grows with the cuts of an ingest that hangs.)"""
        total = Delivery(Verdict.SETTLED)
        total.split = not (yield from self._halves(body, points, total, tally))
        return total

    def _halves(
        self, body: bytes, points: int, total: Delivery, tally: Tally
    ) -> Generator[tuple[bytes, int] | Delivery, Response | TransportError, bool]:
        """Send the batch's lines in two requests, one after the other, and note in ``total``
        what their answers say of the batch size. True when both were taken without a 413 of
        their own."""
        lines = gzip.decompress(body).splitlines(keepends=True)
        half = len(lines) // 2
        taken = True
        for part in (lines[:half], lines[half:]):
            result = yield from self._steps(compress(b"".join(part)), len(part), tally)
            total.error = result.error or total.error
            if result.too_large_at is not None:
                total.too_large_at = min(total.too_large_at or points, result.too_large_at)
            taken = taken and not result.split
        return taken

    def _count(self, code: str) -> None:
        self.requests[code] = self.requests.get(code, 0) + 1

    def abort(self) -> None:
        self.connection.abort()

    def close(self) -> None:
        self.connection.close()


class Delivering:
    """The requests that deliver one batch: the first, then those a 413's split, a 400's bad
    lines or a cut make, each answer deciding the next (PushClient._steps, a generator, keeps
    where the chain is). ``run`` makes them until the batch settles. Given a deadline (the
    pusher's next sample), it gives each request at most the time left until then (and the
    timeout), and starts none with less than ``floor`` seconds left: it then returns None, and
    the next ``run`` goes on with the request it did not start, so that a chain interrupted by a
    sample loses none of the answers it had. A request that timed out while it was sent or its
    answer awaited, at the deadline or at the timeout, makes it return a CUT delivery instead:
    the next ``run`` goes on the same way, with what that request carried in halves (see the
    module). A request that failed makes it return that failure; the next ``run`` makes the
    same request again."""

    def __init__(self, client: PushClient, body: bytes, points: int) -> None:
        self.client = client
        self.points = points
        self.tally = Tally()
        self._steps = client._steps(body, points, self.tally)
        first = next(self._steps)
        assert isinstance(first, tuple)  # a request precedes any failure
        self._next = first  # the body and points of the next request to make
        self.settled: Delivery | None = None

    @property
    def narrowed(self) -> bool:
        """Whether the answers so far narrowed what is left to send to part of the batch (a
        413's or a cut's halves, a 400's good lines): going on then sends less than starting
        over would."""
        return self._next[1] < self.points

    @property
    def acknowledged_first(self) -> int:
        """How many of the batch's first points ingest has acknowledged: all it acknowledged
        while it has refused none (requests follow the batch's order), else 0 (the lines a
        400 or a 413 refused may lie among them)."""
        tally = self.tally
        return 0 if tally.rejected or tally.too_large else tally.sent

    def _so_far(self, delivery: Delivery) -> Delivery:
        """``delivery`` with the batch's points settled so far."""
        delivery.sent = self.tally.sent
        delivery.rejected = self.tally.rejected
        delivery.too_large = self.tally.too_large
        return delivery

    def run(self, deadline: float | None = None, floor: float = 0.0) -> Delivery | None:
        """The batch's Delivery once it settles; None when the deadline came first, a CUT
        delivery when a request was cut, the failure when one failed (none of these settles
        the batch: the next run goes on with it)."""
        if self.settled is not None:  # run again after all: no request is made twice
            return self.settled
        client = self.client
        while True:
            timeout = client.timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                if left < floor or left <= 0:
                    return None
                timeout = min(timeout, left)
            body, points = self._next
            answer = client._request(body, timeout)
            if (
                timeout < client.timeout  # by the deadline: say so in the error
                and isinstance(answer, TransportError)
                and answer.kind == "timeout"
            ):
                answer = DeadlineCut(answer)
            try:
                step = self._steps.send(answer)
            except StopIteration as done:
                self.settled = self._so_far(done.value)
                return self.settled
            if isinstance(step, Delivery):  # failed: the next run makes the same request again
                step.failed_at = points
                return self._so_far(step)
            self._next = step
            if is_cut(answer):  # sent again at the next run, in halves: not settled
                cut = Delivery(Verdict.CUT, error=f"{answer.kind}: {answer}", cut_at=points)
                return self._so_far(cut)
