"""Read-only queries on the history: what the ingest resumes from and what the UI shows.

``StoreReader`` owns one ``mode=ro`` connection, for one thread. Totals and views read
the rollups (``usage_month``, ``usage_day``, ``usage_hour``) as far as they can and the
per-minute ``usage`` only at the edges, so every query touches a bounded number of rows
whatever the span: a year's total is 12 month rows, not half a million minutes.

How a span is covered. ``usage_total(utility, start, end)`` is the sum of the minutes that
start in [start, end). The span is cut into the whole local months inside it, then the
whole days either side of those, then whole hours, then single minutes: at most seven
primary-key range scans per meter. Each rollup row is the exact sum of its minutes (the
writer maintains both in one transaction), so the result equals summing the minutes,
up to floating-point rounding of ``amount``/``energy_wh`` (costs are integers: exact).

The calendar (the household's timezone) is the one the rollups were built for, read from
the database (``state``: ``store.timezone``), never from the caller, so a reader cannot
disagree with the data. A database whose rollups are not built yet (a v1 file not yet
opened by a writer of this version) is answered from the minutes alone.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from ihd.meter.reading import Reading, Utility
from ihd.store.calendar import DAY, HOUR, MONTH, Calendar
from ihd.store.model import (
    MINUTE_MS,
    LastReading,
    MeterInfo,
    MeterUsage,
    PeriodUsage,
    StoreError,
    UsageBucket,
    UsageTotal,
    ts_ms,
)
from ihd.store.schema import ROLLUP_TABLES

BUSY_TIMEOUT_MS = 5_000
DEFAULT_TIMEZONE = "Europe/London"
TIMEZONE_KEY = "store.timezone"
_MAX_INT64 = 2**63 - 1
#: Calendar arithmetic is done between 1970 and 9000; spans reaching outside go by minutes.
_CAL_MIN_MS = 0
_CAL_MAX_MS = round(dt.datetime(9000, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
HALF_HOUR_MS = 1_800_000

#: level -> (table, key column)
_TABLES = {
    MONTH: ("usage_month", "start_ms"),
    DAY: ("usage_day", "start_ms"),
    HOUR: ("usage_hour", "start_ms"),
    -1: ("usage", "minute_ms"),
}
LEVEL_NAMES = {"minute": -1, "hour": HOUR, "day": DAY, "month": MONTH}


def describe_open_error(path: Path, e: sqlite3.Error) -> str:
    msg = str(e)
    if "file is not a database" in msg:
        return f"{path} is not an SQLite database (corrupt, encrypted or another file type)"
    if "malformed" in msg:
        return f"{path} is corrupt: {msg}"
    if "unable to open" in msg:
        return f"cannot open {path}: {msg} (missing, a directory, or no permission)"
    return f"cannot open {path}: {msg}"


def _float(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]


def _energy(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


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
            raise StoreError(describe_open_error(Path(path), e)) from e
        self._calendar: Calendar | None = None
        self._rollups: bool | None = None

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

    # ------------------------------------------------------------------ calendar

    def _load_calendar(self) -> tuple[Calendar, bool]:
        if self._calendar is None or self._rollups is None:
            tables = {
                str(r[0])
                for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            tz = None
            if "state" in tables:
                row = self._conn.execute(
                    "SELECT value FROM state WHERE key = ?", (TIMEZONE_KEY,)
                ).fetchone()
                tz = None if row is None else str(row[0])
            self._rollups = tz is not None and set(ROLLUP_TABLES) <= tables
            try:
                self._calendar = Calendar(tz or DEFAULT_TIMEZONE)
            except ValueError:
                self._calendar, self._rollups = Calendar(DEFAULT_TIMEZONE), False
        return self._calendar, self._rollups

    @property
    def calendar(self) -> Calendar:
        """The household calendar the rollups were built for."""
        return self._load_calendar()[0]

    @property
    def timezone(self) -> str:
        return self.calendar.name

    # ------------------------------------------------------------------ readings

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
            return reading_keys(conn)

    def last_readings(self) -> dict[tuple[str, str], LastReading]:
        """The newest reading of every (meter, quantity): where the ingest resumes deltas."""
        out: dict[tuple[str, str], LastReading] = {}
        with self._snapshot() as conn:
            for meter, quantity in reading_keys(conn):
                ts, raw, scaler = conn.execute(
                    "SELECT ts_ms, raw, scaler FROM readings WHERE meter = ? AND quantity = ? "
                    "ORDER BY ts_ms DESC LIMIT 1",
                    (meter, quantity),
                ).fetchone()
                out[(meter, quantity)] = LastReading(ts / 1000, raw, scaler)
        return out

    def readings(self, start: float, end: float, *, meter: str | None = None) -> Iterator[Reading]:
        """Raw readings with ``start <= ts < end``, by meter, quantity and time.

        A generator: it holds a read transaction until it is exhausted or closed."""
        utilities = {m.eui64: m.utility for m in self.meters()}
        keys = [k for k in self.series_keys() if meter is None or k[0] == meter]
        lo, hi = ts_ms(start), ts_ms(end)
        for m, quantity in keys:
            utility = utilities.get(m, Utility.ELECTRICITY)
            for ts, raw, scaler in self._conn.execute(
                "SELECT ts_ms, raw, scaler FROM readings WHERE meter = ? AND quantity = ? "
                "AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms",
                (m, quantity, lo, hi),
            ):
                yield Reading(m, utility, quantity, raw, scaler, ts / 1000)

    # ------------------------------------------------------------------ usage

    def _meters_of(
        self, conn: sqlite3.Connection, utility: Utility, meter: str | None
    ) -> list[str]:
        if meter is not None:
            return [meter]
        _, rollups = self._load_calendar()
        if rollups:  # the month rollup is tiny: 12 rows a year per meter
            return [
                str(r[0])
                for r in conn.execute(
                    "SELECT DISTINCT meter FROM usage_month WHERE utility = ? ORDER BY meter",
                    (str(utility),),
                )
            ]
        return usage_meters(conn, utility)

    def _sum(
        self,
        conn: sqlite3.Connection,
        level: int,
        meters: Sequence[str],
        utility: Utility,
        lo: int,
        hi: int,
    ) -> tuple[float, float | None, int]:
        table, key = _TABLES[level]
        amount, energy, cost = conn.execute(
            f"SELECT coalesce(sum(amount), 0.0), sum(energy_wh), coalesce(sum(cost_milli), 0) "
            f"FROM {table} WHERE meter IN ({','.join('?' * len(meters))}) "
            f"AND utility = ? AND {key} >= ? AND {key} < ?",
            (*meters, str(utility), lo, hi),
        ).fetchone()
        return float(amount), None if energy is None else float(energy), int(cost)

    def _cover(self, lo: int, hi: int, level: int, out: list[tuple[int, int, int]]) -> None:
        """Cut [lo, hi) into whole buckets of ``level`` and finer pieces at the edges."""
        if lo >= hi:
            return
        cal, rollups = self._load_calendar()
        if level < 0 or not rollups:
            out.append((-1, lo, hi))
            return
        if lo < _CAL_MIN_MS or hi > _CAL_MAX_MS:  # outside any real meter's clock
            inner_lo, inner_hi = max(lo, _CAL_MIN_MS), min(hi, _CAL_MAX_MS)
            if inner_lo >= inner_hi:
                out.append((-1, lo, hi))
                return
            self._cover(lo, inner_lo, -1, out)
            self._cover(inner_lo, inner_hi, level, out)
            self._cover(inner_hi, hi, -1, out)
            return
        b0, b1 = cal.ceil(lo, level), cal.floor(hi, level)
        if b0 < b1:
            out.append((level, b0, b1))
            self._cover(lo, b0, level - 1, out)
            self._cover(b1, hi, level - 1, out)
        else:
            self._cover(lo, hi, level - 1, out)

    def usage_total(
        self, utility: Utility, start: float, end: float, *, meter: str | None = None
    ) -> UsageTotal:
        """Sum of the minutes that start in [start, end), over all meters of ``utility``
        (or one ``meter``): whole months, days and hours from the rollups, minutes only
        at the edges. Any span, one call."""
        lo, hi = ts_ms(start), ts_ms(end)
        with self._snapshot() as conn:
            meters = self._meters_of(conn, utility, meter)
            if not meters or lo >= hi:
                return UsageTotal(0.0, None, 0)
            pieces: list[tuple[int, int, int]] = []
            self._cover(lo, hi, MONTH, pieces)
            amount, energy, cost = 0.0, None, 0
            for level, a, b in pieces:
                pa, pe, pc = self._sum(conn, level, meters, utility, a, b)
                amount, energy, cost = amount + pa, _energy(energy, pe), cost + pc
        return UsageTotal(amount, energy, cost)

    def cost_between(
        self, t0: float, t1: float, utility: Utility, *, meter: str | None = None
    ) -> int:
        """What the usage of the minutes starting in [t0, t1) cost as it was priced when it
        arrived, in milli-minor units (``usage_total(...).cost_milli``)."""
        return self.usage_total(utility, t0, t1, meter=meter).cost_milli

    def usage_series(
        self, utility: Utility, start: float, end: float, bucket_s: int
    ) -> list[UsageBucket]:
        """Totals per fixed-length bucket aligned to ``start``; only buckets with data.

        Read from the minutes. Buckets are ``bucket_s`` long exactly; for calendar
        periods (days of 23 or 25 hours, months) use ``periods`` or the views.
        """
        if bucket_s <= 0:
            raise ValueError("bucket_s must be positive")
        start_ms, bucket_ms = ts_ms(start), int(bucket_s) * 1000
        with self._snapshot() as conn:
            meters = usage_meters(conn, utility)
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

    # ------------------------------------------------------------------ views

    def _series(
        self, utility: Utility, level: int, edges: Sequence[int], meter: str | None
    ) -> list[PeriodUsage]:
        """One ``PeriodUsage`` per [edges[i], edges[i+1]); buckets of ``level`` (-1 with
        half-hour edges: grouped from the minutes)."""
        n = len(edges) - 1
        sums: list[tuple[float, float | None, int]] = [(0.0, None, 0)] * n
        with self._snapshot() as conn:
            meters = self._meters_of(conn, utility, meter)
            _, rollups = self._load_calendar()
            if meters and n > 0:
                marks = ",".join("?" * len(meters))
                if level >= 0 and rollups:
                    table, key = _TABLES[level]
                    index = {e: i for i, e in enumerate(edges[:-1])}
                    rows = conn.execute(
                        f"SELECT {key}, sum(amount), sum(energy_wh), sum(cost_milli) "
                        f"FROM {table} WHERE meter IN ({marks}) AND utility = ? "
                        f"AND {key} >= ? AND {key} < ? GROUP BY {key}",
                        (*meters, str(utility), edges[0], edges[-1]),
                    ).fetchall()
                    for k, amount, energy, cost in rows:
                        i = index.get(k)
                        if i is not None:
                            sums[i] = (float(amount), _float(energy), int(cost))
                else:
                    for i in range(n):
                        sums[i] = self._sum(conn, -1, meters, utility, edges[i], edges[i + 1])
        return [PeriodUsage(edges[i] / 1000, edges[i + 1] / 1000, *sums[i]) for i in range(n)]

    def year_view(
        self, utility: Utility, year: int, *, meter: str | None = None
    ) -> list[PeriodUsage]:
        """The 12 local months of ``year``, from ``usage_month``."""
        cal = self.calendar
        edges = [cal.month_ms(year, m) for m in range(1, 13)] + [cal.month_ms(year + 1, 1)]
        return self._series(utility, MONTH, edges, meter)

    def month_view(
        self, utility: Utility, year: int, month: int, *, meter: str | None = None
    ) -> list[PeriodUsage]:
        """The local days of ``year``-``month`` (28 to 31), from ``usage_day``."""
        cal = self.calendar
        first = dt.date(year, month, 1)
        after = dt.date(year + month // 12, month % 12 + 1, 1)
        days = (after - first).days
        edges = [cal.day_ms(first + dt.timedelta(days=i)) for i in range(days + 1)]
        return self._series(utility, DAY, edges, meter)

    def day_view(
        self, utility: Utility, day: dt.date, *, meter: str | None = None
    ) -> list[PeriodUsage]:
        """The half-hours of local day ``day``: 48, or 46/50 on a DST change.

        Grouped from the day's minutes (1440 rows a meter) in one query."""
        cal = self.calendar
        start, end = cal.day_ms(day), cal.day_ms(day + dt.timedelta(days=1))
        edges = [*range(start, end, HALF_HOUR_MS), end]
        n = len(edges) - 1
        sums: list[tuple[float, float | None, int]] = [(0.0, None, 0)] * n
        with self._snapshot() as conn:
            meters = self._meters_of(conn, utility, meter)
            if meters:
                rows = conn.execute(
                    "SELECT (minute_ms - ?) / ? AS k, sum(amount), sum(energy_wh), "
                    "sum(cost_milli) FROM usage "
                    f"WHERE meter IN ({','.join('?' * len(meters))}) "
                    "AND utility = ? AND minute_ms >= ? AND minute_ms < ? GROUP BY k",
                    (start, HALF_HOUR_MS, *meters, str(utility), start, end),
                ).fetchall()
                for k, amount, energy, cost in rows:
                    sums[int(k)] = (float(amount), _float(energy), int(cost))
        return [PeriodUsage(edges[i] / 1000, edges[i + 1] / 1000, *sums[i]) for i in range(n)]

    def periods(
        self,
        utility: Utility,
        level: str,
        start: float,
        end: float,
        *,
        meter: str | None = None,
    ) -> list[PeriodUsage]:
        """Every local ``level`` ("hour", "day" or "month") bucket that overlaps [start,
        end), from its rollup: a week of hours, a year of days, several years of months."""
        lv = LEVEL_NAMES[level]
        if lv < 0:
            raise ValueError("level must be hour, day or month")
        lo, hi = ts_ms(start), ts_ms(end)
        if lo >= hi:
            return []
        edges = self.calendar.starts(lo, hi, lv)
        return self._series(utility, lv, edges, meter)

    def usage_intervals(
        self, utility: Utility, start: float, end: float, *, unit: str = "Wh"
    ) -> Iterator[tuple[float, float, float]]:
        """The minutes in [start, end) as ``(start, end, amount)`` rows in time order, all
        meters of ``utility`` added up: what ``ihd.tariff.usage`` prices (``cost_of_span``,
        ``reprice``, ``what_if``). ``unit`` is the tariff's ``metered_unit``: "Wh" gives
        the energy (gas converted to Wh), anything else the register amount (m3)."""
        col = "energy_wh" if unit == "Wh" else "amount"
        with self._snapshot() as conn:
            meters = usage_meters(conn, utility)
        if not meters:
            return
        for minute, amount in self._conn.execute(
            f"SELECT minute_ms, sum({col}) FROM usage "
            f"WHERE meter IN ({','.join('?' * len(meters))}) "
            "AND utility = ? AND minute_ms >= ? AND minute_ms < ? "
            "GROUP BY minute_ms ORDER BY minute_ms",
            (*meters, str(utility), ts_ms(start), ts_ms(end)),
        ):
            if amount is not None:
                yield minute / 1000, (minute + MINUTE_MS) / 1000, float(amount)

    def usage_rows(
        self,
        level: str,
        start: float,
        end: float,
        *,
        utility: Utility | None = None,
    ) -> Iterator[MeterUsage]:
        """Each meter's rows of one table ("minute", "hour", "day" or "month") whose
        start is in [start, end), by meter then time (what ``ihd export`` writes)."""
        lv = LEVEL_NAMES[level]
        cal, rollups = self._load_calendar()
        if lv >= 0 and not rollups:
            raise StoreError("this database has no rollups yet (open it with ihd once)")
        table, key = _TABLES[lv]
        where = "" if utility is None else "AND utility = ? "
        args: tuple[object, ...] = (ts_ms(start), ts_ms(end))
        if utility is not None:
            args += (str(utility),)
        for meter, begin, util, amount, energy, cost in self._conn.execute(
            f"SELECT meter, {key}, utility, amount, energy_wh, cost_milli FROM {table} "
            f"WHERE {key} >= ? AND {key} < ? {where}ORDER BY meter, {key}",
            args,
        ):
            stop = begin + MINUTE_MS if lv < 0 else cal.next_start(begin, lv)
            yield MeterUsage(
                meter,
                Utility(util),
                begin / 1000,
                stop / 1000,
                float(amount),
                None if energy is None else float(energy),
                int(cost),
            )

    # ------------------------------------------------------------------ the rest

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
        with self._snapshot() as conn:
            got = reading_span(conn)
        if got is None:
            return None
        return got[0] / 1000, got[1] / 1000

    def counts(self) -> dict[str, int]:
        """Rows per table. Scans every table: for diagnostics, not for every frame."""
        with self._snapshot() as conn:
            tables = {
                str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            return {
                table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("meters", "readings", "usage", "state", *ROLLUP_TABLES)
                if table in tables
            }


# ---------------------------------------------------------------------- shared SQL


def reading_keys(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Every (meter, quantity) in ``readings``: a skip scan, one key seek per series."""
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


def reading_span(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """(first, last) ``ts_ms`` over all series, or None: two key seeks per series."""
    first: int | None = None
    last: int | None = None
    for key in reading_keys(conn):
        # Two queries: SQLite seeks the key for a lone min() or max(), but scans
        # the whole range when both are in one SELECT.
        where = "FROM readings WHERE meter = ? AND quantity = ?"
        lo = conn.execute(f"SELECT min(ts_ms) {where}", key).fetchone()[0]
        hi = conn.execute(f"SELECT max(ts_ms) {where}", key).fetchone()[0]
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    if first is None or last is None:
        return None
    return first, last


def usage_meters(conn: sqlite3.Connection, utility: Utility) -> list[str]:
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
