"""A fake Contiki-NG slip-radio USB stick on a pty pair, on the simulated air.

The host side opens the pty's slave with real pyserial, through a symlink this emulator owns
(``link``), as it would open ``/dev/serial/by-id/usb-...`` for a real stick. ``unplug()``
closes the pty (the host's reads fail as they do when a USB device goes away) and removes the
link; ``replug()`` makes a new pty and points the same link at it, so a driver that reopens
the same path finds the stick again.

Written from Contiki-NG's sources (``examples/slip-radio/slip-radio.c``, ``slip-net.c``,
``os/dev/slip.c``, ``os/services/slip-cmd``, ``os/net/mac/csma``), not from the driver: it
has its own SLIP code and must not import ``ihd.radio.serial_stick`` or ``ihd.radio.slip``
(a test checks). Byte for byte:

* SLIP as ``slip_write``: END, the escaped bytes, END. Input bytes go through a state machine
  like ``slip_input_byte``: a bad escape drops the frame up to the next END.
* ``?M`` -> ``!M`` + the 8-octet EUI-64. ``?V p`` -> ``!V p v``, then ``EUnknown command``
  (slip-radio.c's ``?V`` branch falls through to ``return 0``). ``!V p v`` -> the radio
  parameter is set and a debug line is printed (``\\r`` + text + ``\\n`` in one SLIP frame,
  the slip-radio putchar). ``!S sid atts mpdu`` -> the frame goes on the air after a clear
  channel check and ``!R sid status tx`` comes back. Anything else -> ``EUnknown command``.
* A frame heard on the air: the radio drops PHY and CRC failures and strips the FCS; the
  CSMA MAC ignores ACK-sized frames, passes on only frames to the stick's EUI-64 or to the
  broadcast address (dropping repeats of a recent sender + sequence number) and sends the
  ACK (1 ms after the frame, on the simulated air) for frames to itself that ask for one.
  What passes goes to the host as a bare SLIP frame: MHR + payload.

Simplified: CSMA is one clear-channel check per attempt, up to 5 attempts, with no time
spent (``!R`` comes back at once); a frame for another PAN is dropped (Contiki's framer
would pass it up as broadcast); the radio's own PHY is :mod:`ihd.smwap.phy` with the FCS
length and whitening the firmware was built for.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections import deque
from pathlib import Path

from ihd.clock import Clock
from ihd.sim.air import AirRx
from ihd.sim.world import PAN_ID, SimWorld
from ihd.smwap.errors import FrameError, PhyError
from ihd.smwap.fcs import check_fcs, compute_fcs
from ihd.smwap.mac import AddrMode, FrameType, parse_mpdu_unchecked
from ihd.smwap.phy import TURNAROUND_S, build_ppdu, parse_ppdu

__all__ = ["SlipRadioStickEmulator"]

_END, _ESC, _ESC_END, _ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD

#: radio_param_t numbers (os/dev/radio.h)
_CHANNEL, _PAN_ID, _ADDR16, _RX_MODE, _RSSI, _LAST_RSSI = 1, 2, 3, 4, 8, 9
_PACKETBUF_NUM_ATTRS = 32  # enough for the attribute ids Contiki-NG defines
_PACKETBUF_SIZE = 128
_MAC_TX_OK, _MAC_TX_COLLISION = 0, 1
_CSMA_ATTEMPTS = 5
_SEQNO_HISTORY = 16


def _slip_write(payload: bytes) -> bytes:
    out = bytearray([_END])
    for c in payload:
        if c == _END:
            out += bytes([_ESC, _ESC_END])
        elif c == _ESC:
            out += bytes([_ESC, _ESC_ESC])
        else:
            out.append(c)
    out.append(_END)
    return bytes(out)


class _SlipInput:
    """``slip_input_byte`` as a Python state machine: OK, ESC, RUBBISH."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.state = "ok"
        self.rubbish = 0

    def byte(self, c: int) -> bytes | None:
        if self.state == "rubbish":
            if c == _END:
                self.state = "ok"
            return None
        if self.state == "esc":
            if c not in (_ESC_END, _ESC_ESC):
                self.state = "rubbish"
                self.rubbish += 1
                self.buf.clear()
                return None
            self.state = "ok"
            self.buf.append(_END if c == _ESC_END else _ESC)
            return None
        if c == _ESC:
            self.state = "esc"
            return None
        if c == _END:
            frame = bytes(self.buf)
            self.buf.clear()
            return frame or None  # an empty packet only resets the pointer
        self.buf.append(c)
        return None


