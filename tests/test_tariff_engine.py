"""The tariff engine: time of use, DST, tiers, dynamic CSV prices, VAT, export, tariff
history, usage pricing (spans, bills, what if), budgets and the [tariff.*] config.

Expected values are worked by hand in the comments (or with fractions.Fraction from
first principles), never copied from running the code. Money is in milli-minor units:
1 kWh at 8.50 p/kWh = 8.5 p = 8,500 milli-pence; amounts are Wh for per-kWh prices.

Dates used: Mon 5 Jan 2026 (GMT, so local = UTC); Sun 29 Mar 2026 (clocks go forward at
01:00 GMT: a 23-hour day); Sun 25 Oct 2026 (clocks go back at 02:00 BST: a 25-hour day).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd.config import ConfigError, parse
from ihd.meter.reading import Utility
from ihd.tariff import (
    EUR,
    Band,
    Blocks,
    Budget,
    DynamicRates,
    FixedRate,
    FlatTariff,
    Light,
    Period,
    PriceCsvError,
    Pricer,
    TariffHistory,
    TariffPlan,
    Tier,
    TimeOfUse,
    UsageInterval,
    bill,
    budget_light,
    cost_of_span,
    elapsed_fraction,
    load_price_csv,
    local_days,
    parse_price_csv,
    period_bounds,
    price_intervals,
    reprice,
    tariffs_from_config,
    traffic_light,
    typical_light,
    typical_windows,
    what_if,
)
from ihd.tariff.localtime import day_bounds, wall_to_instant, zone
from ihd.tariff.schedule import BandError

TZ = "Europe/London"
LONDON = ZoneInfo(TZ)
H = 3600
D = Decimal
SRC = Path("/etc/ihd/config.toml")


def at(text: str) -> int:
    """Local London wall time 'YYYY-MM-DD HH:MM' -> POSIX seconds (first occurrence)."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=LONDON).timestamp())


def utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


def hm(h: int, m: int = 0) -> int:
    return h * H + m * 60


# Octopus Go-like: 8.50 p/kWh 00:30-05:30 every day, 27.00 p/kWh the rest of the time.
GO_NIGHT = Band(start=hm(0, 30), end=hm(5, 30), rate=D("8.50"), name="night")
GO = TimeOfUse([GO_NIGHT], D("27.00"), TZ)
# Economy 7-like: 9.00 p/kWh 23:30-06:30 (across midnight), 30.00 otherwise.
E7 = TimeOfUse([Band(start=hm(23, 30), end=hm(6, 30), rate=D("9.00"))], D("30.00"), TZ)


def plan(rates: object, **kw: object) -> TariffPlan:
    args: dict[str, object] = {
        "utility": Utility.ELECTRICITY,
        "rates": rates,
        "standing_charge_minor_per_day": D("50.00"),
        "timezone": TZ,
    }
    args.update(kw)
    return TariffPlan(**args)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- local time


def test_local_days_are_23_24_and_25_hours() -> None:
    tz = zone(TZ)
    assert day_bounds(dt.date(2026, 1, 5), tz) == (utc("2026-01-05T00:00"), utc("2026-01-06T00:00"))
    a, b = day_bounds(dt.date(2026, 3, 29), tz)
    assert (a, b) == (utc("2026-03-29T00:00"), utc("2026-03-29T23:00"))  # 23 h
    a, b = day_bounds(dt.date(2026, 10, 25), tz)
    assert (a, b) == (utc("2026-10-24T23:00"), utc("2026-10-26T00:00"))  # 25 h


def test_wall_times_in_the_gap_and_the_repeat() -> None:
    tz = zone(TZ)
    # 01:30 on 29 Mar does not exist: the first wall time after it is 02:00 BST = 01:00Z.
    assert wall_to_instant(dt.datetime(2026, 3, 29, 1, 30), tz) == utc("2026-03-29T01:00")
    # 01:30 on 25 Oct happens twice (00:30Z BST, 01:30Z GMT): the first one.
    assert wall_to_instant(dt.datetime(2026, 10, 25, 1, 30), tz) == utc("2026-10-25T00:30")


# ----------------------------------------------------------------------- time of use


def test_go_rates_by_wall_clock() -> None:
    assert GO.rate_at(at("2026-01-05 00:29")) == D("27.00")
    assert GO.rate_at(at("2026-01-05 00:30")) == D("8.50")
    assert GO.rate_at(at("2026-01-05 05:29")) == D("8.50")
    assert GO.rate_at(at("2026-01-05 05:30")) == D("27.00")
    assert GO.rate_at(at("2026-07-01 03:00")) == D("8.50")  # BST: 03:00 BST = 02:00Z


def test_go_costs_split_pro_rata_at_band_edges() -> None:
    p = plan(GO)
    # 1 kWh inside the night band: 1000 Wh x 8.50 = 8,500 milli-pence
    assert p.cost_milli(1000, at("2026-01-05 01:00"), at("2026-01-05 02:00")) == 8_500
    # 1 kWh over 05:00-06:00: half in the band: 500 x 8.50 + 500 x 27 = 4,250 + 13,500
    assert p.cost_milli(1000, at("2026-01-05 05:00"), at("2026-01-05 06:00")) == 17_750
    # 2 kWh over 00:00-01:00: 1000 x 27 + 1000 x 8.50 = 35,500
    assert p.cost_milli(2000, at("2026-01-05 00:00"), at("2026-01-05 01:00")) == 35_500
    # 3 Wh in 10 s just before the band: 3 x 27 = 81 milli
    assert p.cost_milli_exact(3, at("2026-01-05 00:29") + 50, at("2026-01-05 00:30")) == 81


def test_economy7_band_crosses_midnight() -> None:
    p = plan(E7)
    # 1 kWh 23:00-00:00: half at 30, half (23:30-00:00) at 9: 15,000 + 4,500 = 19,500
    assert p.cost_milli(1000, at("2026-01-05 23:00"), at("2026-01-06 00:00")) == 19_500
    # 1 kWh 06:00-07:00: half at 9, half at 30
    assert p.cost_milli(1000, at("2026-01-06 06:00"), at("2026-01-06 07:00")) == 19_500
    # a night of 7 kWh 23:30-06:30 all at 9: 63,000
    assert p.cost_milli(7000, at("2026-01-05 23:30"), at("2026-01-06 06:30")) == 63_000


def test_weekday_weekend_and_seasonal_bands() -> None:
    peak = Band(start=hm(16), end=hm(19), rate=D("40"), days=frozenset(range(5)))
    winter = Band(start=hm(7), end=hm(9), rate=D("35"), months=frozenset({11, 12, 1, 2}))
    holiday = Band(start=hm(12), end=hm(14), rate=D("5"), dates=((12, 20), (1, 5)))
    tou = TimeOfUse([GO_NIGHT, peak, winter, holiday], D("27"), TZ)
    assert tou.rate_at(at("2026-01-09 17:00")) == D("40")  # Friday
    assert tou.rate_at(at("2026-01-10 17:00")) == D("27")  # Saturday
    assert tou.rate_at(at("2026-01-10 08:00")) == D("35")  # January: winter
    assert tou.rate_at(at("2026-07-10 08:00")) == D("27")  # July: not
    assert tou.rate_at(at("2026-12-31 13:00")) == D("5")  # the date range wraps the year
    assert tou.rate_at(at("2026-01-05 13:00")) == D("5")  # inclusive end
    assert tou.rate_at(at("2026-01-06 13:00")) == D("27")
    assert tou.rate_at(at("2026-12-19 13:00")) == D("27")


