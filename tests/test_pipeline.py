"""The threaded pipeline around real parts: a real Store on disk, real Ingest, and either the
simulated radio on a fast clock or ``ScriptedRadio``, a minimal real implementation of the
Radio contract standing in for hardware (it hands out prepared frames and fails on cue).

Also: the layering rules of docs/architecture.md, checked in fresh interpreters.
"""

from __future__ import annotations

import ast
import json
import math
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import pytest
from conftest import push_frame, wait_until

from ihd.app.ingest import Ingest
from ihd.app.live import Snapshot
from ihd.app.pairing import PairingStatus
from ihd.app.pipeline import Pipeline
from ihd.app.runner import build_pipeline
from ihd.clock import ManualClock, ScaledClock
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.meter.device import MeterDevice
from ihd.meter.obis import REGISTERS
from ihd.meter.reading import Utility
from ihd.radio.contract import RadioError, RxFrame
from ihd.radio.sim import SimRadio
from ihd.sim.world import demo_world
from ihd.smwap.keys import KeyFile
from ihd.smwap.receiver import Receiver
from ihd.smwap.security import SecurityPolicy
from ihd.store import Store
from ihd.tariff import tariffs_from_config

ENERGY = REGISTERS[(1, 0, 1, 8, 0, 255)]
ELEC = "0249484400550001"
T0 = 1_705_320_000.0  # 2024-01-15 12:00:00 UTC (and London)


class ScriptedRadio:
    """A Radio that plays a script: frames are delivered, exceptions raised, once each.

    ``open_error`` makes ``open()`` fail; ``receive`` then keeps failing, as a driver
    whose chip never came up would.
    """

    name = "scripted"

    def __init__(
        self, script: Iterable[RxFrame | Exception], open_error: RadioError | None = None
    ) -> None:
        self._script: deque[RxFrame | Exception] = deque(script)
        self._open_error = open_error
        self._lock = threading.Lock()
        self.opened = self.closed = 0

    def open(self) -> None:
        self.opened += 1
        if self._open_error is not None:
            raise self._open_error

    def receive(self, timeout: float) -> RxFrame | None:
        if self._open_error is not None:
            raise RadioError("not open")
        with self._lock:
            item = self._script.popleft() if self._script else None
        if item is None:
            time.sleep(min(timeout, 0.01))
            return None
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed += 1

    def add(self, *items: RxFrame | Exception) -> None:
        with self._lock:
            self._script.extend(items)


class Recorder:
    """A listener that keeps what it was given and which thread called it."""

    def __init__(self) -> None:
        self.snaps: list[Snapshot] = []
        self.threads: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, snap: Snapshot) -> None:
        with self._lock:
            self.snaps.append(snap)
            self.threads.append(threading.current_thread().name)

    def pushes(self) -> list[Snapshot]:
        with self._lock:
            return [s for s in self.snaps if s.readings]


def elec(k: int, wh: int) -> RxFrame:
    """The k-th 10 s push of the electricity meter, register ``wh``."""
    return push_frame(ELEC, [(ENERGY, wh, 0)], T0 + 10 * k, seq=k)


def make_pipeline(
    tmp_path: Path,
    radio: ScriptedRadio,
    *,
    commit_interval_s: float = 600.0,
    queue_size: int = 4096,
) -> tuple[Pipeline, Diagnostics]:
    diag = Diagnostics()
    ingest = Ingest(
        meters={ELEC: MeterDevice(ELEC, Utility.ELECTRICITY, "E")},
        tariffs=tariffs_from_config(Config()),
        tz="Europe/London",
        diag=diag,
        receiver=Receiver(policy=SecurityPolicy(min_level=0)),
    )
    store = Store(tmp_path / "ihd.db", diag=diag, commit_interval_s=commit_interval_s)
    pipeline = Pipeline(
        radio=radio,
        ingest=ingest,
        store=store,
        diag=diag,
        clock=ManualClock(T0),
        diag_path=tmp_path / "run" / "diag.json",
        queue_size=queue_size,
    )
    return pipeline, diag


