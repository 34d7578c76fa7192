"""The tariff seam, and pricing a stream of usage without rounding drift.

``Tariff`` is what the rest of the app relies on; ``FlatTariff`` implements it today,
time-of-use and tiered tariffs will later. Nothing above this package should know which
kind it has.

Why a ``Pricer``. A meter pushes every few seconds, and each delta costs a fraction of a
milli-penny more or less than any integer. Rounding each delta on its own and adding
the results drifts: 3 Wh at 24.50 p/kWh is 73.5 milli-pence, which rounds to 74 every
time, so 10,000 pushes would be overcharged by 5,000 milli-pence (5 p). The Pricer
keeps the exact running total as a Decimal, and ``add`` returns, for each delta,
``round(total_after) - round(total_before)``. The returned integers telescope: their
sum is always ``round(exact total)``, within half a milli-minor unit of the truth,
however many deltas there are. They can be stored as integers and summed by SQL.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from ihd.meter.reading import Utility
from ihd.tariff.money import MONEY_CONTEXT, Amount, Currency, round_half_even


class Tariff(Protocol):
    """Prices for one utility. Amounts are in ``metered_unit`` (as ``Reading.unit``)."""

    @property
    def utility(self) -> Utility: ...

    @property
    def currency(self) -> Currency: ...

    @property
    def metered_unit(self) -> str: ...

    def rate_at(self, t: float) -> Decimal:
        """Unit rate in minor units per priced unit, in force at ``t``."""
        ...

    def cost_milli_exact(self, amount: Amount, start: float, end: float) -> Decimal:
        """Exact cost, in milli-minor units, of ``amount`` used over [start, end]."""
        ...

    def cost_milli(self, amount: Amount, start: float, end: float) -> int: ...

    def standing_charge_milli(self, days: int | Decimal) -> int: ...


class Pricer:
    """Prices successive usage deltas of one meter; the integer results never drift.

    ``exact_total_milli`` may be carried over from an earlier Pricer (for example after
    a restart, or when the tariff changes) so that rounding continues seamlessly.
    """

    __slots__ = ("_exact", "_rounded", "tariff")

    def __init__(self, tariff: Tariff, *, exact_total_milli: Decimal = Decimal(0)) -> None:
        self.tariff = tariff
        self._exact = exact_total_milli
        self._rounded = round_half_even(exact_total_milli)

    def add(self, amount: Amount, start: float, end: float) -> int:
        """Cost of ``amount`` used over [start, end], in milli-minor units.

        The values returned so far sum to exactly ``total_milli`` (less the rounded
        carried-over total, if one was given).
        """
        cost = self.tariff.cost_milli_exact(amount, start, end)
        self._exact = MONEY_CONTEXT.add(self._exact, cost)
        before, self._rounded = self._rounded, round_half_even(self._exact)
        return self._rounded - before

    @property
    def exact_total_milli(self) -> Decimal:
        """Exact cost so far (including any carried-over total)."""
        return self._exact

    @property
    def total_milli(self) -> int:
        """``exact_total_milli`` rounded half-even."""
        return self._rounded