def test_a_night_band_keeps_the_season_and_day_it_started_in() -> None:
    march_nights = Band(start=hm(23), end=hm(7), rate=D("5"), months=frozenset({3}))
    fri_night = Band(start=hm(22), end=hm(2), rate=D("1"), days=frozenset({4}))
    march = TimeOfUse([march_nights], D("20"), TZ)
    assert march.rate_at(at("2026-04-01 02:00")) == D("5")  # started 31 Mar
    assert march.rate_at(at("2026-04-01 23:30")) == D("20")  # April night
    assert march.rate_at(at("2026-03-01 03:00")) == D("20")  # started 28 Feb
    friday = TimeOfUse([fri_night], D("20"), TZ)
    assert friday.rate_at(at("2026-01-10 01:00")) == D("1")  # Saturday 01:00: Friday's band
    assert friday.rate_at(at("2026-01-11 01:00")) == D("20")
    # Together they clash on Friday nights in March
    with pytest.raises(BandError, match=r"overlap \(both cover fri 03-\d\d at 23:00\)"):
        TimeOfUse([march_nights, fri_night], D("20"), TZ)


def test_dst_spring_day_go_night_is_four_hours() -> None:
    a, b = day_bounds(dt.date(2026, 3, 29), zone(TZ))
    pieces = GO.pieces(a, b)
    # 00:00-00:30 GMT, 00:30 GMT (00:30Z) - 05:30 BST (04:30Z), then to midnight BST (23:00Z)
    assert [(p[0], p[1], p[2]) for p in pieces] == [
        (utc("2026-03-29T00:00"), utc("2026-03-29T00:30"), D("27.00")),
        (utc("2026-03-29T00:30"), utc("2026-03-29T04:30"), D("8.50")),
        (utc("2026-03-29T04:30"), utc("2026-03-29T23:00"), D("27.00")),
    ]
    # 4 kWh evenly over 00:00Z-05:00Z (00:00 GMT - 06:00 BST): 0.8 kWh an hour;
    # 0.5 h at 27 + 4 h at 8.50 + 0.5 h at 27 -> 0.8 x 27 + 3.2 x 8.5 = 21.6 + 27.2 = 48.8 p
    assert plan(GO).cost_milli(4000, utc("2026-03-29T00:00"), utc("2026-03-29T05:00")) == 48_800


def test_dst_autumn_day_go_night_is_six_hours_and_the_repeat_follows_the_wall() -> None:
    a, b = day_bounds(dt.date(2026, 10, 25), zone(TZ))
    night = [p for p in GO.pieces(a, b) if p[2] == D("8.50")]
    # 00:30 BST (23:30Z on the 24th) - 05:30 GMT (05:30Z): 6 hours
    assert [(p[0], p[1]) for p in night] == [(utc("2026-10-24T23:30"), utc("2026-10-25T05:30"))]
    blip = TimeOfUse([Band(start=hm(1), end=hm(1, 30), rate=D("5"))], D("20"), TZ)
    # wall 01:15 happens at 00:15Z (BST) and 01:15Z (GMT): the band's rate both times
    assert blip.rate_at(utc("2026-10-25T00:15")) == D("5")
    assert blip.rate_at(utc("2026-10-25T01:15")) == D("5")
    assert blip.rate_at(utc("2026-10-25T00:45")) == D("20")  # 01:45 BST


@settings(max_examples=150, deadline=None)
@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2037, 12, 31)))
def test_every_day_has_23_24_or_25_hours_of_bands(day: dt.date) -> None:
    a, b = day_bounds(day, zone(TZ))
    pieces = E7.pieces(a, b)
    assert pieces[0][0] == a and pieces[-1][1] == b
    assert all(p[1] == q[0] for p, q in pairwise(pieces))
    hours = sum(Fraction(p[1] - p[0]) for p in pieces) / H
    # UK rule since 1996: forward on the last Sunday of March, back on the last of October
    last_sunday = day.weekday() == 6 and (day + dt.timedelta(days=7)).month != day.month
    expected = (
        23 if last_sunday and day.month == 3 else 25 if last_sunday and day.month == 10 else 24
    )
    assert hours == expected
    night = sum(Fraction(p[1] - p[0]) for p in pieces if p[2] == D("9.00") and p[0] == a) / H
    # The morning part of the night band, 00:00-06:30 wall time: one hour less in spring
    # (01:00-02:00 skipped), one more in autumn (01:00-02:00 twice).
    assert night == Fraction(13, 2) + (expected - 24)


def test_unlimited_bands_48_half_hours_for_each_day_of_the_week() -> None:
    bands = [
        Band(start=n * 1800, end=(n + 1) * 1800, rate=D(n + 1 + 100 * wd), days=frozenset({wd}))
        for wd in range(7)
        for n in range(48)
    ]
    tou = TimeOfUse(bands, None, TZ)  # 336 bands, no default: they cover the week
    # 1 kWh evenly over Monday 5 Jan: the mean of 1..48 is 24.5 -> 1000 x 24.5 = 24,500
    assert plan(tou).cost_milli(1000, at("2026-01-05 00:00"), at("2026-01-06 00:00")) == 24_500
    # Sunday 11 Jan, 23:30-24:00 is the 48th slot of day 6: 48 + 600
    assert tou.rate_at(at("2026-01-11 23:45")) == D(648)


def test_overlapping_bands_and_gaps_without_a_default_are_refused() -> None:
    a = Band(start=hm(0), end=hm(6), rate=D("1"))
    b = Band(start=hm(5), end=hm(7), rate=D("2"), name="morning")
    with pytest.raises(BandError, match=r"band 1 and band 2 \(morning\) overlap.*at 05:00"):
        TimeOfUse([a, b], D("20"), TZ)
    with pytest.raises(BandError, match=r"no band covers .* at 06:00"):
        TimeOfUse([a], None, TZ)
    # Seasons that leave a gap: winter-only band, no default
    winter = Band(start=0, end=0, rate=D("1"), months=frozenset({1}))
    with pytest.raises(BandError, match="no band covers"):
        TimeOfUse([winter], None, TZ)
    # An overlap that happens only on 29 Feb after 28 Feb, or on a Friday night into Saturday
    fri = Band(start=hm(22), end=hm(2), rate=D("1"), days=frozenset({4}))
    sat = Band(start=hm(1), end=hm(3), rate=D("2"), days=frozenset({5}))
    with pytest.raises(BandError, match=r"sat .* at 01:00"):
        TimeOfUse([fri, sat], D("20"), TZ)


# ---------------------------------------------------------------- flat, VAT, export


def test_a_flat_plan_prices_like_a_flat_tariff() -> None:
    flat = FlatTariff(
        utility=Utility.ELECTRICITY,
        unit_rate_minor_per_kwh=D("24.50"),
        standing_charge_minor_per_day=D("53.35"),
    )
    p = plan(FixedRate(D("24.50")), standing_charge_minor_per_day=D("53.35"))
    for amount in (3, D("2.5"), 1000, 0.1):
        assert p.cost_milli_exact(amount, 0, 10) == flat.cost_milli_exact(amount, 0, 10)
    assert p.standing_charge_milli(365) == flat.standing_charge_milli(365) == 19_472_750
    water = TariffPlan(
        utility=Utility.WATER, rates=FixedRate(D("215.53")), standing_charge_minor_per_day=D(0)
    )
    assert water.metered_unit == "m3"
    assert water.cost_milli(D("1.5"), 0, 60) == 323_295  # 1.5 x 215.53 p = 323.295 p


