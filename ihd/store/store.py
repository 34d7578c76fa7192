"""The durable history: one SQLite file, one writer thread, bounded commits.

Why it is built this way
------------------------
The display runs from an SD card. SD cards are slow to fsync, wear out with small
random writes, and lose power without warning. So:

* **Batching by time, not by push.** Producers call ``submit(batch)``, which only appends
  to an in-memory queue. One writer thread ("ihd-store") commits *everything* pending in
  ONE transaction every ``commit_interval_s`` (10 s by default), on ``flush()`` and on
  ``close()``. The number of commits, and so of syncs and WAL appends, is set by the
  interval, never by how fast meters push.
* **WAL + synchronous=NORMAL.** In WAL mode a commit is an append to the ``-wal`` file;
  with ``synchronous=NORMAL`` SQLite does not fsync on commit, only when it checkpoints
  the WAL into the main file (about every 1000 pages, ``wal_autocheckpoint``). The
  trade-off, chosen deliberately for SD cards: an application crash loses nothing that was
  committed, but a *power cut* can lose the commits the kernel had not yet written back
  (on default Linux writeback settings roughly the last 30 s, i.e. a few commit intervals,
  at worst everything since the last checkpoint). It never corrupts the database: WAL
  frames are checksummed and a torn tail is discarded on recovery. Everything newer than
  the last commit interval is in RAM only in any case. ``synchronous=FULL`` would add one
  fsync per commit (0.5-1 ms here, tens of ms on a cheap card) for little gain.
* **Atomic batches.** A ``Batch`` lands whole or not at all (see ``model.py``), so other
  layers commit their durable state (e.g. a radio frame counter) in the same
  transaction as the readings it let in. That is the "store transaction API".
* **Failures are data, not crashes.** When a commit fails for an environmental reason
  (disk full, read-only file system, I/O error, locked), the writer rolls back, keeps the
  batches in memory (bounded by ``max_pending_batches``; beyond that the oldest are dropped
  and counted), reports ``store.status = "error: ..."`` and retries at the next interval,
  on a freshly opened connection. (A file that became writable again is only picked up
  once no reader in the process holds it open: SQLite hands the new connection the old
  read-only descriptor. A card remounted read-only needs a reboot anyway.) The warning
  is logged when the status changes, not at every retry, so a full card is not also
  flooded with log lines.
  When a single batch is bad (a constraint fails, a value cannot be bound) it is isolated
  by retrying the batches one savepoint each, and only that batch is dropped, with a
  logged reason and ``store.rejected_batches``.
* **Readers have their own connections.** A sqlite3 connection belongs to one thread, and
  WAL lets readers run while the writer commits. ``Store.reader()`` opens a read-only
  connection (``mode=ro``) for the calling thread.
* **A duplicate push is a no-op.** Readings go in with ``ON CONFLICT DO NOTHING`` on
  their key (the first value for a (meter, quantity, ts_ms) wins, counted in
  ``store.duplicate_readings``). Not ``INSERT OR IGNORE``: that would also silently
  drop a row that breaks ``NOT NULL``, hiding a bug upstream instead of rejecting it.
* **The hot path is ``executemany``.** sqlite-utils creates and migrates the schema; rows
  go in with ``conn.executemany`` (2-3x faster than ``insert_all``), one statement per
  table per commit. Seeding history (``write_now``) uses the same path in one transaction.

Diagnostics (``ihd diag``): counters ``store.commits``, ``store.rows_written``,
``store.duplicate_readings``, ``store.write_errors``, ``store.rejected_batches``,
``store.dropped_batches``; states ``store.status``, ``store.pending_batches``,
``store.commit_ms_last``, ``store.commit_ms_max``, ``store.schema_version``,
``store.journal_mode``, ``store.synchronous``, ``store.busy_timeout_ms``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType

from sqlite_utils import Database

from ihd.clock import Clock, WallClock
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.store.model import (
    Batch,
    LastReading,
    MeterInfo,
    StoreError,
    UsageBucket,
    UsageTotal,
    ts_ms,
)
from ihd.store.schema import MIGRATIONS, migrate

log = logging.getLogger("ihd.store")

MIN_SQLITE = (3, 24, 0)  # UPSERT
BUSY_TIMEOUT_MS = 5_000
JOURNAL_SIZE_LIMIT = 8 * 1024 * 1024  # truncate a WAL that grew past this (e.g. after seeding)
_NO_PAGE_LIMIT = 4_294_967_294  # SQLite clamps this to its compiled-in maximum
_MAX_INT64 = 2**63 - 1
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
_SQL_USAGE = """
INSERT INTO usage (meter, minute_ms, utility, amount, energy_wh, cost_milli)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (meter, minute_ms) DO UPDATE SET
    amount = usage.amount + excluded.amount,
    energy_wh = CASE WHEN usage.energy_wh IS NULL AND excluded.energy_wh IS NULL THEN NULL
                     ELSE coalesce(usage.energy_wh, 0) + coalesce(excluded.energy_wh, 0) END,
    cost_milli = usage.cost_milli + excluded.cost_milli
