"""Clocks are injected, never read from the stdlib inside the protocol stack.

Every layer takes ``now`` as a float of POSIX seconds (UTC). The demo runs on a
``ScaledClock`` so that ``--speed 60`` plays an hour a minute through the same code
that runs on the wall clock in production.
"""

from __future__ import annotations

import threading
import time
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
