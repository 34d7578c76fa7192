"""Install codes: the shared ZigBee SE vector, CRC-16/X-25, AES-MMO, parsing and typo messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ihd.smwap.installcode import (
    InstallCodeError,
    aes_mmo,
    crc16_x25,
    format_install_code,
    link_key,
    parse_install_code,
)

VECTOR = json.loads((Path(__file__).parent / "data" / "smwap_vectors.json").read_text())[
    "install_code"
][0]
CODE = bytes.fromhex(VECTOR["install_code"])
CRC = bytes.fromhex(VECTOR["crc_x25_le"])
KEY = bytes.fromhex(VECTOR["link_key_aes_mmo"])
PRINTED = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"


def test_vector_crc_and_key() -> None:
    assert crc16_x25(CODE).to_bytes(2, "little") == CRC
    assert aes_mmo(CODE + CRC) == KEY
    assert link_key(CODE + CRC) == KEY


def test_crc_check_value() -> None:
    assert crc16_x25(b"123456789") == 0x906E  # the catalogued CRC-16/X-25 check value
    assert crc16_x25(b"") == 0x0000


def test_aes_mmo_padding_crosses_a_block() -> None:
    # 14 octets + 0x80 + 2-octet length does not fit one block: the hash takes two.
    # Reference computed independently: MMO over the explicitly padded message.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    msg = bytes(range(14))
    padded = msg + b"\x80" + bytes(15) + (14 * 8).to_bytes(2, "big")
    assert len(padded) == 32
    h = bytes(16)
    for i in (0, 16):
        blk = padded[i : i + 16]
        e = Cipher(algorithms.AES(h), modes.ECB()).encryptor().update(blk)
        h = bytes(a ^ b for a, b in zip(e, blk, strict=True))
    assert aes_mmo(msg) == h
    with pytest.raises(ValueError):
        aes_mmo(bytes(8192))


@pytest.mark.parametrize(
    "text",
    [
        PRINTED,
        PRINTED.lower(),
        PRINTED.replace(" ", ""),
        PRINTED.replace(" ", "-"),
        "83:FE:D3:40:7A:93:97:23:A5:C6:39:B2:69:16:D5:05:C3:B5",
        "  83FED3407A939723A5C639B26916D505C3B5\n",
    ],
)
def test_parse_printed_forms(text: str) -> None:
    assert parse_install_code(text) == CODE + CRC


def test_parse_without_crc_appends_it() -> None:
    assert parse_install_code(CODE.hex()) == CODE + CRC


@pytest.mark.parametrize("n", [6, 8, 12, 16])
def test_every_length_round_trips(n: int) -> None:
    code = bytes((7 * i + 3) & 0xFF for i in range(n))
    full = code + crc16_x25(code).to_bytes(2, "little")
    assert parse_install_code(format_install_code(full)) == full
    assert len(link_key(full)) == 16


def test_bare_eight_octet_code_is_read_as_six_plus_crc() -> None:
    # Documented: codes are printed with their CRC, so 8 octets mean 6 + CRC.
    code6 = bytes.fromhex("010203040506")
    ok = code6 + crc16_x25(code6).to_bytes(2, "little")
    assert parse_install_code(ok.hex()) == ok
    with pytest.raises(InstallCodeError, match="typo"):
        parse_install_code(bytes.fromhex("0102030405060708").hex())


def test_every_single_digit_typo_is_caught() -> None:
    digits = (CODE + CRC).hex().upper()
    for i, c in enumerate(digits):
        for repl in "0123456789ABCDEF":
            if repl == c:
                continue
            typo = digits[:i] + repl + digits[i + 1 :]
            with pytest.raises(InstallCodeError) as err:
                parse_install_code(typo)
            assert str(err.value) == "the install code has a typo: check digit mismatch"


def test_swapped_groups_are_caught() -> None:
    groups = PRINTED.split()
    groups[1], groups[2] = groups[2], groups[1]
    with pytest.raises(InstallCodeError, match="check digit mismatch"):
        parse_install_code(" ".join(groups))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "please enter"),
        ("   ", "please enter"),
        (PRINTED.replace("0", "O"), "0-9 and the letters A-F"),
        (PRINTED[:-1], "35 characters"),
        (PRINTED + "0", "37 characters"),
        ("ABCD", "4 characters"),
    ],
)
def test_messages_are_householder_facing(text: str, fragment: str) -> None:
    with pytest.raises(InstallCodeError) as err:
        parse_install_code(text)
    msg = str(err.value)
    assert fragment in msg
    assert "83FE" not in msg.upper() and CODE.hex() not in msg.lower()


def test_link_key_refuses_a_bad_crc_and_length() -> None:
    with pytest.raises(InstallCodeError, match="typo"):
        link_key(CODE + bytes([CRC[0] ^ 1, CRC[1]]))
    with pytest.raises(ValueError, match="8, 10, 14 or 18"):
        link_key(CODE)


def test_format_groups_of_four() -> None:
    assert format_install_code(CODE + CRC) == PRINTED
    assert format_install_code(bytes.fromhex("0102030405")) == "0102 0304 05"


@given(st.sampled_from([6, 8, 12, 16]).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_property_parse_format_round_trip(code: bytes) -> None:
    full = code + crc16_x25(code).to_bytes(2, "little")
    assert parse_install_code(format_install_code(full)) == full
