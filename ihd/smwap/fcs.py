"""The IEEE 802.15.4 frame check sequence (FCS), 2 or 4 octets.

Hand-written on purpose: no maintained library does 802.15.4 framing without I/O, and the
generic CRC packages either need a C build (crcmod's fast path is source-only) or run a
per-bit Python loop. Both CRCs here are one C call away in :mod:`binascii`:

* 4 octets (802.15.4g default, PHR FCS type 0): the IEEE 802.3 CRC-32, which *is*
  ``binascii.crc32``. The residue of a whole MPDU (FCS included) is ``0x2144DF1C``.
* 2 octets (PHR FCS type 1): ITU-T CRC-16 with bits fed LSB first, init 0, no final XOR,
  i.e. CRC-16/KERMIT ("123456789" gives 0x2189). ``binascii.crc_hqx`` is the same polynomial
  fed MSB first (CRC-16/XMODEM), so KERMIT(data) = reverse16(XMODEM(reverse each octet of
  data)). Reversing octets is one ``bytes.translate`` with a 256-entry table.

Both are sent least significant octet first.
"""

from __future__ import annotations

import binascii

__all__ = ["check_fcs", "compute_fcs", "crc16_kermit", "crc32"]

# _BITREV[b] is octet b with its bit order reversed (0x01 <-> 0x80). Also used by phy.py.
_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))

_CRC32_RESIDUE = 0x2144DF1C


def crc16_kermit(data: bytes) -> int:
    """CRC-16/KERMIT of ``data``: the 802.15.4 2-octet FCS value."""
    r = binascii.crc_hqx(data.translate(_BITREV), 0)
    return (_BITREV[r & 0xFF] << 8) | _BITREV[r >> 8]


def crc32(data: bytes) -> int:
    """IEEE 802.3 CRC-32 of ``data``: the 802.15.4 4-octet FCS value."""
    return binascii.crc32(data)


def compute_fcs(mpdu_without_fcs: bytes, fcs_len: int) -> bytes:
    """The FCS octets to append to ``mpdu_without_fcs`` (little-endian, 2 or 4 octets)."""
    if fcs_len == 4:
        return binascii.crc32(mpdu_without_fcs).to_bytes(4, "little")
    if fcs_len == 2:
        return crc16_kermit(mpdu_without_fcs).to_bytes(2, "little")
    raise ValueError(f"fcs_len must be 2 or 4, not {fcs_len!r}")


def check_fcs(mpdu_with_fcs: bytes, fcs_len: int) -> bool:
    """True if the last ``fcs_len`` octets are the right FCS for the octets before them."""
    if fcs_len == 4:
        # The CRC over data + its own FCS is a constant; no slicing needed.
        return len(mpdu_with_fcs) >= 4 and binascii.crc32(mpdu_with_fcs) == _CRC32_RESIDUE
    if fcs_len == 2:
        return len(mpdu_with_fcs) >= 2 and crc16_kermit(mpdu_with_fcs) == 0
    raise ValueError(f"fcs_len must be 2 or 4, not {fcs_len!r}")
