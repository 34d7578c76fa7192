"""Budgets and the traffic-light ambient state. Pure functions: the caller passes the
time, the spend so far, and (for "typical use") sums it read from the history.

The light compares what was used so far in the period (``actual``) with what was
expected by now (``expected``) and with the whole period's reference (``whole``):

* RED if ``actual > whole`` (the budget is spent, or more was used than on a whole
  typical day), or ``actual > expected * red_ratio`` (default 1.2: 20 % ahead of pace);
* AMBER if ``actual > expected`` (ahead of pace);
* GREEN otherwise;
* NONE when there is nothing to compare with (no budget and no history yet).

With a budget, ``whole`` is the budget and ``expected`` is the budget times the elapsed
fraction of the period (local days, Monday-to-Sunday weeks, calendar months or billing
months, DST-aware: a fraction of the real seconds), but never less than 1/24 of the
budget, so that the first kettle of the day does not turn the light red.

Without a budget, the reference is the household's own typical use: the median of the
same span in the last ``count`` periods (``typical_windows``): for a daily light, the
same weekday in each of the last four weeks, from midnight to the same wall-clock time
(``expected``) and the whole day (``whole``). ``expected`` is at least 1/24 of ``whole``.

Budgets are money (milli-minor units), but the functions compare any integers, so an
energy budget works the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from ihd.meter.reading import Utility
from ihd.tariff.localtime import add_months, day_start, wall_to_instant, zone

RED_RATIO = Fraction(6, 5)
MIN_FRACTION = Fraction(1, 24)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Light(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Budget:
    utility: Utility
    period: Period
    limit_milli: int  # per period

    def __post_init__(self) -> None:
        if self.limit_milli < 0:
            raise ValueError(f"a budget cannot be negative: {self.limit_milli}")


@dataclass(frozen=True, slots=True)
class Window:
    """A past period: [start, end) is the whole of it, [start, to_date) the part that
    corresponds to the current period so far."""

    start: int
    to_date: int
    end: int


def _period_dates(period: Period, day: dt.date, month_start: int) -> tuple[dt.date, dt.date]:
    if period is Period.DAY:
        return day, day + dt.timedelta(days=1)
    if period is Period.WEEK:
        first = day - dt.timedelta(days=day.weekday())
        return first, first + dt.timedelta(days=7)
    first = day.replace(day=month_start)
    if day.day < month_start:
        first = add_months(first, -1)
    return first, add_months(first, 1)


def period_bounds(
    period: Period, t: float, timezone: str, *, month_start: int = 1
) -> tuple[int, int]:
    """[start, end) in POSIX seconds of the local day, week (from Monday) or month (from
    day ``month_start``, 1-28) holding ``t``."""
    if not 1 <= month_start <= 28:
        raise ValueError(f"month_start must be 1-28, got {month_start}")
    tz = zone(timezone)
    first, after = _period_dates(period, dt.datetime.fromtimestamp(t, tz).date(), month_start)
    return day_start(first, tz), day_start(after, tz)


def elapsed_fraction(period: Period, t: float, timezone: str, *, month_start: int = 1) -> Fraction:
    """How much of the period holding ``t`` has passed, in real seconds (0 to 1)."""
    lo, hi = period_bounds(period, t, timezone, month_start=month_start)
    return (Fraction(t) - lo) / (hi - lo)


def median(values: Sequence[int]) -> Fraction:
    """The median, exactly (the mean of the middle two for an even count)."""
    if not values:
        raise ValueError("median of nothing")
    s = sorted(values)
    n = len(s)
    return Fraction(s[n // 2]) if n % 2 else Fraction(s[n // 2 - 1] + s[n // 2], 2)


def light(
    actual: int, expected: Fraction | int, whole: Fraction | int, *, red_ratio: Fraction = RED_RATIO
) -> Light:
    """The rule in the module docstring."""
    if actual > whole or actual > expected * red_ratio:
        return Light.RED
    if actual > expected:
        return Light.AMBER
    return Light.GREEN


def budget_light(
    spent: int,
    budget: Budget,
    now: float,
    timezone: str,
    *,
    month_start: int = 1,
    red_ratio: Fraction = RED_RATIO,
) -> Light:
    """The light for ``spent`` so far in the current period against ``budget``."""
    f = max(elapsed_fraction(budget.period, now, timezone, month_start=month_start), MIN_FRACTION)
    limit = budget.limit_milli
    return light(spent, limit * f, limit, red_ratio=red_ratio)


def typical_windows(
    period: Period, now: float, timezone: str, *, count: int = 4, month_start: int = 1
) -> list[Window]:
    """The last ``count`` periods of the same kind, most recent first, each with the part
    that matches the current period so far. Days: the same weekday in each earlier week
    (to the same wall-clock time); weeks: earlier weeks (to the same weekday and time);
    months: earlier months (to the same fraction of the month)."""
    tz = zone(timezone)
    local = dt.datetime.fromtimestamp(now, tz)
    first, after = _period_dates(period, local.date(), month_start)
    lo, hi = day_start(first, tz), day_start(after, tz)
    out: list[Window] = []
    for k in range(1, count + 1):
        if period is Period.MONTH:
            a_date, b_date = add_months(first, -k), add_months(first, -k + 1)
            a, b = day_start(a_date, tz), day_start(b_date, tz)
            to = a + round((Fraction(now) - lo) * (b - a) / (hi - lo))
        else:
            back = dt.timedelta(days=7 * k)  # a week back: the same weekday
            a_date, b_date = first - back, after - back
            a, b = day_start(a_date, tz), day_start(b_date, tz)
            wall = local.replace(tzinfo=None) - back
            to = min(max(wall_to_instant(wall, tz), a), b)
        out.append(Window(a, to, b))
    return out


def typical_light(
    actual: int,
    to_date: Sequence[int],
    whole: Sequence[int],
    *,
    red_ratio: Fraction = RED_RATIO,
) -> Light:
    """The light against typical use: ``to_date`` and ``whole`` are the sums over the
    ``to_date`` and whole parts of ``typical_windows`` (periods with no data left out)."""
    if not to_date or not whole:
        return Light.NONE
    reference = median(whole)
    expected = max(median(to_date), reference * MIN_FRACTION)
    return light(actual, expected, reference, red_ratio=red_ratio)


def traffic_light(
    actual: int,
    now: float,
    timezone: str,
    *,
    budget: Budget | None = None,
    typical_to_date: Sequence[int] = (),
    typical_whole: Sequence[int] = (),
    month_start: int = 1,
    red_ratio: Fraction = RED_RATIO,
) -> Light:
    """Against the budget if there is one, else against typical use."""
    if budget is not None:
        return budget_light(
            actual, budget, now, timezone, month_start=month_start, red_ratio=red_ratio
        )
    return typical_light(actual, typical_to_date, typical_whole, red_ratio=red_ratio)
