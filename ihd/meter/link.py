"""From link frames to one xDLMS APDU: the wrappers that pushes arrive in, in the wild.

Over SMWAP the APDU travels bare in the MAC payload. HAN ports, captures and test suites
wrap it in one of these, and :func:`unwrap` (one buffer) or :class:`Reassembler` (one link
frame at a time) take all of them off, checking every checksum on the way:

* **bare APDU**: ``0F`` DATA-NOTIFICATION, ``DB`` general-glo-ciphering, ``E0``
  general-block-transfer.
* **LLC header** (IEC 62056-46 / ISO 8802-2): ``E6 E7 00`` (or ``E6 E6 00``) + APDU.
* **HDLC** (IEC 62056-46, frame format type 3): ``7E``, format ``Axxx`` (type 0xA, the
  segmentation bit S = 0x0800, an 11-bit length counting everything between the flags),
  destination and source addresses of 1-4 octets each (the last octet has its low bit
  set), control, HCS over the header, information, FCS over header and information,
  ``7E``. HCS and FCS are CRC-16/X-25, least significant octet first. The length field,
  not a flag search, delimits the frame: DLMS HDLC does no byte stuffing, so ``7E`` can
  occur inside a frame (it does, in the Landis+Gyr sample). A frame with S set is
  continued by the next; their information fields are concatenated, and the LLC header
  is in the first only. Frames may share a flag or each have their own.
* **wired M-Bus** (EN 13757-2 long frame, DLMS/COSEM transport of IEC 62056-7-6):
  ``68 L L 68 C A CI STSAP DTSAP data CS 16``; CS is the sum of C..data modulo 256. CI
  0x00-0x1F is a DLMS segment: the low four bits count segments modulo 16 and 0x10 marks
  the last one (Netz NÖ: CI 00 then 11).
* **DLMS/UDP wrapper** (IEC 62056-9-7): version ``0001``, source and destination wPort,
  length (2 octets each), then the APDU; the length must match. Parsed with dlms-cosem's
  ``WrapperProtocolDataUnit``.
* **general-block-transfer** (Green Book, GBT): ``E0``, block-control (bit 7 last block,
  bit 6 streaming, window), block-number, block-number-ack (2 octets each), block data
  (A-XDR octet string). Blocks must come in order from 1; their data concatenated is the
  APDU. Landis+Gyr sends one block per HDLC frame.

Anything else, a bad checksum, a length that does not match, a segment out of order or
a reassembled APDU over ``MAX_APDU`` octets raises :class:`MeterDecodeError`. Sans I/O:
nothing here reads a port or a clock.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from dlms_cosem.protocol.wrappers import WrapperProtocolDataUnit

from ihd.meter.ber import read_length
from ihd.meter.errors import MeterDecodeError

__all__ = [
    "MAX_APDU",
    "HdlcFrame",
    "MbusFrame",
    "Reassembler",
    "Unwrapped",
    "crc16_x25",
    "hdlc_frame",
    "mbus_frame",
    "parse_hdlc",
    "parse_mbus",
    "unwrap",
]

HDLC_FLAG = 0x7E
MBUS_START = 0x68
MBUS_STOP = 0x16
TAG_GBT = 0xE0
LLC_HEADERS = (b"\xe6\xe7\x00", b"\xe6\xe6\x00")
MAX_APDU = 1 << 16  # a reassembled push larger than this is refused (memory bound)
_HDLC_SEGMENTED = 0x08  # in the first format octet
_GBT_LAST = 0x80

_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25 (HDLC FCS; "123456789" gives 0x906E). ``binascii.crc_hqx`` is the same
    polynomial fed most significant bit first, so the reflected CRC is the reversed CRC of
    the reversed octets."""
    r = binascii.crc_hqx(data.translate(_BITREV), 0xFFFF)
    return ((_BITREV[r & 0xFF] << 8) | _BITREV[r >> 8]) ^ 0xFFFF


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """One APDU and how it arrived: ``framing`` lists the wrappers outermost first, e.g.
    ``("hdlc", "llc")`` or ``("mbus", "gbt")``; ``frames`` counts link frames used."""

    apdu: bytes
    framing: tuple[str, ...]
    frames: int = 1


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    segmented: bool  # S bit: the information continues in the next frame
    dst: int
    src: int
    control: int
    info: bytes


@dataclass(frozen=True, slots=True)
class MbusFrame:
    control: int
    address: int
    ci: int
    data: bytes  # user data after CI (DLMS: STSAP, DTSAP, then the APDU segment)


# ------------------------------------------------------------------------------ HDLC


