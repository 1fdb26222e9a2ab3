"""bench/ingest's batches, and its reference anchor writing exactly what ingest would store."""

from __future__ import annotations

import time

import pytest

from bench.ingest import (
    BATCH,
    COLLECTOR,
    SERIES,
    TENANT,
    Batches,
    as_stored,
    batch_templates,
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


def test_the_verdict_is_undecided_while_the_target_is_inside_the_95_percent_interval() -> None:
    assert verdict(0.85, 0.02) == "met"  # 0.811 and up
    assert verdict(0.83, 0.02) == "undecided"  # 0.791-0.869
    assert verdict(0.77, 0.02) == "undecided"  # 0.731-0.809
    assert verdict(0.76, 0.02) == "MISSED"  # up to 0.7992
    assert verdict(0.75, 0.02) == "MISSED"
    assert verdict(0.8, None) == "met"
    assert verdict(0.79, None) == "MISSED"
