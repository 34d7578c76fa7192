"""End to end: sim -> air -> radio -> smwap -> meter -> tariff -> store, against the model.

The simulated household is the ground truth: ``Household.electricity_wh`` and friends
integrate the appliance schedule exactly. The meters push truncated registers through the
real DLMS encoder, 802.15.4 MAC and MR-FSK PHY onto the simulated air; the display's
``SimRadio`` takes them off the air, ``Ingest`` decodes and prices them and a real SQLite
``Store`` keeps them. What comes out of the store is compared with the model:

* electricity energy over [first push, last push] within 1 Wh (the meter truncates its
  register to whole Wh, at both ends, so the error is below 1 Wh);
* gas within 1 dm3 of volume, converted to energy with the bill formula (below);
* water within 1 litre;
* cost as that energy times the configured unit rate, within the same bounds.

Times are chosen so that every run crosses a local midnight, and two cross a DST change.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import math
import random
import sqlite3
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest

from ihd.app.ingest import Ingest
from ihd.clock import ManualClock
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.meter.device import MeterDevice
from ihd.meter.reading import Utility
from ihd.radio.contract import RxFrame
from ihd.radio.sim import SimRadio
from ihd.sim.air import Air
from ihd.sim.household import Household
from ihd.sim.meters import SimMeter
from ihd.sim.world import PAN_ID, SimWorld, demo_world
from ihd.smwap.phy import EU_863_MODE_1
from ihd.smwap.receiver import Receiver
from ihd.smwap.security import SecurityPolicy
from ihd.store import Store
from ihd.tariff import tariffs_from_config

LONDON = zoneinfo.ZoneInfo("Europe/London")

# Gas: kWh = m3 x 1.02264 (volume correction) x CV (MJ/m3) / 3.6 (MJ per kWh). One dm3 at
# the default CV of 39.5 is 1e-3 x 1.02264 x 39.5 / 3.6 kWh = 11.22 Wh: the register's step.
CV_MJ_M3 = 39.5
GAS_WH_PER_DM3 = 1e-3 * 1.02264 * CV_MJ_M3 / 3.6 * 1000
# Config defaults, p/kWh (== milli-p per Wh) and p/m3.
ELEC_P_PER_KWH = 24.50
GAS_P_PER_KWH = 6.24
WATER_P_PER_M3 = 215.0
# Float slack for sums of a few thousand float rows and model integrals (far below 1 Wh).
EPS = 1e-6

USAGE_QUANTITY = {
    Utility.ELECTRICITY: "energy_import_wh",
    Utility.GAS: "volume_m3",
    Utility.WATER: "volume_m3",
}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()


def local_midnight_in(start: float, end: float) -> float:
    """The one Europe/London midnight in (start, end]."""
    day = dt.datetime.fromtimestamp(end, LONDON).date()
    midnight = dt.datetime.combine(day, dt.time(), LONDON).timestamp()
    assert start < midnight <= end, "the run must cross a local midnight"
    return midnight


@dataclasses.dataclass
class Run:
    world: SimWorld
    radio: SimRadio
    ingest: Ingest
    store: Store
    diag: Diagnostics
    start: float
    end: float
    frames: list[RxFrame]

    @property
    def household(self) -> Household:
        return self.world.household

    def meter(self, utility: Utility) -> SimMeter:
        (m,) = [m for m in self.world.meters if m.device.utility is utility]
        return m

    def total(
        self, utility: Utility, start: float | None = None, end: float | None = None
    ) -> tuple[float, float | None, int]:
        with self.store.reader() as reader:
            t = reader.usage_total(
                utility,
                self.start - 3600 if start is None else start,
                self.end + 3600 if end is None else end,
            )
        return t.amount, t.energy_wh, t.cost_milli


def make_run(
    tmp_path: Path, world: SimWorld, start: float, receiver: Receiver | None = None
) -> Run:
    diag = Diagnostics()
    radio = SimRadio(world, clock=ManualClock(start), diag=diag, pump=False)
    radio.set_addresses(eui64=world.display_eui64, pan_id=PAN_ID, short=None)
    ingest = Ingest(
        meters=world.devices(),
        tariffs=tariffs_from_config(Config()),
        tz="Europe/London",
        diag=diag,
        gas_cv_mj_m3=CV_MJ_M3,
        receiver=receiver or Receiver(keys=world.key_table()),
    )
    store = Store(tmp_path / "ihd.db", diag=diag, commit_interval_s=600)
    return Run(world, radio, ingest, store, diag, start, start, [])


def play(run: Run, until: float, step_s: float = 60.0) -> None:
    """Advance the world minute by minute; every received frame goes through the ingest.

    Plays one second past ``until``, so that a frame sent at ``until`` has left the air.
    """
    t, until = run.end, until + 1
    while t < until:
        t = min(t + step_s, until)
        run.radio.run_until(t)
        while (frame := run.radio.receive(0)) is not None:
            run.frames.append(frame)
            result = run.ingest.handle(frame)
            if result is not None and result[0] is not None:
                run.store.submit(result[0])
        assert run.store.flush()  # not started: commits in this thread
    run.end = until


@contextlib.contextmanager
def database(run: Run) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{run.store.path}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def received_pushes(run: Run, utility: Utility) -> list[tuple[float, int, int]]:
    """(when the meter sampled, raw, scaler) of every push of ``utility`` that was stored.

    The DLMS date-time carries hundredths of a second, so a stored time is matched to the
    meter's own schedule (its grid of push times) to know exactly when it sampled.
    """
    meter = run.meter(utility)
    grid = meter.push_times(run.start - 1, run.end)
    with database(run) as conn:
        rows = conn.execute(
            "SELECT ts_ms, raw, scaler FROM readings WHERE meter = ? AND quantity = ? "
            "ORDER BY ts_ms",
            (meter.device.eui64, USAGE_QUANTITY[utility]),
        ).fetchall()
    out = []
    for ts_ms, raw, scaler in rows:
        i = bisect.bisect_left(grid, ts_ms / 1000 - 0.011)
        assert i < len(grid) and abs(grid[i] - ts_ms / 1000) < 0.011, ts_ms
        out.append((grid[i], raw, scaler))
    return out


def usage_rows(run: Run, utility: Utility) -> list[tuple[str, int, float]]:
    with database(run) as conn:
        return conn.execute(
            "SELECT meter, minute_ms, amount FROM usage WHERE utility = ? ORDER BY minute_ms",
            (str(utility),),
        ).fetchall()


def meter_wh(household: Household, t: float) -> int:
    """The electricity register as the meter reports it: the model's, truncated to Wh."""
    return math.floor(household.register(Utility.ELECTRICITY, t))


