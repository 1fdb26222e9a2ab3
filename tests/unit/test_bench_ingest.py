"""bench/ingest's reference anchor writes exactly what ingest would store."""

from __future__ import annotations

import time

from bench.ingest import BATCH, COLLECTOR, GROUPS, TENANT, as_stored, batch_templates
from ingest.batch import BatchPreparer, BatchRules, ForcedTags


def test_the_as_stored_templates_are_ingests_payload_without_the_stamps() -> None:
    templates = batch_templates()
    stored = as_stored(templates)
    assert [len(lines) for lines in stored] == [BATCH] * GROUPS
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
