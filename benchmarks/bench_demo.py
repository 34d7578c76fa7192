"""What the running demo costs: CPU and memory of ``ihd demo --speed 1``, offscreen.

The demo (the installed ``ihd`` script, exactly as a user runs it) is started on a data
directory that already holds the 30 days of seeded history, so the window measures steady
running, not seeding. CPU time (utime + stime of all threads, /proc/PID/stat) is sampled
once start-up and the first push are over (t = 12 s after launch) and again one window
(60 s; 15 s with --quick) later; the figure is CPU seconds per wall second, as a
percentage of ONE core. The CPU spent before the window (start-up, the first push) is
reported too. RSS (VmRSS) and the peak RSS
(VmHWM) are read from /proc/PID/status at the end of the window.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchlib import (
    Figure,
    ihd_command,
    offscreen_env,
    proc_cpu_s,
    proc_status_kb,
    rounded,
    seed_demo_dir,
)


def run(quick: bool) -> Iterator[Figure]:
    # The first electricity push comes up to 10 s after start-up and costs ~1 s of CPU
    # once (see the README); settling for 12 s keeps it out of the steady-state window.
    settle_s, window_s = (12.0, 15.0) if quick else (12.0, 60.0)
    label = f"{window_s:.0f}s"
    tmp = Path(tempfile.mkdtemp(prefix="ihd-bench-demo-"))
    try:
        data = tmp / "data"
        seed_demo_dir(data)
        run_for = settle_s + window_s + 2  # wall seconds from the GUI start: a margin
        log = (tmp / "stderr.txt").open("w+")  # a file, not a pipe: it never blocks the demo
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [
                *ihd_command(),
                "demo",
                "--data-dir",
                str(data),
                "--speed",
                "1",
                "--run-for",
                f"{run_for:g}",
            ],
            env=offscreen_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        try:
            _sleep_until(t0 + settle_s, proc)
            wall_a, cpu_a = time.monotonic(), proc_cpu_s(proc.pid)
            settle_cpu = cpu_a
            _sleep_until(t0 + settle_s + window_s, proc)
            wall_b, cpu_b = time.monotonic(), proc_cpu_s(proc.pid)
            rss_kb = proc_status_kb(proc.pid, "VmRSS")
            hwm_kb = proc_status_kb(proc.pid, "VmHWM")
            proc.wait(timeout=run_for + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        if proc.returncode != 0:
            err = (tmp / "stderr.txt").read_text(errors="replace")
            tail = "\n".join(err.splitlines()[-15:])
            raise RuntimeError(f"ihd demo exited {proc.returncode}; stderr:\n{tail}")
        yield Figure(
            f"demo.cpu_percent_{label}", rounded(100 * (cpu_b - cpu_a) / (wall_b - wall_a)), "%"
        )
        yield Figure(f"demo.rss_mb_{label}", rounded(rss_kb / 1024), "MB")
        yield Figure("demo.rss_peak_mb", rounded(hwm_kb / 1024), "MB")
        yield Figure(f"demo.cpu_s_first_{settle_s:.0f}s", rounded(settle_cpu), "s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sleep_until(deadline: float, proc: subprocess.Popen[str]) -> None:
    while (left := deadline - time.monotonic()) > 0:
        if proc.poll() is not None:
            raise RuntimeError(f"ihd demo exited early ({proc.returncode})")
        time.sleep(min(left, 0.5))
