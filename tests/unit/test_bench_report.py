"""bench/report says whether InfluxDB settled before the report was timed."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bench.report import settle


def test_an_idle_influxdb_settles(capsys: pytest.CaptureFixture[str]) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        idle = cast(Any, SimpleNamespace(pid=sleeper.pid))
        assert settle(idle, quiet_seconds=0.3, limit=5.0, at_least=0.3, poll=0.1) is True
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "InfluxDB settled" in capsys.readouterr().err


def test_a_busy_influxdb_is_a_warning_not_settled(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        busy = cast(Any, SimpleNamespace(pid=os.getpid()))  # this process, spinning a thread
        began = time.monotonic()
        assert settle(busy, quiet_seconds=0.5, limit=0.8, at_least=0.0, poll=0.1) is False
        assert time.monotonic() - began < 3
    finally:
        stop.set()
        spinner.join()
    err = capsys.readouterr().err
    assert "WARNING: InfluxDB did not settle" in err
    assert "settled (cache written" not in err
