"""The ``ihd`` command.

Every subcommand turns expected failures (a broken config, an unreadable database, a
missing radio) into one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from ihd import __version__

EPILOG = """\
examples:
  ihd demo                      the display with a simulated household (no hardware)
  ihd demo --speed 60           an hour a minute
  ihd demo --screenshot home.png --run-for 3
  ihd run                       a real radio, from the config file
  ihd diag                      every counter and state of the running display
  ihd config --example          a commented config file with all the defaults
"""


def _positive(text: str) -> float:
    v = float(text)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def _fraction(text: str) -> float:
    v = float(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text!r}")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="config file (default: the platform config dir's ihd/config.toml)",
    )
    p.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="where history, logs and runtime files live"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug detail")


def _display(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--headless",
        action="store_true",
        help="no window: print one line per reading (automatic without a display)",
    )
    p.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="render the UI offscreen and save it as PNG, then exit",
    )
    p.add_argument(
        "--run-for", type=float, metavar="SECONDS", help="stop after this many wall-clock seconds"
    )


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ihd",
        description="An open in-home energy display for SMWAP smart meters.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"ihd {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the display on a simulated household",
        description="Run the full display on a simulated household whose "
        "meters send real SMWAP frames over a simulated radio channel. "
        "Needs no hardware and no configuration.",
    )
    _common(demo)
    _display(demo)
    demo.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="simulated time per wall second (60 = an hour a minute)",
    )
    demo.add_argument("--seed", type=int, default=1, help="household random seed")
    demo.add_argument(
        "--history-days",
        type=int,
        default=30,
        help="days of seeded history on first start (default 30)",
    )
    demo.add_argument(
        "--start",
        metavar="YYYY-MM-DDTHH:MM",
        help="start the simulated clock at this local time (implies a "
        "throwaway data directory unless --data-dir is given)",
    )
    demo.add_argument(
        "--fresh", action="store_true", help="delete the demo's history and start again"
    )
    demo.add_argument(
        "--radio",
        choices=("sim", "emulated"),
        default="sim",
        help="sim: the simulated radio; emulated: the real AT86RF215 driver on the "
        "register-level chip emulator (pairing needs --speed 4 or less)",
    )
    demo.add_argument(
        "--unpaired",
        action="store_true",
        help="start with no meter paired (history stays) to show pairing; "
        "prints the simulated meters' install codes for `ihd pair --demo`",
    )
    demo.add_argument(
        "--fcs",
        type=int,
        choices=(2, 4),
        default=4,
        help="FCS octets the simulated meters send (default 4)",
    )
    demo.add_argument(
        "--loss",
        type=_fraction,
        default=0.02,
        help="fraction of frames lost on the simulated air (default 0.02)",
    )
    demo.add_argument(
        "--corruption",
        type=_fraction,
        default=0.01,
        help="fraction of frames with bit errors (default 0.01)",
    )

    run = sub.add_parser(
        "run",
        help="run the display on the configured radio",
        description="Run the display on the radio named in the config file.",
    )
    _common(run)
    _display(run)

    diag = sub.add_parser(
        "diag",
        help="print every counter and state",
        description="Print the diagnostics of the running display (and of its history store).",
    )
    _common(diag)
    diag.add_argument("--demo", action="store_true", help="look at the demo's data directory")
    diag.add_argument("--json", action="store_true", help="machine-readable output")

    from ihd.tools import pair as pair_tool

    for name, (help_text, description) in pair_tool.COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=description)
        _common(cmd_parser)
        pair_tool.add_arguments(name, cmd_parser)

    from ihd.tools import radio as radio_tool

    radio_parser = sub.add_parser(
        "radio",
        help="find the radio (probe) or measure the channels (scan)",
        description="Identify the attached radio, or measure the energy on each channel.",
    )
    radio_tool.add_arguments(radio_parser)

    from ihd.tools import history as history_tool

    for name, (help_text, description) in history_tool.COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=description)
        _common(cmd_parser)
        history_tool.add_arguments(name, cmd_parser)

    from ihd.tools import tariff as tariff_tool

    for name, (help_text, description) in tariff_tool.COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=help_text, description=description)
        _common(cmd_parser)
        tariff_tool.add_arguments(name, cmd_parser)

    cfg = sub.add_parser("config", help="check or show the configuration")
    _common(cfg)
    cfg.add_argument("--example", action="store_true", help="print a commented default config")

    from ihd.tools import decode as decode_tool
    from ihd.tools import sniff as sniff_tool

    decode = sub.add_parser(
        "decode",
        help="explain one frame field by field; check its FCS and MIC",
        description="Explain one SMWAP frame, a PSDU (MPDU + FCS) or a whole PPDU, field by\n"
        "field. With --key, verify the MIC and print the plaintext. A bare PSDU without\n"
        "--fcs is tried with both FCS lengths; a PPDU's PHR says which one it uses.\n\n"
        "exit status: 0 ok, 1 bad input, 3 bad FCS, 4 MIC failure (2: usage error);\n"
        "the reason is one line on stderr. Keys are never printed.",
        epilog="examples:\n"
        "  ihd decode 02006AE479                  an Imm-Ack; says which FCS length checks\n"
        "  ihd decode 69D82A34...  --key KEYHEX   verify the MIC, print the plaintext\n"
        "  ihd decode 55555555904E082C...         a whole PPDU: the PHR gives the FCS",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    decode_tool.add_arguments(decode)
    sniff = sub.add_parser(
        "sniff",
        help="print every frame on the (simulated) air; write a pcap",
        description="Listen on the simulated household's air beside the display and print\n"
        "one line per frame: time, RSSI, channel, FCS, type, addresses, security and the\n"
        "DLMS readings of pushes that decrypt. --pcap writes the same frames for\n"
        "Wireshark/tshark (802.15.4 TAP, link type 283).",
        epilog="examples:\n"
        "  ihd sniff --speed 60 --count 20         twenty frames, a minute a second\n"
        "  ihd sniff --pcap air.pcap --seconds 30  then: wireshark air.pcap\n"
        "  ihd sniff --pcap - | wireshark -k -i -  live in Wireshark (lines on stderr)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sniff_tool.add_arguments(sniff)

    sub.add_parser("version", help="print the version")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from ihd import logs

    logs.setup(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    cmd = args.command
    if cmd is None:
        parser().print_help(sys.stderr)  # a usage error: not on stdout
        return 2
    if cmd == "version":
        print(f"ihd {__version__}")
        return 0
    from ihd.config import ConfigError
    from ihd.radio.contract import RadioError
    from ihd.smwap.keys import KeyFileError
    from ihd.store import StoreError

    try:
        if cmd == "demo":
            from ihd.app.runner import run_demo

            return run_demo(args)
        if cmd == "run":
            from ihd.app.runner import run_configured

            return run_configured(args)
        if cmd == "diag":
            return _diag(args)
        if cmd == "config":
            return _config(args)
        if cmd == "decode":
            from ihd.tools import decode as decode_tool

            return decode_tool.run(args)
        if cmd == "sniff":
            from ihd.tools import sniff as sniff_tool

            return sniff_tool.run(args)
        if cmd == "radio":
            from ihd.tools import radio as radio_tool

            return radio_tool.run(args)
        if cmd in ("pair", "unpair", "meters"):
            from ihd.tools import pair as pair_tool

            return pair_tool.run(args)
        if cmd in ("export", "backup", "restore"):
            from ihd.tools import history as history_tool

            return history_tool.run(args)
        if cmd in ("whatif", "reprice"):
            from ihd.tools import tariff as tariff_tool

            return tariff_tool.run(args)
    except (ConfigError, StoreError, RadioError, KeyFileError) as e:
        print(f"ihd: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # e.g. --data-dir is a file, or not writable
        print(f"ihd: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    raise AssertionError(cmd)


def _config(args: argparse.Namespace) -> int:
    from ihd import config, paths

    if args.example:
        print(config.example(), end="")
        return 0
    where = args.config or paths.default_config_file()
    cfg = config.load(where)
    print(f"{where}: {'ok' if cfg.source else 'not present, using defaults'}")
    return 0


def _diag(args: argparse.Namespace) -> int:
    from ihd import paths
    from ihd.diag import format_snapshot

    p = paths.resolve(demo=args.demo, config_file=args.config, data_dir=args.data_dir)
    out: dict[str, object] = {}
    snap_path = p.diag_snapshot
    snap = _read_snapshot(snap_path) if snap_path.is_file() else None
    if snap is not None:
        age = time.time() - float(snap.get("written_at", 0))
        out["process"] = {
            "pid": snap.get("pid"),
            "snapshot_age_s": round(age, 1),
            "running": age < 30 and _alive(snap.get("pid")),
        }
        out["counters"] = snap.get("counters", {})
        out["states"] = snap.get("states", {})
    elif snap_path.is_file():
        out["process"] = {"running": False, "note": f"unreadable snapshot at {snap_path}"}
    else:
        out["process"] = {"running": False, "note": f"no snapshot at {snap_path}"}
    if p.database.is_file():
        out["store"] = _describe_store(p.database)
    else:
        out["store"] = {"database": str(p.database), "note": "no history yet"}
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return 0
    proc = out["process"]
    assert isinstance(proc, dict)
    if proc.get("running"):
        print(f"display running (pid {proc['pid']}), snapshot {proc['snapshot_age_s']} s old")
    elif "snapshot_age_s" in proc:
        print(f"display not running (last snapshot {proc['snapshot_age_s']:.0f} s old)")
    else:
        print("display not running:", proc.get("note"))
    body = format_snapshot({"states": out.get("states", {}), "counters": out.get("counters", {})})
    if body:
        print(body)
    print("store:")
    store = out["store"]
    assert isinstance(store, dict)
    for k, v in store.items():
        print(f"  {k}: {v}")
    return 0


def _read_snapshot(path: Path) -> dict[str, Any] | None:
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
        float(snap.get("written_at", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return snap if isinstance(snap, dict) else None


def _alive(pid: object) -> bool:
    """Is the process that wrote the snapshot still there? (The last one is written on exit.)"""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except PermissionError:
        return True  # exists, belongs to another user
    except OSError:
        return False
    return True


def _describe_store(db: Path) -> dict[str, object]:
    """Rows, span and size of a history database, read-only (safe while the app runs)."""
    import datetime as dt
    import sqlite3

    from ihd.store import StoreError, StoreReader

    info: dict[str, object] = {"database": str(db), "size_mb": round(db.stat().st_size / 1e6, 2)}
    try:
        with StoreReader(db) as reader:
            info.update(reader.counts())
            span = reader.span()
            if span:
                info["first"] = dt.datetime.fromtimestamp(span[0]).isoformat(timespec="seconds")
                info["last"] = dt.datetime.fromtimestamp(span[1]).isoformat(timespec="seconds")
            info["meters"] = (
                ", ".join(f"{m.eui64} ({m.utility})" for m in reader.meters()) or "none"
            )
    except sqlite3.Error as e:  # the reader opens lazily: a corrupt file fails here
        raise StoreError(f"cannot read {db}: {e}") from None
    return info


if __name__ == "__main__":
    sys.exit(main())
