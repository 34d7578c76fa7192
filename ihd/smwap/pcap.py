"""Classic pcap files of 802.15.4 frames, written and read sans I/O (the file is the caller's).

Why by hand: the classic pcap format is a 24-octet file header and a 16-octet header per
record, so a library (scapy, dpkt, python-pcapng) would bring far more than it saves, and
most of them do I/O of their own. Captures are for Wireshark/tshark and for our own tools
and tests, so only what those need is here: classic pcap (not pcapng), written
little-endian, with microsecond or nanosecond timestamps; the reader also takes big-endian
files.

Link types (https://www.tcpdump.org/linktypes.html):

* 283 ``LINKTYPE_IEEE802_15_4_TAP`` (the default): a TAP header with TLVs, then the MPDU
  with its FCS. The FCS-type TLV says per frame whether the FCS is 2 or 4 octets, so one
  capture can hold both, and further TLVs carry the RSSI and the channel. Header layout
  (https://github.com/jkcko/ieee802.15.4-tap): version 0 (u8), reserved 0 (u8), the whole
  TAP header's length in octets (u16), then TLVs: type (u16), length of the value (u16),
  value, zero-padded to a multiple of 4 octets. Little-endian throughout. TLV types used
  here, as Wireshark's ``packet-ieee802154.c`` numbers them: 0 FCS type (u8: 0 none,
  1 16-bit, 2 32-bit), 1 RSS (float32 dBm), 3 channel assignment (u16 channel, u8 page),
  10 LQI (u8).
* 195 ``LINKTYPE_IEEE802_15_4_WITHFCS``: the bare MPDU with its FCS. The file cannot say
  how long the FCS is (Wireshark assumes 2 octets unless ``-o wpan.fcs_format`` says
  otherwise), so a writer of this type refuses to mix FCS lengths.
* 230 ``LINKTYPE_IEEE802_15_4_NOFCS``: read only; the MPDU without an FCS.

For SUN PHYs the channel page is 9 (IEEE 802.15.4-2015, 10.1.3) [mem]; ``write`` takes
another one if needed.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "LINKTYPE_IEEE802_15_4_NOFCS",
    "LINKTYPE_IEEE802_15_4_TAP",
    "LINKTYPE_IEEE802_15_4_WITHFCS",
    "SUN_CHANNEL_PAGE",
    "PcapError",
    "PcapHeader",
    "PcapRecord",
    "PcapWriter",
    "parse_tap",
    "read_header",
    "read_pcap",
    "tap_header",
]

LINKTYPE_IEEE802_15_4_WITHFCS = 195
LINKTYPE_IEEE802_15_4_NOFCS = 230
LINKTYPE_IEEE802_15_4_TAP = 283

SUN_CHANNEL_PAGE = 9

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
VERSION = (2, 4)
DEFAULT_SNAPLEN = 65535

# TAP TLV types (Wireshark packet-ieee802154.c, ieee802154_info_type_t).
TLV_FCS_TYPE = 0
TLV_RSS = 1
TLV_BIT_RATE = 2
TLV_CHANNEL_ASSIGNMENT = 3
TLV_SUN_PHY_INFO = 4
TLV_LQI = 10

_FCS_TYPE_BY_LEN = {0: 0, 2: 1, 4: 2}
_FCS_LEN_BY_TYPE = {v: k for k, v in _FCS_TYPE_BY_LEN.items()}

_FILE_HEADER = struct.Struct("<IHHiIII")  # magic, major, minor, thiszone, sigfigs, snap, link
_RECORD_HEADER = struct.Struct("<IIII")  # ts_sec, ts_frac, incl_len, orig_len


class PcapError(ValueError):
    """Octets that are not a pcap file (or a TAP header) this module can read."""


@dataclass(frozen=True, slots=True)
class PcapHeader:
    """The pcap file header."""

    linktype: int
    snaplen: int = DEFAULT_SNAPLEN
    nanosecond: bool = False
    version: tuple[int, int] = VERSION
    big_endian: bool = False

    def to_bytes(self) -> bytes:
        """The 24 octets, little-endian."""
        magic = MAGIC_NSEC if self.nanosecond else MAGIC_USEC
        return _FILE_HEADER.pack(magic, *self.version, 0, 0, self.snaplen, self.linktype)


@dataclass(frozen=True, slots=True)
class PcapRecord:
    """One captured frame.

    ``data`` is the record as stored (TAP header included for link type 283); ``mpdu`` is
    the MPDU with its FCS (without one for link type 230, or a TAP FCS type of none).
    ``fcs_len`` is 0, 2 or 4 when the capture says so (TAP, or 0 for link type 230) and None
    for link type 195, which does not. ``rssi_dbm``, ``channel``, ``page`` and ``lqi`` come
    from TAP TLVs, None when absent. ``ts_sec``/``ts_frac`` are the stored time stamp
    (``ts_frac`` in micro- or nanoseconds, per the file), ``timestamp`` the same as a float.
    """

    timestamp: float
    ts_sec: int
    ts_frac: int
    data: bytes
    orig_len: int
    linktype: int
    mpdu: bytes
    fcs_len: int | None
    rssi_dbm: float | None = None
    channel: int | None = None
    page: int | None = None
    lqi: int | None = None


# --- TAP header ----------------------------------------------------------------------------


def _tlv(tlv_type: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return struct.pack("<HH", tlv_type, len(value)) + value + b"\0" * pad


def tap_header(
    *,
    fcs_len: int,
    rssi_dbm: float | None = None,
    channel: int | None = None,
    page: int = SUN_CHANNEL_PAGE,
    lqi: int | None = None,
) -> bytes:
    """The TAP header (with its TLVs) that goes before an MPDU in a link type 283 record."""
    if fcs_len not in _FCS_TYPE_BY_LEN:
        raise ValueError(f"fcs_len must be 0, 2 or 4, not {fcs_len!r}")
    tlvs = _tlv(TLV_FCS_TYPE, bytes([_FCS_TYPE_BY_LEN[fcs_len]]))
    if rssi_dbm is not None:
        if not math.isfinite(rssi_dbm):
            raise ValueError(f"rssi_dbm must be finite, not {rssi_dbm!r}")
        tlvs += _tlv(TLV_RSS, struct.pack("<f", rssi_dbm))
    if channel is not None:
        if not 0 <= channel <= 0xFFFF or not 0 <= page <= 0xFF:
            raise ValueError(f"channel {channel} / page {page} out of range")
        tlvs += _tlv(TLV_CHANNEL_ASSIGNMENT, struct.pack("<HB", channel, page))
    if lqi is not None:
        if not 0 <= lqi <= 0xFF:
            raise ValueError(f"lqi {lqi} not in 0..255")
        tlvs += _tlv(TLV_LQI, bytes([lqi]))
    return struct.pack("<BBH", 0, 0, 4 + len(tlvs)) + tlvs


@dataclass(frozen=True, slots=True)
class _Tap:
    mpdu: bytes
    fcs_len: int | None
    rssi_dbm: float | None
    channel: int | None
    page: int | None
    lqi: int | None


def parse_tap(data: bytes) -> tuple[bytes, dict[int, bytes]]:
    """Split a link type 283 record into (MPDU, {TLV type: value}); :class:`PcapError` if
    the TAP header is malformed."""
    if len(data) < 4:
        raise PcapError("truncated TAP header")
    version, _reserved, length = struct.unpack_from("<BBH", data)
    if version != 0:
        raise PcapError(f"TAP version {version} not supported")
    if length < 4 or length > len(data) or length % 4:
        raise PcapError(f"TAP header length {length} does not fit the record")
    tlvs: dict[int, bytes] = {}
    pos = 4
    while pos < length:
        if pos + 4 > length:
            raise PcapError("truncated TAP TLV")
        t, n = struct.unpack_from("<HH", data, pos)
        end = pos + 4 + n
        if end > length:
            raise PcapError(f"TAP TLV {t} runs past the header")
        tlvs[t] = data[pos + 4 : end]
        pos = end + (-n % 4)
    return data[length:], tlvs


def _read_tap(data: bytes) -> _Tap:
    mpdu, tlvs = parse_tap(data)
    fcs_len = rssi = channel = page = lqi = None
    if (v := tlvs.get(TLV_FCS_TYPE)) is not None:
        if len(v) != 1 or v[0] not in _FCS_LEN_BY_TYPE:
            raise PcapError(f"bad TAP FCS type {v.hex()}")
        fcs_len = _FCS_LEN_BY_TYPE[v[0]]
    if (v := tlvs.get(TLV_RSS)) is not None:
        if len(v) != 4:
            raise PcapError("bad TAP RSS length")
        rssi = float(struct.unpack("<f", v)[0])
    if (v := tlvs.get(TLV_CHANNEL_ASSIGNMENT)) is not None:
        if len(v) != 3:
            raise PcapError("bad TAP channel assignment length")
        channel, page = struct.unpack("<HB", v)
    if (v := tlvs.get(TLV_LQI)) is not None:
        if len(v) != 1:
            raise PcapError("bad TAP LQI length")
        lqi = v[0]
    return _Tap(mpdu, fcs_len, rssi, channel, page, lqi)


# --- writer --------------------------------------------------------------------------------


class PcapWriter:
    """Writes a classic pcap file to a binary file object the caller opened (and closes).

    The file header is written at once. ``write`` adds one frame; it does not flush.
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        linktype: int = LINKTYPE_IEEE802_15_4_TAP,
        *,
        nanosecond: bool = False,
        snaplen: int = DEFAULT_SNAPLEN,
    ) -> None:
        if linktype not in (LINKTYPE_IEEE802_15_4_TAP, LINKTYPE_IEEE802_15_4_WITHFCS):
            raise ValueError(f"link type {linktype} not supported for writing (195 or 283)")
        self._f = fileobj
        self.header = PcapHeader(linktype, snaplen, nanosecond)
        self._scale = 1_000_000_000 if nanosecond else 1_000_000
        self._fcs_len: int | None = None  # link type 195: the one FCS length of the file
        self.frames = 0
        fileobj.write(self.header.to_bytes())

    @property
    def linktype(self) -> int:
        return self.header.linktype

    def write(
        self,
        timestamp: float,
        mpdu_with_fcs: bytes,
        *,
        fcs_len: int,
        rssi_dbm: float | None = None,
        channel: int | None = None,
        page: int = SUN_CHANNEL_PAGE,
        lqi: int | None = None,
    ) -> None:
        """Add one frame received at ``timestamp`` (POSIX seconds). For link type 195,
        ``rssi_dbm``, ``channel`` and ``lqi`` are not recorded, and every frame must have
        the same ``fcs_len``."""
        if fcs_len not in (2, 4):
            raise ValueError(f"fcs_len must be 2 or 4, not {fcs_len!r}")
        if not math.isfinite(timestamp) or timestamp < 0:
            raise ValueError(f"timestamp must be finite and not negative, not {timestamp!r}")
        if self.linktype == LINKTYPE_IEEE802_15_4_TAP:
            data = (
                tap_header(fcs_len=fcs_len, rssi_dbm=rssi_dbm, channel=channel, page=page, lqi=lqi)
                + mpdu_with_fcs
            )
        else:
            if self._fcs_len is None:
                self._fcs_len = fcs_len
            elif fcs_len != self._fcs_len:
                raise ValueError(
                    f"link type 195 cannot mix FCS lengths ({self._fcs_len} then {fcs_len}): "
                    "use link type 283 (TAP)"
                )
            data = bytes(mpdu_with_fcs)
        sec = math.floor(timestamp)
        frac = round((timestamp - sec) * self._scale)
        if frac >= self._scale:
            sec, frac = sec + 1, frac - self._scale
        if sec > 0xFFFFFFFF:
            raise ValueError(f"timestamp {timestamp} does not fit a pcap record")
        incl = data[: self.header.snaplen]
        self._f.write(_RECORD_HEADER.pack(sec, frac, len(incl), len(data)) + incl)
        self.frames += 1