def gas_m3(household: Household, t: float) -> float:
    """The gas register in m3 (the model counts fuel Wh), by the bill formula backwards."""
    return household.register(Utility.GAS, t) / 1000 * 3.6 / (1.02264 * CV_MJ_M3)


def check_against_model(run: Run) -> None:
    """Stored registers, energy, volumes and costs agree with the household model."""
    h = run.household

    # Electricity: registers are the model truncated to whole Wh; energy and cost follow.
    pushes = received_pushes(run, Utility.ELECTRICITY)
    assert len(pushes) >= 2
    for t, raw, scaler in pushes:
        assert scaler == 0
        assert 0 <= h.register(Utility.ELECTRICITY, t) - raw < 1
    first, last = pushes[0][0], pushes[-1][0]
    exact_wh = h.electricity_wh(first, last)
    amount, energy, cost = run.total(Utility.ELECTRICITY)
    assert energy == amount
    assert abs(energy - exact_wh) < 1
    # What the meter reported is floor(register) at both ends: priced exactly, to 0.5 milli-p.
    reported_wh = meter_wh(h, last) - meter_wh(h, first)
    assert energy == reported_wh
    assert abs(cost - reported_wh * ELEC_P_PER_KWH) <= 0.5
    assert abs(cost - exact_wh * ELEC_P_PER_KWH) < 1 * ELEC_P_PER_KWH + 0.5

    # Gas: registers in dm3 (scaler -3), energy within one dm3 of the model's fuel energy.
    pushes = received_pushes(run, Utility.GAS)
    assert len(pushes) >= 2
    for t, raw, scaler in pushes:
        assert scaler == -3
        assert -EPS <= gas_m3(h, t) * 1000 - raw < 1 + EPS
    first, last = pushes[0][0], pushes[-1][0]
    exact_wh = h.gas_wh(first, last)
    amount, energy, cost = run.total(Utility.GAS)
    assert energy is not None
    assert abs(energy - exact_wh) < GAS_WH_PER_DM3 + EPS
    assert abs(amount * GAS_WH_PER_DM3 * 1000 - energy) < EPS  # m3 -> Wh, the formula
    assert abs(cost - energy * GAS_P_PER_KWH) <= 0.5 + EPS
    assert exact_wh > 0, "a winter night run should burn some gas"

    # Water: litres (scaler -3 m3), within one litre of the model.
    pushes = received_pushes(run, Utility.WATER)
    assert len(pushes) >= 2
    for t, raw, scaler in pushes:
        assert scaler == -3
        assert 0 <= h.register(Utility.WATER, t) - raw < 1
    first, last = pushes[0][0], pushes[-1][0]
    amount, energy, cost = run.total(Utility.WATER)
    assert energy is None
    assert abs(amount * 1000 - h.water_l(first, last)) < 1 + EPS
    assert abs(cost - amount * WATER_P_PER_M3 * 1000) <= 0.5 + EPS

    # Every usage row belongs to its utility's meter and lies inside that meter's pushes.
    for utility in Utility:
        pushes = received_pushes(run, utility)
        rows = usage_rows(run, utility)
        assert {meter for meter, _, _ in rows} <= {run.meter(utility).device.eui64}
        assert all(pushes[0][0] - 60 <= m / 1000 <= pushes[-1][0] for _, m, _ in rows)
        assert all(amount >= 0 for _, _, amount in rows)


