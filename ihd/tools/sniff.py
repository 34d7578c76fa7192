"""``ihd sniff``: print every frame a radio hears, one line each, and optionally save a pcap.

Why: the display only shows what survives its pipeline; when readings go missing, one wants
to see the air itself: who sends, how strong, whether the FCS and the MIC check, what the
counters do. This prints each received frame as the display's own decoders see it, and
``--pcap`` writes the same frames for Wireshark/tshark (link type 283, the 802.15.4 TAP,
so frames with 2- and 4-octet FCS mix in one capture with their RSSI and channel; see
:mod:`ihd.smwap.pcap`). ``--pcap -`` writes the capture to stdout (the lines then go to
stderr), for ``ihd sniff --pcap - | wireshark -k -i -``.

The radio is anything that implements :class:`ihd.radio.contract.Radio`; today the command
line builds the simulated household (the demo's air, on a scaled clock) with its display,
which acknowledges the meters' pushes as the demo's does, and listens beside that display
with a passive receiver: so it shows what a sniffer in the house would, pushes and ACKs
alike. The meters' keys are known (they are the demo's, not secrets), so their frames
decrypt; ``--key`` adds keys to try on every secured frame.

It stops after ``--count`` frames, after ``--seconds`` of wall-clock time, or at Ctrl-C,
whichever comes first; the pcap holds every frame printed, flushed frame by frame.

Decryption needs the sender's EUI-64 for the nonce: frames with a short source address are
shown as secured but not decrypted. Frames with a bad FCS are shown (parsed as far as they
go) but never decrypted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from ihd.radio.contract import Radio, RadioError, RxFrame, RxInfo
from ihd.smwap.errors import FrameError, PhyError
from ihd.smwap.fcs import check_fcs
from ihd.smwap.mac import Address, AddrMode, FrameType, MacFrame, parse_mpdu_unchecked
from ihd.smwap.pcap import PcapWriter
from ihd.smwap.phy import parse_ppdu
from ihd.smwap.security import Key, KeyTable, SecurityError, unsecure
from ihd.tools.decode import dlms_summary

if TYPE_CHECKING:
    from ihd.clock import Clock
    from ihd.sim.air import AirRx
    from ihd.sim.world import SimWorld

__all__ = ["Keys", "SimSniffer", "Sniffed", "add_arguments", "describe", "main", "run", "sniff"]

_TYPE_NAMES = {
    FrameType.BEACON: "beacon",
    FrameType.DATA: "data",
    FrameType.ACK: "ack",
    FrameType.COMMAND: "command",
    FrameType.MULTIPURPOSE: "multi",
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
        name = _TYPE_NAMES.get(f.frame_type, f"type {int(f.frame_type)}")
        parts = [f"{name:<7}", f"seq {'-' if f.seq is None else f.seq:>3}"]
        if f.frame_type != FrameType.ACK or f.src or f.dst:
            parts.append(f"{_addr(f.src, f.src_pan)} → {_addr(f.dst, f.dst_pan)}")
        if f.aux is not None:
            counter = "-" if f.aux.frame_counter is None else str(f.aux.frame_counter)
            parts.append(f"sec {f.aux.level} #{counter} {self.security}")
        body = self.plaintext if self.plaintext is not None else f
        n = len(body.payload) + sum(2 + len(ie.content) for ie in body.payload_ies)
        if n or f.frame_type != FrameType.ACK:
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
    count: int | None = None,
    stop: threading.Event | None = None,
    poll_s: float = 0.1,
) -> int:
    """Receive from ``radio`` until ``count`` frames came, ``seconds`` (wall clock) passed
    or ``stop`` is set, printing one line per frame with ``out`` and adding each to ``pcap``
    (``pcap_file`` is flushed after each frame). Opens and closes the radio. Returns the
    number of frames."""
    stop = stop or threading.Event()
    deadline = None if seconds is None else time.monotonic() + seconds
    n = 0
    radio.open()
    try:
        while not stop.is_set() and (count is None or n < count):
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


# --- the simulated air ---------------------------------------------------------------------

_NEAR_DB = 40.0  # path loss between the display and the sniffer beside it


class SimSniffer:
    """A passive receiver on the simulated air, next to the simulated display.

    The display is a :class:`~ihd.radio.sim.SimRadio` with its address filter set, as the
    demo's is, so it acknowledges the meters' pushes and they are not sent again; it also
    drives the simulation on ``clock`` (its thread starts in :meth:`open`). This node
    hears every frame on the channel, the display's ACKs too, with the display's path loss
    to each meter. It never transmits. What the display itself receives is dropped."""

    name = "sim-sniffer"

    def __init__(
        self, world: SimWorld, *, clock: Clock, channel: int = 0, node: str = "sniffer"
    ) -> None:
        from ihd.radio.sim import SimRadio
        from ihd.sim.world import PAN_ID

        self._display = SimRadio(world, clock=clock, channel=channel)
        self._display.set_addresses(eui64=world.display_eui64, pan_id=PAN_ID, short=None)
        self._rx: queue.Queue[RxFrame] = queue.Queue()
        air = world.air
        air.attach(node, on_receive=self._on_air, channel=channel)
        for m in world.meters:
            eui = m.device.eui64
            air.set_path_loss(eui, node, air.path_loss_db(eui, world.display))
        air.set_path_loss(world.display, node, _NEAR_DB)
        self.phy_errors = 0

    def _on_air(self, ppdu: bytes, rx: AirRx) -> None:
        try:
            p = parse_ppdu(ppdu)
        except PhyError:  # a damaged PHR: a real receiver loses the frame too
            self.phy_errors += 1
            return
        info = RxInfo(rx.end, rx.channel, p.phr.fcs_len, p.phr.whitened, None, rx.rssi_dbm)
        self._rx.put(RxFrame(p.psdu, info))

    def open(self) -> None:
        self._display.open()

    def receive(self, timeout: float) -> RxFrame | None:
        while self._display.receive(0) is not None:  # the display's own queue: not ours
            pass
        try:
            return self._rx.get(timeout=timeout) if timeout > 0 else self._rx.get_nowait()
        except queue.Empty:
            return None

    def transmit(self, psdu: bytes, *, fcs_len: int) -> None:
        raise RadioError("a sniffer does not transmit")

    def set_addresses(self, *, eui64: str, pan_id: int | None, short: int | None) -> None:
        """A sniffer has no address filter: it hears and acknowledges nothing of its own."""

    def close(self) -> None:
        self._display.close()


# --- command line --------------------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``ihd sniff`` arguments."""
    p.add_argument(
        "--pcap", metavar="FILE", help="also write the frames to this pcap file ('-' for stdout)"
    )
    p.add_argument(
        "--count",
        type=_count,
        metavar="N",
        help="stop after N frames (default: until Ctrl-C)",
    )
    p.add_argument(
        "--seconds",
        type=_positive,
        metavar="S",
        help="stop after S wall-clock seconds (default: until Ctrl-C)",
    )
    p.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="X",
        help="simulated time per wall second (default 1; the electricity meter pushes "
        "every 10 simulated seconds, gas and water every 30 minutes)",
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
    from ihd.sim.world import demo_world

    start = time.time()
    world = demo_world(seed=seed, start=start)
    return SimSniffer(world, clock=ScaledClock(start, speed)), world.key_table()


