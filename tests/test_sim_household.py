"""The simulated household: calibration, determinism, DST days and exact registers."""

from __future__ import annotations

import time as stopwatch
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from ihd.meter.reading import Utility
from ihd.sim.household import Household

LONDON = ZoneInfo("Europe/London")
DAY_S = 86_400.0


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> float:
    return datetime(y, m, d, hh, mm, tzinfo=LONDON).timestamp()


def overlap_amount(house: Household, utility: Utility, start: float, end: float) -> float:
    """The integral straight from the intervals: an independent check of amount()."""
    if utility is Utility.WATER:
        return sum(
            (min(d.end, end) - max(d.start, start)) * d.litres_per_min / 60
            for d in house.draws(start, end)
        )
    return sum(
        (min(x.end, end) - max(x.start, start)) * x.watts / 3600
        for x in house.loads(utility, start, end)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_year_matches_a_typical_medium_uk_household(seed: int) -> None:
    house = Household(seed)
    start, end = local(2025, 1, 1), local(2026, 1, 1)
    assert house.electricity_wh(start, end) / 1000 == pytest.approx(2_700, rel=0.10)
    assert house.gas_wh(start, end) / 1000 == pytest.approx(11_500, rel=0.10)
    litres_per_person_day = house.water_l(start, end) / 365 / house.occupants
    assert litres_per_person_day == pytest.approx(140, rel=0.10)


def test_hot_water_gas_is_a_few_kwh_a_day() -> None:
    house = Household(1)
    start, end = local(2025, 1, 1), local(2026, 1, 1)
    hot_water = [x for x in house.loads(Utility.GAS, start, end) if x.name != "heating"]
    kwh_a_day = sum((x.end - x.start) * x.watts for x in hot_water) / 3.6e6 / 365
    assert 4.0 <= kwh_a_day <= 6.5


def test_winter_gas_dwarfs_summer_gas() -> None:
    house = Household(1)
    january = house.gas_wh(local(2025, 1, 1), local(2025, 2, 1))
    july = house.gas_wh(local(2025, 7, 1), local(2025, 8, 1))
    assert january > 5 * july
    assert house.outdoor_c(date(2025, 1, 15)) < house.outdoor_c(date(2025, 7, 15))


def test_evening_peak_beats_the_small_hours() -> None:
    house = Household(1)
    evening = night = 0.0
    for day in range(1, 29):
        evening += house.electricity_wh(local(2025, 2, day, 18), local(2025, 2, day, 21))
        night += house.electricity_wh(local(2025, 2, day, 2), local(2025, 2, day, 5))
    assert evening > 2 * night


def test_kettle_spikes_reach_3_kw() -> None:
    house = Household(1)
    start = local(2025, 5, 14)
    peak = max(house.power_w(start + 10 * i) for i in range(8640))
    assert peak >= 3_000
    assert any(x.name == "kettle" for x in house.loads(Utility.ELECTRICITY, start, start + DAY_S))


def test_same_seed_same_house_other_seed_other_house() -> None:
    start, end = local(2024, 2, 1), local(2024, 2, 3)
    for utility in (Utility.ELECTRICITY, Utility.GAS):
        assert Household(7).loads(utility, start, end) == Household(7).loads(utility, start, end)
        assert Household(7).loads(utility, start, end) != Household(8).loads(utility, start, end)
    assert Household(7).draws(start, end) == Household(7).draws(start, end)
    assert Household(7).draws(start, end) != Household(8).draws(start, end)
    assert Household(7).register(Utility.GAS, end) == Household(7).register(Utility.GAS, end)


def test_answers_do_not_depend_on_what_was_asked_before() -> None:
    t = local(2024, 3, 10, 19, 30)
    fresh = Household(3)
    warmed = Household(3)
    for i in range(0, 40 * 86_400, 3 * 86_400 + 1234):
        warmed.power_w(local(2024, 1, 1) + i)
    for utility in Utility:
        assert fresh.register(utility, t) == pytest.approx(warmed.register(utility, t), rel=1e-12)
    assert fresh.power_w(t) == warmed.power_w(t)


@pytest.mark.parametrize("utility", list(Utility))
def test_register_is_monotonic_and_differences_are_exact(utility: Utility) -> None:
    house = Household(2)
    start = local(2024, 3, 30, 20)  # runs across the 23-hour day
    times = [start + 97.0 * i for i in range(2_000)]
    values = [house.register(utility, t) for t in times]
    assert all(b >= a for a, b in pairwise(values))
    for t0, t1 in [(times[0], times[-1]), (times[3], times[400]), (times[900], times[901])]:
        exact = overlap_amount(house, utility, t0, t1)
        assert house.amount(utility, t0, t1) == pytest.approx(exact, rel=1e-6, abs=1e-9)
        diff = house.register(utility, t1) - house.register(utility, t0)
        assert diff == pytest.approx(exact, rel=1e-6, abs=1e-6)


def test_registers_start_from_a_seeded_reading_and_run_back_before_the_epoch() -> None:
    house = Household(4)
    for utility in Utility:
        at_epoch = house.register(utility, house.epoch)
        assert at_epoch == house.initial[utility] > 0
        before = house.register(utility, house.epoch - 10 * DAY_S)
        assert at_epoch - before == pytest.approx(
            house.amount(utility, house.epoch - 10 * DAY_S, house.epoch), rel=1e-9
        )
    assert Household(4).initial != Household(5).initial


@pytest.mark.parametrize(
    ("day", "hours"), [((2024, 3, 31), 23), ((2024, 10, 27), 25), ((2024, 6, 1), 24)]
)
def test_dst_days_are_covered_without_gaps(day: tuple[int, int, int], hours: int) -> None:
    house = Household(1)
    start = local(*day)
    end = datetime.combine(date(*day) + timedelta(days=1), time(), LONDON).timestamp()
    assert end - start == hours * 3600
    base = [x for x in house.loads(Utility.ELECTRICITY, start, end) if x.name == "base"]
    assert len(base) == hours
    assert base[0].start == start and base[-1].end == end
    assert all(a.end == b.start for a, b in pairwise(base))
    assert min(house.power_w(t) for t in range(int(start), int(end), 60)) > 0
    for utility in Utility:
        assert house.amount(utility, start, end) == pytest.approx(
            overlap_amount(house, utility, start, end), rel=1e-9
        )
        # Continuous across both midnights.
        for edge in (start, end):
            jump = house.register(utility, edge) - house.register(utility, edge - 1e-3)
            assert 0 <= jump < 1.0


def test_loads_spill_past_midnight_and_are_found_from_the_next_day() -> None:
    house = Household(1)
    found = False
    for day in range(1, 29):
        midnight = local(2025, 2, day)
        spills = [
            x
            for x in house.loads(Utility.ELECTRICITY, midnight, midnight + 1)
            if x.start < midnight
        ]
        found = found or bool(spills)
        assert house.power_w(midnight) >= sum(x.watts for x in spills)
    assert found


def test_instantaneous_rates_match_the_intervals() -> None:
    house = Household(5)
    start = local(2024, 1, 20)
    for utility, rate in [
        (Utility.ELECTRICITY, house.power_w),
        (Utility.GAS, house.gas_power_w),
    ]:
        spans = house.loads(utility, start, start + DAY_S)
        for t in (start + 601.0 * i for i in range(143)):
            expected = sum(x.watts for x in spans if x.start <= t < x.end)
            assert rate(t) == pytest.approx(expected, abs=1e-6)
    draws = house.draws(start, start + DAY_S)
    for t in (start + 601.0 * i for i in range(143)):
        expected = sum(d.litres_per_min for d in draws if d.start <= t < d.end)
        assert house.water_flow_lpm(t) == pytest.approx(expected, abs=1e-9)


def test_registers_never_step_back_at_midnight() -> None:
    house = Household(6)
    for day in range(-40, 40):
        midnight = house.epoch + day * DAY_S
        for utility in Utility:
            assert house.register(utility, midnight) >= house.register(utility, midnight - 1e-6)


def test_loads_refuses_water() -> None:
    with pytest.raises(ValueError, match="draws"):
        Household().loads(Utility.WATER, 0.0, 1.0)


def test_registers_at_10_s_steps_are_fast() -> None:
    house = Household(1)
    start = local(2024, 12, 1)
    house.register(Utility.ELECTRICITY, start)  # builds eleven months of day totals once
    began = stopwatch.perf_counter()
    for i in range(8640):
        house.register(Utility.ELECTRICITY, start + 10 * i)
        house.power_w(start + 10 * i)
    assert stopwatch.perf_counter() - began < 0.5
