"""The history store: seeding, the insert paths, and the UI's queries on a year of data.

* Seeding the demo's 30 days (and, not with ``--quick``, a whole year): the same steps as
  the demo's first start (``ihd.app.runner.build_pipeline``): a new ``Store`` on an empty
  temporary directory, an ``Ingest`` resumed from it, then ``seed_history`` up to a fixed
  instant. Timed from the store's creation (schema and migrations included) to the end of
  ``seed_history``; that includes computing the simulated registers. The size is that of
  the database file after ``Store.close()`` (which checkpoints the WAL), plus any WAL left.
* The raw insert path: ``Store.write_now`` of prebuilt ``Reading`` objects, 100,000 a
  transaction: the conversion to rows, ``executemany`` into the ``WITHOUT ROWID`` table and
  the commit.
* Full ingest: a day of the demo's pushes (prebuilt, so the simulator is not timed) through
  ``Ingest.accept`` (register deltas, pricing, the pricers' state) and ``Store.submit``;
  the writer thread commits them with the minute, hour, day and month rollups.
* A year of 10 s electricity data (3.15 M readings, one register) plus half-hourly gas and
  water, with the usage minutes a meter's deltas give, written a day per transaction, then
  the UI's views read back from the rollups (median of 30 calls, one reader).
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchlib import Figure, rounded

START = 1_790_000_000.0  # a fixed instant, so that every run seeds the same history
DAYS = 30
YEAR = 2025
E1, G1, W1 = "ACDE480000000001", "ACDE48000000000A", "ACDE48000000000B"


def _median_ms(fn: Callable[[], object], n: int = 30) -> float:
    fn()  # the first call opens pages; the UI asks again and again
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _size_mb(tmp: Path, name: str) -> float:
    return sum(p.stat().st_size for p in tmp.glob(name + "*")) / 2**20


def _seed(tmp: Path, days: int) -> tuple[float, float, int]:
    from ihd.app.ingest import Ingest
    from ihd.app.seed import seed_history
    from ihd.config import Config
    from ihd.diag import Diagnostics
    from ihd.sim.world import demo_world
    from ihd.smwap.receiver import Receiver
    from ihd.store import Store
    from ihd.tariff import tariffs_from_config

    cfg = Config()
    name = f"seed{days}.sqlite"
    world = demo_world(seed=1, start=START, tz=cfg.timezone)
    diag = Diagnostics()
    t0 = time.perf_counter()
    store = Store(
        tmp / name, diag=diag, tz=cfg.timezone, commit_interval_s=cfg["store.commit_interval_s"]
    )
    ingest = Ingest(
        meters=world.devices(),
        tariffs=tariffs_from_config(cfg),
        tz=cfg.timezone,
        diag=diag,
        gas_cv_mj_m3=cfg["tariff.gas.calorific_value_mj_m3"],
        receiver=Receiver(keys=world.key_table()),
    )
    with store.reader() as reader:
        ingest.resume(reader, START)
    n = seed_history(world, store, ingest, start=START - days * 86400, end=START)
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed, _size_mb(tmp, name), n


def _raw_insert(tmp: Path, rows: int) -> float:
    from ihd.diag import Diagnostics
    from ihd.meter.reading import Reading, Utility
    from ihd.store import Batch, Store

    chunk = 100_000
    batches = []
    for c in range(0, rows, chunk):
        readings = []
        for i in range(c, min(rows, c + chunk)):
            t = START + 10 * i
            readings.append(Reading(E1, Utility.ELECTRICITY, "energy_import_wh", i, 0, t))
        batches.append(Batch(readings=readings))
    store = Store(tmp / "raw.sqlite", diag=Diagnostics(), retention_months=None)
    t0 = time.perf_counter()
    for batch in batches:
        store.write_now(batch)
    elapsed = time.perf_counter() - t0
    store.close()
    return rows / elapsed


def _full_ingest(tmp: Path) -> float:
    import heapq

    from ihd.app.ingest import Ingest
    from ihd.config import Config
    from ihd.diag import Diagnostics
    from ihd.sim.world import demo_world
    from ihd.store import Store
    from ihd.tariff import tariffs_from_config

    cfg = Config()
    world = demo_world(seed=2, start=START, tz=cfg.timezone)
    streams = [
        [(t, i) for t in m.push_times(START, START + 86400)] for i, m in enumerate(world.meters)
    ]
    pushes = [(t, i, world.meters[i].readings(t)) for t, i in heapq.merge(*streams)]
    readings = sum(len(r) for _, _, r in pushes)
    diag = Diagnostics()
    store = Store(tmp / "ingest.sqlite", diag=diag, tz=cfg.timezone, commit_interval_s=0.5)
    ingest = Ingest(
        meters=world.devices(), tariffs=tariffs_from_config(cfg), tz=cfg.timezone, diag=diag
    )
    store.start()
    t0 = time.perf_counter()
    for t, i, r in pushes:
        store.submit(ingest.accept(world.meters[i].device, r, seen_at=t))
    assert store.flush(timeout=120)
    elapsed = time.perf_counter() - t0
    store.close()
    return readings / elapsed


def _year_db(tmp: Path) -> tuple[Path, float, int]:
    """A year of 10 s electricity registers, half-hourly gas and water, their usage."""
    from ihd.diag import Diagnostics
    from ihd.meter.reading import Reading, Utility
    from ihd.store import Batch, Store, Usage

    db = tmp / "year.sqlite"
    store = Store(db, diag=Diagnostics(), tz="Europe/London", retention_months=None)
    start = dt.datetime(YEAR, 1, 1, tzinfo=dt.UTC).timestamp()
    elec, n, spent = 0, 0, 0.0
    for day in range(365):
        base = start + day * 86400
        readings, usage = [], []
        for minute in range(1440):
            wh = 0
            for s in range(6):
                step = 1 + (minute * 6 + s) % 7  # 150-600 W
                elec += step
                wh += step
                t = base + 60 * minute + 10 * s
                readings.append(Reading(E1, Utility.ELECTRICITY, "energy_import_wh", elec, 0, t))
            usage.append(
                Usage(E1, Utility.ELECTRICITY, round((base + 60 * minute) * 1000), wh, wh, wh * 245)
            )
        for h in range(48):
            t = base + 1800 * h
            readings.append(Reading(G1, Utility.GAS, "volume_m3", 48 * day + h, -3, t))
            readings.append(Reading(W1, Utility.WATER, "volume_m3", 96 * day + 2 * h, -3, t))
            usage.append(Usage(G1, Utility.GAS, round(t * 1000), 0.001, 11.2, 67))
            usage.append(Usage(W1, Utility.WATER, round(t * 1000), 0.002, None, 4))
        batch = Batch(readings=readings, usage=usage)
        n += len(readings)
        t0 = time.perf_counter()
        store.write_now(batch)
        spent += time.perf_counter() - t0
    store.close()
    return db, spent, n


def run(quick: bool) -> Iterator[Figure]:
    from ihd.meter.reading import Utility
    from ihd.store import StoreReader

    tmp = Path(tempfile.mkdtemp(prefix="ihd-bench-store-"))
    try:
        elapsed, size, _ = _seed(tmp, DAYS)
        yield Figure("store.seed_30_days_s", rounded(elapsed), "s")
        yield Figure("store.db_size_mb_30_days", rounded(size), "MB")

        yield Figure(
            "store.raw_insert_rows_per_s",
            rounded(_raw_insert(tmp, 300_000 if quick else 1_000_000)),
            "rows/s",
        )
        yield Figure("store.ingest_readings_per_s", rounded(_full_ingest(tmp)), "readings/s")

        db, spent, _ = _year_db(tmp)
        yield Figure("store.year_write_s", rounded(spent), "s")
        yield Figure("store.db_size_mb_year", rounded(_size_mb(tmp, "year.sqlite")), "MB")
        e = Utility.ELECTRICITY
        with StoreReader(db) as r:
            views = {
                "year_view": lambda: r.year_view(e, YEAR),
                "month_view": lambda: r.month_view(e, YEAR, 7),
                "day_view": lambda: r.day_view(e, dt.date(YEAR, 7, 14)),
                # 17 Jan 13:37 to 27 Oct 08:11: months, days, hours and minutes
                "span_total": lambda: r.cost_between(
                    dt.datetime(YEAR, 1, 17, 13, 37).timestamp(),
                    dt.datetime(YEAR, 10, 27, 8, 11).timestamp(),
                    e,
                ),
            }
            for name, fn in views.items():
                yield Figure(f"store.{name}_ms", rounded(_median_ms(fn)), "ms")
        (tmp / "year.sqlite").unlink()

        if not quick:
            elapsed, size, _ = _seed(tmp, 365)
            yield Figure("store.backfill_year_s", rounded(elapsed), "s")
            yield Figure("store.db_size_mb_backfill_year", rounded(size), "MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
