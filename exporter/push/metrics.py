"""The push path's own metrics, served on /metrics (and pushed) beside the node_* families.

A registry "extra" collector: it only reads counters the pusher thread keeps, so a scrape never
waits on the push path. ``points_dropped_total`` always carries every reason, so ``rate()``
works before the first drop. ``started_timestamp_seconds`` is when the push path was set up: the
ExporterPushStalled rule counts from it while no push has been acknowledged
(``last_success_timestamp_seconds`` 0), so an exporter whose key was wrong from its first day
alerts, also with --web.disable-exporter-metrics, which removes process_start_time_seconds but
never these metrics.
"""

from __future__ import annotations

import time

from exporter.model import COUNTER, GAUGE, MetricFamily, family, single
from exporter.push.pusher import Pusher

PREFIX = "perfanalysis_exporter_push_"


class PushMetrics:
    name = "push"

    def __init__(self, pusher: Pusher, started: float | None = None) -> None:
        self.pusher = pusher
        self.started = time.time() if started is None else started  # built with the pusher

    def collect(self) -> list[MetricFamily]:
        stats, spool = self.pusher.stats, self.pusher.spool
        dropped = family(
            PREFIX + "points_dropped_total",
            "Points that will never be sent, by reason: rejected by ingest as bad data, "
            "too_large (refused by ingest as too large (413) on their own), "
            "spool_full (oldest dropped to stay within --push.spool-max-bytes or to make room "
            "on the spool's full filesystem; kept across restarts), "
            "non_finite (NaN or infinite: line protocol cannot carry them), "
            "spool_error (the spool could not take them: its filesystem failing, read-only, or "
            "full with nothing left to drop; and ingest did not acknowledge them when sent from "
            "memory, or newer ones pushed them out of the 1 MiB kept there meanwhile).",
            COUNTER,
            "reason",
        )
        dropped.add(float(stats.rejected), "rejected")
        dropped.add(float(stats.too_large), "too_large")
        dropped.add(float(spool.dropped_points), "spool_full")
        dropped.add(float(stats.non_finite), "non_finite")
        dropped.add(float(stats.spool_error), "spool_error")
        requests = family(
            PREFIX + "requests_total",
            "Write requests to ingest by answer: HTTP status code, timeout or error.",
            COUNTER,
            "code",
        )
        for code, count in sorted(stats.requests.items()):
            requests.add(float(count), code)
        return [
            single(PREFIX + "points_queued", "Points in the spool waiting for ingest to acknowledge them.", GAUGE, float(spool.queued_points)),
            single(PREFIX + "points_sent_total", "Points ingest acknowledged.", COUNTER, float(stats.sent)),
            single(PREFIX + "points_retried_total", "Points of failed requests that ingest did not acknowledge, kept for a retry.", COUNTER, float(stats.retried)),
            single(PREFIX + "last_success_timestamp_seconds", "When ingest last acknowledged a batch (0: never since start).", GAUGE, stats.last_success or 0.0),
            single(PREFIX + "started_timestamp_seconds", "When the push path started, in seconds since the epoch: what a push stall is counted from until ingest first acknowledges a batch.", GAUGE, self.started),
            single(PREFIX + "samples_skipped_total", "Samples not taken at their time in the push interval because the push thread was still busy past it (a sample slower than --push.interval, or the process stopped meanwhile); sending never makes one skip.", COUNTER, float(stats.samples_skipped)),
            single(PREFIX + "requests_cut_total", "Write requests that timed out while being sent or awaiting their answer, at --push.timeout or at the next sample's time: they needed longer than they had (a slow link, a backlog batch, a slow or hanging ingest). Their points are sent again in halves, and batch_max_points lowered. Also counted in requests_total as timeouts.", COUNTER, float(stats.requests_cut)),
            single(PREFIX + "batch_max_points", "Points a write request may hold now: --push.batch-size, or fewer for a while after ingest refused a batch as too large (413) or a request was cut (timed out while sent or awaiting its answer).", GAUGE, float(self.pusher.max_points)),
            single(PREFIX + "spool_bytes", "Bytes of spool segment files on disk.", GAUGE, float(spool.disk_bytes)),
            single(PREFIX + "spool_corrupt_total", "Torn or corrupt stretches of the spool skipped, never sent (kept across restarts).", COUNTER, float(spool.corrupt)),
            dropped,
            requests,
        ]  # fmt: skip
