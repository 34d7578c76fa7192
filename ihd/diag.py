"""One registry of named counters and states that every layer reports into.

Names are dotted and start with the layer (``smwap.fcs_error``, ``store.commits``) so
that ``ihd diag`` and the UI can group them. Counters only go up; states hold the
latest value (a string, number or bool). The registry is thread-safe and cheap: an
increment is one dict update under a lock.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

StateValue = str | int | float | bool | None


class Diagnostics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._states: dict[str, StateValue] = {}

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + n

    def set(self, name: str, value: StateValue) -> None:
        with self._lock:
            self._states[name] = value

    def set_many(self, states: Mapping[str, StateValue]) -> None:
        """Several states at once (a consistent group, such as the neighbour table)."""
        with self._lock:
            self._states.update(states)

    def counter(self, name: str) -> int:
        with self._lock:
            return self._counters.get(name, 0)

    def state(self, name: str) -> StateValue:
        with self._lock:
            return self._states.get(name)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counters": dict(sorted(self._counters.items())),
                "states": dict(sorted(self._states.items())),
            }

    def write_snapshot(self, path: Path) -> None:
        """Atomically publish the registry for ``ihd diag`` (a tmpfs path in production)."""
        # One writer at a time (so the newest snapshot is the one left in place), and a
        # temporary file per process: writers sharing one would publish a half-written file.
        with self._write_lock:
            snap = self.snapshot()
            snap["written_at"] = time.time()
            snap["pid"] = os.getpid()
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(snap, indent=1, default=str))
            os.replace(tmp, path)


def format_snapshot(snap: Mapping[str, Any]) -> str:
    """Human-readable dump, grouped by layer: what ``ihd diag`` prints."""
    lines: list[str] = []
    for kind in ("states", "counters"):
        items: Mapping[str, Any] = snap.get(kind, {})
        if not items:
            continue
        lines.append(f"{kind}:")
        width = max(len(k) for k in items)
        layer = None
        for name, value in sorted(items.items()):  # sorted, so each layer is one group
            head = name.split(".", 1)[0]
            if head != layer and layer is not None:
                lines.append("")
            layer = head
            lines.append(f"  {name:<{width}}  {value}")
    return "\n".join(lines)
