"""pcap writer and reader: the octets typed out from the format, round trips, refusals.

Classic pcap (https://www.tcpdump.org/manpages/pcap-savefile.5.html), little-endian:
file header = magic a1b2c3d4 (µs) or a1b23c4d (ns) | version 2.4 | thiszone 0 | sigfigs 0 |
snaplen | link type; record header = ts_sec | ts_usec or ts_nsec | incl_len | orig_len.
802.15.4 TAP (link type 283): version 0 | reserved 0 | header length (u16) | TLVs of type
(u16), length (u16), value padded to 4 octets: 0 FCS type (1 = 16-bit, 2 = 32-bit), 1 RSS
(float32 dBm), 3 channel assignment (u16 channel, u8 page), 10 LQI (u8).
"""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ihd.smwap import MacFrame, compute_fcs
from ihd.smwap.pcap import (
    LINKTYPE_IEEE802_15_4_NOFCS,
    LINKTYPE_IEEE802_15_4_TAP,
    LINKTYPE_IEEE802_15_4_WITHFCS,
    PcapError,
    PcapWriter,
    parse_tap,
    read_header,
    read_pcap,
    tap_header,
)

ACK = MacFrame.ack(0x6A).to_bytes()  # 02 10 6A
ACK_FCS2 = ACK + compute_fcs(ACK, 2)
ACK_FCS4 = ACK + compute_fcs(ACK, 4)


def test_file_header_octets() -> None:
    buf = io.BytesIO()
    PcapWriter(buf)
    assert buf.getvalue() == bytes.fromhex(
        "d4c3b2a1"  # magic, microseconds, little-endian
        "0200"
        "0400"  # version 2.4
        "00000000"  # thiszone
        "00000000"  # sigfigs
        "ffff0000"  # snaplen 65535
        "1b010000"
    )  # link type 283
    buf = io.BytesIO()
    PcapWriter(buf, LINKTYPE_IEEE802_15_4_WITHFCS, nanosecond=True, snaplen=2047 + 64)
    assert buf.getvalue() == bytes.fromhex("4d3cb2a10200040000000000000000003f080000c3000000")


def test_tap_record_octets() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf)
    w.write(1_700_000_000.25, ACK_FCS4, fcs_len=4, rssi_dbm=-60.5, channel=3)
    rec = buf.getvalue()[24:]
    tap = (
        "0000"
        "1c00"  # version 0, reserved, header length 28
        "0000"
        "0100"
        "02000000"  # FCS type: 32-bit, padded
        "0100"
        "0400"
        "000072c2"  # RSS: -60.5 as float32
        "0300"
        "0300"
        "0300"
        "09"
        "00"  # channel 3, page 9, padded
    )
    incl = 28 + len(ACK_FCS4)
    assert rec == (
        struct.pack("<IIII", 1_700_000_000, 250_000, incl, incl) + bytes.fromhex(tap) + ACK_FCS4
    )


def test_tap_header_minimal_and_lqi() -> None:
    assert tap_header(fcs_len=2) == bytes.fromhex("00000c000000010001000000")
    assert tap_header(fcs_len=0, lqi=200) == bytes.fromhex(
        "0000140000000100000000000a000100c8000000"
    )
    mpdu, tlvs = parse_tap(tap_header(fcs_len=4, channel=7, page=10) + b"xyz")
    assert mpdu == b"xyz"
    assert tlvs == {0: b"\x02", 3: b"\x07\x00\x0a"}


def test_round_trip_mixed_fcs_and_metadata() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf)
    w.write(10.000001, ACK_FCS2, fcs_len=2, rssi_dbm=-71.0, channel=0)
    w.write(11.5, ACK_FCS4, fcs_len=4)
    w.write(12.9999999, ACK_FCS4, fcs_len=4, lqi=99)  # rounds up into the next second
    assert w.frames == 3
    buf.seek(0)
    recs = list(read_pcap(buf))
    assert [(r.mpdu, r.fcs_len) for r in recs] == [(ACK_FCS2, 2), (ACK_FCS4, 4), (ACK_FCS4, 4)]
    assert [(r.ts_sec, r.ts_frac) for r in recs] == [(10, 1), (11, 500_000), (13, 0)]
    assert recs[0].rssi_dbm == -71.0 and recs[0].channel == 0 and recs[0].page == 9
    assert recs[1].rssi_dbm is None and recs[1].channel is None and recs[1].lqi is None
    assert recs[2].lqi == 99
    assert all(r.linktype == LINKTYPE_IEEE802_15_4_TAP for r in recs)
    assert recs[0].data[:4] == bytes.fromhex("00001c00")  # 4 + 3 TLVs of 8 octets
    assert recs[0].orig_len == len(recs[0].data)


def test_nanosecond_timestamps() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, nanosecond=True)
    w.write(1_764_000_000.123456789, ACK_FCS4, fcs_len=4)
    buf.seek(0)
    assert read_header(buf).nanosecond
    buf.seek(0)
    (r,) = read_pcap(buf)
    assert r.ts_sec == 1_764_000_000
    assert abs(r.ts_frac - 123_456_789) < 300  # a float holds ~0.24 µs here
    assert abs(r.timestamp - 1_764_000_000.123456789) < 1e-6


