"""Where the local stack keeps its state: ``var/`` in the checkout, or PERFANALYSIS_VAR_DIR."""

from __future__ import annotations

import os
from pathlib import Path

from perfanalysis.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
VARIABLE = "PERFANALYSIS_VAR_DIR"


class VarDirError(ConfigError):
    """PERFANALYSIS_VAR_DIR (or var/) is no usable directory; a ConfigError, so that every
    component's settings loader reports it with the other configuration problems (exit 2)."""


def var_dir() -> Path:
    """The state directory; VarDirError when PERFANALYSIS_VAR_DIR is set but empty, which
    ``Path("")`` would otherwise take for the current directory."""
    text = os.environ.get(VARIABLE)
    if text is None:
        return ROOT / "var"
    if not text.strip():
        raise VarDirError(
            [
                f"{VARIABLE}: is empty; name the state directory, or unset it for var/ in the checkout"
            ]
        )
    return Path(text)
