"""Choosing what to report when the configuration does not say: the busiest disk, the busiest
non-loopback network interface, the real filesystems, and the sampling interval."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping, Sequence

LOOPBACK_INTERFACES = frozenset({"lo"})


def busiest(bytes_moved: Mapping[str, float], excluded: Iterable[str] = ()) -> str | None:
    """The device that moved the most bytes; ties go to the first name in sort order."""
    skip = set(excluded)
    candidates = [(-moved, name) for name, moved in bytes_moved.items() if name not in skip]
    return min(candidates)[1] if candidates else None


def busiest_disk(bytes_moved: Mapping[str, float]) -> str | None:
    """The disk with the most bytes read plus written."""
    return busiest(bytes_moved)


def busiest_interface(bytes_moved: Mapping[str, float]) -> str | None:
    """The interface with the most bytes received plus sent, loopback left out."""
    return busiest(bytes_moved, LOOPBACK_INTERFACES)


def real_mountpoints(fstypes: Mapping[str, str], excluded_fstypes: Iterable[str]) -> list[str]:
    """Mountpoints (to their filesystem type) whose type is not excluded, sorted."""
    skip = set(excluded_fstypes)
    return sorted(mount for mount, fstype in fstypes.items() if fstype not in skip)


def sampling_interval(times: Sequence[float]) -> float | None:
    """The median spacing of sample times (seconds); None with fewer than two samples."""
    spacings = [b - a for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(spacings) if spacings else None
