"""A flat tariff: one unit rate and one standing charge, for any utility.

This is the simplest thing that satisfies ``ihd.tariff.pricer.Tariff``. Time-of-use and
tiered tariffs will implement the same protocol; that is why ``cost_milli`` takes the
interval (``start``, ``end``) of the usage even though a flat rate ignores it.

Units. Electricity is priced per kWh and water per m³; gas per kWh (GB) or per m³.
Exactly one of ``unit_rate_minor_per_kwh`` and ``unit_rate_minor_per_m3`` is set. The
amount given to ``cost_milli`` is in the unit the meter reports (``metered_unit``,
which matches ``Reading.unit``): Wh for a per-kWh tariff, m³ for a per-m³ one. Gas
meters report m³; convert with ``ihd.meter.gas`` before pricing gas per kWh.

VAT. Prices are VAT-inclusive, as GB suppliers quote them to households (and as the
Ofgem price cap is published), so no VAT is added here. A tariff that needs VAT added
on top, time-of-use bands, tiers, dynamic prices or export is a ``TariffPlan``
(``ihd.tariff.plan``); a FlatTariff prices the same as a TariffPlan with a FixedRate.

``timezone`` only says which local days a standing charge is for (``standing_charge_on``
and the bills of ``ihd.tariff.usage``); a flat rate does not depend on the time.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from ihd.meter.reading import Utility
from ihd.tariff.money import (
    GBP,
    MILLI_PER_MINOR,
    MONEY_CONTEXT,
    Amount,
    Currency,
    currency_for,
    round_half_even,
    to_decimal,
)
from ihd.tariff.pricer import Step, Tariff

# Which priced units each utility may use.
_ALLOWED_UNITS: dict[Utility, frozenset[str]] = {
    Utility.ELECTRICITY: frozenset({"kWh"}),
    Utility.GAS: frozenset({"kWh", "m3"}),
    Utility.WATER: frozenset({"m3"}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FlatTariff:
    utility: Utility
    standing_charge_minor_per_day: Decimal  # e.g. Decimal("53.35") p/day, VAT included
    currency: Currency = GBP
    unit_rate_minor_per_kwh: Decimal | None = None  # e.g. Decimal("24.50") p/kWh
    unit_rate_minor_per_m3: Decimal | None = None  # e.g. Decimal("215.53") p/m³ (water)
    timezone: str = "Europe/London"  # the household's: which local day a charge is for

    def __post_init__(self) -> None:
        if (self.unit_rate_minor_per_kwh is None) == (self.unit_rate_minor_per_m3 is None):
            raise ValueError("set exactly one of unit_rate_minor_per_kwh, unit_rate_minor_per_m3")
        for name in (
            "standing_charge_minor_per_day",
            "unit_rate_minor_per_kwh",
            "unit_rate_minor_per_m3",
        ):
            price = getattr(self, name)
            if price is None:
                continue
            if not isinstance(price, Decimal | int) or isinstance(price, bool):
                raise ValueError(f"{name} must be a Decimal (got {price!r}): prices are exact")
            price = to_decimal(price)
            if price < 0:
                raise ValueError(f"{name} must not be negative: {price}")
            object.__setattr__(self, name, price)
        if self.unit not in _ALLOWED_UNITS[self.utility]:
            raise ValueError(f"{self.utility} is not priced per {self.unit}")

    @property
    def unit(self) -> str:
        """The priced unit: "kWh" or "m3"."""
        return "kWh" if self.unit_rate_minor_per_kwh is not None else "m3"

    @property
    def metered_unit(self) -> str:
        """Unit of the amounts ``cost_milli`` takes, as in ``Reading.unit``: "Wh" or "m3"."""
        return "Wh" if self.unit_rate_minor_per_kwh is not None else "m3"

    @property
    def unit_rate_minor(self) -> Decimal:
        """The unit rate in minor units per ``unit``."""
        rate = self.unit_rate_minor_per_kwh
        if rate is None:
            rate = self.unit_rate_minor_per_m3
        assert rate is not None  # __post_init__ guarantees one
        return rate

    def rate_at(self, t: float) -> Decimal:
        """Unit rate (minor units per ``unit``) in force at time ``t``."""
        return self.unit_rate_minor

    def cost_milli_exact(self, amount: Amount, start: float, end: float) -> Decimal:
        """Exact cost in milli-minor units of ``amount`` (in ``metered_unit``) used
        over [start, end]."""
        _check_interval(start, end)
        q = to_decimal(amount)
        if self.unit_rate_minor_per_kwh is not None:
            # Wh * (minor/kWh) = (kWh * 1000) * (milli/1000 per kWh) = milli-minor, exactly.
            return MONEY_CONTEXT.multiply(q, self.unit_rate_minor_per_kwh)
        return MONEY_CONTEXT.multiply(
            MONEY_CONTEXT.multiply(q, self.unit_rate_minor), MILLI_PER_MINOR
        )

    def cost_milli(self, amount: Amount, start: float, end: float) -> int:
        """``cost_milli_exact`` rounded half-even. To sum many small costs without
        drift, use ``Pricer``, not a sum of these."""
        return round_half_even(self.cost_milli_exact(amount, start, end))

    def price_step(
        self, amount: Amount, start: float, end: float, state: Any = None, *, export: bool = False
    ) -> Step:
        """``cost_milli_exact`` as a ``Step`` (see ``ihd.tariff.pricer``); a flat tariff
        has no export rate, so export earns nothing."""
        if export:
            _check_interval(start, end)
            return Step(Decimal(0), state, False)
        return Step(self.cost_milli_exact(amount, start, end), state, False)

    def export_rate_at(self, t: float) -> Decimal:
        return Decimal(0)

    def standing_charge_milli_exact(
        self, days: int | Decimal, *, at: float | None = None
    ) -> Decimal:
        d = to_decimal(days)
        return MONEY_CONTEXT.multiply(
            MONEY_CONTEXT.multiply(d, self.standing_charge_minor_per_day), MILLI_PER_MINOR
        )

    def standing_charge_milli(self, days: int | Decimal, *, at: float | None = None) -> int:
        """Standing charge for ``days`` (whole or fractional) in milli-minor units. ``at``
        (POSIX seconds) is accepted for the Tariff protocol; a flat charge ignores it."""
        return round_half_even(self.standing_charge_milli_exact(days))

    def standing_charge_on(self, day: dt.date) -> tuple[Decimal, Decimal]:
        """(exact standing charge for local ``day`` in milli-minor units, of which VAT)."""
        return self.standing_charge_milli_exact(1), Decimal(0)


def _check_interval(start: float, end: float) -> None:
    if not (math.isfinite(start) and math.isfinite(end)) or end < start:
        raise ValueError(f"bad interval [{start}, {end}]")


class TariffSettings(Protocol):
    """One utility's configured prices (``ihd.config.TariffConfig`` fits)."""

    @property
    def unit_rate(self) -> Decimal: ...

    @property
    def standing_charge(self) -> Decimal: ...


