"""ihd.meter.link: the wrappers pushes arrive in (HDLC, M-Bus, LLC, DLMS/UDP, block
transfer), their checksums, segmentation and reassembly.

Frames here are either real ones (tests/data/dlms/frames.json, see its README) or built
by hand from the standards' layouts; the CRC check value is the catalogue's.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ihd.meter import MeterDecodeError, Reassembler, Utility, decode_push, unwrap
from ihd.meter.link import crc16_x25, hdlc_frame, mbus_frame, parse_hdlc, parse_mbus

FRAMES = {
    f["name"]: bytes.fromhex(f["hex"])
    for f in json.loads((Path(__file__).parent / "data" / "dlms" / "frames.json").read_text())[
        "frames"
    ]
}
# A small DATA-NOTIFICATION: invoke id 7, no date-time, {1-0:1.7.0.255, 1500 W}.
APDU = bytes.fromhex("0f00000007000201020309060100010700ff06000005dc02020f00161b")


def gbt(number: int, data: bytes, *, last: bool) -> bytes:
    """A general-block-transfer APDU (Green Book: E0, block-control, block-number,
    block-number-ack, block-data as an octet string)."""
    control = 0x80 if last else 0x00
    length = bytes((len(data),)) if len(data) < 0x80 else bytes((0x81, len(data)))
    return bytes((0xE0, control)) + number.to_bytes(2, "big") + b"\x00\x00" + length + data


def test_crc16_x25_check_value() -> None:
    # CRC catalogue (CRC-16/IBM-SDLC a.k.a. X-25): check("123456789") = 0x906E.
    assert crc16_x25(b"123456789") == 0x906E


def test_real_hdlc_frame_checks_and_parses() -> None:
    # amsreader Kaifa sample: 7E A0 27 | 01 02 01 10 | HCS 5A 87 | info | FCS B8 0C | 7E
    frame = FRAMES["kaifa_kfm001_hdlc_list1"]
    parsed, end = parse_hdlc(frame)
    assert end == len(frame) - 1
    assert parsed.segmented is False and parsed.control == 0x10
    assert parsed.info[:3] == b"\xe6\xe7\x00" and parsed.info[3] == 0x0F
    assert len(parsed.info) == 0x27 - 2 - 4 - 2 - 2 + 0  # length - format - addr/ctrl - HCS - FCS


def test_hdlc_checksums_are_checked() -> None:
    frame = bytearray(FRAMES["kaifa_kfm001_hdlc_list1"])
    bad_fcs = bytearray(frame)
    bad_fcs[-2] ^= 1
    with pytest.raises(MeterDecodeError, match="FCS"):
        unwrap(bytes(bad_fcs))
    bad_hcs = bytearray(frame)
    bad_hcs[7] ^= 1  # HCS octet; recompute the FCS so only the HCS is wrong
    fcs = crc16_x25(bytes(bad_hcs[1:-3])).to_bytes(2, "little")
    bad_hcs[-3:-1] = fcs
    with pytest.raises(MeterDecodeError, match="HCS"):
        unwrap(bytes(bad_hcs))


def test_hdlc_frame_builder_round_trip_and_7e_inside() -> None:
    info = b"\xe6\xe7\x00" + APDU + b"\x7e\x7e"  # DLMS HDLC does no byte stuffing
    frame = hdlc_frame(info)
    parsed, _ = parse_hdlc(frame)
    assert parsed.info == info
    assert unwrap(frame).apdu == APDU + b"\x7e\x7e"  # the length field, not a flag, ends it


def test_all_wrappers_give_the_same_push() -> None:
    llc = b"\xe6\xe7\x00" + APDU
    udp = b"\x00\x01" + b"\x00\x01" + b"\x00\x10" + len(APDU).to_bytes(2, "big") + APDU
    forms = {
        "apdu": APDU,
        "llc": llc,
        "hdlc": hdlc_frame(llc),
        "udp": udp,
        "mbus": mbus_frame(b"\x01\x67" + APDU, ci=0x10),
    }
    for name, data in forms.items():
        u = unwrap(data)
        assert u.apdu == APDU, name
        push = decode_push(data, meter="M", utility=Utility.ELECTRICITY, received_at=5.0)
        assert [(r.obis, r.raw) for r in push.readings] == [("1-0:1.7.0.255", 1500)], name
        assert push.framing[0] == name
    assert unwrap(forms["hdlc"]).framing == ("hdlc", "llc")


def test_udp_wrapper_length_must_match() -> None:
    udp = b"\x00\x01\x00\x01\x00\x10" + (len(APDU) + 1).to_bytes(2, "big") + APDU
    with pytest.raises(MeterDecodeError):
        unwrap(udp)


def test_hdlc_segmentation_reassembles_and_frames_may_share_flags() -> None:
    info = b"\xe6\xe7\x00" + APDU
    parts = [info[:10], info[10:20], info[20:]]
    frames = [
        hdlc_frame(p, segmented=i < len(parts) - 1, control=0x03 if i < 2 else 0x13)
        for i, p in enumerate(parts)
    ]
    separate = b"".join(frames)
    shared = frames[0] + b"".join(f[1:] for f in frames[1:])  # closing flag opens the next
    for data in (separate, shared):
        u = unwrap(data)
        assert (u.apdu, u.frames, u.framing) == (APDU, 3, ("hdlc", "llc"))
    with pytest.raises(MeterDecodeError, match="incomplete"):
        unwrap(frames[0] + frames[1])  # the last segment is missing


def test_real_segmented_hdlc_and_missing_segment() -> None:
    data = FRAMES["iskra_am550_hdlc_segmented"]
    assert unwrap(data).frames == 3
    first, end = parse_hdlc(data)
    assert first.segmented
    with pytest.raises(MeterDecodeError, match="incomplete"):
        unwrap(data[: end + 1])


def test_block_transfer_reassembles_in_order_only() -> None:
    blocks = [
        gbt(1, APDU[:9], last=False),
        gbt(2, APDU[9:20], last=False),
        gbt(3, APDU[20:], last=True),
    ]
    r = Reassembler()
    assert r.feed(blocks[0]) is None and r.pending
    assert r.feed(blocks[1]) is None
    u = r.feed(blocks[2])
    assert u is not None and u.apdu == APDU and u.framing == ("gbt",) and not r.pending
    r = Reassembler()
    r.feed(blocks[0])
    with pytest.raises(MeterDecodeError, match="block 3, expected 2"):
        r.feed(blocks[2])
    assert not r.pending  # an error resets
    with pytest.raises(MeterDecodeError, match="starts at block 2"):
        Reassembler().feed(blocks[1])
    # Blocks in HDLC frames, as Landis+Gyr sends them.
    frames = b"".join(
        hdlc_frame((b"\xe6\xe7\x00" if i == 0 else b"") + b) for i, b in enumerate(blocks)
    )
    u = unwrap(frames)
    assert u.apdu == APDU and u.framing == ("hdlc", "llc", "gbt") and u.frames == 3


def test_block_transfer_long_block_uses_ber_length() -> None:
    big = bytes((0xE0, 0x80, 0, 1, 0, 0, 0x81, 200)) + b"\x0f" + bytes(199)
    assert unwrap(big).apdu == b"\x0f" + bytes(199)


def test_real_mbus_segments_and_checksum() -> None:
    data = FRAMES["netz_noe_kaifa_mbus_ciphered"]
    first, end = parse_mbus(data)
    assert (first.control, first.address, first.ci) == (0x53, 0xFF, 0x00)  # segment 0
    second, end2 = parse_mbus(data, end)
    assert second.ci == 0x11 and end2 == len(data)  # segment 1, the last
    u = unwrap(data)
    assert u.frames == 2 and u.apdu[0] == 0xDB and len(u.apdu) == 12 + 0xF8
    bad = bytearray(data)
    bad[20] ^= 0x40
    with pytest.raises(MeterDecodeError, match="checksum"):
        unwrap(bytes(bad))
    with pytest.raises(MeterDecodeError, match="incomplete"):
        unwrap(data[:end])


def test_mbus_segment_out_of_order() -> None:
    a = mbus_frame(b"\x01\x67" + APDU[:10], ci=0x00)
    b = mbus_frame(b"\x01\x67" + APDU[10:], ci=0x12)  # segment 2, but 1 is missing
    with pytest.raises(MeterDecodeError, match="a segment is missing"):
        unwrap(a + b)
    b = mbus_frame(b"\x01\x67" + APDU[10:], ci=0x11)
    assert unwrap(a + b).apdu == APDU


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("", "empty"),
        ("7e", "too short"),
        ("7ea00801020110378d7e", "empty APDU"),  # an HDLC frame with no information
        ("7eb00801020110378d7e", "format type"),
        ("7ea0ff01020110378d7e", "runs past"),
        ("68050568", "too short"),
        ("6805066853ff0001670f0000", "differ"),
        ("e6e700", "empty APDU"),
        ("e0800001000005010203", "length 5 but only 3"),
        ("e08000010000030f000080", "octets after the block data"),
        ("e08000010000010f", "too short"),
    ],
)
def test_malformed_wrappers(data: str, reason: str) -> None:
    with pytest.raises(MeterDecodeError) as info:
        decode_push(bytes.fromhex(data), meter="M", utility=Utility.ELECTRICITY, received_at=0)
    assert reason in info.value.reason


def test_two_apdus_in_one_buffer_are_refused() -> None:
    one = hdlc_frame(b"\xe6\xe7\x00" + APDU)
    with pytest.raises(MeterDecodeError, match="more than one APDU"):
        unwrap(one + one)


def test_reassembler_takes_frames_one_at_a_time() -> None:
    data = FRAMES["landis_gyr_e450_gbt_ciphered"]
    r = Reassembler()
    results = []
    pos = 0
    while pos < len(data):
        _, end = parse_hdlc(data, pos)
        results.append(r.feed(data[pos : end + 1]))
        pos = end + 1
    assert results[:2] == [None, None]
    last = results[2]
    assert last is not None and last.apdu[0] == 0xDB and last.frames == 3


# ------------------------------------------------------------------------------- fuzzing

SEEDS = [*list(FRAMES.values()), hdlc_frame(b"\xe6\xe7\x00" + APDU), gbt(1, APDU, last=True)]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "insert":
            data.insert(pos, draw(st.integers(0, 255)))
        elif not data:
            continue
        elif op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[pos]
        else:
            del data[pos:]
    return bytes(data)


def _only_meter_errors(data: bytes) -> None:
    with contextlib.suppress(MeterDecodeError):
        unwrap(data)
    r = Reassembler()
    try:
        r.feed(data)
    except MeterDecodeError:
        assert not r.pending


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_any_bytes_unwrap_or_raise_meter_decode_error(data: bytes) -> None:
    _only_meter_errors(data)
    for prefix in (b"\x7e\xa0", b"\x68", b"\xe0", b"\x00\x01", b"\xe6\xe7\x00"):
        _only_meter_errors(prefix + data)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_real_frames_unwrap_or_raise_meter_decode_error(data: bytes) -> None:
    _only_meter_errors(data)
