"""bench/ingest's batches, its reference anchor writing exactly what ingest would store, its
verdict (Student's t, at least five rounds) and its paced latency."""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.ingest import (
    BATCH,
    COLLECTOR,
    MIN_ROUNDS,
    SERIES,
    TENANT,
    Batches,
    Target,
    as_stored,
    batch_templates,
    interval,
    run_phase,
    standard_error,
    verdict,
)
from ingest.batch import BatchPreparer, BatchRules, ForcedTags


def test_the_as_stored_templates_are_ingests_payload_without_the_stamps() -> None:
    templates = batch_templates()
    stored = as_stored(templates)
    assert [len(lines) for lines in stored] == [BATCH] * (SERIES // BATCH)
    now = time.time_ns()
    stamp = b" %d" % now
    between = stamp + b"\n"
    for sent, written in zip(templates, stored, strict=True):
        payload = BatchPreparer(BatchRules()).prepare(
            between.join(sent) + stamp, ForcedTags(TENANT, COLLECTOR), "ns", now
        )
        assert payload.payload == between.join(written) + stamp
    line = stored[0][0]
    assert f"collector={COLLECTOR}".encode() in line
    assert f"tenant={TENANT}".encode() in line
    assert b"tenant" not in templates[0][0]


@pytest.mark.parametrize(("batch", "groups"), [(250, 80), (5_000, 4), (7_000, 2), (20_000, 1)])
def test_batches_of_any_size_cover_a_cycles_series_once_each(batch: int, groups: int) -> None:
    templates = batch_templates(batch)
    assert [len(lines) for lines in templates] == [batch] * groups
    every = [line for lines in templates for line in lines]
    assert len(set(every)) == len(every)
    batches = Batches(templates, start_ns=1_000)
    first_cycle = [batches.take() for _ in range(groups)]
    assert all(body.endswith(b" 1000") for body in first_cycle)
    assert batches.take().endswith(b" %d" % (1_000 + 10 * 1_000_000_000))  # the next cycle


def test_the_standard_error_scales_the_rounds_spread_to_the_whole_runs_ratio() -> None:
    rounds = [0.7, 0.9, 0.8, 1.0]  # mean 0.85, sample standard deviation 0.1291
    assert standard_error(0.85, rounds) == pytest.approx(0.1291 / 2, abs=1e-4)
    assert standard_error(1.7, rounds) == pytest.approx(0.1291, abs=1e-4)
    assert standard_error(0.85, [0.85]) is None


def test_the_interval_uses_students_t_for_one_degree_of_freedom_fewer_than_the_rounds() -> None:
    for rounds, t in ((30, 2.045), (5, 2.776), (2, 12.706)):  # not 1.96, whatever the rounds
        bounds = interval(0.8, 0.01, rounds)
        assert bounds is not None
        assert bounds[0] == pytest.approx(0.8 - t * 0.01)
        assert bounds[1] == pytest.approx(0.8 + t * 0.01)
    assert interval(0.8, None, 1) is None


def test_the_verdict_is_undecided_while_the_target_is_inside_the_95_percent_interval() -> None:
    rounds = 30  # t = 2.045
    assert verdict(0.85, 0.02, rounds) == "met"  # 0.809 and up
    assert verdict(0.84, 0.02, rounds) == "undecided"  # 0.799-0.881: z = 1.96 called it met
    assert verdict(0.77, 0.02, rounds) == "undecided"  # 0.729-0.811
    assert verdict(0.7605, 0.02, rounds) == "undecided"  # up to 0.8014: z = 1.96 said MISSED
    assert verdict(0.75, 0.02, rounds) == "MISSED"  # up to 0.7909


def test_a_run_of_fewer_than_five_rounds_is_undecided_whatever_its_ratio() -> None:
    assert MIN_ROUNDS == 5
    for rounds in range(1, MIN_ROUNDS):
        error = None if rounds == 1 else 0.001
        assert verdict(2.0, error, rounds) == "undecided"
        assert verdict(0.1, error, rounds) == "undecided"
    assert verdict(0.9, 0.01, MIN_ROUNDS) == "met"  # 0.872 and up with t = 2.776
    assert verdict(0.7, 0.01, MIN_ROUNDS) == "MISSED"  # up to 0.728


def test_the_verdict_of_2026_11_24s_fourth_machine_with_t() -> None:
    """bench.ingest's run of 12 rounds (docs/architecture.md): 0.774x, standard error 0.0194;
    z = 1.96 printed 0.736-0.812, t = 2.201 for 11 degrees of freedom gives 0.732-0.817."""
    rates = [(565_528, 490_012), (614_688, 476_902), (614_639, 498_314), (607_776, 491_759),
             (588_616, 444_211), (617_958, 486_836), (617_834, 488_378), (650_753, 380_136),
             (624_515, 508_143), (658_949, 499_883), (634_366, 495_031), (614_573, 476_940)]  # fmt: skip
    ratio = 478_043 / 617_476
    error = standard_error(ratio, [through / direct for direct, through in rates])
    assert error == pytest.approx(0.0194, abs=5e-5)
    bounds = interval(ratio, error, len(rates))
    assert bounds is not None
    assert (round(bounds[0], 3), round(bounds[1], 3)) == (0.732, 0.817)
    assert verdict(ratio, error, len(rates)) == "undecided"


class _Ingest(BaseHTTPRequestHandler):
    """Answers every write 204; the first one only after STALL seconds."""

    STALL = 0.3
    answered = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).answered == 0:
            time.sleep(self.STALL)
        type(self).answered += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_paced_latency_counts_from_when_each_batch_was_due() -> None:
    """Paced at a batch every 50 ms, a 0.3 s stall of the first write leaves the next batches
    overdue: their latency includes how late they went out (no coordinated omission), though
    each was answered at once."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = Target(
            "stub",
            f"http://127.0.0.1:{server.server_address[1]}/write",
            {},
            Batches([[b"m value=1"] * 10], start_ns=1_000),
            lambda: [],
        )
        _, _, latencies = run_phase(target, os.getpid(), 0.6, clients=1, rate=10 / 0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert latencies[0] >= _Ingest.STALL
    # the second batch was due 50 ms in and went out after the stall, about 0.25 s late
    assert latencies[1] >= _Ingest.STALL - 0.05 - 0.02
    assert latencies[-1] < 0.15  # caught up: on time again, answered at once
