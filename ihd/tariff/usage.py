"""Pricing a household's usage history: costs per row, the cost of a span, bills and
"what if" comparisons. Pure functions over an iterable of usage rows.

A usage row is ``(start, end, amount)`` or ``(start, end, amount, export)``
(``UsageInterval`` is one): ``amount`` in the tariff's ``metered_unit`` (Wh, m³) used (or,
with ``export`` true, exported) evenly over [start, end] in POSIX seconds. Rows must come
in time order and must not overlap: tiered rates price each row after the ones before it.
The store's per-minute usage is such a series; so is a meter's stream of deltas.

Rounding: everything is exact (Decimal milli-minor units) until the end. Per-row costs
are telescoped as ``Pricer`` does, so they add up to the rounded exact total; a bill
rounds each line (energy, export credit, standing charges) half-even to a milli-minor
unit and its total is the sum of its lines, as on a printed bill.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from ihd.tariff.blocks import split_pro_rata
from ihd.tariff.localtime import day_start, local_date, zone
from ihd.tariff.money import MONEY_CONTEXT, Amount, Currency, round_half_even, to_decimal
from ihd.tariff.plan import standing_charge_on
from ihd.tariff.pricer import StepFn, Tariff, stepper

_add = MONEY_CONTEXT.add
ZERO = Decimal(0)


class UsageInterval(NamedTuple):
    start: float
    end: float
    amount: Amount
    export: bool = False


UsageRow = tuple[float, float, Amount] | tuple[float, float, Amount, bool]


def _unpack(row: UsageRow | UsageInterval) -> tuple[float, float, Amount, bool]:
    if len(row) == 3:
        return row[0], row[1], row[2], False
    return row[0], row[1], row[2], bool(row[3])  # type: ignore[misc]


class PricedInterval(NamedTuple):
    start: float
    end: float
    amount: Amount
    export: bool
    cost_milli: int  # telescoped: a series' costs add up to its rounded exact total
    exact_milli: Decimal  # this row's exact cost (negative for export)
    estimated: bool  # priced at least in part at a fallback rate


def price_intervals(
    tariff: Tariff,
    rows: Iterable[UsageRow | UsageInterval],
    *,
    state: Any = None,
    exact_total_milli: Decimal = ZERO,
) -> Iterator[PricedInterval]:
    """Each row priced at the rates in force when it was used, in order. ``state`` and
    ``exact_total_milli`` continue an earlier series (as ``Pricer`` takes them)."""
    step = stepper(tariff)
    exact = exact_total_milli
    rounded = round_half_even(exact)
    for row in rows:
        start, end, amount, export = _unpack(row)
        cost, state, est, _ = step(amount, start, end, state, export=export)
        exact = _add(exact, cost)
        before, rounded = rounded, round_half_even(exact)
        yield PricedInterval(start, end, amount, export, rounded - before, cost, est)


def reprice(tariff: Tariff, rows: Iterable[UsageRow | UsageInterval]) -> list[int]:
    """The new ``cost_milli`` of every row under ``tariff``: re-pricing history after a
    tariff correction. The results add up to the rounded exact total of the series."""
    step = stepper(tariff)
    state: Any = None
    exact = ZERO
    rounded = 0
    out: list[int] = []
    for row in rows:
        start, end, amount, export = _unpack(row)
        cost, state, _, _ = step(amount, start, end, state, export=export)
        exact = _add(exact, cost)
        before, rounded = rounded, round_half_even(exact)
        out.append(rounded - before)
    return out


# ------------------------------------------------------------------------------ spans


class _Account:
    """Running exact totals of one tariff over a series of rows."""

    __slots__ = ("amount_in", "amount_out", "estimated", "export", "imp", "state", "step", "vat")

    def __init__(self, tariff: Tariff) -> None:
        self.step: StepFn = stepper(tariff)
        self.state: Any = None
        self.imp = self.export = self.vat = ZERO
        self.amount_in = self.amount_out = ZERO
        self.estimated = 0

    def feed(
        self, parts: list[tuple[Decimal, float, float]], inside: list[bool], export: bool
    ) -> None:
        estimated = False
        for (q, s, e), counted in zip(parts, inside, strict=True):
            cost, self.state, est, vat = self.step(q, s, e, self.state, export=export)
            if not counted:
                continue
            estimated = estimated or est
            if export:
                self.export = _add(self.export, cost)
                self.amount_out = _add(self.amount_out, q)
            else:
                self.imp = _add(self.imp, cost)
                self.vat = _add(self.vat, vat)
                self.amount_in = _add(self.amount_in, q)
        if estimated:
            self.estimated += 1


def _clip(
    start: float, end: float, amount: Amount, lo: float | None, hi: float | None
) -> tuple[list[tuple[Decimal, float, float]], list[bool]]:
    """The row cut at the span's edges, pro rata by time, and which parts are inside."""
    q = to_decimal(amount)
    if end <= start:  # an instant: inside if lo <= start < hi
        ok = (lo is None or lo <= start) and (hi is None or start < hi)
        return [(q, start, end)], [ok]
    cuts = [c for c in (lo, hi) if c is not None and start < c < end]
    parts = split_pro_rata(q, start, end, cuts)
    inside = [(lo is None or s >= lo) and (hi is None or e <= hi) and e > s for _, s, e in parts]
    return parts, inside


