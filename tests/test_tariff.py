"""ihd.tariff: integer money, the flat tariff and drift-free pricing.

Expected values are worked by hand (or with fractions.Fraction), not by our code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ihd.meter import Utility, volume_to_kwh_exact
from ihd.tariff import (
    EUR,
    GBP,
    Currency,
    FlatTariff,
    Pricer,
    Tariff,
    currency_for,
    format_money,
    format_rate,
    milli_from_minor,
    minor_from_milli,
    tariffs_from_config,
)

ELEC = FlatTariff(
    utility=Utility.ELECTRICITY,
    unit_rate_minor_per_kwh=Decimal("24.50"),
    standing_charge_minor_per_day=Decimal("53.35"),
)
WATER = FlatTariff(
    utility=Utility.WATER,
    unit_rate_minor_per_m3=Decimal("215.53"),
    standing_charge_minor_per_day=Decimal("30.12"),
)


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("milli", "text"),
    [
        (0, "£0.00"),
        (1, "£0.00"),
        (499, "£0.00"),
        (500, "£0.00"),  # 0.5 p: half-even rounds to 0
        (501, "£0.01"),
        (1500, "£0.02"),  # 1.5 p -> 2 (even)
        (2500, "£0.02"),  # 2.5 p -> 2 (even)
        (123_000, "£1.23"),
        (99_999_500, "£1,000.00"),  # 99,999.5 p -> 100,000 p
        (123_456_789_000, "£1,234,567.89"),
        (-5000, "-£0.05"),
        (-1500, "-£0.02"),
        (-500, "£0.00"),  # rounds to zero: no minus sign
        (-123_000, "-£1.23"),
    ],
)
def test_format_money_gbp(milli: int, text: str) -> None:
    assert format_money(milli, GBP) == text


def test_format_money_other_currencies() -> None:
    assert format_money(1_234_560, EUR) == "€12.35"  # 1234.56 c -> 1235 c
    assert format_money(-70, EUR) == "€0.00"
    yen = Currency("JPY", "¥", minor_per_major=1)
    assert format_money(1_234_500, yen) == "¥1,234"  # 1234.5 -> 1234 (even)
    dinar = Currency("KWD", "KD ", minor_per_major=1000)
    assert format_money(1_234_000, dinar) == "KD 1.234"


def test_currency_minor_units_must_be_a_power_of_ten() -> None:
    with pytest.raises(ValueError):
        Currency("XXX", "x", minor_per_major=12)
    with pytest.raises(ValueError):
        Currency("XXX", "x", minor_per_major=0)


def test_format_rate() -> None:
    assert format_rate(340_000, GBP) == "£3.40/h"
    assert format_rate(34_499, GBP, per="day") == "£0.34/day"


def test_milli_conversions() -> None:
    assert milli_from_minor(Decimal("0.0735")) == 74  # 73.5 -> 74 (even)
    assert milli_from_minor(Decimal("0.0725")) == 72  # 72.5 -> 72 (even)
    assert milli_from_minor(0.1) == 100  # float taken by its repr
    assert milli_from_minor(-2) == -2000
    assert [minor_from_milli(m) for m in (499, 500, 1500, -1500, -1501)] == [0, 0, 2, -2, -2]


# -------------------------------------------------------------------------- flat


def test_flat_electricity_costs() -> None:
    assert ELEC.unit == "kWh" and ELEC.metered_unit == "Wh"
    assert ELEC.rate_at(0.0) == ELEC.rate_at(1e9) == Decimal("24.50")
    assert ELEC.cost_milli(1000, 0, 3600) == 24_500  # 1 kWh = 24.50 p
    assert ELEC.cost_milli_exact(3, 0, 10) == Decimal("73.50")  # 3 Wh = 0.0735 p
    assert ELEC.cost_milli(3, 0, 10) == 74  # 73.5 -> 74 (even)
    assert ELEC.cost_milli(Decimal("2.5"), 0, 10) == 61  # 61.25
    assert ELEC.cost_milli(0.1, 0, 10) == 2  # 2.45; float by repr
    assert ELEC.cost_milli(-1000, 0, 10) == -24_500  # no hidden policy
    assert ELEC.standing_charge_milli(1) == 53_350
    assert ELEC.standing_charge_milli(Decimal("0.5")) == 26_675
    assert ELEC.standing_charge_milli(365) == 19_472_750  # 194.7275 pounds


def test_flat_water_priced_per_m3() -> None:
    assert WATER.unit == "m3" and WATER.metered_unit == "m3"
    # 1.5 m3 x 215.53 p = 323.295 p = 323,295 milli-pence
    assert WATER.cost_milli(Decimal("1.5"), 0, 60) == 323_295
    # 1 litre: 0.21553 p = 215.53 milli -> 216
    assert WATER.cost_milli(Decimal("0.001"), 0, 60) == 216


def test_gas_priced_per_kwh_after_conversion() -> None:
    gas = FlatTariff(
        utility=Utility.GAS,
        unit_rate_minor_per_kwh=Decimal("6.24"),
        standing_charge_minor_per_day=Decimal("31.65"),
    )
    wh = volume_to_kwh_exact(Decimal(100)) * 1000  # 1,122,063.33... Wh
    # 1122.0633... kWh x 6.24 p = 7001.675... p
    assert gas.cost_milli(wh, 0, 3600) == 7_001_675
    per_m3 = FlatTariff(
        utility=Utility.GAS,
        unit_rate_minor_per_m3=Decimal("70"),
        standing_charge_minor_per_day=Decimal(0),
    )
    assert per_m3.cost_milli(2, 0, 1) == 140_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"utility": Utility.ELECTRICITY, "standing_charge_minor_per_day": Decimal(1)},
        {
            "utility": Utility.ELECTRICITY,
            "standing_charge_minor_per_day": Decimal(1),
            "unit_rate_minor_per_kwh": Decimal(1),
            "unit_rate_minor_per_m3": Decimal(1),
        },
        {
            "utility": Utility.ELECTRICITY,
            "standing_charge_minor_per_day": Decimal(1),
            "unit_rate_minor_per_m3": Decimal(1),
        },
        {
            "utility": Utility.WATER,
            "standing_charge_minor_per_day": Decimal(1),
            "unit_rate_minor_per_kwh": Decimal(1),
        },
        {
            "utility": Utility.ELECTRICITY,
            "standing_charge_minor_per_day": Decimal(-1),
            "unit_rate_minor_per_kwh": Decimal(1),
        },
        {
            "utility": Utility.ELECTRICITY,
            "standing_charge_minor_per_day": Decimal(1),
            "unit_rate_minor_per_kwh": 24.5,
        },
        {
            "utility": Utility.ELECTRICITY,
            "standing_charge_minor_per_day": Decimal(1),
            "unit_rate_minor_per_kwh": Decimal("NaN"),
        },
    ],
)
def test_flat_tariff_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FlatTariff(**kwargs)  # type: ignore[arg-type]


def test_flat_tariff_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        ELEC.cost_milli(1, 10, 0)  # end before start
    with pytest.raises(ValueError):
        ELEC.cost_milli(float("inf"), 0, 1)
    with pytest.raises(ValueError):
        ELEC.cost_milli(True, 0, 1)


def test_currency_for() -> None:
    assert currency_for("GBP") is GBP and currency_for("eur") is EUR
    with pytest.raises(ValueError):
        currency_for("XYZ")


@dataclass(frozen=True)
class _Prices:
    unit_rate: Decimal
    standing_charge: Decimal


class _Config:
    """Stands in for ihd.config.Config: the same two accessors."""

    def tariff(self, utility: Utility) -> _Prices:
        rate = {"electricity": "24.50", "gas": "6.24", "water": "215"}[utility]
        return _Prices(Decimal(rate), Decimal("10"))

    def __getitem__(self, key: str) -> object:
        return {"household.currency": "EUR"}[key]


def test_tariffs_from_config() -> None:
    tariffs = tariffs_from_config(_Config())
    assert set(tariffs) == set(Utility)
    assert all(t.currency is EUR for t in tariffs.values())
    assert tariffs[Utility.ELECTRICITY].cost_milli(1000, 0, 1) == 24_500  # per kWh, in Wh
    assert tariffs[Utility.GAS].cost_milli(1000, 0, 1) == 6_240
    assert tariffs[Utility.WATER].metered_unit == "m3"
    assert tariffs[Utility.WATER].cost_milli(1, 0, 1) == 215_000  # per m3
    assert tariffs[Utility.WATER].standing_charge_milli(1) == 10_000


def test_flat_tariff_is_a_tariff() -> None:
    tariffs: list[Tariff] = [ELEC, WATER]
    assert [t.currency for t in tariffs] == [GBP, GBP]


# ------------------------------------------------------------------------- pricer


def test_pricer_10000_identical_deltas_do_not_drift() -> None:
    pricer = Pricer(ELEC)
    returned = [pricer.add(3, i * 10.0, i * 10.0 + 10) for i in range(10_000)]
    # Exact: 10,000 x 3 Wh = 30 kWh x 24.50 p = 735 p = 735,000 milli-pence.
    assert sum(returned) == 735_000 == pricer.total_milli
    assert pricer.exact_total_milli == Decimal("735000.00")
    assert set(returned) == {73, 74}
    # Rounding each delta on its own overcharges by half a milli-penny every time.
    assert sum(ELEC.cost_milli(3, 0, 10) for _ in range(10_000)) == 740_000


def test_pricer_10000_random_tiny_deltas_match_exact_total() -> None:
    rnd = random.Random(20261125)
    deltas = [rnd.uniform(0, 5) for _ in range(10_000)]  # floats, 0..5 Wh
    pricer = Pricer(ELEC)
    total = sum(pricer.add(d, 0, 10) for d in deltas)
    exact = sum(Fraction(repr(d)) for d in deltas) * Fraction("24.50")  # milli-pence
    assert abs(total - exact) <= Fraction(1, 2)


@given(
    st.lists(st.decimals(min_value=0, max_value=100, places=3), max_size=300),
    st.decimals(min_value=0, max_value=10_000, places=2),
)
def test_pricer_sum_always_equals_rounded_exact_total(
    deltas: list[Decimal], carried: Decimal
) -> None:
    pricer = Pricer(WATER, exact_total_milli=carried)
    start = pricer.total_milli
    total = sum(pricer.add(d, 0, 1) for d in deltas)
    exact = Fraction(carried) + sum(Fraction(d) for d in deltas) * Fraction("215.53") * 1000
    assert start + total == pricer.total_milli
    assert abs(pricer.total_milli - exact) <= Fraction(1, 2)
