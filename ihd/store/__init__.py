"""ihd.store: the durable history (SQLite, one writer thread, time-bounded commits).

Layers above hand their data over as a ``Batch`` (``Store.submit``) and read it back
through a per-thread ``StoreReader`` (``Store.reader()``). See ``store.py`` for why it
is built this way and ``schema.py`` for the tables and how they evolve.
"""

from ihd.store.model import (
    MINUTE_MS,
    Batch,
    LastReading,
    MeterInfo,
    StoreError,
    Usage,
    UsageBucket,
    UsageTotal,
    minute_ms,
    ts_ms,
)
from ihd.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from ihd.store.store import Store, StoreReader

__all__ = [
    "MIGRATIONS",
    "MINUTE_MS",
    "SCHEMA_VERSION",
    "Batch",
    "LastReading",
    "MeterInfo",
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