def test_vat_is_added_exactly_to_units_and_standing_charges_not_to_export() -> None:
    p = plan(
        FixedRate(D("24.00")),
        vat_percent=D(5),
        export=FixedRate(D("15.00")),
        standing_charge_minor_per_day=D("50.00"),
    )
    # 24.00 p + 5 % = 25.20 p/kWh; 1 kWh = 25,200 milli
    assert p.rate_at(0) == D("25.2")
    assert p.cost_milli(1000, 0, 3600) == 25_200
    step = p.price_step(1000, 0, 3600)
    assert (step.cost, step.vat) == (D("25200"), D("1200"))  # 24,000 + 1,200 VAT
    # 3 Wh: 3 x 24 = 72 milli + 5 % = 75.6 milli, kept exact
    assert p.cost_milli_exact(3, 0, 10) == D("75.6")
    # standing: 50.00 p + 5 % = 52.5 p a day
    assert p.standing_charge_milli(1) == 52_500
    assert p.standing_charge_on(dt.date(2026, 1, 5)) == (D("52500"), D("2500"))
    # export: 1 kWh at 15 p is a 15 p credit, no VAT
    assert p.export_cost_milli(1000, 0, 3600) == -15_000
    assert p.export_rate_at(0) == D("15.00")


def test_export_pricer_gives_credits_and_a_plan_without_export_gives_none() -> None:
    p = plan(GO, export=TimeOfUse([Band(start=hm(16), end=hm(19), rate=D("25"))], D("4"), TZ))
    pricer = Pricer(p, export=True)
    # 2 kWh 15:00-17:00: 1 kWh at 4 + 1 kWh at 25 = -29 p
    assert pricer.add(2000, at("2026-01-05 15:00"), at("2026-01-05 17:00")) == -29_000
    assert Pricer(plan(GO), export=True).add(1000, 0, 3600) == 0
    flat = FlatTariff(
        utility=Utility.ELECTRICITY,
        unit_rate_minor_per_kwh=D(20),
        standing_charge_minor_per_day=D(0),
    )
    assert Pricer(flat, export=True).add(1000, 0, 3600) == 0


def test_plan_validation() -> None:
    with pytest.raises(ValueError):
        plan(GO, vat_percent=D(101))
    with pytest.raises(ValueError):
        plan(GO, standing_charge_minor_per_day=D(-1))
    with pytest.raises(ValueError):
        plan(GO, standing_charge_minor_per_day=50.0)  # floats are not prices
    with pytest.raises(ValueError):
        TariffPlan(utility=Utility.WATER, rates=GO, standing_charge_minor_per_day=D(0), unit="kWh")
    with pytest.raises(ValueError):
        TariffPlan(
            utility=Utility.GAS,
            rates=GO,
            standing_charge_minor_per_day=D(0),
            export=FixedRate(D(1)),
        )
    with pytest.raises(ValueError):
        plan(GO).cost_milli(1, 10, 0)
    with pytest.raises(ValueError):
        plan(GO, timezone="Mars/Base")


# -------------------------------------------------------------------------- blocks

TIERED = Blocks([Tier(D(2), D("30")), Tier(None, D("20"))], "day", 1, TZ)


def test_day_blocks_charge_the_first_units_more_and_reset_at_local_midnight() -> None:
    pricer = Pricer(plan(TIERED))
    h = at("2026-01-05 00:00")
    # first 2 kWh of the day at 30 p, the rest at 20 p
    assert pricer.add(1500, h, h + H) == 45_000  # 1.5 x 30
    assert pricer.add(1500, h + H, h + 2 * H) == 35_000  # 0.5 x 30 + 1.0 x 20
    assert pricer.add(1500, h + 2 * H, h + 3 * H) == 30_000  # 1.5 x 20
    # 2 kWh over 23:00-01:00: 1 kWh today at 20, then a new day: 1 kWh at 30
    assert pricer.add(2000, at("2026-01-05 23:00"), at("2026-01-06 01:00")) == 50_000
    # a negative correction walks back down: used today 1 kWh -> 1 - 1.5 = -0.5, at 30
    assert pricer.add(-1500, at("2026-01-06 01:00"), at("2026-01-06 01:10")) == -45_000


def test_block_periods_follow_the_household_calendar() -> None:
    a, b = TIERED.period_bounds(at("2026-03-29 12:00"))
    assert (a, b) == (utc("2026-03-29T00:00"), utc("2026-03-29T23:00"))  # a 23-hour day
    monthly = Blocks([Tier(D(100), D("30")), Tier(None, D("20"))], "month", 15, TZ)
    assert monthly.period_bounds(at("2026-01-10 12:00")) == (
        at("2025-12-15 00:00"),
        at("2026-01-15 00:00"),
    )
    assert monthly.period_bounds(at("2026-04-15 00:00")) == (
        at("2026-04-15 00:00"),
        at("2026-05-15 00:00"),
    )


def test_tier_state_resumes_after_a_restart() -> None:
    p = plan(TIERED)
    t = at("2026-01-05 12:00")
    resumed = Pricer(p, state=p.tier_state(t, 1500))  # 1.5 kWh used since midnight
    # 1 kWh more: 0.5 at 30 + 0.5 at 20 = 25 p
    assert resumed.add(1000, t, t + 60) == 25_000
    assert resumed.state.used == D("2.5")
    assert plan(GO).tier_state(t, 1500) is None and plan(GO).tier_period(t) is None


def test_block_validation() -> None:
    with pytest.raises(ValueError):
        Blocks([], "day")
    with pytest.raises(ValueError):
        Blocks([Tier(D(2), D(1)), Tier(D(1), D(1)), Tier(None, D(1))])  # not increasing
    with pytest.raises(ValueError):
        Blocks([Tier(D(2), D(1))])  # the last tier has a limit
    with pytest.raises(ValueError):
        Blocks([Tier(None, D(1))], "year")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Blocks([Tier(None, D(1))], "month", 29)


# ------------------------------------------------------------------- dynamic prices

AGILE = """\
# Agile-style prices, p/kWh
start,end,price
2026-03-29T00:00:00Z,2026-03-29T00:30:00Z,12.34
2026-03-29T00:30:00+00:00,,-1.05
2026-03-29T02:00:00+01:00,2026-03-29T02:30:00+01:00,20
"""


def test_csv_slots_any_offset_and_default_length() -> None:
    table = parse_price_csv(AGILE, "agile.csv")
    assert len(table) == 3
    assert table.starts == (
        utc("2026-03-29T00:00"),
        utc("2026-03-29T00:30"),
        utc("2026-03-29T01:00"),
    )
    assert table.ends[1] == utc("2026-03-29T01:00")  # empty end: start + 30 min
    assert table.prices == (D("12.34"), D("-1.05"), D("20"))
    # 01:30Z-02:00Z has no price
    assert table.gaps(utc("2026-03-29T00:00"), utc("2026-03-29T02:00")) == [
        (utc("2026-03-29T01:30"), utc("2026-03-29T02:00"))
    ]


