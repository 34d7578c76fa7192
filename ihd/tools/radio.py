"""``ihd radio probe`` and ``ihd radio scan``: find the radio, and listen to the band.

``probe`` identifies what is attached: SPI chips by their part number (the AT86RF215's
RF_PN, the CC1200's PARTNUMBER), serial sticks by their identity query. It tries the
configured radio first, then (with ``--all``, or when the config names a simulated radio)
every kind it knows. ``scan`` measures the energy on each channel of EU mode #1, one line
per channel as it goes. ``--emulated`` runs either against the AT86RF215 emulator on the
demo's simulated air, so both work (and are tested) without hardware.

Exit status: 0 a radio was found (probe) or the scan finished; 1 nothing was found or the
radio failed; 2 a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from ihd import config as config_mod
from ihd import paths
from ihd.app.radios import SIMULATED, build_radio
from ihd.clock import WallClock
from ihd.diag import Diagnostics
from ihd.radio.contract import Radio, RadioError
from ihd.smwap.phy import EU_863_MODE_1

COMMANDS = {
    "probe": "find and identify the radio (SPI chips by part number, sticks by query)",
    "scan": "measure the energy on every channel",
}
HARDWARE = ("at86rf215", "cc1200", "serial")


class _Measures(Protocol):
    def energy_dbm(self, channel: int | None = None) -> float: ...


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="radio_command", metavar="ACTION", required=True)
    for name, text in COMMANDS.items():
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument(
            "--emulated",
            action="store_true",
            help="the AT86RF215 emulator on the demo's simulated air (no hardware)",
        )
        if name == "probe":
            s.add_argument("--all", action="store_true", help="try every kind of radio")
        else:
            s.add_argument(
                "--channels",
                default=f"0-{EU_863_MODE_1.n_channels - 1}",
                help="channels to measure, e.g. 0-33 or 3,7,12 (default: all)",
            )
        for opt, kw in (
            ("--config", {"metavar": "FILE", "type": Path, "help": "config file"}),
            ("--data-dir", {"metavar": "DIR", "type": Path, "help": "not used here"}),
        ):
            s.add_argument(opt, **kw)  # type: ignore[arg-type]
        s.add_argument("-v", "--verbose", action="store_true", help="log debug detail")


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    cfg_path = args.config or paths.default_config_file()
    cfg = config_mod.load(cfg_path)
    if args.radio_command == "probe":
        return probe(cfg, emulated=args.emulated, every=args.all, out=out)
    try:
        channels = _channels(args.channels)
    except ValueError as e:
        print(f"ihd radio scan: {e}", file=sys.stderr)
        return 2
    return scan(cfg, channels, emulated=args.emulated, out=out)


def _channels(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"channels: expected numbers like 0-33 or 3,7, got {text!r}") from None
        if not 0 <= a <= b < EU_863_MODE_1.n_channels:
            raise ValueError(f"channels must be within 0..{EU_863_MODE_1.n_channels - 1}")
        out.extend(range(a, b + 1))
    return out


# --- probe ---------------------------------------------------------------------------------


def probe(
    cfg: config_mod.Config, *, emulated: bool, every: bool, out: Callable[[str], None]
) -> int:
    configured = cfg["radio.type"]
    if emulated:
        kinds = ["emulated"]
    elif every or configured in SIMULATED:
        if configured in SIMULATED:
            out(f"radio.type is {configured!r} (simulated): looking for hardware anyway")
        kinds = list(HARDWARE)
    else:
        kinds = [configured]
    found = 0
    for kind in kinds:
        for line, ok in _probe(kind, cfg):
            out(line)
            found += ok
    if not found:
        out("no radio found (wiring and setup: hw/README.md, hw/bringup.md)")
    return 0 if found else 1


def _probe(kind: str, cfg: config_mod.Config) -> Iterator[tuple[str, bool]]:
    if kind == "serial":
        yield from _probe_sticks(cfg)
        return
    if kind == "cc1200":
        from ihd.radio.cc1200 import CC1200Config, probe_cc1200

        try:
            ident = probe_cc1200(
                CC1200Config(
                    spi_device=cfg["radio.spi_device"], spi_speed_hz=cfg["radio.spi_speed_hz"]
                )
            )
        except (RadioError, ValueError) as e:
            yield f"cc1200 on {cfg['radio.spi_device']}: {e}", False
            return
        yield f"cc1200 on {cfg['radio.spi_device']}: {ident.describe()}", True
        return
    diag = Diagnostics()
    built = build_radio(cfg, clock=WallClock(), diag=diag, kind=kind)
    radio = built.radio
    where = "the emulated chip" if kind == "emulated" else cfg["radio.spi_device"]
    try:
        radio.open()
        part = getattr(radio, "part", "") or radio.name
        yield f"at86rf215 on {where}: {part}", True
    except RadioError as e:
        yield f"at86rf215 on {where}: {e}", False
    finally:
        with contextlib.suppress(RadioError):
            radio.close()


def _probe_sticks(cfg: config_mod.Config) -> Iterator[tuple[str, bool]]:
    from ihd.radio.serial_stick import probe_serial_stick

    ports = [cfg["radio.serial_port"]]
    for pattern in ("/dev/serial/by-id/*", "/dev/ttyACM*", "/dev/ttyUSB*"):
        ports += [p for p in sorted(glob.glob(pattern)) if p not in ports]
    for port in ports:
        try:
            ident = probe_serial_stick(port, timeout=1.0)
        except RadioError as e:
            yield f"serial stick on {port}: {e}", False
            continue
        yield f"serial stick on {port}: {ident.describe()}", True


# --- scan ----------------------------------------------------------------------------------


def scan(
    cfg: config_mod.Config, channels: list[int], *, emulated: bool, out: Callable[[str], None]
) -> int:
    kind = "emulated" if emulated else cfg["radio.type"]
    built = build_radio(cfg, clock=WallClock(), diag=Diagnostics(), kind=kind)
    radio: Radio = built.radio
    if not hasattr(radio, "energy_dbm"):
        print(f"ihd radio scan: the {radio.name} radio cannot measure energy", file=sys.stderr)
        return 1
    meter: _Measures = radio  # type: ignore[assignment]
    try:
        radio.open()
        for i, ch in enumerate(channels, start=1):
            dbm = meter.energy_dbm(ch)
            mhz = EU_863_MODE_1.channel_freq_hz(ch) / 1e6
            out(f"channel {ch:2d}  {mhz:.3f} MHz  {dbm:5.0f} dBm  {_bar(dbm)}")
            if sys.stderr.isatty():
                print(f"\r{i}/{len(channels)}", end="", file=sys.stderr, flush=True)
    except RadioError as e:
        print(f"ihd radio scan: {e}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(RadioError):
            radio.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return 0


def _bar(dbm: float, floor: float = -110.0, top: float = -30.0) -> str:
    """A bar of eighths from the noise floor up: readable at a glance in a terminal."""
    eighths = round(max(0.0, min(1.0, (dbm - floor) / (top - floor))) * 40)
    full, part = divmod(eighths, 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")
