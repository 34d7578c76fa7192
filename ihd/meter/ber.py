"""Length fields as A-XDR and BER write them (X.690 8.1.3), both ways.

An octet-string length (the ciphered content of general-glo-ciphering, the block data of
general-block-transfer) is one octet 0..127, or ``0x80 | n`` followed by ``n`` octets of
big-endian length. dlms-cosem's ``GeneralGlobalCipher.to_bytes`` writes the length as a
single octet whatever its size (a 200-octet content comes out as ``C8``, which a reader
takes for "72 length octets follow"); we build and parse ciphered APDUs with these
helpers instead.
"""

from __future__ import annotations

from ihd.meter.errors import MeterDecodeError

__all__ = ["MAX_LENGTH_OCTETS", "encode_length", "read_length"]

MAX_LENGTH_OCTETS = 4  # 4 GiB is far beyond any push; more is malformed


def encode_length(n: int) -> bytes:
    """The definite-form length octets for ``n`` (short form below 128)."""
    if n < 0:
        raise ValueError(f"a length is not negative, got {n}")
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(body) > MAX_LENGTH_OCTETS:
        raise ValueError(f"length {n} needs more than {MAX_LENGTH_OCTETS} octets")
    return bytes((0x80 | len(body),)) + body


def read_length(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read a length at ``data[pos]``; returns (length, position after it). Raises
    ``MeterDecodeError`` naming ``what`` for the indefinite form, too many length octets,
    a truncated field, or a length running past the end of ``data``."""
    if pos >= len(data):
        raise MeterDecodeError(f"{what}: missing length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        n = first
    else:
        count = first & 0x7F
        if count == 0:
            raise MeterDecodeError(f"{what}: indefinite length (0x80) is not allowed")
        if count > MAX_LENGTH_OCTETS:
            raise MeterDecodeError(f"{what}: length of {count} octets")
        if pos + count > len(data):
            raise MeterDecodeError(f"{what}: truncated length")
        n = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + n > len(data):
        raise MeterDecodeError(f"{what}: length {n} but only {len(data) - pos} octets follow")
    return n, pos
