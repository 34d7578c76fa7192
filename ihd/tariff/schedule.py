"""Rate schedules: which unit rate is in force when. Fixed rates and time-of-use bands.

A schedule maps an instant (POSIX seconds) to a unit rate (``Decimal`` minor units per
priced unit, as printed by the supplier). It is piecewise constant, and

* ``pieces(start, end)`` lists the constant pieces ``(t0, t1, rate, estimated)`` covering
  [start, end], adjacent pieces with the same rate merged;
* ``weighted(q, start, end)`` is the cost, in minor units, of ``q`` units used evenly over
  [start, end]: ``q * sum(rate_i * duration_i) / (end - start)``. This is how a delta that
  spans a band boundary is split pro rata by time. When one rate covers the interval it is
  just ``q * rate``, with no division; otherwise one division at 60 significant digits.

Times become Decimals by their ``repr`` (as amounts do, see ``money.to_decimal``), so the
durations of the pieces add up exactly to the interval's, and splitting an interval
anywhere and pricing the parts gives the same cost as pricing the whole.

``TimeOfUse`` bands are wall-clock times in a timezone. Their rate follows the *local
wall time* of each instant: on the day clocks go forward a 00:30-07:30 band lasts six
hours, on the day they go back eight, and a time in the repeated hour has the rate of
its wall time both times round. Bands may cross midnight (Economy 7: 23:30-06:30); a band's
``days`` and season are those of the day it starts. There is no limit on the number of
bands. Two bands may not cover the same moment, and every moment not covered by a band
takes the ``default`` rate; without a default the bands must cover the whole week in
every season. Both are checked when the schedule is built.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from ihd.tariff.localtime import DAY_S, EPOCH_DATE, offset_pieces, zone
from ihd.tariff.money import MONEY_CONTEXT

_mul = MONEY_CONTEXT.multiply
_add = MONEY_CONTEXT.add
_sub = MONEY_CONTEXT.subtract
_div = MONEY_CONTEXT.divide
ZERO = Decimal(0)

Piece = tuple[float, float, Decimal, bool]
"""(start, end, rate, estimated): ``estimated`` when the rate is a fallback for a missing
dynamic price."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(7))


def time_decimal(t: float) -> Decimal:
    """An instant as an exact Decimal: ints exactly, floats by their repr."""
    if isinstance(t, int):
        return Decimal(t)
    return Decimal(repr(t))


class RateSchedule(Protocol):
    def rate_at(self, t: float) -> Decimal:
        """The rate in force at ``t``."""
        ...

    def pieces(self, start: float, end: float) -> list[Piece]:
        """Constant-rate pieces covering [start, end]; one zero-length piece if equal."""
        ...

    def weighted(self, q: Decimal, start: float, end: float) -> tuple[Decimal, bool]:
        """(cost in minor units of ``q`` units used evenly over [start, end], estimated)."""
        ...


def weighted_from_pieces(q: Decimal, start: float, end: float, pieces: list[Piece]) -> Decimal:
    """``q * sum(rate * duration) / (end - start)``; ``q * rate`` for a single piece."""
    if len(pieces) == 1:
        return _mul(q, pieces[0][2])
    acc = ZERO
    for t0, t1, rate, _ in pieces:
        acc = _add(acc, _mul(rate, _sub(time_decimal(t1), time_decimal(t0))))
    return _div(_mul(q, acc), _sub(time_decimal(end), time_decimal(start)))


def merge_pieces(pieces: Iterable[Piece]) -> list[Piece]:
    """Join adjacent pieces with the same rate and flag; drop empty ones (unless all are)."""
    out: list[Piece] = []
    for p in pieces:
        if out and out[-1][2] == p[2] and out[-1][3] == p[3] and out[-1][1] == p[0]:
            out[-1] = (out[-1][0], p[1], p[2], p[3])
        elif p[1] > p[0] or not out:
            if out and out[-1][1] == out[-1][0]:
                out.pop()  # a leading empty piece gives way to a real one
            out.append(p)
    return out


@dataclass(frozen=True, slots=True)
class FixedRate:
    """One rate at all times."""

    rate: Decimal

    def rate_at(self, t: float) -> Decimal:
        return self.rate

    def pieces(self, start: float, end: float) -> list[Piece]:
        return [(start, end, self.rate, False)]

    def weighted(self, q: Decimal, start: float, end: float) -> tuple[Decimal, bool]:
        return _mul(q, self.rate), False


# --------------------------------------------------------------------------- bands

