"""Names from the kernel that would share one label value: reported, never merged silently."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class LabelClashes:
    """Warns, once per pair, that two names of one table give the same label value.

    ``valid_utf8`` keeps names apart, except a valid name that itself holds the escape text of
    another's byte: an interface literally named ``x\\xff`` and one named ``x`` plus the byte
    0xff. The collector exports the first of the two and drops the second.
    """

    def __init__(self, table: str) -> None:
        self.table = table
        self._reported: set[tuple[str, str]] = set()

    def seen_before(self, seen: dict[str, str], name: str, label: str) -> bool:
        """Whether ``label`` was exported already in this scrape (``seen``: label -> the name it
        was exported for); when for another name, that clash is reported."""
        first = seen.get(label)
        if first is None:
            return False
        if first != name:
            self.report(first, name, label)
        return True

    def report(self, first: str, second: str, label: str) -> None:
        if (first, second) in self._reported:
            return
        self._reported.add((first, second))
        log.warning(
            "%s: %s and %s both give the label value %r: only the first is exported",
            self.table,
            ascii(first),
            ascii(second),
            label,
        )
