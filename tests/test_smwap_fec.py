"""MR-FSK FEC: the 802.15.4g Annex O coded examples, the interleaver, error correction, the
PPDU hooks and the decoder's speed.

The two example bit streams below are IEEE 802.15.4g-2012 Annex O, example 3 (O.4.8: 2-FSK,
RSC, interleaved, whitened, phyMRFSKSFD 0) and example 4 (O.5.6: NRNSC, interleaved, not
whitened, phyMRFSKSFD 1), as transcribed into the public sun_phy project
(SebastienDeriaz/sun_phy, sun_phy/tests/O.4.8.csv and sun_phy/tests/tables/O.5.6.csv).
Both use the same 7-octet PSDU with a 4-octet FCS type, given there as its on-air bits
(``PSDU_BITS``); we read the octets from those bits by hand (LSB first per octet).
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd.smwap import (
    EU_863_MODE_1,
    SFD_CODED_0,
    SFD_CODED_1,
    SFD_UNCODED_0,
    SFD_UNCODED_1,
    TURNAROUND_S,
    Phr,
    PhyError,
    Ppdu,
    ack_wait_s,
    airtime_s,
    build_ppdu,
    fec,
    parse_ppdu,
    pn9_mask,
    ppdu_bits,
)
from ihd.smwap.fec import FecScheme

PSDU_BITS = "01000000000000000101011001011101001010011111101000101000"
PSDU = bytes.fromhex("02006aba945f14")  # the same bits, each octet read LSB first
SHR_BITS = "01010101" * 4  # 4 preamble octets

ANNEX_O_EXAMPLE_3 = (  # O.4.8 after the SHR: coded, interleaved, whitened PHR + PSDU
    "11000000111010000110100000001100"
    "10100101110110101011000001101111"
    "10010000100111000001111111100110"
    "10101010010011001010000011101001"
    "10011001100111110001001010011011"
)
ANNEX_O_EXAMPLE_4 = (  # O.5.6 after the SHR: coded, interleaved, not whitened
    "10111111011111110011111111111111"
    "11111100111111011111110011110010"
    "00110111101010101011110010110111"
    "01011110000100111010010001011101"
    "10110010111100001011010000111100"
)


def test_psdu_octets_are_the_annex_bits() -> None:
    bits = "".join(f"{o:08b}"[::-1] for o in PSDU)
    assert bits == PSDU_BITS


@pytest.mark.parametrize(
    ("scheme", "whitened", "sfd", "sfd_bits", "coded_bits"),
    [
        ("rsc", True, SFD_UNCODED_0, "0110111101001110", ANNEX_O_EXAMPLE_3),
        ("nrnsc", False, SFD_UNCODED_1, "0110001100101101", ANNEX_O_EXAMPLE_4),
    ],
)
def test_annex_o_examples(
    scheme: FecScheme, whitened: bool, sfd: int, sfd_bits: str, coded_bits: str
) -> None:
    ppdu = build_ppdu(PSDU, fcs_len=4, whitened=whitened, sfd=sfd, fec=scheme)
    assert ppdu_bits(ppdu, len(ppdu)) == SHR_BITS + sfd_bits + coded_bits
    # PHR: 7 octets, FCS type 0, DW as given; 9 octets in, so 5 pad bits: 80 code symbols.
    assert fec.coded_octets(len(PSDU)) == len(coded_bits) // 8 == 20
    got = parse_ppdu(ppdu)
    assert got == Ppdu(4, int(sfd_bits, 2), Phr(7, 4, whitened), PSDU, scheme, True)
    assert got.fec_corrected_bits == 0
    assert got.to_bytes() == ppdu
    assert parse_ppdu(ppdu, fec_scheme=scheme) == got


def test_annex_o_example_3_stages() -> None:
    """The encoder alone, then interleaving, then whitening, reproduce example 3."""
    phr = Phr(7, 4, True).to_bytes()
    assert phr.hex() == "0807"
    in_bits = [int(b) for b in f"{phr[0]:08b}{phr[1]:08b}" + PSDU_BITS]
    coded = fec.encode_bits(in_bits, "rsc")
    assert len(coded) == 160
    # RSC is systematic: every second code bit (u0) is the input, tail and pad included.
    assert coded[1::2][:72] == in_bits
    assert coded[1::2][75:] == [0, 1, 0, 1, 1]  # the odd-length pad
    il = fec.interleave(coded)
    # Whitening: one PN9 bit per code bit after the 32 of the PHR (pn9_mask packs LSB first).
    white = "".join(f"{o:08b}"[::-1] for o in pn9_mask(16))
    out = il[:32] + [b ^ int(w) for b, w in zip(il[32:], white, strict=True)]
    assert "".join(map(str, out)) == ANNEX_O_EXAMPLE_3


# --- the interleaver -----------------------------------------------------------------------


def test_interleaver_block_map() -> None:
    """Symbol k of a 16-symbol block goes to 15 - 4 (k mod 4) - floor(k / 4), typed out:
    output positions 0..15 take input symbols 15 11 7 3 14 10 6 2 13 9 5 1 12 8 4 0."""
    tagged = [bit for k in range(16) for bit in (k, 100 + k)]  # unique per bit
    out = fec.interleave(tagged)
    assert out[0::2] == [15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0]
    assert out[1::2] == [100 + k for k in out[0::2]]  # a symbol's two bits stay together


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.randoms(use_true_random=False))
def test_interleaver_is_a_permutation_and_its_own_inverse(blocks: int, rng: random.Random) -> None:
    bits = list(range(32 * blocks))
    rng.shuffle(bits)
    out = fec.interleave(bits)
    assert sorted(out) == sorted(bits)
    assert fec.deinterleave(out) == bits
    for b in range(blocks):  # blocks never mix
        assert set(out[32 * b : 32 * b + 32]) == set(bits[32 * b : 32 * b + 32])


def test_interleaver_needs_whole_blocks() -> None:
    with pytest.raises(ValueError):
        fec.interleave([0] * 31)


# --- the encoders --------------------------------------------------------------------------


def test_encoders_by_hand() -> None:
    # A lone 1 into the all-zero NRNSC register: u1 = NOT(b^M1^M2), u0 = NOT(b^M0^M1^M2),
    # impulse response 13/17 (octal) inverted.
    zeros = fec.encode_bits([0] * 8, "nrnsc")
    assert zeros[:16] == [1] * 16  # all-zero input gives all-one code bits
    one = fec.encode_bits([1] + [0] * 7, "nrnsc")
    u1, u0 = one[0:8:2], one[1:8:2]
    assert [1 - b for b in u1] == [1, 0, 1, 1]  # 13 octal = 1011
    assert [1 - b for b in u0] == [1, 1, 1, 1]  # 17 octal = 1111
    # RSC: u0 is the input; u1 of a lone 1 follows the recursive register.
    # Worked by hand: register (M0 M1 M2) 000 -> 100 -> 110 -> 011 -> 001 -> 100 -> ...,
    # u1 = f ^ M1 ^ M2 with f the bit entering M0.
    rsc = fec.encode_bits([1] + [0] * 7, "rsc")
    assert rsc[1:16:2] == [1, 0, 0, 0, 0, 0, 0, 0]
    assert rsc[0:16:2] == [1, 1, 1, 0, 0, 1, 1, 0]


@pytest.mark.parametrize("scheme", ["nrnsc", "rsc"])
@pytest.mark.parametrize("n_octets", [1, 2, 3, 10])
def test_tail_returns_to_zero_and_pad_fills_blocks(scheme: FecScheme, n_octets: int) -> None:
    rng = random.Random(n_octets)
    bits = [rng.randrange(2) for _ in range(8 * n_octets)]
    coded = fec.encode_bits(bits, scheme)
    assert len(coded) % 32 == 0
    # Decoding with the path forced to end in state 0 after the tail finds the input.
    n = len(bits) + 3
    got, metric = fec.viterbi_decode(coded, scheme, n)
    assert got[: len(bits)] == bits and metric == 0


def test_encoder_refusals() -> None:
    with pytest.raises(ValueError):
        fec.encode_bits([0] * 7, "nrnsc")
    with pytest.raises(ValueError):
        fec.encode_bits([0] * 8, "turbo")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fec.encode_frame(b"\x00\x00", b"", "nrnsc", interleaved=False, whitened=False)
    with pytest.raises(ValueError):
        fec.coded_octets(2048)


# --- error correction ----------------------------------------------------------------------


def _flip(octets: bytes, positions: list[int] | range) -> bytes:
    out = bytearray(octets)
    for p in positions:
        out[p // 8] ^= 0x80 >> (p % 8)
    return bytes(out)


def _coded(rng: random.Random, scheme: FecScheme, il: bool) -> tuple[bytes, bytes, bool, bytes]:
    n = rng.randrange(0, 80)
    psdu = bytes(rng.randrange(256) for _ in range(n))
    dw = rng.random() < 0.5
    phr = Phr(n, 2, dw).to_bytes()
    return phr, psdu, dw, fec.encode_frame(phr, psdu, scheme, interleaved=il, whitened=dw)


@pytest.mark.parametrize(("scheme", "il"), [("nrnsc", True), ("rsc", True), ("rsc", False)])
def test_scattered_errors_are_corrected(scheme: FecScheme, il: bool) -> None:
    """One flipped code bit every 64 to 93 bits on air, over whole frames: always corrected,
    PHR included, and the decoder counts every flip."""
    rng = random.Random(7)
    for _ in range(60):
        phr, psdu, dw, coded = _coded(rng, scheme, il)
        flips = list(range(rng.randrange(64), 8 * len(coded), 64 + rng.randrange(30)))
        damaged = _flip(coded, flips)
        assert fec.decode_phr(damaged, scheme, interleaved=il) == (phr, scheme)
        got = fec.decode_frame(damaged, len(psdu), scheme, interleaved=il, whitened=dw)
        assert (got.phr, got.psdu) == (phr, psdu)
        # The count covers data and tail; flips in the pad bits are not decoded.
        errors = [0] * (8 * len(coded))
        for p in flips:
            errors[p] = 1
        if il:
            errors = fec.deinterleave(errors)
        assert got.corrected_bits == sum(errors[: 2 * (16 + 8 * len(psdu) + 3)])


@pytest.mark.parametrize("scheme", ["nrnsc", "rsc"])
def test_every_single_and_double_burst_is_corrected(scheme: FecScheme) -> None:
    phr = Phr(12, 2, True).to_bytes()
    psdu = bytes(range(0xA0, 0xAC))
    coded = fec.encode_frame(phr, psdu, scheme, whitened=True)
    n = 8 * len(coded)
    for start in range(n - 1):
        for length in (1, 2):
            got = fec.decode_frame(
                _flip(coded, range(start, start + length)), 12, scheme, whitened=True
            )
            assert got.psdu == psdu, (start, length)


def test_too_many_errors_are_not_silently_accepted_as_the_same_frame() -> None:
    """A long burst defeats the code: the decoder still returns a frame of the right size
    (the FCS above it catches the damage) and raises nothing but PhyError."""
    rng = random.Random(3)
    _phr, psdu, dw, coded = _coded(rng, "nrnsc", True)
    damaged = _flip(coded, range(40, 200))
    try:
        got = fec.decode_frame(damaged, len(psdu), "nrnsc", whitened=dw)
    except PhyError:
        return
    assert len(got.psdu) == len(psdu)


def test_soft_decisions() -> None:
    """Soft values in [0, 1]: a weakly wrong bit costs less than a confidently wrong one,
    so soft input corrects a pattern that defeats hard decisions."""
    bits = [1, 0, 1, 1, 0, 0, 1, 0] * 2
    coded = fec.encode_bits(bits, "rsc")
    n = len(bits) + 3
    soft = [0.9 if b else 0.1 for b in coded]
    for i in (0, 1, 2):  # three adjacent code bits, each only slightly on the wrong side
        soft[i] = 0.55 if coded[i] == 0 else 0.45
    got, metric = fec.viterbi_decode(soft, "rsc", n)
    assert got[: len(bits)] == bits
    assert metric > 0
    hard = [round(v) for v in soft]
    got_hard, _ = fec.viterbi_decode(hard, "rsc", n)
    assert got_hard[: len(bits)] != bits
    with pytest.raises(ValueError):
        fec.viterbi_decode([2.0, 0.5] * n, "rsc", n)
    with pytest.raises(ValueError):
        fec.viterbi_decode([0] * 10, "rsc", 6)


# --- PPDU hooks ----------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(
    psdu=st.binary(max_size=120),
    fcs_len=st.sampled_from([2, 4]),
    whitened=st.booleans(),
    scheme_il=st.sampled_from([("nrnsc", True), ("rsc", True), ("rsc", False)]),
    sfd=st.sampled_from([SFD_UNCODED_0, SFD_UNCODED_1, SFD_CODED_0, SFD_CODED_1]),
    preamble=st.integers(4, 12),
)
def test_coded_ppdu_round_trip(
    psdu: bytes,
    fcs_len: int,
    whitened: bool,
    scheme_il: tuple[FecScheme, bool],
    sfd: int,
    preamble: int,
) -> None:
    scheme, il = scheme_il
    ppdu = build_ppdu(
        psdu,
        fcs_len=fcs_len,
        whitened=whitened,
        preamble_octets=preamble,
        sfd=sfd,
        fec=scheme,
        fec_interleaving=il,
    )
    coded_sfd = {SFD_UNCODED_0: SFD_CODED_0, SFD_UNCODED_1: SFD_CODED_1}.get(sfd, sfd)
    assert ppdu[preamble : preamble + 2] == coded_sfd.to_bytes(2, "big")
    assert len(ppdu) == preamble + 2 + fec.coded_octets(len(psdu))
    want = Ppdu(preamble, coded_sfd, Phr(len(psdu), fcs_len, whitened), psdu, scheme, il)
    assert parse_ppdu(ppdu, fec_scheme=scheme, fec_interleaving=il) == want
    assert parse_ppdu(ppdu + b"\xff\x00", fec_interleaving=il) == want  # scheme detected


def test_coded_ppdu_corrects_errors_and_counts_them() -> None:
    psdu = bytes(range(40))
    ppdu = bytearray(build_ppdu(psdu, fcs_len=4, fec="nrnsc"))
    for p in (6 * 8 + 5, 20 * 8 + 1, 41 * 8 + 7):  # three code bits far apart
        ppdu[p // 8] ^= 0x80 >> (p % 8)
    got = parse_ppdu(bytes(ppdu))
    assert got.psdu == psdu and got.fec == "nrnsc"
    assert got.fec_corrected_bits == 3


@pytest.mark.parametrize(
    ("ppdu", "reason", "offset"),
    [
        ("555555556f4e1814", "truncated coded PHR (2 of 8 octets)", 6),
        ("55555555632d", "truncated coded PHR (0 of 8 octets)", 6),
    ],
)
def test_coded_ppdu_errors(ppdu: str, reason: str, offset: int) -> None:
    with pytest.raises(PhyError) as e:
        parse_ppdu(bytes.fromhex(ppdu))
    assert (e.value.reason, e.value.offset) == (reason, offset)


def test_truncated_coded_psdu() -> None:
    ppdu = build_ppdu(bytes(30), fcs_len=2, fec="rsc")
    with pytest.raises(PhyError, match="truncated coded PSDU"):
        parse_ppdu(ppdu[:-4])


def test_coded_build_refusals() -> None:
    with pytest.raises(ValueError):
        build_ppdu(b"ab", fcs_len=2, fec="nrnsc", fec_interleaving=False)
    with pytest.raises(ValueError):
        build_ppdu(b"ab", fcs_len=2, fec="viterbi")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_ppdu(b"", fec_scheme="turbo")  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=48), st.sampled_from([b"\x6f\x4e", b"\x63\x2d"]))
def test_random_coded_octets_raise_only_phy_error(body: bytes, sfd: bytes) -> None:
    try:
        got = parse_ppdu(b"\x55\x55" + sfd + body)
    except PhyError:
        return
    assert len(got.psdu) == got.phr.frame_length


# --- timing --------------------------------------------------------------------------------


def test_airtime_with_fec() -> None:
    # Imm-Ack with CRC-16 (5 octets): PHR + PSDU = 7 octets, odd, so 56 + 3 + 5 = 64 input
    # bits, 128 code bits = 16 octets after 4 preamble + 2 SFD octets: 22 octets = 3.52 ms.
    assert fec.coded_octets(5) == 16
    assert airtime_s(EU_863_MODE_1, 5, fec=True) == pytest.approx(3.52e-3)
    assert airtime_s(EU_863_MODE_1, 5) == pytest.approx(2.08e-3)
    # 20-octet PSDU: 22 octets, even: 176 + 3 + 13 = 192 bits in, 48 octets coded.
    assert fec.coded_octets(20) == 48


def test_ack_wait() -> None:
    # AIFS 1 ms + 2.40 ms Imm-Ack with CRC-32 at 50 kb/s + 1 ms margin.
    assert ack_wait_s(EU_863_MODE_1) == pytest.approx(4.4e-3)
    assert ack_wait_s(EU_863_MODE_1, fcs_len=2, margin_s=0) == pytest.approx(TURNAROUND_S + 2.08e-3)
    assert ack_wait_s(EU_863_MODE_1, fcs_len=2, fec=True, margin_s=0) == pytest.approx(4.52e-3)
    with pytest.raises(ValueError):
        ack_wait_s(EU_863_MODE_1, fcs_len=3)
    with pytest.raises(ValueError):
        ack_wait_s(EU_863_MODE_1, margin_s=-1)


def test_decoder_speed_100_octets() -> None:
    """A 100-octet PSDU decodes (PHR pass + whole frame) well under 50 ms. Typical here:
    about 2 ms; the bound is loose for slow CI machines."""
    psdu = bytes(random.Random(5).randrange(256) for _ in range(100))
    ppdu = build_ppdu(psdu, fcs_len=4, fec="nrnsc")
    parse_ppdu(ppdu)  # warm up
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        got = parse_ppdu(ppdu, fec_scheme="nrnsc")
        best = min(best, time.perf_counter() - t0)
    assert got.psdu == psdu
    assert best < 0.05