MonthDay = tuple[int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Band:
    """A rate for a stretch of wall-clock time on some days, maybe in some season.

    ``start``/``end`` are seconds after local midnight; ``end <= start`` means the band
    runs past midnight into the next day (``start == end`` is a whole 24 hours). ``days``
    are weekdays (0 = Monday) and ``months`` (1-12) or ``dates`` (an inclusive month-day
    range such as ((11, 1), (2, 28)), which may wrap the year end) the season; all refer
    to the day on which the band starts."""

    start: int
    end: int
    rate: Decimal
    days: frozenset[int] = ALL_DAYS
    months: frozenset[int] | None = None
    dates: tuple[MonthDay, MonthDay] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not (0 <= self.start < DAY_S and 0 <= self.end <= DAY_S):
            raise ValueError(f"band times must be within the day: {self.start}, {self.end}")
        if not self.days or not self.days <= ALL_DAYS:
            raise ValueError(f"band days must be weekdays 0-6: {sorted(self.days)}")
        if self.months is not None and (not self.months or not self.months <= set(range(1, 13))):
            raise ValueError(f"band months must be 1-12: {sorted(self.months)}")
        if self.months is not None and self.dates is not None:
            raise ValueError("a band's season is months or dates, not both")
        if self.dates is not None:
            for m, d in self.dates:
                dt.date(2024, m, d)  # ValueError if no such month-day (2024 has 29 Feb)
        if not isinstance(self.rate, Decimal) or not self.rate.is_finite():
            raise ValueError(f"band rate must be a finite Decimal: {self.rate!r}")

    @property
    def wraps(self) -> bool:
        return self.end <= self.start

    def in_season(self, month: int, day: int) -> bool:
        if self.months is not None:
            return month in self.months
        if self.dates is not None:
            lo, hi = self.dates
            md = (month, day)
            return lo <= md <= hi if lo <= hi else (md >= lo or md <= hi)
        return True

    def label(self, index: int) -> str:
        return f"band {index + 1}" + (f" ({self.name})" if self.name else "")


def _hhmm(s: int) -> str:
    return f"{s // 3600:02d}:{s // 60 % 60:02d}" + (f":{s % 60:02d}" if s % 60 else "")


class BandError(ValueError):
    """Bands that overlap, or leave time uncovered with no default rate."""


# A wall day's layout: (start_s, end_s, band index or -1 for the default).
_Layout = list[tuple[int, int, int]]


def _layout(
    bands: Sequence[Band], weekday: int, season: Sequence[bool], prev_season: Sequence[bool]
) -> tuple[_Layout, tuple[int, int, int] | None, int | None]:
    """The bands in force over one wall day, given its weekday and which bands are in
    season today and yesterday. Returns (layout, overlap, uncovered_at): ``overlap`` is
    (band a, band b, second) for the first clash, ``uncovered_at`` the first second no
    band covers (the layout then uses -1 there)."""
    prev_weekday = (weekday - 1) % 7
    spans: list[tuple[int, int, int]] = []
    for i, b in enumerate(bands):
        if b.wraps:
            if season[i] and weekday in b.days:
                spans.append((b.start, DAY_S, i))
            if b.end > 0 and prev_season[i] and prev_weekday in b.days:
                spans.append((0, b.end, i))
        elif season[i] and weekday in b.days:
            spans.append((b.start, b.end, i))
    spans.sort()
    layout: _Layout = []
    overlap = None
    gap = None
    t = 0
    for s, e, i in spans:
        if s < t:
            if overlap is None:
                overlap = (layout[-1][2], i, s)
            continue
        if s > t:
            gap = t if gap is None else gap
            layout.append((t, s, -1))
        layout.append((s, e, i))
        t = e
    if t < DAY_S:
        gap = t if gap is None else gap
        layout.append((t, DAY_S, -1))
    return layout, overlap, gap


# Two calendar years, one leap, so that both 28 Feb -> 1 Mar and 29 Feb -> 1 Mar are seen.
_YEARS = [
    [dt.date(year, 1, 1) + dt.timedelta(days=n) for n in range(days)]
    for year, days in ((2023, 365), (2024, 366))
]


def check_bands(bands: Sequence[Band], default: Decimal | None) -> None:
    """Raise BandError if two bands cover the same moment on any day of any year, or if,
    without a ``default``, some moment is covered by none."""
    # A day's layout depends only on its weekday and on the seasons of it and the day
    # before, so checking each distinct (yesterday, today) season pair on all seven
    # weekdays checks every day of every year.
    combos: dict[tuple[tuple[bool, ...], tuple[bool, ...]], dt.date] = {}
    for days in _YEARS:
        seasons = [tuple(b.in_season(d.month, d.day) for b in bands) for d in days]
        for n, d in enumerate(days):
            combos.setdefault((seasons[n - 1], seasons[n]), d)  # 1 Jan follows 31 Dec
    for (prev, today), example in combos.items():
        for weekday in range(7):
            _, overlap, gap = _layout(bands, weekday, today, prev)
            when = f"{WEEKDAYS[weekday]} {example:%m-%d}"
            if overlap is not None:
                a, b, s = overlap
                raise BandError(
                    f"{bands[a].label(a)} and {bands[b].label(b)} overlap "
                    f"(both cover {when} at {_hhmm(s)})"
                )
            if gap is not None and default is None:
                raise BandError(
                    f"no band covers {when} at {_hhmm(gap)}, and there is no default rate"
                )


@dataclass(eq=False)
class TimeOfUse:
    """Time-of-use bands in a timezone, with a default rate for the time between them."""

    bands: Sequence[Band]
    default: Decimal | None = None
    timezone: str = "Europe/London"
    # caches: wall date -> layout with rates; UTC day number -> (starts, rates, end)
    _days: dict[dt.date, list[tuple[int, int, Decimal]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _chunks: dict[int, tuple[list[int], list[Decimal], int]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.bands = tuple(self.bands)
        if self.default is not None and (
            not isinstance(self.default, Decimal) or not self.default.is_finite()
        ):
            raise ValueError(f"default rate must be a finite Decimal: {self.default!r}")
        self._tz = zone(self.timezone)
        check_bands(self.bands, self.default)

    # -- one wall day, in seconds after local midnight
    def wall_day(self, day: dt.date) -> list[tuple[int, int, Decimal]]:
        """The rates over local ``day`` by wall-clock time: [(start_s, end_s, rate)]."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        prev = day - dt.timedelta(days=1)
        layout, _, _ = _layout(
            self.bands,
            day.weekday(),
            [b.in_season(day.month, day.day) for b in self.bands],
            [b.in_season(prev.month, prev.day) for b in self.bands],
        )
        out: list[tuple[int, int, Decimal]] = []
        for s, e, i in layout:
            rate = self.bands[i].rate if i >= 0 else self.default
            assert rate is not None  # check_bands: no gaps without a default
            if out and out[-1][2] == rate:
                out[-1] = (out[-1][0], e, rate)
            else:
                out.append((s, e, rate))
        self._days[day] = out
        return out

    # -- one UTC day, in POSIX seconds
    def _chunk(self, k: int) -> tuple[list[int], list[Decimal], int]:
        chunk = self._chunks.get(k)
        if chunk is not None:
            return chunk
        a, b = k * DAY_S, (k + 1) * DAY_S
        starts: list[int] = []
        rates: list[Decimal] = []
        for u0, u1, off in offset_pieces(a, b, self._tz):
            w0, w1 = u0 + off, u1 + off  # the wall-clock span, as naive seconds
            for j in range(w0 // DAY_S, (w1 - 1) // DAY_S + 1):
                base = j * DAY_S
                for s, e, rate in self.wall_day(EPOCH_DATE + dt.timedelta(days=j)):
                    lo, hi = max(base + s, w0), min(base + e, w1)
                    if lo >= hi:
                        continue
                    if rates and rates[-1] == rate:
                        continue  # the same rate goes on
                    starts.append(lo - off)
                    rates.append(rate)
        chunk = self._chunks[k] = (starts, rates, b)
        return chunk

    def rate_at(self, t: float) -> Decimal:
        starts, rates, _ = self._chunk(int(t // DAY_S))
        return rates[bisect_right(starts, t) - 1]

    def pieces(self, start: float, end: float) -> list[Piece]:
        if end <= start:
            return [(start, start, self.rate_at(start), False)]
        out: list[Piece] = []
        k = int(start // DAY_S)
        t = start
        while t < end:
            starts, rates, chunk_end = self._chunk(k)
            i = bisect_right(starts, t) - 1
            n = len(starts)
            while i < n and t < end:
                seg_end = starts[i + 1] if i + 1 < n else chunk_end
                e = seg_end if seg_end < end else end
                if out and out[-1][2] == rates[i]:
                    out[-1] = (out[-1][0], e, rates[i], False)
                else:
                    out.append((t, e, rates[i], False))
                t = e
                i += 1
            k += 1
        return out

    def weighted(self, q: Decimal, start: float, end: float) -> tuple[Decimal, bool]:
        k = int(start // DAY_S)
        chunk = self._chunks.get(k)
        starts, rates, chunk_end = chunk if chunk is not None else self._chunk(k)
        i = bisect_right(starts, start) - 1
        seg_end = starts[i + 1] if i + 1 < len(starts) else chunk_end
        if end <= seg_end:  # the common case: one rate for the whole interval
            return _mul(q, rates[i]), False
        return weighted_from_pieces(q, start, end, self.pieces(start, end)), False
