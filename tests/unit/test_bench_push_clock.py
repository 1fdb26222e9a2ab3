"""bench/push reads node_exporter's CPU from its process clock around each scrape: the scrape and
what it leaves to do just after its answer count, the rest of the idle gap does not."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from bench.procstat import cpu_clock, cpu_seconds
from bench.push import TAIL_MS, AnchorScraper


def burn(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


def test_the_process_clock_of_another_process_counts_in_nanoseconds_not_ticks() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nt = time.process_time()\n"
         "while time.process_time() - t < 0.123: pass\nprint(1, flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        child.stdout.readline()  # it has burnt its 0.123 s
        seconds = cpu_clock(child.pid)
        assert seconds >= 0.123
        assert seconds == pytest.approx(cpu_seconds([child.pid]), abs=0.02)  # ticks: 10 ms
        assert cpu_clock(os.getpid()) == pytest.approx(time.process_time(), abs=0.01)
    finally:
        child.kill()
        child.wait()
    with pytest.raises(OSError, match="Invalid argument"):  # EINVAL: no such process
        cpu_clock(child.pid)


def test_a_scrape_is_charged_its_tail_and_not_the_idle_gap() -> None:
    anchor = AnchorScraper.__new__(AnchorScraper)
    anchor.pid = os.getpid()  # this process plays node_exporter
    anchor.scrapes, anchor.cpu_seconds, anchor.gap_cpu_seconds = 0, 0.0, 0.0
    tails: list[threading.Thread] = []

    def scrape() -> None:
        burn(0.003)  # the scrape until its answer
        tail = threading.Thread(target=burn, args=(0.002,))  # what it finishes after it
        tail.start()
        tails.append(tail)

    anchor.scrape = scrape  # type: ignore[method-assign]
    assert TAIL_MS >= 5
    anchor.timed(5, gap=0.03)
    for tail in tails:
        tail.join()
    assert anchor.scrapes == 5
    # 3 ms each until the answer, and (on a loaded machine, at least half of) the 2 ms after it
    assert anchor.cpu_seconds >= 5 * 0.003 + 0.005
    # sleeping, bar the clock reads (and what of a tail a loaded machine ran late)
    assert anchor.gap_cpu_seconds < 0.01
