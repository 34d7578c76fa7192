"""ihd.store: the durable history (SQLite, one writer thread, time-bounded commits).

Layers above hand their data over as a ``Batch`` (``Store.submit``) and read it back
through a per-thread ``StoreReader`` (``Store.reader()``). See ``store.py`` for why it
is built this way, ``schema.py`` for the tables and how they evolve, ``calendar.py`` for
the local hours, days and months of the rollups, ``reader.py`` for the queries and
``files.py`` for backup, restore and CSV export.
"""

from ihd.store.calendar import Calendar
from ihd.store.model import (
    MINUTE_MS,
    Batch,
    LastReading,
    MeterInfo,
    MeterUsage,
    PeriodUsage,
    StoreError,
    Usage,
    UsageBucket,
    UsageTotal,
    minute_ms,
    ts_ms,
)
from ihd.store.reader import StoreReader
from ihd.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from ihd.store.store import DEFAULT_RETENTION_MONTHS, Store

__all__ = [
    "DEFAULT_RETENTION_MONTHS",
    "MIGRATIONS",
    "MINUTE_MS",
    "SCHEMA_VERSION",
    "Batch",
    "Calendar",
    "LastReading",
    "MeterInfo",
    "MeterUsage",
    "PeriodUsage",
    "Store",
    "StoreError",
    "StoreReader",
    "Usage",
    "UsageBucket",
    "UsageTotal",
    "migrate",
    "minute_ms",
    "ts_ms",
]
