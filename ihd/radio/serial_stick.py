"""A sub-GHz USB radio stick running Contiki-NG's slip-radio, through pyserial.

The stick (a CC1352/CC1312 LaunchPad, or any Contiki-NG board with a CC1200, built as
``examples/slip-radio`` for the EU 863-870 MHz 802.15.4g mode #1) runs the radio, the CSMA
MAC and the acknowledgements; the host sees SLIP frames on a serial port. The protocol, the
exact bytes and the limits are in docs/radio-serial-stick.md; the codec is sans-I/O in
:mod:`ihd.radio.slip`.

What the stick hands over is the MPDU **without** its FCS (Contiki radio drivers check the
CRC, drop bad frames and strip it). To keep the :class:`~ihd.radio.contract.Radio` contract,
this driver appends the FCS computed over the received octets and reports ``fcs_ok=True``:
the check was the stick's. The FCS length and the whitening flag in ``RxInfo`` come from the
configuration (they are build-time settings of the firmware), RSSI and LQI are not sent.

The stick acknowledges frames addressed to **its own** EUI-64 (the answer to ``?M``) and
broadcasts, and passes only those up. The display must therefore use the stick's EUI-64 as
its own address: :attr:`SerialStickRadio.eui64` after :meth:`~SerialStickRadio.open`, and
:func:`probe_serial_stick` without opening the radio. ``set_addresses`` with another EUI-64
is logged and noted in diagnostics (``radio.stick_address_mismatch``).

Unplug and replug: any ``SerialException``/``OSError`` closes the port, counts
``radio.serial_disconnects`` and makes the next ``receive`` raise ``RadioError`` once (the
pipeline logs it and keeps the display up). Later ``receive`` calls try to open the port
again every ``reconnect_interval_s`` of the injected clock, identify the stick again with
``?M`` and re-send the channel and PAN ID; success counts ``radio.serial_reconnects``. Use a
``/dev/serial/by-id/...`` path: it names the same stick whatever ttyACM number it gets.

Threads: ``receive`` runs in the radio thread; ``transmit`` and the queries may run in any
thread. Whoever needs a reply reads the port itself if no one else is reading (one reader at
a time, under a lock), so a reply is found with or without a radio thread running.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial

from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.radio.contract import RadioError, RxFrame, RxInfo
from ihd.radio.slip import (
    DebugText,
    GetMac,
    GetValue,
    MacAddress,
    RadioParam,
    ReceivedFrame,
    SendFrame,
    SendReport,
    SetValue,
    SlipDecoder,
    StickMessage,
    UnknownCommand,
    ValueReport,
    parse_stick_message,
    slip_encode,
)
from ihd.smwap.fcs import compute_fcs
from ihd.smwap.mac import Address

__all__ = [
    "FIRMWARE",
    "SerialStickConfig",
    "SerialStickRadio",
    "StickIdentity",
    "probe_serial_stick",
]

log = logging.getLogger("ihd.radio.serial_stick")

FIRMWARE = "Contiki-NG slip-radio"

#: A frame of more than this many octets from the stick is not slip-radio talking (its
#: packet buffer is 128 octets by default, UIP_BUFSIZE at most a few hundred).
MAX_SLIP_FRAME = 2048

SerialFactory = Callable[[str, int, float], Any]


def _pyserial(port: str, baudrate: int, timeout: float) -> Any:
    return serial.Serial(port, baudrate=baudrate, timeout=timeout)


@dataclass(frozen=True, slots=True)
class SerialStickConfig:
    port: str = "/dev/ttyACM0"  # better: /dev/serial/by-id/usb-...: stable across replugs
    baudrate: int = 115_200  # Contiki-NG's UART default on TI LaunchPads
    channel: int = 0  # EU 863 MHz mode #1 channel, sent with !V CHANNEL
    fcs_len: int = 4  # the FCS the firmware was built for (2: CRC-16, 4: CRC-32)
    whitened: bool = False  # whether the firmware whitens (PROP_MODE_CONF_DW etc.)
    reconnect_interval_s: float = 2.0  # injected-clock seconds between attempts to reopen
    identify_timeout_s: float = 1.0  # wall seconds to wait for the answer to ?M
    tx_timeout_s: float = 2.0  # wall seconds to wait for !R after !S
    read_timeout_s: float = 0.05  # pyserial read timeout: the slice a reader blocks for

    def __post_init__(self) -> None:
        if self.fcs_len not in (2, 4):
            raise ValueError(f"fcs_len must be 2 or 4, not {self.fcs_len!r}")
        if not 0 <= self.channel <= 0xFFFF:
            raise ValueError(f"channel {self.channel} out of range")


@dataclass(frozen=True, slots=True)
class StickIdentity:
    """What ``?M`` (and ``?V CHANNEL``) told us: enough for ``ihd radio probe``."""

    port: str
    eui64: str
    firmware: str = FIRMWARE
    channel: int | None = None

    def describe(self) -> str:
        ch = "" if self.channel is None else f", channel {self.channel}"
        return f"{self.firmware} on {self.port}: EUI-64 {self.eui64}{ch}"


class SerialStickRadio:
    """The :class:`~ihd.radio.contract.Radio` for a slip-radio stick.

    ``serial_factory(port, baudrate, timeout)`` opens the port; the default is
    ``serial.Serial(port, baudrate=..., timeout=...)``. Counters (in ``diag``):
    ``radio.serial_disconnects``, ``radio.serial_reconnects``,
    ``radio.serial_open_failures``, ``radio.slip_errors`` (spoiled SLIP frames),
    ``radio.stick_errors`` (``E...`` answers nobody provoked), ``radio.tx_frames``,
    ``radio.tx_errors``. States: ``radio.status``, ``radio.stick_eui64``,
    ``radio.stick_address_mismatch``.
    """

    name = "serial-stick"

    def __init__(
        self,
        config: SerialStickConfig | None = None,
        *,
        clock: Clock,
        diag: Diagnostics | None = None,
        serial_factory: SerialFactory | None = None,
    ) -> None:
        self.config = config or SerialStickConfig()
        self.clock = clock
        self.diag = diag or Diagnostics()
        self._factory = serial_factory or _pyserial
        self._port: Any = None
        self._io = threading.RLock()  # the reader's role, and opening/closing the port
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()  # replies and frames below
        self._frames: deque[RxFrame] = deque()
        self._reports: dict[int, SendReport] = {}
        self._values: dict[int, ValueReport] = {}
        self._mac: MacAddress | None = None
        self._expect_unknown = 0  # "EUnknown command" replies that ?V provokes
        self._decoder = SlipDecoder(MAX_SLIP_FRAME)
        self._sid = 0
        self._ever_connected = False
        self._next_retry = 0.0  # injected clock
        self._lost: str | None = None  # reason to raise once from receive()
        self._closed = True
        self._want_pan: int | None = None
        self._want_eui: str | None = None
        self.channel = self.config.channel
        self.identity: StickIdentity | None = None

    # --- the Radio contract ------------------------------------------------------------
    @property
    def eui64(self) -> str | None:
        """The stick's own EUI-64 (hex, as ``ihd.smwap`` writes it), once identified."""
        return self.identity.eui64 if self.identity is not None else None

    def open(self) -> None:
        """Open the port and identify the stick; RadioError says why not. After a failure
        ``receive`` keeps trying (every ``reconnect_interval_s``)."""
        self._closed = False
        if self._port is not None:
            return
        reason = self._connect()
        if reason is not None:
            raise RadioError(reason)

    def close(self) -> None:
        self._closed = True
        with self._io:
            self._drop_port()
        with self._cond:
            self._cond.notify_all()

    def receive(self, timeout: float) -> RxFrame | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._cond:
                if self._frames:
                    return self._frames.popleft()
                lost, self._lost = self._lost, None
            if lost is not None:
                raise RadioError(lost)
            if self._port is None:
                if self._closed:
                    return None
                if self.clock.now() >= self._next_retry:
                    self._connect()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                time.sleep(min(left, self.config.read_timeout_s))
                continue
            left = deadline - time.monotonic()
            if not self._pump(blocking=left > 0):
                with self._cond:  # another thread is reading: it will notify
                    if not self._frames:
                        self._cond.wait(min(max(left, 0.0), 0.01))
            if left <= 0:
                with self._cond:
                    return self._frames.popleft() if self._frames else None

    def transmit(self, psdu: bytes, *, fcs_len: int) -> None:
        """``!S`` with the MPDU (the stick adds its own FCS), then wait for ``!R``.

        slip-radio cannot pass the destination on to Contiki's CSMA, which therefore sends
        every frame once, after CSMA-CA, without waiting for an ACK (see the doc)."""
        if fcs_len not in (2, 4) or len(psdu) < fcs_len:
            raise ValueError("psdu must end with its 2- or 4-octet FCS")
        if fcs_len != self.config.fcs_len:
            log.warning(
                "sending with a %d-octet FCS: the stick appends the %d-octet FCS it was built for",
                fcs_len,
                self.config.fcs_len,
            )
        with self._cond:
            self._sid = (self._sid + 1) & 0xFF
            sid = self._sid
            self._reports.pop(sid, None)
        self._send(SendFrame(sid, psdu[:-fcs_len]).to_bytes())
        report = self._wait(lambda: self._reports.pop(sid, None), self.config.tx_timeout_s)
        if report is None:
            self.diag.count("radio.tx_errors")
            raise RadioError(f"the stick did not report on frame {sid} (no !R)")
        if not report.ok:
            self.diag.count("radio.tx_errors")
            raise RadioError(
                f"the stick could not send: {report.status_name} after "
                f"{report.transmissions} transmission(s)"
            )
        self.diag.count("radio.tx_frames")

    def set_addresses(self, *, eui64: str, pan_id: int | None, short: int | None) -> None:
        """The stick filters by its own EUI-64 and cannot be given another over slip-radio;
        the PAN ID is sent (``!V PAN_ID``) and also needs the firmware's
        IEEE802154_CONF_PANID to match (its framer checks that constant)."""
        self._want_eui = str(Address.from_eui64(eui64))
        changed, self._want_pan = pan_id != self._want_pan, pan_id
        if self._port is not None:
            if changed and pan_id is not None:
                try:
                    self._send(SetValue(RadioParam.PAN_ID, pan_id).to_bytes())
                except RadioError as e:
                    log.warning("could not set the PAN ID on the stick: %s", e)
            self._check_address()

    # --- queries (ihd radio probe / scan) --------------------------------------------------
    def query_value(self, param: int, *, timeout: float = 1.0) -> int:
        """``?V param`` -> the signed 16-bit value; RadioError if the stick does not say."""
        with self._cond:
            self._values.pop(param, None)
            self._expect_unknown += 1
        self._send(GetValue(param).to_bytes())
        rep = self._wait(lambda: self._values.pop(param, None), timeout)
        if rep is None:
            raise RadioError(f"the stick did not answer ?V {param}")
        return int(rep.signed)

    def set_channel(self, channel: int) -> None:
        self._send(SetValue(RadioParam.CHANNEL, channel).to_bytes())
        self.channel = channel

    def energy_dbm(self, channel: int | None = None) -> float:
        """The RSSI the stick's radio measures now (``?V RSSI``), on ``channel`` if given
        (the stick stays there: ``set_channel`` back when the scan is over)."""
        if channel is not None:
            self.set_channel(channel)
        return float(self.query_value(RadioParam.RSSI))

    # --- connection ------------------------------------------------------------------------
    def _connect(self, *, configure: bool = True) -> str | None:
        """Open, flush, identify, configure (channel, PAN ID). None, or why it failed."""
        cfg = self.config
        with self._io:
            if self._port is not None:
                return None
            self._next_retry = self.clock.now() + cfg.reconnect_interval_s
            try:
                port = self._factory(cfg.port, cfg.baudrate, cfg.read_timeout_s)
            except (OSError, ValueError) as e:
                return self._open_failed(f"cannot open {cfg.port}: {e}")
            self._port = port
            self._decoder.reset()
            try:
                port.reset_input_buffer()
                with self._cond:
                    self._mac = None
                    self._expect_unknown = 0
                # A lone END ends whatever half frame the stick has, as Contiki's host does.
                self._write_raw(bytes([0xC0]) + slip_encode(GetMac().to_bytes()))
                mac = self._wait(lambda: self._mac, cfg.identify_timeout_s)
                if mac is None:
                    self._drop_port()
                    return self._open_failed(
                        f"no answer to ?M on {cfg.port} within {cfg.identify_timeout_s:g} s:"
                        f" is the stick running {FIRMWARE} at {cfg.baudrate} baud?"
                    )
                channel = self.channel if configure else None
                self.identity = StickIdentity(cfg.port, mac.eui64, channel=channel)
                if configure:
                    self._apply_settings()
            except RadioError as e:
                self._drop_port()
                return self._open_failed(str(e))
            if self._port is None:  # lost while identifying
                return self._open_failed(f"{cfg.port} went away while identifying the stick")
        self.diag.set("radio.stick_eui64", mac.eui64)
        self.diag.set("radio.status", "ok")
        if self._ever_connected:
            self.diag.count("radio.serial_reconnects")
            log.info("serial stick back on %s (EUI-64 %s)", cfg.port, mac.eui64)
        else:
            log.info("serial stick on %s: %s", cfg.port, self.identity.describe())
        self._ever_connected = True
        self._check_address()
        return None

    def _apply_settings(self) -> None:
        self._send(SetValue(RadioParam.CHANNEL, self.channel).to_bytes())
        if self._want_pan is not None:
            self._send(SetValue(RadioParam.PAN_ID, self._want_pan).to_bytes())

    def _check_address(self) -> None:
        if self._want_eui is None or self.identity is None:
            return
        mismatch = self._want_eui != self.identity.eui64
        self.diag.set("radio.stick_address_mismatch", mismatch)
        if mismatch:
            log.warning(
                "the display's address is %s but the stick answers for %s: meters must push "
                "to the stick's EUI-64 (it ACKs and passes on only frames to itself)",
                self._want_eui,
                self.identity.eui64,
            )

    def _open_failed(self, reason: str) -> str:
        self.diag.count("radio.serial_open_failures")
        self.diag.set("radio.status", f"error: {reason}")
        log.warning("serial stick: %s", reason)
        return reason

    def _drop_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(OSError, ValueError):
                port.close()

    def _lose(self, port: Any, err: BaseException) -> None:
        """The device went away (or the port broke): close, count, retry later."""
        with self._io:
            if self._port is not port or port is None:
                return  # already handled
            self._drop_port()
            self._next_retry = self.clock.now() + self.config.reconnect_interval_s
        reason = f"serial stick on {self.config.port} disconnected: {err}"
        self.diag.count("radio.serial_disconnects")
        self.diag.set("radio.status", f"error: {reason}")
        log.warning("%s; retrying every %g s", reason, self.config.reconnect_interval_s)
        with self._cond:
            self._lost = reason
            self._cond.notify_all()

    # --- I/O --------------------------------------------------------------------------------
    def _send(self, message: bytes) -> None:
        self._write_raw(slip_encode(message))

    def _write_raw(self, data: bytes) -> None:
        port = self._port
        if port is None:
            raise RadioError(f"serial stick on {self.config.port} is not connected")
        try:
            with self._write_lock:
                port.write(data)
        except (OSError, ValueError) as e:  # SerialException is an OSError
            self._lose(port, e)
            raise RadioError(f"serial stick on {self.config.port} disconnected: {e}") from None

    def _pump(self, *, blocking: bool) -> bool:
        """Be the reader for one slice: read what is there (waiting up to the port timeout
        if ``blocking``), decode, dispatch. False if another thread is the reader."""
        if not self._io.acquire(blocking=False):
            return False
        try:
            port = self._port
            if port is None:
                return True
            try:
                n = port.in_waiting
                data = port.read(n) if n else (port.read(1) if blocking else b"")
            except (OSError, ValueError, TypeError) as e:
                self._lose(port, e)
                return True
            if data:
                frames = self._decoder.feed(data)
                errors = self._decoder.errors
                if errors:
                    self._decoder.errors = 0
                    self.diag.count("radio.slip_errors", errors)
                for frame in frames:
                    self._dispatch(parse_stick_message(frame))
            return True
        finally:
            self._io.release()

    def _wait(self, take: Callable[[], Any], timeout: float) -> Any:
        """Wait up to ``timeout`` wall seconds for ``take()`` to return something, reading
        the port ourselves whenever no one else is."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                got = take()
                if got is not None or self._lost is not None:
                    return got
            if time.monotonic() >= deadline or self._port is None:
                return None
            if not self._pump(blocking=True):
                with self._cond:
                    self._cond.wait(0.01)

    def _dispatch(self, msg: StickMessage) -> None:
        with self._cond:
            if isinstance(msg, ReceivedFrame):
                if len(msg.mpdu) < 3:
                    return  # not even frame control + sequence number
                mpdu = msg.mpdu
                fcs_len = self.config.fcs_len
                info = RxInfo(
                    timestamp=self.clock.now(),
                    channel=self.channel,
                    fcs_len=fcs_len,
                    whitened=self.config.whitened,
                    fcs_ok=True,  # the stick's radio dropped frames with a bad CRC
                    rssi_dbm=None,
                    lqi=None,
                )
                self._frames.append(RxFrame(mpdu + compute_fcs(mpdu, fcs_len), info))
            elif isinstance(msg, SendReport):
                self._reports[msg.sid] = msg
            elif isinstance(msg, ValueReport):
                self._values[msg.param] = msg
            elif isinstance(msg, MacAddress):
                self._mac = msg
            elif isinstance(msg, UnknownCommand):
                if self._expect_unknown > 0:
                    self._expect_unknown -= 1  # slip-radio says this after every ?V
                else:
                    self.diag.count("radio.stick_errors")
                    log.warning("serial stick: %s", msg.text)
            elif isinstance(msg, DebugText):
                log.debug("serial stick says: %s", msg.text)
            self._cond.notify_all()


def probe_serial_stick(
    port: str,
    *,
    baudrate: int = 115_200,
    timeout: float = 1.0,
    clock: Clock | None = None,
    serial_factory: SerialFactory | None = None,
) -> StickIdentity:
    """Identify a slip-radio stick on ``port`` (``?M``, then ``?V CHANNEL``) and close it
    again; RadioError if nothing answers like one. For ``ihd radio probe``."""
    from ihd.clock import WallClock

    cfg = SerialStickConfig(port=port, baudrate=baudrate, identify_timeout_s=timeout)
    radio = SerialStickRadio(cfg, clock=clock or WallClock(), serial_factory=serial_factory)
    radio._closed = False
    reason = radio._connect(configure=False)
    try:
        if reason is not None:
            raise RadioError(reason)
        ident = radio.identity
        assert ident is not None
        try:
            channel: int | None = radio.query_value(RadioParam.CHANNEL, timeout=timeout)
        except RadioError:
            channel = None
        return StickIdentity(port, ident.eui64, channel=channel)
    finally:
        radio.close()
