"""The diagnostics registry: thread-safe counters and states, an atomic JSON snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ihd.diag import Diagnostics, format_snapshot


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as possible, so that an unlocked read-modify-write loses."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _run(n: int, target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_counters_and_states_basics() -> None:
    d = Diagnostics()
    assert d.counter("smwap.frames_ok") == 0
    assert d.state("radio.status") is None
    d.count("smwap.frames_ok")
    d.count("smwap.frames_ok", 4)
    d.set("radio.status", "ok")
    d.set("radio.status", "error: gone")
    assert d.counter("smwap.frames_ok") == 5
    assert d.state("radio.status") == "error: gone"


def test_snapshot_is_a_sorted_copy() -> None:
    d = Diagnostics()
    d.count("store.commits")
    d.count("radio.frames", 3)
    d.set("store.status", "ok")
    d.set("app.mode", "demo")
    snap = d.snapshot()
    assert snap == {
        "counters": {"radio.frames": 3, "store.commits": 1},
        "states": {"app.mode": "demo", "store.status": "ok"},
    }
    assert list(snap["counters"]) == ["radio.frames", "store.commits"]
    assert list(snap["states"]) == ["app.mode", "store.status"]
    snap["counters"]["radio.frames"] = 999
    snap["states"].clear()
    assert d.counter("radio.frames") == 3 and d.state("app.mode") == "demo"


def test_counters_are_thread_safe(busy_switching: None) -> None:
    d = Diagnostics()
    start = threading.Barrier(8)

    def work(i: int) -> None:
        start.wait()
        for _ in range(10_000):
            d.count("smwap.frames_ok")
            d.count(f"meter.thread{i}.pushes")

    _run(8, work)
    assert d.counter("smwap.frames_ok") == 80_000
    assert all(d.counter(f"meter.thread{i}.pushes") == 10_000 for i in range(8))


def test_states_are_thread_safe_and_snapshots_consistent(busy_switching: None) -> None:
    d = Diagnostics()
    start = threading.Barrier(9)
    done = threading.Event()
    seen: list[int] = []

    def work(i: int) -> None:
        start.wait()
        for k in range(10_000):
            d.set(f"meter.thread{i}.last", k)
            d.count("radio.frames")

    def watch() -> None:
        start.wait()
        while not done.is_set():
            seen.append(d.snapshot()["counters"].get("radio.frames", 0))

    watcher = threading.Thread(target=watch)
    watcher.start()
    _run(8, work)
    done.set()
    watcher.join()
    assert [d.state(f"meter.thread{i}.last") for i in range(8)] == [9_999] * 8
    assert d.counter("radio.frames") == 80_000
    assert seen == sorted(seen)  # counters only go up, as seen from another thread


def test_write_snapshot_publishes_json(tmp_path: Path) -> None:
    d = Diagnostics()
    d.count("store.commits", 2)
    d.set("store.status", "ok")
    d.set("meter.0249484400010001.rssi_dbm", -54.2)
    path = tmp_path / "run" / "ihd" / "diag.json"  # parents are created
    before = time.time()
    d.write_snapshot(path)
    after = time.time()
    snap = json.loads(path.read_text())
    assert snap["counters"] == {"store.commits": 2}
    assert snap["states"] == {"meter.0249484400010001.rssi_dbm": -54.2, "store.status": "ok"}
    assert snap["pid"] == os.getpid()
    assert before <= snap["written_at"] <= after
    assert [p.name for p in path.parent.iterdir()] == ["diag.json"]  # no temporary left


@pytest.mark.parametrize("writers", [1, 3])
def test_write_snapshot_is_atomic(tmp_path: Path, writers: int) -> None:
    """A reader never sees a half-written file, even with writers in several threads."""
    d = Diagnostics()
    for i in range(400):  # a snapshot of some size, so a torn write would show
        d.count(f"layer{i % 9}.counter_with_a_long_name_{i}", i)
    path = tmp_path / "diag.json"
    d.write_snapshot(path)
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = bad = 0
    writes_seen: list[int] = []

    def write(_: int) -> None:
        try:
            while not stop.is_set():
                d.count("diag.writes")
                d.write_snapshot(path)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 0.5
    try:
        while time.monotonic() < deadline:
            try:
                snap = json.loads(path.read_text())
                assert len(snap["counters"]) >= 400
                writes_seen.append(snap["counters"].get("diag.writes", 0))
                reads += 1
            except (ValueError, FileNotFoundError):
                bad += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert bad == 0 and reads > 50
    assert writes_seen == sorted(writes_seen)  # the published file never goes back in time
    assert json.loads(path.read_text())["counters"]["diag.writes"] == d.counter("diag.writes")
    assert [p.name for p in tmp_path.iterdir()] == ["diag.json"]


WRITER = """
import sys, time
from pathlib import Path
from ihd.diag import Diagnostics
d = Diagnostics()
for i in range(400):
    d.count(f"layer{i % 9}.counter_with_a_long_name_{i}", i)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    d.write_snapshot(Path(sys.argv[1]))
