"""The traffic light per utility: is today's spending on track?

Against the household's daily budget when one is configured (``[tariff.<u>.budget]``),
else against its own typical use: the median of the same weekday, to the same time of
day, over the last weeks (the tariff engine's rules, ``ihd.tariff.budget``). The store's
rollups make each judgement a handful of sub-millisecond queries, so the housekeeping
thread recomputes the lights every few seconds.

What is compared: with a budget, today's whole cost (usage and the day's standing charge)
against the daily budget; with typical use, the usage cost alone on both sides (a standing
charge says nothing about behaviour).
"""

from __future__ import annotations

from collections.abc import Mapping

from ihd.app.live import UtilityToday
from ihd.meter.reading import Utility
from ihd.store import StoreReader
from ihd.tariff.budget import Budget, Light, Period, traffic_light, typical_windows
from ihd.tariff.config import UtilityTariff


def daily_budget(tariff: UtilityTariff | None) -> Budget | None:
    """The day's budget: a daily one, or a weekly/monthly one is not used for "today"."""
    if tariff is None:
        return None
    return next((b for b in tariff.budgets if b.period is Period.DAY), None)


def lights(
    today: Mapping[Utility, UtilityToday],
    now: float,
    timezone: str,
    reader: StoreReader,
    tariffs: Mapping[Utility, UtilityTariff],
) -> dict[Utility, tuple[Light, str]]:
    """The light for each utility that has data today, with what it was judged against:
    ``"budget"`` or ``"usual"``."""
    out: dict[Utility, tuple[Light, str]] = {}
    for utility, t in today.items():
        budget = daily_budget(tariffs.get(utility))
        if budget is not None:
            out[utility] = (traffic_light(t.total_milli, now, timezone, budget=budget), "budget")
            continue
        weeks = tariffs[utility].typical_weeks if utility in tariffs else 4
        to_date, whole = [], []
        for w in typical_windows(Period.DAY, now, timezone, count=weeks):
            so_far = reader.usage_total(utility, w.start, w.to_date)
            if so_far.amount <= 0:  # no data that day: left out, not counted as zero
                continue
            to_date.append(so_far.cost_milli)
            whole.append(reader.cost_between(w.start, w.end, utility))
        light = traffic_light(
            t.cost_milli, now, timezone, typical_to_date=to_date, typical_whole=whole
        )
        out[utility] = (light, "usual")
    return out