# --------------------------------------------------------------------------- clean air

#: (start, hours): each crosses a local midnight; two also cross a DST change. Dates near
#: the model's register epoch (2024-01-01) keep the model's first register lookup quick.
RUNS = {
    "winter-midnight": (utc(2024, 1, 10, 22, 0), 4),
    "spring-forward": (utc(2024, 3, 30, 22, 0), 5),  # 31 Mar 01:00 GMT -> 02:00 BST
    "autumn-back": (utc(2023, 10, 28, 21, 0), 6),  # 29 Oct 02:00 BST -> 01:00 GMT
}


@pytest.mark.parametrize("fcs_len", [4, 2])
@pytest.mark.parametrize("name", list(RUNS))
def test_stored_usage_equals_the_household_model(tmp_path: Path, name: str, fcs_len: int) -> None:
    start, hours = RUNS[name]
    world = demo_world(seed=7, start=start, fcs_len=fcs_len, gas_cv_mj_m3=CV_MJ_M3)
    run = make_run(tmp_path, world, start)
    play(run, start + hours * 3600)
    run.store.close()

    # Nothing was lost on a clean air: every push the meters sent was stored.
    sent = world.frames_sent
    assert sent > 0 and run.diag.counter("meter.pushes") == sent == len(run.frames)
    for counter in (
        "smwap.fcs_error",
        "smwap.frame_error",
        "radio.phy_error",
        "meter.decode_error",
        "meter.duplicate_or_old",
        "meter.register_reset",
    ):
        assert run.diag.counter(counter) == 0, counter
    assert run.diag.counter("store.duplicate_readings") == 0
    elec = run.meter(Utility.ELECTRICITY)
    assert len(received_pushes(run, Utility.ELECTRICITY)) == len(
        elec.push_times(start - 1, run.end)
    )
    check_against_model(run)

    # The split at local midnight follows the model too: the push at 00:00:00 closes the
    # old day, so usage before midnight is the model's integral up to midnight.
    h = run.household
    midnight = local_midnight_in(start, run.end)
    first = received_pushes(run, Utility.ELECTRICITY)[0][0]
    last = received_pushes(run, Utility.ELECTRICITY)[-1][0]
    _, before, _ = run.total(Utility.ELECTRICITY, end=midnight)
    _, after, _ = run.total(Utility.ELECTRICITY, start=midnight)
    assert before is not None and after is not None
    assert abs(before - h.electricity_wh(first, midnight)) < 1
    assert abs(after - h.electricity_wh(midnight, last)) < 1
    assert before == meter_wh(h, midnight) - meter_wh(h, first)  # what the meter said
    assert after == meter_wh(h, last) - meter_wh(h, midnight)

    # The live "today" (what the display shows) starts at that midnight.
    today = run.ingest.snapshot().today[Utility.ELECTRICITY]
    assert today.energy_wh is not None
    assert abs(today.energy_wh - h.electricity_wh(midnight, last)) < 1
    assert today.energy_wh == after
    # Truncation (< 1 Wh) plus the rounding of the running totals at both ends (1 milli-p).
    assert abs(today.cost_milli - h.electricity_wh(midnight, last) * ELEC_P_PER_KWH) < (
        1 * ELEC_P_PER_KWH + 1
    )
    assert today.standing_milli == 60_100  # 60.10 p, once


