"""Trends: a least-squares line fitted to a series, and how far ahead it may be extrapolated.

The rule, for every forecast the report makes (a filesystem's fill is the only one): a trend is
extrapolated at most ``HORIZON_PER_SPAN`` times as far ahead as the data it is fitted on spans,
and only from ``MIN_POINTS`` steps with data or more. node-mixin's NodeFilesystemSpaceFillingUp,
and this project's HostFilesystemFillingUp, predict 24h ahead from 6h of data
(``predict_linear(...[6h], 24 * 3600)``): the same ratio. So a report asking whether a
filesystem fills within 7d needs 1d 18h of data; a two-minute report forecasts nothing rather
than turn a two-minute wobble into "full in 6 days", and says so.

The span is the time the steps with data cover, from the start of the first to the end of the
last (a step's value stands for the whole step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from perfanalysis.report.timerange import format_duration

HORIZON_PER_SPAN = 4
MIN_POINTS = 10


def span_needed(horizon: int) -> int:
    """The seconds of data a forecast ``horizon`` seconds ahead needs."""
    return math.ceil(horizon / HORIZON_PER_SPAN)


@dataclass(frozen=True)
class ShortData:
    """Too little data to forecast ``horizon`` seconds ahead: why, in figures."""

    points: int  # steps with data
    span: int  # seconds those steps cover
    horizon: int

    @property
    def span_short(self) -> bool:
        return self.span < span_needed(self.horizon)

    @property
    def points_short(self) -> bool:
        return self.points < MIN_POINTS

    def __str__(self) -> str:
        """``2m of data, 1d 18h needed`` (and/or ``6 steps with data, 10 needed``)."""
        parts = []
        if self.span_short:
            parts.append(
                f"{format_duration(self.span)} of data, {format_duration(span_needed(self.horizon))} "
                "needed"
            )
        if self.points_short:
            parts.append(
                f"{self.points} step{'' if self.points == 1 else 's'} with data, {MIN_POINTS} needed"
            )
        return ", and ".join(parts)


def short_data(present: Sequence[bool], step: int, horizon: int) -> ShortData | None:
    """Why a trend over the steps marked ``present`` may not be forecast ``horizon`` seconds
    ahead; None when it may."""
    indices = [i for i, has in enumerate(present) if has]
    span = (indices[-1] - indices[0] + 1) * step if indices else 0
    found = ShortData(len(indices), span, horizon)
    return found if found.span_short or found.points_short else None


def fitted_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of y over x; None with fewer than two points or no spread in x."""
    n = len(points)
    if n < 2:
        return None
    mean_x = math.fsum(x for x, _ in points) / n
    mean_y = math.fsum(y for _, y in points) / n
    spread = math.fsum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return math.fsum((x - mean_x) * (y - mean_y) for x, y in points) / spread
