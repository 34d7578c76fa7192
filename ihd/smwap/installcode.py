"""Install codes: from what a householder types to the 128-bit link key used for pairing.

Why this scheme: SMWAP's own joining and key management (said to be IEEE 802.15.9 KMP) are
not known here, so pairing is project-defined (see ``docs/smwap-pairing.md``). For the one
secret a householder handles we reuse a well-proven, documented practice instead of
inventing one: the ZigBee Smart Energy install code.

* The code is 6, 8, 12 or 16 octets, printed on the meter (or its QR code) followed by a
  2-octet check value: CRC-16/X-25 of the code, appended little-endian. The check catches
  typing mistakes before any radio traffic, so a typo gets its own message instead of a
  failed handshake.
* The link key is the AES-MMO hash (Matyas-Meyer-Oseas with AES-128, ZigBee padding) of
  code || CRC. Vector: ``tests/data/smwap_vectors.json`` (``install_code``).

Accepted spellings (:func:`parse_install_code`): hex digits in either case, with spaces,
dashes or colons anywhere, e.g. ``"83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"``.

* 8, 10, 14 or 18 octets are a code **with** its CRC, which must check. 8 octets always
  mean a 6-octet code plus CRC: codes are printed with their CRC, so a bare 8-octet code
  (which would be ambiguous) is not accepted.
* 6, 12 or 16 octets are a code **without** its CRC (e.g. from a config file written by a
  tool that strips it); the CRC is computed. Nothing can catch a typo in that form, and a
  wrong code then shows up only as the meter's key failing to decrypt (``WRONG_CODE``).

Error messages are for the householder and never repeat the code: the code is a secret, and
messages end up in logs.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "CODE_LENGTHS",
    "InstallCodeError",
    "aes_mmo",
    "crc16_x25",
    "format_install_code",
    "link_key",
    "parse_install_code",
]

CODE_LENGTHS = (6, 8, 12, 16)
"""Install code lengths in octets, without the 2-octet CRC (ZigBee SE)."""

_WITH_CRC = frozenset(n + 2 for n in CODE_LENGTHS)  # 8, 10, 14, 18
_WITHOUT_CRC = frozenset(CODE_LENGTHS) - _WITH_CRC  # 6, 12, 16 (8 would be ambiguous)
_SEPARATORS = str.maketrans("", "", " -:\t\n")
_HEX = frozenset("0123456789abcdefABCDEF")


class InstallCodeError(ValueError):
    """An install code that cannot be used. ``str()`` is a sentence for the householder
    and never contains the code itself."""


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25 (poly 0x1021 reflected, init 0xFFFF, final XOR 0xFFFF).

    Check value: ``crc16_x25(b"123456789") == 0x906E``. Install codes are at most 16
    octets, so a bitwise loop is fast enough and obviously right.
    """
    crc = 0xFFFF
    for octet in data:
        crc ^= octet
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def aes_mmo(data: bytes) -> bytes:
    """The 16-octet AES-MMO hash of ``data`` (ZigBee specification, Annex B.6).

    Matyas-Meyer-Oseas: ``H0 = 0``, ``Hi = E(H(i-1), Mi) XOR Mi`` over 16-octet blocks of
    the padded message. Padding: 0x80, zeros, then the message length in bits as 16 bits
    big-endian, to a multiple of 16 octets. That form covers messages under 8192 octets,
    far more than an install code; longer ones (another padding form) are refused.
    """
    if len(data) >= 8192:
        raise ValueError("aes_mmo: messages of 8192 octets or more are not supported")
    padded = bytearray(data)
    padded.append(0x80)
    while len(padded) % 16 != 14:
        padded.append(0)
    padded += (len(data) * 8).to_bytes(2, "big")
    h = bytes(16)
    for i in range(0, len(padded), 16):
        block = bytes(padded[i : i + 16])
        enc = Cipher(algorithms.AES(h), modes.ECB()).encryptor()
        e = enc.update(block) + enc.finalize()
        h = bytes(a ^ b for a, b in zip(e, block, strict=True))
    return h


def _check_length_with_crc(code_with_crc: bytes) -> None:
    if len(code_with_crc) not in _WITH_CRC:
        raise ValueError(
            f"an install code with its CRC is 8, 10, 14 or 18 octets, not {len(code_with_crc)}"
        )


def _crc_ok(code_with_crc: bytes) -> bool:
    code, crc = code_with_crc[:-2], code_with_crc[-2:]
    return crc16_x25(code).to_bytes(2, "little") == crc


def parse_install_code(text: str) -> bytes:
    """The install code typed or scanned as ``text``, as octets **with** its CRC.

    Raises :class:`InstallCodeError` with a householder-facing message for anything that is
    not an install code, including a CRC mismatch (a typo). See the module docstring for
    the lengths accepted.
    """
    digits = text.translate(_SEPARATORS)
    if not digits:
        raise InstallCodeError("please enter the install code printed on your meter")
    if any(c not in _HEX for c in digits):
        raise InstallCodeError(
            "the install code can only contain the digits 0-9 and the letters A-F "
            "(the letter O is the digit 0)"
        )
    if len(digits) % 2 or len(digits) // 2 not in _WITH_CRC | _WITHOUT_CRC:
        raise InstallCodeError(
            f"the install code has {len(digits)} characters, but a meter's code has "
            "16, 20, 28 or 36: please check it against the label"
        )
    raw = bytes.fromhex(digits)
    if len(raw) in _WITHOUT_CRC:
        return raw + crc16_x25(raw).to_bytes(2, "little")
    if not _crc_ok(raw):
        raise InstallCodeError("the install code has a typo: check digit mismatch")
    return raw


def link_key(code_with_crc: bytes) -> bytes:
    """The 128-bit link key for an install code given with its CRC (as returned by
    :func:`parse_install_code`): ``aes_mmo(code || CRC)``.

    Raises :class:`InstallCodeError` if the CRC does not check (a corrupted code must not
    silently give a key), ``ValueError`` for a wrong length.
    """
    _check_length_with_crc(code_with_crc)
    if not _crc_ok(code_with_crc):
        raise InstallCodeError("the install code has a typo: check digit mismatch")
    return aes_mmo(code_with_crc)


def format_install_code(code: bytes) -> str:
    """Upper-case hex in groups of 4 digits, as printed on meters:
    ``83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5``."""
    digits = code.hex().upper()
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