class SlipRadioStickEmulator:
    """One stick. ``link`` is the path the host opens (a symlink to the current pty slave).

    Observables for tests: ``host_bytes`` (every raw byte the host wrote, per plug),
    ``commands`` (decoded SLIP frames from the host), ``sent`` (PPDUs put on the air),
    ``counts`` (what happened to frames heard on the air), ``errors``. ``mute`` makes the
    stick answer nothing (not a slip-radio); ``inject_bytes`` writes raw bytes to the host.
    """

    def __init__(
        self,
        world: SimWorld | None,
        *,
        clock: Clock,
        link: Path,
        eui64: str | None = None,
        pan_id: int = PAN_ID,
        channel: int = 0,
        fcs_len: int | None = None,
        whitened: bool | None = None,
        max_mpdu: int = 125,
    ) -> None:
        self.world = world
        self.clock = clock
        self.link = Path(link)
        eui = eui64 or (world.display_eui64 if world is not None else "0212345678ABCDEF")
        self.eui64 = bytes.fromhex(eui)
        self.firmware_pan_id = pan_id  # IEEE802154_CONF_PANID, fixed at build time
        self.channel = channel
        self.fcs_len = fcs_len or (world.fcs_len if world is not None else 4)
        self.whitened = world.whitened if whitened is None and world is not None else bool(whitened)
        self.max_mpdu = max_mpdu
        self.params: dict[int, int] = {_CHANNEL: channel, _PAN_ID: pan_id, _RX_MODE: 3}
        self.last_rssi = 0
        self.mute = False
        self.host_bytes: list[bytearray] = []
        self.commands: list[bytes] = []
        self.sent: list[bytes] = []
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []  # exceptions while handling a command (a test bug)
        self._seqnos: deque[tuple[int, int]] = deque(maxlen=_SEQNO_HISTORY)
        self._lock = threading.RLock()  # the world and the stick's state
        self._wlock = threading.Lock()  # one SLIP frame at a time to the host
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name = ""
        self._input = _SlipInput()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pump: threading.Thread | None = None
        self._pump_stop = threading.Event()
        self._wake = threading.Event()
        if world is not None:
            world.attach_display(self._on_air, channel=channel)

    # --- the USB side ----------------------------------------------------------------------
    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def tty_name(self) -> str:
        """The pty slave the link points at now."""
        return self._slave_name

    def plug(self) -> Path:
        """A new pty; the link points at its slave. Returns the link."""
        if self._master is not None:
            return self.link
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: a UART
        os.set_blocking(master, False)  # a host that stops reading loses data, never blocks us
        self._master, self._slave = master, slave
        self._slave_name = os.ttyname(slave)
        self._input = _SlipInput()
        self.host_bytes.append(bytearray())
        tmp = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self._slave_name)
        os.replace(tmp, self.link)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="ihd-stick-emu", daemon=True)
        self._thread.start()
        return self.link

    def unplug(self) -> None:
        """The stick goes away: the pty closes, the link disappears."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._wlock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()

    def replug(self) -> Path:
        self.unplug()
        return self.plug()

    def inject_bytes(self, data: bytes) -> None:
        """Write raw bytes to the host (line noise, a half frame...)."""
        self._to_host_raw(data)

    # --- the simulated world -----------------------------------------------------------------
    def run_until(self, t: float) -> None:
        """Advance the world (meters, air) to ``t``; heard frames go to the host."""
        if self.world is None:
            return
        with self._lock:
            self.world.run_until(t)

    def start(self) -> None:
        """Advance the world on the clock from a thread ("ihd-sim"), as the demo does."""
        if self._pump is not None or self.world is None:
            return
        self._pump_stop.clear()
        self._pump = threading.Thread(target=self._run, name="ihd-sim", daemon=True)
        self._pump.start()

    def stop(self) -> None:
        self._pump_stop.set()
        self._wake.set()
        if self._pump is not None:
            self._pump.join(timeout=5)
            self._pump = None

    def close(self) -> None:
        self.stop()
        self.unplug()

    def _run(self) -> None:
        assert self.world is not None
        self.run_until(self.clock.now())
        while not self._pump_stop.is_set():
            self._wake.clear()
            with self._lock:
                nxt = self.world.next_event_time()
            self.clock.sleep_until(nxt, self._wake)
            if self._pump_stop.is_set():
                return
            self.run_until(self.clock.now())

    # --- host link ---------------------------------------------------------------------------
    def _serve(self) -> None:
        master = self._master
        while not self._stop.is_set() and master is not None:
            try:
                ready, _, _ = select.select([master], [], [], 0.02)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except OSError:  # EIO while no one has the slave open; closed on unplug
                if self._stop.wait(0.02):
                    return
                continue
            if not data:
                continue
            self.host_bytes[-1] += data
            for c in data:
                frame = self._input.byte(c)
                if frame is not None:
                    self.commands.append(frame)
                    if not self.mute:
                        try:
                            self._command(frame)
                        except Exception as e:  # keep serving, as a watchdog would reboot
                            self.errors.append(f"{frame!r}: {e!r}")

    def _to_host(self, payload: bytes) -> None:
        self._to_host_raw(_slip_write(payload))

    def _to_host_raw(self, data: bytes) -> None:
        with self._wlock:
            if self._master is None:
                return
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self._master, view) :]
                except BlockingIOError:  # the host is not reading: the rest is lost
                    self._count("host_overflow")
                    return
                except OSError:
                    return

    def _printf(self, text: str) -> None:
        """slip-radio's putchar: a debug line is END '\\r' text ... '\\n' END."""
        self._to_host_raw(bytes([_END]) + b"\r" + text.encode() + bytes([_END]))

    def _command(self, data: bytes) -> None:
        """``slip_radio_cmd_handler``; unhandled commands get ``EUnknown command``."""
        if not self._handle(data):
            self._to_host(b"EUnknown command")

    def _handle(self, data: bytes) -> bool:
        if len(data) < 2:
            return False
        kind, what = data[0:1], data[1:2]
        if kind == b"!" and what == b"S":
            self._send(data)
            return True
        if kind == b"!" and what == b"V":
            d = data + bytes(6)
            param = (d[2] << 8) | d[3]
            value = (d[4] << 8) | d[5]
            if param == _RX_MODE:
                self._printf(f"radio: setting rxmode to 0x{value:x}\n")
            elif param == _PAN_ID:
                self._printf(f"radio: setting pan id to 0x{value:04x}\n")
            elif param == _CHANNEL:
                self._printf(f"radio: setting channel: {value}\n")
            else:
                self._printf(f"radio: setting param {param} to {value} (0x{value:02x})\n")
            self._set_value(param, value)
            return True
        if kind == b"?" and what == b"M":
            self._to_host(b"!M" + self.eui64)
            return True
        if kind == b"?" and what == b"V":
            d = data + bytes(4)
            param = (d[2] << 8) | d[3]
            value = self._get_value(param) & 0xFFFF
            self._to_host(b"!V" + bytes([d[2], d[3], value >> 8, value & 0xFF]))
            return False  # slip-radio.c: the ?V branch does not return 1
        return False

    def _set_value(self, param: int, value: int) -> None:
        with self._lock:
            if param == _CHANNEL:
                if not 0 <= value <= 33:
                    return  # RADIO_RESULT_INVALID_VALUE, silently
                self.channel = value
                if self.world is not None:
                    self.world.air.tune(self.world.display, value)
            self.params[param] = value

    def _get_value(self, param: int) -> int:
        with self._lock:
            if param == _RSSI:
                if self.world is None:
                    return -110
                now = max(self.clock.now(), self.world.now)
                return round(self.world.air.energy_dbm(now, self.world.display))
            if param == _LAST_RSSI:
                return self.last_rssi
            return self.params.get(param, 0)

    def _send(self, data: bytes) -> None:
        sid = data[2] if len(data) > 2 else 0
        atts = data[3:]
        if not atts or atts[0] > _PACKETBUF_NUM_ATTRS or 1 + 3 * atts[0] > len(atts):
            self._count("tx_bad_attributes")  # "illegal packet attributes": no report
            return
        if any(atts[1 + 3 * i] >= _PACKETBUF_NUM_ATTRS for i in range(atts[0])):
            self._count("tx_bad_attributes")
            return
        mpdu = atts[1 + 3 * atts[0] :][:_PACKETBUF_SIZE]
        status, tx = _MAC_TX_OK, 1
        with self._lock:
            if self.world is not None:
                ppdu = build_ppdu(
                    mpdu + compute_fcs(mpdu, self.fcs_len),
                    fcs_len=self.fcs_len,
                    whitened=self.whitened,
                )
                now = max(self.clock.now(), self.world.now)
                air, me = self.world.air, self.world.display
                for attempt in range(1, _CSMA_ATTEMPTS + 1):
                    tx = attempt
                    if not air.busy(now, me):
                        self.world.transmit_from_display(ppdu, now)
                        self.sent.append(ppdu)
                        status = _MAC_TX_OK
                        break
                    status = _MAC_TX_COLLISION
                    now += 0.002
                self._wake.set()
            else:
                self.sent.append(mpdu)
        self._to_host(b"!R" + bytes([sid, status, tx]))

    # --- the radio and the CSMA MAC ------------------------------------------------------------
    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _on_air(self, ppdu: bytes, rx: AirRx) -> None:
        if self._master is None:
            self._count("lost_unplugged")  # no USB power, no radio
            return
        try:
            p = parse_ppdu(ppdu)
        except PhyError:
            self._count("phy_error")
            return
        psdu, fcs_len = p.psdu, p.phr.fcs_len
        if fcs_len != self.fcs_len or not check_fcs(psdu, fcs_len):
            self._count("crc_error")
            return
        mpdu = psdu[:-fcs_len]
        self.last_rssi = round(rx.rssi_dbm)
        if len(mpdu) == 3:
            self._count("ack_ignored")
            return
        if len(mpdu) > self.max_mpdu:
            self._count("too_long")
            return
        try:
            frame = parse_mpdu_unchecked(mpdu)
        except FrameError:
            self._count("parse_error")
            return
        dst, own = frame.dst, int.from_bytes(self.eui64, "big")
        to_me = dst is not None and dst.mode is AddrMode.EXTENDED and dst.value == own
        broadcast = dst is not None and dst.mode is AddrMode.SHORT and dst.value == 0xFFFF
        if not (to_me or broadcast) or frame.dst_pan not in (self.firmware_pan_id, 0xFFFF):
            self._count("not_for_us")
            return
        if frame.src is not None and frame.src.mode is AddrMode.EXTENDED and frame.src.value == own:
            self._count("from_ourselves")
            return
        src_key = -1 if frame.src is None else frame.src.value
        key = (src_key, -1 if frame.seq is None else frame.seq)
        duplicate = frame.seq is not None and key in self._seqnos
        if not duplicate:
            self._seqnos.append(key)
        if (
            to_me
            and frame.ack_request
            and frame.frame_type is FrameType.DATA
            and frame.seq is not None
        ):
            self._soft_ack(frame.seq, rx)
        if duplicate:
            self._count("duplicate")
            return
        self._count("to_host")
        self._to_host(mpdu)

    def _soft_ack(self, seq: int, rx: AirRx) -> None:
        assert self.world is not None
        ack = bytes([FrameType.ACK, 0x00, seq])
        ppdu = build_ppdu(
            ack + compute_fcs(ack, self.fcs_len), fcs_len=self.fcs_len, whitened=self.whitened
        )
        self.world.air.transmit(rx.end + TURNAROUND_S, self.world.display, ppdu)
        self._count("acks_sent")
