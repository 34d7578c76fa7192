"""Tariffs: usage in, integer money out. No Qt, no SQLite, no clocks.

Costs are integer milli-minor units (see ``money``), exact Decimals until the last step.
``Tariff`` is the seam the ingest uses; ``FlatTariff``, ``TariffPlan`` (flat, time-of-use
bands, tiers, dynamic CSV prices, VAT, export) and ``TariffHistory`` (tariff changes from
a date) implement it, and ``Pricer`` prices a meter's stream of deltas against any of
them without rounding drift. ``usage`` prices history (per row, a span, bills, "what
if"), ``budget`` gives the traffic light, ``config`` reads the ``[tariff.*]`` tables.
See docs/tariffs.md.
"""

from ihd.tariff.blocks import Blocks, BlockState, Tier
from ihd.tariff.budget import (
    Budget,
    Light,
    Period,
    Window,
    budget_light,
    elapsed_fraction,
    period_bounds,
    traffic_light,
    typical_light,
    typical_windows,
)
from ihd.tariff.config import TariffConfigError, UtilityTariff, parse_tariff_section
from ihd.tariff.dynamic import (
    DynamicRates,
    PriceCsvError,
    PriceTable,
    load_price_csv,
    parse_price_csv,
)
from ihd.tariff.flat import FlatTariff, tariffs_from_config
from ihd.tariff.money import (
    EUR,
    GBP,
    MILLI_PER_MINOR,
    Amount,
    Currency,
    currency_for,
    format_money,
    format_rate,
    milli_from_minor,
    minor_from_milli,
)
from ihd.tariff.plan import TariffHistory, TariffPlan
from ihd.tariff.pricer import Pricer, Step, Tariff, stepper
from ihd.tariff.schedule import Band, FixedRate, RateSchedule, TimeOfUse
from ihd.tariff.usage import (
    Bill,
    PricedInterval,
    SpanCost,
    UsageInterval,
    bill,
    cost_of_span,
    local_days,
    price_intervals,
    reprice,
    what_if,
)

__all__ = [
    "EUR",
    "GBP",
    "MILLI_PER_MINOR",
    "Amount",
    "Band",
    "Bill",
    "BlockState",
    "Blocks",
    "Budget",
    "Currency",
    "DynamicRates",
    "FixedRate",
    "FlatTariff",
    "Light",
    "Period",
    "PriceCsvError",
    "PriceTable",
    "PricedInterval",
    "Pricer",
    "RateSchedule",
    "SpanCost",
    "Step",
    "Tariff",
    "TariffConfigError",
    "TariffHistory",
    "TariffPlan",
    "Tier",
    "TimeOfUse",
    "UsageInterval",
    "UtilityTariff",
    "Window",
    "bill",
    "budget_light",
    "cost_of_span",
    "currency_for",
    "elapsed_fraction",
    "format_money",
    "format_rate",
    "load_price_csv",
    "local_days",
    "milli_from_minor",
    "minor_from_milli",
    "parse_price_csv",
    "parse_tariff_section",
    "period_bounds",
    "price_intervals",
    "reprice",
    "stepper",
    "tariffs_from_config",
    "traffic_light",
    "typical_light",
    "typical_windows",
    "what_if",
]
