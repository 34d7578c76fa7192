"""When history cannot be written: a real full disk, a read-only file system, failing
writes. Each is made for real (a small tmpfs, a tmpfs remounted read-only, a file-size
limit that makes the kernel refuse writes with EFBIG) and each must give the same three
things: a visible warning (``store.status``, ``store.write_errors``, a ``store.warning``
sentence for the UI), no silent loss (the batches wait in memory and land when writing
works again), and a display that goes on showing live data.

Mounting needs root with CAP_SYS_ADMIN (CI runs as root); without it those tests skip,
and ``tests/test_store.py`` still covers the full disk with ``PRAGMA max_page_count`` and
a read-only file with a 0444 database opened as ``nobody``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import push_frame, wait_until

from ihd.app.ingest import Ingest
from ihd.app.live import Snapshot
from ihd.app.pipeline import Pipeline
from ihd.clock import ManualClock
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.meter.device import MeterDevice
from ihd.meter.obis import REGISTERS
from ihd.meter.reading import Reading, Utility
from ihd.radio.contract import RxFrame
from ihd.smwap.receiver import Receiver
from ihd.smwap.security import SecurityPolicy
from ihd.store import Batch, Store
from ihd.tariff import tariffs_from_config

ENERGY = REGISTERS[(1, 0, 1, 8, 0, 255)]
POWER = REGISTERS[(1, 0, 1, 7, 0, 255)]
ELEC = "0249484400550001"
T0 = 1_752_000_000.0  # July 2025


def push(k: int) -> RxFrame:
    """The k-th 10 s push: energy 1000 + 5k Wh, demand 100 + k W."""
    return push_frame(ELEC, [(ENERGY, 1000 + 5 * k, 0), (POWER, 100 + k, 0)], T0 + 10 * k, seq=k)


def make_ingest(diag: Diagnostics) -> Ingest:
    return Ingest(
        meters={ELEC: MeterDevice(ELEC, Utility.ELECTRICITY, "E")},
        tariffs=tariffs_from_config(Config()),
        tz="Europe/London",
        diag=diag,
        receiver=Receiver(policy=SecurityPolicy(min_level=0)),
    )


class FeedRadio:
    """A radio the test feeds frame by frame."""

    name = "feed"

    def __init__(self) -> None:
        self._frames: list[RxFrame] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def add(self, *frames: RxFrame) -> None:
        with self._lock:
            self._frames.extend(frames)

    def receive(self, timeout: float) -> RxFrame | None:
        with self._lock:
            if self._frames:
                return self._frames.pop(0)
        time.sleep(min(timeout, 0.005))
        return None


class Live:
    """The running display (radio, ingest and store threads) and what its UI was shown."""

    def __init__(self, db: Path, **store_kw: object) -> None:
        self.diag = Diagnostics()
        self.radio = FeedRadio()
        self.store = Store(db, diag=self.diag, commit_interval_s=0.05, **store_kw)  # type: ignore[arg-type]
        self.pipeline = Pipeline(
            radio=self.radio,
            ingest=make_ingest(self.diag),
            store=self.store,
            diag=self.diag,
            clock=ManualClock(T0),
        )
        self.shown: list[Snapshot] = []
        self.pipeline.add_listener(self.shown.append)
        self.pipeline.start()
        self.k = 0

    def push(self, n: int) -> None:
        """n more pushes; waits until the UI was shown the last one."""
        self.radio.add(*(push(self.k + i) for i in range(n)))
        self.k += n
        want = 100 + self.k - 1
        assert wait_until(lambda: bool(self.shown) and self.shown[-1].demand_w == want, 10)

    def stored_readings(self) -> int:
        with self.store.reader() as r:
            return r.counts()["readings"]

    def stop(self) -> None:
        self.pipeline.stop()


def assert_warned(diag: Diagnostics, status: str, warning: str) -> None:
    assert str(diag.state("store.status")).startswith(f"error: {status}")
    assert diag.counter("store.write_errors") >= 1
    text = str(diag.state("store.warning"))
    assert text.startswith(f"History is not being saved: {warning}.")
    assert "Live readings are still shown" in text


# ------------------------------------------------------------------ tmpfs


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` (skips the test if this process cannot mount)."""
    d = Path(tempfile.mkdtemp(prefix="ihd-tmpfs-"))
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "ihd-test", str(d)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        done = None
    if done is None or done.returncode != 0:
        d.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() if done else 'no mount'}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        d.rmdir()


def remount(d: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(d)], check=True)


def test_a_really_full_disk_warns_keeps_the_display_live_and_loses_nothing() -> None:
    with tmpfs("2m") as d:
        db = d / "ihd.db"
        live = Live(db)
        try:
            live.push(5)
            assert wait_until(lambda: live.stored_readings() == 10)
            # Fill the file system, leaving the database nothing to grow into.
            filler = d / "filler"
            with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 4096)
            live.push(400)  # the display keeps going: every push reached the UI
            assert wait_until(lambda: live.diag.counter("store.write_errors") >= 2)
            assert_warned(live.diag, "database or disk is full", "the storage is full")
            assert live.store.status.startswith("error: database or disk is full")
            assert live.store.warning == live.diag.state("store.warning")
            assert int(live.diag.state("store.pending_batches") or 0) > 0  # kept in memory
            assert live.stored_readings() < 2 * 405
            live.push(20)
            # Space comes back (the user deleted something): the next commit has it all.
            filler.unlink()
            assert wait_until(lambda: live.diag.state("store.status") == "ok")
            assert live.diag.state("store.warning") == ""
            assert wait_until(lambda: live.stored_readings() == 2 * 425)
        finally:
            live.stop()
        assert live.diag.counter("store.dropped_batches") == 0


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


