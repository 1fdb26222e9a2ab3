"""Network: bandwidth, packets, errors and drops of one interface, per second."""

from __future__ import annotations

from perfanalysis.report import metrics as m
from perfanalysis.report.fetch import HostData
from perfanalysis.report.model import BYTES_PER_SECOND, PER_SECOND, Metric, Panel, Section
from perfanalysis.report.series import combine, empty, present


def network_section(data: HostData, candidates: dict[str, float]) -> Section:
    device = data.selection.network
    count = data.grid.count
    counters = {
        name: data.get(measurement, device=device) if device else [None] * count
        for name, measurement in m.NETWORK_COUNTERS.items()
    }
    r = {
        name: data.rate(measurement, device=device) if device else empty(count)
        for name, measurement in m.NETWORK_COUNTERS.items()
    }
    has_data = present(*counters.values())
    errors = combine(lambda a, b: a + b, r["receive_errors"], r["transmit_errors"])
    drops = combine(lambda a, b: a + b, r["receive_drops"], r["transmit_drops"])

    received = Metric("network.receive_bytes", "received", BYTES_PER_SECOND, r["receive_bytes"])
    sent = Metric("network.transmit_bytes", "sent", BYTES_PER_SECOND, r["transmit_bytes"])
    packets_in = Metric("network.receive_packets", "received", PER_SECOND, r["receive_packets"])
    packets_out = Metric("network.transmit_packets", "sent", PER_SECOND, r["transmit_packets"])
    panels = [
        Panel(
            "network.bandwidth", "Network bandwidth", BYTES_PER_SECOND, [received, sent], has_data
        ),
        Panel(
            "network.packets", "Network packets", PER_SECOND, [packets_in, packets_out], has_data
        ),
        Panel(
            "network.errors",
            "Network errors and drops",
            PER_SECOND,
            [
                Metric("network.receive_errors", "receive errors", PER_SECOND, r["receive_errors"]),
                Metric(
                    "network.transmit_errors", "transmit errors", PER_SECOND, r["transmit_errors"]
                ),
                Metric("network.receive_drops", "receive drops", PER_SECOND, r["receive_drops"]),
                Metric("network.transmit_drops", "transmit drops", PER_SECOND, r["transmit_drops"]),
            ],
            has_data,
        ),
    ]
    table = [
        Metric("network.receive_bytes", "network received", BYTES_PER_SECOND, r["receive_bytes"]),
        Metric("network.transmit_bytes", "network sent", BYTES_PER_SECOND, r["transmit_bytes"]),
        Metric("network.receive_packets", "packets received", PER_SECOND, r["receive_packets"]),
        Metric("network.transmit_packets", "packets sent", PER_SECOND, r["transmit_packets"]),
        Metric("network.errors", "errors (receive + transmit)", PER_SECOND, errors),
        Metric("network.drops", "drops (receive + transmit)", PER_SECOND, drops),
    ]
    note = ""
    if device is None:
        note = "No network interface other than loopback reported data in this range."
    elif not any(has_data):
        note = f"No data for interface {device} in this range (interfaces with data: {', '.join(sorted(candidates)) or 'none'})."
    return Section("network", "Network", device or "", panels, table, has_data, note)
