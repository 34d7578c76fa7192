"""The database schema, as an ordered list of migrations keyed by ``PRAGMA user_version``.

Why versioned from day one: the database on a display's SD card outlives many software
updates, and it cannot be recreated (it *is* the history). So the schema only ever moves
forward, one numbered step at a time:

* ``MIGRATIONS[i]`` takes the database from version ``i`` to ``i + 1``. Never edit or
  reorder a released migration; append a new one.
* ``migrate()`` applies the pending ones, each in its own ``BEGIN IMMEDIATE`` transaction
  together with the ``user_version`` bump, so a crash mid-upgrade leaves the database at
  the last complete version, never half-migrated.
* A database *newer* than the code (the user rolled back an update) is refused with a
  clear error instead of being written by code that does not know its tables.

``user_version`` lives in the database header: reading it costs nothing and needs no
bookkeeping table. (sqlite-utils' own ``Migrations`` keeps names in a table but cannot
tell that a database is newer than the code, which is the failure we care about.)
``application_id`` marks the file as an ihd store, so pointing ihd at some other SQLite
file fails with a message instead of adding our tables to it.

Version 1 tables:

``meters``   one row per meter ever seen.
``readings`` raw registers exactly as sent (integer + decimal scaler), cumulative and
             instantaneous, keyed (meter, quantity, ts_ms). ``WITHOUT ROWID``: the key *is*
             the data, which halves the file compared with a rowid table plus index.
``usage``    per-minute rollup of derived usage, keyed (meter, minute_ms), added to by
             UPSERT. ``WITHOUT ROWID`` too, so one meter's minutes are contiguous and a
             total or chart series is a primary-key range scan per meter. ``utility`` is
             denormalised into each row so a query never needs a join. (Measured: a
             secondary index on (utility, minute_ms) made a year's total 3x *slower*
             than the per-meter key ranges, and a covering one only matched them while
             doubling the writes.)
``state``    small durable key/value state other layers commit atomically with readings.

Version 2 adds the rollups that year, month and day views read:

``usage_hour``, ``usage_day``, ``usage_month``
             the same columns as ``usage``, keyed (meter, start_ms): the UTC instant the
             household's local hour, day or month starts (see ``calendar.py``; a day is 23,
             24 or 25 hours). Kept forever, like ``usage``. The writer adds to them in the
             transaction that adds the minutes they sum, so they always equal the sums of
             ``usage``. The migration only creates them: the timezone is not the
             migration's to know, so the store fills them from ``usage`` when it opens a
             database whose rollups were not built for its timezone (the ``state`` key
             ``store.timezone`` says which one they were built for). That one path serves
             both the upgrade from v1 and a household that moved timezone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlite_utils import Database

from ihd.store.model import StoreError

Migration = Callable[[Database], None]

APPLICATION_ID = 0x49484431  # "IHD1"


def _v1_initial(db: Database) -> None:
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute(
        """CREATE TABLE meters (
            eui64 TEXT PRIMARY KEY,
            utility TEXT NOT NULL,
            label TEXT,
            first_seen_ms INTEGER,
            last_seen_ms INTEGER
        )"""
    )
    db.execute(
        """CREATE TABLE readings (
            meter TEXT NOT NULL,
            quantity TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            raw INTEGER NOT NULL,
            scaler INTEGER NOT NULL,
            PRIMARY KEY (meter, quantity, ts_ms)
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE usage (
            meter TEXT NOT NULL,
            minute_ms INTEGER NOT NULL,
            utility TEXT NOT NULL,
            amount REAL NOT NULL,
            energy_wh REAL,
            cost_milli INTEGER NOT NULL,
            PRIMARY KEY (meter, minute_ms)
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_ms INTEGER
        )"""
    )


ROLLUP_TABLES = ("usage_hour", "usage_day", "usage_month")


def _v2_rollups(db: Database) -> None:
    for table in ROLLUP_TABLES:
        db.execute(
            f"""CREATE TABLE {table} (
                meter TEXT NOT NULL,
                start_ms INTEGER NOT NULL,
                utility TEXT NOT NULL,
                amount REAL NOT NULL,
                energy_wh REAL,
                cost_milli INTEGER NOT NULL,
                PRIMARY KEY (meter, start_ms)
            ) WITHOUT ROWID"""
        )


MIGRATIONS: tuple[Migration, ...] = (_v1_initial, _v2_rollups)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def check_application_id(db: Database) -> None:
    app_id = int(db.execute("PRAGMA application_id").fetchone()[0])
    if app_id not in (0, APPLICATION_ID):
        raise StoreError(
            f"this SQLite file belongs to another application (application_id {app_id:#x})"
        )


def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring ``db`` up to ``len(migrations)``; return the version it is at afterwards.

    The connection must be in autocommit mode (``isolation_level=None``): each step opens
    its own transaction. Raises ``StoreError`` if the database is newer than the code or
    a migration fails (that migration is rolled back; earlier ones stay applied).
    """
    target = len(migrations)
    check_application_id(db)
    version = schema_version(db)
    _check_not_newer(version, target)
    while version < target:
        # Take the write lock, then re-read: another process may have migrated meanwhile.
        # (No write lock at all when nothing is pending, so a read-only file still opens.)
        db.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(db)
            _check_not_newer(version, target)
            if version < target:
                try:
                    migrations[version](db)
                except Exception as e:
                    raise StoreError(f"migration to schema v{version + 1} failed: {e}") from e
                version += 1
                db.execute(f"PRAGMA user_version = {version}")
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
    return version


def _check_not_newer(version: int, target: int) -> None:
    if version > target:
        raise StoreError(f"database schema v{version} is newer than this ihd (v{target})")
