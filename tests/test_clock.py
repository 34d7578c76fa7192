"""Injected clocks: the wall, a sped-up demo clock and a manual clock for tests."""

from __future__ import annotations

import threading
import time

import pytest

from ihd.clock import HouseholdClock, ManualClock, ScaledClock, WallClock


def _later(event: threading.Event, after_s: float) -> threading.Thread:
    t = threading.Timer(after_s, event.set)
    t.start()
    return t


# --- ScaledClock ---------------------------------------------------------------------------


def test_scaled_clock_starts_at_start() -> None:
    before = time.monotonic()
    clock = ScaledClock(start=1_000_000.0, speed=60)
    now = clock.now()
    elapsed = time.monotonic() - before
    assert 1_000_000.0 <= now <= 1_000_000.0 + 60 * elapsed


@pytest.mark.parametrize("speed", [1.0, 50.0, 600.0])
def test_scaled_clock_runs_speed_times_faster(speed: float) -> None:
    clock = ScaledClock(start=0.0, speed=speed)
    a0 = time.monotonic()
    c0 = clock.now()
    b0 = time.monotonic()
    time.sleep(0.1)
    a1 = time.monotonic()
    c1 = clock.now()
    b1 = time.monotonic()
    # the wall time between the two readings lies in [a1 - b0, b1 - a0]
    assert speed * (a1 - b0) - 1e-6 <= c1 - c0 <= speed * (b1 - a0) + 1e-6
    assert c1 - c0 >= speed * 0.1 * 0.99


def test_scaled_clock_sleeps_in_simulated_time() -> None:
    clock = ScaledClock(start=5000.0, speed=50)
    target = clock.now() + 10.0  # 10 simulated seconds = 0.2 wall seconds
    stop = threading.Event()
    w0 = time.monotonic()
    assert clock.sleep_until(target, stop) is True
    wall = time.monotonic() - w0
    assert clock.now() >= target - 50 * 0.002  # woke (within 2 ms of wall time) at target
    assert 0.2 * 0.95 <= wall < 1.5


def test_scaled_clock_past_target_returns_at_once() -> None:
    clock = ScaledClock(start=5000.0, speed=2)
    w0 = time.monotonic()
    assert clock.sleep_until(4000.0, threading.Event()) is True
    assert time.monotonic() - w0 < 0.05


def test_scaled_clock_sleep_returns_false_when_stopped() -> None:
    clock = ScaledClock(start=0.0, speed=1)
    stop = threading.Event()
    stop.set()
    w0 = time.monotonic()
    assert clock.sleep_until(3600.0, stop) is False  # an hour away: must not wait
    assert clock.sleep_until(-1.0, stop) is False  # already due, but stopped
    assert time.monotonic() - w0 < 0.05


def test_scaled_clock_sleep_is_interrupted_by_stop() -> None:
    clock = ScaledClock(start=0.0, speed=1)
    stop = threading.Event()
    timer = _later(stop, 0.1)
    w0 = time.monotonic()
    assert clock.sleep_until(3600.0, stop) is False
    assert 0.05 <= time.monotonic() - w0 < 1.0
    timer.join()


@pytest.mark.parametrize("speed", [0, -1.0])
def test_scaled_clock_rejects_non_positive_speed(speed: float) -> None:
    with pytest.raises(ValueError):
        ScaledClock(start=0.0, speed=speed)


# --- ManualClock ---------------------------------------------------------------------------


def test_manual_clock_only_moves_when_told() -> None:
    clock = ManualClock(start=100.0)
    assert clock.now() == 100.0
    time.sleep(0.02)
    assert clock.now() == 100.0
    clock.advance(2.5)
    assert clock.now() == 102.5
    clock.set(200.0)
    assert clock.now() == 200.0
    clock.set(150.0)  # never backwards
    assert clock.now() == 200.0


def test_manual_clock_sleep_jumps_to_the_target_without_waiting() -> None:
    clock = ManualClock(start=0.0)
    stop = threading.Event()
    w0 = time.monotonic()
    assert clock.sleep_until(86_400.0, stop) is True  # a whole day, instantly
    assert time.monotonic() - w0 < 0.05
    assert clock.now() == 86_400.0
    assert clock.sleep_until(10.0, stop) is True  # in the past: no jump back
    assert clock.now() == 86_400.0


