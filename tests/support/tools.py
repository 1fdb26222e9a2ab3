"""Running promtool or amtool (perfanalysis.testing.servers) from a test."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from perfanalysis.testing.servers import ServerUnavailable


def tool(run: Any, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``run(*args)`` (``promtool`` or ``amtool``); the test is skipped, saying why, when the
    tool cannot be installed here."""
    try:
        result: subprocess.CompletedProcess[str] = run(*args)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    return result