# --- reader --------------------------------------------------------------------------------


def _read_exact(f: BinaryIO, n: int, what: str, *, eof_ok: bool = False) -> bytes | None:
    data = f.read(n)
    if len(data) == n:
        return bytes(data)
    if eof_ok and not data:
        return None
    raise PcapError(f"truncated {what} ({len(data)} of {n} octets)")


def read_header(fileobj: BinaryIO) -> PcapHeader:
    """Read and check the 24-octet file header."""
    raw = _read_exact(fileobj, 24, "pcap file header")
    assert raw is not None
    (magic_le,) = struct.unpack_from("<I", raw)
    (magic_be,) = struct.unpack_from(">I", raw)
    for magic, big in ((magic_le, False), (magic_be, True)):
        if magic in (MAGIC_USEC, MAGIC_NSEC):
            fmt = ">IHHiIII" if big else "<IHHiIII"
            _, major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(fmt, raw)
            return PcapHeader(
                linktype & 0x0FFFFFFF, snaplen, magic == MAGIC_NSEC, (major, minor), big
            )
    if raw[:4] == b"\x0a\x0d\x0d\x0a":
        raise PcapError("this is a pcapng file; only classic pcap is supported")
    raise PcapError(f"not a pcap file (magic {raw[:4].hex()})")