def stored(tmp_path: Path) -> dict[str, int]:
    reader = Store(tmp_path / "ihd.db", diag=Diagnostics()).reader()
    try:
        return reader.counts()
    finally:
        reader.close()


# --------------------------------------------------------------------------- scripted radio


def test_snapshots_come_from_the_ingest_thread_and_survive_a_radio_error(tmp_path: Path) -> None:
    radio = ScriptedRadio(
        [
            elec(0, 1_000),
            elec(1, 1_010),
            RadioError("SPI: chip stopped answering"),
            elec(2, 1_030),
            elec(3, 1_060),
        ]
    )
    pipeline, diag = make_pipeline(tmp_path, radio)
    seen = Recorder()
    pipeline.add_listener(seen)
    pipeline.start()
    try:
        assert wait_until(lambda: len(seen.pushes()) == 4)
    finally:
        pipeline.stop()

    assert diag.counter("radio.errors") == 1
    assert diag.state("radio.status") == "error: SPI: chip stopped answering"
    assert diag.counter("radio.frames") == 4 == diag.counter("meter.pushes")
    assert seen.threads[0] == threading.current_thread().name  # start()'s first snapshot
    assert set(seen.threads[1:]) == {"ihd-ingest"}
    assert seen.pushes()[-1].today[Utility.ELECTRICITY].amount == 60  # 1 000 -> 1 060 Wh
    assert seen.pushes()[-1].readings[0].raw == 1_060


def test_a_failing_listener_is_counted_and_the_others_still_hear(tmp_path: Path) -> None:
    radio = ScriptedRadio([elec(k, 1_000 + k) for k in range(5)])
    pipeline, diag = make_pipeline(tmp_path, radio)
    before, after = Recorder(), Recorder()

    def broken(snap: Snapshot) -> None:
        raise RuntimeError("the UI went away")

    pipeline.add_listener(before)
    pipeline.add_listener(broken)
    pipeline.add_listener(after)
    pipeline.start()
    try:
        assert wait_until(lambda: len(after.pushes()) == 5)
    finally:
        pipeline.stop()
    assert len(before.snaps) == len(after.snaps) == 6  # the first snapshot + 5 pushes
    assert diag.counter("pipeline.listener_errors") == 6
    assert diag.counter("pipeline.ingest_crash") == 0


def test_stop_commits_what_is_pending_writes_diagnostics_and_is_idempotent(tmp_path: Path) -> None:
    radio = ScriptedRadio([elec(k, 5_000 + 7 * k) for k in range(6)])
    pipeline, diag = make_pipeline(tmp_path, radio, commit_interval_s=600)
    seen = Recorder()
    pipeline.add_listener(seen)
    pipeline.start()
    assert wait_until(lambda: len(seen.pushes()) == 6)
    assert stored(tmp_path)["readings"] == 0  # a 10-minute commit interval

    pipeline.stop()
    pipeline.stop()

    counts = stored(tmp_path)
    assert counts["readings"] == 6 and counts["meters"] == 1
    with Store(tmp_path / "ihd.db", diag=Diagnostics()).reader() as reader:
        assert reader.usage_total(Utility.ELECTRICITY, T0 - 60, T0 + 3600).amount == 35
    assert (radio.opened, radio.closed) == (1, 1)
    assert diag.state("store.status") == "closed"
    published = json.loads((tmp_path / "run" / "diag.json").read_text())
    assert published["counters"]["meter.pushes"] == 6
    assert published["counters"]["store.commits"] == 1
    assert published["states"]["radio.name"] == "scripted"


def test_a_full_queue_drops_frames_and_counts_them(tmp_path: Path) -> None:
    release = threading.Event()
    radio = ScriptedRadio([elec(0, 100)])

    def slow(snap: Snapshot) -> None:  # the UI stalls on the first push
        if snap.readings and snap.readings[0].raw == 100:
            radio.add(*[elec(k, 100 + k) for k in range(1, 6)])
            release.wait(10)

    pipeline, diag = make_pipeline(tmp_path, radio, queue_size=1)
    pipeline.add_listener(slow)
    pipeline.start()
    try:
        assert wait_until(lambda: diag.counter("radio.frames") == 6)
        release.set()
        assert wait_until(lambda: diag.counter("meter.pushes") == 2)
    finally:
        release.set()
        pipeline.stop()
    assert diag.counter("pipeline.queue_overflow") == 4  # one waited, four dropped


