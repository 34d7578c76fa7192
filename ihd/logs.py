"""Logging for a device that runs for years on an SD card.

Two rules: the log never grows without bound (a size-capped rotating file), and a
repeating error (a neighbour's meter on our channel, a flapping radio) is logged a few
times and then summarised ("... 4,213 more like this in the last 60 s"), instead of
writing the same line ten times a second.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RateLimit(logging.Filter):
    """Let through ``burst`` records per (logger, message template) per ``window_s``.

    When a window closes with suppressed records, the next record of that kind carries a
    note with how many were dropped. Keys use the unformatted message so that
    "bad FCS from %s" from a hundred sources still counts as one kind.

    One instance may sit on several handlers: each record is counted once, and every
    handler gets the same verdict.
    """

    def __init__(
        self, burst: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list[float]] = {}  # key -> [start, seen, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        seen = record.__dict__.get("_ihd_rate_limit")
        if seen is not None and seen[0] == id(self):  # already judged on another handler
            return bool(seen[1])
        verdict = self._judge(record)
        record.__dict__["_ihd_rate_limit"] = (id(self), verdict)  # picklable, unlike self
        return verdict

    def _judge(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            w = self._windows.get(key)
            if w is None or now - w[0] >= self.window_s:
                dropped = int(w[2]) if w else 0
                self._windows[key] = [now, 1, 0]
                if len(self._windows) > 1000:  # forget stale kinds, bound memory
                    cutoff = now - self.window_s
                    self._windows = {k: v for k, v in self._windows.items() if v[0] >= cutoff}
                if dropped:
                    record.msg = f"{record.msg} [{dropped} more like this were suppressed]"
                return True
            w[1] += 1
            if w[1] <= self.burst:
                return True
            w[2] += 1
            return False


def setup(
    *,
    level: int = logging.INFO,
    log_dir: Path | None = None,
    stderr: bool = True,
    max_bytes: int = 1_000_000,
    backups: int = 3,
) -> None:
    """Configure the root logger once: stderr and/or a capped rotating file."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    root.setLevel(level)
    limiter = RateLimit()
    fmt = logging.Formatter(LOG_FORMAT)
    handlers: list[logging.Handler] = []
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    log_dir / "ihd.log", maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
                )
            )
        except OSError as e:
            print(f"ihd: cannot write logs to {log_dir}: {e}", file=sys.stderr)
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(limiter)
        root.addHandler(h)