"""
_SQL_STATE = """
INSERT INTO state (key, value, updated_ms) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms
"""

_Row = tuple[object, ...]

# Python-side errors that mean "these rows are bad" (binding a huge int, a wrong type).
_PY_DATA_ERRORS: tuple[type[Exception], ...] = (OverflowError, ValueError, TypeError)


class _Rows:
    """A batch (or several) flattened to parameter tuples, one list per statement."""

    __slots__ = ("meters", "readings", "state", "usage")

    def __init__(self) -> None:
        self.meters: list[_Row] = []
        self.readings: list[_Row] = []
        self.usage: list[_Row] = []
        self.state: list[_Row] = []

    @classmethod
    def of(cls, batch: Batch, now_ms: int) -> _Rows:
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
        rows.usage = [
            (u.meter, u.minute_ms, u.utility, u.amount, u.energy_wh, u.cost_milli)
            for u in batch.usage
        ]
        rows.state = [(k, v, now_ms) for k, v in batch.state.items()]
        return rows

    def extend(self, other: _Rows) -> None:
        self.meters.extend(other.meters)
        self.readings.extend(other.readings)
        self.usage.extend(other.usage)
        self.state.extend(other.state)

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


def _describe_open_error(path: Path, e: sqlite3.Error) -> str:
    msg = str(e)
    if "file is not a database" in msg:
        return f"{path} is not an SQLite database (corrupt, encrypted or another file type)"
    if "malformed" in msg:
        return f"{path} is corrupt: {msg}"
    if "unable to open" in msg:
        return f"cannot open {path}: {msg} (missing, a directory, or no permission)"
    return f"cannot open {path}: {msg}"


class Store:
    """Owns the database file: opens and migrates it, and runs the one writer thread.

    Thread-safe: ``submit``, ``flush``, ``close``, ``reader`` and ``set_max_pages`` may be
    called from any thread. ``write_now`` is for seeding, before ``start()``.
    """

    def __init__(
        self,
        path: Path,
        *,
        diag: Diagnostics,
        commit_interval_s: float = 10.0,
        max_pending_batches: int = 100_000,
        max_pages: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Open (creating if needed) and migrate the database; raise ``StoreError`` if not.

        ``max_pages`` caps the file size (``PRAGMA max_page_count``, 4 KiB pages): a
        guard against filling the card, and how the tests make a real "disk full".
        ``clock`` stamps ``state.updated_ms`` (wall clock by default).
        """
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old (need 3.24+)")
        if commit_interval_s <= 0:
            raise ValueError("commit_interval_s must be positive")
        if max_pending_batches < 1:
            raise ValueError("max_pending_batches must be at least 1")
        self._path = Path(path)
        self._diag = diag
        self._interval = float(commit_interval_s)
        self._max_pending = max_pending_batches
        self._max_pages = max_pages
        self._clock: Clock = clock or WallClock()

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

        # _conn_lock guards the write connection (the writer thread in normal running).
        self._conn_lock = threading.Lock()
        self._status = "ok"
        self._commit_ms_max = 0.0
        self._conn: sqlite3.Connection | None = self._open()
        self._set_status("ok")
        diag.set("store.pending_batches", 0)

    # ----------------------------------------------------------------- lifecycle

    @property
    def path(self) -> Path:
        return self._path

    @property
    def status(self) -> str:
        """``"ok"``, ``"error: <reason>"`` or ``"closed"``."""
        return self._status

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
                self._conn.close()
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
                rows = _Rows.of(batch, ts_ms(self._clock.now()))
                before = conn.total_changes
                conn.execute("BEGIN IMMEDIATE")
                duplicates = rows.execute(conn)
                conn.execute("COMMIT")
            except Exception as e:
                self._rollback_quietly(conn)
                raise StoreError(f"write failed: {e}") from e
            changes = conn.total_changes - before
        self._count_commit(changes, duplicates, t0)
        return changes

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
        """Open the write connection, set its pragmas and migrate. Raises StoreError."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory for {self._path}: {e}") from e
        try:
            # check_same_thread=False: created here, then used by the writer thread,
            # always under _conn_lock.
            conn = sqlite3.connect(str(self._path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(_describe_open_error(self._path, e)) from e
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db = Database(conn, execute_plugins=False)
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            version = migrate(db, MIGRATIONS)
            self._apply_max_pages(conn)
            # Read the per-connection settings back: what ``ihd diag`` shows is what is set.
            sync = _SYNCHRONOUS.get(int(conn.execute("PRAGMA synchronous").fetchone()[0]), "?")
            busy = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as e:
            conn.close()
            raise StoreError(_describe_open_error(self._path, e)) from e
        if mode != "wal":
            log.warning("WAL mode unavailable for %s (journal_mode=%s)", self._path, mode)
        self._diag.set("store.journal_mode", mode)
        self._diag.set("store.synchronous", sync)
        self._diag.set("store.busy_timeout_ms", busy)
        self._diag.set("store.schema_version", version)
        return conn

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

    @staticmethod
    def _rollback_quietly(conn: sqlite3.Connection | None) -> None:
        if conn is not None and conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

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
            try:
                ok = self._attempt(batches)
            except Exception:  # a bug in _attempt itself: keep the data and the thread
                log.exception("store writer error")
                self._requeue(batches)
                ok = False
            next_due = time.monotonic() + self._interval
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
                changes, duplicates, rejected = self._write(conn, batches)
            except Exception as e:
                self._rollback_quietly(conn)
                # Reopen before the next try: a read-only or replaced file, or a file
                # system remounted read-write, is only noticed by a new connection.
                self._drop_connection()
                self._failed(batches, e)
                return False
        self._count_commit(changes, duplicates, t0)
        for batch, reason in rejected:
            self._diag.count("store.rejected_batches")
            log.warning("rejected a batch of %d rows: %s", batch.rows, reason)
        if self._status != "ok":
            log.info("store writes recovered: %d batches written", len(batches) - len(rejected))
        self._set_status("ok")
        with self._lock:
            pending = len(self._pending)
        self._diag.set("store.pending_batches", pending)
        self._drop_logged = False
        return True

    def _write(
        self, conn: sqlite3.Connection, batches: Sequence[Batch]
    ) -> tuple[int, int, list[tuple[Batch, str]]]:
        """One transaction; returns (rows changed, duplicate readings, rejected batches).

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
                rows = _Rows.of(batch, now_ms)
            except Exception as e:  # e.g. not a Reading: reject without touching SQLite
                rejected.append((batch, f"invalid batch: {e!r}"))
                continue
            converted.append((batch, rows))
            merged.extend(rows)

        before = conn.total_changes
        conn.execute("BEGIN IMMEDIATE")
        try:
            duplicates = merged.execute(conn)
        except Exception as e:
            if not _is_data_error(e):
                raise
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            duplicates = 0
            for batch, rows in converted:
                conn.execute("SAVEPOINT batch")
                try:
                    duplicates += rows.execute(conn)
                except Exception as e2:
                    if not _is_data_error(e2):
                        raise
                    conn.execute("ROLLBACK TO batch")
                    rejected.append((batch, f"{type(e2).__name__}: {e2}"))
                conn.execute("RELEASE batch")
        conn.execute("COMMIT")
        return conn.total_changes - before, duplicates, rejected

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

    def _note_dropped(self, n: int) -> None:
        self._diag.count("store.dropped_batches", n)
        if not self._drop_logged:
            self._drop_logged = True
            log.warning("store queue is full (%d batches): dropping the oldest", self._max_pending)

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