def test_manual_clock_sleep_returns_false_when_stopped() -> None:
    clock = ManualClock(start=0.0)
    stop = threading.Event()
    stop.set()
    assert clock.sleep_until(60.0, stop) is False


def test_manual_clock_advance_is_thread_safe() -> None:
    clock = ManualClock(start=0.0)
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(2000):
            clock.advance(1.0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == 16_000.0


# --- WallClock -----------------------------------------------------------------------------


def test_wall_clock_is_posix_time() -> None:
    before = time.time()
    now = WallClock().now()
    after = time.time()
    assert before <= now <= after


def test_wall_clock_sleep_until() -> None:
    clock = WallClock()
    stop = threading.Event()
    target = clock.now() + 0.05
    assert clock.sleep_until(target, stop) is True
    assert clock.now() >= target - 0.002
    stop.set()
    w0 = time.monotonic()
    assert clock.sleep_until(clock.now() + 3600, stop) is False
    assert clock.sleep_until(clock.now() - 1, stop) is False
    assert time.monotonic() - w0 < 0.05


def test_wall_clock_sleep_is_interrupted_by_stop() -> None:
    stop = threading.Event()
    timer = _later(stop, 0.1)
    w0 = time.monotonic()
    assert WallClock().sleep_until(time.time() + 3600, stop) is False
    assert 0.05 <= time.monotonic() - w0 < 1.0
    timer.join()


# --- HouseholdClock: the policy for "now" ---------------------------------------------------


class _Fake:
    """A wall clock and a monotonic clock the test sets by hand."""

    def __init__(self, wall: float) -> None:
        self.wall, self.mono, self.synced = wall, 1000.0, False

    def clock(self, policy: str, floor: float = 0.0) -> HouseholdClock:
        return HouseholdClock(
            policy,
            floor=floor,
            wall=lambda: self.wall,
            monotonic=lambda: self.mono,
            synchronised=lambda: self.synced,
        )

    def tick(self, s: float) -> None:
        self.wall += s
        self.mono += s


REAL = 1_780_000_000.0  # the true time in these tests
STALE = REAL - 5 * 86400  # a Pi that booted with fake-hwclock's time, 5 days behind


def test_system_policy_trusts_the_system_clock_whatever_the_meters_say() -> None:
    f = _Fake(STALE)
    c = f.clock("system", floor=REAL - 100)
    c.observe(REAL)
    assert c.now() == STALE and c.source == "system"


def test_auto_uses_the_meters_while_the_system_clock_is_unsynchronised_and_wrong() -> None:
    f = _Fake(STALE)
    c = f.clock("auto", floor=REAL - 3600)
    # Before any push: never earlier than the last good time (the newest stored reading).
    assert c.now() == REAL - 3600 and c.source == "last good"
    c.observe(REAL)
    f.tick(30)
    assert c.now() == REAL + 30 and c.source == "meter"  # advanced by the monotonic clock
    f.synced = True  # NTP answered: the system clock is right again
    f.wall = REAL + 31
    assert c.now() == REAL + 31 and c.source == "system"


def test_auto_keeps_the_system_clock_when_it_agrees_with_the_meters() -> None:
    f = _Fake(REAL + 120)  # two minutes apart: a meter's drift, not a wrong clock
    c = f.clock("auto")
    c.observe(REAL)
    assert c.now() == REAL + 120 and c.source == "system"


def test_meter_policy_and_a_meter_clock_that_jumps_back_is_not_followed() -> None:
    f = _Fake(REAL)
    c = f.clock("meter")
    assert c.now() == REAL and c.source == "system"  # nothing heard yet
    c.observe(REAL + 10)
    f.tick(5)
    assert c.now() == REAL + 15 and c.source == "meter"
    c.observe(REAL - 3600)  # one meter an hour behind: "now" does not go back
    assert c.now() == REAL + 15


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="auto"):
        HouseholdClock("ntp")
