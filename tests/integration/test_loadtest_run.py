"""A short real load test on this host, with its result uploaded to a local stand-in of the admin app.

The host is shared with other work (other test suites, benchmarks). A level is accepted only when
busy% is ours (see controller.py), so on a busy host levels fail with "busy with other work" and are
recorded as not accepted; the test checks that accepted levels are within their bands and that a
failed level is recorded with its reason. When other work holds the host over half busy the run
measures nothing useful, so the test waits (bounded) for the host to settle and is skipped if it
does not.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter.loadtest.procstat import busy_percent, read_cpu_times
from exporter.loadtest.result import validate
from perfanalysis.testing.servers import wait_until
from tests.unit.test_loadtest_upload import KEY, AdminStub, admin, key_file  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLI = "import sys; from exporter.loadtest.main import run; sys.exit(run(sys.argv[1:]))"
SETTLE_SECONDS = 90.0
QUIET_ENOUGH = 50.0  # host busy% from other work under which a short run means something
TOLERANCE = 3.0
FULL_MIN = 90.0  # the issue allows 90% at the 100% level on this shared machine


def host_busy_over(seconds: float) -> float:
    before = read_cpu_times()
    deadline = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= deadline, seconds + 1, interval=0.1, what="window")
    return busy_percent(before, read_cpu_times())


@pytest.fixture
def settled_host() -> float:
    readings: list[float] = []

    def quiet() -> bool:
        readings.append(host_busy_over(1.0))
        return readings[-1] <= QUIET_ENOUGH

    try:
        wait_until(quiet, SETTLE_SECONDS, interval=0.0, what="a host quiet enough")
    except TimeoutError:
        pytest.skip(
            f"other work kept this host {min(readings):.0f}-{max(readings):.0f}% busy for "
            f"{SETTLE_SECONDS:.0f}s: a calibrated load test cannot measure it"
        )
    return readings[-1]


def loadtest(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.mark.serial  # other tests running beside it make its levels' units fall, not grow
def test_short_run_grows_with_busy_and_uploads(
    settled_host: float,
    admin: AdminStub,  # noqa: F811
    key_file: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    output = tmp_path / "result.json"
    started = time.monotonic()
    process = loadtest(
        "run", "--levels", "20,50,100", "--window", "0.5s", "--repeats", "2", "--retries", "6",
        "--full-load-min", str(FULL_MIN), "--progress", "plain", "--output", str(output),
        "--upload", admin.url, "--key-file", key_file,
    )  # fmt: skip
    out, err = process.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert process.returncode in (0, 3), err  # 3: a level was not accepted (checked below)
    assert elapsed < 40, f"took {elapsed:.1f}s\n{err}"

    document = json.loads(output.read_text())
    assert validate(document) == []
    levels = document["levels"]
    assert [level["target_busy_percent"] for level in levels] == [20, 50, 100]
    units = [level["units_per_second"] for level in levels]
    assert units[0] < units[1] < units[2], err
    assert document["max_units_per_second"] == units[2]
    # the run's repeatability is the measured 100% level's own, when that level was accepted
    full_cv = levels[2]["cv_percent"] if levels[2]["accepted"] else None
    assert document["repeatability_cv_percent"] == full_cv
    assert document["host"]["vcpus"] == os.cpu_count()
    assert document["settings"]["unit"] == {"name": "pa-mem4m-v1", "buffer_bytes": 4194304}
    if all(level["accepted"] for level in levels):  # what the admin app would store as it is
        contract = pytest.importorskip("tenants.loadtests.contract")
        contract.parse_bytes(output.read_bytes())

    for level in levels:
        target, busy = level["target_busy_percent"], level["measured_busy_percent"]
        if not level["accepted"]:
            # recorded, and said why: other work on the host, or a band not reached in time
            # (on this VM a unit's CPU cost drifts with its neighbours, faster than some retries)
            reason = rf"level {target}%: (the host is busy with other work|measured busy)"
            assert re.search(reason, err), err
            continue
        assert len(level["repeats"]) == 2
        assert level["attempts"] >= 2
        if target == 100:
            assert busy >= FULL_MIN, err
        else:
            assert abs(busy - target) <= TOLERANCE, err

    # the upload: the same bytes, with the key
    [request] = admin.received
    assert request.path == "/api/v1/loadtests"
    assert request.headers["Authorization"] == f"Token {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == output.read_bytes()
    assert out == f"uploaded: stored as id 42, {admin.url}/loadtests/42\n"
    assert "calibrated: " in err
    assert "level 100%:" in err


def test_interrupt_stops_the_workers_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "result.json"
    process = loadtest(
        "run", "--levels", "50,100", "--window", "0.5s", "--progress", "plain", "--output", str(output),
        start_new_session=True,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []

    def calibrating() -> bool:
        lines.append(process.stderr.readline())  # type: ignore[union-attr]
        return "calibrat" in lines[-1] or not lines[-1]

    wait_until(calibrating, 60, interval=0.0, what="calibration")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, "".join(lines) + err
    assert "interrupted; no result written" in err
    assert not output.exists()

    def group_gone() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(group_gone, 10, what="the worker processes to exit")
