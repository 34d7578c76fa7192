"""Injected clocks: the wall, a sped-up demo clock and a manual clock for tests."""

from __future__ import annotations

import threading
import time

import pytest

from ihd.clock import ManualClock, ScaledClock, WallClock


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
