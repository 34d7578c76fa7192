"""What the store's steady state costs the SD card: fsyncs and bytes written per commit.

A child process (this file, ``child`` mode) runs the store as the display does: the demo
household's pushes through ``Ingest.accept`` and ``Store.submit``, the writer thread
committing at a fixed interval, each interval carrying 10 s of simulated pushes (one
electricity push; gas and water every 30 minutes). The commit interval is shortened to
50 ms so that many intervals fit in a few seconds; what a commit writes does not depend on
it. The database already holds a day of history, and the child runs one checkpoint cycle
(``checkpoint_every`` commits) before the window, so the window is steady state.

Over a window of N commits (a whole number of checkpoint cycles; 120 commits, 60 with
``--quick``) the parent attaches ``strace -f -c -e trace=fsync,fdatasync`` to every thread
of the child, and reads ``write_bytes`` from ``/proc/PID/io`` before and after (bytes the
child sent towards the storage: pages it dirtied in the page cache, WAL and checkpoints
together). The database lives in /var/tmp (a disk; a tmpfs would write nothing).

Three configurations, so that the choice is measured, not argued:

* ``store_io.*``: what ihd does: WAL, ``synchronous=NORMAL``, SQLite's automatic
  checkpoint off, a PASSIVE checkpoint every 30 commits by the writer;
* ``store_io.autocheckpoint_*``: the same with SQLite's automatic checkpoint (every 1000
  WAL pages) instead of ours;
* ``store_io.sync_full_*``: ``synchronous=FULL``, our checkpoints: an fsync per commit.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from benchlib import Figure, rounded  # noqa: E402

INTERVAL_S = 0.05
SIM_STEP_S = 10.0  # simulated time handed over per commit interval
START = 1_790_000_000.0
COMMITS_PER_DAY = 86_400 / 10  # at the default 10 s commit interval

#: figure prefix -> (synchronous, checkpoint_every)
CONFIGS = {
    "store_io": ("normal", 30),
    "store_io.autocheckpoint": ("normal", None),
    "store_io.sync_full": ("full", 30),
}


# ---------------------------------------------------------------------- the child


def _child(db: Path, synchronous: str, checkpoint_every: int | None, window: int) -> None:
    import heapq

    from ihd.app.ingest import Ingest
    from ihd.config import Config
    from ihd.diag import Diagnostics
    from ihd.sim.world import demo_world
    from ihd.store import Batch, Store
    from ihd.tariff import tariffs_from_config

    cfg = Config()
    world = demo_world(seed=3, start=START, tz=cfg.timezone)
    warm = checkpoint_every or 30
    end = START + 86400 + (warm + window + 5) * SIM_STEP_S
    streams = [[(t, i) for t in m.push_times(START, end)] for i, m in enumerate(world.meters)]
    pushes = [(t, i, world.meters[i].readings(t)) for t, i in heapq.merge(*streams)]
    diag = Diagnostics()
    store = Store(
        db,
        diag=diag,
        tz=cfg.timezone,
        commit_interval_s=INTERVAL_S,
        checkpoint_every=checkpoint_every,
        synchronous=synchronous,
    )
    ingest = Ingest(
        meters=world.devices(), tariffs=tariffs_from_config(cfg), tz=cfg.timezone, diag=diag
    )
    history = [
        ingest.accept(world.meters[i].device, r, seen_at=t)
        for t, i, r in pushes
        if t <= START + 86400
    ]
    store.write_now(
        Batch(
            readings=[r for b in history for r in b.readings],
            usage=[u for b in history for u in b.usage],
            state={k: v for b in history for k, v in b.state.items()},
            meters=[m for b in history[-3:] for m in b.meters],
        )
    )
    rest = iter([p for p in pushes if p[0] > START + 86400])
    pending = next(rest)
    sim_t = START + 86400

    def step() -> None:
        nonlocal pending, sim_t
        sim_t += SIM_STEP_S
        while pending[0] <= sim_t:
            t, i, r = pending
            store.submit(ingest.accept(world.meters[i].device, r, seen_at=t))
            pending = next(rest)
        time.sleep(INTERVAL_S)

    store.start()
    for _ in range(warm + 2):
        step()
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    commits, checkpoints = diag.counter("store.commits"), diag.counter("store.checkpoints")
    while diag.counter("store.commits") < commits + window:
        step()
    print(
        "done",
        diag.counter("store.commits") - commits,
        diag.counter("store.checkpoints") - checkpoints,
        flush=True,
    )
    sys.stdin.readline()
    os._exit(0)  # no close(): its final checkpoint is not steady state


# ---------------------------------------------------------------------- the parent


def _io(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = int(value)
    return out


def _line(stream: object, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError("no answer from the child")
    line: str = stream.readline()  # type: ignore[attr-defined]
    return line


def _measure(tmp: Path, synchronous: str, every: int | None, window: int) -> dict[str, float]:
    db = tmp / f"io-{synchronous}-{every}.sqlite"
    child = subprocess.Popen(
        [sys.executable, __file__, "child", str(db), synchronous, str(every or 0), str(window)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    trace = tmp / "strace.txt"
    strace: subprocess.Popen[str] | None = None
    try:
        assert child.stdin is not None and child.stdout is not None
        if _line(child.stdout, 120).strip() != "ready":
            raise RuntimeError("the child did not get ready")
        command = ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(trace)]
        command += ["-p", str(child.pid)]
        strace = subprocess.Popen(
            command,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert strace.stderr is not None
        if "attached" not in _line(strace.stderr, 10):
            raise RuntimeError("strace could not attach")
        before = _io(child.pid)
        child.stdin.write("go\n")
        child.stdin.flush()
        _, commits, checkpoints = _line(child.stdout, 120).split()
        after = _io(child.pid)
        strace.send_signal(signal.SIGINT)
        strace.wait(10)
        child.stdin.write("exit\n")
        child.stdin.flush()
        child.wait(10)
    finally:
        for p in (strace, child):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    calls = 0
    for line in trace.read_text().splitlines():
        parts = line.split()
        if parts and parts[-1] in ("fsync", "fdatasync"):
            calls += int(parts[3])
    n = int(commits)
    return {
        "fsyncs": calls / n,
        "kb": (after["write_bytes"] - before["write_bytes"]) / n / 1024,
        "checkpoints": int(checkpoints) / n,
    }


def run(quick: bool) -> Iterator[Figure]:
    if shutil.which("strace") is None:
        raise RuntimeError("strace is not installed (apt-get install strace)")
    window = 60 if quick else 120
    base = "/var/tmp" if Path("/var/tmp").is_dir() else None
    tmp = Path(tempfile.mkdtemp(prefix="ihd-bench-io-", dir=base))
    try:
        for prefix, (synchronous, every) in CONFIGS.items():
            got = _measure(tmp, synchronous, every, window)
            yield Figure(f"{prefix}.fsyncs_per_commit", rounded(got["fsyncs"]), "fsyncs")
            yield Figure(f"{prefix}.write_kb_per_commit", rounded(got["kb"]), "KB")
            if prefix == "store_io":
                mb_day = got["kb"] * COMMITS_PER_DAY / 1024
                yield Figure(f"{prefix}.write_mb_per_day", rounded(mb_day), "MB")
                yield Figure(
                    f"{prefix}.checkpoints_per_commit", rounded(got["checkpoints"]), "checkpoints"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    _child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]) or None, int(sys.argv[5]))
elif __name__ == "__main__":
    for fig in run("--quick" in sys.argv):
        print(fig.line())
