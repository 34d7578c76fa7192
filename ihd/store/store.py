"""The durable history: one SQLite file, one writer thread, bounded commits.

Why it is built this way
------------------------
The display runs from an SD card. SD cards are slow to fsync, wear out with small
random writes, and lose power without warning. So:

* **Batching by time, not by push.** Producers call ``submit(batch)``, which only appends
  to an in-memory queue. One writer thread ("ihd-store") commits *everything* pending in
  ONE transaction every ``commit_interval_s`` (10 s by default, at a fixed rate: a slow
  commit does not push the next one back), on ``flush()`` and on ``close()``. The number
  of commits, and so of WAL appends, is set by the interval, never by how fast meters
  push. A crash loses at most what was handed over since the last commit began.
* **WAL + synchronous=NORMAL + our own checkpoints: no fsync on commit, two per
  checkpoint, one checkpoint every ``checkpoint_every`` commits.** In WAL mode a commit
  appends pages to the ``-wal`` file; with ``synchronous=NORMAL`` SQLite does not fsync
  on commit, only when a checkpoint copies the WAL into the main file (one fsync of the
  WAL before, one of the database after). SQLite's own automatic checkpoint (every
  1000 WAL pages, at whichever commit crosses the line) is turned off
  (``wal_autocheckpoint=0``); the writer runs a PASSIVE checkpoint itself, right after
  every ``checkpoint_every``-th commit (default 30: every 5 minutes at 10 s), counted in
  ``store.checkpoints``. (A bulk write such as seeding checkpoints after
  ``CHECKPOINT_ROWS`` rows, so the WAL stays small.) In steady state that is
  2 fsyncs per 30 commit intervals, measured with strace by
  ``benchmarks/bench_store_io.py``. The trade-off, chosen deliberately for SD cards: an
  application crash or SIGKILL loses nothing that was committed (the WAL is in the page
  cache and is replayed on open); a *power cut* can lose the commits that the kernel had
  not yet written back (with default Linux writeback roughly the last 30 s, at worst
  everything since the last checkpoint, i.e. ``checkpoint_every`` intervals). It never
  corrupts the database: WAL frames are checksummed and a torn tail is discarded on
  recovery. ``synchronous=FULL`` would add one fsync per commit (0.5-1 ms here, tens of
  ms on a cheap card), more than the "one fsync per commit interval" budget by itself.
* **Atomic batches.** A ``Batch`` lands whole or not at all (see ``model.py``), so other
  layers commit their durable state (a radio frame counter, a pricer's running total) in
  the same transaction as the readings it belongs to. That is the "store transaction API".
* **Rollups in the same transaction.** Each usage minute is also added to its local hour,
  day and month (``usage_hour``/``_day``/``_month``, see ``calendar.py``) by the statement
  list of the same commit, so after any crash the rollups equal the sums of the minutes.
  They are aggregated in Python first: a commit of 60 minutes touches one hour row.
* **Re-pricing keeps them too.** ``Store.reprice`` (``ihd reprice``, after a tariff
  correction) sets new minute costs and recomputes the cost of each hour, day and month row
  holding a changed minute from its minutes, in one transaction.
* **Raw readings are kept ``retention_months`` (13 by default); rollups forever.** Each
  commit also deletes at most ``prune_batch_rows`` readings older than the cutoff, in the
  same transaction, so pruning never makes a long transaction nor an extra commit (and so
  no extra WAL traffic of its own). The cutoff is local midnight ``retention_months``
  before the *older* of the clock and the newest reading, so a clock that jumps years
  ahead (no RTC, no NTP yet) prunes nothing; the newest reading of each series is always
  kept (it is where the next delta starts).
* **Failures are data, not crashes.** When a commit fails for an environmental reason
  (disk full, read-only file system, I/O error, locked), the writer rolls back, keeps the
  batches in memory (bounded by ``max_pending_batches``; beyond that the oldest are dropped
  and counted), reports ``store.status = "error: ..."`` and a sentence for the UI in
  ``store.warning``, and retries at the next interval, on a freshly opened connection.
  (A file that became writable again is only picked up once no reader in the process
  holds it open: SQLite hands the new connection the old read-only descriptor. A card
  remounted read-only needs a reboot anyway.) The warning is logged when the status
  changes, not at every retry, so a full card is not also flooded with log lines. Once
  batches have been dropped, ``store.warning`` keeps saying so after writes recover.
  When a single batch is bad (a constraint fails, a value cannot be bound) it is isolated
  by retrying the batches one savepoint each, and only that batch is dropped, with a
  logged reason and ``store.rejected_batches``.
* **Readers have their own connections** (``reader.py``). A sqlite3 connection belongs to
  one thread, and WAL lets readers run while the writer commits.
* **A duplicate push is a no-op.** Readings go in with ``ON CONFLICT DO NOTHING`` on
  their key (the first value for a (meter, quantity, ts_ms) wins, counted in
  ``store.duplicate_readings``). Not ``INSERT OR IGNORE``: that would also silently
  drop a row that breaks ``NOT NULL``, hiding a bug upstream instead of rejecting it.
* **The hot path is ``executemany``.** sqlite-utils creates and migrates the schema; rows
  go in with ``conn.executemany`` (2-3x faster than ``insert_all``), one statement per
  table per commit. Seeding history (``write_now``) uses the same path in one transaction.

Diagnostics (``ihd diag``): counters ``store.commits``, ``store.rows_written``,
``store.duplicate_readings``, ``store.write_errors``, ``store.rejected_batches``,
``store.dropped_batches``, ``store.checkpoints``, ``store.pruned_readings``,
``store.rollup_rebuilds``; states ``store.status``, ``store.warning``,
``store.pending_batches``, ``store.commit_ms_last``, ``store.commit_ms_max``,
``store.last_commit_at``, ``store.checkpoint_ms_last``, ``store.wal_pages``,
``store.schema_version``, ``store.journal_mode``, ``store.synchronous``,
``store.busy_timeout_ms``, ``store.timezone``, ``store.retention_months``.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlite_utils import Database

from ihd.clock import Clock, WallClock
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.store.calendar import Calendar
from ihd.store.model import Batch, StoreError, ts_ms
from ihd.store.reader import (
    BUSY_TIMEOUT_MS,
    DEFAULT_TIMEZONE,
    TIMEZONE_KEY,
    StoreReader,
    describe_open_error,
    reading_keys,
    reading_span,
)
from ihd.store.schema import MIGRATIONS, ROLLUP_TABLES, migrate

#: Bytes per database page for new files: see ``_open`` (SD-card wear).
PAGE_SIZE = 1024
log = logging.getLogger("ihd.store")

__all__ = ["RepriceResult", "Store", "StoreReader"]

MIN_SQLITE = (3, 24, 0)  # UPSERT
JOURNAL_SIZE_LIMIT = 8 * 1024 * 1024  # truncate a WAL that grew past this (e.g. after seeding)
DEFAULT_RETENTION_MONTHS = 13
CHECKPOINT_EVERY = 30  # commits between two checkpoints (5 min at the default 10 s)
CHECKPOINT_ROWS = 20_000  # ... or rows written since the last one (bulk writes)
PRUNE_BATCH_ROWS = 2_000  # readings deleted per commit at most
_NO_PAGE_LIMIT = 4_294_967_294  # SQLite clamps this to its compiled-in maximum
_SYNCHRONOUS = {0: "off", 1: "normal", 2: "full", 3: "extra"}

_SQL_METER = """
INSERT INTO meters (eui64, utility, label, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (eui64) DO UPDATE SET
    utility = excluded.utility,
    label = coalesce(excluded.label, meters.label),
    first_seen_ms = min(coalesce(meters.first_seen_ms, excluded.first_seen_ms),
                        excluded.first_seen_ms),
    last_seen_ms = max(coalesce(meters.last_seen_ms, excluded.last_seen_ms),
                       excluded.last_seen_ms)
"""
_SQL_READING = """
INSERT INTO readings (meter, quantity, ts_ms, raw, scaler) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (meter, quantity, ts_ms) DO NOTHING
"""
_SQL_ADD = """
    amount = {t}.amount + excluded.amount,
    energy_wh = CASE WHEN {t}.energy_wh IS NULL AND excluded.energy_wh IS NULL THEN NULL
                     ELSE coalesce({t}.energy_wh, 0) + coalesce(excluded.energy_wh, 0) END,
    cost_milli = {t}.cost_milli + excluded.cost_milli
"""
_SQL_USAGE = (
    "INSERT INTO usage (meter, minute_ms, utility, amount, energy_wh, cost_milli) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (meter, minute_ms) DO UPDATE SET"
    + _SQL_ADD.format(t="usage")
)
_SQL_ROLLUP = {
    table: f"INSERT INTO {table} (meter, start_ms, utility, amount, energy_wh, cost_milli) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (meter, start_ms) DO UPDATE SET"
    + _SQL_ADD.format(t=table)
    for table in ROLLUP_TABLES
}
_SQL_STATE = """
INSERT INTO state (key, value, updated_ms) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms
"""

_Row = tuple[object, ...]
# (meter, utility, (hour, day, month), amount, energy_wh, cost_milli)
_RollupSrc = tuple[str, str, tuple[int, int, int], float, float | None, int]

# Python-side errors that mean "these rows are bad" (binding a huge int, a wrong type).
_PY_DATA_ERRORS: tuple[type[Exception], ...] = (OverflowError, ValueError, TypeError)


def _add_energy(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class _Rollups:
    """Usage minutes summed per (meter, bucket) for each rollup table, in Python."""

    __slots__ = ("levels",)

    def __init__(self) -> None:
        # one dict per table: (meter, start_ms) -> [utility, amount, energy_wh, cost]
        self.levels: tuple[dict[tuple[str, int], list[object]], ...] = ({}, {}, {})

    def add(self, src: Sequence[_RollupSrc]) -> None:
        for meter, utility, keys, amount, energy, cost in src:
            for level, start in zip(self.levels, keys, strict=True):
                acc = level.get((meter, start))
                if acc is None:
                    level[(meter, start)] = [utility, amount, energy, cost]
                else:
                    acc[1] += amount  # type: ignore[operator]
                    acc[2] = _add_energy(acc[2], energy)  # type: ignore[arg-type]
                    acc[3] += cost  # type: ignore[operator]

    def __len__(self) -> int:
        return len(self.levels[0])

    def execute(self, conn: sqlite3.Connection) -> None:
        for table, level in zip(ROLLUP_TABLES, self.levels, strict=True):
            if level:
                conn.executemany(
                    _SQL_ROLLUP[table], [(m, s, *acc) for (m, s), acc in level.items()]
                )

    def clear(self) -> None:
        for level in self.levels:
            level.clear()


class _Rows:
    """A batch (or several) flattened to parameter tuples, one list per statement."""

    __slots__ = ("meters", "newest_ms", "readings", "rollup", "state", "usage")

    def __init__(self) -> None:
        self.meters: list[_Row] = []
        self.readings: list[_Row] = []
        self.usage: list[_Row] = []
        self.rollup: list[_RollupSrc] = []
        self.state: list[_Row] = []
        self.newest_ms: int | None = None

    @classmethod
    def of(cls, batch: Batch, now_ms: int, cal: Calendar) -> _Rows:
        rows = cls()
        rows.meters = [
            (
                m.eui64,
                m.utility,
                m.label,
                m.seen_ms if m.first_seen_ms is None else m.first_seen_ms,
                m.seen_ms,
            )
            for m in batch.meters
        ]
        rows.readings = [
            (r.meter, r.quantity, round(r.timestamp * 1000), r.raw, r.scaler)
            for r in batch.readings
        ]
        if batch.readings:
            rows.newest_ms = round(max(r.timestamp for r in batch.readings) * 1000)
        buckets = cal.buckets
        for u in batch.usage:
            rows.usage.append(
                (u.meter, u.minute_ms, u.utility, u.amount, u.energy_wh, u.cost_milli)
            )
            rows.rollup.append(
                (u.meter, u.utility, buckets(u.minute_ms), u.amount, u.energy_wh, u.cost_milli)
            )
        rows.state = [(k, v, now_ms) for k, v in batch.state.items()]
        return rows

    def extend(self, other: _Rows) -> None:
        self.meters.extend(other.meters)
        self.readings.extend(other.readings)
        self.usage.extend(other.usage)
        self.rollup.extend(other.rollup)
        self.state.extend(other.state)
        if other.newest_ms is not None:
            self.newest_ms = max(self.newest_ms or other.newest_ms, other.newest_ms)

    def execute(self, conn: sqlite3.Connection) -> int:
        """Run the statements inside the caller's transaction; return duplicate readings."""
        duplicates = 0
        if self.meters:
            conn.executemany(_SQL_METER, self.meters)
        if self.readings:
            cur = conn.executemany(_SQL_READING, self.readings)
            duplicates = len(self.readings) - cur.rowcount
        if self.usage:
            conn.executemany(_SQL_USAGE, self.usage)
            rollups = _Rollups()
            rollups.add(self.rollup)
            rollups.execute(conn)
        if self.state:
            conn.executemany(_SQL_STATE, self.state)
        return duplicates


def _is_data_error(e: BaseException) -> bool:
    """True if ``e`` is the fault of the rows (reject the batch), not of the database."""
    if isinstance(
        e, (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError, *_PY_DATA_ERRORS)
    ):
        return True
    return isinstance(e, sqlite3.ProgrammingError) and "binding" in str(e).lower()


def warning_text(e: BaseException) -> str:
    """A sentence for the UI about a failing commit: what is wrong and what it means."""
    msg = str(e).lower()
    if "full" in msg:
        what = "the storage is full"
    elif "readonly" in msg or "read-only" in msg:
        what = "the history file is read-only"
    elif "i/o" in msg or "disk" in msg:
        what = "the storage reports write errors"
    elif "locked" in msg or "busy" in msg:
        what = "another program is holding the history file"
    else:
        what = f"it cannot be written ({e})"
    return (
        f"History is not being saved: {what}. Live readings are still shown; new data is "
        "kept in memory and saved when writing works again."
    )


def _months_before(d: dt.date, months: int) -> dt.date:
    index = d.year * 12 + d.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(d.day, _calendar.monthrange(year, month)[1]))