def test_replaying_every_frame_books_nothing_twice(tmp_path: Path) -> None:
    """Secured frames heard twice are refused by replay protection, before any decoding."""
    start, hours = RUNS["winter-midnight"]
    world = demo_world(seed=11, start=start, gas_cv_mj_m3=CV_MJ_M3)
    run = make_run(tmp_path, world, start)
    play(run, start + hours * 3600)
    totals = {u: run.total(u) for u in Utility}
    today = run.ingest.snapshot().today
    pushes = run.diag.counter("meter.pushes")

    for frame in run.frames:  # a radio that hears everything twice
        assert run.ingest.handle(frame) is None
    assert run.store.flush()

    refused = run.diag.counter("smwap.replay") + run.diag.counter("smwap.duplicate")
    assert refused == len(run.frames)
    assert run.diag.counter("meter.pushes") == pushes
    assert {u: run.total(u) for u in Utility} == totals
    assert run.ingest.snapshot().today == today
    check_against_model(run)
    run.store.close()


def test_unsecured_frames_would_book_nothing_twice(tmp_path: Path) -> None:
    """Below the security layer, the register deltas also refuse to count a push twice."""
    start, hours = RUNS["winter-midnight"]
    world = demo_world(seed=11, start=start, gas_cv_mj_m3=CV_MJ_M3, secured=False)
    run = make_run(tmp_path, world, start, receiver=Receiver(policy=SecurityPolicy(0)))
    play(run, start + hours * 3600)
    totals = {u: run.total(u) for u in Utility}
    today = run.ingest.snapshot().today

    for frame in run.frames:  # a radio that hears everything twice
        result = run.ingest.handle(frame)
        assert result is not None
        batch, _ = result
        assert batch is not None and batch.usage == ()
        run.store.submit(batch)
    assert run.store.flush()

    assert run.diag.counter("meter.duplicate_or_old") == len(run.frames)
    with database(run) as conn:
        (readings,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert run.diag.counter("store.duplicate_readings") == readings  # every one, once
    assert {u: run.total(u) for u in Utility} == totals
    assert run.ingest.snapshot().today == today
    check_against_model(run)
    run.store.close()


# --------------------------------------------------------------------------- a bad air


@pytest.mark.parametrize("fcs_len", [4, 2])
def test_loss_and_corruption_only_delay_usage(tmp_path: Path, fcs_len: int) -> None:
    start, hours = RUNS["winter-midnight"]
    world = demo_world(
        seed=3, start=start, fcs_len=fcs_len, loss=0.05, corruption=0.05, gas_cv_mj_m3=CV_MJ_M3
    )
    run = make_run(tmp_path, world, start)
    play(run, start + hours * 3600)
    run.store.close()
    air, diag = world.air.counts(world.display), run.diag  # what reached the display

    assert air["lost_random"] > 0 and air["corrupted"] > 0
    assert diag.counter("smwap.fcs_error") > 0
    assert diag.counter("radio.phy_error") > 0
    # Every corrupted frame was caught somewhere, and every clean one was accepted.
    caught = sum(
        diag.counter(c)
        for c in ("radio.phy_error", "smwap.fcs_error", "smwap.frame_error", "meter.decode_error")
    )
    assert caught == air["corrupted"]
    # Pushes ask for an ACK; a lost ACK makes the meter send again, and the copy that
    # arrives is a duplicate (same sequence number and frame counter), never a new push.
    pushes, dups = diag.counter("meter.pushes"), diag.counter("smwap.duplicate")
    assert pushes + dups == air["delivered"] - air["corrupted"]
    assert pushes + dups + air["lost_random"] + air["corrupted"] == world.frames_sent
    # Retries recover lost frames: at most the pushes that never got an ACK are missing
    # (some of those arrived, and only their ACKs were lost).
    retries = sum(m.counters.get("tx_retries", 0) for m in world.meters)
    failed = sum(m.counters.get("tx_failed", 0) for m in world.meters)
    assert retries > 0 and dups > 0
    due = sum(len(m.push_times(start - 1, run.end)) for m in world.meters)
    assert due - failed <= pushes <= due and pushes > due - air["lost_random"]
    # The pipeline kept going to the end: the last electricity push is recent.
    elec = received_pushes(run, Utility.ELECTRICITY)
    assert elec[-1][0] >= run.end - 60
    # Lost frames only delay deltas: over the received span the energy is all there.
    check_against_model(run)


# --------------------------------------------------------------------------- collisions

A, B, C = "0249484400770001", "0249484400770002", "0249484400770003"


#: The collision worlds' meters send unsecured frames: they test the air, not security.
def unsecured() -> Receiver:
    return Receiver(policy=SecurityPolicy(min_level=0))


def collision_world(start: float, *, loss_a: float, loss_b: float, phase_b: float) -> SimWorld:
    """Two electricity meters on the same 10 s grid (B ``phase_b`` s after A: their ~12 ms
    frames overlap) and a water meter in a slot of its own."""
    household = Household(seed=5)
    air = Air(random.Random(99), bitrate_bps=EU_863_MODE_1.bitrate_bps)
    meters = [
        SimMeter(MeterDevice(A, Utility.ELECTRICITY, "A"), household, 10.0),
        SimMeter(MeterDevice(B, Utility.ELECTRICITY, "B"), household, 10.0, phase_s=phase_b),
        SimMeter(MeterDevice(C, Utility.WATER, "C"), household, 60.0, phase_s=5.0),
    ]
    return SimWorld(
        household,
        meters,
        air,
        start=start,
        path_loss_db={A: loss_a, B: loss_b, C: 80.0},
        display_eui64="02494844007700FF",
    )


@pytest.mark.parametrize("phase_b", [0.0, 0.004], ids=["same-instant", "overlapping"])
def test_colliding_meters_are_lost_without_harm(tmp_path: Path, phase_b: float) -> None:
    start = utc(2024, 1, 15, 12, 0)
    world = collision_world(start, loss_a=70.0, loss_b=72.0, phase_b=phase_b)
    run = make_run(tmp_path, world, start, receiver=unsecured())
    play(run, start + 1800)
    run.store.close()

    water = len(world.meters[2].push_times(start - 1, run.end))
    at_display = world.air.counts(world.display)
    assert at_display["delivered"] == water == 30
    assert at_display["lost_collision"] == world.frames_sent - water > 300  # A and B, always
    assert run.diag.counter("meter.pushes") == len(run.frames)
    assert all(
        run.diag.counter(c) == 0
        for c in ("radio.phy_error", "smwap.fcs_error", "smwap.frame_error", "meter.decode_error")
    )
    with database(run) as conn:
        stored = {m for (m,) in conn.execute("SELECT DISTINCT meter FROM readings")}
    assert stored == {C}  # the clear slot still gets through
    assert len(received_pushes(run, Utility.WATER)) == water


def test_a_much_stronger_meter_captures_the_receiver(tmp_path: Path) -> None:
    start = utc(2024, 1, 15, 12, 0)
    world = collision_world(start, loss_a=60.0, loss_b=85.0, phase_b=0.0)  # 25 dB apart
    run = make_run(tmp_path, world, start, receiver=unsecured())
    play(run, start + 1800)

    with database(run) as conn:
        stored = {m for (m,) in conn.execute("SELECT DISTINCT meter FROM readings")}
    assert stored == {A, C}
    pushes = len(world.meters[1].push_times(start - 1, run.end))
    assert world.air.counts(world.display)["lost_collision"] == pushes > 150  # only B
    # A's energy is still exactly the model's, collisions or not.
    with database(run) as conn:
        (first, lo), *_, (last, hi) = conn.execute(
            "SELECT ts_ms, raw FROM readings WHERE meter = ? AND quantity = ? ORDER BY ts_ms",
            (A, "energy_import_wh"),
        ).fetchall()
        booked = conn.execute("SELECT sum(amount) FROM usage WHERE meter = ?", (A,)).fetchone()
    h = world.household
    assert abs(booked[0] - h.electricity_wh(first / 1000, last / 1000)) < 1
    assert booked[0] == hi - lo
    run.store.close()
