"""When a host samples: each at its own phase within the push interval, the same at every start.

An exporter that sampled at the moment it started would keep that phase for good, and a fleet
restarted together (a package upgrade rolled out in parallel, a data centre coming back) would
push in lockstep: every host's batch in the same few milliseconds of each interval, and
ingest's rate limits and storage's latency spiking there while idle in between. Prometheus
avoids the same for scrapes by offsetting each target by a hash of it; the exporter does it by
its host tag. The phase is fixed to the wall clock, so a restarted host keeps its place and
its timestamps the same offset into each interval.
"""

from __future__ import annotations

import hashlib


def host_phase(host: str, interval: float) -> float:
    """Seconds into each interval (counted from the Unix epoch) at which ``host`` samples:
    spread evenly over ``[0, interval)`` across hosts, and the same for one host at every start."""
    digest = hashlib.sha256(host.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * interval


def until_phase(now: float, interval: float, phase: float) -> float:
    """Seconds from the wall-clock time ``now`` to the next instant ``phase`` seconds into an
    interval; 0 when ``now`` is that instant."""
    return (phase - now) % interval