@dataclass(frozen=True, slots=True)
class SpanCost:
    cost_milli: int  # import cost + export credit in the span, VAT included
    import_milli: int
    export_milli: int  # <= 0
    import_amount: Decimal  # metered_unit
    export_amount: Decimal
    estimated: int  # rows priced at least in part at a fallback rate


def cost_of_span(
    tariff: Tariff,
    rows: Iterable[UsageRow | UsageInterval],
    start: float | None = None,
    end: float | None = None,
) -> SpanCost:
    """The cost of the usage in [start, end) (an appliance run, an evening, a month): one
    call over the usage rows. Rows straddling an edge count pro rata by time. Rows before
    ``start`` are priced too but not counted, so that tiered rates see the usage before
    the span: for a tiered tariff, start the rows at the beginning of the tier period
    (``TariffPlan.tier_period``). Standing charges are not included (see ``bill``)."""
    acc = _Account(tariff)
    for row in rows:
        s, e, amount, export = _unpack(row)
        if end is not None and s >= end:
            break  # rows come in time order: the rest are after the span
        parts, inside = _clip(s, e, amount, start, end)
        acc.feed(parts, inside, export)
    imp, exp = round_half_even(acc.imp), round_half_even(acc.export)
    return SpanCost(imp + exp, imp, exp, acc.amount_in, acc.amount_out, acc.estimated)


# ------------------------------------------------------------------------------ bills


@dataclass(frozen=True, slots=True)
class Bill:
    """What a span of usage costs under one tariff; all money in milli-minor units."""

    name: str
    currency: Currency
    start: float
    end: float
    days: int  # local days with a standing charge
    import_amount: Decimal  # metered_unit
    export_amount: Decimal
    energy_milli: int  # unit charges, VAT included
    export_milli: int  # export credit, <= 0
    standing_milli: int  # standing charges, VAT included
    vat_milli: int  # the VAT in energy_milli + standing_milli
    total_milli: int  # energy + export + standing
    estimated: int  # rows priced at least in part at a fallback rate


def local_days(start: float, end: float, timezone: str) -> list[dt.date]:
    """The local dates that [start, end) touches (none if empty)."""
    if end <= start:
        return []
    tz = zone(timezone)
    first, last = local_date(start, tz), local_date(end, tz)
    if day_start(last, tz) >= end:
        last -= dt.timedelta(days=1)  # ``end`` is the midnight that ends ``last``
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _bill(
    name: str, tariff: Tariff, acc: _Account, start: float, end: float, timezone: str | None
) -> Bill:
    tz = timezone or str(getattr(tariff, "timezone", "Europe/London"))
    standing = standing_vat = ZERO
    days = local_days(start, end, tz)
    for d in days:
        charge, vat = standing_charge_on(tariff, d)
        standing, standing_vat = _add(standing, charge), _add(standing_vat, vat)
    energy, export, fixed = (round_half_even(x) for x in (acc.imp, acc.export, standing))
    return Bill(
        name=name or str(getattr(tariff, "name", "")),
        currency=tariff.currency,
        start=start,
        end=end,
        days=len(days),
        import_amount=acc.amount_in,
        export_amount=acc.amount_out,
        energy_milli=energy,
        export_milli=export,
        standing_milli=fixed,
        vat_milli=round_half_even(_add(acc.vat, standing_vat)),
        total_milli=energy + export + fixed,
        estimated=acc.estimated,
    )


def what_if(
    rows: Iterable[UsageRow | UsageInterval],
    tariffs: Mapping[str, Tariff],
    *,
    start: float | None = None,
    end: float | None = None,
    timezone: str | None = None,
) -> dict[str, Bill]:
    """Price the same usage under each of ``tariffs`` (name -> tariff), in one pass over
    ``rows``: "what would my last year have cost on Octopus Go?". The bills cover
    [start, end) (default: from the first row's start to the last row's end), with a
    standing charge for every local day the span touches, in ``timezone`` (default: the
    tariff's own)."""
    accounts = {name: _Account(t) for name, t in tariffs.items()}
    lo, hi = start, end
    first: float | None = None
    last: float | None = None
    for row in rows:
        s, e, amount, export = _unpack(row)
        if end is not None and s >= end:
            break  # rows come in time order: the rest are after the span
        first = s if first is None else first
        last = e if last is None else max(last, e)
        parts, inside = _clip(s, e, amount, lo, hi)
        for acc in accounts.values():
            acc.feed(parts, inside, export)
    span_start = start if start is not None else (first if first is not None else 0.0)
    span_end = end if end is not None else (last if last is not None else span_start)
    return {
        name: _bill(name, tariffs[name], acc, span_start, span_end, timezone)
        for name, acc in accounts.items()
    }


def bill(
    tariff: Tariff,
    rows: Iterable[UsageRow | UsageInterval],
    *,
    start: float | None = None,
    end: float | None = None,
    timezone: str | None = None,
) -> Bill:
    """The bill for ``rows`` under one ``tariff`` (see ``what_if``)."""
    name = str(getattr(tariff, "name", "")) or "tariff"
    return what_if(rows, {name: tariff}, start=start, end=end, timezone=timezone)[name]