def test_withfcs_link_type() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, LINKTYPE_IEEE802_15_4_WITHFCS)
    w.write(1.0, ACK_FCS2, fcs_len=2, rssi_dbm=-50.0, channel=1)  # metadata not recorded
    with pytest.raises(ValueError, match="cannot mix FCS lengths"):
        w.write(2.0, ACK_FCS4, fcs_len=4)
    assert buf.getvalue()[24:] == struct.pack("<IIII", 1, 0, 5, 5) + ACK_FCS2
    buf.seek(0)
    (r,) = read_pcap(buf)
    assert r.mpdu == ACK_FCS2 and r.fcs_len is None and r.rssi_dbm is None


def test_reads_nofcs_and_big_endian() -> None:
    be = (
        struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_IEEE802_15_4_NOFCS)
        + struct.pack(">IIII", 5, 7, 3, 3)
        + ACK
    )
    (r,) = read_pcap(io.BytesIO(be))
    assert r.mpdu == ACK and r.fcs_len == 0 and (r.ts_sec, r.ts_frac) == (5, 7)
    assert read_header(io.BytesIO(be)).big_endian


def test_snaplen_truncates() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, LINKTYPE_IEEE802_15_4_WITHFCS, snaplen=4)
    w.write(0.0, ACK_FCS2, fcs_len=2)
    buf.seek(0)
    (r,) = read_pcap(buf)
    assert r.data == ACK_FCS2[:4] and r.orig_len == 5


@pytest.mark.parametrize(
    ("octets", "message"),
    [
        (b"", "truncated pcap file header"),
        (bytes.fromhex("0a0d0d0a") + bytes(20), "pcapng"),
        (bytes(24), "not a pcap file"),
    ],
)
def test_bad_files(octets: bytes, message: str) -> None:
    with pytest.raises(PcapError, match=message):
        list(read_pcap(io.BytesIO(octets)))


def test_truncated_record_and_bad_tap() -> None:
    buf = io.BytesIO()
    PcapWriter(buf).write(1.0, ACK_FCS4, fcs_len=4)
    whole = buf.getvalue()
    with pytest.raises(PcapError, match="truncated record"):
        list(read_pcap(io.BytesIO(whole[:-1])))
    with pytest.raises(PcapError, match="truncated record header"):
        list(read_pcap(io.BytesIO(whole + b"\0")))
    with pytest.raises(PcapError, match="TAP version"):
        parse_tap(b"\x01\x00\x04\x00")
    with pytest.raises(PcapError, match="does not fit"):
        parse_tap(b"\x00\x00\x08\x00")
    with pytest.raises(PcapError, match="runs past"):
        parse_tap(bytes.fromhex("0000080000000800"))
    bad_fcs_type = tap_header(fcs_len=4)[:8] + b"\x07\x00\x00\x00"
    hdr = struct.pack("<IIII", 0, 0, len(bad_fcs_type), len(bad_fcs_type))
    with pytest.raises(PcapError, match="FCS type"):
        list(read_pcap(io.BytesIO(whole[:24] + hdr + bad_fcs_type)))


def test_writer_refusals() -> None:
    buf = io.BytesIO()
    with pytest.raises(ValueError, match="link type"):
        PcapWriter(buf, LINKTYPE_IEEE802_15_4_NOFCS)
    w = PcapWriter(buf)
    with pytest.raises(ValueError, match="fcs_len"):
        w.write(0.0, ACK_FCS2, fcs_len=3)
    with pytest.raises(ValueError, match="timestamp"):
        w.write(-1.0, ACK_FCS2, fcs_len=2)
    with pytest.raises(ValueError, match="timestamp"):
        w.write(float("nan"), ACK_FCS2, fcs_len=2)
    with pytest.raises(ValueError, match="rssi"):
        w.write(0.0, ACK_FCS2, fcs_len=2, rssi_dbm=float("inf"))
    with pytest.raises(ValueError, match="channel"):
        w.write(0.0, ACK_FCS2, fcs_len=2, channel=70000)


@given(
    st.lists(
        st.tuples(
            st.floats(0, 4e9, allow_nan=False),
            st.binary(max_size=200),
            st.sampled_from([2, 4]),
            st.none() | st.floats(-120, 10, width=32),
            st.none() | st.integers(0, 0xFFFF),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_round_trip_property(
    frames: list[tuple[float, bytes, int, float | None, int | None]],
    ns: bool,
) -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, nanosecond=ns)
    for ts, mpdu, fcs_len, rssi, channel in frames:
        w.write(ts, mpdu, fcs_len=fcs_len, rssi_dbm=rssi, channel=channel)
    buf.seek(0)
    recs = list(read_pcap(buf))
    assert [(r.mpdu, r.fcs_len, r.rssi_dbm, r.channel) for r in recs] == [
        (m, f, r, c) for _, m, f, r, c in frames
    ]
    for r, (ts, *_rest) in zip(recs, frames, strict=True):
        assert abs(r.timestamp - ts) <= 1e-6 * max(1.0, ts / 1e9)
