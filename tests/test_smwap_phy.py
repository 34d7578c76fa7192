"""MR-FSK PHY: PN9, PHR and whole PPDUs against the shared vectors, plus properties."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd.smwap import (
    EU_863_MODE_1,
    EU_863_MODE_2,
    EU_863_MODE_3,
    PHY_MODES,
    SFD_CODED_0,
    SFD_CODED_1,
    SFD_UNCODED_0,
    SFD_UNCODED_1,
    TURNAROUND_S,
    Phr,
    PhyError,
    Ppdu,
    airtime_s,
    build_ppdu,
    compute_fcs,
    parse_ppdu,
    pn9_mask,
    ppdu_bits,
    whiten,
)
from ihd.smwap.phy import ModeSwitchPhr, build_mode_switch_ppdu

VECTORS = json.loads((Path(__file__).parent / "data" / "smwap_vectors.json").read_text())
PN9 = VECTORS["pn9"]


def _octets_from_air(bits: str, header_len: int) -> bytes:
    """Invert the on-air bit order independently of ppdu_bits: header octets MSB first,
    PSDU octets LSB first."""
    out = bytearray()
    for i in range(0, len(bits), 8):
        chunk = bits[i : i + 8]
        out.append(int(chunk if i // 8 < header_len else chunk[::-1], 2))
    return bytes(out)


# --- PN9 -----------------------------------------------------------------------------------


def test_pn9_first_bits_lsb_first() -> None:
    mask = pn9_mask(4)
    bits = "".join(str((octet >> k) & 1) for octet in mask for k in range(8))
    assert bits == PN9["first_32_bits"]


def test_pn9_mask_vectors() -> None:
    assert pn9_mask(16).hex() == PN9["mask_16_octets_lsb_first"]
    msb_packed = bytes(int(f"{o:08b}"[::-1], 2) for o in pn9_mask(16))
    assert msb_packed.hex() == PN9["mask_16_octets_msb_first_packing"]
    assert pn9_mask(16).hex() != PN9["not_this_cc1101_table"]


def test_pn9_mask_repeats_every_511_bits_over_the_whole_table() -> None:
    mask = pn9_mask(2047)
    assert len(mask) == 2047
    bits = "".join(f"{o:08b}"[::-1] for o in mask)
    assert bits[511:] == bits[: len(bits) - 511]
    # An m-sequence of period 511 has 256 ones and 255 zeros per period.
    assert bits[:511].count("1") == 256


def test_pn9_mask_bounds() -> None:
    assert pn9_mask(0) == b""
    with pytest.raises(ValueError):
        pn9_mask(2048)
    with pytest.raises(ValueError):
        pn9_mask(-1)


def test_whiten_zeros_gives_mask() -> None:
    assert whiten(bytes(100)) == pn9_mask(100)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2047))
def test_whiten_is_its_own_inverse(data: bytes) -> None:
    w = whiten(data)
    assert len(w) == len(data)
    assert whiten(w) == data


def test_whiten_refuses_oversized_psdu() -> None:
    with pytest.raises(ValueError):
        whiten(bytes(2048))


# --- PHR -----------------------------------------------------------------------------------


@pytest.mark.parametrize("v", VECTORS["phr"], ids=lambda v: v["phr_octets"])
def test_phr_vectors(v: dict[str, Any]) -> None:
    assert v["mode_switch"] == 0
    assert v["fcs_len"] == (2 if v["fcs_type"] == 1 else 4)
    phr = Phr(v["frame_length"], v["fcs_len"], bool(v["data_whitening"]))
    assert phr.to_bytes().hex() == v["phr_octets"]
    assert Phr.from_bytes(bytes.fromhex(v["phr_octets"])) == phr


@pytest.mark.parametrize(
    ("octets", "reason"),
    [
        ("8814", "mode switch PHR: BCH checksum mismatch"),
        ("8815", "mode switch PHR: parity check failed"),
        ("4814", "reserved PHR bits set"),
        ("2814", "reserved PHR bits set"),
    ],
)
def test_phr_refused(octets: str, reason: str) -> None:
    with pytest.raises(PhyError) as e:
        Phr.from_bytes(bytes.fromhex(octets))
    assert e.value.reason == reason


def test_phr_wrong_size() -> None:
    with pytest.raises(PhyError):
        Phr.from_bytes(b"\x18")


@pytest.mark.parametrize(
    ("frame_length", "fcs_len", "mode_switch"),
    [(2048, 2, False), (-1, 2, False), (10, 3, False), (10, 2, True)],
)
def test_phr_bad_fields(frame_length: int, fcs_len: int, mode_switch: bool) -> None:
    with pytest.raises(ValueError):
        Phr(frame_length, fcs_len, True, mode_switch)


# --- mode switch PHR -----------------------------------------------------------------------

ALL_MODE_SWITCHES = [
    ModeSwitchPhr(mode, fec, pe) for mode in range(128) for fec in (False, True) for pe in range(4)
]


def test_every_mode_switch_phr_round_trips_with_ms_set() -> None:
    seen = set()
    for ms in ALL_MODE_SWITCHES:
        octets = ms.to_bytes()
        assert octets[0] & 0x80  # MS, the first bit on air
        assert ModeSwitchPhr.from_bytes(octets) == ms
        seen.add(octets)
    assert len(seen) == 1024


def test_mode_switch_checks_are_a_distance_4_code() -> None:
    """BCH(15,11) is a Hamming code (distance 3); the parity bit makes it 4. So any two
    valid PHRs differ in at least 4 bits, and every 1-, 2- or 3-bit error is refused."""
    words = [int.from_bytes(ms.to_bytes(), "big") for ms in ALL_MODE_SWITCHES]
    assert min((a ^ b).bit_count() for i, a in enumerate(words) for b in words[i + 1 :]) == 4
    rng = random.Random(1)
    for w in rng.sample(words, 64):
        for n in (1, 2, 3):
            for _ in range(8):
                bad = w
                for bit in rng.sample(range(15), n):  # bit 15 is MS: keep it a mode switch
                    bad ^= 1 << bit
                with pytest.raises(PhyError):
                    ModeSwitchPhr.from_bytes(bad.to_bytes(2, "big"))


def test_mode_switch_ppdu_is_shr_and_phr_only() -> None:
    ms = ModeSwitchPhr(new_mode=3)
    ppdu = build_mode_switch_ppdu(ms, preamble_octets=8)
    assert ppdu[:10] == b"\x55" * 8 + bytes.fromhex("904e") and len(ppdu) == 12
    with pytest.raises(PhyError, match="to PHY mode 3"):
        parse_ppdu(ppdu)
    with pytest.raises(ValueError):
        build_mode_switch_ppdu(ms, sfd=SFD_CODED_0)
    with pytest.raises(ValueError):
        ModeSwitchPhr(new_mode=128)


# --- PPDU ----------------------------------------------------------------------------------


@pytest.mark.parametrize("v", VECTORS["ppdu"], ids=lambda v: v["name"])
def test_ppdu_vectors(v: dict[str, Any]) -> None:
    mpdu = bytes.fromhex(v["mpdu_with_fcs"])
    fcs_len = v["fcs_len"]
    assert compute_fcs(mpdu[:-fcs_len], fcs_len) == mpdu[-fcs_len:]

    pre = v["preamble_octets"]
    sfd = int(v["sfd"], 16)
    header_len = pre + 2 + 2
    ppdu = build_ppdu(
        mpdu, fcs_len=fcs_len, whitened=bool(v["data_whitening"]), preamble_octets=pre, sfd=sfd
    )
    assert ppdu[:pre] == b"\x55" * pre
    assert ppdu[pre : pre + 2] == sfd.to_bytes(2, "big")
    assert ppdu[pre + 2 : header_len].hex() == v["phr_octets"]
    assert ppdu[header_len:].hex() == v["psdu_on_air_octets"]
    assert ppdu_bits(ppdu, header_len) == v["on_air_bits"]

    # Parse what the vector says went on air, not what we built.
    got = parse_ppdu(_octets_from_air(v["on_air_bits"], header_len))
    assert got == Ppdu(pre, sfd, Phr(len(mpdu), fcs_len, bool(v["data_whitening"])), mpdu)
    assert got.to_bytes() == ppdu
    assert Ppdu.from_bytes(ppdu) == got


def test_parse_ppdu_tolerates_short_preamble_and_trailing_octets() -> None:
    psdu = b"\x02\x00\x6a" + compute_fcs(b"\x02\x00\x6a", 2)
    ppdu = build_ppdu(psdu, fcs_len=2)
    got = parse_ppdu(ppdu[3:] + b"\xde\xad")
    assert got.preamble_octets == 1
    assert got.psdu == psdu
    assert parse_ppdu(ppdu[4:]).preamble_octets == 0


def test_unwhitened_ppdu_carries_psdu_verbatim() -> None:
    psdu = bytes(range(20))
    ppdu = build_ppdu(psdu, fcs_len=4, whitened=False, preamble_octets=8, sfd=SFD_UNCODED_1)
    assert ppdu == b"\x55" * 8 + b"\x7a\x0e" + b"\x00\x14" + psdu
    assert parse_ppdu(ppdu).sfd == SFD_UNCODED_1


@pytest.mark.parametrize(
    ("ppdu", "reason", "offset"),
    [
        ("", "truncated SFD", 0),
        ("5555555590", "truncated SFD", 4),
        ("55555555904e18", "truncated PHR", 6),
        ("55555555904e1814aabb", "truncated PSDU (2 of 20 octets)", 8),
        ("555555556f4e1814", "truncated coded PHR (2 of 8 octets)", 6),
        ("55555555632d1814", "truncated coded PHR (2 of 8 octets)", 6),
        ("555555551234", "unknown SFD 0x1234", 4),
        ("55555555904e9814", "mode switch PHR: parity check failed", 6),
        ("55555555904e8814", "mode switch PHR: BCH checksum mismatch", 6),
        (
            "55555555904ed0ab",
            "mode switch PHR (to PHY mode 5, FEC) not supported by this receiver",
            6,
        ),
    ],
)
def test_parse_ppdu_errors(ppdu: str, reason: str, offset: int) -> None:
    with pytest.raises(PhyError) as e:
        parse_ppdu(bytes.fromhex(ppdu))
    assert (e.value.reason, e.value.offset) == (reason, offset)
    assert str(e.value) == f"{reason} at offset {offset}"


def test_build_ppdu_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        build_ppdu(bytes(2048), fcs_len=4)
    with pytest.raises(ValueError):
        build_ppdu(b"abcd", fcs_len=4, preamble_octets=3)
    with pytest.raises(ValueError):
        build_ppdu(b"abcd", fcs_len=4, sfd=SFD_CODED_0)
    with pytest.raises(ValueError):
        build_ppdu(b"abcd", fcs_len=4, sfd=0x1234)
    with pytest.raises(ValueError):
        build_ppdu(b"abcd", fcs_len=3)


@settings(max_examples=300, deadline=None)
@given(
    psdu=st.binary(max_size=300),
    fcs_len=st.sampled_from([2, 4]),
    whitened=st.booleans(),
    preamble=st.integers(4, 40),
    sfd=st.sampled_from([SFD_UNCODED_0, SFD_UNCODED_1]),
)
def test_ppdu_round_trip(
    psdu: bytes, fcs_len: int, whitened: bool, preamble: int, sfd: int
) -> None:
    ppdu = build_ppdu(psdu, fcs_len=fcs_len, whitened=whitened, preamble_octets=preamble, sfd=sfd)
    assert parse_ppdu(ppdu) == Ppdu(preamble, sfd, Phr(len(psdu), fcs_len, whitened), psdu)
    bits = ppdu_bits(ppdu, preamble + 4)
    assert len(bits) == 8 * len(ppdu)
    assert _octets_from_air(bits, preamble + 4) == ppdu


_SFD_OCTETS = [s.to_bytes(2, "big") for s in (SFD_UNCODED_0, SFD_UNCODED_1, SFD_CODED_1)]


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=64),
        st.tuples(st.integers(0, 6), st.sampled_from(_SFD_OCTETS), st.binary(max_size=64)).map(
            lambda t: b"\x55" * t[0] + t[1] + t[2]
        ),
    )
)
def test_parse_ppdu_raises_only_phy_error(data: bytes) -> None:
    try:
        got = parse_ppdu(data)
    except PhyError:
        return
    assert len(got.psdu) == got.phr.frame_length


# --- modes, timing -------------------------------------------------------------------------


def test_eu_modes_channel_plans() -> None:
    assert set(PHY_MODES) == {"EU_863_MODE_1", "EU_863_MODE_2", "EU_863_MODE_3"}
    assert EU_863_MODE_1.channel_freq_hz(0) == 863_125_000
    assert EU_863_MODE_1.channel_freq_hz(33) == 869_725_000
    assert EU_863_MODE_2.channel_freq_hz(16) == 869_625_000
    assert EU_863_MODE_3.modulation == "4-FSK"
    for mode in PHY_MODES.values():
        last = mode.channel_freq_hz(mode.n_channels - 1)
        # Every channel lies inside 863-870 MHz.
        assert mode.channel_freq_hz(0) - mode.channel_spacing_hz // 2 >= 863_000_000
        assert last + mode.channel_spacing_hz // 2 <= 870_000_000
        with pytest.raises(ValueError):
            mode.channel_freq_hz(mode.n_channels)
        with pytest.raises(ValueError):
            mode.channel_freq_hz(-1)


def test_airtime_of_imm_ack_at_50_kbps() -> None:
    # Reference section 6: SHR 6 + PHR 2 + 5-octet MPDU = 2.08 ms; 2.40 ms with CRC-32.
    assert airtime_s(EU_863_MODE_1, 5) == pytest.approx(2.08e-3)
    assert airtime_s(EU_863_MODE_1, 7) == pytest.approx(2.40e-3)
    assert airtime_s(EU_863_MODE_3, 5) == pytest.approx(0.52e-3)
    assert TURNAROUND_S == 0.001
