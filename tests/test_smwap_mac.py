"""802.15.4 MAC framing: vectors from the shared reference, hand-read golden frames, the PAN ID
tables, every refusal, and build/parse properties."""

from __future__ import annotations

import contextlib
import json
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


# --- properties ----------------------------------------------------------------------------

_addresses = st.one_of(
    st.integers(0, 0xFFFF).map(Address.short),
    st.integers(0, (1 << 64) - 1).map(Address.ext),
)
_header_ies = st.builds(
    HeaderIE, st.integers(0, 0xFF).filter(lambda i: i not in (0x7E, 0x7F)), st.binary(max_size=12)
)
_payload_ies = st.builds(PayloadIE, st.integers(0, 14), st.binary(max_size=12))


@st.composite
def mac_frames(draw: st.DrawFn) -> MacFrame:
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
        kim = draw(st.integers(0, 3))
        aux = AuxSecurityHeader(
            level=draw(st.integers(1, 7)),
            frame_counter=draw((st.none() if v2 else st.nothing()) | st.integers(0, 2**32 - 1)),
            key_index=None if kim == 0 else draw(st.integers(0, 255)),
            key_source=draw(st.binary(min_size=(0, 0, 4, 8)[kim], max_size=(0, 0, 4, 8)[kim])),
            asn_in_nonce=v2 and draw(st.booleans()),
        )
    ie_present = v2 and draw(st.booleans())
    header_ies = tuple(draw(st.lists(_header_ies, max_size=3))) if ie_present else ()
    payload_ies = (
        tuple(draw(st.lists(_payload_ies, max_size=3))) if ie_present and aux is None else ()
    )
    secured_pies = ie_present and aux is not None and draw(st.booleans())
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


@settings(max_examples=500, deadline=None)
@given(mac_frames(), st.sampled_from([2, 4]))
def test_build_parse_round_trip(frame: MacFrame, fcs_len: int) -> None:
    mpdu = build_mpdu(frame, fcs_len)
    assert parse_mpdu(mpdu, fcs_len) == frame
    assert MacFrame.from_bytes(frame.to_bytes()) == frame
    assert FrameControl.from_bytes(mpdu[:2]) == frame.frame_control


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
        # Whatever parses builds again to the same frame. The octets can only get shorter:
        # the builder leaves out redundant IE terminators (and clears reserved FC bit 7).
        rebuilt = frame.to_bytes()
        assert parse_mpdu_unchecked(rebuilt) == frame
        assert len(rebuilt) <= len(raw)
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
@given(mac_frames(), st.data())
def test_damaged_frames_raise_only_frame_error(frame: MacFrame, data: st.DataObject) -> None:
    raw = bytearray(frame.to_bytes())
    cut = data.draw(st.integers(0, len(raw)))
    del raw[cut:]
    if raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    got = _parse_or_none(bytes(raw))
    if got is not None:
        assert parse_mpdu_unchecked(got.to_bytes()) == got
