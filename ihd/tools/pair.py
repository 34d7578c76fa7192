"""``ihd pair``, ``ihd unpair`` and ``ihd meters``: pairing from the command line.

The radio belongs to the running display, so ``pair`` asks it over its control socket
(:mod:`ihd.app.control`) and prints the same progress and outcome the touch screen shows.
``unpair`` goes through the running display too when there is one (so it stops using the
keys at once), and otherwise edits the key file itself. ``meters`` reads the key file. None
of them ever prints a key.

Exit status: 0 done; 1 pairing failed or the meter was not paired; 2 no running display to
pair with (start ``ihd run`` or ``ihd demo`` first) or a bad argument.
"""

from __future__ import annotations

import argparse
import sys

from ihd import paths
from ihd.app.control import ControlError, meter_summary, request
from ihd.smwap.installcode import InstallCodeError, parse_install_code
from ihd.smwap.keys import KeyFile

#: name -> (help, description)
COMMANDS = {
    "pair": (
        "pair the running display with a meter",
        "Pair the running display with a meter, using the install code printed on the "
        "meter's label. The display must be running (ihd run, or ihd demo with --demo).",
    ),
    "unpair": (
        "forget a meter's keys (its history is kept)",
        "Forget a paired meter's keys. Its readings stay in the history; pair it again "
        "(or its replacement) with ihd pair.",
    ),
    "meters": (
        "list the paired meters",
        "List the paired meters (never their keys).",
    ),
}


def _eui(text: str) -> str:
    digits = text.replace(":", "").replace("-", "").strip()
    if len(digits) != 16 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise argparse.ArgumentTypeError(f"an EUI-64 is 16 hex digits, got {text!r}")
    return digits.upper()


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="the demo's display, not ihd run's")
    if name == "pair":
        p.add_argument(
            "--install-code",
            required=True,
            metavar="CODE",
            help="the install code from the meter's label (spaces and dashes are fine)",
        )
        p.add_argument(
            "--meter",
            type=_eui,
            metavar="EUI64",
            help="the meter's EUI-64, if known (faster, and clearer errors)",
        )
        p.add_argument("--label", help='a name for the meter ("Garage meter")')
    elif name == "unpair":
        p.add_argument("meter", type=_eui, metavar="EUI64", help="the meter to forget")


def run(args: argparse.Namespace) -> int:
    p = paths.resolve(demo=args.demo, config_file=args.config, data_dir=args.data_dir)
    if args.command == "pair":
        return _pair(p, args)
    if args.command == "unpair":
        return _unpair(p, args.meter)
    return _meters(p)


def _pair(p: paths.Paths, args: argparse.Namespace) -> int:
    try:
        parse_install_code(args.install_code)  # a typo is caught before any radio traffic
    except InstallCodeError as e:
        print(f"ihd pair: {e}", file=sys.stderr)
        return 2
    msg = {"cmd": "pair", "install_code": args.install_code, "meter": args.meter}
    if args.label:
        msg["label"] = args.label
    try:
        for answer in request(p.control_socket, msg, timeout=180):
            if "error" in answer:
                print(f"ihd pair: {answer['error']}", file=sys.stderr)
                return 1
            print(answer.get("message", ""), flush=True)
            if answer.get("state") == "paired":
                print(f"meter {answer['meter']} ({answer['utility']}) is paired")
                return 0
            if answer.get("state") == "failed":
                return 1
    except ControlError as e:
        demo = " --demo" if args.demo else ""
        print(
            f"ihd pair: {e}: start the display first (ihd {'demo' if args.demo else 'run'}), "
            f"then run ihd pair{demo} again",
            file=sys.stderr,
        )
        return 2
    except OSError as e:
        print(f"ihd pair: lost the display: {e}", file=sys.stderr)
        return 1
    print("ihd pair: the display ended the session without an outcome", file=sys.stderr)
    return 1


def _unpair(p: paths.Paths, meter: str) -> int:
    try:
        answers = list(request(p.control_socket, {"cmd": "unpair", "meter": meter}))
        removed = bool(answers and answers[-1].get("removed"))
    except ControlError:  # no display running: edit the key file ourselves
        removed = KeyFile(p.keys_file).remove(int(meter, 16))
    if not removed:
        print(f"ihd unpair: meter {meter} is not paired", file=sys.stderr)
        return 1
    print(f"meter {meter} unpaired; its history is kept")
    return 0


def _meters(p: paths.Paths) -> int:
    keys = KeyFile(p.keys_file).load()
    if not len(keys):
        print("no meter is paired (ihd pair --install-code CODE)")
        return 0
    for m in keys:
        s = meter_summary(m)
        print(f"{s['eui64']}  {s['utility']:<11}  {s['label']}")
    return 0
