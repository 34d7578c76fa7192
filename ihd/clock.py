"""Clocks are injected, never read from the stdlib inside the protocol stack.

Every layer takes ``now`` as a float of POSIX seconds (UTC). The demo runs on a
``ScaledClock`` so that ``--speed 60`` plays an hour a minute through the same code
that runs on the wall clock in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """POSIX seconds, UTC."""
        ...

    def sleep_until(self, t: float, stop: threading.Event) -> bool:
        """Wait until clock time ``t``; return False if ``stop`` was set first."""
        ...


class WallClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def sleep_until(self, t: float, stop: threading.Event) -> bool:
        delay = t - self.now()
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()


class ScaledClock:
    """Simulated time that starts at ``start`` and runs ``speed`` times faster than the wall."""

    def __init__(self, start: float, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = start
        self._wall0 = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._wall0) * self.speed

    def sleep_until(self, t: float, stop: threading.Event) -> bool:
        delay = (t - self.now()) / self.speed
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()


class ManualClock:
    """A clock that only moves when told to: for tests and fast-forward runs."""

    def __init__(self, start: float) -> None:
        self._t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds

    def set(self, t: float) -> None:
        with self._lock:
            self._t = max(self._t, t)

    def sleep_until(self, t: float, stop: threading.Event) -> bool:
        self.set(t)
        return not stop.is_set()


# --- what "now" means on a display without a real-time clock -------------------------------

CLOCK_POLICIES = ("auto", "system", "meter")
#: systemd-timesyncd creates this file once the system clock is synchronised.
TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"
#: How far the system clock may be from the meters' before "auto" stops trusting it.
MAX_DISAGREEMENT_S = 300.0


def system_clock_synchronised(flag: str = TIMESYNC_FLAG) -> bool:
    """True once NTP (systemd-timesyncd) has set the system clock since boot."""
    import os

    return os.path.exists(flag)


class HouseholdClock:
    """The display's "now", by policy (config ``household.clock``).

    A Raspberry Pi before the Pi 5 has no RTC: until NTP answers, it boots at the time it
    last shut down (fake-hwclock), and an offline display may never get NTP. The meters,
    on the other hand, keep time (SMETS2 meters are synchronised by the network), and every
    push carries their clock. So:

    * ``system``: the system clock, whatever it says.
    * ``meter``: the newest meter time heard, advanced by the monotonic clock since; the
      system clock until a meter is heard.
    * ``auto`` (default): the system clock while it is synchronised (NTP) or agrees with
      the meters to within 5 minutes; otherwise the meters' time; before any meter is
      heard, the system clock but never earlier than ``floor`` (the newest reading
      stored: the last good time), so "today" never goes back across a restart.

    Readings keep the meter's own timestamps whatever the policy; this clock decides the
    live view: "today", the link age, the midnight roll-over. ``source`` says which clock
    is in use, for diagnostics.
    """

    def __init__(
        self,
        policy: str = "auto",
        *,
        floor: float = 0.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        synchronised: Callable[[], bool] = system_clock_synchronised,
    ) -> None:
        if policy not in CLOCK_POLICIES:
            raise ValueError(f"clock policy must be one of {CLOCK_POLICIES}, not {policy!r}")
        self.policy = policy
        self.floor = floor
        self._wall = wall
        self._mono = monotonic
        self._synchronised = synchronised
        self._meter: tuple[float, float] | None = None  # (meter time, monotonic then)
        self._lock = threading.Lock()
        self.source = "system"

    def observe(self, meter_time: float) -> None:
        """A meter's clock, as a push just reported it (call at reception)."""
        with self._lock:
            if self._meter is None or meter_time >= self._meter_now():
                self._meter = (meter_time, self._mono())

    def _meter_now(self) -> float:
        assert self._meter is not None
        t, at = self._meter
        return t + (self._mono() - at)

    def now(self) -> float:
        with self._lock:
            wall = self._wall()
            if self.policy == "system":
                self.source = "system"
                return wall
            if self._meter is None:
                self.source = (
                    "system" if self.policy == "meter" or wall >= self.floor else "last good"
                )
                return wall if self.policy == "meter" else max(wall, self.floor)
            meter = self._meter_now()
            if self.policy == "meter":
                self.source = "meter"
                return meter
            if self._synchronised() or abs(wall - meter) <= MAX_DISAGREEMENT_S:
                self.source = "system"
                return wall
            self.source = "meter"
            return meter

    def sleep_until(self, t: float, stop: threading.Event) -> bool:
        delay = t - self.now()
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()
