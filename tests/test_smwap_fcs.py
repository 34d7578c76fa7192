"""FCS: CRC-16/KERMIT and CRC-32 against the shared vectors and a plain bit-serial model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd.smwap import check_fcs, compute_fcs, crc16_kermit, crc32

VECTORS = json.loads((Path(__file__).parent / "data" / "smwap_vectors.json").read_text())


def _crc16_bit_serial(data: bytes) -> int:
    # The 802.15.4 description taken literally: a 16-bit register, init 0, each octet fed
    # LSB first, G(x) = x^16 + x^12 + x^5 + 1 (0x1021, reflected 0x8408).
    reg = 0
    for octet in data:
        for k in range(8):
            if (reg ^ (octet >> k)) & 1:
                reg = (reg >> 1) ^ 0x8408
            else:
                reg >>= 1
    return reg


@pytest.mark.parametrize("v", VECTORS["crc16"], ids=lambda v: v["name"])
def test_crc16_vectors(v: dict[str, str]) -> None:
    data = bytes.fromhex(v["data"])
    assert crc16_kermit(data) == int(v["fcs_value"], 16)
    assert compute_fcs(data, 2).hex() == v["fcs_octets"]
    assert check_fcs(data + bytes.fromhex(v["fcs_octets"]), 2)


@pytest.mark.parametrize("v", VECTORS["crc32"], ids=lambda v: v["name"])
def test_crc32_vectors(v: dict[str, str]) -> None:
    data = bytes.fromhex(v["data"])
    assert crc32(data) == int(v["fcs_value"], 16)
    assert compute_fcs(data, 4).hex() == v["fcs_octets"]
    assert check_fcs(data + bytes.fromhex(v["fcs_octets"]), 4)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_crc16_matches_bit_serial_model(data: bytes) -> None:
    assert crc16_kermit(data) == _crc16_bit_serial(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([2, 4]), st.data())
def test_residue_and_single_bit_errors(data: bytes, fcs_len: int, draw: st.DataObject) -> None:
    framed = data + compute_fcs(data, fcs_len)
    # CRC over MPDU + FCS is the fixed residue: 0 for CRC-16, 0x2144DF1C for CRC-32.
    assert (crc16_kermit(framed) == 0) if fcs_len == 2 else (crc32(framed) == 0x2144DF1C)
    assert check_fcs(framed, fcs_len)
    bit = draw.draw(st.integers(0, 8 * len(framed) - 1))
    broken = bytearray(framed)
    broken[bit // 8] ^= 1 << (bit % 8)
    assert not check_fcs(bytes(broken), fcs_len)


def test_short_input_is_not_a_valid_fcs() -> None:
    assert not check_fcs(b"\x00", 2)
    assert not check_fcs(b"\x00\x00\x00", 4)


@pytest.mark.parametrize("bad", [0, 1, 3, 8])
def test_fcs_len_must_be_2_or_4(bad: int) -> None:
    with pytest.raises(ValueError):
        compute_fcs(b"abc", bad)
    with pytest.raises(ValueError):
        check_fcs(b"abcdef", bad)
