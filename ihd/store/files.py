"""The history file as a whole: backup, restore and CSV export.

* ``backup`` copies a consistent snapshot with SQLite's online backup API from a read-only
  connection, in one step: in WAL mode that is one read transaction, so the running
  display goes on committing while it copies, and the copy is the database as of one
  commit. The copy is written next to the destination, converted to a self-contained
  file (``journal_mode=DELETE``: no ``-wal`` beside it), checked (``integrity_check``),
  flushed to disk and only then renamed into place: a backup that fails leaves no file
  that looks like a backup.
* ``restore`` checks the backup (an ihd history, a schema this version can open, intact),
  copies it next to the live file, and swaps it in with one atomic ``rename``. It must not
  run beside a display that has the file open: the caller checks the control socket, and
  this checks that nobody holds the file (a full WAL checkpoint must complete). The file
  it replaces is kept as ``<name>.before-restore`` (a hard link taken before the swap).
* ``export_csv`` writes usage per minute, hour, day or month (or the raw readings) for a
  span, one row per meter and period, with local times.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from ihd.meter.reading import Utility
from ihd.store.model import StoreError
from ihd.store.reader import StoreReader
from ihd.store.schema import APPLICATION_ID, SCHEMA_VERSION

PREVIOUS_SUFFIX = ".before-restore"
UNITS = {Utility.ELECTRICITY: "Wh", Utility.GAS: "m3", Utility.WATER: "m3"}


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: Path
    bytes: int
    schema_version: int
    readings: int
    usage_minutes: int


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _source(db: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to ``db``; read-write only if it must recover the WAL of a
    writer that died (a read-only connection cannot: SQLITE_READONLY_RECOVERY)."""
    if not db.is_file():
        raise StoreError(f"{db}: no such file")
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("PRAGMA busy_timeout = 5000")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as e:
            if "readonly" not in str(e):
                raise
            conn.close()
            conn = sqlite3.connect(db)
            conn.execute("PRAGMA busy_timeout = 5000")
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{db}: {e}") from None
    try:
        yield conn
    finally:
        conn.close()


def _check(conn: sqlite3.Connection, what: Path) -> tuple[int, int, int]:
    """(schema version, readings, usage minutes) of an intact ihd history, else StoreError."""
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{what} is not an SQLite database ({e})") from None
    if app_id != APPLICATION_ID:
        raise StoreError(f"{what} is not an ihd history (application_id {app_id:#x})")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{what} is schema v{version}, newer than this ihd (v{SCHEMA_VERSION})")
    problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    if problems != ["ok"]:
        raise StoreError(f"{what} is damaged: {'; '.join(problems[:3])}")
    readings = int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    usage = int(conn.execute("SELECT count(*) FROM usage").fetchone()[0])
    return version, readings, usage


def _copy(src: sqlite3.Connection, dest_tmp: Path) -> None:
    """One-step online backup into a new self-contained file, flushed to disk."""
    with contextlib.suppress(FileNotFoundError):
        dest_tmp.unlink()
    dst = sqlite3.connect(dest_tmp)
    try:
        src.backup(dst)  # pages=-1: all at once, one consistent snapshot
        dst.execute("PRAGMA journal_mode = DELETE")
        dst.commit()
    finally:
        dst.close()
    _fsync_file(dest_tmp)


def backup(db: Path, dest: Path) -> FileInfo:
    """Copy the history ``db`` to ``dest`` (replaced atomically), safe while it is written."""
    dest = Path(dest)
    if dest.resolve() == Path(db).resolve():
        raise StoreError("the backup must not be the history file itself")
    if dest.is_dir():
        raise StoreError(f"{dest} is a directory")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with _source(Path(db)) as src:
            _copy(src, tmp)
        with contextlib.closing(
            sqlite3.connect(f"{tmp.resolve().as_uri()}?mode=ro", uri=True)
        ) as c:
            version, readings, usage = _check(c, tmp)
        os.replace(tmp, dest)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"backup to {dest} failed: {e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(dest.parent)
    return FileInfo(dest, dest.stat().st_size, version, readings, usage)


