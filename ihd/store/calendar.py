"""Local hours, days and months as integer UTC milliseconds: the keys of the rollups.

The rollup tables (``usage_hour``, ``usage_day``, ``usage_month``) are keyed by the
instant their bucket starts, in UTC milliseconds like every other time in the store, but
the buckets themselves are the household's: a day runs from local midnight to local
midnight (23 or 25 hours on a DST change), a month from the local midnight of its first
day, and an hour from a local full hour (which is a UTC full hour in every zone with a
whole-hour offset, and falls on the half hour in India, say).

Rules, so that every layer agrees:

* the day of an instant ``m`` is the local date ``d`` with ``day_start(d) <= m <
  day_start(d + 1)``, where ``day_start(d)`` is ``datetime.combine(d, 00:00, tz)`` (what
  ``Ingest`` uses for "today"): a midnight skipped by DST maps to the moment of the change;
* months nest days (a month starts at the ``day_start`` of its first day);
* hours nest in days: the hour of ``m`` is its local full hour, never before its day.

``buckets(minute_ms)`` is on the write path of every usage row, so it is cached per
15-minute UTC block: every UTC offset in use today is a multiple of 15 minutes and
changes at a quarter hour, so one block shares one hour, day and month. (A block where that
does not hold, in the odd offsets of the early 1970s, is computed minute by minute.)
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

HOUR_MS = 3_600_000
BLOCK_MS = 900_000  # 15 minutes
MINUTE_MS = 60_000

HOUR, DAY, MONTH = 0, 1, 2
LEVELS = (HOUR, DAY, MONTH)

_CACHE_MAX = 200_000


class Calendar:
    """The household's calendar in ``tz`` (an IANA name); ``ValueError`` if unknown."""

    def __init__(self, tz: str) -> None:
        try:
            self.zone = zoneinfo.ZoneInfo(tz)
        except Exception:  # ZoneInfoNotFoundError, ValueError, IsADirectoryError...
            raise ValueError(f"unknown timezone {tz!r}") from None
        self.name = tz
        self._blocks: dict[int, tuple[int, int, int]] = {}
        self._days: dict[dt.date, int] = {}

    # ------------------------------------------------------------------ primitives

    def offset_ms(self, t_ms: int) -> int:
        """The UTC offset in force at ``t_ms``, in milliseconds."""
        local = dt.datetime.fromtimestamp(t_ms / 1000, self.zone)
        off = local.utcoffset()
        assert off is not None
        return int(off.total_seconds() * 1000)

    def local_date(self, t_ms: int) -> dt.date:
        """The local date of the day bucket holding ``t_ms`` (see the module's rules)."""
        d = dt.datetime.fromtimestamp(t_ms / 1000, self.zone).date()
        while self.day_ms(d + dt.timedelta(days=1)) <= t_ms:
            d += dt.timedelta(days=1)
        while self.day_ms(d) > t_ms:
            d -= dt.timedelta(days=1)
        return d

    def day_ms(self, d: dt.date) -> int:
        """Start of local day ``d`` (local midnight), UTC milliseconds."""
        ms = self._days.get(d)
        if ms is None:
            ms = round(dt.datetime.combine(d, dt.time(), self.zone).timestamp() * 1000)
            if len(self._days) > _CACHE_MAX:
                self._days.clear()
            self._days[d] = ms
        return ms

    def month_ms(self, year: int, month: int) -> int:
        """Start of local month ``year``-``month``, UTC milliseconds."""
        return self.day_ms(dt.date(year, month, 1))

    # ------------------------------------------------------------------ buckets

    def buckets(self, t_ms: int) -> tuple[int, int, int]:
        """(hour, day, month) bucket starts holding instant ``t_ms``, UTC milliseconds."""
        block = t_ms // BLOCK_MS
        got = self._blocks.get(block)
        if got is not None:
            return got
        start = block * BLOCK_MS
        off = self.offset_ms(start)
        if off % BLOCK_MS == 0 and self.offset_ms(start + BLOCK_MS - 1) == off:
            got = self._compute(start, off)
            if len(self._blocks) > _CACHE_MAX:
                self._blocks.clear()
            self._blocks[block] = got
            return got
        return self._compute(t_ms, self.offset_ms(t_ms))

    def _compute(self, t_ms: int, off: int) -> tuple[int, int, int]:
        d = self.local_date(t_ms)
        day = self.day_ms(d)
        hour = max(day, (t_ms + off) // HOUR_MS * HOUR_MS - off)
        if hour > day and self.offset_ms(hour) != off:
            # The local hour began before the offset changed (a 30-minute DST shift): it
            # starts at the change, so that a bucket never starts before its first minute.
            lo, hi = hour, t_ms  # offset(lo) != off == offset(hi)
            while hi - lo > MINUTE_MS:
                mid = (lo + hi) // 2 // MINUTE_MS * MINUTE_MS
                if mid <= lo:
                    break
                if self.offset_ms(mid) == off:
                    hi = mid
                else:
                    lo = mid
            hour = hi
        return hour, day, self.month_ms(d.year, d.month)

    def floor(self, t_ms: int, level: int) -> int:
        """Start of the bucket of ``level`` (HOUR, DAY, MONTH) that holds ``t_ms``."""
        return self.buckets(t_ms)[level]

    def next_start(self, bucket_ms: int, level: int) -> int:
        """Start of the bucket after the one starting at ``bucket_ms``."""
        if level == MONTH:
            d = self.local_date(bucket_ms)
            y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
            return self.month_ms(y, m)
        if level == DAY:
            return self.day_ms(self.local_date(bucket_ms) + dt.timedelta(days=1))
        # An hour is 60 minutes except around an offset change or a day's edge: step
        # through the quarter hours until the bucket changes.
        t = bucket_ms - bucket_ms % BLOCK_MS + BLOCK_MS
        while self.buckets(t)[HOUR] == bucket_ms:
            t += BLOCK_MS
        # The change may be inside that quarter hour (odd historical offsets).
        lo = t - BLOCK_MS
        while self.buckets(lo)[HOUR] == bucket_ms:
            lo += MINUTE_MS
        return lo

    def ceil(self, t_ms: int, level: int) -> int:
        """The first bucket start of ``level`` at or after ``t_ms``."""
        start = self.floor(t_ms, level)
        return start if start == t_ms else self.next_start(start, level)

    def starts(self, first_ms: int, end_ms: int, level: int) -> list[int]:
        """Bucket starts of ``level`` from the bucket holding ``first_ms`` to ``end_ms``
        (exclusive), plus the end of the last one: n buckets, n + 1 edges."""
        t = self.floor(first_ms, level)
        out = [t]
        while t < end_ms:
            t = self.next_start(t, level)
            out.append(t)
        return out