def test_csv_octopus_columns_bom_order_and_extra_columns() -> None:
    text = (
        "\ufeffvalue_exc_vat,VALUE_INC_VAT_NOT,valid_to,valid_from\n"
        "10.0,x,2026-01-05T01:00Z,2026-01-05T00:30Z\n"
        "11.5,y,2026-01-05T00:30Z,2026-01-05T00:00Z\n"
    )
    table = parse_price_csv(text, "octopus.csv")
    assert table.starts == (utc("2026-01-05T00:00"), utc("2026-01-05T00:30"))  # sorted
    assert table.prices == (D("11.5"), D("10.0"))


def test_dynamic_prices_with_fallback_are_flagged() -> None:
    table = parse_price_csv(AGILE, "agile.csv")
    p = plan(DynamicRates(table, FixedRate(D("25"))))
    pricer = Pricer(p)
    t = utc("2026-03-29T00:00")
    costs = [pricer.add(1000, t + n * 1800, t + (n + 1) * 1800) for n in range(4)]
    # 1 kWh per slot: 12.34 p, -1.05 p (paid to use), 20 p, then no price: 25 p
    assert costs == [12_340, -1_050, 20_000, 25_000]
    assert pricer.estimated == 1
    # 1 kWh over 00:15-00:45: half at 12.34, half at -1.05: 6.17 - 0.525 = 5.645 p
    assert p.cost_milli_exact(1000, t + 900, t + 2700) == D("5645")
    step = p.price_step(1000, t + 5000, t + 6000)  # 01:23:20-01:40Z: crosses into the gap
    assert step.estimated
    # 400 s at 20 + 600 s at 25: 1000 Wh x (400 x 20 + 600 x 25) / 1000 = 23,000
    assert step.cost == 23_000


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "x.csv:1: empty"),
        ("# only a comment\n\n", "x.csv:1: empty"),
        ("when,price\n", "x.csv:1: the header has no start column"),
        ("start,end\n", "x.csv:1: the header has no price column"),
        ("start,valid_from,price\n", "x.csv:1: two start columns"),
        ("start,price\n", "x.csv:1: no prices after the header"),
        ("start,price\n2026-01-05T00:00Z\n", "x.csv:2: expected 2 columns"),
        (
            "start,price\n2026-01-05 00:00,1\n",
            "x.csv:2: start '2026-01-05 00:00' has no UTC offset",
        ),
        ("start,price\n2026-01-05,1\n", "x.csv:2: start '2026-01-05' has no UTC offset"),
        ("start,price\nyesterday,1\n", "x.csv:2: start 'yesterday' is not an ISO-8601"),
        ("start,price\n2026-01-05T00:00Z,abc\n", "x.csv:2: price 'abc' is not a number"),
        ("start,price\n2026-01-05T00:00Z,NaN\n", "x.csv:2: price 'NaN' is not a number"),
        ("start,price\n2026-01-05T00:00Z,\n", "x.csv:2: price '' is not a number"),
        ("start,end,price\n2026-01-05T00:00Z,2026-01-05T00:00Z,1\n", "x.csv:2: end is not after"),
        (
            "start,end,price\n2026-01-05T00:00Z,2026-01-05T01:00Z,1\n\n# gap\n"
            "2026-01-05T00:30Z,,2\n",
            "x.csv:5: this slot overlaps the slot on line 2",
        ),
        (
            "start,price\n2026-01-05T00:00Z,1\n2026-01-05T00:00+00:00,2\n",
            "x.csv:3: this slot overlaps the slot on line 2",
        ),
        ('start,price\n"2026-01-05T00:00Z,1\n', "x.csv:"),  # an unterminated quote
    ],
)
def test_csv_errors_are_one_line_with_the_line_number(text: str, message: str) -> None:
    with pytest.raises(PriceCsvError) as e:
        parse_price_csv(text, "x.csv")
    assert message in str(e.value)
    assert "\n" not in str(e.value) and str(e.value).startswith("x.csv:")


