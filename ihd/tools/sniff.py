"""``ihd sniff``: print every frame a radio hears, one line each, and optionally save a pcap.

Why: the display only shows what survives its pipeline; when readings go missing, one wants
to see the air itself: who sends, how strong, whether the FCS and the MIC check, what the
counters do. This prints each received frame as the display's own decoders see it, and
``--pcap`` writes the same frames for Wireshark/tshark (link type 283, the 802.15.4 TAP,
so frames with 2- and 4-octet FCS mix in one capture with their RSSI and channel; see
:mod:`ihd.smwap.pcap`). ``--pcap -`` writes the capture to stdout (the lines then go to
stderr), for ``ihd sniff --pcap - | wireshark -k -i -``.

The radio is anything that implements :class:`ihd.radio.contract.Radio`; today the command
line builds the simulated household (the demo's air, on a scaled clock) and listens where
the display listens. Its meters' keys are known (they are the demo's, not secrets), so
their frames decrypt; ``--key`` adds keys to try on every secured frame.

Decryption needs the sender's EUI-64 for the nonce: frames with a short source address are
shown as secured but not decrypted. Frames with a bad FCS are shown (parsed as far as they
go) but never decrypted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from ihd.radio.contract import Radio, RadioError, RxFrame
from ihd.smwap.errors import FrameError
from ihd.smwap.fcs import check_fcs
from ihd.smwap.mac import Address, AddrMode, FrameType, MacFrame, parse_mpdu_unchecked
from ihd.smwap.pcap import PcapWriter
from ihd.smwap.security import Key, KeyTable, SecurityError, unsecure
from ihd.tools.decode import dlms_summary

__all__ = ["Keys", "Sniffed", "add_arguments", "describe", "main", "run", "sniff"]

_TYPE_NAMES = {
    FrameType.BEACON: "beacon",
    FrameType.DATA: "data",
    FrameType.ACK: "ack",
    FrameType.COMMAND: "command",
}


@dataclass(slots=True)
class Keys:
    """Keys to try on secured frames: a key table (by key identifier and source, as the
    display holds them) first, then each extra key in turn."""

    table: KeyTable | None = None
    extra: Sequence[Key] = ()

    def candidates(self, frame: MacFrame, src_ext: int) -> list[Key]:
        out: list[Key] = []
        if self.table is not None and frame.aux is not None:
            k = self.table.lookup(frame.aux, src_ext)
            if k is not None:
                out.append(k)
        out.extend(k for k in self.extra if k not in out)
        return out

    def __bool__(self) -> bool:
        return (self.table is not None and len(self.table) > 0) or bool(self.extra)


@dataclass(frozen=True, slots=True)
class Sniffed:
    """One received frame as the sniffer saw it. ``line()`` is what it prints."""

    rx: RxFrame
    fcs_ok: bool
    frame: MacFrame | None
    error: str = ""  # why the frame did not parse
    security: str = ""  # "", "ok", "MIC failed", "no key", ...
    plaintext: MacFrame | None = None
    dlms: str | None = None
    notes: tuple[str, ...] = field(default=())

    def line(self) -> str:
        info = self.rx.info
        when = dt.datetime.fromtimestamp(info.timestamp).strftime("%H:%M:%S.%f")[:-3]
        rssi = (
            "    - dBm"
            if info.rssi_dbm is None or not math.isfinite(info.rssi_dbm)
            else f"{info.rssi_dbm:5.1f} dBm"
        )
        fcs = f"FCS{info.fcs_len} {'ok ' if self.fcs_ok else 'BAD'}"
        head = f"{when}  {rssi}  ch {info.channel:<2}  {fcs}"
        f = self.frame
        if f is None:
            return f"{head}  not a frame: {self.error} ({len(self.rx.psdu)} octets)"
        parts = [f"{_TYPE_NAMES[f.frame_type]:<7}", f"seq {'-' if f.seq is None else f.seq:>3}"]
        if f.frame_type != FrameType.ACK or f.src or f.dst:
            parts.append(f"{_addr(f.src, f.src_pan)} → {_addr(f.dst, f.dst_pan)}")
        if f.aux is not None:
            counter = "-" if f.aux.frame_counter is None else str(f.aux.frame_counter)
            parts.append(f"sec {f.aux.level} #{counter} {self.security}")
        body = self.plaintext if self.plaintext is not None else f
        n = len(body.payload) + sum(2 + len(ie.content) for ie in body.payload_ies)
        parts.append(
            f"{n} octets" + ("" if self.plaintext is not None or f.aux is None else " secured")
        )
        if self.dlms:
            parts.append(self.dlms)
        return "  ".join([head, *parts])


def _addr(a: Address | None, pan: int | None) -> str:
    if a is None:
        return "-" if pan is None else f"PAN {pan:04X}"
    return f"0x{a.value:04X}" if a.mode == AddrMode.SHORT else f"{a.value:016X}"


def describe(rx: RxFrame, keys: Keys | None = None) -> Sniffed:
    """Check and decode one received frame (never raises for any octets)."""
    psdu, fcs_len = rx.psdu, rx.info.fcs_len
    fcs_ok = check_fcs(psdu, fcs_len) if fcs_len in (2, 4) else False
    if len(psdu) < fcs_len:
        return Sniffed(rx, False, None, "shorter than its FCS")
    mpdu = psdu[: len(psdu) - fcs_len]
    try:
        frame = parse_mpdu_unchecked(mpdu)
    except FrameError as e:
        return Sniffed(rx, fcs_ok, None, str(e))
    meter = f"{frame.src.value:016X}" if frame.src else "unknown"
    if frame.aux is None:
        dlms = (
            dlms_summary(frame.payload, meter=meter, received_at=rx.info.timestamp)
            if fcs_ok and frame.frame_type == FrameType.DATA
            else None
        )
        return Sniffed(rx, fcs_ok, frame, dlms=dlms)
    if not fcs_ok:
        return Sniffed(rx, fcs_ok, frame, security="not checked")
    if frame.src is None or frame.src.mode != AddrMode.EXTENDED:
        return Sniffed(rx, fcs_ok, frame, security="no EUI-64 for the nonce")
    if not keys:
        return Sniffed(rx, fcs_ok, frame, security="no key")
    candidates = keys.candidates(frame, frame.src.value)
    if not candidates:
        return Sniffed(rx, fcs_ok, frame, security="no key")
    reason = "MIC failed"
    for key in candidates:
        try:
            plain = unsecure(mpdu, frame, key, src_ext=frame.src.value)
        except SecurityError as e:
            reason = "MIC failed" if e.counter == "mic_failure" else e.reason
            continue
        dlms = (
            dlms_summary(plain.payload, meter=meter, received_at=rx.info.timestamp)
            if frame.frame_type == FrameType.DATA
            else None
        )
        return Sniffed(
            rx,
            fcs_ok,
            frame,
            security="ok" if frame.aux.level != 4 else "no MIC",
            plaintext=plain,
            dlms=dlms,
        )
    return Sniffed(rx, fcs_ok, frame, security=reason)


def sniff(
    radio: Radio,
    *,
    out: Callable[[str], None],
    pcap: PcapWriter | None = None,
    pcap_file: BinaryIO | None = None,
    keys: Keys | None = None,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    poll_s: float = 0.1,
) -> int:
    """Receive from ``radio`` until ``seconds`` (wall clock) pass or ``stop`` is set, printing
    one line per frame with ``out`` and adding each to ``pcap`` (``pcap_file`` is flushed
    after each frame). Opens and closes the radio. Returns the number of frames."""
    stop = stop or threading.Event()
    deadline = None if seconds is None else time.monotonic() + seconds
    n = 0
    radio.open()
    try:
        while not stop.is_set():
            wait = poll_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(wait, left)
            rx = radio.receive(wait)
            if rx is None:
                continue
            n += 1
            out(describe(rx, keys).line())
            if pcap is not None:
                info = rx.info
                pcap.write(
                    info.timestamp,
                    rx.psdu,
                    fcs_len=info.fcs_len,
                    rssi_dbm=info.rssi_dbm,
                    channel=info.channel,
                    lqi=info.lqi,
                )
                if pcap_file is not None:
                    pcap_file.flush()
    finally:
        radio.close()
    return n


# --- command line --------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``ihd sniff`` arguments."""
    p.add_argument(
        "--pcap", metavar="FILE", help="also write the frames to this pcap file ('-' for stdout)"
    )
    p.add_argument(
        "--seconds",
        type=_positive,
        metavar="N",
        help="stop after N wall-clock seconds (default: until Ctrl-C)",
    )
    p.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="X",
        help="simulated time per wall second (default 1)",
    )
    p.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="HEX",
        help="a 128-bit key (32 hex digits) to try on secured frames; repeatable",
    )
    p.add_argument("--seed", type=int, default=1, help="simulated household seed (default 1)")