def run(args: argparse.Namespace) -> int:
    """``ihd sniff``: listen on the simulated air (for now) until told to stop."""
    extra: list[Key] = []
    for text in args.key:
        try:
            extra.append(Key.from_hex(text))
        except ValueError:  # the message never repeats the key
            print("ihd sniff: --key: a key needs 32 hex digits", file=sys.stderr)
            return 1
    to_stdout = args.pcap == "-"
    lines = sys.stderr if to_stdout else sys.stdout
    n = 0

    def out(line: str) -> None:
        nonlocal n
        n += 1
        print(line, file=lines, flush=True)

    pcap_file: BinaryIO | None = None
    try:
        if args.pcap is not None:
            pcap_file = sys.stdout.buffer if to_stdout else open(args.pcap, "wb")  # noqa: SIM115
        radio, table = _sim_radio(args.seed, args.speed)
        writer = PcapWriter(pcap_file) if pcap_file is not None else None
        if pcap_file is not None:
            pcap_file.flush()
        sniff(
            radio,
            out=out,
            pcap=writer,
            pcap_file=pcap_file,
            keys=Keys(table, extra),
            seconds=args.seconds,
            count=args.count,
        )
    except KeyboardInterrupt:
        pass  # Ctrl-C is how an open-ended sniff ends
    except BrokenPipeError:  # `ihd sniff | head`, or Wireshark closed: the reader left
        _silence_stdout()
        return 0
    except (OSError, RadioError) as e:
        print(f"ihd sniff: {e}", file=sys.stderr)
        return 1
    finally:
        if pcap_file is not None and not to_stdout:
            pcap_file.close()
    print(f"{n} frames", file=sys.stderr)
    return 0


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the interpreter's last flush
    does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (e.g. captured in a test)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="ihd sniff", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