class TariffConfigSource(Protocol):
    """What ``tariffs_from_config`` reads (``ihd.config.Config`` fits). A protocol, so
    that the tariff layer does not import the app's configuration module."""

    def tariff(self, utility: Utility) -> TariffSettings: ...

    def __getitem__(self, key: str) -> Any: ...


def tariffs_from_config(cfg: TariffConfigSource) -> dict[Utility, Tariff]:
    """The tariff of every utility from the configuration.

    ``ihd.config.parse`` builds them from the ``[tariff.*]`` tables (see
    ``ihd.tariff.config``) and keeps them in ``Config.tariffs``; those are returned. A
    configuration without them (``Config()``, or another object with the two accessors)
    gets flat tariffs from its flat keys: electricity and gas per kWh, water per m³, all
    in ``household.currency``.
    """
    built = getattr(cfg, "tariffs", None)
    if built:
        return {u: getattr(entry, "tariff", entry) for u, entry in built.items()}
    currency = currency_for(str(cfg["household.currency"]))
    try:
        timezone = str(cfg["household.timezone"])
    except KeyError:
        timezone = "Europe/London"
    tariffs: dict[Utility, Tariff] = {}
    for utility in Utility:
        t = cfg.tariff(utility)
        rate = {
            "unit_rate_minor_per_m3"
            if utility is Utility.WATER
            else "unit_rate_minor_per_kwh": t.unit_rate
        }
        tariffs[utility] = FlatTariff(
            utility=utility,
            currency=currency,
            standing_charge_minor_per_day=t.standing_charge,
            timezone=timezone,
            **rate,
        )
    return tariffs
