"""Gas volume to energy, the way GB gas bills do it.

Gas meters count volume; gas is sold by energy. The conversion printed on every GB gas
bill, from the Gas (Calculation of Thermal Energy) Regulations 1996 (SI 1996/439, as
amended 1997), is::

    kWh = volume (m³) × correction factor × calorific value (MJ/m³) ÷ 3.6

- The volume correction factor, 1.02264, brings the metered volume to standard
  conditions (15 °C, 1013.25 mbar) for domestic meters that have no converter.
- The calorific value (CV) is the energy content of the gas. National Gas publishes it
  daily per charging area; bills use the average over the billing period, typically
  38-40 MJ/m³. 39.5 is a representative default until the user sets theirs.
- ÷ 3.6 turns megajoules into kilowatt-hours (1 kWh = 3.6 MJ).

Imperial meters count hundreds of cubic feet; bills convert with × 2.83
(``HUNDRED_CUBIC_FEET_M3``) before applying the formula.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal

DEFAULT_CALORIFIC_VALUE_MJ_M3 = Decimal("39.5")
VOLUME_CORRECTION_FACTOR = Decimal("1.02264")
MJ_PER_KWH = Decimal("3.6")
HUNDRED_CUBIC_FEET_M3 = Decimal("2.83")  # the bill convention (exactly 2.8316846592)

_CTX = Context(prec=34, rounding=ROUND_HALF_EVEN)  # IEEE decimal128 precision


def volume_to_kwh_exact(
    volume_m3: Decimal | int | float,
    *,
    calorific_value_mj_m3: Decimal | int | float = DEFAULT_CALORIFIC_VALUE_MJ_M3,
    correction_factor: Decimal | int | float = VOLUME_CORRECTION_FACTOR,
) -> Decimal:
    """Energy in kWh for a gas volume, as a Decimal (34 significant digits; the ÷ 3.6
    rarely terminates). Use this when the result will be priced."""
    v, cv, cf = (_dec(x) for x in (volume_m3, calorific_value_mj_m3, correction_factor))
    if cv <= 0 or cf <= 0:
        raise ValueError("calorific value and correction factor must be positive")
    return _CTX.divide(_CTX.multiply(_CTX.multiply(v, cf), cv), MJ_PER_KWH)


def volume_to_kwh(
    volume_m3: Decimal | float,
    *,
    calorific_value_mj_m3: Decimal | float = 39.5,
    correction_factor: Decimal | float = 1.02264,
) -> float:
    """kWh = m³ × correction factor × CV (MJ/m³) ÷ 3.6, as a float for display.

    >>> round(volume_to_kwh(100), 4)
    1122.0633
    """
    return float(
        volume_to_kwh_exact(
            volume_m3,
            calorific_value_mj_m3=calorific_value_mj_m3,
            correction_factor=correction_factor,
        )
    )


def _dec(x: Decimal | int | float) -> Decimal:
    if isinstance(x, bool):
        raise ValueError("a bool is not a quantity")
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"quantity must be finite, got {x}")
        return Decimal(repr(x))
    d = Decimal(x)
    if not d.is_finite():
        raise ValueError(f"quantity must be finite, got {x}")
    return d
