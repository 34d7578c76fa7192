"""The tariff engine: one utility's prices (``TariffPlan``) and its changes over time
(``TariffHistory``). Both implement ``ihd.tariff.pricer.Tariff``.

A ``TariffPlan`` has

* a unit-rate source, ``rates``: a ``FixedRate``, ``TimeOfUse`` bands, ``DynamicRates``
  (a price table with a fallback schedule), or ``Blocks`` (tiered);
* a daily standing charge, charged once per local day (a 23- or 25-hour day is one day);
* optionally an export schedule (``export``), which prices exported energy as a credit;
* ``vat_percent``: 0 when the prices given already include VAT (as GB suppliers quote
  them to households), otherwise VAT at that rate is added to unit and standing charges,
  exactly (never to export credits: a household's export payment carries no VAT);
* currency, priced unit (kWh, or m³ for water and gas priced by volume) and timezone.

Amounts are in ``metered_unit`` (Wh for per-kWh prices, m³ for per-m³), as ``Reading.unit``.
Costs are exact ``Decimal`` milli-minor units until a ``Pricer`` (or a function in
``ihd.tariff.usage``) rounds them once, half-even.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise
from typing import Any, NamedTuple

from ihd.meter.reading import Utility
from ihd.tariff.blocks import Blocks, BlockState, split_pro_rata
from ihd.tariff.localtime import day_start, zone
from ihd.tariff.money import (
    GBP,
    MILLI_PER_MINOR,
    MONEY_CONTEXT,
    Amount,
    Currency,
    round_half_even,
    to_decimal,
)
from ihd.tariff.pricer import Step, StepFn, Tariff, stepper
from ihd.tariff.schedule import FixedRate, RateSchedule

_mul = MONEY_CONTEXT.multiply
_add = MONEY_CONTEXT.add
ZERO = Decimal(0)
_MILLI = Decimal(MILLI_PER_MINOR)

ALLOWED_UNITS: dict[Utility, frozenset[str]] = {
    Utility.ELECTRICITY: frozenset({"kWh"}),
    Utility.GAS: frozenset({"kWh", "m3"}),
    Utility.WATER: frozenset({"m3"}),
}


def check_interval(start: float, end: float) -> None:
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        raise ValueError(f"bad interval [{start}, {end}]")


def _decimal_field(name: str, value: object, *, nonnegative: bool = True) -> Decimal:
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        raise ValueError(f"{name} must be a Decimal (got {value!r}): prices are exact")
    d = to_decimal(value)
    if nonnegative and d < 0:
        raise ValueError(f"{name} must not be negative: {d}")
    return d


class TariffPlan:
    """One utility's prices; see the module docstring."""

    __slots__ = (
        "_blocks",
        "_factor",
        "_vat",
        "currency",
        "export",
        "name",
        "rates",
        "standing_charge_minor_per_day",
        "timezone",
        "unit",
        "utility",
        "vat_percent",
    )

    def __init__(
        self,
        *,
        utility: Utility,
        rates: RateSchedule | Blocks,
        standing_charge_minor_per_day: Decimal,
        unit: str | None = None,
        currency: Currency = GBP,
        vat_percent: Decimal = ZERO,
        export: RateSchedule | None = None,
        timezone: str = "Europe/London",
        name: str = "",
    ) -> None:
        self.utility = utility
        self.unit = unit or ("m3" if utility is Utility.WATER else "kWh")
        if self.unit not in ALLOWED_UNITS[utility]:
            raise ValueError(f"{utility} is not priced per {self.unit}")
        if export is not None and utility is not Utility.ELECTRICITY:
            raise ValueError("only electricity is exported")
        self.rates = rates
        self.standing_charge_minor_per_day = _decimal_field(
            "standing_charge_minor_per_day", standing_charge_minor_per_day
        )
        self.vat_percent = _decimal_field("vat_percent", vat_percent)
        if self.vat_percent > 100:
            raise ValueError(f"vat_percent must be at most 100: {self.vat_percent}")
        self.currency = currency
        self.export = export
        self.timezone = timezone
        zone(timezone)  # ValueError if unknown
        self.name = name
        self._blocks = rates if isinstance(rates, Blocks) else None
        # Wh x (minor/kWh) is already milli-minor; m3 x (minor/m3) needs x 1000.
        self._factor = Decimal(1) if self.unit == "kWh" else _MILLI
        self._vat = self.vat_percent.scaleb(-2)  # 5 % -> 0.05, exactly

    def __repr__(self) -> str:
        kind = type(self.rates).__name__
        return f"TariffPlan({self.utility}, {kind}, {self.name or 'unnamed'})"

    @property
    def metered_unit(self) -> str:
        """Unit of the amounts priced: "Wh" (per-kWh prices) or "m3"."""
        return "Wh" if self.unit == "kWh" else "m3"

    def _with_vat(self, x: Decimal) -> Decimal:
        return _add(x, _mul(x, self._vat)) if self._vat else x

    # --- rates --------------------------------------------------------------------------
    def rate_at(self, t: float) -> Decimal:
        """The import unit rate in force at ``t``, VAT included: what the householder pays
        per ``unit`` (for tiered rates, the first tier's)."""
        if self._blocks is not None:
            return self._with_vat(self._blocks.tiers[0].rate)
        return self._with_vat(self.rates.rate_at(t))  # type: ignore[union-attr]

    def export_rate_at(self, t: float) -> Decimal:
        """The export rate in force at ``t`` (minor units per ``unit``; 0 if none)."""
        return ZERO if self.export is None else self.export.rate_at(t)

    # --- pricing ------------------------------------------------------------------------
    def price_step(
        self, amount: Amount, start: float, end: float, state: Any = None, *, export: bool = False
    ) -> Step:
        """Price ``amount`` (``metered_unit``) used (or, with ``export``, exported) evenly
        over [start, end], after ``state``; see ``Step``."""
        if not (start <= end and math.isfinite(start) and math.isfinite(end)):
            check_interval(start, end)
        q = to_decimal(amount)
        if export:
            if self.export is None:
                return Step(ZERO, state, False)
            credit, est = self.export.weighted(q, start, end)
            return Step(-_mul(credit, self._factor), state, est)
        blocks = self._blocks
        if blocks is not None:
            q_priced = MONEY_CONTEXT.scaleb(q, -3) if self.unit == "kWh" else q
            minor, state = blocks.step(
                q_priced, start, end, state if isinstance(state, BlockState) else None
            )
            net, est = MONEY_CONTEXT.scaleb(minor, 3), False
        else:
            net, est = self.rates.weighted(q, start, end)  # type: ignore[union-attr]
            if self.unit != "kWh":
                net = _mul(net, _MILLI)
        if not self._vat:
            return Step(net, state, est)
        vat = _mul(net, self._vat)
        return Step(_add(net, vat), state, est, vat)

    def cost_milli_exact(self, amount: Amount, start: float, end: float) -> Decimal:
        """Exact cost in milli-minor units of ``amount`` used over [start, end], VAT
        included. Stateless: tiered rates price it as the period's first use."""
        return self.price_step(amount, start, end).cost

    def cost_milli(self, amount: Amount, start: float, end: float) -> int:
        """``cost_milli_exact`` rounded half-even (use a ``Pricer`` to add many up)."""
        return round_half_even(self.cost_milli_exact(amount, start, end))

    def export_cost_milli_exact(self, amount: Amount, start: float, end: float) -> Decimal:
        """The (negative) exact cost of exporting ``amount`` over [start, end]."""
        return self.price_step(amount, start, end, export=True).cost

    def export_cost_milli(self, amount: Amount, start: float, end: float) -> int:
        return round_half_even(self.export_cost_milli_exact(amount, start, end))

    # --- tiers --------------------------------------------------------------------------
    def tier_period(self, t: float) -> tuple[int, int] | None:
        """[start, end) of the tier period holding ``t``; None if the rates are not tiered."""
        return None if self._blocks is None else self._blocks.period_bounds(t)

    def tier_state(self, t: float, used: Amount) -> Any:
        """The ``price_step`` state for a meter that has used ``used`` (``metered_unit``)
        since the start of the tier period holding ``t``: how a Pricer resumes after a
        restart (``Pricer(plan, state=plan.tier_state(now, used_this_period))``)."""
        if self._blocks is None:
            return None
        q = to_decimal(used)
        q_priced = MONEY_CONTEXT.scaleb(q, -3) if self.unit == "kWh" else q
        return BlockState(self._blocks.period_bounds(t)[0], q_priced)

    # --- standing charges ---------------------------------------------------------------
    def standing_charge_on(self, day: dt.date) -> tuple[Decimal, Decimal]:
        """(exact milli-minor standing charge for local ``day``, VAT included; its VAT)."""
        net = _mul(self.standing_charge_minor_per_day, _MILLI)
        vat = _mul(net, self._vat)
        return _add(net, vat), vat

    def standing_charge_milli_exact(
        self, days: int | Decimal, *, at: float | None = None
    ) -> Decimal:
        return _mul(to_decimal(days), self.standing_charge_on(dt.date.min)[0])

    def standing_charge_milli(self, days: int | Decimal, *, at: float | None = None) -> int:
        """Standing charge for ``days`` (whole or fractional), VAT included, milli-minor."""
        return round_half_even(self.standing_charge_milli_exact(days, at=at))


