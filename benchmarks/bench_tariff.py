"""The tariff engine: pricing a year of half-hourly usage, in-process, no Qt, no store.

The usage is 17,520 half-hour rows over 2026 (a year with both DST changes in
Europe/London), ``(start, end, amount)`` with the amount a float of Wh (as the store
keeps it), from a seeded random load of 50-1,500 Wh per half hour. Each figure is the
median of 5 runs (3 with ``--quick``); every run builds a new tariff, so the time
includes building the engine's per-day band caches ("cold", as after a start or a
tariff correction).

Figures:

* ``tariff.price_year_halfhourly_tou_ms``: ``reprice(plan, rows)``, every row priced under a
  ToU plan (a Go-style night band, a weekday 16-19 peak, a winter-only morning band and a
  default rate) and rounded per row without drift;
* ``tariff.price_year_halfhourly_dynamic_ms``: the same under a dynamic plan, an Agile-style
  table of half-hourly prices with 1 % of the slots missing (those are priced at the
  fallback rate and flagged); the table is parsed once, outside the timing;
* ``tariff.load_year_csv_ms``: ``parse_price_csv`` of that year of prices (about 17,350
  lines, ISO-8601 with offset);
* ``tariff.what_if_year_3_tariffs_ms``: ``what_if(rows, {flat, tou, dynamic})``, three
  whole-year bills with standing charges, in one pass over the rows;
* ``tariff.pricer_add_tou_us``: one ``Pricer.add`` of a 10 s delta (Decimal Wh) under the
  ToU plan, which is the ingest's pricing per push (median over batches, as in ``stack``).
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections.abc import Callable, Iterator

from benchlib import Figure, per_call_us, rounded

YEAR_START = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
SLOTS = 17_520
SLOT_S = 1800
TZ = "Europe/London"


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(quick: bool) -> Iterator[Figure]:
    from decimal import Decimal

    from ihd.meter.reading import Utility
    from ihd.tariff import (
        Band,
        DynamicRates,
        FixedRate,
        FlatTariff,
        Pricer,
        PriceTable,
        TariffPlan,
        TimeOfUse,
        parse_price_csv,
        reprice,
        what_if,
    )

    runs = 3 if quick else 5
    rnd = random.Random(2026)
    rows = [
        (YEAR_START + i * SLOT_S, YEAR_START + (i + 1) * SLOT_S, rnd.uniform(50, 1500))
        for i in range(SLOTS)
    ]
    csv_text = "start,price\n" + "".join(
        f"{dt.datetime.fromtimestamp(YEAR_START + i * SLOT_S, dt.UTC).isoformat()},"
        f"{Decimal(rnd.randint(-300, 4500)) / 100}\n"
        for i in range(SLOTS)
        if rnd.random() >= 0.01
    )

    def tou_plan() -> TariffPlan:
        bands = [
            Band(start=1800, end=5 * 3600 + 1800, rate=Decimal("8.50")),
            Band(start=16 * 3600, end=19 * 3600, rate=Decimal("35.10"), days=frozenset(range(5))),
            Band(
                start=7 * 3600,
                end=9 * 3600,
                rate=Decimal("31.00"),
                months=frozenset({11, 12, 1, 2}),
            ),
        ]
        return TariffPlan(
            utility=Utility.ELECTRICITY,
            rates=TimeOfUse(bands, Decimal("27.03"), TZ),
            standing_charge_minor_per_day=Decimal("49.97"),
            timezone=TZ,
        )

    def dynamic_plan(table: PriceTable) -> TariffPlan:
        return TariffPlan(
            utility=Utility.ELECTRICITY,
            rates=DynamicRates(table, FixedRate(Decimal("24.50"))),
            standing_charge_minor_per_day=Decimal("47.85"),
            timezone=TZ,
        )

    flat = FlatTariff(
        utility=Utility.ELECTRICITY,
        unit_rate_minor_per_kwh=Decimal("24.50"),
        standing_charge_minor_per_day=Decimal("60.10"),
        timezone=TZ,
    )

    yield Figure(
        "tariff.price_year_halfhourly_tou_ms",
        rounded(_median_ms(lambda: reprice(tou_plan(), rows), runs)),
        "ms",
    )
    yield Figure(
        "tariff.load_year_csv_ms",
        rounded(_median_ms(lambda: parse_price_csv(csv_text, "year.csv"), runs)),
        "ms",
    )
    table = parse_price_csv(csv_text, "year.csv")  # parsed once; the pricing is timed
    yield Figure(
        "tariff.price_year_halfhourly_dynamic_ms",
        rounded(_median_ms(lambda: reprice(dynamic_plan(table), rows), runs)),
        "ms",
    )
    dyn = dynamic_plan(table)
    yield Figure(
        "tariff.what_if_year_3_tariffs_ms",
        rounded(
            _median_ms(
                lambda: what_if(rows, {"flat": flat, "tou": tou_plan(), "dynamic": dyn}), runs
            )
        ),
        "ms",
    )
    plan = tou_plan()
    t0 = YEAR_START + 86_400 * 40
    n = 50_000  # more than warm-up plus timed calls
    inputs = [(Decimal(rnd.randint(1, 40)) / 10, t0 + 10 * i, t0 + 10 * (i + 1)) for i in range(n)]
    pricer = Pricer(plan)
    it = iter(inputs)

    def one() -> object:
        amount, s, e = next(it)
        return pricer.add(amount, s, e)

    yield Figure(
        "tariff.pricer_add_tou_us",
        rounded(per_call_us(one, iterations=10_000 if quick else 20_000)),
        "us",
    )