def read_pcap(fileobj: BinaryIO) -> Iterator[PcapRecord]:
    """The records of a classic pcap file, in file order. Raises :class:`PcapError` for a
    malformed file (a truncated last record included)."""
    header = read_header(fileobj)
    rec = struct.Struct(">IIII" if header.big_endian else "<IIII")
    scale = 1e9 if header.nanosecond else 1e6
    while True:
        raw = _read_exact(fileobj, 16, "record header", eof_ok=True)
        if raw is None:
            return
        sec, frac, incl, orig = rec.unpack(raw)
        if incl > max(header.snaplen, 0x40000):
            raise PcapError(f"record of {incl} octets is larger than the snap length")
        data = _read_exact(fileobj, incl, "record")
        assert data is not None
        ts = sec + frac / scale
        lt = header.linktype
        if lt == LINKTYPE_IEEE802_15_4_TAP:
            tap = _read_tap(data)
            yield PcapRecord(
                ts,
                sec,
                frac,
                data,
                orig,
                lt,
                tap.mpdu,
                tap.fcs_len,
                tap.rssi_dbm,
                tap.channel,
                tap.page,
                tap.lqi,
            )
        else:
            fcs_len = 0 if lt == LINKTYPE_IEEE802_15_4_NOFCS else None
            yield PcapRecord(ts, sec, frac, data, orig, lt, data, fcs_len)