# ------------------------------------------------------------------------------ history


class _HistoryState(NamedTuple):
    entry: int
    inner: Any


class TariffHistory:
    """Tariffs that change over time: ``entries`` are (effective_from, tariff), each in
    force from local midnight of its date until the next one's. The first entry also
    covers all time before its date. All entries price the same utility in the same
    currency and unit.

    A delta that spans a change is split pro rata by time, each part priced by the tariff
    in force. Tier usage starts again from zero at a change."""

    __slots__ = ("_changes", "_dates", "_steps", "_tariffs", "timezone")

    def __init__(
        self, entries: Sequence[tuple[dt.date, Tariff]], *, timezone: str = "Europe/London"
    ) -> None:
        if not entries:
            raise ValueError("a tariff history needs at least one tariff")
        dates = [d for d, _ in entries]
        if any(not a < b for a, b in pairwise(dates)):
            raise ValueError("tariff history dates must increase")
        first = entries[0][1]
        for d, t in entries[1:]:
            if (t.utility, t.currency, t.metered_unit) != (
                first.utility,
                first.currency,
                first.metered_unit,
            ):
                raise ValueError(f"the tariff from {d} prices another utility, currency or unit")
        tz = zone(timezone)
        self.timezone = timezone
        self._dates = dates
        self._tariffs = [t for _, t in entries]
        self._steps: list[StepFn] = [stepper(t) for t in self._tariffs]
        self._changes = [day_start(d, tz) for d in dates[1:]]

    def __repr__(self) -> str:
        changes = ", ".join(str(d) for d in self._dates[1:])
        return f"TariffHistory({self.utility}, {len(self._dates)} tariffs, changes: {changes})"

    @property
    def entries(self) -> list[tuple[dt.date, Tariff]]:
        return list(zip(self._dates, self._tariffs, strict=True))

    @property
    def utility(self) -> Utility:
        return self._tariffs[0].utility

    @property
    def currency(self) -> Currency:
        return self._tariffs[0].currency

    @property
    def metered_unit(self) -> str:
        return self._tariffs[0].metered_unit

    @property
    def name(self) -> str:
        return str(getattr(self._tariffs[-1], "name", ""))

    def tariff_at(self, t: float) -> Tariff:
        """The tariff in force at POSIX time ``t``."""
        return self._tariffs[bisect_right(self._changes, t)]

    def tariff_on(self, day: dt.date) -> Tariff:
        """The tariff in force on local ``day``."""
        return self._tariffs[max(0, bisect_right(self._dates, day) - 1)]

    def rate_at(self, t: float) -> Decimal:
        return self.tariff_at(t).rate_at(t)

    def export_rate_at(self, t: float) -> Decimal:
        fn = getattr(self.tariff_at(t), "export_rate_at", None)
        return ZERO if fn is None else Decimal(fn(t))

    def price_step(
        self, amount: Amount, start: float, end: float, state: Any = None, *, export: bool = False
    ) -> Step:
        check_interval(start, end)
        i = bisect_right(self._changes, start)
        j = bisect_right(self._changes, end, lo=i)
        if j > i and self._changes[j - 1] == end:
            j -= 1  # a delta ending at a change was used before it
        if i == j:
            inner = state.inner if isinstance(state, _HistoryState) and state.entry == i else None
            cost, inner, est, vat = self._steps[i](amount, start, end, inner, export=export)
            return Step(cost, _HistoryState(i, inner), est, vat)
        total = vat_total = ZERO
        any_est = False
        for n, (part, s, e) in enumerate(
            split_pro_rata(to_decimal(amount), start, end, self._changes[i:j])
        ):
            k = i + n
            inner = state.inner if isinstance(state, _HistoryState) and state.entry == k else None
            cost, inner, est, vat = self._steps[k](part, s, e, inner, export=export)
            total, vat_total = _add(total, cost), _add(vat_total, vat)
            any_est = any_est or est
            state = _HistoryState(k, inner)
        return Step(total, state, any_est, vat_total)

    def cost_milli_exact(self, amount: Amount, start: float, end: float) -> Decimal:
        return self.price_step(amount, start, end).cost

    def cost_milli(self, amount: Amount, start: float, end: float) -> int:
        return round_half_even(self.cost_milli_exact(amount, start, end))

    def export_cost_milli_exact(self, amount: Amount, start: float, end: float) -> Decimal:
        return self.price_step(amount, start, end, export=True).cost

    def export_cost_milli(self, amount: Amount, start: float, end: float) -> int:
        return round_half_even(self.export_cost_milli_exact(amount, start, end))

    def tier_state(self, t: float, used: Amount) -> Any:
        i = bisect_right(self._changes, t)
        fn = getattr(self._tariffs[i], "tier_state", None)
        return _HistoryState(i, None if fn is None else fn(t, used))

    def standing_charge_on(self, day: dt.date) -> tuple[Decimal, Decimal]:
        return standing_charge_on(self.tariff_on(day), day)

    def standing_charge_milli_exact(
        self, days: int | Decimal, *, at: float | None = None
    ) -> Decimal:
        """Standing charge for ``days`` at the tariff in force at ``at`` (POSIX seconds);
        without ``at``, the last tariff in the history."""
        t = self._tariffs[-1] if at is None else self.tariff_at(at)
        per_day = standing_charge_on(t, dt.date.min)[0]
        return _mul(to_decimal(days), per_day)

    def standing_charge_milli(self, days: int | Decimal, *, at: float | None = None) -> int:
        return round_half_even(self.standing_charge_milli_exact(days, at=at))


def standing_charge_on(tariff: Tariff, day: dt.date) -> tuple[Decimal, Decimal]:
    """(exact standing charge of ``tariff`` for local ``day``, VAT included; its VAT) in
    milli-minor units, for any Tariff."""
    fn = getattr(tariff, "standing_charge_on", None)
    if fn is not None:
        total, vat = fn(day)
        return Decimal(total), Decimal(vat)
    return Decimal(tariff.standing_charge_milli(1)), ZERO


def flat_rate(rate: Decimal) -> FixedRate:
    return FixedRate(_decimal_field("rate", rate))
