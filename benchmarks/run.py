"""Run the benchmarks: ``./dev bench`` (= ``.venv/bin/python benchmarks/run.py``).

Every ``benchmarks/bench_<name>.py`` is a benchmark module with

    def run(quick: bool) -> Iterable[Figure]

(``Figure`` is in ``benchlib``); a generator is best, so each line prints as soon as it is
measured. This prints one line per figure, ``name: value unit``, and merges the figures
into ``benchmarks/results.json`` as ``{"name": {"value": v, "unit": "..."}}``, with the
machine they were measured on under ``"_meta"``. Progress and errors go to stderr.

    benchmarks/run.py                  all modules
    benchmarks/run.py --quick          shorter runs (fewer repeats, a 15 s CPU window)
    benchmarks/run.py --only startup   one module (repeatable; or a comma-separated list)
    benchmarks/run.py --list           the modules
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sqlite3
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from benchlib import Figure  # noqa: E402

RESULTS = BENCH_DIR / "results.json"


def discover() -> list[str]:
    """Module names (``startup`` for ``bench_startup.py``), in file-name order."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def machine_info(quick: bool) -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "note": (
            f"measured on this {platform.machine()} development machine, "
            "not on the Raspberry Pi the display runs on"
        ),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "pyside6": version("PySide6-Essentials") or version("PySide6"),
        "dlms_cosem": version("dlms-cosem"),
        "sqlite": sqlite3.sqlite_version,
        "ihd": version("ihd"),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
    }


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_results(
    path: Path,
    figures: dict[str, Figure],
    meta: dict[str, Any],
    modules_run: dict[str, dict[str, Any]],
) -> None:
    """Merge into what is there: figures from modules not run this time are kept."""
    data = load_results(path)
    old_meta = data.pop("_meta", {})
    for f in figures.values():
        data[f.name] = {"value": f.value, "unit": f.unit}
    runs = dict(old_meta.get("modules", {})) if isinstance(old_meta, dict) else {}
    runs.update(modules_run)
    out = {"_meta": {**meta, "modules": dict(sorted(runs.items()))}}
    out.update(sorted(data.items()))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this module (bench_NAME.py); repeat or comma-separate",
    )
    ap.add_argument("--quick", action="store_true", help="shorter, noisier runs")
    ap.add_argument("--list", action="store_true", help="list the modules and exit")
    ap.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        metavar="JSON",
        help=f"where to merge the figures (default {RESULTS.name})",
    )
    args = ap.parse_args(argv)

    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        wanted = [
            n.strip().removeprefix("bench_").removesuffix(".py")
            for item in args.only
            for n in item.split(",")
            if n.strip()
        ]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            print(
                f"bench: no module {', '.join(unknown)} (have: {', '.join(names)})", file=sys.stderr
            )
            return 2
        names = [n for n in names if n in wanted]

    meta = machine_info(args.quick)
    print(
        f"bench: {meta['note']}: {meta['cpu']} ({meta['cores']} cores), "
        f"Python {meta['python']}, PySide6 {meta['pyside6']}" + (" [quick]" if args.quick else ""),
        file=sys.stderr,
        flush=True,
    )
    t_all = time.monotonic()
    figures: dict[str, Figure] = {}
    modules_run: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name in names:
        t0 = time.monotonic()
        try:
            module = importlib.import_module(f"bench_{name}")
            for fig in module.run(args.quick):
                if not isinstance(fig, Figure):
                    raise TypeError(f"bench_{name}.run yielded {fig!r}, not a Figure")
                if fig.name in figures:
                    raise ValueError(f"figure {fig.name} reported twice")
                figures[fig.name] = fig
                print(fig.line(), flush=True)
        except Exception:
            failed.append(name)
            print(f"bench: {name} failed:", file=sys.stderr)
            traceback.print_exc()
        else:
            modules_run[name] = {
                "date": meta["date"],
                "quick": args.quick,
                "seconds": round(time.monotonic() - t0, 1),
            }
        print(f"bench: {name} took {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
        save_results(args.results, figures, meta, modules_run)
    total = time.monotonic() - t_all
    print(
        f"bench: {len(figures)} figures from {len(names) - len(failed)} of {len(names)} "
        f"modules in {total:.0f} s; written to {args.results}",
        file=sys.stderr,
    )
    if failed:
        print(f"bench: FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
