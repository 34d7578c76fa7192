"""How long from launching the demo until the wall shows a number.

Each run starts ``startup_driver.py`` as a new process (offscreen Qt), which runs
``ihd demo`` through ``ihd.cli.main`` and prints when the first frame showing a meter value
was presented. The time is taken here, from just before the child is created, so it
includes exec, interpreter start-up and every import.

* cold: an empty data directory, so the 30 days of demo history are seeded first;
* warm: the directory a cold run left, restarted at once (nothing to seed);
* warm after 1 h: the same history, with the demo started an hour after it ends (with
  ``--start``), as after the display was off for an hour: the gap is seeded first.

Python's bytecode cache is on for these runs (in a private ``PYTHONPYCACHEPREFIX``, so
nothing is written into the source tree), whatever ``PYTHONDONTWRITEBYTECODE`` says: an
installed display has compiled modules. One unmeasured run fills the cache first.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

from benchlib import BENCH_DIR, Figure, offscreen_env, rounded

DRIVER = BENCH_DIR / "startup_driver.py"
TIMEOUT_S = 120
TZ = "Europe/London"  # the default household.timezone, which --start is read in


def launch(data_dir: Path, env: dict[str, str], *extra: str) -> dict[str, float]:
    """One start; returns the driver's events in seconds since the child was created."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(DRIVER), "--data-dir", str(data_dir), "--run-for", "60", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    events: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) != 3 or parts[0] != "BENCH":
            continue
        if parts[1] == "error":
            raise RuntimeError(f"startup driver: {parts[2]}")
        if parts[1] != "value":
            events[parts[1]] = float(parts[2]) - t0
    if proc.returncode != 0 or "first_value" not in events:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(
            f"startup driver exited {proc.returncode} without showing a value; stderr:\n{tail}"
        )
    return events


def check(runs: list[dict[str, float]], *, seeded: bool, what: str) -> None:
    """Each scenario is what it claims to be: history seeded first, or not."""
    for r in runs:
        if ("seed_start" in r) != seeded:
            raise RuntimeError(f"{what} start {'did not seed' if seeded else 'seeded'} history")


def median(runs: list[dict[str, float]], end: str, start: str | None = None) -> float:
    return rounded(statistics.median(r[end] - (r[start] if start else 0.0) for r in runs))


def run(quick: bool) -> Iterator[Figure]:
    n = 1 if quick else 3
    tmp = Path(tempfile.mkdtemp(prefix="ihd-bench-startup-"))
    env = offscreen_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    try:
        launch(tmp / "prime", env)  # fills the bytecode cache
        cold = [launch(tmp / f"cold{i}", env) for i in range(n)]
        check(cold, seeded=True, what="a cold")
        yield Figure("startup.first_value_cold_s", median(cold, "first_value"), "s")
        yield Figure("startup.seed_history_s", median(cold, "seed_end", "seed_start"), "s")

        warm = [launch(tmp / "cold0", env) for _ in range(n)]
        check(warm, seeded=False, what="a warm")
        yield Figure("startup.first_value_warm_s", median(warm, "first_value"), "s")
        # Where a warm start goes: interpreter + imports, store + pipeline, Qt + first frame.
        yield Figure("startup.warm_imports_s", median(warm, "imports"), "s")
        yield Figure(
            "startup.warm_qt_to_first_value_s", median(warm, "first_value", "pipeline_built"), "s"
        )

        later = dt.datetime.now(zoneinfo.ZoneInfo(TZ)) + dt.timedelta(hours=1, minutes=1)
        start = later.strftime("%Y-%m-%dT%H:%M")
        gap = []
        for i in range(n):
            shutil.copytree(tmp / "cold0", tmp / f"gap{i}")
            gap.append(launch(tmp / f"gap{i}", env, "--start", start))
        check(gap, seeded=True, what="an after-1-h")
        yield Figure("startup.first_value_warm_after_1h_s", median(gap, "first_value"), "s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
