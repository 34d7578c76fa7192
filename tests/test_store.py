"""ihd.store against real SQLite files: no mocks, real failures.

"Disk full" is a real SQLITE_FULL from ``PRAGMA max_page_count``; "read-only" is a real
0444 file opened by an unprivileged user (the test drops to ``nobody`` with seteuid when
it runs as root, since root ignores file modes).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from ihd.diag import Diagnostics
from ihd.meter.reading import Reading, Utility
from ihd.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Batch,
    MeterInfo,
    Store,
    StoreError,
    Usage,
    migrate,
    minute_ms,
)

E1 = "ACDE480000000001"
E2 = "ACDE480000000002"
G1 = "ACDE48000000000A"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def rd(t: float, raw: int, meter: str = E1, quantity: str = "energy_import_wh") -> Reading:
    return Reading(meter, Utility.ELECTRICITY, quantity, raw, 0, t)


def use(
    t: float,
    amount: float,
    meter: str = E1,
    utility: Utility = Utility.ELECTRICITY,
    energy_wh: float | None = -1.0,
    cost_milli: int = 0,
) -> Usage:
    energy = amount if energy_wh == -1.0 else energy_wh
    return Usage(meter, utility, minute_ms(t), amount, energy, cost_milli)


def open_store(path: Path, **kw: object) -> tuple[Store, Diagnostics]:
    diag = Diagnostics()
    kw.setdefault("commit_interval_s", 60.0)
    return Store(path, diag=diag, **kw), diag  # type: ignore[arg-type]


def raw_pragma(path: Path, name: str) -> object:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def reading_count(store: Store) -> int:
    with store.reader() as r:
        return r.counts()["readings"]


# ------------------------------------------------------------------- schema


def test_new_database_gets_the_schema_and_reopening_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ihd.db"  # parent directory is created
    store, diag = open_store(path)
    store.close()
    assert raw_pragma(path, "user_version") == SCHEMA_VERSION == len(MIGRATIONS)
    assert diag.state("store.schema_version") == SCHEMA_VERSION
    tables = set(Database(path).table_names())
    assert {"meters", "readings", "usage", "state"} <= tables

    for _ in range(2):
        store, diag = open_store(path)
        store.close()
        assert raw_pragma(path, "user_version") == SCHEMA_VERSION
    assert set(Database(path).table_names()) == tables


def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "ihd.db"
    open_store(path)[0].close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 9")
    with pytest.raises(
        StoreError, match=rf"^database schema v9 is newer than this ihd \(v{SCHEMA_VERSION}\)$"
    ):
        open_store(path)
    assert raw_pragma(path, "user_version") == 9  # untouched


def test_migrations_apply_in_order_each_once_and_a_failure_rolls_back(tmp_path: Path) -> None:
    db = Database(sqlite3.connect(tmp_path / "m.db", isolation_level=None))
    applied: list[str] = []

    def step(name: str):  # type: ignore[no-untyped-def]
        def run(d: Database) -> None:
            applied.append(name)
            d.execute(f"CREATE TABLE {name} (x INTEGER)")

        return run

    assert migrate(db, [step("a"), step("b"), step("c")]) == 3
    assert applied == ["a", "b", "c"]
    assert migrate(db, [step("a"), step("b"), step("c")]) == 3
    assert applied == ["a", "b", "c"]  # nothing re-run

    def broken(d: Database) -> None:
        d.execute("CREATE TABLE half (x INTEGER)")
        d.execute("THIS IS NOT SQL")

    with pytest.raises(StoreError, match="migration to schema v5 failed"):
        migrate(db, [step("a"), step("b"), step("c"), step("d"), broken])
    assert applied[-1] == "d"  # v4 committed before v5 failed
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    assert "d" in db.table_names() and "half" not in db.table_names()

    with pytest.raises(StoreError, match="v4 is newer than this ihd \\(v3\\)"):
        migrate(db, [step("a"), step("b"), step("c")])


def test_a_foreign_sqlite_file_is_not_taken_over(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("PRAGMA application_id = 1234")
    with pytest.raises(StoreError, match="belongs to another application"):
        open_store(other)

    clash = tmp_path / "clash.db"
    with contextlib.closing(sqlite3.connect(clash)) as conn:
        conn.execute("CREATE TABLE meters (id INTEGER)")
    with pytest.raises(StoreError, match="migration to schema v1 failed: table meters already"):
        open_store(clash)
    assert raw_pragma(clash, "user_version") == 0


def test_wal_and_synchronous_normal_are_really_set(tmp_path: Path) -> None:
    path = tmp_path / "ihd.db"
    store, diag = open_store(path)
    try:
        assert raw_pragma(path, "journal_mode") == "wal"  # persistent, in the file
        # Per-connection pragmas, read back from the write connection itself at open.
        assert diag.state("store.journal_mode") == "wal"
        assert diag.state("store.synchronous") == "normal"
        assert diag.state("store.busy_timeout_ms") == 5000
    finally:
        store.close()


def test_corrupt_or_unopenable_files_give_a_clear_store_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database, just some bytes\n" * 100)
    with pytest.raises(StoreError, match=r"junk\.db is not an SQLite database"):
        open_store(junk)
    assert junk.read_bytes().startswith(b"this is not")  # left alone

    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    with pytest.raises(StoreError, match=r"cannot open .*a_dir.*unable to open database file"):
        open_store(a_dir)


# ----------------------------------------------------------------- writing


def test_duplicate_readings_are_ignored(tmp_path: Path) -> None:
    store, diag = open_store(tmp_path / "ihd.db")
    batch = Batch(readings=[rd(T0, 100), rd(T0 + 10, 110)])
    assert store.write_now(batch) == 2
    assert store.write_now(batch) == 0
    store.start()
    store.submit(batch)
    store.submit(Batch(readings=[rd(T0 + 10, 999), rd(T0 + 20, 120)]))  # same key: first wins
    assert store.flush()
    with store.reader() as r:
        assert r.counts()["readings"] == 3
        assert r.last_reading(E1, "energy_import_wh") == (T0 + 20, 120, 0)
    assert diag.counter("store.duplicate_readings") == 5
    store.close()


def test_usage_rows_for_the_same_minute_add_up(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path / "ihd.db")
    store.write_now(
        Batch(usage=[use(T0 + 1, 2.5, cost_milli=100), use(T0 + 30, 1.5, cost_milli=60)])
    )
    store.start()
    store.submit(Batch(usage=[use(T0 + 59, 1.0, cost_milli=40), use(T0 + 60, 7.0, cost_milli=1)]))
    store.submit(
        Batch(
            usage=[
                use(T0, 0.5, meter=G1, utility=Utility.WATER, energy_wh=None),
                use(T0, 0.25, meter=G1, utility=Utility.WATER, energy_wh=None),
            ]
        )
    )
    assert store.flush()
    with store.reader() as r:
        assert r.usage_total(Utility.ELECTRICITY, T0, T0 + 60) == (5.0, 5.0, 200)
        assert r.usage_total(Utility.ELECTRICITY, T0, T0 + 120) == (12.0, 12.0, 201)
        assert r.usage_total(Utility.WATER, T0, T0 + 60) == (0.75, None, 0)
        assert r.usage_total(Utility.GAS, T0, T0 + 60) == (0.0, None, 0)
        assert r.counts()["usage"] == 3
        assert r.usage_series(Utility.ELECTRICITY, T0, T0 + 3600, 60) == [
            (T0, 5.0, 5.0, 200),
            (T0 + 60, 7.0, 7.0, 1),
        ]
    store.close()


def test_meters_keep_first_seen_and_advance_last_seen(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path / "ihd.db")
    store.write_now(Batch(meters=[MeterInfo(E1, Utility.ELECTRICITY, "Electricity", 2000)]))
    store.write_now(
        Batch(
            meters=[
                MeterInfo(E1, Utility.ELECTRICITY, None, 5000),
                MeterInfo(G1, Utility.GAS, "Gas", 3000),
            ]
        )
    )
    store.write_now(Batch(meters=[MeterInfo(E1, Utility.ELECTRICITY, None, 4000)]))  # late
    with store.reader() as r:
        assert r.meters() == [
            MeterInfo(E1, Utility.ELECTRICITY, "Electricity", 5000, 2000),
            MeterInfo(G1, Utility.GAS, "Gas", 3000, 3000),
        ]
    store.close()


def test_batches_from_many_threads_all_land(tmp_path: Path) -> None:
    store, diag = open_store(tmp_path / "ihd.db", commit_interval_s=0.05)
    store.start()
    threads_n, per_thread = 8, 250

    def produce(k: int) -> None:
        meter = f"ACDE4800000001{k:02X}"
        for i in range(per_thread):
            store.submit(
                Batch(
                    readings=[rd(T0 + i, i, meter=meter)],
                    usage=[use(T0 + i, 1.0, meter=meter)],
                    state={f"smwap.fc.{meter}": str(i)},
                )
            )

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.flush()
    with store.reader() as r:
        assert r.counts()["readings"] == threads_n * per_thread
        assert r.usage_total(Utility.ELECTRICITY, T0, T0 + per_thread) == (
            threads_n * per_thread,
            threads_n * per_thread,
            0,
        )
        assert r.states("smwap.fc.") == {
            f"smwap.fc.ACDE4800000001{k:02X}": str(per_thread - 1) for k in range(threads_n)
        }
    assert diag.counter("store.write_errors") == 0
    store.close()


def test_commits_are_bounded_by_the_interval_not_the_push_rate(tmp_path: Path) -> None:
    store, diag = open_store(tmp_path / "ihd.db", commit_interval_s=0.5)
    store.start()
    t_start = time.monotonic()
    for i in range(1000):
        store.submit(Batch(readings=[rd(T0 + i, i)], state={"k": str(i)}))
        if i % 100 == 99:
            time.sleep(0.12)  # ~1.2 s of pushing
    elapsed = time.monotonic() - t_start
    time.sleep(0.6)  # let one more interval pass
    commits = diag.counter("store.commits")
    assert 1 <= commits <= elapsed / 0.5 + 2
    assert store.flush()
    assert reading_count(store) == 1000
    assert diag.counter("store.commits") <= commits + 1
    assert isinstance(diag.state("store.commit_ms_last"), float)
    store.close()


def test_submitting_before_start_and_close_writes_everything(tmp_path: Path) -> None:
    path = tmp_path / "ihd.db"
    store, diag = open_store(path)
    store.submit(Batch(readings=[rd(T0, 1)]))
    store.close()
    store.close()  # idempotent
    assert diag.state("store.status") == "closed"
    with pytest.raises(StoreError, match="closed"):
        store.submit(Batch())
    store, diag = open_store(path)
    store.start()
    store.submit(Batch(readings=[rd(T0 + 1, 2)]))
    store.close()  # flushes the started writer too
    store, _ = open_store(path)
    assert reading_count(store) == 2
    store.close()


def test_write_now_handles_100k_rows_and_only_before_start(tmp_path: Path) -> None:
    store, diag = open_store(tmp_path / "ihd.db")
    readings = [rd(T0 + i * 10, i) for i in range(60_000)]
    readings += [rd(T0 + i * 10, 500, quantity="power_import_w") for i in range(40_000)]
    usage = [use(T0 + i * 60, 1.0) for i in range(10_000)]
    rollups = 167 + 7 + 1  # the hours, London days and month of those 10,000 minutes
    assert store.write_now(Batch(readings=readings, usage=usage)) == 110_000 + rollups
    assert diag.counter("store.rows_written") == 110_000 + rollups
    with store.reader() as r:
        assert r.counts()["readings"] == 100_000
        assert r.span() == (T0, T0 + 599_990)
        assert r.last_readings() == {
            (E1, "energy_import_wh"): (T0 + 599_990, 59_999, 0),
            (E1, "power_import_w"): (T0 + 399_990, 500, 0),
        }
    store.start()
    with pytest.raises(StoreError, match="only allowed before start"):
        store.write_now(Batch())
    store.close()


def test_write_now_raises_and_writes_nothing_on_a_bad_batch(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path / "ihd.db")
    bad = Reading(E1, Utility.ELECTRICITY, "energy_import_wh", None, 0, T0)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match=r"NOT NULL constraint failed: readings\.raw"):
        store.write_now(Batch(readings=[rd(T0 - 10, 1), bad]))
    assert reading_count(store) == 0
    store.close()


# ----------------------------------------------------------- atomicity, failures


def test_a_bad_batch_is_rejected_alone_with_its_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, diag = open_store(tmp_path / "ihd.db")
    store.start()
    store.submit(Batch(readings=[rd(T0, 1)], state={"fc": "1"}))
    # Valid readings and state, but a NaN amount (NULL in SQLite: NOT NULL fails).
    store.submit(Batch(readings=[rd(T0 + 10, 2)], usage=[use(T0, math.nan)], state={"fc": "2"}))
    store.submit(Batch(readings=[rd(T0 + 20, 3)]))
    store.submit(Batch(readings=["not a reading"]))  # type: ignore[list-item]
    with caplog.at_level(logging.WARNING, logger="ihd.store"):
        assert store.flush()
    with store.reader() as r:
        assert r.last_readings() == {(E1, "energy_import_wh"): (T0 + 20, 3, 0)}
        assert r.counts()["readings"] == 2
        assert r.counts()["usage"] == 0
        assert r.get_state("fc") == "1"  # the rejected batch's state did not land
    assert diag.counter("store.rejected_batches") == 2
    assert diag.state("store.status") == "ok"
    messages = [rec.getMessage() for rec in caplog.records if rec.name == "ihd.store"]
    assert any("NOT NULL constraint failed: usage.amount" in m for m in messages)
    assert any("invalid batch" in m for m in messages)
    store.close()


def test_real_disk_full_keeps_data_pending_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ihd.db"
    store, diag = open_store(path, max_pages=12)
    store.start()
    store.submit(Batch(readings=[rd(T0, 0)], state={"fc": "0"}))
    assert store.flush()  # a small commit still fits

    def big(k: int) -> Batch:  # ~25 pages of readings each
        return Batch(
            readings=[rd(T0 + k * 10_000 + i, i, meter=E2) for i in range(1, 4000)],
            state={"fc": str(k)},
        )

    with caplog.at_level(logging.WARNING, logger="ihd.store"):
        for k in (1, 2):
            store.submit(big(k))
        assert not store.flush()
        assert diag.state("store.status") == "error: database or disk is full"
        assert diag.counter("store.write_errors") == 1
        assert diag.state("store.pending_batches") == 2
        store.submit(big(3))  # still accepted while failing
        assert not store.flush()
    assert diag.counter("store.write_errors") == 2
    assert diag.state("store.pending_batches") == 3
    assert sum("database or disk is full" in r.getMessage() for r in caplog.records) == 1
    with store.reader() as r:  # the failed transactions left no trace
        assert r.counts()["readings"] == 1
        assert r.get_state("fc") == "0"

    store.set_max_pages(None)
    assert store.flush()
    assert diag.state("store.status") == "ok"
    assert diag.state("store.pending_batches") == 0
    with store.reader() as r:
        assert r.counts()["readings"] == 1 + 3 * 3999
        assert r.get_state("fc") == "3"
    assert diag.counter("store.dropped_batches") == 0
    store.close()


def test_pending_batches_are_bounded_dropping_the_oldest(tmp_path: Path) -> None:
    store, diag = open_store(tmp_path / "ihd.db", max_pages=8, max_pending_batches=3)
    store.start()
    for k in range(5):
        store.submit(Batch(readings=[rd(T0 + k * 10_000 + i, k) for i in range(3000)]))
    assert diag.counter("store.dropped_batches") == 2  # bound applies at submit
    assert not store.flush()
    store.submit(Batch(readings=[rd(T0 + 99_000, 5)]))
    assert diag.counter("store.dropped_batches") == 3
    store.set_max_pages(None)
    assert store.flush()
    with store.reader() as r:
        raws = {lr.raw for lr in r.last_readings().values()}
        assert r.counts()["readings"] == 2 * 3000 + 1
        assert r.last_reading(E1, "energy_import_wh") == (T0 + 99_000, 5, 0)
    assert raws == {5}
    store.close()


def test_a_failed_transaction_lands_neither_readings_nor_state(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path / "ihd.db", max_pages=8)
    store.start()
    store.submit(
        Batch(readings=[rd(T0 + i, i) for i in range(3000)], state={"smwap.fc." + E1: "1234"})
    )
    assert not store.flush()
    with store.reader() as r:
        assert r.get_state("smwap.fc." + E1) is None
        assert r.counts()["readings"] == 0
    store.close()  # final commit fails too: counted, logged


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Run the block as ``nobody`` when we are root, so that file modes apply."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.seteuid(65534)
    except PermissionError:
        pytest.skip("running as root without CAP_SETUID: cannot make a file read-only")
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory ``nobody`` can use (pytest's tmp_path is private to its user)."""
    d = Path(tempfile.mkdtemp(prefix="ihd-store-test-"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_read_only_database_file(shared_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = shared_dir / "ihd.db"
    store, _ = open_store(path)
    store.write_now(Batch(readings=[rd(T0, 1)]))
    store.close()
    for f in shared_dir.iterdir():
        f.chmod(0o444)

    with unprivileged():
        store, diag = open_store(path)  # a current schema opens read-only fine
        store.start()
        store.submit(Batch(readings=[rd(T0 + 10, 2)], state={"fc": "2"}))
        with caplog.at_level(logging.WARNING, logger="ihd.store"):
            assert not store.flush()
        assert diag.state("store.status") == "error: attempt to write a readonly database"
        assert diag.counter("store.write_errors") == 1
        assert diag.state("store.pending_batches") == 1
        with store.reader() as r:
            assert r.counts()["readings"] == 1

    # The file becomes writable again. The writer's next attempt reopens its connection
    # and picks that up, provided no other connection in the process holds the file
    # (SQLite would hand the reopened connection the same read-only descriptor): that is
    # why every reader above is closed.
    for f in shared_dir.iterdir():
        f.chmod(0o666)
    with unprivileged():
        assert store.flush(), diag.state("store.status")
        assert diag.state("store.status") == "ok"
        store.close()
    store, _ = open_store(path)
    with store.reader() as r:
        assert r.counts()["readings"] == 2
        assert r.get_state("fc") == "2"
    store.close()


def test_an_unreadable_file_gives_a_clear_store_error(shared_dir: Path) -> None:
    path = shared_dir / "ihd.db"
    open_store(path)[0].close()
    path.chmod(0o000)
    with unprivileged(), pytest.raises(StoreError, match=r"cannot open .*ihd\.db"):
        open_store(path)


# ------------------------------------------------------------------- reading


def test_reader_queries(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path / "ihd.db")
    with store.reader() as r:
        assert r.span() is None
        assert r.last_readings() == {}
        assert r.last_reading(E1, "energy_import_wh") is None
        assert r.usage_series(Utility.ELECTRICITY, T0, T0 + 3600, 60) == []
        assert r.get_state("x") is None
        assert r.counts() == {
            "meters": 0,
            "readings": 0,
            "usage": 0,
            "state": 1,  # store.timezone: which calendar the rollups follow
            "usage_hour": 0,
            "usage_day": 0,
            "usage_month": 0,
        }
    store.write_now(
        Batch(
            readings=[
                rd(T0 + 0.0004, 1),
                rd(T0 + 5.0006, 2),
                rd(T0 - 60, 7, meter=G1, quantity="volume_m3"),
            ],
            usage=[use(T0 + h * 1800, 10.0, cost_milli=5) for h in range(6)]
            + [use(T0, 1.0, meter=G1, utility=Utility.GAS, energy_wh=11.2)],
            state={"smwap.fc.a": "1", "smwap.fc.b": "2", "other": "x"},
        )
    )
    with store.reader() as r:
        assert r.span() == (T0 - 60, T0 + 5.001)  # ms resolution, rounded
        assert r.last_readings() == {
            (E1, "energy_import_wh"): (T0 + 5.001, 2, 0),
            (G1, "volume_m3"): (T0 - 60, 7, 0),
        }
        assert r.series_keys() == [(E1, "energy_import_wh"), (G1, "volume_m3")]
        assert r.usage_series(Utility.ELECTRICITY, T0, T0 + 3 * 3600, 3600) == [
            (T0, 20.0, 20.0, 10),
            (T0 + 3600, 20.0, 20.0, 10),
            (T0 + 7200, 20.0, 20.0, 10),
        ]
        assert r.usage_total(Utility.GAS, T0, T0 + 60) == (1.0, 11.2, 0)
        assert r.states("smwap.fc.") == {"smwap.fc.a": "1", "smwap.fc.b": "2"}
        with pytest.raises(ValueError):
            r.usage_series(Utility.GAS, T0, T0 + 1, 0)
    with pytest.raises(TypeError):
        store.submit([rd(T0, 1)])  # type: ignore[arg-type]
    store.close()


def test_a_reader_belongs_to_its_thread(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path / "ihd.db")
    reader = store.reader()
    errors: list[BaseException] = []

    def other() -> None:
        try:
            reader.counts()
        except sqlite3.ProgrammingError as e:
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert errors
    reader.close()
    store.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 3 * 24 * 60 - 1), st.integers(0, 10_000), st.integers(0, 50_000)),
        max_size=60,
    ),
    st.sampled_from([60, 900, 3600, 86_400]),
)
def test_series_buckets_add_up_to_the_total(
    rows: list[tuple[int, int, int]], bucket_s: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        store, _ = open_store(Path(d) / "ihd.db")
        # amounts in 1/8 Wh: exact in binary floating point, so sums compare exactly
        store.write_now(Batch(usage=[use(T0 + m * 60, a / 8, cost_milli=c) for m, a, c in rows]))
        with store.reader() as r:
            total = r.usage_total(Utility.ELECTRICITY, T0, T0 + 3 * 86_400)
            series = r.usage_series(Utility.ELECTRICITY, T0, T0 + 3 * 86_400, bucket_s)
        store.close()
    assert total.amount == sum(a for _, a, _ in rows) / 8
    assert total.cost_milli == sum(c for _, _, c in rows)
    assert sum(b.amount for b in series) == total.amount
    assert sum(b.cost_milli for b in series) == total.cost_milli
    assert all((b.start - T0) % bucket_s == 0 for b in series)


def test_records_validate_and_freeze() -> None:
    with pytest.raises(ValueError, match="minute boundary"):
        Usage(E1, Utility.ELECTRICITY, 1234, 1.0, 1.0, 0)
    readings = [rd(T0, 1)]
    state = {"a": "1"}
    batch = Batch(readings=readings, state=state)
    readings.append(rd(T0 + 1, 2))
    state["b"] = "2"
    assert len(batch.readings) == 1 and dict(batch.state) == {"a": "1"}
    assert batch.rows == 2
    assert minute_ms(T0 + 59.9996) == int(T0 * 1000) + 60_000  # rounds to ms first