def test_csv_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PriceCsvError, match=r"nope\.csv: no such file$"):
        load_price_csv(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("start,price # \xe9\n".encode("latin-1"))
    with pytest.raises(PriceCsvError, match="cannot read"):
        load_price_csv(bad)
    good = tmp_path / "ok.csv"
    good.write_text(AGILE, encoding="utf-8")
    assert len(load_price_csv(good)) == 3


# -------------------------------------------------------------------------- history

FLAT_20 = FlatTariff(
    utility=Utility.ELECTRICITY, unit_rate_minor_per_kwh=D(20), standing_charge_minor_per_day=D(40)
)
FLAT_30 = FlatTariff(
    utility=Utility.ELECTRICITY, unit_rate_minor_per_kwh=D(30), standing_charge_minor_per_day=D(60)
)
HISTORY = TariffHistory(
    [(dt.date(2025, 1, 1), FLAT_20), (dt.date(2026, 4, 1), FLAT_30)], timezone=TZ
)


def test_a_tariff_change_takes_effect_at_local_midnight() -> None:
    change = utc("2026-03-31T23:00")  # 00:00 BST on 1 April
    assert HISTORY.rate_at(change - 1) == 20 and HISTORY.rate_at(change) == 30
    assert HISTORY.rate_at(utc("2020-01-01T00:00")) == 20  # the first also covers before
    # 2 kWh over 22:00Z-00:00Z: 1 kWh at 20 + 1 kWh at 30 = 50 p
    assert HISTORY.cost_milli(2000, change - H, change + H) == 50_000
    # a delta that ends at the change is all before it
    assert HISTORY.cost_milli(1000, change - H, change) == 20_000
    assert HISTORY.tariff_on(dt.date(2026, 3, 31)) is FLAT_20
    assert HISTORY.tariff_on(dt.date(2026, 4, 1)) is FLAT_30
    assert HISTORY.standing_charge_milli(1) == 60_000  # the latest, without ``at``
    assert HISTORY.standing_charge_milli(1, at=change - 1) == 40_000


def test_history_validation() -> None:
    with pytest.raises(ValueError):
        TariffHistory([])
    with pytest.raises(ValueError):
        TariffHistory([(dt.date(2026, 4, 1), FLAT_20), (dt.date(2026, 4, 1), FLAT_30)])
    gas = FlatTariff(
        utility=Utility.GAS, unit_rate_minor_per_kwh=D(6), standing_charge_minor_per_day=D(30)
    )
    with pytest.raises(ValueError):
        TariffHistory([(dt.date(2026, 1, 1), FLAT_20), (dt.date(2026, 4, 1), gas)])


# ------------------------------------------------------------------ usage functions


def _day_of_half_hours(day: str, wh: int) -> list[tuple[int, int, int]]:
    t = at(f"{day} 00:00")
    return [(t + n * 1800, t + (n + 1) * 1800, wh) for n in range(48)]


def test_what_if_compares_tariffs_on_the_same_usage() -> None:
    rows = _day_of_half_hours("2026-01-05", 250)  # 12 kWh on Monday 5 Jan
    flat = FlatTariff(
        utility=Utility.ELECTRICITY,
        unit_rate_minor_per_kwh=D("24.50"),
        standing_charge_minor_per_day=D("60.10"),
        timezone=TZ,
    )
    bills = what_if(iter(rows), {"flat": flat, "go": plan(GO, name="Go")})
    # flat: 12 kWh x 24.50 = 294 p; standing 60.10 p; total 354.10 p
    assert bills["flat"].energy_milli == 294_000
    assert bills["flat"].standing_milli == 60_100
    assert bills["flat"].total_milli == 354_100
    # Go: 10 night slots x 250 Wh = 2.5 kWh x 8.50 = 21.25 p; 38 x 250 = 9.5 kWh x 27 =
    # 256.5 p; energy 277.75 p; standing 50 p; total 327.75 p
    go = bills["go"]
    assert (go.energy_milli, go.standing_milli, go.total_milli) == (277_750, 50_000, 327_750)
    assert go.days == 1 and go.import_amount == 12_000 and go.estimated == 0
    assert go.start == at("2026-01-05 00:00") and go.end == at("2026-01-06 00:00")


def test_bill_with_vat_export_and_dst_day() -> None:
    p = plan(FixedRate(D("20")), vat_percent=D(5), export=FixedRate(D(10)))
    t = utc("2026-03-29T00:00")
    rows = [UsageInterval(t, t + H, 1000), UsageInterval(t + H, t + 2 * H, 500, export=True)]
    b = bill(p, rows, start=at("2026-03-29 00:00"), end=at("2026-03-30 00:00"))
    # the 23-hour day is one day of standing charge: 50 p + 5 % = 52.5 p
    assert b.days == 1 and b.standing_milli == 52_500
    # 1 kWh x 20 p = 20 p + 5 % = 21 p; export 0.5 kWh x 10 p = -5 p (no VAT)
    assert (b.energy_milli, b.export_milli) == (21_000, -5_000)
    # VAT: 1 p on energy + 2.5 p on standing
    assert b.vat_milli == 3_500
    assert b.total_milli == 21_000 - 5_000 + 52_500
    assert b.export_amount == 500


def test_bill_across_a_tariff_change_charges_each_day_its_own_standing_charge() -> None:
    rows = [(utc("2026-03-31T22:00"), utc("2026-04-01T00:00"), 2000)]
    b = bill(HISTORY, rows, start=at("2026-03-31 00:00"), end=at("2026-04-02 00:00"), timezone=TZ)
    # 31 Mar at 40 p, 1 Apr at 60 p; energy: 1 kWh at 20 + 1 kWh at 30
    assert (b.days, b.standing_milli, b.energy_milli) == (2, 100_000, 50_000)


def test_what_if_over_a_span_clips_rows_and_continues_a_series() -> None:
    rows = _day_of_half_hours("2026-01-05", 250)
    bills = what_if(
        rows, {"go": plan(GO)}, start=at("2026-01-05 05:00"), end=at("2026-01-05 06:15")
    )
    # 05:00-05:30 at 8.50 (250 Wh), 05:30-06:00 at 27 (250 Wh), half of 06:00-06:30 (125 Wh)
    # at 27: 2,125 + 6,750 + 3,375 = 12,250; one day of standing charge
    assert bills["go"].energy_milli == 12_250 and bills["go"].import_amount == 625
    assert bills["go"].standing_milli == 50_000
    # price_intervals continues an earlier total of 0.4 milli (rounded: 0): 0.4 + 250 Wh x 27
    # = 6,750.4 -> 6,750, so this row gets 6,750 - 0
    priced = list(price_intervals(plan(GO), rows[:1], exact_total_milli=D("0.4")))
    assert priced[0].cost_milli == 250 * 27 and priced[0].exact_milli == 6_750


def test_local_days() -> None:
    assert local_days(at("2026-01-05 00:00"), at("2026-01-06 00:00"), TZ) == [dt.date(2026, 1, 5)]
    assert local_days(at("2026-01-05 23:00"), at("2026-01-06 00:01"), TZ) == [
        dt.date(2026, 1, 5),
        dt.date(2026, 1, 6),
    ]
    assert local_days(5, 5, TZ) == []


def test_cost_of_a_span_is_one_call_and_counts_straddling_rows_pro_rata() -> None:
    rows = _day_of_half_hours("2026-01-05", 250)
    # 18:00-19:15 under Go: 18:00-18:30 and 18:30-19:00 whole (500 Wh) and half of
    # 19:00-19:30 (125 Wh): 625 Wh x 27 = 16,875
    span = cost_of_span(plan(GO), rows, at("2026-01-05 18:00"), at("2026-01-05 19:15"))
    assert span.cost_milli == span.import_milli == 16_875
    assert span.import_amount == 625 and span.export_milli == 0
    # 04:00-06:00: 3 slots at 8.50 (750 Wh) + 1 slot at 27 (250 Wh) = 6,375 + 6,750
    assert (
        cost_of_span(plan(GO), rows, at("2026-01-05 04:00"), at("2026-01-05 06:00")).cost_milli
        == 13_125
    )
    # the whole day, no bounds: 277,750 as in the what-if test
    assert cost_of_span(plan(GO), iter(rows)).cost_milli == 277_750


def test_cost_of_a_span_sees_the_tier_usage_before_it() -> None:
    t = at("2026-01-05 00:00")
    rows = [(t, t + H, 2000), (t + H, t + 2 * H, 1000)]
    # the second hour is past the 2 kWh block: 1 kWh x 20, not x 30
    assert cost_of_span(plan(TIERED), rows, t + H, t + 2 * H).cost_milli == 20_000


def test_reprice_gives_every_row_a_new_cost_that_adds_up() -> None:
    t = at("2026-01-05 00:00")
    rows = [(t + 10 * n, t + 10 * (n + 1), 3) for n in range(360 * 6)]  # 00:00-06:00, 3 Wh/10 s
    costs = reprice(plan(GO), rows)
    # 00:00-00:30: 180 rows x 3 Wh x 27 = 14,580; 00:30-05:30: 1800 x 3 x 8.5 = 45,900;
    # 05:30-06:00: 180 x 3 x 27 = 14,580. Total 75,060, exactly.
    assert sum(costs) == 75_060 and set(costs) == {81, 25, 26}
    priced = list(price_intervals(plan(GO), rows[:2]))
    assert [p.cost_milli for p in priced] == [81, 81] and not priced[0].estimated


# ------------------------------------------------------------------ property tests

WINDOW = (at("2026-01-01 00:00"), at("2027-01-01 00:00"))
TOU = TimeOfUse(
    [GO_NIGHT, Band(start=hm(16), end=hm(19), rate=D("35.5"), days=frozenset(range(5)))],
    D("27.3"),
    TZ,
)
_STEP = 1800
_SLOTS = "start,price\n" + "".join(
    f"{dt.datetime.fromtimestamp(t, dt.UTC).isoformat()},{(t // _STEP) % 37 - 5}.{t % 7}\n"
    for t in range(at("2026-03-20 00:00"), at("2026-11-05 00:00"), _STEP)
    if (t // _STEP) % 11 != 3  # leave gaps
)
DYNAMIC = DynamicRates(parse_price_csv(_SLOTS, "prop.csv"), TOU)
HIST = TariffHistory(
    [
        (dt.date(2026, 1, 1), plan(TOU)),
        (dt.date(2026, 3, 29), plan(DYNAMIC, vat_percent=D(5))),
        (dt.date(2026, 10, 25), plan(FixedRate(D("19.99")))),
    ],
    timezone=TZ,
)
TARIFFS = {
    "tou": plan(TOU),
    "dynamic": plan(DYNAMIC),
    "blocks": plan(Blocks([Tier(D(3), D("31.7")), Tier(D(8), D("22.1")), Tier(None, D(12))])),
    "history": HIST,
}

starts = st.integers(min_value=at("2026-03-25 00:00"), max_value=at("2026-11-01 00:00"))
lengths = st.integers(min_value=1, max_value=3 * 86_400)
amounts = st.decimals(min_value=0, max_value=50_000, places=3)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(TARIFFS)), starts, lengths, amounts, st.floats(0.001, 0.999))
def test_splitting_an_interval_anywhere_gives_the_same_cost(
    name: str, a: int, length: int, q: Decimal, where: float
) -> None:
    tariff = TARIFFS[name]
    b = a + length
    m = a + max(1, min(length - 1, round(length * where))) if length > 1 else a
    whole = tariff.price_step(q, a, b)  # type: ignore[attr-defined]
    with localcontext(prec=60):  # the split of the amount, as exactly as the engine works
        q1 = q * (m - a) / length  # in proportion to time
        first = tariff.price_step(q1, a, m)  # type: ignore[attr-defined]
        second = tariff.price_step(q - q1, m, b, first.state)  # type: ignore[attr-defined]
        assert abs(whole.cost - (first.cost + second.cost)) < D("1e-40")


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(TARIFFS)),
    starts,
    st.integers(min_value=60, max_value=2 * 86_400),
    st.decimals(min_value=D("0.001"), max_value=5, places=3),
    st.lists(st.floats(0, 1), max_size=40),
    st.lists(st.floats(0, 1), max_size=40),
)
def test_total_cost_does_not_depend_on_how_the_deltas_are_chunked(
    name: str, a: int, length: int, power: Decimal, cuts1: list[float], cuts2: list[float]
) -> None:
    """Constant power (Wh per second) over [a, a + length], cut into deltas two ways."""
    tariff = TARIFFS[name]

    def total(cuts: list[float]) -> tuple[int, Decimal]:
        points = sorted({a, a + length, *(a + round(c * length) for c in cuts)})
        pricer = Pricer(tariff)
        returned = sum(pricer.add(power * (e - s), s, e) for s, e in pairwise(points))
        assert returned == pricer.total_milli
        return pricer.total_milli, pricer.exact_total_milli

    one, two = total(cuts1), total(cuts2)
    assert one == two  # exactly: every delta is power x duration, so no division rounds


