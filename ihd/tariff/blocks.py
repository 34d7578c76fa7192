"""Block (tiered) rates: the price of a unit depends on how much was used before it in
the same period (a local day, or a billing month starting on a given day of the month).

``tiers`` are (up_to, rate): the first ``up_to`` units of the period at the first rate,
up to the second ``up_to`` at the second, and so on; the last tier has ``up_to=None``.
Thresholds are cumulative and in the priced unit (kWh or m³).

Pricing is stateful: ``step`` takes and returns ``BlockState`` (the period and the amount
used in it so far). The cost of ``q`` units after ``u`` is ``F(u + q) - F(u)``, where ``F``
is the cost of the first ``x`` units of a period, so pricing a delta in parts, or deltas
in any chunks, gives the same total. A delta that spans the end of a period is split pro
rata by time, and the part after it starts the new period from zero. A negative delta
(a correction) walks back down the tiers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from ihd.tariff.localtime import add_months, day_start, local_date, zone
from ihd.tariff.money import MONEY_CONTEXT
from ihd.tariff.schedule import time_decimal

_mul = MONEY_CONTEXT.multiply
_add = MONEY_CONTEXT.add
_sub = MONEY_CONTEXT.subtract
_div = MONEY_CONTEXT.divide
ZERO = Decimal(0)

BlockPeriod = Literal["day", "month"]


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: Decimal | None  # cumulative units in the period; None for the last tier
    rate: Decimal  # minor units per priced unit


@dataclass(frozen=True, slots=True)
class BlockState:
    period_start: int  # POSIX seconds
    used: Decimal  # priced units used in the period so far


def split_pro_rata(
    q: Decimal, start: float, end: float, cuts: Sequence[float]
) -> list[tuple[Decimal, float, float]]:
    """``q`` used evenly over [start, end], cut at ``cuts`` (strictly inside, sorted):
    [(q_i, s_i, e_i)]. The last part takes the remainder, so the q_i add up to q exactly."""
    if not cuts:
        return [(q, start, end)]
    total = _sub(time_decimal(end), time_decimal(start))
    out: list[tuple[Decimal, float, float]] = []
    rest = q
    t = start
    for c in cuts:
        part = _div(_mul(q, _sub(time_decimal(c), time_decimal(t))), total)
        out.append((part, t, c))
        rest = _sub(rest, part)
        t = c
    out.append((rest, t, end))
    return out


@dataclass(eq=False)
class Blocks:
    tiers: Sequence[Tier]
    period: BlockPeriod = "day"
    billing_day: int = 1  # first day of a billing month (1-28)
    timezone: str = "Europe/London"
    _last: tuple[int, int] = field(default=(0, 0), init=False, repr=False)

    def __post_init__(self) -> None:
        self.tiers = tuple(self.tiers)
        if not self.tiers:
            raise ValueError("blocks need at least one tier")
        prev = ZERO
        for n, tier in enumerate(self.tiers):
            last = n == len(self.tiers) - 1
            if not isinstance(tier.rate, Decimal) or not tier.rate.is_finite():
                raise ValueError(f"tier {n + 1}: rate must be a finite Decimal")
            if last and tier.up_to is not None:
                raise ValueError(f"tier {n + 1}: the last tier has no up_to")
            if not last:
                if tier.up_to is None or not tier.up_to > prev:
                    raise ValueError(f"tier {n + 1}: up_to must be above the tier before")
                prev = tier.up_to
        if self.period not in ("day", "month"):
            raise ValueError(f"block period must be 'day' or 'month', got {self.period!r}")
        if not 1 <= self.billing_day <= 28:
            raise ValueError(f"billing_day must be 1-28, got {self.billing_day}")
        self._tz = zone(self.timezone)

    def period_bounds(self, t: float) -> tuple[int, int]:
        """[start, end) in POSIX seconds of the period holding ``t``."""
        lo, hi = self._last
        if lo <= t < hi:
            return lo, hi
        d = local_date(t, self._tz)
        if self.period == "day":
            first, after = d, d + dt.timedelta(days=1)
        else:
            first = d.replace(day=self.billing_day)
            if d.day < self.billing_day:
                first = add_months(first, -1)
            after = add_months(first, 1)
        lo, hi = day_start(first, self._tz), day_start(after, self._tz)
        self._last = (lo, hi)
        return lo, hi

    def cumulative(self, x: Decimal) -> Decimal:
        """F(x): the cost, in minor units, of the first ``x`` units of a period."""
        if x <= 0:
            return _mul(x, self.tiers[0].rate)  # below zero: the first rate
        cost = ZERO
        lower = ZERO
        for tier in self.tiers:
            if tier.up_to is None or x <= tier.up_to:
                return _add(cost, _mul(_sub(x, lower), tier.rate))
            cost = _add(cost, _mul(_sub(tier.up_to, lower), tier.rate))
            lower = tier.up_to
        raise AssertionError("the last tier has no up_to")

    def rate_after(self, used: Decimal) -> Decimal:
        """The marginal rate once ``used`` units of the period are used."""
        for tier in self.tiers:
            if tier.up_to is None or used < tier.up_to:
                return tier.rate
        return self.tiers[-1].rate

    def step(
        self, q: Decimal, start: float, end: float, state: BlockState | None
    ) -> tuple[Decimal, BlockState]:
        """Cost in minor units of ``q`` priced units used evenly over [start, end], after
        ``state``; and the state after it."""
        hi = self.period_bounds(start)[1]
        cuts: list[float] = []
        while hi < end:
            cuts.append(hi)
            hi = self.period_bounds(hi)[1]
        cost = ZERO
        for part, s, _ in split_pro_rata(q, start, end, cuts):
            p0 = self.period_bounds(s)[0]
            used = state.used if state is not None and state.period_start == p0 else ZERO
            after = _add(used, part)
            cost = _add(cost, _sub(self.cumulative(after), self.cumulative(used)))
            state = BlockState(p0, after)
        assert state is not None
        return cost, state
