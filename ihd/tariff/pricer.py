"""The tariff seam, and pricing a stream of usage without rounding drift.

``Tariff`` is what the rest of the app relies on; ``FlatTariff``, ``TariffPlan`` (time of
use, tiers, dynamic prices, VAT, export) and ``TariffHistory`` (tariff changes) implement
it. Nothing above this package should know which kind it has. The engine's tariffs also
have ``price_step``, a stateful form of ``cost_milli_exact`` (tiered rates depend on the
usage before a delta) that also prices export and flags fallback prices; ``stepper``
gives a ``price_step`` for any tariff.

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

from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from ihd.meter.reading import Utility
from ihd.tariff.money import MONEY_CONTEXT, Amount, Currency, round_half_even

ZERO = Decimal(0)


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

    def standing_charge_milli(self, days: int | Decimal, *, at: float | None = None) -> int:
        """Standing charge for ``days``, milli-minor, at the tariff in force at ``at``
        (POSIX seconds; without it, the latest tariff)."""
        ...


class Step(NamedTuple):
    """One priced delta, from ``price_step``."""

    cost: Decimal  # exact milli-minor units, VAT included; negative for an export credit
    state: Any  # what the next step needs (usage so far in a tier period); None if nothing
    estimated: bool  # priced, at least in part, at a fallback rate (no dynamic price)
    vat: Decimal = ZERO  # of ``cost``, the VAT


StepFn = Callable[..., Step]
"""``price_step(amount, start, end, state, *, export=False) -> Step``."""


def stepper(tariff: Tariff) -> StepFn:
    """The tariff's ``price_step``; for a tariff without one (a plain ``Tariff``), a
    stateless step from ``cost_milli_exact`` that credits nothing for export."""
    fn = getattr(tariff, "price_step", None)
    if fn is not None:
        return fn  # type: ignore[no-any-return]

    def step(
        amount: Amount, start: float, end: float, state: Any = None, *, export: bool = False
    ) -> Step:
        if export:
            return Step(ZERO, state, False)
        return Step(tariff.cost_milli_exact(amount, start, end), state, False)

    return step


class Pricer:
    """Prices successive usage deltas of one meter; the integer results never drift.

    ``exact_total_milli`` may be carried over from an earlier Pricer (for example after
    a restart, or when the tariff changes) so that rounding continues seamlessly.

    The tariff may be stateful (tiered rates remember the usage of the current period):
    the Pricer keeps that state between deltas; ``state`` reads it and the ``state``
    argument restores it (see ``TariffPlan.tier_state``). With ``export=True`` the deltas
    are exported energy and the costs are credits (negative). ``estimated`` counts the
    deltas priced at least in part at a fallback rate (a slot missing from a dynamic
    price table).
    """

    __slots__ = ("_exact", "_rounded", "_state", "_step", "estimated", "export", "tariff")

    def __init__(
        self,
        tariff: Tariff,
        *,
        exact_total_milli: Decimal = Decimal(0),
        export: bool = False,
        state: Any = None,
    ) -> None:
        self.tariff = tariff
        self.export = export
        self.estimated = 0
        self._step = stepper(tariff)
        self._state = state
        self._exact = exact_total_milli
        self._rounded = round_half_even(exact_total_milli)

    def add(self, amount: Amount, start: float, end: float) -> int:
        """Cost of ``amount`` used over [start, end], in milli-minor units.

        The values returned so far sum to exactly ``total_milli`` (less the rounded
        carried-over total, if one was given).
        """
        cost, self._state, estimated, _ = self._step(
            amount, start, end, self._state, export=self.export
        )
        if estimated:
            self.estimated += 1
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

    @property
    def state(self) -> Any:
        """The tariff's pricing state after the last delta (None for stateless tariffs)."""
        return self._state
