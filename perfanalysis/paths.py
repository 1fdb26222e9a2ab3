"""Where the local stack keeps its state: ``var/`` in the checkout, or PERFANALYSIS_VAR_DIR."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    return Path(os.environ.get("PERFANALYSIS_VAR_DIR", ROOT / "var"))
