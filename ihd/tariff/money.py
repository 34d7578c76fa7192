"""Money as integers, prices as Decimals.

Prices are quoted in minor units with fractions: 24.50 p/kWh, 53.35 p/day. They stay
``Decimal`` so that they are exactly what the supplier printed.

Costs are stored as integer *milli-minor* units (thousandths of a penny or cent), in
names ending ``_milli``. Whole minor units are too coarse for a meter that pushes every
10 seconds: 3 Wh at 24.50 p/kWh costs 0.0735 p, which rounds to 0 p every time, so a day
of such pushes would cost nothing. In milli-pence it is 74 (73.5 rounded half-even),
and ``ihd.tariff.pricer.Pricer`` keeps even that last half milli from drifting. An int64
of milli-pence holds about 92 billion pounds.

Rounding is half-even (banker's rounding) everywhere, so ties do not bias totals upward.
Display formatting here is deliberately plain ("£1,234.56"): locale-specific formats
belong to the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, Overflow

MILLI_PER_MINOR = 1000

Amount = Decimal | int | float
"""A quantity (Wh, m³, days) as callers have it. Floats are taken by their repr, so 0.1
means 0.1, not 0.1000000000000000055."""

#: Arithmetic context for money, independent of the thread's current context. 60
#: significant digits keep products and running sums of prices and readings exact for
#: any realistic input (a float reading has at most 17 digits, a price a handful).
MONEY_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Overflow])


@dataclass(frozen=True, slots=True)
class Currency:
    code: str  # ISO 4217
    symbol: str
    minor_per_major: int = 100

    def __post_init__(self) -> None:
        digits = len(str(self.minor_per_major)) - 1
        if self.minor_per_major < 1 or 10**digits != self.minor_per_major:
            raise ValueError(f"minor_per_major must be a power of ten: {self.minor_per_major}")

    @property
    def decimals(self) -> int:
        """Digits after the decimal point of a major amount (2 for pounds and euros)."""
        return len(str(self.minor_per_major)) - 1


GBP = Currency("GBP", "£")
EUR = Currency("EUR", "€")
CURRENCIES = {c.code: c for c in (GBP, EUR)}


def currency_for(code: str) -> Currency:
    """The Currency for an ISO 4217 code we know ("GBP", "EUR"); ValueError otherwise."""
    try:
        return CURRENCIES[code.upper()]
    except KeyError:
        raise ValueError(f"unknown currency {code!r}; known: {', '.join(CURRENCIES)}") from None


def to_decimal(x: Amount) -> Decimal:
    """An exact Decimal for ``x``; ValueError for NaN, infinities and non-numbers."""
    kind = type(x)
    if kind is float:  # the common cases first: this is on every priced delta
        if math.isfinite(x):  # type: ignore[arg-type]
            return Decimal(repr(x))
    elif kind is Decimal and x.is_finite():  # type: ignore[union-attr]
        return x  # type: ignore[return-value]
    if isinstance(x, bool):
        raise ValueError("a bool is not an amount")
    if isinstance(x, Decimal):
        d = x
    elif isinstance(x, int):
        d = Decimal(x)
    elif isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"amount must be finite, got {x}")
        d = Decimal(repr(x))
    else:
        raise ValueError(f"not an amount: {x!r}")
    if not d.is_finite():
        raise ValueError(f"amount must be finite, got {x}")
    return d


def round_half_even(x: Decimal) -> int:
    """Nearest integer, ties to even."""
    return int(x.to_integral_value(rounding=ROUND_HALF_EVEN))


def milli_from_minor(amount_minor: Amount) -> int:
    """Minor units (pence, may have fractions) -> integer milli-minor units, half-even."""
    return round_half_even(MONEY_CONTEXT.multiply(to_decimal(amount_minor), MILLI_PER_MINOR))


def minor_from_milli(milli: int) -> int:
    """Integer milli-minor -> whole minor units, half-even (what a bill would show)."""
    q, r = divmod(abs(milli), MILLI_PER_MINOR)
    if r > MILLI_PER_MINOR // 2 or (r == MILLI_PER_MINOR // 2 and q % 2 == 1):
        q += 1
    return -q if milli < 0 else q


def format_money(milli: int, currency: Currency) -> str:
    """``123000`` milli-pence -> ``"£1.23"``; ``-5000`` -> ``"-£0.05"``.

    Rounds half-even to whole minor units. A negative amount that rounds to zero shows as
    ``"£0.00"``, not ``"-£0.00"``.
    """
    minor = minor_from_milli(milli)
    major, rest = divmod(abs(minor), currency.minor_per_major)
    text = f"{currency.symbol}{major:,}"
    if currency.decimals:
        text += f".{rest:0{currency.decimals}d}"
    return "-" + text if minor < 0 else text


def format_rate(milli_per_unit: int, currency: Currency, per: str = "h") -> str:
    """A cost rate, e.g. ``format_rate(340_000, GBP)`` -> ``"£3.40/h"``."""
    return f"{format_money(milli_per_unit, currency)}/{per}"
