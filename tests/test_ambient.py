"""The traffic lights against a real store: a daily budget, or the household's usual."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from pathlib import Path

from ihd.app.ambient import lights
from ihd.app.live import UtilityToday
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.store import Batch, MeterInfo, Store, Usage
from ihd.tariff.budget import Budget, Light, Period
from ihd.tariff.config import UtilityTariff
from ihd.tariff.flat import FlatTariff

TZ = "Europe/London"
ZONE = zoneinfo.ZoneInfo(TZ)
# Wednesday 2026-06-17, 12:00 local (BST): half of the day has gone.
NOON = dt.datetime(2026, 6, 17, 12, 0, tzinfo=ZONE).timestamp()
MIDNIGHT = dt.datetime(2026, 6, 17, tzinfo=ZONE).timestamp()
ELEC = "0249484400090001"


def today(cost_milli: int, standing_milli: int = 0) -> dict[Utility, UtilityToday]:
    return {
        Utility.ELECTRICITY: UtilityToday(
            Utility.ELECTRICITY, 1000.0, 1000.0, cost_milli, standing_milli
        )
    }


def tariff(*budgets: Budget) -> dict[Utility, UtilityTariff]:
    flat = FlatTariff(
        utility=Utility.ELECTRICITY,
        standing_charge_minor_per_day=Decimal("60.10"),
        unit_rate_minor_per_kwh=Decimal("24.50"),
    )
    return {Utility.ELECTRICITY: UtilityTariff(Utility.ELECTRICITY, flat, budgets)}


def store_with_past_wednesdays(path: Path, morning_milli: list[int]) -> Store:
    """Each of the last Wednesdays: ``morning`` cost at 09:00 and as much again at 18:00."""
    store = Store(path, tz=TZ, diag=Diagnostics())
    usage = []
    for weeks_back, cost in enumerate(morning_milli, start=1):
        day = MIDNIGHT - weeks_back * 7 * 86400
        for hour in (9, 18):
            minute = int((day + hour * 3600) // 60) * 60_000
            usage.append(Usage(ELEC, Utility.ELECTRICITY, minute, 500.0, 500.0, cost))
    store.write_now(Batch(usage=usage, meters=(MeterInfo(ELEC, Utility.ELECTRICITY, "E", 0),)))
    return store


def test_a_daily_budget_judges_the_whole_cost_against_the_time_gone(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.sqlite", tz=TZ, diag=Diagnostics())
    budget = Budget(Utility.ELECTRICITY, Period.DAY, 2_000_000)  # £20.00 a day
    with store.reader() as r:
        # Half the day gone: £10.00 expected by now; red above 1.2 x that (£12.00).
        assert lights(today(900_000, 50_000), NOON, TZ, r, tariff(budget)) == {
            Utility.ELECTRICITY: (Light.GREEN, "budget")  # £9.50 all in
        }
        assert lights(today(1_050_000, 50_000), NOON, TZ, r, tariff(budget))[
            Utility.ELECTRICITY
        ] == (Light.AMBER, "budget")  # £11.00
        assert lights(today(1_200_000, 50_000), NOON, TZ, r, tariff(budget))[
            Utility.ELECTRICITY
        ] == (Light.RED, "budget")  # £12.50
    store.close()


def test_without_a_budget_the_usual_wednesday_is_the_yardstick(tmp_path: Path) -> None:
    # Four past Wednesdays cost 300, 400, 500, 600 (milli) by noon: median 450 by now, and
    # twice that for the whole day (median 900).
    store = store_with_past_wednesdays(tmp_path / "h.sqlite", [300, 400, 500, 600])
    with store.reader() as r:
        assert lights(today(400), NOON, TZ, r, tariff())[Utility.ELECTRICITY] == (
            Light.GREEN,
            "usual",
        )
        assert lights(today(500), NOON, TZ, r, tariff())[Utility.ELECTRICITY] == (
            Light.AMBER,
            "usual",
        )  # above 450, below 1.2 x 450 = 540
        assert lights(today(541), NOON, TZ, r, tariff())[Utility.ELECTRICITY] == (
            Light.RED,
            "usual",
        )
    store.close()


def test_no_history_and_no_budget_shows_no_light(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.sqlite", tz=TZ, diag=Diagnostics())
    with store.reader() as r:
        assert lights(today(400), NOON, TZ, r, tariff()) == {
            Utility.ELECTRICITY: (Light.NONE, "usual")
        }
    store.close()