def test_a_radio_that_cannot_open_is_counted_and_the_display_stays_up(tmp_path: Path) -> None:
    radio = ScriptedRadio([], open_error=RadioError("no AT86RF215 on SPI0.0"))
    pipeline, diag = make_pipeline(tmp_path, radio)
    seen = Recorder()
    pipeline.add_listener(seen)
    pipeline.start()  # must not raise: the display shows "no radio"
    try:
        assert len(seen.snaps) == 1  # the UI got its first (empty) snapshot
        assert diag.counter("radio.errors") >= 1
        assert str(diag.state("radio.status")).startswith("error: ")
    finally:
        pipeline.stop()
    assert radio.closed == 1


@pytest.mark.slow
def test_housekeeping_rolls_the_day_and_never_overlaps_the_ingest(tmp_path: Path) -> None:
    """Past midnight with no frames, housekeeping (every 5 s) starts the new day. Listeners
    are never called from two threads at once, and Ingest is only used by one at a time."""
    clock = ManualClock(T0)
    diag = Diagnostics()
    ingest = Ingest(
        meters={ELEC: MeterDevice(ELEC, Utility.ELECTRICITY, "E")},
        tariffs=tariffs_from_config(Config()),
        tz="Europe/London",
        diag=diag,
        receiver=Receiver(policy=SecurityPolicy(min_level=0)),
    )
    store = Store(tmp_path / "ihd.db", diag=diag, commit_interval_s=600)
    radio = ScriptedRadio([elec(0, 100), elec(1, 150)])
    pipeline = Pipeline(
        radio=radio,
        ingest=ingest,
        store=store,
        diag=diag,
        clock=clock,
        diag_path=tmp_path / "diag.json",
    )
    active = 0
    overlaps = 0
    lock = threading.Lock()
    seen = Recorder()
    stall = threading.Event()

    def listener(snap: Snapshot) -> None:
        nonlocal active, overlaps
        with lock:
            active += 1
            overlaps += active > 1
        try:
            seen(snap)
            if snap.readings and snap.readings[0].raw == 150:
                clock.set(T0 + 12 * 3600 + 1)  # 00:00:01 while this listener is busy
                stall.wait(6)  # long enough for a housekeeping tick
        finally:
            with lock:
                active -= 1

    pipeline.add_listener(listener)
    pipeline.start()
    try:
        assert wait_until(
            lambda: any(
                s.today[Utility.ELECTRICITY].amount == 0 and s.at > T0 + 12 * 3600
                for s in seen.snaps
            ),
            15,
        )
    finally:
        stall.set()
        pipeline.stop()
    assert overlaps == 0
    rolled = [s for s in seen.snaps if s.at > T0 + 12 * 3600]
    assert rolled[0].today[Utility.ELECTRICITY].standing_milli == 60_100
    assert seen.pushes()[-1].today[Utility.ELECTRICITY].amount == 50  # the day before


# --------------------------------------------------------------------------- simulated radio


