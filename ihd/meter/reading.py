"""Typed readings: the unit of exchange between the meter layer and everything above it.

A reading keeps the register exactly as the meter sent it (an integer and a decimal
scaler), so that the store can keep raw cumulative values and derive energy from their
deltas without floating-point drift. Quantity names carry their unit
(``energy_import_wh``), never a bare ``value``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Utility(StrEnum):
    ELECTRICITY = "electricity"
    GAS = "gas"
    WATER = "water"


_UNIT_SYMBOLS = {
    "wh": "Wh",
    "w": "W",
    "varh": "varh",
    "var": "var",
    "v": "V",
    "a": "A",
    "hz": "Hz",
    "m3": "m3",
    "l": "L",
}


@dataclass(frozen=True, slots=True)
class Reading:
    meter: str  # EUI-64 of the meter, 16 upper-case hex digits
    utility: Utility
    quantity: str  # e.g. "energy_import_wh", "power_import_w", "volume_m3"
    raw: int  # register value as sent
    scaler: int  # value = raw * 10**scaler, in the quantity's unit
    timestamp: float  # POSIX seconds, UTC (meter clock, or receive time if none)
    obis: str = ""  # "1-0:1.8.0.255" style, empty for non-OBIS sources

    @property
    def value(self) -> Decimal:
        return Decimal(self.raw).scaleb(self.scaler)

    @property
    def unit(self) -> str:
        """The unit symbol from the quantity's suffix: "Wh", "W", "m3", "V"..."""
        suffix = self.quantity.rsplit("_", 1)[-1]
        return _UNIT_SYMBOLS.get(suffix, suffix)
