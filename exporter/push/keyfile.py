"""The collector key, read from a file so it never appears in a process listing or the environment.

Read once at start and again when ingest answers 401 or 403, so a key rotated by rewriting the
file (admin issues a new key; the old one stays valid for the overlap window) is picked up
without a restart. A world-readable file is accepted with a warning rather than refused: secrets
mounted by orchestrators are often 0644 inside a private mount, and refusing would stop the push
path on hosts where the exposure is nil.
"""

from __future__ import annotations

import logging
import os
import stat

log = logging.getLogger(__name__)


class KeyFileError(Exception):
    """The key file is missing, unreadable, empty or not a single printable token."""


def read_key(path: str) -> tuple[str, int]:
    """The key the file holds, and the file's mode; KeyFileError saying what is wrong. The
    exporter's settings check calls it too, so a bad key file is a configuration error (exit 2)."""
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="ascii") as handle:
            text = handle.read(4096).strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc}") from None
    if not text:
        raise KeyFileError(f"the key file {path} is empty")
    if any(not ("!" <= c <= "~") for c in text):
        raise KeyFileError(f"the key file {path} must hold one key: printable, no spaces")
    return text, mode


class KeyFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self.key = self._read(warn=True)

    def _read(self, warn: bool) -> str:
        text, mode = read_key(self.path)
        if warn and mode & stat.S_IROTH:
            log.warning("the key file %s is readable by every user: chmod o-r it", self.path)
        return text

    def reload(self) -> bool:
        """Read the file again; True when it now holds another key. A failed read keeps the old."""
        try:
            key = self._read(warn=False)
        except KeyFileError as exc:
            log.error("%s; keeping the key read before", exc)
            return False
        changed = key != self.key
        if changed:
            log.info("the key file %s holds a new key: using it", self.path)
            self.key = key
        return changed

    @property
    def authorization(self) -> str:
        return f"Token {self.key}"
