"""What every benchmark module shares: the ``Figure`` it reports and a few measuring tools.

A benchmark module is ``benchmarks/bench_<name>.py`` with ``def run(quick: bool)`` that
returns (or yields, so that ``run.py`` can print each line as soon as it is measured) an
iterable of ``Figure``. Nothing here imports ihd, Qt or anything slow.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Figure:
    name: str  # "<area>.<what>_<unit suffix>", e.g. "startup.first_value_warm_s"
    value: float
    unit: str  # "s", "us", "%", "MB"

    def line(self) -> str:
        return f"{self.name}: {format_value(self.value)} {self.unit}"


Figures = Iterable[Figure]


def format_value(v: float) -> str:
    """Three significant figures, never in exponent form for the sizes we report."""
    if v == 0 or not (abs(v) < 1e15):
        return f"{v:g}"
    digits = max(0, 2 - int(f"{abs(v):e}".split("e")[1]))
    return f"{v:.{digits}f}"


def rounded(v: float) -> float:
    return float(format_value(v))


# ------------------------------------------------------------------------- timing


def per_call_us(
    fn: Callable[[], object],
    *,
    iterations: int = 20_000,
    batch_target_us: float = 200.0,
    warmup: int = 500,
) -> float:
    """Median over batches of calls of the time per call, in microseconds.

    Batches are sized to take about ``batch_target_us`` each: long enough that the timer
    costs nothing, short enough that most batches are never preempted, so the median holds
    when the machine is busy. ``fn`` takes no arguments; it may consume prepared inputs.
    """
    counter = time.perf_counter_ns
    t0 = counter()
    for _ in range(warmup):
        fn()
    warm_us = (counter() - t0) / 1000 / max(1, warmup)
    batch = max(1, min(1000, round(batch_target_us / max(warm_us, 1e-3))))
    samples = []
    for _ in range(max(1, -(-iterations // batch))):
        t0 = counter()
        for _ in range(batch):
            fn()
        samples.append((counter() - t0) / batch)
    return statistics.median(samples) / 1000


def cycle_calls(
    fn: Callable[..., object], inputs: list[tuple[object, ...]]
) -> Callable[[], object]:
    """A no-argument callable that calls ``fn(*inputs[i])`` for i = 0, 1, 2 ... (wrapping)."""
    it: Iterator[tuple[object, ...]] = iter(())

    def call() -> object:
        nonlocal it
        try:
            args = next(it)
        except StopIteration:
            it = iter(inputs)
            args = next(it)
        return fn(*args)

    return call


# ------------------------------------------------------------------ other processes


def proc_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "(comm)": field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kb(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/PID/status, e.g. VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def offscreen_env() -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def ihd_command() -> list[str]:
    """The installed console script (what `./dev demo` runs), or ``python -m ihd.cli``."""
    exe = VENV_BIN / "ihd"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "ihd.cli"]


def seed_demo_dir(data_dir: Path) -> float:
    """Let ``ihd demo`` create and seed ``data_dir`` (30 days); returns the wall seconds."""
    t0 = time.monotonic()
    subprocess.run(
        [*ihd_command(), "demo", "--headless", "--data-dir", str(data_dir), "--run-for", "0"],
        env=offscreen_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return time.monotonic() - t0
