"""bench/ingest's batches, and its reference anchor writing exactly what ingest would store."""

from __future__ import annotations

import time

import pytest

from bench.ingest import BATCH, COLLECTOR, SERIES, TENANT, Batches, as_stored, batch_templates
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
