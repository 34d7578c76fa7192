"""IEEE 802.15.4 MAC frames (2003/2006/2011 and 2015 formats) as frozen values.

Why hand-written: no maintained Python library parses 802.15.4 MAC frames without doing I/O
or pulling in a sniffer framework, and SMWAP needs only framing, no MAC state. Bytes in,
:class:`MacFrame` out, and back: :func:`parse_mpdu` / :func:`build_mpdu` (with FCS) and
:meth:`MacFrame.from_bytes` / :meth:`MacFrame.to_bytes` (without).

The frame is ``FC | Seq | Dst PAN | Dst | Src PAN | Src | Aux security header | Header IEs
| Payload IEs | MAC payload | FCS``; multi-octet fields are little-endian on air.

Choices made here (all documented on the fields too):

* **Frame types** beacon, data, Imm-Ack/Enh-Ack and MAC command use the general frame
  control layout. The 2015 **multipurpose** frame (type 5) has its own 1- or 2-octet frame
  control (see below). Fragment (6) and extended (7) frames are named in :class:`FrameType`
  but refused (:class:`FrameError`) rather than misread.
* **Multipurpose frames** (IEEE 802.15.4-2015 7.3.5). Bit layout of the frame control,
  checked against Wireshark's ``packet-ieee802154.h`` (``IEEE802154_MPF_FCF_*``): bits 0-2
  frame type, 3 Long Frame Control, 4-5 destination addressing mode, 6-7 source addressing
  mode; in the long (2-octet) form also 8 PAN ID Present, 9 Security Enabled, 10 Sequence
  Number Suppression, 11 Frame Pending, 12-13 Frame Version, 14 AR, 15 IE Present. The short
  form has all those at 0 (sequence number present, no PAN ID, no security, no IEs). There is
  at most one PAN ID field, placed before the destination address; like Wireshark we read it
  as the destination PAN ID (with a source address, ``src_pan`` then reads as that PAN too).
  The only defined multipurpose frame version is 0, which this module maps to
  ``FrameVersion.V2015`` (the standard that defines the frame); other values are refused.
  ``MacFrame.long_fc`` keeps which form was used so that frames round-trip. [src: Wireshark;
  the standard's text itself was not available here.]
* **MPX IE** (IEEE 802.15.9, payload IE group 0x3): :class:`MpxIE` is a typed view of a
  :class:`PayloadIE`; frames keep every IE, known or not, as raw :class:`HeaderIE` /
  :class:`PayloadIE` values. Field layout as in Wireshark and Nanostack
  (``ws_mpx_header.c``) [src].
* **PAN IDs.** Versions 0 and 1 follow the 2006 rule: with both addresses, PAN ID
  Compression leaves out the source PAN. Compression with fewer than two addresses is not
  defined there, so it is refused, not guessed. Version 2 follows the 2015 table. When the
  source PAN is not sent but a source address and a destination PAN are, the parser sets
  ``src_pan = dst_pan`` (the receiver's view: the source lives on that PAN), so code that
  keys on (PAN, address) never sees None for a compressed frame. The builder accepts that
  form or None.
* **Security** is only framed here. For a secured frame (``aux`` set) the parser stops after
  the header IEs: ``payload`` is the secured rest of the frame (payload IEs, MAC payload and
  MIC, still encrypted) and ``secured_payload_ies`` says whether it starts with payload IEs.
  Since the MIC length follows from the security level, header IEs may not run into it.
  The security control octet is checked strictly (fail closed): reserved bits, level 0,
  and the 2015-only bits in older frames are refused. 2003 security (frame version 0) is
  not supported.
* **IE terminators** are inserted by the builder (HT1 before payload IEs, HT2 before a MAC
  payload without payload IEs, Payload Termination between payload IEs and a MAC payload)
  and consumed by the parser, never returned as elements. The parser also takes redundant
  ones, which do not come back on rebuilding (see :class:`MacFrame`). A payload IE
  descriptor where a header IE is expected (no HT1) is refused.
* **Reserved bit 7 of the frame control** is ignored on receipt and sent as 0.

The parser raises only :class:`FrameError` for any input octets, and for every frame it
returns, ``parse(build(frame)) == frame`` (the octets built can differ from those received,
only as :class:`MacFrame` lists). Parsing is written for speed (a 70-octet data frame
takes a few microseconds): octets are read by index, not with ``struct``.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, fields
from enum import IntEnum

from .errors import FrameError
from .fcs import compute_fcs, crc16_kermit

__all__ = [
    "BROADCAST",
    "BROADCAST_PAN",
    "AddrMode",
    "Address",
    "AuxSecurityHeader",
    "FrameControl",
    "FrameType",
    "FrameVersion",
    "HeaderIE",
    "MacFrame",
    "MpxIE",
    "MpxTransferType",
    "PayloadIE",
    "build_mpdu",
    "parse_mpdu",
    "parse_mpdu_unchecked",
]


class FrameType(IntEnum):
    BEACON = 0
    DATA = 1
    ACK = 2
    COMMAND = 3
    MULTIPURPOSE = 5  # 2015; its own 1- or 2-octet frame control
    FRAK = 6  # 2015 fragment; not supported
    EXTENDED = 7  # 2015; not supported


class FrameVersion(IntEnum):
    V2003 = 0
    V2006 = 1  # also 2011
    V2015 = 2


class AddrMode(IntEnum):
    NONE = 0
    SHORT = 2
    EXTENDED = 3


BROADCAST_PAN = 0xFFFF

_SUPPORTED_TYPES = (FrameType.BEACON, FrameType.DATA, FrameType.ACK, FrameType.COMMAND)
_VERSIONS = (FrameVersion.V2003, FrameVersion.V2006, FrameVersion.V2015)
_ADDR_LEN = (0, -1, 2, 8)  # by addressing mode; -1: reserved
_KEY_ID_LEN = (0, 1, 5, 9)  # key source + key index octets, by key identifier mode
_MIC_LEN = (0, 4, 8, 16, 0, 4, 8, 16)  # by security level

_HT1, _HT2 = 0x7E, 0x7F  # header termination IE element IDs
_PT = 0xF  # payload termination IE group ID
_HT1_OCTETS = (_HT1 << 7).to_bytes(2, "little")  # 00 3F
_HT2_OCTETS = (_HT2 << 7).to_bytes(2, "little")  # 80 3F
_PT_OCTETS = (0x8000 | (_PT << 11)).to_bytes(2, "little")  # 00 F8


# --- addresses -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """A short (16-bit) or extended (64-bit, EUI-64) MAC address.

    ``str()`` gives ``0x1234`` for short and the EUI-64 as 16 upper-case hex digits
    (``ACDE480000000001``) for extended addresses. On air both are little-endian, so the
    extended one appears reversed (``01 00 00 00 00 48 DE AC``).
    """

    mode: AddrMode
    value: int

    def __post_init__(self) -> None:
        if self.mode == AddrMode.SHORT:
            limit = 0xFFFF
        elif self.mode == AddrMode.EXTENDED:
            limit = 0xFFFF_FFFF_FFFF_FFFF
        else:
            raise ValueError(f"address mode must be SHORT or EXTENDED, not {self.mode!r}")
        if not 0 <= self.value <= limit:
            raise ValueError(f"address value {self.value:#x} out of range for {self.mode.name}")

    @classmethod
    def short(cls, value: int) -> Address:
        """A 16-bit short address."""
        return cls(AddrMode.SHORT, value)

    @classmethod
    def ext(cls, value: int) -> Address:
        """A 64-bit extended address from its integer (EUI-64 read as a big-endian number)."""
        return cls(AddrMode.EXTENDED, value)

    @classmethod
    def from_eui64(cls, text: str) -> Address:
        """An extended address from 16 hex digits, optionally split by ':' or '-'."""
        digits = text.replace(":", "").replace("-", "")
        if len(digits) != 16:
            raise ValueError(f"EUI-64 needs 16 hex digits: {text!r}")
        try:
            value = int(digits, 16)
        except ValueError:
            raise ValueError(f"EUI-64 needs 16 hex digits: {text!r}") from None
        return cls(AddrMode.EXTENDED, value)

    @classmethod
    def from_bytes(cls, data: bytes) -> Address:
        """Decode 2 (short) or 8 (extended) octets in on-air order."""
        if len(data) == 2:
            return cls(AddrMode.SHORT, int.from_bytes(data, "little"))
        if len(data) == 8:
            return cls(AddrMode.EXTENDED, int.from_bytes(data, "little"))
        raise ValueError(f"an address is 2 or 8 octets, not {len(data)}")

    def to_bytes(self) -> bytes:
        """The address in on-air order (little-endian)."""
        return self.value.to_bytes(2 if self.mode == AddrMode.SHORT else 8, "little")

    def __str__(self) -> str:
        if self.mode == AddrMode.SHORT:
            return f"0x{self.value:04X}"
        return f"{self.value:016X}"

    def __repr__(self) -> str:
        if self.mode == AddrMode.SHORT:
            return f"Address.short(0x{self.value:04X})"
        return f"Address.from_eui64('{self.value:016X}')"


BROADCAST = Address(AddrMode.SHORT, 0xFFFF)


# --- frame control -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameControl:
    """The 16-bit frame control field (general MAC frame format, frame types 0-3)."""

    frame_type: FrameType
    security_enabled: bool = False
    frame_pending: bool = False
    ack_request: bool = False
    pan_id_compression: bool = False
    seq_suppressed: bool = False  # 2015 only
    ie_present: bool = False  # 2015 only
    dst_mode: AddrMode = AddrMode.NONE
    frame_version: FrameVersion = FrameVersion.V2006
    src_mode: AddrMode = AddrMode.NONE

    def to_int(self) -> int:
        """The field as a 16-bit integer (bit 0 = frame type LSB); reserved bit 7 is 0."""
        return (
            self.frame_type
            | self.security_enabled << 3
            | self.frame_pending << 4
            | self.ack_request << 5
            | self.pan_id_compression << 6
            | self.seq_suppressed << 8
            | self.ie_present << 9
            | self.dst_mode << 10
            | self.frame_version << 12
            | self.src_mode << 14
        )

    @classmethod
    def from_int(cls, value: int) -> FrameControl:
        """Decode a 16-bit value. Reserved or unsupported values raise :class:`FrameError`;
        reserved bit 7 is ignored."""
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"frame control {value!r} is not a 16-bit value")
        ftype, dmode, version, smode = value & 7, (value >> 10) & 3, (value >> 12) & 3, value >> 14
        _check_fc(ftype, dmode, version, smode)
        return cls(
            _SUPPORTED_TYPES[ftype],
            bool(value & 0x08),
            bool(value & 0x10),
            bool(value & 0x20),
            bool(value & 0x40),
            bool(value & 0x100),
            bool(value & 0x200),
            AddrMode(dmode),
            _VERSIONS[version],
            AddrMode(smode),
        )

    def to_bytes(self) -> bytes:
        """The two octets in on-air order."""
        return self.to_int().to_bytes(2, "little")

    @classmethod
    def from_bytes(cls, data: bytes) -> FrameControl:
        """Decode the two octets in on-air order."""
        if len(data) != 2:
            raise FrameError("frame control must be 2 octets", 0)
        return cls.from_int(data[0] | data[1] << 8)


def _check_fc(ftype: int, dmode: int, version: int, smode: int) -> None:
    if ftype > 3:
        name = "reserved" if ftype == 4 else FrameType(ftype).name.lower()
        raise FrameError(f"unsupported frame type {ftype} ({name})", 0)
    if version == 3:
        raise FrameError("reserved frame version 3", 0)
    if dmode == 1:
        raise FrameError("reserved destination addressing mode 1", 1)
    if smode == 1:
        raise FrameError("reserved source addressing mode 1", 1)


# --- PAN ID presence -----------------------------------------------------------------------


def _pan_layout_2006(dmode: int, smode: int, panidc: bool) -> tuple[bool, bool] | None:
    if dmode and smode:
        return (True, not panidc)
    if panidc:
        return None  # compression is only defined with both addresses
    return (bool(dmode), bool(smode))


def _pan_layout_2015(dmode: int, smode: int, panidc: bool) -> tuple[bool, bool] | None:
    if not dmode and not smode:
        return (panidc, False)
    if not smode:
        return (not panidc, False)
    if not dmode:
        return (False, not panidc)
    if dmode == smode == AddrMode.EXTENDED:
        return (not panidc, False)
    return (True, not panidc)


# (dst PAN sent, src PAN sent) by (version 2?, dst mode, src mode, PAN ID compression);
# None where the combination is not defined.
_PAN_LAYOUT: dict[tuple[bool, int, int, bool], tuple[bool, bool] | None] = {
    (v2, d, s, c): (_pan_layout_2015 if v2 else _pan_layout_2006)(d, s, c)
    for v2 in (False, True)
    for d in (0, 2, 3)
    for s in (0, 2, 3)
    for c in (False, True)
}


# --- auxiliary security header -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuxSecurityHeader:
    """The auxiliary security header of a secured frame (framing only, no cryptography).

    The key identifier mode follows from the fields: no ``key_index`` is mode 0 (implicit
    key); a key index alone is mode 1; with a 4- or 8-octet ``key_source`` it is mode 2 or
    3. ``frame_counter=None`` means the counter is suppressed (2015 only), as does
    ``asn_in_nonce`` (TSCH). Level 0 is refused: a secured frame needs a level.
    """

    level: int
    frame_counter: int | None
    key_index: int | None = None
    key_source: bytes = b""
    asn_in_nonce: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.level <= 7:
            raise ValueError(f"security level {self.level} not in 1..7")
        if self.frame_counter is not None and not 0 <= self.frame_counter <= 0xFFFFFFFF:
            raise ValueError(f"frame counter {self.frame_counter} not a 32-bit value")
        if self.key_index is None:
            if self.key_source:
                raise ValueError("a key source needs a key index")
        elif not 0 <= self.key_index <= 0xFF:
            raise ValueError(f"key index {self.key_index} not in 0..255")
        if len(self.key_source) not in (0, 4, 8):
            raise ValueError(f"key source must be 0, 4 or 8 octets, not {len(self.key_source)}")

    @property
    def key_id_mode(self) -> int:
        """Key identifier mode 0..3."""
        if self.key_index is None:
            return 0
        return 1 if not self.key_source else (2 if len(self.key_source) == 4 else 3)

    @property
    def frame_counter_suppressed(self) -> bool:
        return self.frame_counter is None

    @property
    def mic_len(self) -> int:
        """MIC octets at the end of the frame for this level (0, 4, 8 or 16)."""
        return _MIC_LEN[self.level]

    @property
    def encrypted(self) -> bool:
        """True for levels 4-7 (payload encrypted), False for MIC-only levels 1-3."""
        return self.level >= 4

    def to_bytes(self) -> bytes:
        """Security control, frame counter and key identifier in on-air order."""
        sc = (
            self.level
            | self.key_id_mode << 3
            | (self.frame_counter is None) << 5
            | self.asn_in_nonce << 6
        )
        out = bytes([sc])
        if self.frame_counter is not None:
            out += self.frame_counter.to_bytes(4, "little")
        if self.key_index is not None:
            out += self.key_source + bytes([self.key_index])
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> AuxSecurityHeader:
        """Decode exactly one header (2015 bits allowed); :class:`FrameError` if malformed."""
        aux, end = _parse_aux(data, 0, FrameVersion.V2015)
        if end != len(data):
            raise FrameError("octets after the auxiliary security header", end)
        return aux


def _parse_aux(buf: bytes, pos: int, version: int) -> tuple[AuxSecurityHeader, int]:
    if pos >= len(buf):
        raise FrameError("truncated auxiliary security header", pos)
    sc = buf[pos]
    if sc & 0x80:
        raise FrameError("reserved security control bit 7 set", pos)
    if sc & 0x60 and version < 2:
        raise FrameError("frame counter suppression or ASN in nonce before frame version 2", pos)
    level = sc & 7
    if not level:
        raise FrameError("security enabled with security level 0", pos)
    kim = (sc >> 3) & 3
    suppressed = sc & 0x20
    end = pos + 1 + (0 if suppressed else 4) + _KEY_ID_LEN[kim]
    if end > len(buf):
        raise FrameError("truncated auxiliary security header", pos)
    i = pos + 1
    counter = None
    if not suppressed:
        counter = int.from_bytes(buf[i : i + 4], "little")
        i += 4
    key_index = None
    key_source = b""
    if kim:
        key_source = buf[i : end - 1]
        key_index = buf[end - 1]
    aux = _new(AuxSecurityHeader)  # values are in range by construction: no __post_init__
    _set_aux_level(aux, level)
    _set_aux_counter(aux, counter)
    _set_aux_key_index(aux, key_index)
    _set_aux_key_source(aux, key_source)
    _set_aux_asn(aux, bool(sc & 0x40))
    return aux, end


# Fast construction of parsed values. A frozen dataclass's __init__ sets each field through
# object.__setattr__ (and AuxSecurityHeader's __post_init__ then checks ranges that the
# parser's values are in by construction), which costs more than the parse itself. The
# parser fills the slots directly through their descriptors instead: the objects are the
# same (same class and fields, so the same equality, hash, repr and pickling).
_new = object.__new__
_AUX_FIELDS = ("level", "frame_counter", "key_index", "key_source", "asn_in_nonce")
if tuple(f.name for f in fields(AuxSecurityHeader)) != _AUX_FIELDS:  # pragma: no cover
    raise RuntimeError("AuxSecurityHeader fields changed: update _AUX_FIELDS and _parse_aux")
(
    _set_aux_level,
    _set_aux_counter,
    _set_aux_key_index,
    _set_aux_key_source,
    _set_aux_asn,
) = (getattr(AuxSecurityHeader, n).__set__ for n in _AUX_FIELDS)


# --- information elements ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeaderIE:
    """A header IE, kept verbatim: element ID 0..255 (not the terminators 0x7E/0x7F) and
    up to 127 content octets."""

    element_id: int
    content: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.element_id <= 0xFF or self.element_id in (_HT1, _HT2):
            raise ValueError(f"header IE element ID {self.element_id:#x} not allowed")
        if len(self.content) > 0x7F:
            raise ValueError(f"header IE content of {len(self.content)} octets exceeds 127")

    def to_bytes(self) -> bytes:
        """Descriptor (2 octets, little-endian) and content."""
        return (len(self.content) | self.element_id << 7).to_bytes(2, "little") + self.content

    @classmethod
    def from_bytes(cls, data: bytes) -> HeaderIE:
        """Decode exactly one header IE (not a terminator)."""
        ies, end, term = _parse_header_ies(data, 0, len(data))
        if len(ies) != 1 or term is not None or end != len(data):
            raise FrameError("not exactly one header IE", 0)
        return ies[0]


@dataclass(frozen=True, slots=True)
class PayloadIE:
    """A payload IE, kept verbatim: group ID 0..14 (0x1 MLME content holds nested IEs) and
    up to 2047 content octets."""

    group_id: int
    content: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.group_id < _PT:
            raise ValueError(f"payload IE group ID {self.group_id} not in 0..14")
        if len(self.content) > 0x7FF:
            raise ValueError(f"payload IE content of {len(self.content)} octets exceeds 2047")

    def to_bytes(self) -> bytes:
        """Descriptor (2 octets, little-endian) and content."""
        v = len(self.content) | self.group_id << 11 | 0x8000
        return v.to_bytes(2, "little") + self.content

    @classmethod
    def from_bytes(cls, data: bytes) -> PayloadIE:
        """Decode exactly one payload IE (not the terminator)."""
        ies, end = _parse_payload_ies(data, 0)
        if len(ies) != 1 or end != len(data):
            raise FrameError("not exactly one payload IE", 0)
        return ies[0]


class MpxTransferType(IntEnum):
    """MPX IE transfer types (IEEE 802.15.9 Table 19, as in Wireshark); others reserved."""

    FULL_FRAME = 0  # Multiplex ID and the whole upper-layer frame
    FULL_FRAME_NO_MULTIPLEX_ID = 1  # Multiplex ID implied by context ("compressed"; below)
    NON_LAST_FRAGMENT = 2  # Fragment Number; the first (0) also Total Size and Multiplex ID
    LAST_FRAGMENT = 4  # as NON_LAST_FRAGMENT
    ABORT = 6  # optional Total Size, no data


_MPX_FRAGMENTS = (MpxTransferType.NON_LAST_FRAGMENT, MpxTransferType.LAST_FRAGMENT)


@dataclass(frozen=True, slots=True)
class MpxIE:
    """The MPX IE (payload IE group 0x3, IEEE 802.15.9): a typed view of a :class:`PayloadIE`.

    Content: Transaction Control (transfer type in bits 0-2, transaction ID in bits 3-7), then
    by transfer type: Fragment Number (1 octet, fragments only), Total Upper-Layer Frame Size
    (2, little-endian; first fragment, optional in ABORT), Multiplex ID (2, little-endian;
    FULL_FRAME and first fragment), then the upper-layer frame or fragment (``data``).

    Two readings differ between implementations, and this class follows Nanostack
    (``ws_mpx_header.c``) in both. With transfer type 1 (FULL_FRAME_NO_MULTIPLEX_ID), bits
    3-7 are kept as ``transaction_id``; Wireshark 4.0 shows them as a compressed Multiplex
    ID (so 1 reads as KMP there). A LAST_FRAGMENT numbered 0 (a one-fragment transfer) is
    read like a first fragment, with Total Size and Multiplex ID; Wireshark 4.0 reads those
    only in a NON_LAST_FRAGMENT numbered 0.

    Multiplex ID values below 0x0600 are assigned by 802.15.9 (1 = KMP, 2 = Wi-SUN); from
    0x0600 up they are EtherTypes. For KMP frames the first data octet is the KMP ID
    (8 = ETSI TS 102 887-2, SMWAP's own KMP) [src: Wireshark value tables; the placement of the
    KMP ID in the data is from memory of 802.15.9 and not checked here].
    """

    GROUP_ID = 0x3

    transfer_type: MpxTransferType
    transaction_id: int
    multiplex_id: int | None = None
    fragment_number: int | None = None
    total_size: int | None = None
    data: bytes = b""

    def __post_init__(self) -> None:
        tt = self.transfer_type
        if tt not in MpxTransferType.__members__.values():
            raise ValueError(f"reserved MPX transfer type {tt!r}")
        if not 0 <= self.transaction_id <= 31:
            raise ValueError(f"MPX transaction ID {self.transaction_id} not in 0..31")
        first = tt in _MPX_FRAGMENTS and self.fragment_number == 0
        want_mux = tt == MpxTransferType.FULL_FRAME or first
        want_size = first or (tt == MpxTransferType.ABORT and self.total_size is not None)
        if (self.multiplex_id is not None) != want_mux:
            raise ValueError(f"multiplex_id must {'' if want_mux else 'not '}be set for {tt!r}")
        if (self.fragment_number is not None) != (tt in _MPX_FRAGMENTS):
            raise ValueError(f"fragment_number is set exactly for fragments, not {tt!r}")
        if (self.total_size is not None) != want_size:
            raise ValueError(f"total_size must {'' if want_size else 'not '}be set here")
        for name, value, limit in (
            ("multiplex_id", self.multiplex_id, 0xFFFF),
            ("fragment_number", self.fragment_number, 0xFF),
            ("total_size", self.total_size, 0xFFFF),
        ):
            if value is not None and not 0 <= value <= limit:
                raise ValueError(f"MPX {name} {value} not in 0..{limit}")
        if tt == MpxTransferType.ABORT and self.data:
            raise ValueError("an MPX abort carries no data")
        if len(self.content()) > 0x7FF:
            raise ValueError("MPX IE content exceeds 2047 octets")

    @property
    def kmp_id(self) -> int | None:
        """The KMP ID (first data octet) when the Multiplex ID is 1 (KMP), else None."""
        return self.data[0] if self.multiplex_id == 1 and self.data else None

    def content(self) -> bytes:
        """The IE content (without the payload IE descriptor)."""
        out = bytearray([self.transfer_type | self.transaction_id << 3])
        if self.fragment_number is not None:
            out.append(self.fragment_number)
        if self.total_size is not None:
            out += self.total_size.to_bytes(2, "little")
        if self.multiplex_id is not None:
            out += self.multiplex_id.to_bytes(2, "little")
        return bytes(out + self.data)

    def to_payload_ie(self) -> PayloadIE:
        return PayloadIE(self.GROUP_ID, self.content())

    def to_bytes(self) -> bytes:
        """Descriptor and content, as :meth:`PayloadIE.to_bytes`."""
        return self.to_payload_ie().to_bytes()

    @classmethod
    def from_payload_ie(cls, ie: PayloadIE) -> MpxIE:
        """Decode an MPX payload IE. :class:`FrameError` (offsets within the content) if it
        is not group 0x3 or malformed; ``ValueError`` never escapes."""
        if ie.group_id != cls.GROUP_ID:
            raise FrameError(f"payload IE group {ie.group_id:#x} is not MPX (0x3)", 0)
        c = ie.content
        n = len(c)
        if not n:
            raise FrameError("MPX IE without transaction control", 0)
        raw_tt = c[0] & 7
        if raw_tt not in (0, 1, 2, 4, 6):
            raise FrameError(f"reserved MPX transfer type {raw_tt}", 0)
        tt = MpxTransferType(raw_tt)
        tid = c[0] >> 3
        pos = 1
        frag = size = mux = None
        if tt in _MPX_FRAGMENTS:
            if pos >= n:
                raise FrameError("truncated MPX fragment number", pos)
            frag = c[pos]
            pos += 1
        has_size = frag == 0 or (tt == MpxTransferType.ABORT and n > 1)
        if has_size:
            if tt == MpxTransferType.ABORT and n != 3:
                raise FrameError("MPX abort with other than 0 or 2 octets", pos)
            if pos + 2 > n:
                raise FrameError("truncated MPX total size", pos)
            size = c[pos] | c[pos + 1] << 8
            pos += 2
        if tt == MpxTransferType.FULL_FRAME or frag == 0:
            if pos + 2 > n:
                raise FrameError("truncated MPX multiplex ID", pos)
            mux = c[pos] | c[pos + 1] << 8
            pos += 2
        return cls(tt, tid, mux, frag, size, c[pos:])

    @classmethod
    def from_bytes(cls, data: bytes) -> MpxIE:
        """Decode exactly one MPX payload IE (descriptor and content)."""
        return cls.from_payload_ie(PayloadIE.from_bytes(data))


def _parse_header_ies(buf: bytes, pos: int, bound: int) -> tuple[list[HeaderIE], int, int | None]:
    """Header IEs from ``pos`` up to ``bound``: (IEs, end, terminator ID or None)."""
    ies: list[HeaderIE] = []
    while pos < bound:
        if pos + 2 > bound:
            raise FrameError("truncated header IE descriptor", pos)
        d = buf[pos] | buf[pos + 1] << 8
        if d & 0x8000:
            raise FrameError("payload IE without a header termination IE", pos)
        length, eid = d & 0x7F, d >> 7
        if eid in (_HT1, _HT2):
            if length:
                raise FrameError("header termination IE with content", pos)
            return ies, pos + 2, eid
        end = pos + 2 + length
        if end > bound:
            raise FrameError("truncated header IE", pos)
        ies.append(HeaderIE(eid, buf[pos + 2 : end]))
        pos = end
    return ies, pos, None


def _parse_payload_ies(buf: bytes, pos: int) -> tuple[list[PayloadIE], int]:
    """Payload IEs from ``pos`` to the payload termination IE (consumed) or the end."""
    ies: list[PayloadIE] = []
    n = len(buf)
    while pos < n:
        if pos + 2 > n:
            raise FrameError("truncated payload IE descriptor", pos)
        d = buf[pos] | buf[pos + 1] << 8
        if not d & 0x8000:
            raise FrameError("header IE among payload IEs", pos)
        length, gid = d & 0x7FF, (d >> 11) & 0xF
        if gid == _PT:
            if length:
                raise FrameError("payload termination IE with content", pos)
            return ies, pos + 2
        end = pos + 2 + length
        if end > n:
            raise FrameError("truncated payload IE", pos)
        ies.append(PayloadIE(gid, buf[pos + 2 : end]))
        pos = end
    return ies, pos


# --- the frame -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MacFrame:
    """One MAC frame (general format, frame types 0-3), without its FCS.

    * ``seq`` is None when the sequence number is suppressed (version 2 only).
    * ``dst``/``src`` None mean addressing mode NONE; PAN IDs are None when not on the frame,
      except that a compressed source PAN reads as ``dst_pan`` (see the module docstring).
    * ``ie_present`` is the frame-control bit; the builder refuses IEs without it.
    * For a secured frame (``aux`` set), ``payload`` is the secured octets after the header
      IEs (payload IEs, MAC payload, MIC), ``payload_ies`` is empty, and
      ``secured_payload_ies`` is True if those octets begin with payload IEs (HT1 was sent).
    * For MAC commands the command ID is the first payload octet; for beacons the payload
      starts with the superframe specification.
    * Multipurpose frames (``frame_type=FrameType.MULTIPURPOSE``) need ``version=V2015`` and
      ``pan_id_compression=False``; their one PAN ID, if sent, is ``dst_pan``. ``long_fc``
      selects the 2-octet frame control, which anything beyond addresses and a sequence
      number needs. ``long_fc`` must be False for other frame types.

    Fields are checked by :meth:`to_bytes` / :func:`build_mpdu` (``ValueError``), not on
    construction. Every frame the parser returns builds, and parses back equal:
    ``parse(build(f)) == f``. The octets built are the octets received, never longer, but
    for what the frame does not keep:

    * reserved frame control bit 7 set (general layout): it is sent as 0;
    * redundant termination IEs, which the builder leaves out: in an unsecured frame, HT1
      with no payload IE after it (HT1 + payload termination before a MAC payload becomes
      HT2); HT2 with nothing after it (in a secured frame, nothing but the MIC); a payload
      termination IE with no MAC payload after it.

    For a frame made by hand, ``parse(build(f)) == f`` needs ``f`` in the parser's form: a
    source PAN given as None that the frame does not send, with a source address and a
    destination PAN, comes back as ``dst_pan``.
    """

    frame_type: FrameType
    seq: int | None
    dst_pan: int | None = None
    dst: Address | None = None
    src_pan: int | None = None
    src: Address | None = None
    version: FrameVersion = FrameVersion.V2006
    frame_pending: bool = False
    ack_request: bool = False
    pan_id_compression: bool = False
    ie_present: bool = False
    aux: AuxSecurityHeader | None = None
    header_ies: tuple[HeaderIE, ...] = ()
    payload_ies: tuple[PayloadIE, ...] = ()
    payload: bytes = b""
    secured_payload_ies: bool = False
    long_fc: bool = False

    @property
    def security_enabled(self) -> bool:
        return self.aux is not None

    @property
    def frame_control(self) -> FrameControl:
        """The frame control field this frame is sent with (general layout only: a
        multipurpose frame raises ``ValueError``, see :func:`_mp_fc` for its layout)."""
        if self.frame_type == FrameType.MULTIPURPOSE:
            raise ValueError("multipurpose frames have their own frame control layout")
        return FrameControl(
            self.frame_type,
            self.aux is not None,
            self.frame_pending,
            self.ack_request,
            self.pan_id_compression,
            self.seq is None,
            self.ie_present,
            self.dst.mode if self.dst else AddrMode.NONE,
            self.version,
            self.src.mode if self.src else AddrMode.NONE,
        )

    @classmethod
    def data(
        cls,
        *,
        src: Address | None,
        dst: Address | None,
        dst_pan: int | None,
        seq: int | None,
        payload: bytes = b"",
        src_pan: int | None = None,
        ack_request: bool = False,
        frame_pending: bool = False,
        version: FrameVersion = FrameVersion.V2006,
        aux: AuxSecurityHeader | None = None,
        header_ies: tuple[HeaderIE, ...] = (),
        payload_ies: tuple[PayloadIE, ...] = (),
        frame_type: FrameType = FrameType.DATA,
    ) -> MacFrame:
        """A frame with PAN ID Compression chosen to fit the PAN IDs given (compressed when
        possible) and ``ie_present`` set when there are IEs. ``src_pan=None`` means "same
        as ``dst_pan``". Also usable for beacons and commands via ``frame_type``."""
        dmode = dst.mode if dst else 0
        smode = src.mode if src else 0
        for panidc in (True, False):
            layout = _PAN_LAYOUT[(version >= 2, dmode, smode, panidc)]
            if layout is None:
                continue
            d_sent, s_sent = layout
            if d_sent != (dst_pan is not None):
                continue
            if s_sent:
                if src_pan is None and dst_pan is None:
                    continue
                span = dst_pan if src_pan is None else src_pan
            else:
                if src_pan is not None and src_pan != dst_pan:
                    continue
                span = dst_pan if (src is not None and d_sent) else None
            return cls(
                frame_type,
                seq,
                dst_pan,
                dst,
                span,
                src,
                version,
                frame_pending,
                ack_request,
                panidc,
                bool(header_ies or payload_ies),
                aux,
                header_ies,
                payload_ies,
                payload,
            )
        raise ValueError(
            f"PAN IDs dst={dst_pan!r} src={src_pan!r} cannot be sent with these addresses "
            f"in a {version.name} frame"
        )

    @classmethod
    def ack(
        cls, seq: int, *, frame_pending: bool = False, version: FrameVersion = FrameVersion.V2006
    ) -> MacFrame:
        """An Imm-Ack: frame control and sequence number only."""
        return cls(FrameType.ACK, seq, version=version, frame_pending=frame_pending)

    @classmethod
    def multipurpose(
        cls,
        *,
        src: Address | None,
        dst: Address | None,
        pan: int | None,
        seq: int | None,
        payload: bytes = b"",
        ack_request: bool = False,
        frame_pending: bool = False,
        aux: AuxSecurityHeader | None = None,
        header_ies: tuple[HeaderIE, ...] = (),
        payload_ies: tuple[PayloadIE, ...] = (),
    ) -> MacFrame:
        """A multipurpose frame, with the short frame control when the fields allow it."""
        long_fc = bool(
            pan is not None
            or seq is None
            or ack_request
            or frame_pending
            or aux
            or header_ies
            or payload_ies
        )
        return cls(
            FrameType.MULTIPURPOSE,
            seq,
            pan,
            dst,
            pan if (pan is not None and src is not None) else None,
            src,
            FrameVersion.V2015,
            frame_pending,
            ack_request,
            False,
            bool(header_ies or payload_ies),
            aux,
            header_ies,
            payload_ies,
            payload,
            False,
            long_fc,
        )

    def to_bytes(self) -> bytes:
        """MHR + payload IEs + payload, without FCS. ``ValueError`` if fields contradict."""
        return _build(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> MacFrame:
        """Same as :func:`parse_mpdu_unchecked`."""
        return parse_mpdu_unchecked(data)


def _build(f: MacFrame) -> bytes:
    ftype, version = f.frame_type, f.version
    if ftype == FrameType.MULTIPURPOSE:
        out = _build_mp_header(f)
    elif ftype in _SUPPORTED_TYPES:
        out = _build_general_header(f)
    else:
        raise ValueError(f"frame type {ftype!r} not supported")
    v2 = version >= 2
    aux = f.aux
    mic_len = 0
    if aux is not None:
        if not v2 and (aux.frame_counter is None or aux.asn_in_nonce):
            raise ValueError("frame counter suppression and ASN in nonce need frame version 2")
        if f.payload_ies:
            raise ValueError("a secured frame carries its payload IEs inside its secured payload")
        mic_len = aux.mic_len
        if len(f.payload) < mic_len:
            raise ValueError(f"secured payload shorter than its {mic_len}-octet MIC")
        out += aux.to_bytes()
    elif f.secured_payload_ies:
        raise ValueError("secured_payload_ies needs an auxiliary security header")

    if f.ie_present:
        for hie in f.header_ies:
            out += hie.to_bytes()
        if aux is None:
            if f.payload_ies:
                out += _HT1_OCTETS
                for pie in f.payload_ies:
                    out += pie.to_bytes()
                if f.payload:
                    out += _PT_OCTETS
            elif f.payload:
                out += _HT2_OCTETS
        elif f.secured_payload_ies:
            out += _HT1_OCTETS
        elif len(f.payload) > mic_len:
            out += _HT2_OCTETS
    elif f.header_ies or f.payload_ies or f.secured_payload_ies:
        raise ValueError("IEs need ie_present=True")
    out += f.payload
    return bytes(out)


def _build_general_header(f: MacFrame) -> bytearray:
    """Frame control, sequence number, PAN IDs and addresses of a frame of type 0-3."""
    version = f.version
    if version not in _VERSIONS:
        raise ValueError(f"frame version {version!r} not supported")
    if f.long_fc:
        raise ValueError("long_fc is only for multipurpose frames")
    v2 = version >= 2
    dmode = f.dst.mode if f.dst else 0
    smode = f.src.mode if f.src else 0
    fc = (
        f.frame_type
        | (f.aux is not None) << 3
        | f.frame_pending << 4
        | f.ack_request << 5
        | f.pan_id_compression << 6
        | (f.seq is None) << 8
        | f.ie_present << 9
        | dmode << 10
        | version << 12
        | smode << 14
    )
    if f.aux is not None and version == 0:
        raise ValueError("2003 security (frame version 0) is not supported")
    if f.ie_present and not v2:
        raise ValueError("IEs need frame version 2")
    out = bytearray(fc.to_bytes(2, "little"))
    _put_seq(out, f.seq, v2)

    layout = _PAN_LAYOUT[(v2, dmode, smode, f.pan_id_compression)]
    if layout is None:
        raise ValueError("PAN ID compression needs both addresses in a 2003/2006 frame")
    _put_addressing(out, f, *layout)
    return out


def _mp_fc(f: MacFrame) -> int:
    """The multipurpose frame control value (1 or 2 octets: see the module docstring)."""
    dmode = f.dst.mode if f.dst else 0
    smode = f.src.mode if f.src else 0
    return (
        FrameType.MULTIPURPOSE
        | f.long_fc << 3
        | dmode << 4
        | smode << 6
        | (f.dst_pan is not None) << 8
        | (f.aux is not None) << 9
        | (f.seq is None) << 10
        | f.frame_pending << 11
        | f.ack_request << 14
        | f.ie_present << 15
    )


def _build_mp_header(f: MacFrame) -> bytearray:
    if f.version != FrameVersion.V2015:
        raise ValueError("multipurpose frames are a 2015 format: version must be V2015")
    if f.pan_id_compression:
        raise ValueError("multipurpose frames have no PAN ID Compression bit")
    fc = _mp_fc(f)
    if fc > 0xFF and not f.long_fc:
        raise ValueError(
            "a PAN ID, security, IEs, a suppressed sequence number, AR or frame pending "
            "need the long multipurpose frame control (long_fc=True)"
        )
    out = bytearray(fc.to_bytes(2 if f.long_fc else 1, "little"))
    _put_seq(out, f.seq, True)
    _put_addressing(out, f, f.dst_pan is not None, False)
    return out


def _put_seq(out: bytearray, seq: int | None, v2: bool) -> None:
    if seq is None:
        if not v2:
            raise ValueError("sequence number suppression needs frame version 2")
    else:
        if not 0 <= seq <= 0xFF:
            raise ValueError(f"sequence number {seq} not in 0..255")
        out.append(seq)


def _put_addressing(out: bytearray, f: MacFrame, d_sent: bool, s_sent: bool) -> None:
    if d_sent:
        if f.dst_pan is None:
            raise ValueError("this frame sends the destination PAN ID: dst_pan is needed")
        out += _pan_octets(f.dst_pan)
    elif f.dst_pan is not None:
        raise ValueError("this frame does not send a destination PAN ID: dst_pan must be None")
    if f.dst is not None:
        out += f.dst.to_bytes()
    if s_sent:
        if f.src_pan is None:
            raise ValueError("this frame sends the source PAN ID: src_pan is needed")
        out += _pan_octets(f.src_pan)
    elif f.src_pan is not None and not (f.src is not None and d_sent and f.src_pan == f.dst_pan):
        raise ValueError(
            "this frame does not send a source PAN ID: src_pan must be None "
            "(or equal dst_pan when compressed)"
        )
    if f.src is not None:
        out += f.src.to_bytes()


def _pan_octets(pan: int) -> bytes:
    if not 0 <= pan <= 0xFFFF:
        raise ValueError(f"PAN ID {pan} not in 0..0xFFFF")
    return pan.to_bytes(2, "little")


def build_mpdu(frame: MacFrame, fcs_len: int = 4) -> bytes:
    """The MPDU: MHR + payload + FCS (2 or 4 octets). ``ValueError`` if fields contradict."""
    body = _build(frame)
    return body + compute_fcs(body, fcs_len)


# --- fast construction of parsed frames (see _new above) -------------------------------------

_MACFRAME_FIELDS = (
    "frame_type",
    "seq",
    "dst_pan",
    "dst",
    "src_pan",
    "src",
    "version",
    "frame_pending",
    "ack_request",
    "pan_id_compression",
    "ie_present",
    "aux",
    "header_ies",
    "payload_ies",
    "payload",
    "secured_payload_ies",
    "long_fc",
)
if tuple(f.name for f in fields(MacFrame)) != _MACFRAME_FIELDS:  # pragma: no cover
    raise RuntimeError("MacFrame fields changed: update _MACFRAME_FIELDS and _new_frame")
(
    _set_frame_type,
    _set_seq,
    _set_dst_pan,
    _set_dst,
    _set_src_pan,
    _set_src,
    _set_version,
    _set_frame_pending,
    _set_ack_request,
    _set_pan_id_compression,
    _set_ie_present,
    _set_aux,
    _set_header_ies,
    _set_payload_ies,
    _set_payload,
    _set_secured_payload_ies,
    _set_long_fc,
) = (getattr(MacFrame, n).__set__ for n in _MACFRAME_FIELDS)


def _new_frame(
    frame_type: FrameType,
    seq: int | None,
    dst_pan: int | None,
    dst: Address | None,
    src_pan: int | None,
    src: Address | None,
    version: FrameVersion,
    frame_pending: bool,
    ack_request: bool,
    pan_id_compression: bool,
    ie_present: bool,
    aux: AuxSecurityHeader | None,
    header_ies: tuple[HeaderIE, ...],
    payload_ies: tuple[PayloadIE, ...],
    payload: bytes,
    secured_payload_ies: bool,
    long_fc: bool = False,
) -> MacFrame:
    """``MacFrame(...)`` with every field given, about twice as fast (parser only)."""
    f: MacFrame = _new(MacFrame)
    _set_frame_type(f, frame_type)
    _set_seq(f, seq)
    _set_dst_pan(f, dst_pan)
    _set_dst(f, dst)
    _set_src_pan(f, src_pan)
    _set_src(f, src)
    _set_version(f, version)
    _set_frame_pending(f, frame_pending)
    _set_ack_request(f, ack_request)
    _set_pan_id_compression(f, pan_id_compression)
    _set_ie_present(f, ie_present)
    _set_aux(f, aux)
    _set_header_ies(f, header_ies)
    _set_payload_ies(f, payload_ies)
    _set_payload(f, payload)
    _set_secured_payload_ies(f, secured_payload_ies)
    _set_long_fc(f, long_fc)
    return f


# Addresses repeat (a display hears a few meters), and Address is immutable, so parsed ones
# are shared: keyed by their 2 or 8 on-air octets. Bounded: emptied when full, so random
# frames cannot grow it.
_ADDR_CACHE: dict[bytes, Address] = {}
_ADDR_CACHE_MAX = 256


def _address(octets: bytes) -> Address:
    """The address for 2 (short) or 8 (extended) on-air octets; ``Address.from_bytes``."""
    if type(octets) is not bytes:  # a bytearray or memoryview slice is not a usable key
        octets = bytes(octets)
    a = _ADDR_CACHE.get(octets)
    if a is None:
        if len(_ADDR_CACHE) >= _ADDR_CACHE_MAX:
            _ADDR_CACHE.clear()
        mode = AddrMode.SHORT if len(octets) == 2 else AddrMode.EXTENDED
        a = _ADDR_CACHE[octets] = Address(mode, int.from_bytes(octets, "little"))
    return a


def parse_mpdu(mpdu: bytes, fcs_len: int) -> MacFrame:
    """Check the FCS, then parse. Raises only :class:`FrameError` for bad octets
    (``ValueError`` if ``fcs_len`` is not 2 or 4)."""
    n = len(mpdu)
    if fcs_len == 4:
        ok = n >= 4 and binascii.crc32(mpdu) == 0x2144DF1C
    elif fcs_len == 2:
        ok = n >= 2 and crc16_kermit(mpdu) == 0
    else:
        raise ValueError(f"fcs_len must be 2 or 4, not {fcs_len!r}")
    if not ok:
        if n < fcs_len:
            raise FrameError(f"frame shorter than its {fcs_len}-octet FCS", 0)
        raise FrameError("bad FCS", n - fcs_len)
    return parse_mpdu_unchecked(mpdu[:-fcs_len])


def parse_mpdu_unchecked(mpdu: bytes) -> MacFrame:
    """Parse an MPDU whose FCS was already checked and removed. Raises only
    :class:`FrameError`."""
    n = len(mpdu)
    if n < 2:
        if n and mpdu[0] & 0x0F == FrameType.MULTIPURPOSE:  # short form, no sequence number
            raise FrameError("truncated sequence number", 1)
        raise FrameError("truncated frame control", 0)
    fc = mpdu[0] | mpdu[1] << 8
    ftype, dmode, version, smode = fc & 7, (fc >> 10) & 3, (fc >> 12) & 3, fc >> 14
    if ftype > 3 or version == 3 or dmode == 1 or smode == 1:
        if ftype == FrameType.MULTIPURPOSE:
            return _parse_multipurpose(mpdu)
        _check_fc(ftype, dmode, version, smode)
    if version < 2 and fc & 0x308:
        if fc & 0x100:
            raise FrameError("sequence number suppression before frame version 2", 1)
        if fc & 0x200:
            raise FrameError("IE present before frame version 2", 1)
        if not version:
            raise FrameError("2003 security (frame version 0) not supported", 0)

    if fc & 0x100:
        seq = None
        pos = 2
    else:
        if n < 3:
            raise FrameError("truncated sequence number", 2)
        seq = mpdu[2]
        pos = 3

    panidc = bool(fc & 0x40)
    layout = _PAN_LAYOUT[(version == 2, dmode, smode, panidc)]
    if layout is None:
        raise FrameError("PAN ID compression with fewer than two addresses", 0)
    d_sent, s_sent = layout
    dst_pan = src_pan = None
    dst = src = None
    if d_sent:
        if pos + 2 > n:
            raise FrameError("truncated destination PAN ID", pos)
        dst_pan = mpdu[pos] | mpdu[pos + 1] << 8
        pos += 2
    if dmode:
        end = pos + _ADDR_LEN[dmode]
        if end > n:
            raise FrameError("truncated destination address", pos)
        dst = _address(mpdu[pos:end])
        pos = end
    if s_sent:
        if pos + 2 > n:
            raise FrameError("truncated source PAN ID", pos)
        src_pan = mpdu[pos] | mpdu[pos + 1] << 8
        pos += 2
    if smode:
        end = pos + _ADDR_LEN[smode]
        if end > n:
            raise FrameError("truncated source address", pos)
        src = _address(mpdu[pos:end])
        pos = end
        if not s_sent:
            src_pan = dst_pan

    aux = None
    bound = n
    if fc & 0x08:
        aux, pos = _parse_aux(mpdu, pos, version)
        bound = n - _MIC_LEN[aux.level]
        if bound < pos:
            raise FrameError(f"frame shorter than its {_MIC_LEN[aux.level]}-octet MIC", pos)

    header_ies: tuple[HeaderIE, ...] = ()
    payload_ies: tuple[PayloadIE, ...] = ()
    secured_pies = False
    ie_present = bool(fc & 0x200)
    if ie_present:
        hies, pos, term = _parse_header_ies(mpdu, pos, bound)
        header_ies = tuple(hies)
        if aux is not None:
            secured_pies = term == _HT1
        elif term == _HT1:
            pies, pos = _parse_payload_ies(mpdu, pos)
            payload_ies = tuple(pies)

    return _new_frame(
        _SUPPORTED_TYPES[ftype],
        seq,
        dst_pan,
        dst,
        src_pan,
        src,
        _VERSIONS[version],
        bool(fc & 0x10),
        bool(fc & 0x20),
        panidc,
        ie_present,
        aux,
        header_ies,
        payload_ies,
        mpdu[pos:],
        secured_pies,
    )


def _parse_multipurpose(mpdu: bytes) -> MacFrame:
    """A multipurpose frame (type 5): the 1- or 2-octet frame control, then the general
    layout with at most one PAN ID (see the module docstring)."""
    n = len(mpdu)
    fc = mpdu[0]
    long_fc = bool(fc & 0x08)
    dmode, smode = (fc >> 4) & 3, fc >> 6
    if dmode == 1:
        raise FrameError("reserved destination addressing mode 1", 0)
    if smode == 1:
        raise FrameError("reserved source addressing mode 1", 0)
    pos = 1
    if long_fc:
        fc |= mpdu[1] << 8  # the caller saw at least 2 octets
        pos = 2
        if fc & 0x3000:
            raise FrameError(f"reserved multipurpose frame version {(fc >> 12) & 3}", 1)
    if fc & 0x400:
        seq = None
    else:
        if pos >= n:
            raise FrameError("truncated sequence number", pos)
        seq = mpdu[pos]
        pos += 1
    pan = src_pan = None
    dst = src = None
    if fc & 0x100:
        if pos + 2 > n:
            raise FrameError("truncated PAN ID", pos)
        pan = mpdu[pos] | mpdu[pos + 1] << 8
        pos += 2
    if dmode:
        end = pos + _ADDR_LEN[dmode]
        if end > n:
            raise FrameError("truncated destination address", pos)
        dst = _address(mpdu[pos:end])
        pos = end
    if smode:
        end = pos + _ADDR_LEN[smode]
        if end > n:
            raise FrameError("truncated source address", pos)
        src = _address(mpdu[pos:end])
        pos = end
        src_pan = pan

    aux = None
    bound = n
    if fc & 0x200:
        aux, pos = _parse_aux(mpdu, pos, 2)
        bound = n - _MIC_LEN[aux.level]
        if bound < pos:
            raise FrameError(f"frame shorter than its {_MIC_LEN[aux.level]}-octet MIC", pos)
    header_ies: tuple[HeaderIE, ...] = ()
    payload_ies: tuple[PayloadIE, ...] = ()
    secured_pies = False
    ie_present = bool(fc & 0x8000)
    if ie_present:
        hies, pos, term = _parse_header_ies(mpdu, pos, bound)
        header_ies = tuple(hies)
        if aux is not None:
            secured_pies = term == _HT1
        elif term == _HT1:
            pies, pos = _parse_payload_ies(mpdu, pos)
            payload_ies = tuple(pies)
    return _new_frame(
        FrameType.MULTIPURPOSE,
        seq,
        pan,
        dst,
        src_pan,
        src,
        FrameVersion.V2015,
        bool(fc & 0x800),
        bool(fc & 0x4000),
        False,
        ie_present,
        aux,
        header_ies,
        payload_ies,
        mpdu[pos:],
        secured_pies,
        long_fc,
    )