class StoreReader:
    """Read-only queries on the store, for one thread (it owns its connection).

    Opened with ``mode=ro``: a bug in a reader can never write. In WAL mode readers do not
    block the writer and see the last committed state. Times are float POSIX seconds.
    """

    def __init__(self, path: Path) -> None:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error as e:
            raise StoreError(_describe_open_error(Path(path), e)) from e

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several queries against one consistent state (one read transaction)."""
        self._conn.execute("BEGIN")
        try:
            yield self._conn
        finally:
            self._conn.execute("COMMIT")

    def last_reading(self, meter: str, quantity: str) -> LastReading | None:
        row = self._conn.execute(
            "SELECT ts_ms, raw, scaler FROM readings WHERE meter = ? AND quantity = ? "
            "ORDER BY ts_ms DESC LIMIT 1",
            (meter, quantity),
        ).fetchone()
        return None if row is None else LastReading(row[0] / 1000, row[1], row[2])

    def series_keys(self) -> list[tuple[str, str]]:
        """Every (meter, quantity) with readings: a skip scan, one index seek per key."""
        with self._snapshot() as conn:
            return self._keys(conn)

    @staticmethod
    def _keys(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        keys: list[tuple[str, str]] = []
        row = conn.execute(
            "SELECT meter, quantity FROM readings ORDER BY meter, quantity LIMIT 1"
        ).fetchone()
        while row is not None:
            keys.append((row[0], row[1]))
            # The full key in the row value makes SQLite seek past the whole (meter,
            # quantity) range; "(meter, quantity) > (?, ?)" alone walks through it.
            row = conn.execute(
                "SELECT meter, quantity FROM readings WHERE (meter, quantity, ts_ms) > (?, ?, ?) "
                "ORDER BY meter, quantity, ts_ms LIMIT 1",
                (row[0], row[1], _MAX_INT64),
            ).fetchone()
        return keys

    def last_readings(self) -> dict[tuple[str, str], LastReading]:
        """The newest reading of every (meter, quantity): where the ingest resumes deltas."""
        out: dict[tuple[str, str], LastReading] = {}
        with self._snapshot() as conn:
            for meter, quantity in self._keys(conn):
                ts, raw, scaler = conn.execute(
                    "SELECT ts_ms, raw, scaler FROM readings WHERE meter = ? AND quantity = ? "
                    "ORDER BY ts_ms DESC LIMIT 1",
                    (meter, quantity),
                ).fetchone()
                out[(meter, quantity)] = LastReading(ts / 1000, raw, scaler)
        return out

    @staticmethod
    def _usage_meters(conn: sqlite3.Connection, utility: Utility) -> list[str]:
        """Meters with usage rows of ``utility``: a skip scan, one key seek per meter."""
        meters: list[str] = []
        row = conn.execute(
            "SELECT meter, utility FROM usage ORDER BY meter, minute_ms LIMIT 1"
        ).fetchone()
        while row is not None:
            if row[1] == utility:
                meters.append(row[0])
            row = conn.execute(
                "SELECT meter, utility FROM usage WHERE (meter, minute_ms) > (?, ?) "
                "ORDER BY meter, minute_ms LIMIT 1",
                (row[0], _MAX_INT64),
            ).fetchone()
        return meters

    def usage_total(self, utility: Utility, start: float, end: float) -> UsageTotal:
        """Sum of the minutes that start in [start, end), over all meters of ``utility``."""
        with self._snapshot() as conn:
            meters = self._usage_meters(conn, utility)
            if not meters:
                return UsageTotal(0.0, None, 0)
            amount, energy, cost = conn.execute(
                "SELECT coalesce(sum(amount), 0.0), sum(energy_wh), "
                "coalesce(sum(cost_milli), 0) FROM usage "
                f"WHERE meter IN ({','.join('?' * len(meters))}) "
                "AND utility = ? AND minute_ms >= ? AND minute_ms < ?",
                (*meters, str(utility), ts_ms(start), ts_ms(end)),
            ).fetchone()
        return UsageTotal(float(amount), None if energy is None else float(energy), int(cost))

    def usage_series(
        self, utility: Utility, start: float, end: float, bucket_s: int
    ) -> list[UsageBucket]:
        """Totals per fixed-length bucket aligned to ``start``; only buckets with data.

        Buckets are ``bucket_s`` long exactly, so for calendar days across a DST change
        ask for hours and group them, or call ``usage_total`` per local day.
        """
        if bucket_s <= 0:
            raise ValueError("bucket_s must be positive")
        start_ms, bucket_ms = ts_ms(start), int(bucket_s) * 1000
        with self._snapshot() as conn:
            meters = self._usage_meters(conn, utility)
            if not meters:
                return []
            rows = conn.execute(
                "SELECT (minute_ms - ?) / ? AS k, sum(amount), sum(energy_wh), "
                "sum(cost_milli) FROM usage "
                f"WHERE meter IN ({','.join('?' * len(meters))}) "
                "AND utility = ? AND minute_ms >= ? AND minute_ms < ? GROUP BY k ORDER BY k",
                (start_ms, bucket_ms, *meters, str(utility), start_ms, ts_ms(end)),
            ).fetchall()
        return [
            UsageBucket(
                (start_ms + k * bucket_ms) / 1000,
                float(amount),
                None if energy is None else float(energy),
                int(cost),
            )
            for k, amount, energy, cost in rows
        ]

    def meters(self) -> list[MeterInfo]:
        rows = self._conn.execute(
            "SELECT eui64, utility, label, last_seen_ms, first_seen_ms FROM meters ORDER BY eui64"
        ).fetchall()
        return [
            MeterInfo(eui64, Utility(utility), label, last or 0, first)
            for eui64, utility, label, last, first in rows
        ]

    def get_state(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def states(self, prefix: str) -> dict[str, str]:
        """All state entries whose key starts with ``prefix`` (e.g. ``"smwap.fc."``)."""
        rows = self._conn.execute(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix),
        ).fetchall()
        return {str(k): str(v) for k, v in rows}

    def span(self) -> tuple[float, float] | None:
        """(first, last) reading time over all meters, or None if there are no readings."""
        first: int | None = None
        last: int | None = None
        with self._snapshot() as conn:
            for meter, quantity in self._keys(conn):
                # Two queries: SQLite seeks the key for a lone min() or max(), but scans
                # the whole range when both are in one SELECT.
                key = (meter, quantity)
                where = "FROM readings WHERE meter = ? AND quantity = ?"
                lo = conn.execute(f"SELECT min(ts_ms) {where}", key).fetchone()[0]
                hi = conn.execute(f"SELECT max(ts_ms) {where}", key).fetchone()[0]
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
        if first is None or last is None:
            return None
        return first / 1000, last / 1000

    def counts(self) -> dict[str, int]:
        """Rows per table. Scans every table: for diagnostics, not for every frame."""
        with self._snapshot() as conn:
            return {
                table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("meters", "readings", "usage", "state")
            }