def _sim_radio(seed: int, speed: float) -> tuple[Radio, KeyTable]:
    from ihd.clock import ScaledClock
    from ihd.radio.sim import SimRadio
    from ihd.sim.world import demo_world

    start = time.time()
    world = demo_world(seed=seed, start=start)
    return SimRadio(world, clock=ScaledClock(start, speed), channel=0), world.key_table()


def run(args: argparse.Namespace) -> int:
    """``ihd sniff``: listen on the simulated air (for now) until told to stop."""
    extra: list[Key] = []
    for text in args.key:
        try:
            extra.append(Key.from_hex(text))
        except ValueError:
            print("ihd sniff: --key: a key needs 32 hex digits", file=sys.stderr)
            return 1
    to_stdout = args.pcap == "-"
    lines = sys.stderr if to_stdout else sys.stdout

    def out(line: str) -> None:
        print(line, file=lines, flush=True)

    pcap_file: BinaryIO | None = None
    try:
        if args.pcap is not None:
            pcap_file = sys.stdout.buffer if to_stdout else open(args.pcap, "wb")  # noqa: SIM115
        radio, table = _sim_radio(args.seed, args.speed)
        writer = PcapWriter(pcap_file) if pcap_file is not None else None
        if pcap_file is not None:
            pcap_file.flush()
        n = sniff(
            radio,
            out=out,
            pcap=writer,
            pcap_file=pcap_file,
            keys=Keys(table, extra),
            seconds=args.seconds,
        )
    except KeyboardInterrupt:
        return 0
    except (OSError, RadioError) as e:
        print(f"ihd sniff: {e}", file=sys.stderr)
        return 1
    finally:
        if pcap_file is not None and not to_stdout:
            pcap_file.close()
    print(f"{n} frames", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="ihd sniff", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