"""


def test_write_snapshot_is_atomic_across_processes(tmp_path: Path) -> None:
    """Two displays started on one data dir must not tear each other's snapshot either."""
    path = tmp_path / "diag.json"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), "0.8"], stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    reads = bad = 0
    pids: set[int] = set()
    try:
        while any(p.poll() is None for p in procs):
            try:
                snap = json.loads(path.read_text())
            except FileNotFoundError:
                continue  # not written yet
            except ValueError:
                bad += 1
                continue
            reads += 1
            pids.add(snap["pid"])
    finally:
        errors = [p.communicate(timeout=30)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert bad == 0 and reads > 10
    assert pids <= {p.pid for p in procs}
    assert [p.name for p in tmp_path.iterdir()] == ["diag.json"]


def _groups(text: str) -> dict[str, list[list[tuple[str, str]]]]:
    """Parse format_snapshot output: section -> groups (split at blank lines) -> (name, value)."""
    sections: dict[str, list[list[tuple[str, str]]]] = {}
    current: list[list[tuple[str, str]]] = []
    for line in text.split("\n"):
        if line.endswith(":") and not line.startswith(" "):
            current = sections.setdefault(line[:-1], [])
            current.append([])
        elif line == "":
            current.append([])
        else:
            assert line.startswith("  "), line
            name, value = line.split(None, 1)
            current[-1].append((name, value))
    return sections


def test_format_snapshot_groups_by_layer() -> None:
    snap = {
        "states": {"store.status": "ok", "app.mode": "demo", "radio.name": "sim"},
        # deliberately not in order: the dump still groups each layer together
        "counters": {
            "store.commits": 2,
            "smwap.frames_ok": 3,
            "meter.pushes": 4,
            "smwap.fcs_error": 1,
            "store.rows_written": 10,
        },
    }
    text = format_snapshot(snap)
    assert list(_groups(text)) == ["states", "counters"]
    assert _groups(text) == {
        "states": [[("app.mode", "demo")], [("radio.name", "sim")], [("store.status", "ok")]],
        "counters": [
            [("meter.pushes", "4")],
            [("smwap.fcs_error", "1"), ("smwap.frames_ok", "3")],
            [("store.commits", "2"), ("store.rows_written", "10")],
        ],
    }
    # values line up in one column per section
    lines = [line for line in text.splitlines() if line.startswith("  ")]
    assert len({line.rindex(" ") for line in lines[:3]}) == 1
    assert len({line.rindex(" ") for line in lines[3:]}) == 1


def test_format_snapshot_of_a_real_registry() -> None:
    d = Diagnostics()
    d.count("store.commits")
    d.count("radio.frames", 7)
    d.count("store.write_errors")
    text = format_snapshot(d.snapshot())
    assert _groups(text) == {
        "counters": [[("radio.frames", "7")], [("store.commits", "1"), ("store.write_errors", "1")]]
    }


def test_format_snapshot_of_nothing_is_empty() -> None:
    assert format_snapshot({}) == ""
    assert format_snapshot({"states": {}, "counters": {}}) == ""
