"""Include/exclude regex filters for device-, interface-, mount- and fs-type-keyed collectors."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameFilter:
    """An include regex wins over an exclude regex; with neither, the default exclude applies.

    The config parser refuses include and exclude together, as node_exporter does. Matching is
    unanchored (Go's MatchString): anchor in the pattern, as the defaults do.
    """

    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    @classmethod
    def build(
        cls,
        include: re.Pattern[str] | None,
        exclude: re.Pattern[str] | None,
        default_exclude: str | None = None,
    ) -> NameFilter:
        if include is None and exclude is None and default_exclude:
            exclude = re.compile(default_exclude)
        return cls(include, exclude)

    def __call__(self, name: str) -> bool:
        if self.include is not None:
            return self.include.search(name) is not None
        return self.exclude is None or self.exclude.search(name) is None
