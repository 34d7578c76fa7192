"""Tariffs: usage in, integer money out. No Qt, no SQLite, no clocks.

Costs are integer milli-minor units (see ``money``). ``Tariff`` is the seam: the flat
tariff implements it now, time-of-use and tiered tariffs will later, and ``Pricer``
prices a meter's stream of deltas against any of them without rounding drift.
"""

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
from ihd.tariff.pricer import Pricer, Tariff

__all__ = [
    "EUR",
    "GBP",
    "MILLI_PER_MINOR",
    "Amount",
    "Currency",
    "FlatTariff",
    "Pricer",
    "Tariff",
    "currency_for",
    "format_money",
    "format_rate",
    "milli_from_minor",
    "minor_from_milli",
    "tariffs_from_config",
]
