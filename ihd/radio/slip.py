"""SLIP framing (RFC 1055) and the Contiki-NG slip-radio messages, sans-I/O.

Bytes in, messages out; messages in, bytes out. No port, no clock: the serial-stick driver
(:mod:`ihd.radio.serial_stick`) feeds what pyserial reads into a :class:`SlipDecoder` and
hands each frame to :func:`parse_stick_message`; it sends what the ``to_bytes()`` of the host
messages return, wrapped by :func:`slip_encode`. docs/radio-serial-stick.md gives the exact
bytes and where each rule comes from.

SLIP, as Contiki-NG's ``os/dev/slip.c`` writes it [src]: every frame starts and ends with
END (0xC0); END and ESC (0xDB) inside a frame go out as ESC ESC_END (0xDB 0xDC) and ESC
ESC_ESC (0xDB 0xDD). Empty frames (two ENDs in a row) are skipped. An ESC followed by
anything else, or a frame longer than the decoder's limit, spoils the frame: the decoder drops
everything up to the next END and counts it, as Contiki's own ``STATE_RUBBISH`` does.

slip-radio messages (``examples/slip-radio/slip-radio.c``, ``os/services/slip-cmd`` [src]),
one per SLIP frame:

==============================  =========================================================
host -> stick                   meaning
==============================  =========================================================
``! S sid n (a hi lo)*n mpdu``  send ``mpdu`` (MHR + payload, no FCS) with ``n`` packet
                                attributes; answered by ``! R``
``! V p_hi p_lo v_hi v_lo``     set radio parameter ``p`` to ``v`` (no answer; the stick
                                prints a ``\\r`` debug line)
``? V p_hi p_lo``               read radio parameter ``p``; answered by ``! V``, and then,
                                a quirk of slip-radio.c, by ``EUnknown command`` as well
``? M``                         the stick's link-layer address; answered by ``! M``
==============================  =========================================================

==============================  =========================================================
stick -> host                   meaning
==============================  =========================================================
``! M`` + 8 octets              the stick's EUI-64 (``uip_lladdr``)
``! V p_hi p_lo v_hi v_lo``     a parameter's value (16 bits, two's complement)
``! R sid status tx``           what became of ``! S sid``: MAC status, transmissions
``EUnknown command``            a command slip-radio did not handle
``\\r`` + text                  a debug line (``printf`` through slip-radio's putchar)
anything else                   a received frame: MHR + payload, no PHR, no FCS
==============================  =========================================================

A received frame is told from a message by its first octets, as Contiki's native border
router does. That is safe: an 802.15.4 frame starting with ``!`` (0x21, a data frame with
AR set) has ``M``, ``V`` or ``R`` as its second octet only if its frame control names a
reserved addressing mode, which :func:`parse_stick_message` checks by length as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "ESC",
    "ESC_END",
    "ESC_ESC",
    "SLIP_END",
    "DebugText",
    "GetMac",
    "GetValue",
    "MacAddress",
    "MacTxStatus",
    "RadioParam",
    "ReceivedFrame",
    "SendFrame",
    "SendReport",
    "SetValue",
    "SlipDecoder",
    "StickMessage",
    "UnknownCommand",
    "ValueReport",
    "parse_stick_message",
    "slip_encode",
]

SLIP_END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

_END = bytes([SLIP_END])
_ESCAPE = {SLIP_END: bytes([ESC, ESC_END]), ESC: bytes([ESC, ESC_ESC])}
_UNESCAPE = {ESC_END: SLIP_END, ESC_ESC: ESC}


def slip_encode(payload: bytes) -> bytes:
    """END + payload with END/ESC escaped + END (Contiki's ``slip_write``)."""
    if SLIP_END in payload or ESC in payload:
        body = b"".join(_ESCAPE.get(b, bytes((b,))) for b in payload)
    else:
        body = payload
    return _END + body + _END


class SlipDecoder:
    """Reassembles SLIP frames from a byte stream cut anywhere.

    ``feed`` returns the frames completed by the new bytes. ``errors`` counts spoiled frames
    (bad escape, over ``max_frame`` octets), ``partial`` says whether a frame is under way.
    """

    def __init__(self, max_frame: int = 4096) -> None:
        self.max_frame = max_frame
        self.errors = 0
        self._buf = bytearray()
        self._esc = False
        self._rubbish = False

    @property
    def partial(self) -> bool:
        return bool(self._buf) or self._esc

    def reset(self) -> None:
        """Forget a frame under way (after a reconnect, say)."""
        self._buf.clear()
        self._esc = False
        self._rubbish = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf
        for b in data:
            if b == SLIP_END:
                if self._rubbish:
                    self._rubbish = False
                elif self._esc:  # ESC END: the frame is spoiled, END still ends it
                    self.errors += 1
                elif buf:
                    out.append(bytes(buf))
                buf.clear()
                self._esc = False
                continue
            if self._rubbish:
                continue
            if self._esc:
                self._esc = False
                unescaped = _UNESCAPE.get(b)
                if unescaped is None:
                    self._spoil()
                    continue
                b = unescaped
            elif b == ESC:
                self._esc = True
                continue
            if len(buf) >= self.max_frame:
                self._spoil()
                continue
            buf.append(b)
        return out

    def _spoil(self) -> None:
        self.errors += 1
        self._buf.clear()
        self._esc = False
        self._rubbish = True


class RadioParam(IntEnum):
    """Contiki-NG ``radio_param_t`` numbers used here (``os/dev/radio.h`` [src]). Only the
    first entries of the enum are used: their numbers have not moved between releases; later
    ones (LAST_LINK_QUALITY and after) have."""

    POWER_MODE = 0
    CHANNEL = 1
    PAN_ID = 2
    ADDR_16BIT = 3
    RX_MODE = 4
    TX_MODE = 5
    TXPOWER = 6
    CCA_THRESHOLD = 7
    RSSI = 8
    LAST_RSSI = 9


class MacTxStatus(IntEnum):
    """Contiki-NG MAC return values (``os/net/mac/mac.h`` [src]), the status in ``! R``."""

    OK = 0
    COLLISION = 1
    NOACK = 2
    DEFERRED = 3
    ERR = 4
    ERR_FATAL = 5
    QUEUE_FULL = 6  # newer Contiki-NG releases only


def _u16(v: int) -> bytes:
    return (v & 0xFFFF).to_bytes(2, "big")


# --- host -> stick -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SendFrame:
    """``!S``: send ``mpdu`` (no FCS: the stick's radio appends it). ``attrs`` are Contiki
    packetbuf attributes (id, 16-bit value); slip-radio reads the count byte even when
    there are none."""

    sid: int
    mpdu: bytes
    attrs: tuple[tuple[int, int], ...] = ()

    def to_bytes(self) -> bytes:
        atts = b"".join(bytes((a,)) + _u16(v) for a, v in self.attrs)
        return b"!S" + bytes((self.sid & 0xFF, len(self.attrs))) + atts + self.mpdu

    @classmethod
    def from_bytes(cls, data: bytes) -> SendFrame:
        if len(data) < 4 or data[:2] != b"!S":
            raise ValueError("not a !S message")
        n = data[3]
        end = 4 + 3 * n
        if len(data) < end:
            raise ValueError(f"!S names {n} attributes but has room for fewer")
        attrs = tuple(
            (data[i], int.from_bytes(data[i + 1 : i + 3], "big")) for i in range(4, end, 3)
        )
        return cls(data[2], data[end:], attrs)


@dataclass(frozen=True, slots=True)
class SetValue:
    """``!V``: set a radio parameter (16-bit value, two's complement for negatives)."""

    param: int
    value: int

    def to_bytes(self) -> bytes:
        return b"!V" + _u16(self.param) + _u16(self.value)


@dataclass(frozen=True, slots=True)
class GetValue:
    """``?V``: ask for a radio parameter."""

    param: int

    def to_bytes(self) -> bytes:
        return b"?V" + _u16(self.param)


@dataclass(frozen=True, slots=True)
class GetMac:
    """``?M``: ask for the stick's link-layer address: the identity query."""

    def to_bytes(self) -> bytes:
        return b"?M"


# --- stick -> host -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MacAddress:
    address: bytes  # 8 octets for an 802.15.4 build, as the stick holds it (big-endian)

    @property
    def eui64(self) -> str:
        return self.address.hex().upper()


@dataclass(frozen=True, slots=True)
class ValueReport:
    param: int
    raw: int  # the 16 bits as sent

    @property
    def signed(self) -> int:
        return self.raw - 0x10000 if self.raw & 0x8000 else self.raw


@dataclass(frozen=True, slots=True)
class SendReport:
    sid: int
    status: int  # MacTxStatus value
    transmissions: int

    @property
    def ok(self) -> bool:
        return self.status == MacTxStatus.OK

    @property
    def status_name(self) -> str:
        try:
            return MacTxStatus(self.status).name
        except ValueError:
            return f"status {self.status}"


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    text: str  # what followed the 'E'


@dataclass(frozen=True, slots=True)
class DebugText:
    text: str


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    mpdu: bytes  # MHR + payload, without FCS


StickMessage = MacAddress | ValueReport | SendReport | UnknownCommand | DebugText | ReceivedFrame

UNKNOWN_COMMAND = b"EUnknown command"


def parse_stick_message(frame: bytes) -> StickMessage:
    """Classify one SLIP frame from the stick. Never raises: what is not a message is a
    received radio frame (the MAC layer above judges it)."""
    if len(frame) >= 2 and frame[0] == 0x21:  # '!'
        kind, n = frame[1], len(frame)
        if kind == 0x4D and n in (4, 10):  # 'M' + 2 or 8 octets (short or long lladdr)
            return MacAddress(frame[2:])
        if kind == 0x56 and n == 6:  # 'V'
            return ValueReport(int.from_bytes(frame[2:4], "big"), int.from_bytes(frame[4:6], "big"))
        if kind == 0x52 and n == 5:  # 'R'
            return SendReport(frame[2], frame[3], frame[4])
    if frame.startswith(UNKNOWN_COMMAND):
        return UnknownCommand(frame[1:].decode("ascii", "replace"))
    if frame[:1] == b"\r":
        return DebugText(frame[1:].decode("utf-8", "replace").rstrip("\r\n"))
    return ReceivedFrame(frame)
