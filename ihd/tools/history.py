"""``ihd export``, ``ihd backup`` and ``ihd restore``: the history file from the command line.

``export`` and ``backup`` read the database read-only, so they are safe while the display
runs. ``restore`` replaces the file, so it refuses while a display answers on its control
socket (and the store refuses if anything else still has the file open). See
docs/backup.md.

Exit status: 0 done; 1 failed (the reason is one line on stderr); 2 a bad argument, or
the display is running (``restore``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from ihd import paths
from ihd.app.control import ControlError, request
from ihd.meter.reading import Utility
from ihd.store import StoreError, StoreReader
from ihd.store.files import backup, export_csv, restore

#: name -> (help, description)
COMMANDS = {
    "export": (
        "write the history as CSV",
        "Write the history as CSV: usage per minute, hour, day or month (local time), or "
        "the raw meter readings. Safe while the display runs. Dates are local "
        "(YYYY-MM-DD, or YYYY-MM-DDTHH:MM); --to is inclusive for a date.",
    ),
    "backup": (
        "copy the history to a file (safe while the display runs)",
        "Copy the history database to FILE with SQLite's online backup API: a consistent "
        "snapshot, taken while the display keeps writing. The copy is checked before it "
        "replaces FILE.",
    ),
    "restore": (
        "replace the history with a backup (stop the display first)",
        "Replace the history database with FILE, made by ihd backup. Refused while the "
        "display runs. The history it replaces is kept beside it as "
        "history.sqlite.before-restore.",
    ),
}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="the demo's history, not ihd run's")
    if name == "export":
        p.add_argument("--csv", action="store_true", help="CSV (the only format, the default)")
        p.add_argument("--from", dest="start", metavar="DATE", help="first local date or time")
        p.add_argument("--to", dest="end", metavar="DATE", help="last local date (inclusive)")
        p.add_argument(
            "--utility", choices=[str(u) for u in Utility], help="one utility (default: all)"
        )
        p.add_argument(
            "--interval",
            choices=("minute", "hour", "day", "month"),
            default="minute",
            help="usage per minute (default), hour, day or month",
        )
        p.add_argument(
            "--readings", action="store_true", help="the raw meter readings instead of usage"
        )
        p.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    else:
        p.add_argument("file", type=Path, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    p = paths.resolve(demo=args.demo, config_file=args.config, data_dir=args.data_dir)
    try:
        if args.command == "export":
            return _export(p, args)
        if args.command == "backup":
            info = backup(p.database, args.file)
            print(
                f"backed up {p.database} to {info.path} ({info.bytes / 1e6:.1f} MB, "
                f"{info.readings} readings, {info.usage_minutes} usage minutes)"
            )
            return 0
        return _restore(p, args.file)
    except StoreError as e:
        print(f"ihd {args.command}: {e}", file=sys.stderr)
        return 1


def _restore(p: paths.Paths, file: Path) -> int:
    if display_running(p):
        print(
            f"ihd restore: the display is running (it answers on {p.control_socket}): "
            "stop it first",
            file=sys.stderr,
        )
        return 2
    info = restore(file, p.database)
    print(
        f"restored {file} to {info.path} ({info.readings} readings, "
        f"{info.usage_minutes} usage minutes, schema v{info.schema_version})"
    )
    return 0


def display_running(p: paths.Paths) -> bool:
    """Does a display answer on the control socket (so its history file is in use)?"""
    try:
        for _ in request(p.control_socket, {"cmd": "status"}, timeout=5):
            return True
    except ControlError:
        return False
    except OSError:  # there, but not answering: do not touch its file
        return True
    return True


def date_bound(reader: StoreReader, text: str | None, *, end: bool) -> float:
    """A local date or date-time as POSIX seconds; an --to date means the end of that day."""
    if text is None:
        return 1e12 if end else -1e12
    cal = reader.calendar
    try:
        if "T" in text or " " in text:
            local = dt.datetime.fromisoformat(text)
            if local.tzinfo is None:
                local = local.replace(tzinfo=cal.zone)
            return local.timestamp()
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise StoreError(f"not a date: {text!r} (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if end:
        day += dt.timedelta(days=1)
    return cal.day_ms(day) / 1000


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            yield f
        tmp.replace(path)
    except OSError as e:
        raise StoreError(f"cannot write {path}: {e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _export(p: paths.Paths, args: argparse.Namespace) -> int:
    if not p.database.is_file():
        raise StoreError(f"no history at {p.database}")
    try:
        return _export_from(p, args)
    except sqlite3.Error as e:
        raise StoreError(f"cannot read {p.database}: {e}") from None


def _export_from(p: paths.Paths, args: argparse.Namespace) -> int:
    with StoreReader(p.database) as reader:
        start, end = (
            date_bound(reader, args.start, end=False),
            date_bound(reader, args.end, end=True),
        )
        if end <= start:
            print("ihd export: --to is before --from", file=sys.stderr)
            return 2
        utility = Utility(args.utility) if args.utility else None
        with _output(args.out) as out:
            n = export_csv(
                reader,
                out,
                start=start,
                end=end,
                utility=utility,
                interval=args.interval,
                readings=args.readings,
            )
    if args.out is not None:
        print(f"wrote {n} rows to {args.out}", file=sys.stderr)
    return 0