def test_the_chunking_property_against_a_hand_model() -> None:
    """One chunking checked from first principles with Fraction, on the DST day."""
    a, b = at("2026-03-29 00:00"), at("2026-03-29 06:00")  # 00:00Z-05:00Z
    pricer = Pricer(TARIFFS["tou"])
    for s in range(a, b, 7 * 60):
        e = min(s + 7 * 60, b)
        pricer.add(D("0.25") * (e - s), s, e)
    # 0.25 Wh/s; Go night 00:30Z-04:30Z at 8.50, the rest (1 h) at 27.3 (Sunday: no peak)
    exact = Fraction("0.25") * (4 * H * Fraction("8.50") + 1 * H * Fraction("27.3"))
    assert pricer.exact_total_milli == D(exact.numerator) / D(exact.denominator)
    assert pricer.total_milli == 55_170  # 0.25 x (14400 x 8.5 + 3600 x 27.3) = 30,600 + 24,570


# ------------------------------------------------------------------------- budgets


def test_period_bounds_and_elapsed_fraction() -> None:
    assert period_bounds(Period.DAY, at("2026-03-29 12:00"), TZ) == (
        utc("2026-03-29T00:00"),
        utc("2026-03-29T23:00"),
    )
    assert period_bounds(Period.WEEK, at("2026-01-07 12:00"), TZ) == (
        at("2026-01-05 00:00"),
        at("2026-01-12 00:00"),
    )
    assert period_bounds(Period.MONTH, at("2026-01-10 12:00"), TZ, month_start=15) == (
        at("2025-12-15 00:00"),
        at("2026-01-15 00:00"),
    )
    # 12:00 BST on the spring day: 11 real hours of 23
    assert elapsed_fraction(Period.DAY, at("2026-03-29 12:00"), TZ) == Fraction(11, 23)
    assert elapsed_fraction(Period.DAY, at("2026-01-05 06:00"), TZ) == Fraction(1, 4)


def test_budget_light_thresholds() -> None:
    budget = Budget(Utility.ELECTRICITY, Period.DAY, 300_000)  # 3.00 a day
    noon = at("2026-01-05 12:00")  # half the day: 150,000 expected by now
    assert budget_light(150_000, budget, noon, TZ) is Light.GREEN
    assert budget_light(150_001, budget, noon, TZ) is Light.AMBER
    assert budget_light(180_000, budget, noon, TZ) is Light.AMBER  # 1.2 x: not above
    assert budget_light(180_001, budget, noon, TZ) is Light.RED
    assert budget_light(300_001, budget, at("2026-01-05 23:59"), TZ) is Light.RED  # spent
    # 00:30 is 1/48 of the day, but pace is judged against at least 1/24: 12,500
    early = at("2026-01-05 00:30")
    assert budget_light(12_500, budget, early, TZ) is Light.GREEN
    assert budget_light(15_001, budget, early, TZ) is Light.RED
    with pytest.raises(ValueError):
        Budget(Utility.GAS, Period.DAY, -1)


def test_typical_windows_are_the_same_weekday_to_the_same_wall_time() -> None:
    windows = typical_windows(Period.DAY, at("2026-04-06 14:00"), TZ, count=3)  # a Monday, BST
    assert [(w.start, w.to_date, w.end) for w in windows] == [
        (at("2026-03-30 00:00"), at("2026-03-30 14:00"), at("2026-03-31 00:00")),
        (at("2026-03-23 00:00"), at("2026-03-23 14:00"), at("2026-03-24 00:00")),  # GMT
        (at("2026-03-16 00:00"), at("2026-03-16 14:00"), at("2026-03-17 00:00")),
    ]
    weeks = typical_windows(Period.WEEK, at("2026-01-14 06:00"), TZ, count=2)  # a Wednesday
    assert [(w.start, w.to_date, w.end) for w in weeks] == [
        (at("2026-01-05 00:00"), at("2026-01-07 06:00"), at("2026-01-12 00:00")),
        (at("2025-12-29 00:00"), at("2025-12-31 06:00"), at("2026-01-05 00:00")),
    ]
    months = typical_windows(Period.MONTH, at("2026-02-15 00:00"), TZ, count=1)
    # half of February (14 of 28 days) -> half of January (15.5 of 31 days)
    assert months[0].start == at("2026-01-01 00:00")
    assert months[0].to_date == at("2026-01-16 12:00")
    assert months[0].end == at("2026-02-01 00:00")