def test_the_demo_stack_on_a_fast_clock_stores_what_the_household_used(tmp_path: Path) -> None:
    """SimRadio pumping a demo world on a 600x clock, composed by the runner's own
    build_pipeline, unpaired at first: the display pairs with the electricity meter through
    the real handshake, then stores exactly the energy the household model used."""
    speed = 600.0
    clock = ScaledClock(T0, speed)
    world = demo_world(seed=4, start=T0, joined=[])  # the meters know no display yet
    diag = Diagnostics()
    radio = SimRadio(world, clock=clock, diag=diag)
    keyfile = KeyFile(tmp_path / "keys.json")
    pipeline = build_pipeline(
        cfg=Config(),
        db_path=tmp_path / "ihd.db",
        clock=clock,
        radio=radio,
        keyfile=keyfile,
        display_eui64=world.display_eui64,
        diag=diag,
        diag_path=tmp_path / "diag.json",
    )
    seen = Recorder()
    pipeline.add_listener(seen)
    pairing = pipeline.pairing
    assert pairing is not None
    outcomes: list[PairingStatus] = []
    pairing.listeners.append(outcomes.append)
    elec_eui = next(e for e, d in world.devices().items() if d.utility is Utility.ELECTRICITY)
    pipeline.start()
    try:
        assert wait_until(lambda: len(seen.pushes()) == 0 and clock.now() > T0 + 60, 5)
        pairing.start(world.install_codes()[elec_eui])  # by install code alone (broadcast)
        assert wait_until(lambda: bool(outcomes) and outcomes[-1].done, 10)
        assert outcomes[-1].state == "paired" and outcomes[-1].meter == elec_eui
        assert [m.eui64_text for m in keyfile.load()] == [elec_eui]
        assert wait_until(lambda: len(seen.pushes()) >= 40, 20)  # 400+ simulated seconds
    finally:
        pipeline.stop()
    steps = [o.step for o in outcomes]
    assert steps == ["searching", "found", "confirming", "paired"]
    assert diag.counter("smwap.unknown_key") == 0  # nothing pushed before it joined

    # Frames still queued when stop() is called are not decoded (the next start resumes
    # from the stored registers), so the radio may have counted a few more.
    assert diag.counter("radio.frames") >= diag.counter("meter.pushes") >= 40
    assert set(seen.threads[1:]) == {"ihd-ingest"}
    conn = sqlite3.connect(f"file:{tmp_path / 'ihd.db'}?mode=ro", uri=True)
    try:
        first_ms, last_ms, n = conn.execute(
            "SELECT min(ts_ms), max(ts_ms), count(*) FROM readings "
            "WHERE meter = ? AND quantity = 'energy_import_wh'",
            (elec_eui,),
        ).fetchone()
        (energy,) = conn.execute(
            "SELECT sum(energy_wh) FROM usage WHERE meter = ?", (elec_eui,)
        ).fetchone()
    finally:
        conn.close()
    first, last = first_ms / 1000, last_ms / 1000
    assert n == (last - first) / 10 + 1 >= 30  # every 10 s push, none missing
    h = world.household
    assert abs(energy - h.electricity_wh(first, last)) < 1
    assert energy == (
        math.floor(h.register(Utility.ELECTRICITY, last))
        - math.floor(h.register(Utility.ELECTRICITY, first))
    )


# --------------------------------------------------------------------------- layering


def _modules_after_importing(*packages: str) -> list[str]:
    code = f"import {', '.join(packages)}; import sys; print(repr(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    modules: list[str] = ast.literal_eval(out.stdout.strip())
    return modules


def test_nothing_below_the_ui_imports_qt() -> None:
    modules = _modules_after_importing(
        "ihd.app.runner",
        "ihd.smwap",
        "ihd.meter",
        "ihd.tariff",
        "ihd.store",
        "ihd.sim.world",
        "ihd.radio.sim",
    )
    assert "ihd.app.runner" in modules and "ihd.store" in modules  # the import happened
    assert [m for m in modules if m.startswith(("PySide6", "shiboken6", "ihd.ui"))] == []


def test_the_protocol_packages_stand_alone() -> None:
    """smwap, meter and tariff could be published on their own: no store (SQLite), no app
    (threads), no radio, no Qt; only each other."""
    modules = _modules_after_importing("ihd.smwap", "ihd.meter", "ihd.tariff")
    ours = {m for m in modules if m == "ihd" or m.startswith("ihd.")}
    assert {"ihd.smwap", "ihd.meter", "ihd.tariff"} <= ours
    allowed = ("ihd.smwap", "ihd.meter", "ihd.tariff")
    assert sorted(m for m in ours - {"ihd"} if not m.startswith(allowed)) == []
    assert [
        m
        for m in modules
        if m.split(".")[0] in {"sqlite3", "_sqlite3", "sqlite_utils", "PySide6", "shiboken6"}
    ] == []
