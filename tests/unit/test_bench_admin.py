"""bench/admin counts every answer other than 200 as an error, and its verdict follows."""

from __future__ import annotations

from typing import Any

import pytest

from bench.admin import WRK_SCRIPT, errors_of, parse_wrk, report

RESULT = (
    'RESULT {"requests": 1000, "p50_ms": 5.00, "p95_ms": 20.00, "p99_ms": 30.00, '
    '"max_ms": 40.00, "socket_errors": %d, "seconds": 10.00}'
)


def wrk_output(codes: dict[int, list[int]], socket_errors: int = 0) -> str:
    """What the script prints: its RESULT line, then each wrk thread's answers by status."""
    lines = [RESULT % socket_errors]
    for code, per_thread in codes.items():
        lines += [f"CODE {code} {count}" for count in per_thread]
    return "\n".join(["Running 10s test @ http://127.0.0.1:1", *lines, ""])


def test_redirects_and_other_answers_than_200_are_errors() -> None:
    result = parse_wrk(wrk_output({200: [400, 590], 302: [4, 3], 503: [2, 1]}))
    assert result["codes"] == {200: 990, 302: 7, 503: 3}
    assert result["unexpected_status"] == 10  # wrk itself would have counted the 503s only
    assert errors_of(result) == 10
    assert errors_of(parse_wrk(wrk_output({200: [1000]}, socket_errors=2))) == 2
    assert errors_of(parse_wrk(wrk_output({200: [500, 500]}))) == 0


def test_the_script_reports_socket_errors_and_codes_but_not_wrks_status_errors() -> None:
    script = WRK_SCRIPT % {
        "think_ms": 0,
        "connections_per_thread": 25,
        "paths": '"/a"',
        "headers": "{}",
    }
    assert "summary.errors.status" not in script  # only statuses above 399: redirects passed
    assert '"socket_errors"' in script
    assert "CODE %d %d" in script


def results(api_codes: dict[int, list[int]], p95_ms: float = 20.0) -> list[tuple[str, int, Any]]:
    api = parse_wrk(wrk_output(api_codes))
    api["p95_ms"] = p95_ms
    pages = parse_wrk(wrk_output({200: [1000]}))
    return [("API", 1000, api), ("pages", 1000, pages)]


def test_the_verdict_is_missed_when_any_answer_was_not_200(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert report(results({200: [1000]}), "4 workers x 8 threads", 1000) is True
    assert "think time: met" in capsys.readouterr().out
    assert report(results({200: [999], 302: [1]}), "4 workers x 8 threads", 1000) is False
    out = capsys.readouterr().out
    assert "think time: MISSED" in out
    assert "errors: socket errors and answers other than 200" in out
    assert report(results({200: [1000]}, p95_ms=51.0), "4 workers x 8 threads", 1000) is False
