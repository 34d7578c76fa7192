"""Household local time from POSIX seconds, DST-correct, without reading a clock.

Tariffs are written in wall-clock time ("night rate 00:30-07:30"), days in the household's
timezone, and the rest of the app passes POSIX seconds (UTC). These helpers go between
the two with ``zoneinfo``:

* ``offset_pieces(a, b, tz)`` splits a span of POSIX seconds where the UTC offset changes,
  so that inside each piece wall time = POSIX time + a constant;
* ``wall_to_instant(naive, tz)`` is the first instant whose wall time is at or after
  ``naive``: a wall time that does not exist (the hour skipped in spring) maps to the
  moment of the change, an ambiguous one (the hour repeated in autumn) to its first
  occurrence;
* ``day_start(d, tz)`` / ``day_bounds`` are local midnights through that rule, so a local day
  is 23, 24 or 25 hours long.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

EPOCH_DATE = dt.date(1970, 1, 1)
DAY_S = 86_400


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name (cached); ValueError if it is not one."""
    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError, IsADirectoryError...
        raise ValueError(f"unknown timezone {name!r}") from None


def utc_offset_s(t: float, tz: ZoneInfo) -> int:
    """The UTC offset, in whole seconds, in force at POSIX time ``t``."""
    off = dt.datetime.fromtimestamp(t, tz).utcoffset()
    assert off is not None
    return int(off.total_seconds())


def offset_pieces(a: int, b: int, tz: ZoneInfo) -> list[tuple[int, int, int]]:
    """``[(start, end, offset_s), ...]`` covering integer POSIX seconds [a, b), split where
    the UTC offset changes. Assumes at most one change per probe of the span, as every
    real timezone has (changes are months apart); spans here are one UTC day."""
    pieces: list[tuple[int, int, int]] = []
    while a < b:
        off_a = utc_offset_s(a, tz)
        if utc_offset_s(b - 1, tz) == off_a:
            pieces.append((a, b, off_a))
            break
        lo, hi = a, b - 1  # offset(lo) == off_a, offset(hi) != off_a
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if utc_offset_s(mid, tz) == off_a:
                lo = mid
            else:
                hi = mid
        pieces.append((a, hi, off_a))
        a = hi
    return pieces


def wall_to_instant(naive: dt.datetime, tz: ZoneInfo) -> int:
    """The first POSIX second whose local wall time is at or after ``naive``.

    Regular times map to themselves; in an autumn repeat the first occurrence wins; a
    wall time skipped in spring maps to the instant of the change (the first wall time
    after the gap)."""
    t0 = int(naive.replace(tzinfo=tz, fold=0).timestamp())
    t1 = int(naive.replace(tzinfo=tz, fold=1).timestamp())
    if t0 <= t1:
        return t0  # regular (equal) or ambiguous (fold=0 is the earlier)
    # In a gap: fold=1 (the later offset) lands before the change, fold=0 after it.
    off_before = utc_offset_s(t1, tz)
    lo, hi = t1, t0  # offset(lo) == off_before, offset(hi) != off_before
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if utc_offset_s(mid, tz) == off_before:
            lo = mid
        else:
            hi = mid
    return hi


def day_start(day: dt.date, tz: ZoneInfo) -> int:
    """POSIX seconds of the start of local ``day`` (its midnight, or the first instant of
    the day if midnight was skipped)."""
    return wall_to_instant(dt.datetime.combine(day, dt.time()), tz)


def day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of local ``day`` in POSIX seconds: 23, 24 or 25 hours long."""
    return day_start(day, tz), day_start(day + dt.timedelta(days=1), tz)


def local_date(t: float, tz: ZoneInfo) -> dt.date:
    """The local date holding POSIX time ``t``."""
    return dt.datetime.fromtimestamp(t, tz).date()


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months; the day of month must exist in the target month
    (callers use days 1-28)."""
    m = day.month - 1 + months
    return day.replace(year=day.year + m // 12, month=m % 12 + 1)