def _hdlc_address(frame: bytes, pos: int, end: int, which: str) -> tuple[int, int]:
    value = 0
    for i in range(4):
        if pos + i >= end:
            break
        octet = frame[pos + i]
        value = (value << 7) | (octet >> 1)
        if octet & 1:
            return value, pos + i + 1
    raise MeterDecodeError(f"HDLC: {which} address does not end within 4 octets")


def parse_hdlc(data: bytes, pos: int = 0) -> tuple[HdlcFrame, int]:
    """Parse the HDLC frame whose opening flag is at ``data[pos]``; returns the frame and
    the index of its closing flag."""
    if len(data) - pos < 9:
        raise MeterDecodeError("HDLC: frame too short")
    if data[pos] != HDLC_FLAG:
        raise MeterDecodeError(f"HDLC: no opening flag (0x{data[pos]:02X})")
    f0, f1 = data[pos + 1], data[pos + 2]
    if f0 >> 4 != 0xA:
        raise MeterDecodeError(f"HDLC: frame format type 0x{f0 >> 4:X}, expected 0xA")
    length = ((f0 & 0x07) << 8) | f1
    start, end = pos + 1, pos + 1 + length  # frame = data[start:end], flags excluded
    if length < 7:
        raise MeterDecodeError(f"HDLC: frame length {length} is too short")
    if end >= len(data):
        raise MeterDecodeError(f"HDLC: frame length {length} runs past the data")
    if data[end] != HDLC_FLAG:
        raise MeterDecodeError("HDLC: no closing flag where the length field says")
    dst, p = _hdlc_address(data, start + 2, end - 2, "destination")
    src, p = _hdlc_address(data, p, end - 2, "source")
    if p >= end - 2:
        raise MeterDecodeError("HDLC: no control field")
    control = data[p]
    p += 1
    frame = data[start:end]
    if crc16_x25(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
        raise MeterDecodeError("HDLC: FCS does not match")
    if p == end - 2:
        info = b""  # no information field, and no HCS
    else:
        if p + 2 > end - 2:
            raise MeterDecodeError("HDLC: truncated HCS")
        hcs = int.from_bytes(data[p : p + 2], "little")
        if crc16_x25(data[start:p]) != hcs:
            raise MeterDecodeError("HDLC: HCS does not match")
        info = bytes(data[p + 2 : end - 2])
    return HdlcFrame(bool(f0 & _HDLC_SEGMENTED), dst, src, control, info), end


def hdlc_frame(
    info: bytes, *, segmented: bool = False, dst: int = 0x01, src: int = 0x10, control: int = 0x13
) -> bytes:
    """Build one HDLC frame (1-octet addresses given as their values, flags included).
    For tests and tools; meters build these, we read them."""
    if not (0 <= dst < 0x80 and 0 <= src < 0x80):
        raise ValueError("only 1-octet HDLC addresses (0..127) are built here")
    header_len = 2 + 1 + 1 + 1
    length = header_len + (2 + len(info) if info else 0) + 2
    if length > 0x7FF:
        raise ValueError(f"HDLC frame of {length} octets does not fit the 11-bit length")
    fmt = 0xA000 | (_HDLC_SEGMENTED << 8 if segmented else 0) | length
    header = fmt.to_bytes(2, "big") + bytes(((dst << 1) | 1, (src << 1) | 1, control))
    body = header
    if info:
        body += crc16_x25(header).to_bytes(2, "little") + info
    body += crc16_x25(body).to_bytes(2, "little")
    return bytes((HDLC_FLAG,)) + body + bytes((HDLC_FLAG,))


# ----------------------------------------------------------------------------- M-Bus


def parse_mbus(data: bytes, pos: int = 0) -> tuple[MbusFrame, int]:
    """Parse the M-Bus long frame starting at ``data[pos]``; returns it and the index just
    after its stop octet."""
    if len(data) - pos < 9:
        raise MeterDecodeError("M-Bus: frame too short")
    if data[pos] != MBUS_START or data[pos + 3] != MBUS_START:
        raise MeterDecodeError("M-Bus: not a long frame (68 L L 68)")
    length = data[pos + 1]
    if data[pos + 2] != length:
        raise MeterDecodeError("M-Bus: the two length octets differ")
    if length < 3:
        raise MeterDecodeError(f"M-Bus: length {length} is too short")
    end = pos + 4 + length  # index of the checksum
    if end + 1 >= len(data):
        raise MeterDecodeError(f"M-Bus: length {length} runs past the data")
    if data[end + 1] != MBUS_STOP:
        raise MeterDecodeError("M-Bus: no stop octet (0x16) where the length says")
    if sum(data[pos + 4 : end]) & 0xFF != data[end]:
        raise MeterDecodeError("M-Bus: checksum does not match")
    c, a, ci = data[pos + 4], data[pos + 5], data[pos + 6]
    return MbusFrame(c, a, ci, bytes(data[pos + 7 : end])), end + 2


def mbus_frame(data: bytes, *, ci: int, control: int = 0x53, address: int = 0xFF) -> bytes:
    """Build one M-Bus long frame around ``data`` (which starts after CI). For tests."""
    user = bytes((control, address, ci)) + data
    if len(user) > 255:
        raise ValueError("an M-Bus long frame holds at most 252 octets after CI")
    return (
        bytes((MBUS_START, len(user), len(user), MBUS_START))
        + user
        + bytes((sum(user) & 0xFF, MBUS_STOP))
    )


# ------------------------------------------------------------------------- assembly


class Reassembler:
    """Link frames in, whole APDUs out; sans I/O, one per link (serial port, capture).

    :meth:`feed` takes one unit: an HDLC frame (flags included), an M-Bus long frame, a
    DLMS/UDP datagram, an LLC PDU or a bare APDU. It returns :class:`Unwrapped` when an
    APDU is complete and None while segments or blocks are outstanding. Any error resets
    the partial state and raises :class:`MeterDecodeError`.
    """

    __slots__ = ("_blocks", "_frames", "_framing", "_mbus", "_mbus_seq", "_next_block", "_seg")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Drop any partial APDU."""
        self._seg: bytearray | None = None  # HDLC information being concatenated
        self._mbus: bytearray | None = None  # M-Bus segments being concatenated
        self._mbus_seq = 0
        self._blocks: bytearray | None = None  # general-block-transfer data
        self._next_block = 1
        self._frames = 0
        self._framing: list[str] = []

    @property
    def pending(self) -> bool:
        """True while part of an APDU is held."""
        return self._seg is not None or self._mbus is not None or self._blocks is not None

    def feed(self, unit: bytes) -> Unwrapped | None:
        try:
            return self._feed(bytes(unit))
        except MeterDecodeError:
            self.reset()
            raise
        except (ValueError, IndexError, KeyError, TypeError) as exc:  # dlms-cosem wrapper
            self.reset()
            raise MeterDecodeError(f"malformed link frame: {type(exc).__name__}") from exc

    def _feed(self, unit: bytes) -> Unwrapped | None:
        if not unit:
            raise MeterDecodeError("empty frame")
        self._frames += 1
        first = unit[0]
        if first == HDLC_FLAG:
            frame, end = parse_hdlc(unit)
            if end != len(unit) - 1:
                raise MeterDecodeError("HDLC: octets after the closing flag")
            return self._hdlc(frame)
        if first == MBUS_START and len(unit) > 3 and unit[3] == MBUS_START:
            mframe, end = parse_mbus(unit)
            if end != len(unit):
                raise MeterDecodeError("M-Bus: octets after the stop octet")
            return self._mbus_segment(mframe)
        if self._seg is not None or self._mbus is not None:
            raise MeterDecodeError("a segmented link PDU was interrupted by another frame")
        if unit[:2] == b"\x00\x01" and len(unit) >= 8:
            wrapped = WrapperProtocolDataUnit.from_bytes(unit)
            self._note("udp")
            return self._pdu(bytes(wrapped.data))
        return self._pdu(unit)

    def _note(self, layer: str) -> None:
        if layer not in self._framing:
            self._framing.append(layer)

    def _hdlc(self, frame: HdlcFrame) -> Unwrapped | None:
        if self._mbus is not None:
            raise MeterDecodeError("an M-Bus segment sequence was interrupted by HDLC")
        self._note("hdlc")
        if self._seg is None:
            self._seg = bytearray()
        self._seg += frame.info
        if len(self._seg) > MAX_APDU:
            raise MeterDecodeError(f"HDLC: reassembled information over {MAX_APDU} octets")
        if frame.segmented:
            return None
        pdu, self._seg = bytes(self._seg), None
        return self._pdu(pdu)

    def _mbus_segment(self, frame: MbusFrame) -> Unwrapped | None:
        if self._seg is not None:
            raise MeterDecodeError("an HDLC segment sequence was interrupted by M-Bus")
        self._note("mbus")
        if frame.ci > 0x1F:
            raise MeterDecodeError(f"M-Bus: CI 0x{frame.ci:02X} is not a DLMS segment")
        seq, last = frame.ci & 0x0F, bool(frame.ci & 0x10)
        if self._mbus is None:
            self._mbus, self._mbus_seq = bytearray(), seq
        elif seq != (self._mbus_seq + 1) & 0x0F:
            raise MeterDecodeError(
                f"M-Bus: segment {seq} after {self._mbus_seq}: a segment is missing"
            )
        self._mbus_seq = seq
        if len(frame.data) < 2:
            raise MeterDecodeError("M-Bus: no STSAP/DTSAP")
        self._mbus += frame.data[2:]  # STSAP, DTSAP in every segment
        if len(self._mbus) > MAX_APDU:
            raise MeterDecodeError(f"M-Bus: reassembled data over {MAX_APDU} octets")
        if not last:
            return None
        pdu, self._mbus = bytes(self._mbus), None
        return self._pdu(pdu)

    def _pdu(self, pdu: bytes) -> Unwrapped | None:
        """A complete link PDU: LLC off, then an APDU or one general-block-transfer block."""
        if pdu[:3] in LLC_HEADERS:
            self._note("llc")
            pdu = pdu[3:]
        if not pdu:
            raise MeterDecodeError("empty APDU")
        if pdu[0] == TAG_GBT:
            return self._gbt(pdu)
        if self._blocks is not None:
            raise MeterDecodeError("block transfer interrupted by another APDU")
        return self._done(pdu)

    def _gbt(self, pdu: bytes) -> Unwrapped | None:
        self._note("gbt")
        if len(pdu) < 7:
            raise MeterDecodeError("general-block-transfer too short")
        control = pdu[1]
        number = int.from_bytes(pdu[2:4], "big")
        n, pos = read_length(pdu, 6, "general-block-transfer block data")
        if pos + n != len(pdu):
            raise MeterDecodeError("general-block-transfer: octets after the block data")
        if self._blocks is None:
            if number != 1:
                raise MeterDecodeError(f"general-block-transfer starts at block {number}")
            self._blocks, self._next_block = bytearray(), 1
        if number != self._next_block:
            raise MeterDecodeError(
                f"general-block-transfer: block {number}, expected {self._next_block}"
            )
        self._next_block += 1
        self._blocks += pdu[pos:]
        if len(self._blocks) > MAX_APDU:
            raise MeterDecodeError(f"general-block-transfer over {MAX_APDU} octets")
        if not control & _GBT_LAST:
            return None
        apdu, self._blocks = bytes(self._blocks), None
        if not apdu or apdu[0] == TAG_GBT:
            raise MeterDecodeError("general-block-transfer does not hold an APDU")
        return self._done(apdu)

    def _done(self, apdu: bytes) -> Unwrapped:
        result = Unwrapped(apdu, tuple(self._framing) or ("apdu",), max(1, self._frames))
        self._frames = 0
        self._framing = []
        return result


def _split(data: bytes) -> list[bytes]:
    """Cut a buffer of back-to-back HDLC or M-Bus frames into single frames."""
    units: list[bytes] = []
    pos = 0
    n = len(data)
    if data[0] == HDLC_FLAG:
        while pos < n:
            if data[pos] != HDLC_FLAG:
                raise MeterDecodeError(f"HDLC: octet 0x{data[pos]:02X} between frames")
            if pos + 1 < n and data[pos + 1] == HDLC_FLAG:
                pos += 1  # a closing flag followed by the next opening flag
                continue
            _, end = parse_hdlc(data, pos)
            units.append(data[pos : end + 1])
            # A shared flag: the closing flag opens the next frame.
            pos = end if end + 1 < n and data[end + 1] >> 4 == 0xA else end + 1
        return units
    while pos < n:
        _, end = parse_mbus(data, pos)
        units.append(data[pos:end])
        pos = end
    return units


def unwrap(data: bytes) -> Unwrapped:
    """Take every wrapper off one buffer that holds exactly one APDU (in one or several
    link frames, segments or blocks). Raises :class:`MeterDecodeError`."""
    data = bytes(data)
    if not data:
        raise MeterDecodeError("empty APDU")
    first = data[0]
    if first == HDLC_FLAG or (first == MBUS_START and len(data) > 3 and data[3] == MBUS_START):
        units = _split(data)
    else:
        units = [data]
    r = Reassembler()
    result: Unwrapped | None = None
    for unit in units:
        if result is not None:
            raise MeterDecodeError("more than one APDU in the buffer")
        result = r.feed(unit)
    if result is None:
        raise MeterDecodeError("incomplete: the last segment or block is missing")
    return result
