"""The history store's long-term side: rollups, the household calendar, the UI's views,
span totals, retention, checkpoints and schema upgrades, against real SQLite files.

The reference for every rollup is the per-minute ``usage`` table itself, summed in Python
through ``Calendar.buckets``; costs are integers and compare exactly, amounts are floats
added in a different order and compare to 1e-9.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import random
import sqlite3
import tempfile
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from ihd.clock import ManualClock
from ihd.diag import Diagnostics
from ihd.meter.reading import Reading, Utility
from ihd.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Batch,
    Calendar,
    MeterInfo,
    Store,
    Usage,
    migrate,
    minute_ms,
)
from ihd.store.calendar import DAY, HOUR, MONTH
from ihd.store.schema import ROLLUP_TABLES

E1 = "ACDE480000000001"
E2 = "ACDE480000000002"
G1 = "ACDE48000000000A"
W1 = "ACDE48000000000B"
LONDON = zoneinfo.ZoneInfo("Europe/London")


def local(*args: int, tz: str = "Europe/London") -> float:
    return dt.datetime(*args, tzinfo=zoneinfo.ZoneInfo(tz)).timestamp()  # type: ignore[misc]


def use(t: float, amount: float, meter: str = E1, cost: int = 0) -> Usage:
    utility = {E1: Utility.ELECTRICITY, E2: Utility.ELECTRICITY, G1: Utility.GAS}.get(
        meter, Utility.WATER
    )
    energy = None if utility is Utility.WATER else amount * (11 if utility is Utility.GAS else 1)
    return Usage(meter, utility, minute_ms(t), amount, energy, cost)


def rd(t: float, raw: int, meter: str = E1, quantity: str = "energy_import_wh") -> Reading:
    return Reading(meter, Utility.ELECTRICITY, quantity, raw, 0, t)


def open_store(path: Path, **kw: object) -> tuple[Store, Diagnostics]:
    diag = Diagnostics()
    kw.setdefault("commit_interval_s", 60.0)
    return Store(path, diag=diag, **kw), diag  # type: ignore[arg-type]


def table(db: Path, name: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        key = "minute_ms" if name == "usage" else "start_ms"
        return conn.execute(
            f"SELECT meter, {key}, utility, amount, energy_wh, cost_milli FROM {name} ORDER BY 1, 2"
        ).fetchall()


def expected_rollups(db: Path, tz: str) -> dict[str, dict[tuple[str, int], list[object]]]:
    """Each rollup as the sums of the stored minutes, bucketed by the calendar."""
    cal = Calendar(tz)
    out: dict[str, dict[tuple[str, int], list[object]]] = {t: {} for t in ROLLUP_TABLES}
    for meter, minute, utility, amount, energy, cost in table(db, "usage"):
        for name, start in zip(ROLLUP_TABLES, cal.buckets(int(minute)), strict=True):  # type: ignore[call-overload]
            acc = out[name].setdefault((str(meter), start), [utility, 0.0, None, 0])
            acc[1] += amount  # type: ignore[operator]
            if energy is not None:
                acc[2] = (acc[2] or 0.0) + energy  # type: ignore[operator]
            acc[3] += cost  # type: ignore[operator]
    return out


def assert_rollups_match(db: Path, tz: str = "Europe/London") -> None:
    want = expected_rollups(db, tz)
    for name in ROLLUP_TABLES:
        got = {(str(r[0]), int(r[1])): list(r[2:]) for r in table(db, name)}  # type: ignore[call-overload]
        assert got.keys() == want[name].keys(), name
        for key, (utility, amount, energy, cost) in want[name].items():
            g = got[key]
            assert g[0] == utility and g[3] == cost, (name, key, g)
            assert math.isclose(g[1], amount, rel_tol=1e-9, abs_tol=1e-9), (name, key)  # type: ignore[arg-type]
            if energy is None:
                assert g[2] is None
            else:
                assert math.isclose(g[2], energy, rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]


# ------------------------------------------------------------------ calendar


ZONES = [
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",  # +5:30, no DST
    "Asia/Kathmandu",  # +5:45
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Havana",  # DST at midnight: some days start at 01:00
    "Pacific/Chatham",  # +12:45/+13:45
]


def transitions(tz: str, years: range) -> list[int]:
    """The instants (ms) the UTC offset changes, found hour by hour."""
    zone = zoneinfo.ZoneInfo(tz)
    out = []
    t = int(dt.datetime(years.start, 1, 1, tzinfo=dt.UTC).timestamp())
    end = int(dt.datetime(years.stop, 1, 1, tzinfo=dt.UTC).timestamp())
    prev = dt.datetime.fromtimestamp(t, zone).utcoffset()
    while t < end:
        t += 3600
        off = dt.datetime.fromtimestamp(t, zone).utcoffset()
        if off != prev:
            out.append(t * 1000)
            prev = off
    return out


@pytest.mark.parametrize("tz", ZONES)
def test_calendar_buckets_nest_and_tile_time_across_every_offset_change(tz: str) -> None:
    cal = Calendar(tz)
    zone = zoneinfo.ZoneInfo(tz)
    changes = transitions(tz, range(2024, 2026))
    assert changes or tz in ("Asia/Kolkata", "Asia/Kathmandu")
    windows = [(c - 4 * 3600_000, c + 4 * 3600_000) for c in changes]
    windows.append(
        (
            int(local(2025, 1, 1, tz=tz) * 1000) - 7200_000,
            int(local(2025, 1, 1, tz=tz) * 1000) + 7200_000,
        )
    )
    for lo, hi in windows:
        lo -= lo % 60_000
        prev: tuple[int, int, int] | None = None
        for m in range(lo, hi, 60_000):
            b = cal.buckets(m)
            assert b[MONTH] <= b[DAY] <= b[HOUR] <= m
            for level in (HOUR, DAY, MONTH):
                assert cal.floor(b[level], level) == b[level]  # a bucket starts in itself
                assert cal.next_start(b[level], level) > m
            if prev is not None:
                for level in (HOUR, DAY, MONTH):
                    # a new bucket starts exactly at the first minute that is not in the old
                    assert b[level] == prev[level] or b[level] == m
                    if b[level] != prev[level]:
                        assert cal.next_start(prev[level], level) == m
            prev = b
            # the day is the local date of its midnight, and holds m
            d = dt.datetime.fromtimestamp(b[DAY] / 1000, zone).date()
            assert cal.day_ms(d) == b[DAY] and cal.local_date(m) == d


def test_local_days_have_23_24_or_25_hours_and_months_start_at_local_midnight() -> None:
    cal = Calendar("Europe/London")
    hours = {
        d: (cal.day_ms(d + dt.timedelta(days=1)) - cal.day_ms(d)) / 3_600_000
        for d in (dt.date(2025, 3, 30), dt.date(2025, 10, 26), dt.date(2025, 6, 1))
    }
    assert hours == {dt.date(2025, 3, 30): 23, dt.date(2025, 10, 26): 25, dt.date(2025, 6, 1): 24}
    assert cal.month_ms(2025, 7) == local(2025, 7, 1) * 1000  # BST: 23:00 UTC the day before
    assert cal.buckets(int(local(2025, 7, 1) * 1000) - 60_000)[MONTH] == cal.month_ms(2025, 6)
    with pytest.raises(ValueError, match="unknown timezone"):
        Calendar("Mars/Olympus_Mons")


# ------------------------------------------------------------------ rollups


def test_rollups_follow_local_days_across_dst_and_equal_the_minutes(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    store, _ = open_store(db)
    # Every 10 minutes from 29 March to 1 April 2025 (spring forward on the 30th), two
    # electricity meters, gas and water; half through write_now, half through the writer.
    t, k = local(2025, 3, 29), 0
    first, second = [], []
    while t < local(2025, 4, 1, 12):
        rows = [use(t, 1.5, E1, 37), use(t, 0.25, E2, 5)]
        if k % 3 == 0:
            rows += [use(t, 0.125, G1, 11), use(t, 2.0, W1, 3)]
        (first if k % 2 else second).extend(rows)
        t += 600
        k += 1
    store.write_now(Batch(usage=first))
    store.start()
    for i in range(0, len(second), 7):  # many small batches in one commit
        store.submit(Batch(usage=second[i : i + 7]))
    assert store.flush()
    store.close()
    assert_rollups_match(db)
    days = [(r[1], r[5]) for r in table(db, "usage_day") if r[0] == E1]
    starts = [local(2025, 3, d) * 1000 for d in (29, 30, 31)] + [local(2025, 4, 1) * 1000]
    assert [s for s, _ in days] == starts
    # 144 ten-minute slots a day, 138 on the 23-hour day; half of the last day
    assert [c // 37 for _, c in days] == [144, 138, 144, 72]
    months = [r[1] for r in table(db, "usage_month") if r[0] == E1]
    assert months == [local(2025, 3, 1) * 1000, local(2025, 4, 1) * 1000]


def test_a_rejected_batch_leaves_no_rollup_behind(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    store, diag = open_store(db)
    store.start()
    t = local(2025, 5, 1, 12)
    store.submit(Batch(usage=[use(t, 1.0, cost=10)]))
    store.submit(Batch(usage=[use(t + 60, 2.0, cost=20), use(t + 120, math.nan)]))
    store.submit(Batch(usage=[use(t + 3600, 4.0, cost=40)]))
    assert store.flush()
    store.close()
    assert diag.counter("store.rejected_batches") == 1
    assert [r[5] for r in table(db, "usage_day")] == [50]
    assert_rollups_match(db)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 70 * 24 * 60 - 1),  # minute within 70 days around two DST changes
            st.sampled_from([E1, E2, G1, W1]),
            st.integers(0, 4000),
            st.integers(0, 90_000),
        ),
        max_size=80,
    ),
    spans=st.lists(
        st.tuples(st.floats(-3 * 86400, 73 * 86400), st.floats(0, 80 * 86400)), max_size=6
    ),
    tz=st.sampled_from(["Europe/London", "Asia/Kolkata", "Australia/Lord_Howe"]),
)
def test_any_span_total_from_rollups_equals_summing_the_minutes(
    rows: list[tuple[int, str, int, int]], spans: list[tuple[float, float]], tz: str
) -> None:
    base = local(2025, 9, 1, tz=tz)
    usage = [use(base + m * 60, a / 8, meter, c) for m, meter, a, c in rows]
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "ihd.db"
        store, _ = open_store(db, tz=tz)
        store.write_now(Batch(usage=usage))
        assert_rollups_match(db, tz)
        with store.reader() as r:
            assert r.timezone == tz
            for offset, length in spans:
                t0, t1 = base + offset, base + offset + length
                for utility in Utility:
                    minutes = [
                        u
                        for u in usage
                        if u.utility is utility and t0 * 1000 <= u.minute_ms < t1 * 1000
                    ]
                    got = r.usage_total(utility, t0, t1)
                    assert got.cost_milli == sum(u.cost_milli for u in minutes)
                    assert r.cost_between(t0, t1, utility) == got.cost_milli
                    assert got.amount == sum(u.amount for u in minutes)  # eighths: exact
                    energies = [u.energy_wh for u in minutes if u.energy_wh is not None]
                    assert got.energy_wh == (sum(energies) if energies else None)
                    one = r.usage_total(utility, t0, t1, meter=E1)
                    assert one.cost_milli == sum(u.cost_milli for u in minutes if u.meter == E1)
        store.close()


def test_views_year_month_and_day_in_local_time(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    store, _ = open_store(db)
    usage = []
    t = local(2025, 1, 1)
    while t < local(2026, 1, 1):  # a year of one row an hour, 1 Wh costing 10 milli
        usage.append(use(t, 1.0, cost=10))
        t += 3600
    usage.append(use(local(2025, 10, 26, 1, 30) + 3600, 5.0, E2, cost=1))  # 01:30 GMT
    store.write_now(Batch(usage=usage))
    with store.reader() as r:
        year = r.year_view(Utility.ELECTRICITY, 2025)
        assert [p.start for p in year] == [local(2025, m, 1) for m in range(1, 13)]
        assert year[-1].end == local(2026, 1, 1)
        hours = [round((p.end - p.start) / 3600) for p in year]
        assert [p.cost_milli for p in year] == [h * 10 + (m == 9) for m, h in enumerate(hours)]
        assert sum(p.amount for p in year) == 8760 + 5
        assert r.year_view(Utility.GAS, 2025) == [
            (p.start, p.end, 0.0, None, 0) for p in year
        ]  # empty months are there, with nothing in them

        march = r.month_view(Utility.ELECTRICITY, 2025, 3)
        assert len(march) == 31
        assert [p.cost_milli for p in march][28:] == [240, 230, 240]  # the 30th: 23 hours
        october = r.month_view(Utility.ELECTRICITY, 2025, 10)
        assert october[25].cost_milli == 251 and october[25].end - october[25].start == 25 * 3600
        assert r.month_view(Utility.ELECTRICITY, 2025, 12)[-1].end == local(2026, 1, 1)
        assert len(r.month_view(Utility.ELECTRICITY, 2024, 2)) == 29

        day = r.day_view(Utility.ELECTRICITY, dt.date(2025, 6, 1))
        assert len(day) == 48 and day[0].start == local(2025, 6, 1)
        assert [p.cost_milli for p in day[:4]] == [10, 0, 10, 0]
        assert [p.energy_wh for p in day[:2]] == [1.0, None]
        assert len(r.day_view(Utility.ELECTRICITY, dt.date(2025, 3, 30))) == 46
        autumn = r.day_view(Utility.ELECTRICITY, dt.date(2025, 10, 26))
        assert len(autumn) == 50
        # 01:00 BST, 01:30 BST, 01:00 GMT, 01:30 GMT (E2's row), 02:00 GMT
        assert [p.amount for p in autumn[2:7]] == [1.0, 0.0, 1.0, 5.0, 1.0]
        assert r.day_view(Utility.ELECTRICITY, dt.date(2025, 10, 26), meter=E2)[5].amount == 5

        week = r.periods(Utility.ELECTRICITY, "hour", local(2025, 6, 2), local(2025, 6, 9))
        assert len(week) == 168 and {p.cost_milli for p in week} == {10}
        days = r.periods(Utility.ELECTRICITY, "day", local(2025, 1, 1), local(2026, 1, 1))
        assert len(days) == 365 and sum(p.cost_milli for p in days) == 87_601
        with pytest.raises(ValueError):
            r.periods(Utility.ELECTRICITY, "minute", 0, 1)
    store.close()


def test_usage_intervals_are_what_the_tariff_engine_prices(tmp_path: Path) -> None:
    from ihd.config import Config
    from ihd.tariff import cost_of_span, tariffs_from_config

    db = tmp_path / "ihd.db"
    store, _ = open_store(db)
    t = local(2025, 2, 3, 18)
    store.write_now(
        Batch(usage=[use(t, 100.0, E1), use(t, 50.0, E2), use(t + 60, 30.0), use(t, 0.01, G1)])
    )
    with store.reader() as r:
        rows = list(r.usage_intervals(Utility.ELECTRICITY, t, t + 3600))
        assert rows == [(t, t + 60, 150.0), (t + 60, t + 120, 30.0)]
        assert list(r.usage_intervals(Utility.GAS, t, t + 60)) == [(t, t + 60, 0.11)]
        assert list(r.usage_intervals(Utility.GAS, t, t + 60, unit="m3")) == [(t, t + 60, 0.01)]
        tariff = tariffs_from_config(Config())[Utility.ELECTRICITY]
        span = cost_of_span(tariff, r.usage_intervals(Utility.ELECTRICITY, t, t + 3600))
        assert span.import_amount == 180
    store.close()


# ------------------------------------------------------------------ timezone


def test_a_new_timezone_rebuilds_the_rollups_once(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    store, _ = open_store(db)  # default: Europe/London
    t = local(2025, 7, 1, 0, 30)  # 23:30 UTC on 30 June: July in London, June in UTC
    store.write_now(Batch(usage=[use(t, 1.0, cost=7)]))
    store.close()
    assert [r[1] for r in table(db, "usage_month")] == [local(2025, 7, 1) * 1000]

    store, diag = open_store(db)  # no tz given: keep the database's
    assert store.timezone == "Europe/London" and diag.counter("store.rollup_rebuilds") == 0
    store.close()
    store, diag = open_store(db, tz="UTC")
    assert diag.counter("store.rollup_rebuilds") == 1 and diag.state("store.timezone") == "UTC"
    with store.reader() as r:
        assert r.timezone == "UTC"
        assert r.year_view(Utility.ELECTRICITY, 2025)[5].cost_milli == 7  # June now
    store.close()
    assert [r[1] for r in table(db, "usage_month")] == [
        dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp() * 1000
    ]
    assert_rollups_match(db, "UTC")
    store, diag = open_store(db, tz="UTC")
    assert diag.counter("store.rollup_rebuilds") == 0
    store.close()
    with pytest.raises(Exception, match="unknown timezone"):
        open_store(db, tz="Nowhere/Atlantis")


# ------------------------------------------------------------------ retention


def test_old_readings_are_pruned_in_small_batches_and_rollups_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    now = local(2026, 3, 15, 12)
    clock = ManualClock(now)
    store, diag = open_store(
        db, clock=clock, commit_interval_s=0.05, prune_batch_rows=500, retention_months=13
    )
    start = local(2024, 12, 1)  # 15.5 months back
    readings, usage = [], []
    t = start
    while t <= now:
        readings += [rd(t, int(t)), rd(t, 5, quantity="power_import_w")]
        usage.append(use(t, 1.0, cost=3))
        t += 3600
    readings.append(rd(local(2024, 1, 1), 1, meter=E2))  # a meter that went silent long ago
    store.write_now(Batch(readings=readings, usage=usage))
    cutoff = local(2025, 2, 15)  # local midnight, 13 calendar months before today
    old = sum(1 for r in readings if r.timestamp < cutoff and r.meter == E1)
    assert old == 2 * 24 * (31 + 31 + 14)
    before = {name: table(db, name) for name in ("usage", *ROLLUP_TABLES)}

    # While the writer runs, each commit deletes at most prune_batch_rows in its own
    # transaction; nothing is pruned without a commit.
    store.start()
    commits = 0
    while diag.counter("store.pruned_readings") < old:
        t += 10
        store.submit(Batch(readings=[rd(t, int(t))]))
        assert store.flush()
        commits += 1
        assert commits < 100
    assert commits == math.ceil(old / 500)
    assert diag.counter("store.pruned_readings") == old
    store.submit(Batch(readings=[rd(t + 10, int(t + 10))]))
    assert store.flush()
    assert diag.counter("store.pruned_readings") == old  # nothing more: done until tomorrow
    with store.reader() as r:
        span = r.span()
        assert span is not None and span[0] == local(2024, 1, 1)  # E2's last reading stays
        assert r.last_reading(E2, "energy_import_wh") is not None
        left = list(r.readings(0, now + 86400, meter=E1))
        assert min(x.timestamp for x in left) == cutoff
    store.close()
    for name, rows in before.items():
        assert table(db, name) == rows  # rollups (and minutes) are never pruned


def test_a_clock_far_ahead_prunes_nothing_and_prune_can_be_called(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    clock = ManualClock(local(2040, 1, 1))  # no RTC, no NTP: nonsense
    store, diag = open_store(db, clock=clock, retention_months=1, prune_batch_rows=0)
    store.write_now(Batch(readings=[rd(local(2025, 1, 1) + 60 * i, i) for i in range(100)]))
    assert store.prune() == 0  # the cutoff follows the newest reading, not the clock alone
    store.write_now(Batch(readings=[rd(local(2025, 3, 1), 1000)]))
    assert store.prune(max_rows=30) == 30
    assert store.prune(max_rows=1000) == 70
    assert store.prune() == 0
    assert diag.counter("store.pruned_readings") == 100
    store.close()
    store, _ = open_store(db, retention_months=None)
    assert store.prune() == 0
    store.close()
    with pytest.raises(ValueError):
        open_store(db, retention_months=0)


# ------------------------------------------------------------------ checkpoints


def test_the_writer_checkpoints_every_n_commits_and_sqlite_does_not(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    store, diag = open_store(db, checkpoint_every=5)
    with contextlib.closing(store.reader()) as r:
        r.counts()
    store.start()
    for i in range(23):
        store.submit(Batch(readings=[rd(local(2025, 1, 1) + i, i)]))
        assert store.flush()
    assert diag.counter("store.commits") == 23
    assert diag.counter("store.checkpoints") == 4
    assert isinstance(diag.state("store.checkpoint_ms_last"), float)
    # SQLite's automatic checkpoint is off on the write connection: the WAL holds the
    # three commits since the last checkpoint.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and frames >= 3
    store.close()

    # Bulk writes checkpoint by size too.
    store, diag = open_store(tmp_path / "bulk.db", checkpoint_every=1000)
    for day in range(3):
        store.write_now(Batch(readings=[rd(local(2025, 1, 1 + day) + i, i) for i in range(25_000)]))
    assert diag.counter("store.checkpoints") == 3
    store.close()


# ------------------------------------------------------------------ migrations


def _v1_data(conn: sqlite3.Connection) -> None:
    """What a v1 database held: raw readings, per-minute usage, meters, state."""
    t = int(local(2025, 3, 29, 22) * 1000)
    conn.executemany(
        "INSERT INTO readings VALUES (?, ?, ?, ?, ?)",
        [(E1, "energy_import_wh", t + i * 10_000, 1000 + i, 0) for i in range(3 * 360)],
    )
    conn.executemany(
        "INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?)",
        [(E1, t + i * 60_000, "electricity", 6.0, 6.0, 147) for i in range(3 * 60)]
        + [(W1, t + i * 60_000, "water", 0.5, None, 2) for i in range(0, 180, 30)],
    )
    conn.execute("INSERT INTO meters VALUES (?, 'electricity', 'Electricity', ?, ?)", (E1, t, t))
    conn.execute("INSERT INTO state VALUES ('smwap.fc.x', '41', ?)", (t,))


#: For each old schema version: what a database of that version holds.
OLD_VERSION_DATA: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_data}


def test_every_old_version_has_upgrade_data() -> None:
    assert set(OLD_VERSION_DATA) == set(range(1, SCHEMA_VERSION))


@pytest.mark.parametrize("version", sorted(OLD_VERSION_DATA))
def test_a_database_of_each_older_version_upgrades_with_its_data(
    tmp_path: Path, version: int
) -> None:
    db = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        assert migrate(Database(conn), MIGRATIONS[:version]) == version
        conn.execute("BEGIN")
        for v in range(1, version + 1):
            OLD_VERSION_DATA[v](conn)
        conn.execute("COMMIT")
    old = {name: table(db, name) for name in ("usage",)}
    with contextlib.closing(sqlite3.connect(db)) as conn:
        old_readings = conn.execute("SELECT * FROM readings ORDER BY 1, 2, 3").fetchall()

    store, diag = open_store(db)
    assert diag.state("store.schema_version") == SCHEMA_VERSION
    with store.reader() as r:
        assert r.get_state("smwap.fc.x") == "41"
        assert r.meters()[0].label == "Electricity"
        total = r.usage_total(Utility.ELECTRICITY, 0, 2e9)
        assert total == (3 * 60 * 6.0, 3 * 60 * 6.0, 3 * 60 * 147)
        assert len(r.day_view(Utility.ELECTRICITY, dt.date(2025, 3, 30))) == 46
    store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT * FROM readings ORDER BY 1, 2, 3").fetchall() == old_readings
    assert {name: table(db, name) for name in old} == old
    assert_rollups_match(db)
    # 22:00 GMT on the 29th to 01:00 on the 30th: two days, across the spring change
    assert [r[1] for r in table(db, "usage_day") if r[0] == E1] == [
        local(2025, 3, 29) * 1000,
        local(2025, 3, 30) * 1000,
    ]


def test_an_upgrade_killed_midway_leaves_the_last_complete_version(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        migrate(Database(conn), MIGRATIONS[:1])
        _v1_data(conn)

    def boom(d: Database) -> None:
        MIGRATIONS[1](d)
        raise RuntimeError("power cut")

    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        with pytest.raises(Exception, match="power cut"):
            migrate(Database(conn), [MIGRATIONS[0], boom])
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert not names & set(ROLLUP_TABLES)
    store, _ = open_store(db)
    store.close()
    assert_rollups_match(db)


def test_a_reader_of_a_database_without_rollups_answers_from_the_minutes(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        migrate(Database(conn), MIGRATIONS[:1])
        _v1_data(conn)
    from ihd.store import StoreReader

    with StoreReader(db) as r:
        assert r.usage_total(Utility.ELECTRICITY, 0, 2e9).cost_milli == 3 * 60 * 147
        assert sum(p.cost_milli for p in r.month_view(Utility.ELECTRICITY, 2025, 3)) == 26_460
        assert "usage_hour" not in r.counts()


# ------------------------------------------------------------------ many meters


def test_meters_of_one_utility_add_up_and_stay_apart(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    store, _ = open_store(db)
    rng = random.Random(5)
    usage = [
        use(
            local(2025, 8, 1) + rng.randrange(0, 40 * 86400),
            rng.randrange(1, 100),
            m,
            rng.randrange(1000),
        )
        for m in (E1, E2, G1)
        for _ in range(400)
    ]
    store.write_now(Batch(usage=usage, meters=[MeterInfo(E1, Utility.ELECTRICITY, "a", 0)]))
    with store.reader() as r:
        both = r.usage_total(Utility.ELECTRICITY, local(2025, 8, 1), local(2025, 10, 1))
        one = r.usage_total(Utility.ELECTRICITY, local(2025, 8, 1), local(2025, 10, 1), meter=E1)
        two = r.usage_total(Utility.ELECTRICITY, local(2025, 8, 1), local(2025, 10, 1), meter=E2)
        assert both.cost_milli == one.cost_milli + two.cost_milli
        by_meter: dict[str, int] = defaultdict(int)
        for u in usage:
            by_meter[u.meter] += u.cost_milli
        assert (one.cost_milli, two.cost_milli) == (by_meter[E1], by_meter[E2])
        assert r.usage_total(Utility.GAS, 0, 2e9).cost_milli == by_meter[G1]
    store.close()
    assert_rollups_match(db)
