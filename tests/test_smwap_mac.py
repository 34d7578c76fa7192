"""802.15.4 MAC framing: vectors from the shared reference, hand-read golden frames, the PAN ID
tables, every refusal, and build/parse properties."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd.smwap import (
    BROADCAST,
    Address,
    AddrMode,
    AuxSecurityHeader,
    FrameControl,
    FrameError,
    FrameType,
    FrameVersion,
    HeaderIE,
    MacFrame,
    MpxIE,
    MpxTransferType,
    PayloadIE,
    build_mpdu,
    compute_fcs,
    parse_mpdu,
    parse_mpdu_unchecked,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "smwap_vectors.json").read_text())
IE_OCTETS = {v["name"]: bytes.fromhex(v["octets"]) for v in VECTORS["ie_descriptors"]}
HT1 = IE_OCTETS["header_termination_1_HT1"]
HT2 = IE_OCTETS["header_termination_2_HT2"]
PT = IE_OCTETS["payload_termination"]

ACDE1 = Address.from_eui64("ACDE480000000001")
ACDE2 = Address.from_eui64("ACDE480000000002")
METER = Address.from_eui64("0011223344556677")

# --- frame control -------------------------------------------------------------------------

_FC_NAMES = {
    "seq_num_suppression": "seq_suppressed",
    "dst_addr_mode": "dst_mode",
    "src_addr_mode": "src_mode",
}


@pytest.mark.parametrize("v", VECTORS["frame_control"], ids=lambda v: v["name"])
def test_frame_control_vectors(v: dict[str, Any]) -> None:
    octets = bytes.fromhex(v["octets"])
    fc = FrameControl.from_bytes(octets)
    got = {f: int(getattr(fc, _FC_NAMES.get(f, f))) for f in v["fields"]}
    assert got == v["fields"]
    assert fc.to_bytes() == octets
    assert FrameControl.from_int(int.from_bytes(octets, "little")) == fc


def test_frame_control_ignores_reserved_bit_7_and_checks_range() -> None:
    assert FrameControl.from_int(0x9841 | 0x80) == FrameControl.from_int(0x9841)
    with pytest.raises(ValueError):
        FrameControl.from_int(0x10000)
    with pytest.raises(FrameError):
        FrameControl.from_bytes(b"\x41")


# --- IE descriptors ------------------------------------------------------------------------


def test_ie_descriptor_vectors() -> None:
    v = next(e for e in VECTORS["ie_descriptors"] if e["name"] == "mlme_payload_ie_len_10")
    ie = PayloadIE(v["group_id"], bytes(v["length"]))
    assert ie.to_bytes()[:2] == bytes.fromhex(v["octets"])
    assert PayloadIE.from_bytes(ie.to_bytes()) == ie
    hie = HeaderIE(0x00, bytes.fromhex("acde4801"))
    assert hie.to_bytes().hex() == "0400acde4801"  # as in the 2015 CCM* vector
    assert HeaderIE.from_bytes(hie.to_bytes()) == hie


_MHR_2015 = bytes.fromhex("61ea2a34120200" + "7766554433221100")  # data, PANIDC, IE present
_HIE = HeaderIE(0x2A, b"\x01\x02")
_PIE = PayloadIE(0x2, b"vendor")


@pytest.mark.parametrize(
    ("header_ies", "payload_ies", "payload", "tail"),
    [
        ((_HIE,), (_PIE,), b"data", _HIE.to_bytes() + HT1 + _PIE.to_bytes() + PT + b"data"),
        ((_HIE,), (_PIE,), b"", _HIE.to_bytes() + HT1 + _PIE.to_bytes()),
        ((), (_PIE,), b"data", HT1 + _PIE.to_bytes() + PT + b"data"),
        ((_HIE,), (), b"data", _HIE.to_bytes() + HT2 + b"data"),
        ((), (), b"data", HT2 + b"data"),
        ((_HIE,), (), b"", _HIE.to_bytes()),
    ],
)
def test_ie_terminators_are_inserted_and_consumed(
    header_ies: tuple[HeaderIE, ...],
    payload_ies: tuple[PayloadIE, ...],
    payload: bytes,
    tail: bytes,
) -> None:
    frame = MacFrame(
        FrameType.DATA,
        0x2A,
        0x1234,
        Address.short(2),
        0x1234,
        METER,
        FrameVersion.V2015,
        ack_request=True,
        pan_id_compression=True,
        ie_present=True,
        header_ies=header_ies,
        payload_ies=payload_ies,
        payload=payload,
    )
    assert frame.to_bytes() == _MHR_2015 + tail
    assert parse_mpdu_unchecked(_MHR_2015 + tail) == frame


def test_redundant_terminators_are_accepted() -> None:
    # HT1 with no payload IE before the termination, and HT2 with nothing after it.
    got = parse_mpdu_unchecked(_MHR_2015 + HT1 + PT + b"data")
    assert (got.payload_ies, got.payload) == ((), b"data")
    got = parse_mpdu_unchecked(_MHR_2015 + _HIE.to_bytes() + HT2)
    assert (got.header_ies, got.payload) == ((_HIE,), b"")
    assert parse_mpdu_unchecked(got.to_bytes()) == got


# --- golden frames: the CCM* vectors parse (no decryption yet) -----------------------------

# What each secured frame's MHR says, read by hand from its hex.
_SMWAP_MHR: dict[str, Any] = {
    "frame_type": FrameType.DATA,
    "seq": 0x2A,
    "dst_pan": 0x1234,
    "dst": Address.short(2),
    "src_pan": 0x1234,
    "src": METER,
    "version": FrameVersion.V2006,
    "ack_request": True,
    "pan_id_compression": True,
}
GOLDEN: dict[str, dict[str, Any]] = {
    "smwap_like_data_level5": {**_SMWAP_MHR, "key_id_mode": 1, "key_index": 1},
    "smwap_like_data_level7": {**_SMWAP_MHR, "key_id_mode": 1, "key_index": 1},
    "smwap_like_data_level1": {**_SMWAP_MHR, "key_id_mode": 0, "key_index": None},
    "smwap_like_data_level6": {**_SMWAP_MHR, "key_id_mode": 0, "key_index": None},
    "fv2015_data_headerIE_HT2_level6": {
        **_SMWAP_MHR,
        "seq": 0x2B,
        "version": FrameVersion.V2015,
        "ie_present": True,
        "header_ies": (HeaderIE(0x00, bytes.fromhex("acde4801")),),
        "key_id_mode": 1,
        "key_index": 1,
    },
    "ieee_annexC_2_1_beacon_MIC64": {
        "frame_type": FrameType.BEACON,
        "seq": 0x84,
        "dst_pan": None,
        "dst": None,
        "src_pan": 0x4321,
        "src": ACDE1,
        "version": FrameVersion.V2006,
        "ack_request": False,
        "pan_id_compression": False,
        "key_id_mode": 0,
        "key_index": None,
    },
    "ieee_annexC_2_2_data_ENC": {
        "frame_type": FrameType.DATA,
        "seq": 0x84,
        "dst_pan": 0x4321,
        "dst": ACDE2,
        "src_pan": 0x4321,
        "src": ACDE1,
        "version": FrameVersion.V2006,
        "ack_request": True,
        "pan_id_compression": True,
        "key_id_mode": 0,
        "key_index": None,
    },
    "ieee_annexC_2_3_command_ENC_MIC64": {
        "frame_type": FrameType.COMMAND,
        "seq": 0x84,
        "dst_pan": 0x4321,
        "dst": ACDE2,
        "src_pan": 0xFFFF,
        "src": ACDE1,
        "version": FrameVersion.V2006,
        "ack_request": True,
        "pan_id_compression": False,
        "key_id_mode": 0,
        "key_index": None,
    },
}


@pytest.mark.parametrize("v", VECTORS["ccm_star"], ids=lambda v: v["name"])
def test_secured_vector_frames_parse(v: dict[str, Any]) -> None:
    secured = bytes.fromhex(v["secured_frame_no_fcs"])
    frame = parse_mpdu_unchecked(secured)
    want = dict(GOLDEN[v["name"]])
    aux = frame.aux
    assert aux is not None
    assert aux.level == v["security_level"]
    assert aux.mic_len == v["mic_len"]
    assert aux.frame_counter == v["frame_counter"]
    assert aux.frame_counter_suppressed is False
    assert aux.key_source == b""
    assert (aux.key_id_mode, aux.key_index) == (want.pop("key_id_mode"), want.pop("key_index"))
    assert frame.src is not None
    assert frame.src.mode == AddrMode.EXTENDED
    assert str(frame.src) == v["src_ext_addr"].upper()  # the CCM* nonce's source address
    for field, value in want.items():
        assert getattr(frame, field) == value, field
    # The secured payload is the tail of the frame; everything before it is the MHR, which
    # the vector's authenticated data `a` starts with (a also covers cleartext payload for
    # MIC-only levels, and the command ID for the 2006 command).
    mhr = secured[: len(secured) - len(frame.payload)]
    assert bytes.fromhex(v["a_data"]).startswith(mhr)
    if v["security_level"] >= 4 and frame.frame_type != FrameType.COMMAND:
        assert bytes.fromhex(v["a_data"]) == mhr
    assert len(frame.payload) == len(secured) - len(mhr) >= v["mic_len"]
    assert frame.to_bytes() == secured


@pytest.mark.parametrize("v", VECTORS["ppdu"], ids=lambda v: v["name"])
def test_ppdu_vector_mpdu_parses_with_fcs(v: dict[str, Any]) -> None:
    mpdu = bytes.fromhex(v["mpdu_with_fcs"])
    frame = parse_mpdu(mpdu, v["fcs_len"])
    assert frame.aux is not None and frame.aux.level == 5
    assert build_mpdu(frame, v["fcs_len"]) == mpdu


def test_annex_c_beacon_payload_and_2003_style_ack() -> None:
    v = next(e for e in VECTORS["ccm_star"] if e["name"] == "ieee_annexC_2_1_beacon_MIC64")
    frame = parse_mpdu_unchecked(bytes.fromhex(v["secured_frame_no_fcs"]))
    assert frame.payload.hex() == "55cf000051525354" + "223bc1ec841ab553"
    ack = bytes.fromhex(VECTORS["crc16"][0]["data"])  # the IEEE Imm-Ack MHR 02 00 6A
    assert parse_mpdu_unchecked(ack) == MacFrame.ack(0x6A, version=FrameVersion.V2003)
    assert build_mpdu(MacFrame.ack(0x6A, version=FrameVersion.V2003), 2).hex() == "02006ae479"


# --- addresses and the auxiliary security header -------------------------------------------


def test_extended_address_goes_on_air_reversed() -> None:
    assert ACDE1.value == 0xACDE480000000001
    assert ACDE1.to_bytes().hex() == "010000000048deac"
    assert str(ACDE1) == "ACDE480000000001"
    assert Address.from_eui64("ac:de:48:00:00:00:00:01") == ACDE1 == Address.ext(ACDE1.value)
    assert Address.from_bytes(bytes.fromhex("010000000048deac")) == ACDE1
    assert Address.from_bytes(b"\xff\xff") == BROADCAST
    assert str(Address.short(0x1A)) == "0x001A"
    assert repr(ACDE1) == "Address.from_eui64('ACDE480000000001')"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Address.short(0x10000),
        lambda: Address.ext(-1),
        lambda: Address(AddrMode.NONE, 0),
        lambda: Address.from_eui64("ACDE48000000001"),
        lambda: Address.from_eui64("ACDE48000000000G"),
        lambda: Address.from_bytes(b"\x00\x00\x00"),
    ],
)
def test_bad_addresses(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    ("aux", "length", "mode"),
    [
        (AuxSecurityHeader(5, 1), 5, 0),
        (AuxSecurityHeader(5, 1, key_index=3), 6, 1),
        (AuxSecurityHeader(5, 1, key_index=3, key_source=b"\x01\x02\x03\x04"), 10, 2),
        (AuxSecurityHeader(5, 1, key_index=3, key_source=bytes(range(8))), 14, 3),
        (AuxSecurityHeader(6, None, key_index=3, asn_in_nonce=True), 2, 1),
    ],
)
def test_aux_security_header_lengths(aux: AuxSecurityHeader, length: int, mode: int) -> None:
    raw = aux.to_bytes()
    assert len(raw) == length
    assert aux.key_id_mode == mode
    assert (raw[0] >> 3) & 3 == mode
    assert AuxSecurityHeader.from_bytes(raw) == aux


@pytest.mark.parametrize(
    "kwargs",
    [
        {"level": 0, "frame_counter": 1},
        {"level": 8, "frame_counter": 1},
        {"level": 5, "frame_counter": 1 << 32},
        {"level": 5, "frame_counter": 1, "key_source": b"\x00" * 4},
        {"level": 5, "frame_counter": 1, "key_index": 256},
        {"level": 5, "frame_counter": 1, "key_index": 1, "key_source": b"\x00" * 5},
    ],
)
def test_bad_aux_security_headers(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AuxSecurityHeader(**kwargs)


def test_aux_from_bytes_refuses_extra_octets() -> None:
    with pytest.raises(FrameError):
        AuxSecurityHeader.from_bytes(AuxSecurityHeader(5, 1).to_bytes() + b"\x00")


# --- PAN ID presence: the reference tables, row by row -------------------------------------

F, T = False, True
# (dst PAN sent, src PAN sent) for PANIDC = 0 and 1; None: not defined (refused).
TABLE_2006 = {
    "none": ((F, F), None),
    "dst": ((T, F), None),
    "src": ((F, T), None),
    "ext+ext": ((T, T), (T, F)),
    "mixed": ((T, T), (T, F)),
}
TABLE_2015 = {
    "none": ((F, F), (T, F)),
    "dst": ((T, F), (F, F)),
    "src": ((F, T), (F, F)),
    "ext+ext": ((T, F), (F, F)),
    "mixed": ((T, T), (T, F)),
}
_S, _E = Address.short(0x0102), Address.ext(0x1122334455667788)
CASES: dict[str, list[tuple[Address | None, Address | None]]] = {
    "none": [(None, None)],
    "dst": [(_S, None), (_E, None)],
    "src": [(None, _S), (None, _E)],
    "ext+ext": [(_E, _E)],
    "mixed": [(_S, _S), (_S, _E), (_E, _S)],
}


def _presence(
    version: FrameVersion, dst: Address | None, src: Address | None, panidc: bool
) -> tuple[bool, bool] | None:
    if dst is None:
        case = "none" if src is None else "src"
    elif src is None:
        case = "dst"
    else:
        both_ext = dst.mode == src.mode == AddrMode.EXTENDED
        case = "ext+ext" if both_ext else "mixed"
    table = TABLE_2015 if version == FrameVersion.V2015 else TABLE_2006
    return table[case][panidc]


_PAN_ROWS = [
    (version, dst, src, panidc)
    for version in FrameVersion
    for rows in CASES.values()
    for dst, src in rows
    for panidc in (False, True)
]


@pytest.mark.parametrize(("version", "dst", "src", "panidc"), _PAN_ROWS)
def test_pan_id_presence(
    version: FrameVersion, dst: Address | None, src: Address | None, panidc: bool
) -> None:
    layout = _presence(version, dst, src, panidc)
    fc = FrameControl(
        FrameType.DATA,
        pan_id_compression=panidc,
        frame_version=version,
        dst_mode=dst.mode if dst else AddrMode.NONE,
        src_mode=src.mode if src else AddrMode.NONE,
    ).to_bytes()
    addr = (dst.to_bytes() if dst else b"", src.to_bytes() if src else b"")
    if layout is None:
        frame = MacFrame(
            FrameType.DATA, 7, dst=dst, src=src, version=version, pan_id_compression=panidc
        )
        with pytest.raises(ValueError):
            frame.to_bytes()
        with pytest.raises(FrameError, match="PAN ID compression"):
            parse_mpdu_unchecked(fc + b"\x07" + addr[0] + addr[1] + b"pay")
        return
    d_sent, s_sent = layout
    raw = (
        fc
        + b"\x07"
        + (b"\xcd\xab" if d_sent else b"")
        + addr[0]
        + (b"\x34\x12" if s_sent else b"")
        + addr[1]
        + b"pay"
    )
    frame = parse_mpdu_unchecked(raw)
    assert frame.dst_pan == (0xABCD if d_sent else None)
    if s_sent:
        assert frame.src_pan == 0x1234
    else:  # compressed: the source PAN reads as the destination PAN, if there is one
        assert frame.src_pan == (frame.dst_pan if src is not None else None)
    assert (frame.dst, frame.src, frame.payload) == (dst, src, b"pay")
    assert frame.to_bytes() == raw


def test_data_helper_chooses_compression() -> None:
    f = MacFrame.data(src=METER, dst=Address.short(2), dst_pan=0x1234, seq=1, payload=b"x")
    assert f.pan_id_compression and f.src_pan == 0x1234
    f = MacFrame.data(src=METER, dst=Address.short(2), dst_pan=0x1234, src_pan=0x9999, seq=1)
    assert not f.pan_id_compression and f.src_pan == 0x9999
    f = MacFrame.data(src=_E, dst=_E, dst_pan=None, seq=None, version=FrameVersion.V2015)
    assert f.pan_id_compression and f.dst_pan is None and f.src_pan is None
    f = MacFrame.data(src=None, dst=BROADCAST, dst_pan=0xFFFF, seq=3)
    assert not f.pan_id_compression
    f = MacFrame.data(src=METER, dst=None, dst_pan=None, src_pan=0x1234, seq=3)
    assert (f.dst_pan, f.src_pan, f.pan_id_compression) == (None, 0x1234, False)
    with pytest.raises(ValueError):  # 2015 ext+ext cannot send two different PAN IDs
        MacFrame.data(src=_E, dst=_E, dst_pan=1, src_pan=2, seq=1, version=FrameVersion.V2015)
    f = MacFrame.data(
        src=METER,
        dst=Address.short(2),
        dst_pan=1,
        seq=None,
        version=FrameVersion.V2015,
        header_ies=(_HIE,),
        payload=b"p",
    )
    assert f.ie_present and parse_mpdu_unchecked(f.to_bytes()) == f


# --- refusals ------------------------------------------------------------------------------


def _fc(v: int) -> bytes:
    return v.to_bytes(2, "little")


_SEC_V1 = 0x9849  # data, security, PANIDC, short dst, version 1, short src
_MHR_V1 = _fc(_SEC_V1) + bytes.fromhex("01341202000300")  # aux starts at offset 9
_SEC_V2_IE = 0xAA49  # data, security, PANIDC, IE present, short dst, version 2, short src
_MHR_V2 = _fc(_SEC_V2_IE) + bytes.fromhex("01341202000300")


@pytest.mark.parametrize(
    ("raw", "reason", "offset"),
    [
        (b"", "truncated frame control", 0),
        (b"\x41", "truncated frame control", 0),
        (_fc(0x8841), "truncated sequence number", 2),
        (_fc(0x3001) + b"\x00", "reserved frame version 3", 0),
        (_fc(0x1404) + b"\x00", "unsupported frame type 4 (reserved)", 0),
        (_fc(0x2006) + b"\x00", "unsupported frame type 6 (frak)", 0),
        (_fc(0x2007) + b"\x00", "unsupported frame type 7 (extended)", 0),
        (_fc(0x1401) + b"\x00", "reserved destination addressing mode 1", 1),
        (_fc(0x5001) + b"\x00", "reserved source addressing mode 1", 1),
        (_fc(0x1101), "sequence number suppression before frame version 2", 1),
        (_fc(0x1201) + b"\x00", "IE present before frame version 2", 1),
        (_fc(0x1801) + b"\x00\x34", "truncated destination PAN ID", 3),
        (_fc(0x1801) + b"\x00\x34\x12\x02", "truncated destination address", 5),
        (_fc(0x9801) + b"\x00\x34\x12\x02\x00\x34", "truncated source PAN ID", 7),
        (_fc(0xD801) + b"\x00\x34\x12\x02\x00\x34\x12" + bytes(7), "truncated source address", 9),
        (_fc(0x8849) + b"\x00", "2003 security (frame version 0) not supported", 0),
        (_MHR_V1, "truncated auxiliary security header", 9),
        (_MHR_V1 + b"\x0d\x01", "truncated auxiliary security header", 9),
        (_MHR_V1 + b"\x08" + bytes(8), "security enabled with security level 0", 9),
        (_MHR_V1 + b"\x85" + bytes(8), "reserved security control bit 7 set", 9),
        (
            _MHR_V1 + b"\x25" + bytes(8),
            "frame counter suppression or ASN in nonce before frame version 2",
            9,
        ),
        (
            _MHR_V1 + b"\x45" + bytes(8),
            "frame counter suppression or ASN in nonce before frame version 2",
            9,
        ),
        (_MHR_V1 + b"\x07" + bytes(4) + bytes(15), "frame shorter than its 16-octet MIC", 14),
        (_MHR_V2 + b"\x04" + bytes(4) + b"\x04\x00\x01", "truncated header IE", 14),
        (_MHR_V2 + b"\x04" + bytes(4) + b"\x04", "truncated header IE descriptor", 14),
        (_MHR_V2 + b"\x04" + bytes(4) + b"\x01\x3f\x00", "header termination IE with content", 14),
        (
            _MHR_V2 + b"\x04" + bytes(4) + b"\x00\x88",
            "payload IE without a header termination IE",
            14,
        ),
        # Header IEs may not run into the MIC: 4 octets of IE, but only 2 before the MIC.
        (_MHR_V2 + b"\x05" + bytes(4) + b"\x02\x00\x01\x02" + bytes(2), "truncated header IE", 14),
    ],
)
def test_refused_frames(raw: bytes, reason: str, offset: int) -> None:
    with pytest.raises(FrameError) as e:
        parse_mpdu_unchecked(raw)
    assert (e.value.reason, e.value.offset) == (reason, offset)
    assert str(e.value) == f"{reason} at offset {offset}"


_MHR_V2_PLAIN = _fc(0xA241) + bytes.fromhex("01341202000300") + HT1  # payload IEs at 11


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\x00", "truncated payload IE descriptor"),
        (b"\x05\x88\x00", "truncated payload IE"),
        (b"\x01\xf8\x00", "payload termination IE with content"),
        (b"\x00\x08", "header IE among payload IEs"),
    ],
)
def test_refused_payload_ies(tail: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as e:
        parse_mpdu_unchecked(_MHR_V2_PLAIN + tail)
    assert (e.value.reason, e.value.offset) == (reason, 11)


def test_bad_and_missing_fcs() -> None:
    good = build_mpdu(MacFrame.data(src=METER, dst=Address.short(2), dst_pan=1, seq=9), 4)
    bad = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(FrameError) as e:
        parse_mpdu(bad, 4)
    assert (e.value.reason, e.value.offset) == ("bad FCS", len(bad) - 4)
    with pytest.raises(FrameError, match="shorter than its 2-octet FCS"):
        parse_mpdu(b"\x01", 2)
    with pytest.raises(ValueError):
        parse_mpdu(good, 3)
    # An FCS that is right for octets which are not a frame still fails as a FrameError.
    junk = b"\x07\x00" + compute_fcs(b"\x07\x00", 2)
    with pytest.raises(FrameError, match="unsupported frame type"):
        parse_mpdu(junk, 2)


def test_frame_error_pickles() -> None:
    import pickle

    e = pickle.loads(pickle.dumps(FrameError("bad FCS", 12)))
    assert (e.reason, e.offset, str(e)) == ("bad FCS", 12, "bad FCS at offset 12")


_D, _SR = Address.short(2), Address.short(3)


@pytest.mark.parametrize(
    "frame",
    [
        MacFrame(FrameType.DATA, 1, 1, _D, 2, _SR, pan_id_compression=True),  # 2006, PANs differ
        MacFrame(FrameType.DATA, None, 1, _D, 1, _SR, pan_id_compression=True),  # seq suppr. 2006
        MacFrame(FrameType.DATA, 256, 1, _D),
        MacFrame(FrameType.DATA, 1, 0x10000, _D),
        MacFrame(FrameType.DATA, 1, None, _D),  # destination PAN needed
        MacFrame(FrameType.DATA, 1, 1, None),  # no destination PAN without an address (2006)
        MacFrame(FrameType.DATA, 1, 1, _D, 5, None),  # src_pan without a source
        MacFrame(FrameType.DATA, 1, 1, _D, None, _SR),  # both PANs sent: src_pan needed
        MacFrame(FrameType.MULTIPURPOSE, 1, 1, _D),
        MacFrame(FrameType.DATA, 1, 1, _D, ie_present=True),  # IEs need 2015
        MacFrame(
            FrameType.DATA, 1, 1, _D, version=FrameVersion.V2015, header_ies=(_HIE,)
        ),  # IEs without ie_present
        MacFrame(FrameType.DATA, 1, 1, _D, aux=AuxSecurityHeader(5, 1), version=FrameVersion.V2003),
        MacFrame(FrameType.DATA, 1, 1, _D, aux=AuxSecurityHeader(5, None), payload=bytes(4)),
        MacFrame(FrameType.DATA, 1, 1, _D, aux=AuxSecurityHeader(7, 1), payload=bytes(15)),
        MacFrame(FrameType.DATA, 1, 1, _D, secured_payload_ies=True),
        MacFrame(
            FrameType.DATA,
            1,
            1,
            _D,
            version=FrameVersion.V2015,
            ie_present=True,
            aux=AuxSecurityHeader(4, 1),
            payload_ies=(_PIE,),
        ),
    ],
)
def test_builder_refuses_contradictions(frame: MacFrame) -> None:
    with pytest.raises(ValueError):
        build_mpdu(frame)


@pytest.mark.parametrize(
    "make",
    [
        lambda: HeaderIE(0x7E),
        lambda: HeaderIE(0x7F),
        lambda: HeaderIE(0x100),
        lambda: HeaderIE(1, bytes(128)),
        lambda: PayloadIE(0xF),
        lambda: PayloadIE(1, bytes(2048)),
    ],
)
def test_bad_ies(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


# --- multipurpose frames and the MPX IE: hand-computed octets ------------------------------

# The shared reference (REFERENCE.md, vectors.json) covers neither multipurpose frames nor the
# MPX IE, so these octets are written by hand from the field layouts: IEEE 802.15.4-2015
# 7.3.5 for the multipurpose frame control (bits 0-2 frame type 5, 3 Long Frame Control, 4-5
# destination addressing mode, 6-7 source addressing mode; second octet: 8 PAN ID Present,
# 9 Security Enabled, 10 Sequence Number Suppression, 11 Frame Pending, 12-13 version, 14 AR,
# 15 IE Present) and IEEE 802.15.9 for the MPX IE (payload IE group 0x3; Transaction
# Control = transfer type in bits 0-2, transaction ID in bits 3-7; then Fragment Number,
# Total Upper-Layer Frame Size, Multiplex ID, data). Both layouts are from memory of the
# standards, not from their text; test_tshark.py checks the same layouts against tshark.
# Each comment spells out the octets field by field.

_MP, _V15 = FrameType.MULTIPURPOSE, FrameVersion.V2015
_KMP_HI = MpxIE(MpxTransferType.FULL_FRAME, 5, 1, None, None, b"\x08hi")

MP_GOLDEN: list[tuple[str, MacFrame, str]] = [
    (
        # FC 05 = type 101, short form, no addresses; seq 01; payload "hi"
        "short, no addresses",
        MacFrame(_MP, 1, version=_V15, payload=b"hi"),
        "05 01 6869",
    ),
    (
        # FC E5 = 11 (src ext) 10 (dst short) 0 (short form) 101; seq 2A; dst 0x1234 as 34 12;
        # src 0011223344556677 reversed; payload AB
        "short, short dst, extended src",
        MacFrame(_MP, 0x2A, dst=Address.short(0x1234), src=METER, version=_V15, payload=b"\xab"),
        "e5 2a 3412 7766554433221100 ab",
    ),
    (
        # FC 3D 41: octet 0 = 00 (no src) 11 (dst ext) 1 (long) 101; octet 1 = bit 8 PAN ID
        # Present (01) + bit 14 AR (40); seq 07; PAN 0xABCD; dst ACDE480000000002 reversed
        "long, PAN ID present, AR, extended dst",
        MacFrame(_MP, 7, 0xABCD, ACDE2, version=_V15, ack_request=True, payload=b"x", long_fc=True),
        "3d41 07 cdab 020000000048deac 78",
    ),
    (
        # FC 0D 00: the long form with nothing in its second octet (the short form would
        # do; the frame keeps which one it had); seq 09
        "long form, all second-octet bits clear",
        MacFrame(_MP, 9, version=_V15, long_fc=True),
        "0d00 09",
    ),
    (
        # FC AD 8C: octet 0 = 10 (src short) 10 (dst short) 1 101; octet 1 = bit 10 sequence
        # number suppression (04) + bit 11 frame pending (08) + bit 15 IE present (80); no seq,
        # no PAN ID; dst FFFF; src 0042; header IE 0x2A len 2 (descriptor 2 | 0x2A << 7 =
        # 0x1502) 01 02; HT1 00 3F; MPX IE (descriptor 0x8000 | 3 << 11 | 6 = 0x9806; full
        # frame, transaction ID 5: 5 << 3 = 28; Multiplex ID 1 = KMP: 01 00; KMP ID 8, "hi");
        # payload termination 00 F8; payload "ok"
        "long, seq suppressed, frame pending, IEs",
        MacFrame(
            _MP,
            None,
            dst=BROADCAST,
            src=Address.short(0x42),
            version=_V15,
            frame_pending=True,
            ie_present=True,
            header_ies=(HeaderIE(0x2A, b"\x01\x02"),),
            payload_ies=(_KMP_HI.to_payload_ie(),),
            payload=b"ok",
            long_fc=True,
        ),
        "ad8c ffff 4200 0215 0102 003f 0698 28 0100 08 6869 00f8 6f6b",
    ),
    (
        # FC CD 03: octet 0 = 11 (src ext) 00 (no dst) 1 101; octet 1 = PAN ID Present (01) +
        # Security Enabled (02); seq 84; PAN 0x4321; src ACDE480000000001 reversed; security
        # control 0D (level 5, key identifier mode 1 << 3); frame counter 5; key index 01;
        # secured payload (framing only): 4 octets = the level-5 MIC
        "long, secured, PAN ID with a source only",
        MacFrame(
            _MP,
            0x84,
            0x4321,
            None,
            0x4321,  # the one PAN ID reads as the source's PAN too
            ACDE1,
            _V15,
            aux=AuxSecurityHeader(5, 5, key_index=1),
            payload=b"\xde\xad\xbe\xef",
            long_fc=True,
        ),
        "cd03 84 2143 010000000048deac 0d 05000000 01 deadbeef",
    ),
]


@pytest.mark.parametrize(
    ("frame", "octets"), [g[1:] for g in MP_GOLDEN], ids=[g[0] for g in MP_GOLDEN]
)
def test_multipurpose_golden_octets(frame: MacFrame, octets: str) -> None:
    raw = bytes.fromhex(octets.replace(" ", ""))
    assert frame.to_bytes() == raw
    assert parse_mpdu_unchecked(raw) == frame
    assert parse_mpdu(build_mpdu(frame, 2), 2) == frame


def test_multipurpose_helper_picks_the_frame_control_form() -> None:
    short = MacFrame.multipurpose(src=METER, dst=Address.short(0x1234), pan=None, seq=0x2A)
    assert not short.long_fc and short.to_bytes()[:1] == b"\xe5"
    long = MacFrame.multipurpose(src=ACDE1, dst=None, pan=0x4321, seq=1)
    assert long.long_fc and long.src_pan == 0x4321 and long.to_bytes()[:2] == b"\xcd\x01"
    assert parse_mpdu_unchecked(long.to_bytes()) == long
    with pytest.raises(ValueError, match="own frame control"):
        _ = long.frame_control


MPX_GOLDEN: list[tuple[str, MpxIE, str]] = [
    # descriptor 0x9800 | length (on air: length low octet, then 98), then the content
    ("full frame, KMP", _KMP_HI, "0698 28 0100 08 6869"),
    (
        # transfer type 1, transaction ID 4: 4 << 3 | 1 = 21
        "full frame, no Multiplex ID",
        MpxIE(MpxTransferType.FULL_FRAME_NO_MULTIPLEX_ID, 4, data=b"zz"),
        "0398 21 7a7a",
    ),
    (
        # transfer type 2, transaction ID 7: 7 << 3 | 2 = 3A; fragment 0; total size 300 =
        # 0x012C; Multiplex ID 0x88B5 (an EtherType)
        "first fragment",
        MpxIE(MpxTransferType.NON_LAST_FRAGMENT, 7, 0x88B5, 0, 300, b"ab"),
        "0898 3a 00 2c01 b588 6162",
    ),
    (
        "middle fragment",
        MpxIE(MpxTransferType.NON_LAST_FRAGMENT, 7, fragment_number=1, data=b"cd"),
        "0498 3a 01 6364",
    ),
    (
        # transfer type 4: 7 << 3 | 4 = 3C
        "last fragment",
        MpxIE(MpxTransferType.LAST_FRAGMENT, 7, fragment_number=2, data=b"ef"),
        "0498 3c 02 6566",
    ),
    (
        # transfer type 6: 7 << 3 | 6 = 3E; total size 300
        "abort with total size",
        MpxIE(MpxTransferType.ABORT, 7, total_size=300),
        "0398 3e 2c01",
    ),
    # transaction ID 31: F8 | 6 = FE
    ("abort without total size", MpxIE(MpxTransferType.ABORT, 31), "0198 fe"),
    (
        # A one-fragment transfer sent as a last fragment numbered 0 is read like a first
        # fragment (size and Multiplex ID), as Nanostack does; tshark 4.0 reads only the
        # fragment number there (see test_tshark.py).
        "last fragment numbered 0",
        MpxIE(MpxTransferType.LAST_FRAGMENT, 0, 1, 0, 2, b"\x08\x01"),
        "0898 04 00 0200 0100 0801",
    ),
]


@pytest.mark.parametrize(
    ("ie", "octets"), [g[1:] for g in MPX_GOLDEN], ids=[g[0] for g in MPX_GOLDEN]
)
def test_mpx_golden_octets(ie: MpxIE, octets: str) -> None:
    raw = bytes.fromhex(octets.replace(" ", ""))
    assert ie.to_bytes() == raw
    assert MpxIE.from_bytes(raw) == ie
    assert PayloadIE.from_bytes(raw) == ie.to_payload_ie()
    assert ie.kmp_id == (8 if ie.multiplex_id == 1 and ie.data[:1] == b"\x08" else None)


@pytest.mark.parametrize(
    ("content", "reason", "offset"),
    [
        (b"", "MPX IE without transaction control", 0),
        (b"\x03", "reserved MPX transfer type 3", 0),
        (b"\x05", "reserved MPX transfer type 5", 0),
        (b"\xff", "reserved MPX transfer type 7", 0),
        (b"\x02", "truncated MPX fragment number", 1),
        (b"\x04\x00\x2c", "truncated MPX total size", 2),
        (b"\x02\x00\x2c\x01\xb5", "truncated MPX multiplex ID", 4),
        (b"\x00\x01", "truncated MPX multiplex ID", 1),
        (b"\x06\x00", "MPX abort with other than 0 or 2 octets", 1),
        (b"\x06\x00\x00\x00", "MPX abort with other than 0 or 2 octets", 1),
    ],
)
def test_refused_mpx_ies(content: bytes, reason: str, offset: int) -> None:
    with pytest.raises(FrameError) as e:
        MpxIE.from_payload_ie(PayloadIE(MpxIE.GROUP_ID, content))
    assert (e.value.reason, e.value.offset) == (reason, offset)


def test_mpx_view_refuses_other_groups() -> None:
    with pytest.raises(FrameError, match="not MPX"):
        MpxIE.from_payload_ie(PayloadIE(0x2, b"\x00\x01\x00"))
    with pytest.raises(FrameError, match="not exactly one payload IE"):
        MpxIE.from_bytes(_KMP_HI.to_bytes() * 2)


_T = MpxTransferType


@pytest.mark.parametrize(
    "kwargs",
    [
        {"transfer_type": 3, "transaction_id": 0},
        {"transfer_type": _T.ABORT, "transaction_id": 32},
        {"transfer_type": _T.FULL_FRAME, "transaction_id": 0},  # needs a Multiplex ID
        {"transfer_type": _T.FULL_FRAME, "transaction_id": 0, "multiplex_id": 0x10000},
        {"transfer_type": _T.FULL_FRAME_NO_MULTIPLEX_ID, "transaction_id": 0, "multiplex_id": 1},
        {"transfer_type": _T.NON_LAST_FRAGMENT, "transaction_id": 0},  # no fragment number
        {"transfer_type": _T.NON_LAST_FRAGMENT, "transaction_id": 0, "fragment_number": 0},
        {"transfer_type": _T.LAST_FRAGMENT, "transaction_id": 0, "fragment_number": 256},
        {
            "transfer_type": _T.LAST_FRAGMENT,
            "transaction_id": 0,
            "fragment_number": 1,
            "total_size": 9,
        },
        {"transfer_type": _T.ABORT, "transaction_id": 0, "fragment_number": 1},
        {"transfer_type": _T.ABORT, "transaction_id": 0, "data": b"x"},
        {"transfer_type": _T.ABORT, "transaction_id": 0, "total_size": 0x10000},
        {
            "transfer_type": _T.NON_LAST_FRAGMENT,
            "transaction_id": 0,
            "multiplex_id": 1,
            "fragment_number": 0,
            "total_size": 1,
            "data": bytes(2042),
        },
    ],
)
def test_bad_mpx_ies(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MpxIE(**kwargs)


@pytest.mark.parametrize(
    ("raw", "reason", "offset"),
    [
        (b"\x05", "truncated sequence number", 1),
        (b"\x0d\x00", "truncated sequence number", 2),
        (b"\x15\x00", "reserved destination addressing mode 1", 0),
        (b"\x45\x00", "reserved source addressing mode 1", 0),
        (b"\x0d\x10\x00", "reserved multipurpose frame version 1", 1),
        (b"\x0d\x30\x00", "reserved multipurpose frame version 3", 1),
        (b"\x0d\x01\x00\x34", "truncated PAN ID", 3),
        (b"\x25\x00\x34", "truncated destination address", 2),
        (b"\xc5\x00" + bytes(7), "truncated source address", 2),
        (b"\x0d\x02\x00", "truncated auxiliary security header", 3),
        (b"\x0d\x02\x00\x07" + bytes(4) + bytes(15), "frame shorter than its 16-octet MIC", 8),
        (b"\x0d\x80\x00\x00\x88", "payload IE without a header termination IE", 3),
        (b"\x0d\x80\x00" + HT1 + b"\x00\x08", "header IE among payload IEs", 5),
    ],
)
def test_refused_multipurpose_frames(raw: bytes, reason: str, offset: int) -> None:
    with pytest.raises(FrameError) as e:
        parse_mpdu_unchecked(raw)
    assert (e.value.reason, e.value.offset) == (reason, offset)


@pytest.mark.parametrize(
    "frame",
    [
        MacFrame(_MP, 1, 0x1234, version=_V15),  # a PAN ID needs the long form
        MacFrame(_MP, None, version=_V15),  # so does sequence number suppression
        MacFrame(_MP, 1, version=_V15, ack_request=True),
        MacFrame(_MP, 1, version=_V15, frame_pending=True),
        MacFrame(_MP, 1, version=_V15, aux=AuxSecurityHeader(5, 1), payload=bytes(4)),
        MacFrame(_MP, 1, version=_V15, ie_present=True, header_ies=(_HIE,)),
        MacFrame(_MP, 1, version=_V15, pan_id_compression=True, long_fc=True),
        MacFrame(_MP, 1, None, None, 0x1234, _SR, _V15, long_fc=True),  # src PAN, no PAN ID
        MacFrame(_MP, 1, 1, None, 2, _SR, _V15, long_fc=True),  # a second PAN ID
        MacFrame(_MP, 1, version=FrameVersion.V2006),
        MacFrame(_MP, 256, version=_V15),
        MacFrame(FrameType.DATA, 1, 1, _D, long_fc=True),  # long_fc is for multipurpose only
    ],
)
def test_builder_refuses_multipurpose_contradictions(frame: MacFrame) -> None:
    with pytest.raises(ValueError):
        frame.to_bytes()


# --- properties ----------------------------------------------------------------------------

_addresses = st.one_of(
    st.integers(0, 0xFFFF).map(Address.short),
    st.integers(0, (1 << 64) - 1).map(Address.ext),
)
_header_ies = st.builds(
    HeaderIE, st.integers(0, 0xFF).filter(lambda i: i not in (0x7E, 0x7F)), st.binary(max_size=12)
)
_tids = st.integers(0, 31)
_mpx_data = st.binary(max_size=12)
_mpx_ies = st.one_of(
    st.builds(MpxIE, st.just(_T.FULL_FRAME), _tids, st.integers(0, 0xFFFF), data=_mpx_data),
    st.builds(MpxIE, st.just(_T.FULL_FRAME_NO_MULTIPLEX_ID), _tids, data=_mpx_data),
    st.builds(  # first fragment: Total Size and Multiplex ID
        MpxIE,
        st.sampled_from([_T.NON_LAST_FRAGMENT, _T.LAST_FRAGMENT]),
        _tids,
        st.integers(0, 0xFFFF),
        st.just(0),
        st.integers(0, 0xFFFF),
        _mpx_data,
    ),
    st.builds(  # middle or last fragment: Fragment Number only
        MpxIE,
        st.sampled_from([_T.NON_LAST_FRAGMENT, _T.LAST_FRAGMENT]),
        _tids,
        fragment_number=st.integers(1, 255),
        data=_mpx_data,
    ),
    st.builds(MpxIE, st.just(_T.ABORT), _tids, total_size=st.none() | st.integers(0, 0xFFFF)),
)
# Payload IEs of every group (unknown ones included), MPX IEs among them.
_payload_ies = st.one_of(
    st.builds(PayloadIE, st.integers(0, 14), st.binary(max_size=12)),
    _mpx_ies.map(MpxIE.to_payload_ie),
)


def _draw_aux(draw: st.DrawFn, v2: bool) -> AuxSecurityHeader:
    kim = draw(st.integers(0, 3))
    return AuxSecurityHeader(
        level=draw(st.integers(1, 7)),
        frame_counter=draw((st.none() if v2 else st.nothing()) | st.integers(0, 2**32 - 1)),
        key_index=None if kim == 0 else draw(st.integers(0, 255)),
        key_source=draw(st.binary(min_size=(0, 0, 4, 8)[kim], max_size=(0, 0, 4, 8)[kim])),
        asn_in_nonce=v2 and draw(st.booleans()),
    )


def _draw_ies_and_payload(
    draw: st.DrawFn, aux: AuxSecurityHeader | None
) -> tuple[bool, tuple[HeaderIE, ...], tuple[PayloadIE, ...], bool, bytes]:
    """ie_present, header IEs, payload IEs, secured_payload_ies and payload of a 2015 frame."""
    ie_present = draw(st.booleans())
    header_ies = tuple(draw(st.lists(_header_ies, max_size=3))) if ie_present else ()
    payload_ies = (
        tuple(draw(st.lists(_payload_ies, max_size=3))) if ie_present and aux is None else ()
    )
    secured_pies = ie_present and aux is not None and draw(st.booleans())
    payload = draw(st.binary(min_size=aux.mic_len if aux else 0, max_size=40))
    return ie_present, header_ies, payload_ies, secured_pies, payload


@st.composite
def mac_frames(draw: st.DrawFn) -> MacFrame:
    """Frames of types 0-3 (general frame control), every version and option."""
    version = draw(st.sampled_from(FrameVersion))
    v2 = version == FrameVersion.V2015
    frame_type = draw(
        st.sampled_from([FrameType.BEACON, FrameType.DATA, FrameType.ACK, FrameType.COMMAND])
    )
    dst = draw(st.none() | _addresses)
    src = draw(st.none() | _addresses)
    choices = [c for c in (False, True) if _presence(version, dst, src, c) is not None]
    panidc = draw(st.sampled_from(choices))
    layout = _presence(version, dst, src, panidc)
    assert layout is not None
    d_sent, s_sent = layout
    dst_pan = draw(st.integers(0, 0xFFFF)) if d_sent else None
    src_pan: int | None
    if s_sent:
        src_pan = draw(st.integers(0, 0xFFFF))
    else:
        src_pan = dst_pan if src is not None and d_sent else None
    seq = draw(st.none() | st.integers(0, 255)) if v2 else draw(st.integers(0, 255))
    aux = None
    if version != FrameVersion.V2003 and draw(st.booleans()):
        aux = _draw_aux(draw, v2)
    if v2:
        ie_present, header_ies, payload_ies, secured_pies, payload = _draw_ies_and_payload(
            draw, aux
        )
    else:
        ie_present, header_ies, payload_ies, secured_pies = False, (), (), False
        payload = draw(st.binary(min_size=aux.mic_len if aux else 0, max_size=40))
    return MacFrame(
        frame_type,
        seq,
        dst_pan,
        dst,
        src_pan,
        src,
        version,
        frame_pending=draw(st.booleans()),
        ack_request=draw(st.booleans()),
        pan_id_compression=panidc,
        ie_present=ie_present,
        aux=aux,
        header_ies=header_ies,
        payload_ies=payload_ies,
        payload=payload,
        secured_payload_ies=secured_pies,
    )


@st.composite
def mp_frames(draw: st.DrawFn) -> MacFrame:
    """Multipurpose frames: the short frame control (addresses and a sequence number only)
    or the long one with every option (PAN ID, security, seq suppression, IEs, AR, FP)."""
    dst = draw(st.none() | _addresses)
    src = draw(st.none() | _addresses)
    if not draw(st.booleans()):
        seq = draw(st.integers(0, 255))
        payload = draw(st.binary(max_size=40))
        return MacFrame(_MP, seq, None, dst, None, src, _V15, payload=payload)
    pan = draw(st.none() | st.integers(0, 0xFFFF))
    seq_or_none = draw(st.none() | st.integers(0, 255))
    aux = _draw_aux(draw, True) if draw(st.booleans()) else None
    ie_present, header_ies, payload_ies, secured_pies, payload = _draw_ies_and_payload(draw, aux)
    return MacFrame(
        _MP,
        seq_or_none,
        pan,
        dst,
        pan if pan is not None and src is not None else None,
        src,
        _V15,
        frame_pending=draw(st.booleans()),
        ack_request=draw(st.booleans()),
        ie_present=ie_present,
        aux=aux,
        header_ies=header_ies,
        payload_ies=payload_ies,
        payload=payload,
        secured_payload_ies=secured_pies,
        long_fc=True,
    )


any_frames = st.one_of(mac_frames(), mp_frames())


@settings(max_examples=500, deadline=None)
@given(mac_frames(), st.sampled_from([2, 4]))
def test_build_parse_round_trip(frame: MacFrame, fcs_len: int) -> None:
    mpdu = build_mpdu(frame, fcs_len)
    assert parse_mpdu(mpdu, fcs_len) == frame
    assert MacFrame.from_bytes(frame.to_bytes()) == frame
    assert FrameControl.from_bytes(mpdu[:2]) == frame.frame_control


def _mp_header(frame: MacFrame) -> bytes:
    """The multipurpose MHR up to the addresses, written independently of the builder from
    the 802.15.4-2015 layout (see MP_GOLDEN)."""
    dmode = frame.dst.mode if frame.dst else 0
    smode = frame.src.mode if frame.src else 0
    fc = 5 | frame.long_fc << 3 | dmode << 4 | smode << 6
    if frame.long_fc:
        fc |= (
            (frame.dst_pan is not None) << 8
            | (frame.aux is not None) << 9
            | (frame.seq is None) << 10
            | frame.frame_pending << 11
            | frame.ack_request << 14
            | frame.ie_present << 15
        )
    out = fc.to_bytes(2 if frame.long_fc else 1, "little")
    out += b"" if frame.seq is None else bytes([frame.seq])
    out += b"" if frame.dst_pan is None else frame.dst_pan.to_bytes(2, "little")
    out += frame.dst.to_bytes() if frame.dst else b""
    return out + (frame.src.to_bytes() if frame.src else b"")


@settings(max_examples=400, deadline=None)
@given(mp_frames(), st.sampled_from([2, 4]))
def test_multipurpose_build_parse_round_trip(frame: MacFrame, fcs_len: int) -> None:
    mpdu = build_mpdu(frame, fcs_len)
    assert parse_mpdu(mpdu, fcs_len) == frame
    raw = frame.to_bytes()
    assert MacFrame.from_bytes(raw) == frame
    header = _mp_header(frame)
    assert raw.startswith(header)
    rest = raw[len(header) :]
    if frame.aux is not None:
        assert rest.startswith(frame.aux.to_bytes())
        rest = rest[len(frame.aux.to_bytes()) :]
    assert rest in _ie_tails(frame)


@settings(max_examples=400, deadline=None)
@given(_mpx_ies, st.lists(_payload_ies, max_size=2), st.binary(max_size=8), st.booleans())
def test_mpx_ie_round_trip(
    ie: MpxIE, others: list[PayloadIE], payload: bytes, multipurpose: bool
) -> None:
    raw = ie.to_bytes()
    content = raw[2:]
    assert raw[:2] == (0x8000 | 3 << 11 | len(content)).to_bytes(2, "little")
    assert content[0] == ie.transfer_type | ie.transaction_id << 3
    fields = (ie.fragment_number, ie.total_size, ie.multiplex_id)
    widths = sum(w for v, w in zip(fields, (1, 2, 2), strict=True) if v is not None)
    assert len(content) == 1 + widths + len(ie.data) and content.endswith(ie.data)
    assert MpxIE.from_bytes(raw) == ie
    assert MpxIE.from_payload_ie(PayloadIE.from_bytes(raw)) == ie
    # ... and inside a frame, among other payload IEs
    pies = (*others, ie.to_payload_ie())
    if multipurpose:
        frame = MacFrame.multipurpose(src=ACDE1, dst=None, pan=None, seq=1, payload_ies=pies)
    else:
        frame = MacFrame.data(
            src=ACDE1, dst=ACDE2, dst_pan=None, seq=1, version=_V15, payload_ies=pies
        )
    frame = replace(frame, payload=payload)
    got = parse_mpdu(build_mpdu(frame, 4), 4)
    assert got == frame
    assert MpxIE.from_payload_ie(got.payload_ies[-1]) == ie


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=24))
def test_mpx_view_of_any_content(content: bytes) -> None:
    """Any content reads as an MPX IE that gives back the same octets, or a FrameError."""
    try:
        ie = MpxIE.from_payload_ie(PayloadIE(MpxIE.GROUP_ID, content))
    except FrameError:
        return
    assert ie.content() == content


# The MacFrame docstring's promise: every parsed frame builds, and parses back equal; the
# octets rebuilt differ from those received only by reserved frame control bit 7 and by
# redundant termination IEs. _ie_tails lists, for a frame, every IE/payload tail (after
# the MHR and auxiliary security header) that parses to its IEs and payload: the builder's
# first, then those with redundant terminators.


def _ie_tails(f: MacFrame) -> list[bytes]:
    if not f.ie_present:
        return [f.payload]
    h = b"".join(ie.to_bytes() for ie in f.header_ies)
    d = f.payload
    if f.aux is not None:  # the parser stops after the header IEs
        if f.secured_payload_ies:
            return [h + HT1 + d]
        if len(d) > f.aux.mic_len:
            return [h + HT2 + d]
        return [h + d, h + HT2 + d]  # HT2 before nothing but the MIC
    p = b"".join(ie.to_bytes() for ie in f.payload_ies)
    if f.payload_ies:
        return [h + HT1 + p + PT + d] if d else [h + HT1 + p, h + HT1 + p + PT]
    if d:
        return [h + HT2 + d, h + HT1 + PT + d]  # HT1 with no payload IE after it
    return [h, h + HT2, h + HT1, h + HT1 + PT]


def _check_rebuild(raw: bytes, frame: MacFrame) -> None:
    """``frame = parse(raw)``: it builds, parses back equal, and the built octets are
    ``raw`` but for FC bit 7 and redundant terminators (never longer)."""
    rebuilt = frame.to_bytes()
    assert parse_mpdu_unchecked(rebuilt) == frame
    received = raw
    if frame.frame_type != FrameType.MULTIPURPOSE:
        received = bytes([raw[0] & 0x7F]) + raw[1:]  # reserved bit 7 is sent as 0
    tails = _ie_tails(frame)
    mhr = len(rebuilt) - len(tails[0])
    assert rebuilt[mhr:] == tails[0]
    assert received[:mhr] == rebuilt[:mhr]
    assert received[mhr:] in tails
    assert len(rebuilt) <= len(raw)


@settings(max_examples=300, deadline=None)
@given(any_frames, st.data())
def test_redundant_forms_parse_to_the_same_frame(frame: MacFrame, data: st.DataObject) -> None:
    raw = frame.to_bytes()
    tails = _ie_tails(frame)
    mhr = raw[: len(raw) - len(tails[0])]
    assert mhr + tails[0] == raw
    variant = mhr + data.draw(st.sampled_from(tails))
    if frame.frame_type != FrameType.MULTIPURPOSE and data.draw(st.booleans()):
        variant = bytes([variant[0] | 0x80]) + variant[1:]
    got = parse_mpdu_unchecked(variant)
    assert got == frame
    assert got.to_bytes() == raw
    _check_rebuild(variant, got)


def test_redundant_form_examples() -> None:
    # The ones the MacFrame docstring names, on the 2015 MHR used above.
    base = parse_mpdu_unchecked(_MHR_2015)
    for tail, payload in [
        (HT1, b""),  # HT1 with no payload IE after it ...
        (HT1 + PT, b""),
        (HT1 + PT + b"data", b"data"),  # ... rebuilt as HT2 + data
        (HT2, b""),  # HT2 with nothing after it
        (HT1 + _PIE.to_bytes() + PT, b""),  # PT with no MAC payload after it
    ]:
        got = parse_mpdu_unchecked(_MHR_2015 + tail)
        assert got.payload == payload
        assert len(got.to_bytes()) < len(_MHR_2015 + tail)
        _check_rebuild(_MHR_2015 + tail, got)
    bit7 = bytes([_MHR_2015[0] | 0x80]) + _MHR_2015[1:]
    assert parse_mpdu_unchecked(bit7) == base and base.to_bytes() == _MHR_2015
    # a secured frame: HT2 before nothing but the MIC
    secured = MacFrame.data(
        src=METER,
        dst=Address.short(2),
        dst_pan=0x1234,
        seq=1,
        version=_V15,
        aux=AuxSecurityHeader(5, 1),
        header_ies=(_HIE,),
        payload=b"MIC!",
    )
    raw = secured.to_bytes()
    assert raw.endswith(_HIE.to_bytes() + b"MIC!")
    with_ht2 = raw[:-4] + HT2 + b"MIC!"
    assert parse_mpdu_unchecked(with_ht2) == secured
    _check_rebuild(with_ht2, secured)


def _parse_or_none(raw: bytes) -> MacFrame | None:
    try:
        return parse_mpdu_unchecked(raw)
    except FrameError:
        return None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_octets_raise_only_frame_error(raw: bytes) -> None:
    frame = _parse_or_none(raw)
    if frame is not None:
        _check_rebuild(raw, frame)
    for fcs_len in (2, 4):
        framed = raw + compute_fcs(raw, fcs_len)
        with pytest.raises(FrameError):
            parse_mpdu(framed[:-1] + bytes([framed[-1] ^ 0x01]), fcs_len)
        with contextlib.suppress(FrameError):
            parse_mpdu(raw, fcs_len)
        if frame is None:
            with pytest.raises(FrameError):
                parse_mpdu(framed, fcs_len)
        else:
            assert parse_mpdu(framed, fcs_len) == frame


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 0xFF), st.binary(max_size=48))
def test_arbitrary_multipurpose_octets(fc0: int, rest: bytes) -> None:
    """The same for octets that start with a multipurpose frame control."""
    raw = bytes([(fc0 & 0xF8) | FrameType.MULTIPURPOSE]) + rest
    frame = _parse_or_none(raw)
    if frame is not None:
        assert frame.frame_type == FrameType.MULTIPURPOSE
        assert frame.long_fc == bool(fc0 & 0x08)
        _check_rebuild(raw, frame)


@settings(max_examples=400, deadline=None)
@given(any_frames, st.data())
def test_damaged_frames_raise_only_frame_error(frame: MacFrame, data: st.DataObject) -> None:
    raw = bytearray(frame.to_bytes())
    cut = data.draw(st.integers(0, len(raw)))
    del raw[cut:]
    if raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    got = _parse_or_none(bytes(raw))
    if got is not None:
        _check_rebuild(bytes(raw), got)