class Store:
    """Owns the database file: opens and migrates it, and runs the one writer thread.

    Thread-safe: ``submit``, ``flush``, ``close``, ``reader``, ``prune`` and
    ``set_max_pages`` may be called from any thread. ``write_now`` is for seeding,
    before ``start()``.
    """

    def __init__(
        self,
        path: Path,
        *,
        diag: Diagnostics,
        tz: str | None = None,
        commit_interval_s: float = 10.0,
        max_pending_batches: int = 100_000,
        max_pages: int | None = None,
        clock: Clock | None = None,
        retention_months: int | None = DEFAULT_RETENTION_MONTHS,
        checkpoint_every: int | None = CHECKPOINT_EVERY,
        prune_batch_rows: int = PRUNE_BATCH_ROWS,
        synchronous: str = "normal",
    ) -> None:
        """Open (creating if needed) and migrate the database; raise ``StoreError`` if not.

        ``tz`` is the household's timezone (IANA name), which days and months of the
        rollups follow; ``None`` keeps the one the database was built with (Europe/London
        for a new one). A different one rebuilds the hour, day and month rollups from the
        minutes, once, when the file is opened.
        ``max_pages`` caps the file size (``PRAGMA max_page_count``, 4 KiB pages): a
        guard against filling the card, and how the tests make a real "disk full".
        ``clock`` stamps ``state.updated_ms`` and dates the retention cutoff (wall clock
        by default). ``retention_months`` (None: forever) is how long raw readings are
        kept; each commit prunes at most ``prune_batch_rows`` of the older ones (0: only
        ``prune()`` does). ``checkpoint_every``: commits between WAL checkpoints (None:
        leave it to SQLite's automatic checkpoint every 1000 pages). ``synchronous`` is
        "normal" (see the module docstring); "full" (an fsync per commit) exists to measure
        what it would cost (``benchmarks/bench_store_io.py``).
        """
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old (need 3.24+)")
        if commit_interval_s <= 0:
            raise ValueError("commit_interval_s must be positive")
        if max_pending_batches < 1:
            raise ValueError("max_pending_batches must be at least 1")
        if retention_months is not None and retention_months < 1:
            raise ValueError("retention_months must be at least 1 (or None: keep forever)")
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1 (or None)")
        if prune_batch_rows < 0:
            raise ValueError("prune_batch_rows must not be negative")
        if synchronous not in ("normal", "full"):
            raise ValueError("synchronous must be 'normal' or 'full'")
        if tz is not None:
            try:
                Calendar(tz)
            except ValueError as e:
                raise StoreError(str(e)) from None
        self._path = Path(path)
        self._diag = diag
        self._tz_wanted = tz
        self._interval = float(commit_interval_s)
        self._max_pending = max_pending_batches
        self._max_pages = max_pages
        self._clock: Clock = clock or WallClock()
        self._retention = retention_months
        self._checkpoint_every = checkpoint_every
        self._prune_batch = prune_batch_rows
        self._synchronous = synchronous.upper()

        # _lock guards the queue and the thread/flush bookkeeping; _cond waits on it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending: deque[Batch] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop = False
        self._flush_req = 0
        self._flush_done = 0
        self._last_ok = True
        self._drop_logged = False
        self._dropped_total = 0

        # _conn_lock guards the write connection and everything below.
        self._conn_lock = threading.Lock()
        self._status = "ok"
        self._warning = ""
        self._commit_ms_max = 0.0
        self._calendar = Calendar(tz or DEFAULT_TIMEZONE)
        self._rollups_ready = False
        self._newest_ms: int | None = None
        self._pruned_below: int | None = None  # no reading older than this remains
        self._since_checkpoint = [0, 0]  # commits, rows
        self._conn: sqlite3.Connection | None = self._open()
        self._set_status("ok")
        diag.set("store.pending_batches", 0)
        diag.set("store.warning", "")
        diag.set("store.retention_months", retention_months)

    # ----------------------------------------------------------------- lifecycle

    @property
    def path(self) -> Path:
        return self._path

    @property
    def status(self) -> str:
        """``"ok"``, ``"error: <reason>"`` or ``"closed"``."""
        return self._status

    @property
    def warning(self) -> str:
        """A sentence for the UI when history is not being saved (or was lost); else ""."""
        return self._warning

    @property
    def timezone(self) -> str:
        """The timezone the rollups' days and months follow."""
        return self._calendar.name

    def start(self) -> None:
        """Start the writer thread. Batches submitted earlier are written at its first commit."""
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            if self._thread is not None:
                raise StoreError("store already started")
            self._thread = threading.Thread(target=self._run, name="ihd-store", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Write what is pending, stop the writer, close the connection. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stop = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        else:
            self._attempt(self._take_pending())
        with self._lock:
            left = len(self._pending)
            self._pending.clear()
        if left:
            self._diag.count("store.dropped_batches", left)
            log.error("store closed with %d batches unwritten (%s)", left, self._status)
        with self._conn_lock:
            if self._conn is not None:
                with suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
                self._conn.close()  # the last connection checkpoints the WAL away
                self._conn = None
        self._diag.set("store.pending_batches", 0)
        self._set_status("closed")

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -------------------------------------------------------------------- writes

    def submit(self, batch: Batch) -> None:
        """Queue ``batch`` for the next commit. Non-blocking, thread-safe."""
        if not isinstance(batch, Batch):
            raise TypeError(f"expected a Batch, got {type(batch).__name__}")
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            self._pending.append(batch)
            dropped = len(self._pending) > self._max_pending
            if dropped:
                self._pending.popleft()
        if dropped:
            self._note_dropped(1)

    def flush(self, timeout: float = 10) -> bool:
        """Commit now and wait; True if everything submitted before the call is written.

        False if the commit failed (the batches stay pending) or ``timeout`` passed.
        """
        with self._cond:
            if self._closed:
                return not self._pending
            if self._thread is not None:
                self._flush_req += 1
                mine = self._flush_req
                self._cond.notify_all()
                if not self._cond.wait_for(lambda: self._flush_done >= mine, timeout):
                    return False
                return self._last_ok
        return self._attempt(self._take_pending())  # not started: write in this thread

    def write_now(self, batch: Batch) -> int:
        """Write ``batch`` in one transaction in the caller's thread; return rows changed.

        Only before ``start()``: this is how history is seeded (hundreds of thousands of
        rows in seconds). Raises ``StoreError`` on any failure, with nothing written.
        """
        with self._lock:
            if self._closed:
                raise StoreError("store is closed")
            if self._thread is not None:
                raise StoreError("write_now() is only allowed before start()")
        t0 = time.perf_counter()
        with self._conn_lock:
            conn = self._connection()
            try:
                rows = _Rows.of(batch, ts_ms(self._clock.now()), self._calendar)
                before = conn.total_changes
                conn.execute("BEGIN IMMEDIATE")
                self._prepare(conn)
                duplicates = rows.execute(conn)
                conn.execute("COMMIT")
            except Exception as e:
                self._rollback_quietly(conn)
                raise StoreError(f"write failed: {e}") from e
            changes = conn.total_changes - before
            self._committed(conn, changes, rows.newest_ms)
        self._count_commit(changes, duplicates, t0)
        return changes

    def prune(self, max_rows: int = PRUNE_BATCH_ROWS) -> int:
        """Delete up to ``max_rows`` raw readings past the retention, in one short
        transaction of its own (the writer also does this inside every commit); returns
        how many. Raises ``StoreError`` if the database cannot be written."""
        with self._conn_lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                n = self._prune(conn, max_rows)
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                self._rollback_quietly(conn)
                raise StoreError(f"prune failed: {e}") from e
        if n:
            self._diag.count("store.pruned_readings", n)
        return n

    def reprice(
        self, utility: Utility | str, costs: Iterable[tuple[str, int, int]]
    ) -> RepriceResult:
        """Give usage minutes new costs (after a tariff correction), in ONE transaction.

        ``costs`` is ``(meter, minute_ms, new cost_milli)`` for rows of ``utility``; rows
        not in the store are ignored. The hour, day and month rollup rows holding a
        changed minute get their ``cost_milli`` recomputed from the minutes in the same
        transaction, so the rollups stay the sums of the minutes. Returns how many rows
        were given, how many changed, and their old and new totals. Raises ``StoreError``
        with nothing written on any failure. (Only ``ihd reprice`` calls this, with the
        display stopped: a running ingest keeps its own totals for "today".)"""
        util = str(utility)
        wanted = list(costs)
        t0 = time.perf_counter()
        with self._conn_lock:
            conn = self._connection()
            try:
                before = conn.total_changes
                conn.execute("BEGIN IMMEDIATE")
                self._prepare(conn)
                result, touched = _reprice_minutes(conn, util, wanted)
                _recompute_rollup_costs(conn, self._calendar, touched)
                conn.execute("COMMIT")
            except Exception as e:
                self._rollback_quietly(conn)
                raise StoreError(f"reprice failed: {e}") from e
            changes = conn.total_changes - before
            self._committed(conn, changes, None)
        self._count_commit(changes, 0, t0)
        return result

    def set_max_pages(self, pages: int | None) -> None:
        """Change the file-size cap (``None``: no cap) on the live write connection."""
        with self._conn_lock:
            self._max_pages = pages
            if self._conn is not None:
                self._apply_max_pages(self._conn)

    # --------------------------------------------------------------------- reads

    def reader(self) -> StoreReader:
        """A read-only view for the calling thread (its own connection). Close it after use."""
        return StoreReader(self._path)

    # ------------------------------------------------------------------ internals

    def _open(self) -> sqlite3.Connection:
        """Open the write connection, set its pragmas, migrate, check the rollups'
        timezone. Raises StoreError."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory for {self._path}: {e}") from e
        try:
            # check_same_thread=False: created here, then used by the writer thread,
            # always under _conn_lock.
            conn = sqlite3.connect(str(self._path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(describe_open_error(self._path, e)) from e
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db = Database(conn, execute_plugins=False)
            # Small pages for a new file (no effect on an existing one): a commit rewrites
            # whole pages into the WAL, and ours touch a few rows in each of several tables.
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            if self._checkpoint_every is not None:
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # the writer checkpoints
            version = migrate(db, MIGRATIONS)
            self._apply_max_pages(conn)
            self._check_rollups(conn)
            if self._newest_ms is None:
                span = reading_span(conn)
                self._newest_ms = None if span is None else span[1]
            # Read the per-connection settings back: what ``ihd diag`` shows is what is set.
            sync = _SYNCHRONOUS.get(int(conn.execute("PRAGMA synchronous").fetchone()[0]), "?")
            busy = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as e:
            conn.close()
            raise StoreError(describe_open_error(self._path, e)) from e
        if mode != "wal":
            log.warning("WAL mode unavailable for %s (journal_mode=%s)", self._path, mode)
        self._diag.set("store.journal_mode", mode)
        self._diag.set("store.synchronous", sync)
        self._diag.set("store.busy_timeout_ms", busy)
        self._diag.set("store.schema_version", version)
        self._diag.set("store.timezone", self._calendar.name)
        return conn

    def _check_rollups(self, conn: sqlite3.Connection) -> None:
        """Make sure the rollups follow the wanted timezone, rebuilding them if not.

        A rebuild that cannot be written now (read-only file, full disk) is not fatal:
        the store opens, and the next transaction that writes does the rebuild first."""
        row = conn.execute("SELECT value FROM state WHERE key = ?", (TIMEZONE_KEY,)).fetchone()
        built_for = None if row is None else str(row[0])
        want = self._tz_wanted or built_for or DEFAULT_TIMEZONE
        if want != self._calendar.name:
            self._calendar = Calendar(want)
        if built_for == want:
            self._rollups_ready = True
            return
        self._rollups_ready = False
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._prepare(conn)
            conn.execute("COMMIT")
        except (sqlite3.Error, ValueError, OverflowError, OSError) as e:
            self._rollback_quietly(conn)
            log.warning("cannot build the rollups for %s yet: %s", want, e)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: rebuild the rollups first if they are not ready."""
        if self._rollups_ready:
            return
        t0 = time.perf_counter()
        minutes = rebuild_rollups(conn, self._calendar)
        self._rollups_ready = True  # provisional: the caller's rollback undoes it below
        if minutes:
            self._diag.count("store.rollup_rebuilds")
            log.info(
                "built the hour, day and month rollups of %d usage minutes for %s in %.1f s",
                minutes,
                self._calendar.name,
                time.perf_counter() - t0,
            )

    def _apply_max_pages(self, conn: sqlite3.Connection) -> None:
        if self._max_pages is not None:
            conn.execute(f"PRAGMA max_page_count = {int(self._max_pages)}")
        else:
            conn.execute(f"PRAGMA max_page_count = {_NO_PAGE_LIMIT}")

    def _connection(self) -> sqlite3.Connection:
        """The write connection, reopened if the last failure asked for it. Under _conn_lock."""
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _rollback_quietly(self, conn: sqlite3.Connection | None) -> None:
        if conn is not None and conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if conn is not None:
            # A rebuild inside a rolled-back transaction did not happen: check again.
            with suppress(sqlite3.Error):
                row = conn.execute(
                    "SELECT value FROM state WHERE key = ?", (TIMEZONE_KEY,)
                ).fetchone()
                self._rollups_ready = row is not None and str(row[0]) == self._calendar.name

    def _take_pending(self) -> list[Batch]:
        with self._lock:
            batches = list(self._pending)
            self._pending.clear()
        return batches

    def _requeue(self, batches: Sequence[Batch]) -> int:
        """Put failed batches back in front of newer ones; drop the oldest over the bound."""
        with self._lock:
            self._pending.extendleft(reversed(batches))
            over = max(0, len(self._pending) - self._max_pending)
            for _ in range(over):
                self._pending.popleft()
        return over

    def _run(self) -> None:
        next_due = time.monotonic() + self._interval
        while True:
            with self._cond:
                while not self._stop and self._flush_req == self._flush_done:
                    remaining = next_due - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                request = self._flush_req
                stop = self._stop
                batches = list(self._pending)
                self._pending.clear()
            cycle = time.monotonic()
            try:
                ok = self._attempt(batches)
            except Exception:  # a bug in _attempt itself: keep the data and the thread
                log.exception("store writer error")
                self._requeue(batches)
                ok = False
            # A fixed rate: a slow commit or checkpoint does not push the next commit
            # back, so a batch waits at most one interval (plus an overrun) to be taken.
            # After a failure, wait a whole interval before trying again.
            next_due = (cycle if ok else time.monotonic()) + self._interval
            with self._cond:
                self._flush_done = request
                self._last_ok = ok
                self._cond.notify_all()
            if stop:
                return

    def _attempt(self, batches: list[Batch]) -> bool:
        """Write ``batches`` in one transaction. Never raises; False if they stay pending."""
        if not batches:
            return True
        t0 = time.perf_counter()
        with self._conn_lock:
            conn: sqlite3.Connection | None = None
            try:
                conn = self._connection()
                changes, duplicates, rejected, newest, pruned = self._write(conn, batches)
            except Exception as e:
                self._rollback_quietly(conn)
                # Reopen before the next try: a read-only or replaced file, or a file
                # system remounted read-write, is only noticed by a new connection.
                self._drop_connection()
                self._failed(batches, e)
                return False
            self._committed(conn, changes, newest)
        self._count_commit(changes, duplicates, t0)
        if pruned:
            self._diag.count("store.pruned_readings", pruned)
        for batch, reason in rejected:
            self._diag.count("store.rejected_batches")
            log.warning("rejected a batch of %d rows: %s", batch.rows, reason)
        if self._status != "ok":
            log.info("store writes recovered: %d batches written", len(batches) - len(rejected))
        self._set_status("ok")
        self._set_warning(self._gap_text())
        with self._lock:
            pending = len(self._pending)
        self._diag.set("store.pending_batches", pending)
        self._drop_logged = False
        return True

    def _write(
        self, conn: sqlite3.Connection, batches: Sequence[Batch]
    ) -> tuple[int, int, list[tuple[Batch, str]], int | None, int]:
        """One transaction; returns (rows changed, duplicate readings, rejected batches,
        newest reading written, readings pruned).

        Fast path: all batches' rows in one ``executemany`` per table. If that hits a data
        error, roll back and redo the transaction with one savepoint per batch, so only
        the bad batch is left out. Environmental errors propagate (caller rolls back).
        """
        now_ms = ts_ms(self._clock.now())
        rejected: list[tuple[Batch, str]] = []
        converted: list[tuple[Batch, _Rows]] = []
        merged = _Rows()
        for batch in batches:
            try:
                rows = _Rows.of(batch, now_ms, self._calendar)
            except Exception as e:  # e.g. not a Reading: reject without touching SQLite
                rejected.append((batch, f"invalid batch: {e!r}"))
                continue
            converted.append((batch, rows))
            merged.extend(rows)

        before = conn.total_changes
        conn.execute("BEGIN IMMEDIATE")
        self._prepare(conn)
        newest = merged.newest_ms
        try:
            duplicates = merged.execute(conn)
        except Exception as e:
            if not _is_data_error(e):
                raise
            self._rollback_quietly(conn)
            conn.execute("BEGIN IMMEDIATE")
            self._prepare(conn)
            duplicates = 0
            newest = None
            for batch, rows in converted:
                conn.execute("SAVEPOINT batch")
                try:
                    duplicates += rows.execute(conn)
                    if rows.newest_ms is not None:
                        newest = max(newest or rows.newest_ms, rows.newest_ms)
                except Exception as e2:
                    if not _is_data_error(e2):
                        raise
                    conn.execute("ROLLBACK TO batch")
                    rejected.append((batch, f"{type(e2).__name__}: {e2}"))
                conn.execute("RELEASE batch")
        changes = conn.total_changes - before
        pruned = self._prune(conn, self._prune_batch, newest) if self._prune_batch else 0
        conn.execute("COMMIT")
        return changes, duplicates, rejected, newest, pruned

    # --------------------------------------------------------- after a commit

    def _committed(self, conn: sqlite3.Connection, changes: int, newest: int | None) -> None:
        """Bookkeeping after a successful commit, under _conn_lock: the newest reading,
        and the checkpoint policy (see the module docstring)."""
        if newest is not None:
            self._newest_ms = max(self._newest_ms or newest, newest)
        self._diag.set("store.last_commit_at", round(self._clock.now(), 3))
        if self._checkpoint_every is None:
            return
        since = self._since_checkpoint
        since[0] += 1
        since[1] += changes
        if since[0] < self._checkpoint_every and since[1] < CHECKPOINT_ROWS:
            return
        since[0] = since[1] = 0
        t0 = time.perf_counter()
        try:
            _, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as e:  # the data is committed; the next checkpoint catches up
            log.debug("checkpoint failed: %s", e)
            self._diag.count("store.checkpoint_errors")
            return
        self._diag.count("store.checkpoints")
        self._diag.set("store.checkpoint_ms_last", round((time.perf_counter() - t0) * 1000, 2))
        self._diag.set("store.wal_pages", int(frames) - int(done) if frames >= 0 else 0)

    # ----------------------------------------------------------------- pruning

    def _cutoff_ms(self, newest: int | None) -> int | None:
        """Readings before this instant are past the retention (None: keep them)."""
        if self._retention is None:
            return None
        candidates = [x for x in (self._newest_ms, newest) if x is not None]
        if not candidates:
            return None
        ref = min(ts_ms(self._clock.now()), max(candidates))
        if ref <= 0:
            return None
        cal = self._calendar
        return cal.day_ms(_months_before(cal.local_date(ref), self._retention))

    def _prune(self, conn: sqlite3.Connection, budget: int, newest: int | None = None) -> int:
        """Inside a write transaction: delete up to ``budget`` readings past the
        retention, oldest first per series, never a series' newest reading."""
        cutoff = self._cutoff_ms(newest)
        if cutoff is None or budget <= 0:
            return 0
        if self._pruned_below is not None and cutoff <= self._pruned_below:
            return 0  # done for this cutoff: nothing to look at until the day changes
        deleted = 0
        complete = True
        for meter, quantity in reading_keys(conn):
            left = budget - deleted
            if left <= 0:
                complete = False
                break
            key = (meter, quantity)
            last = conn.execute(
                "SELECT max(ts_ms) FROM readings WHERE meter = ? AND quantity = ?", key
            ).fetchone()[0]
            upper = min(cutoff, last)
            row = conn.execute(
                "SELECT ts_ms FROM readings WHERE meter = ? AND quantity = ? AND ts_ms < ? "
                "ORDER BY ts_ms LIMIT 1 OFFSET ?",
                (*key, upper, left - 1),
            ).fetchone()
            if row is not None:
                upper = row[0] + 1  # exactly ``left`` rows
                complete = False
            deleted += conn.execute(
                "DELETE FROM readings WHERE meter = ? AND quantity = ? AND ts_ms < ?",
                (*key, upper),
            ).rowcount
        if complete:
            self._pruned_below = cutoff
        return deleted

    # ------------------------------------------------------------------ failures

    def _failed(self, batches: Sequence[Batch], e: Exception) -> None:
        dropped = self._requeue(batches)
        with self._lock:
            pending = len(self._pending)
        self._diag.count("store.write_errors")
        self._diag.set("store.pending_batches", pending)
        if dropped:
            self._note_dropped(dropped)
        status = f"error: {e}"
        if status != self._status:
            if isinstance(e, sqlite3.Error | StoreError):
                log.warning(
                    "store commit failed: %s; keeping %d batches in memory, retrying every %g s",
                    e,
                    pending,
                    self._interval,
                )
            else:
                log.exception("store commit failed unexpectedly; keeping %d batches", pending)
        else:
            log.debug("store commit failed again: %s (%d batches pending)", e, pending)
        self._set_status(status)
        self._set_warning(" ".join(t for t in (warning_text(e), self._gap_text()) if t))

    def _note_dropped(self, n: int) -> None:
        self._diag.count("store.dropped_batches", n)
        with self._lock:
            self._dropped_total += n
        if not self._drop_logged:
            self._drop_logged = True
            log.warning("store queue is full (%d batches): dropping the oldest", self._max_pending)
        if self._status.startswith("error"):
            self._set_warning(" ".join(t for t in (self._warning_head(), self._gap_text()) if t))

    def _warning_head(self) -> str:
        return warning_text(Exception(self._status.removeprefix("error: ")))

    def _gap_text(self) -> str:
        with self._lock:
            n = self._dropped_total
        if not n:
            return ""
        return (
            f"History has a gap: {n} batch{'es' if n != 1 else ''} of readings could not be "
            "kept while it was not being saved."
        )

    def _count_commit(self, changes: int, duplicates: int, t0: float) -> None:
        ms = (time.perf_counter() - t0) * 1000
        self._commit_ms_max = max(self._commit_ms_max, ms)
        self._diag.count("store.commits")
        self._diag.count("store.rows_written", changes)
        if duplicates:
            self._diag.count("store.duplicate_readings", duplicates)
        self._diag.set("store.commit_ms_last", round(ms, 2))
        self._diag.set("store.commit_ms_max", round(self._commit_ms_max, 2))

    def _set_status(self, status: str) -> None:
        self._status = status
        self._diag.set("store.status", status)

    def _set_warning(self, text: str) -> None:
        self._warning = text
        self._diag.set("store.warning", text)


@dataclass(frozen=True, slots=True)
class RepriceResult:
    """What ``Store.reprice`` did: rows given (and found), rows whose cost changed, and
    the old and new total cost of the rows given, in milli-minor units."""

    rows: int
    changed: int
    old_milli: int
    new_milli: int


def _reprice_minutes(
    conn: sqlite3.Connection, utility: str, costs: Sequence[tuple[str, int, int]]
) -> tuple[RepriceResult, set[tuple[str, int]]]:
    """Inside a write transaction: set the new costs; return the result and the
    (meter, minute_ms) rows that changed."""
    rows = changed = old_total = new_total = 0
    touched: set[tuple[str, int]] = set()
    updates: list[tuple[int, str, int]] = []
    for meter, minute, new in costs:
        row = conn.execute(
            "SELECT cost_milli FROM usage WHERE meter = ? AND minute_ms = ? AND utility = ?",
            (meter, minute, utility),
        ).fetchone()
        if row is None:
            continue
        rows += 1
        old = int(row[0])
        old_total += old
        new_total += int(new)
        if old != new:
            changed += 1
            touched.add((meter, minute))
            updates.append((int(new), meter, minute))
    if updates:
        conn.executemany(
            "UPDATE usage SET cost_milli = ? WHERE meter = ? AND minute_ms = ?", updates
        )
    return RepriceResult(rows, changed, old_total, new_total), touched


def _recompute_rollup_costs(
    conn: sqlite3.Connection, cal: Calendar, minutes: set[tuple[str, int]]
) -> None:
    """Inside a write transaction: each rollup row holding one of ``minutes`` gets its
    ``cost_milli`` summed again from the minutes (a primary-key range scan each)."""
    affected: tuple[set[tuple[str, int]], ...] = (set(), set(), set())
    for meter, minute in minutes:
        for level_set, start in zip(affected, cal.buckets(minute), strict=True):
            level_set.add((meter, start))
    for level, (table, keys) in enumerate(zip(ROLLUP_TABLES, affected, strict=True)):
        conn.executemany(
            f"UPDATE {table} SET cost_milli = (SELECT coalesce(sum(cost_milli), 0) FROM usage "
            "WHERE meter = ? AND minute_ms >= ? AND minute_ms < ?) "
            "WHERE meter = ? AND start_ms = ?",
            [
                (meter, start, cal.next_start(start, level), meter, start)
                for meter, start in sorted(keys)
            ],
        )


def rebuild_rollups(conn: sqlite3.Connection, cal: Calendar, *, chunk: int = 50_000) -> int:
    """Inside a write transaction: refill the hour, day and month rollups from ``usage``
    in ``cal``'s timezone and record it; returns the minutes read."""
    for table in ROLLUP_TABLES:
        conn.execute(f"DELETE FROM {table}")
    rollups = _Rollups()
    minutes = 0
    buckets = cal.buckets
    cur = conn.execute(
        "SELECT meter, utility, minute_ms, amount, energy_wh, cost_milli FROM usage "
        "ORDER BY meter, minute_ms"
    )
    while True:
        rows = cur.fetchmany(chunk)
        if not rows:
            break
        minutes += len(rows)
        rollups.add([(m, u, buckets(t), a, e, c) for m, u, t, a, e, c in rows])
        if len(rollups) > chunk:
            rollups.execute(conn)
            rollups.clear()
    rollups.execute(conn)
    conn.execute(_SQL_STATE, (TIMEZONE_KEY, cal.name, None))
    return minutes