def test_typical_light_uses_the_median() -> None:
    to_date, whole = [100, 300, 200, 400], [1000, 1200, 800, 1100]
    # medians 250 (by now) and 1050 (whole day); 1050/24 < 250, so 250 it is
    assert typical_light(250, to_date, whole) is Light.GREEN
    assert typical_light(251, to_date, whole) is Light.AMBER
    assert typical_light(301, to_date, whole) is Light.RED  # > 1.2 x 250
    assert typical_light(5, [], []) is Light.NONE
    # just after midnight the typical use so far is 0; the floor is 2400/24 = 100
    assert typical_light(100, [0, 0, 0], [2400, 2400, 2400]) is Light.GREEN
    assert typical_light(121, [0, 0, 0], [2400, 2400, 2400]) is Light.RED
    now = at("2026-01-05 12:00")
    budget = Budget(Utility.ELECTRICITY, Period.DAY, 300_000)
    assert traffic_light(200_000, now, TZ, budget=budget) is Light.RED
    assert traffic_light(200_000, now, TZ, typical_to_date=[250_000], typical_whole=[500_000]) is (
        Light.GREEN
    )


# -------------------------------------------------------------------------- config


def cfg_error(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse(text, SRC)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{SRC}: "), msg
    return msg


def test_flat_keys_still_make_flat_tariffs() -> None:
    cfg = parse("[tariff.gas]\nunit_rate = 6.5\n", SRC)
    tariffs = tariffs_from_config(cfg)
    elec, gas = tariffs[Utility.ELECTRICITY], tariffs[Utility.GAS]
    assert isinstance(elec, FlatTariff) and elec.unit_rate_minor == D("24.50")  # default
    assert elec.standing_charge_milli(1) == 60_100
    assert isinstance(gas, FlatTariff) and gas.cost_milli(1000, 0, 1) == 6_500
    assert tariffs[Utility.WATER].metered_unit == "m3"


def test_octopus_go_from_toml() -> None:
    cfg = parse(
        """
[tariff.electricity]
type = "tou"
name = "Octopus Go"
unit_rate = 27.0
standing_charge = 50
export_rate = 15
[[tariff.electricity.bands]]
name = "night"
start = "00:30"
end = "05:30"
rate = 8.5
[[tariff.electricity.bands]]
start = 16:00:00
end = "19:00"
rate = "35.5"
days = "weekdays"
""",
        SRC,
    )
    go = tariffs_from_config(cfg)[Utility.ELECTRICITY]
    assert isinstance(go, TariffPlan) and go.name == "Octopus Go"
    assert go.cost_milli(1000, at("2026-01-05 05:00"), at("2026-01-05 06:00")) == 17_750
    assert go.rate_at(at("2026-01-05 17:00")) == D("35.5")
    assert go.rate_at(at("2026-01-10 17:00")) == D("27.0")
    assert go.export_cost_milli(1000, 0, 1) == -15_000


def test_economy7_on_meter_time_vat_and_currency_from_toml() -> None:
    cfg = parse(
        """
[household]
currency = "EUR"
[tariff.electricity]
type = "tou"
unit_rate = 28
standing_charge = 40
vat_percent = 5
bands_timezone = "UTC"
[[tariff.electricity.bands]]
start = "00:30"
end = "07:30"
rate = 10
[tariff.water]
currency = "GBP"
""",
        SRC,
    )
    tariffs = tariffs_from_config(cfg)
    e7 = tariffs[Utility.ELECTRICITY]
    assert e7.currency is EUR and tariffs[Utility.WATER].currency.code == "GBP"
    # bands on meter time (GMT all year): in summer the night rate runs 01:30-08:30 BST
    assert e7.rate_at(at("2026-07-01 08:00")) == D("10.50")  # 10 + 5 % VAT
    assert e7.rate_at(at("2026-07-01 01:00")) == D("29.40")  # 28 + 5 %
    assert e7.standing_charge_milli(1) == 42_000


def test_blocks_dynamic_history_and_budget_from_toml(tmp_path: Path) -> None:
    (tmp_path / "agile.csv").write_text(AGILE, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        """
[tariff.electricity]
type = "blocks"
standing_charge = 10
block_period = "month"
billing_day = 5
[[tariff.electricity.blocks]]
up_to = 100
rate = 30
[[tariff.electricity.blocks]]
rate = 20

[[tariff.electricity.history]]
from = 2026-03-29
type = "dynamic"
csv = "agile.csv"
unit_rate = 25
standing_charge = 45

[tariff.electricity.budget]
daily = 250
monthly = "6000.5"
typical_weeks = 6
""",
        encoding="utf-8",
    )
    from ihd.config import load

    cfg = load(config)
    entry = cfg.tariffs[Utility.ELECTRICITY]
    history = entry.tariff
    assert isinstance(history, TariffHistory)
    # before 29 Mar: monthly blocks from the 5th: 100 kWh at 30 p first
    assert history.cost_milli(1000, at("2026-03-05 00:00"), at("2026-03-05 01:00")) == 30_000
    # from 29 Mar: the CSV (relative to the config file), 25 p when it has no price
    t = utc("2026-03-29T00:00")
    assert history.cost_milli(1000, t, t + 1800) == 12_340
    assert history.cost_milli(1000, t + 4 * 1800, t + 5 * 1800) == 25_000
    assert history.standing_charge_milli(1, at=t) == 45_000
    assert entry.budgets == (
        Budget(Utility.ELECTRICITY, Period.DAY, 250_000),
        Budget(Utility.ELECTRICITY, Period.MONTH, 6_000_500),
    )
    assert entry.typical_weeks == 6


@pytest.mark.parametrize(
    "text, key, reason",
    [
        ('type = "tuo"', "tariff.electricity.type", "must be one of 'flat', 'tou'"),
        ("typ = 'tou'", "tariff.electricity.typ", "did you mean 'tariff.electricity.type'?"),
        ("bandz = []", "tariff.electricity.bandz", "did you mean 'tariff.electricity.bands'?"),
        ("vat_percent = 150", "tariff.electricity.vat_percent", "at most 100"),
        ('vat_percent = "5%"', "tariff.electricity.vat_percent", "'5%'"),
        ('currency = "USD"', "tariff.electricity.currency", "unknown currency 'USD'"),
        (
            "[[tariff.electricity.bands]]\nstart='00:30'\nend='05:30'\nrate=8",
            "tariff.electricity.bands",
            "needs type = 'tou' or type = 'dynamic' (this tariff is 'flat')",
        ),
        (
            "type='tou'\nunit_rate=1\n[[tariff.electricity.bands]]\nstart='00:30'\nend='05:30'\nrate=8",
            "tariff.electricity.standing_charge",
            "required",
        ),
        ("type='tou'\nstanding_charge=1", "tariff.electricity.bands", "required with type = 'tou'"),
        (
            "type='tou'\nstanding_charge=1\nbands=5",
            "tariff.electricity.bands",
            "expected an array of tables",
        ),
        (
            "type='tou'\nstanding_charge=1\nunit_rate=1\n[[tariff.electricity.bands]]\n"
            "start='25:00'\nend='05:30'\nrate=8",
            "tariff.electricity.bands[1].start",
            "expected a time like '07:30', got '25:00'",
        ),
        (
            "type='tou'\nstanding_charge=1\nunit_rate=1\n[[tariff.electricity.bands]]\n"
            "start='00:30'\nend='05:30'",
            "tariff.electricity.bands[1].rate",
            "required",
        ),
        (
            "type='tou'\nstanding_charge=1\nunit_rate=1\n[[tariff.electricity.bands]]\n"
            "stat='00:30'\nend='05:30'\nrate=1",
            "tariff.electricity.bands[1].stat",
            "did you mean 'tariff.electricity.bands[1].start'?",
        ),
        (
            "type='tou'\nstanding_charge=1\nunit_rate=1\n[[tariff.electricity.bands]]\n"
            "start='00:30'\nend='05:30'\nrate=1\ndays=['mon','funday']",
            "tariff.electricity.bands[1].days",
            "unknown day 'funday'",
        ),
        (
            "type='tou'\nstanding_charge=1\nunit_rate=1\n[[tariff.electricity.bands]]\n"
            "start='00:30'\nend='05:30'\nrate=1\nmonths=[13]",
            "tariff.electricity.bands[1].months",
            "between 1 and 12",
        ),
        (
            "type='tou'\nstanding_charge=1\nunit_rate=1\n[[tariff.electricity.bands]]\n"
            "start='00:30'\nend='05:30'\nrate=1\ndates=['11-31','02-28']",
            "tariff.electricity.bands[1].dates",
            "'11-31'",
        ),
        (
            "type='tou'\nstanding_charge=1\nunit_rate=1\n[[tariff.electricity.bands]]\n"
            "start='00:30'\nend='05:30'\nrate=1\n[[tariff.electricity.bands]]\n"
            "start='05:00'\nend='07:00'\nrate=2",
            "tariff.electricity.bands",
            "band 1 and band 2 overlap",
        ),
        (
            "type='tou'\nstanding_charge=1\n[[tariff.electricity.bands]]\n"
            "start='00:30'\nend='05:30'\nrate=1",
            "tariff.electricity.bands",
            "no band covers mon 01-01 at 00:00, and there is no default rate; add one or set "
            "unit_rate",
        ),
        (
            "type='tou'\nstanding_charge=1\nunit_rate=1\nbands_timezone='Mars/Base'\n"
            "[[tariff.electricity.bands]]\nstart='00:30'\nend='05:30'\nrate=1",
            "tariff.electricity.bands_timezone",
            "unknown timezone 'Mars/Base'",
        ),
        (
            "type='blocks'\nstanding_charge=1\nunit_rate=3",
            "tariff.electricity.unit_rate",
            "blocks set the rates",
        ),
        (
            "type='blocks'\nstanding_charge=1\n[[tariff.electricity.blocks]]\nrate=3\n"
            "[[tariff.electricity.blocks]]\nrate=2",
            "tariff.electricity.blocks[1].up_to",
            "required (every block but the last)",
        ),
        (
            "type='blocks'\nstanding_charge=1\n[[tariff.electricity.blocks]]\nup_to=5\nrate=3\n"
            "[[tariff.electricity.blocks]]\nup_to=4\nrate=2\n[[tariff.electricity.blocks]]\nrate=1",
            "tariff.electricity.blocks[2].up_to",
            "must be above 5",
        ),
        (
            "type='blocks'\nstanding_charge=1\nblock_period='year'\n[[tariff.electricity.blocks]]\n"
            "rate=3",
            "tariff.electricity.block_period",
            "'day', 'month'",
        ),
        ("block_period='day'", "tariff.electricity.block_period", "needs type = 'blocks'"),
        ("type='dynamic'\nstanding_charge=1", "tariff.electricity.csv", "required"),
        (
            "type='dynamic'\nstanding_charge=1\nunit_rate=1\ncsv='/nonexistent/agile.csv'",
            "tariff.electricity.csv",
            "/nonexistent/agile.csv: no such file",
        ),
        (
            "[[tariff.electricity.history]]\nunit_rate=1",
            "tariff.electricity.history[1].from",
            "required",
        ),
        (
            "[[tariff.electricity.history]]\nfrom='April'",
            "tariff.electricity.history[1].from",
            "expected a date like 2026-04-01",
        ),
        (
            "[[tariff.electricity.history]]\nfrom=2026-04-01\nunit_rate=1",
            "tariff.electricity.history[1].standing_charge",
            "required",
        ),
        (
            "[[tariff.electricity.history]]\nfrom=2026-04-01\nstanding_charge=1",
            "tariff.electricity.history[1].unit_rate",
            "required",
        ),
        (
            "[[tariff.electricity.history]]\nfrom=2026-04-01\nrate=1",
            "tariff.electricity.history[1].rate",
            "did you mean 'tariff.electricity.history[1].unit_rate'?",
        ),
        (
            "[[tariff.electricity.history]]\nfrom=2026-04-01\nunit_rate=1\nstanding_charge=1\n"
            "[[tariff.electricity.history]]\nfrom=2026-03-01\nunit_rate=1\nstanding_charge=1",
            "tariff.electricity.history[2].from",
            "must be after the entry before it (2026-04-01)",
        ),
        (
            "[[tariff.electricity.history]]\nfrom=2026-04-01\nunit_rate=1\nstanding_charge=1\n"
            "currency='EUR'",
            "tariff.electricity.history[1].currency",
            "unknown key",
        ),
        ("[tariff.electricity.budget]\ndaily='lots'", "tariff.electricity.budget.daily", "'lots'"),
        (
            "[tariff.electricity.budget]\nyearly=1",
            "tariff.electricity.budget.yearly",
            "unknown key",
        ),
        ("budget = 5", "tariff.electricity.budget", "expected a table"),
    ],
)
def test_tariff_config_errors_name_the_key(text: str, key: str, reason: str) -> None:
    msg = cfg_error("[tariff.electricity]\n" + text)
    assert msg.startswith(f"{SRC}: {key}: "), msg
    assert reason in msg, msg


def test_export_keys_are_for_electricity_only() -> None:
    msg = cfg_error("[tariff.gas]\nexport_rate = 5\n")
    assert msg == f"{SRC}: tariff.gas.export_rate: only electricity has export rates"
    assert "tariff.water.calorific_value_mj_m3: unknown key" in cfg_error(
        "[tariff.water]\ncalorific_value_mj_m3 = 40\n"
    )


def test_csv_errors_in_the_config_name_the_key_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("start,price\n2026-04-01T00:00Z,1\n2026-04-01 00:30,2\n")
    config = tmp_path / "config.toml"
    config.write_text(
        "[tariff.electricity]\ntype='dynamic'\nstanding_charge=1\nunit_rate=2\ncsv='p.csv'\n"
    )
    from ihd.config import load

    with pytest.raises(ConfigError) as e:
        load(config)
    assert str(e.value) == (
        f"{config}: tariff.electricity.csv: {tmp_path / 'p.csv'}:3: start '2026-04-01 00:30' "
        "has no UTC offset (write it as ...Z or ...+01:00)"
    )


def test_the_examples_in_docs_tariffs_md_load(tmp_path: Path) -> None:
    import re

    docs = Path(__file__).resolve().parent.parent / "docs" / "tariffs.md"
    blocks = re.findall(r"```toml\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5
    prices = "valid_from,valid_to,value_exc_vat\n2026-04-01T00:00Z,2026-04-01T00:30Z,10\n"
    for name in ("agile.csv", "agile-outgoing.csv"):
        (tmp_path / name).write_text(prices, encoding="utf-8")
    for block in blocks:
        cfg = parse(block, tmp_path / "config.toml")
        assert set(tariffs_from_config(cfg)) == set(Utility)