def restore(backup_file: Path, db: Path) -> FileInfo:
    """Make ``backup_file`` the history at ``db``. The display must not be running.

    Raises ``StoreError`` (and changes nothing) if the backup is not an intact ihd history
    this version can open, or if something still has ``db`` open."""
    backup_file, db = Path(backup_file), Path(db)
    if backup_file.resolve() == db.resolve():
        raise StoreError("that is the history file itself")
    tmp = db.with_name(f".{db.name}.restore.{os.getpid()}.tmp")
    try:
        with _source(backup_file) as src:
            version, readings, usage = _check(src, backup_file)
            db.parent.mkdir(parents=True, exist_ok=True)
            _copy(src, tmp)
        if db.exists():
            _quiesce(db)
            previous = db.with_name(db.name + PREVIOUS_SUFFIX)
            with contextlib.suppress(FileNotFoundError):
                previous.unlink()
            with contextlib.suppress(OSError):  # no hard links here: the old file goes
                os.link(db, previous)
        os.replace(tmp, db)  # the swap: atomic
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                db.with_name(db.name + suffix).unlink()
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"restore of {db} failed: {e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(db.parent)
    return FileInfo(db, db.stat().st_size, version, readings, usage)


def _quiesce(db: Path) -> None:
    """Fold the live file's WAL into it and make sure nothing else has it open.

    Leaving WAL mode needs the only connection to the file: any other one, even an idle
    reader, holds a shared lock that makes it fail ("database is locked")."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 1000")
        mode = str(conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]).lower()
    except sqlite3.OperationalError as e:
        raise StoreError(f"{db} is in use ({e}): stop the display first") from None
    finally:
        conn.close()
    if mode != "delete":
        raise StoreError(f"{db} is in use (journal_mode stays {mode}): stop the display first")


# ---------------------------------------------------------------------- export


def _number(x: float) -> str:
    """Six decimals at most, no float noise, no exponent: 1234.5, 0.000123."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _local(t: float, zone: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(t, zone).isoformat(timespec="seconds")


def export_csv(
    reader: StoreReader,
    out: TextIO,
    *,
    start: float,
    end: float,
    utility: Utility | None = None,
    interval: str = "minute",
    readings: bool = False,
) -> int:
    """Write the history in [start, end) to ``out`` as CSV; returns the data rows.

    Usage rows (``interval``: minute, hour, day or month, in the household's calendar):
    ``start,end,utility,meter,amount,unit,energy_kwh,cost_minor`` with local ISO 8601
    times (with their UTC offset), the amount in the register's unit (Wh, m3), energy in
    kWh (empty for water) and the cost as priced on arrival, in minor units (pence,
    cents) to three decimals. Raw readings (``readings=True``):
    ``time,utility,meter,quantity,value,raw,scaler``."""
    zone = reader.calendar.zone
    w = csv.writer(out, lineterminator="\n")
    n = 0
    if readings:
        w.writerow(["time", "utility", "meter", "quantity", "value", "raw", "scaler"])
        for r in reader.readings(start, end):
            if utility is not None and r.utility is not utility:
                continue
            w.writerow(
                [
                    _local(r.timestamp, zone),
                    r.utility,
                    r.meter,
                    r.quantity,
                    r.value,
                    r.raw,
                    r.scaler,
                ]
            )
            n += 1
        return n
    w.writerow(["start", "end", "utility", "meter", "amount", "unit", "energy_kwh", "cost_minor"])
    for row in reader.usage_rows(interval, start, end, utility=utility):
        w.writerow(
            [
                _local(row.start, zone),
                _local(row.end, zone),
                row.utility,
                row.meter,
                _number(row.amount),
                UNITS[row.utility],
                "" if row.energy_wh is None else _number(row.energy_wh / 1000),
                Decimal(row.cost_milli).scaleb(-3),
            ]
        )
        n += 1
    return n
