"""Seeding the demo's 30 days of history into a fresh store, and what it leaves on disk.

The same steps as the demo's first start (``ihd.app.runner.build_pipeline``): a new
``Store`` on an empty temporary directory, an ``Ingest`` resumed from it, then
``seed_history`` for the 30 days before a fixed instant. Timed from the store's creation
(schema and migrations included) to the end of ``seed_history``; the size is that of
the database file after ``Store.close()`` (which checkpoints the WAL), plus any WAL left.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchlib import Figure, rounded

START = 1_790_000_000.0  # a fixed instant, so that every run seeds the same history
DAYS = 30


def run(quick: bool) -> Iterator[Figure]:
    from ihd.app.ingest import Ingest
    from ihd.app.seed import seed_history
    from ihd.config import Config
    from ihd.diag import Diagnostics
    from ihd.sim.world import demo_world
    from ihd.smwap.receiver import Receiver
    from ihd.store import Store
    from ihd.tariff import tariffs_from_config

    cfg = Config()
    tmp = Path(tempfile.mkdtemp(prefix="ihd-bench-store-"))
    try:
        db = tmp / "history.sqlite"
        world = demo_world(seed=1, start=START, tz=cfg.timezone)
        diag = Diagnostics()
        t0 = time.perf_counter()
        store = Store(db, diag=diag, commit_interval_s=cfg["store.commit_interval_s"])
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
        seed_history(world, store, ingest, start=START - DAYS * 86400, end=START)
        elapsed = time.perf_counter() - t0
        store.close()
        size = sum(p.stat().st_size for p in tmp.glob("history.sqlite*"))
        yield Figure("store.seed_30_days_s", rounded(elapsed), "s")
        yield Figure("store.db_size_mb_30_days", rounded(size / 2**20), "MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
