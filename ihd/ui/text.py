"""How numbers read on the wall: units, rounding and money, decided in one place.

QML only lays out the strings made here. Rounding follows what a householder can act on:
demand to 0.01 kW under 10 kW, energy to 0.1 kWh (0.01 under 10), water in whole litres.
"""

from __future__ import annotations

from ihd.tariff.money import Currency, format_money


def kilowatts(watts: float) -> str:
    kw = watts / 1000
    return f"{kw:.2f}" if abs(kw) < 10 else f"{kw:.1f}"


def kilowatt_hours(wh: float) -> str:
    kwh = wh / 1000
    return f"{kwh:.2f}" if abs(kwh) < 10 else f"{kwh:.1f}"


def litres(m3: float) -> str:
    return f"{m3 * 1000:.0f}"


def money(milli: int, currency: Currency) -> str:
    return format_money(milli, currency)


def per_hour(milli_per_h: int, currency: Currency) -> str:
    return f"{format_money(milli_per_h, currency)} an hour"


def age(seconds: float) -> str:
    """'just now', '12 s ago', '3 min ago', '2 h ago'."""
    s = max(0.0, seconds)
    if s < 2:
        return "just now"
    if s < 90:
        return f"{s:.0f} s ago"
    if s < 90 * 60:
        return f"{s / 60:.0f} min ago"
    if s < 48 * 3600:
        return f"{s / 3600:.0f} h ago"
    return f"{s / 86400:.0f} days ago"