def test_a_read_only_database_warns_keeps_the_display_live_and_recovers() -> None:
    d = Path(tempfile.mkdtemp(prefix="ihd-ro-"))
    try:
        d.chmod(0o777)
        db = d / "ihd.db"
        first = Store(db, diag=Diagnostics())
        first.close()
        for f in d.iterdir():
            f.chmod(0o444)
        with unprivileged():
            live = Live(db)
        try:
            with unprivileged():
                live.push(30)
                assert wait_until(lambda: live.diag.counter("store.write_errors") >= 1)
                assert_warned(
                    live.diag,
                    "attempt to write a readonly database",
                    "the history file is read-only",
                )
                assert live.stored_readings() == 0
            for f in d.iterdir():
                f.chmod(0o666)
            with unprivileged():
                assert wait_until(lambda: live.diag.state("store.status") == "ok")
                assert live.diag.state("store.warning") == ""
                assert wait_until(lambda: live.stored_readings() == 60)
        finally:
            with unprivileged():
                live.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ EFBIG


def _fsize_child(db: Path) -> None:
    """Ingest with the kernel refusing writes past a file size (RLIMIT_FSIZE: EFBIG,
    'disk I/O error' to SQLite), then lift the limit. Prints one JSON line."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    diag = Diagnostics()
    ingest = make_ingest(diag)
    store = Store(db, diag=diag, commit_interval_s=3600)
    store.start()
    shown = []

    def feed(first: int, n: int) -> None:
        for k in range(first, first + n):
            result = ingest.handle(push(k))
            assert result is not None
            batch, snap = result
            if batch is not None:
                store.submit(batch)
            shown.append(snap.demand_w)

    feed(0, 5)
    assert store.flush()
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    feed(5, 2000)
    ok_while_limited = store.flush()
    during = {k: diag.state(k) for k in ("store.status", "store.warning", "store.pending_batches")}
    errors = diag.counter("store.write_errors")
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    recovered = store.flush()
    with store.reader() as r:
        stored = r.counts()["readings"]
    store.close()
    print(
        json.dumps(
            {
                "ok_while_limited": ok_while_limited,
                "during": during,
                "errors": errors,
                "shown": shown,
                "recovered": recovered,
                "status": diag.state("store.status"),
                "stored": stored,
                "dropped": diag.counter("store.dropped_batches"),
            }
        )
    )


def test_failing_writes_from_the_kernel_warn_and_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    done = subprocess.run(
        [sys.executable, __file__, "fsize-child", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ok_while_limited"] is False
    assert out["errors"] >= 1
    assert out["during"]["store.status"].startswith("error: disk I/O error")
    assert out["during"]["store.warning"].startswith(
        "History is not being saved: the storage reports write errors."
    )
    assert out["during"]["store.pending_batches"] == 2000
    assert out["shown"] == [100 + k for k in range(2005)]  # live data all along
    assert out["recovered"] is True and out["status"] == "closed"
    assert out["stored"] == 2 * 2005 and out["dropped"] == 0


def test_batches_dropped_over_the_bound_leave_a_lasting_warning(tmp_path: Path) -> None:
    diag = Diagnostics()
    store = Store(
        tmp_path / "ihd.db",
        diag=diag,
        commit_interval_s=3600,
        max_pages=8,
        max_pending_batches=5,
    )
    ingest = make_ingest(diag)
    store.start()
    big = Batch(readings=[rd for k in range(3000) for rd in push_readings(ingest, k)])
    store.submit(big)
    assert not store.flush()  # does not fit in 8 pages
    for k in range(3000, 3010):
        store.submit(Batch(readings=push_readings(ingest, k)))
    assert diag.counter("store.dropped_batches") == 6  # the big one and the five oldest
    text = str(diag.state("store.warning"))
    assert text.startswith("History is not being saved: the storage is full.")
    assert text.endswith(
        "History has a gap: 6 batches of readings could not be kept while it was not being saved."
    )
    store.set_max_pages(None)
    assert store.flush()
    assert diag.state("store.status") == "ok"
    assert diag.state("store.warning") == (
        "History has a gap: 6 batches of readings could not be kept while it was not being saved."
    )
    with store.reader() as r:
        assert r.counts()["readings"] == 2 * 5
    store.close()


def push_readings(ingest: Ingest, k: int) -> list[Reading]:
    result = ingest.handle(push(k))
    assert result is not None and result[0] is not None
    return list(result[0].readings)


if __name__ == "__main__" and sys.argv[1:2] == ["fsize-child"]:
    _fsize_child(Path(sys.argv[2]))
