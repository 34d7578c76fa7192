"""The MR-FSK PHY of IEEE 802.15.4g (SUN), as octets: SHR, PHR, whitening, air time.

Why this module exists: chips such as the AT86RF215 build the SHR and PHR and whiten in
hardware, but the simulated air and simpler transceivers (CC1200, SX126x in raw mode) hand
the host the whole PPDU. This module turns a PSDU into the octets such a radio sends and
back, with no I/O, so both kinds of radio give the MAC the same PSDU.

A PPDU is ``SHR (preamble + SFD) | PHR (2 octets) | PSDU (MPDU with FCS)``. Octet *values*
are what this module works with; on air the SHR and PHR octets go MSB first and the PSDU
octets LSB first (see :func:`ppdu_bits`).

Where the numbers come from (tags as in the shared SMWAP reference; nothing here is taken
from ETSI TS 102 887, which was not available):

* PHR layout, FCS-type meaning, PN9 whitening (x^9+x^5+1, seed 0x1FF, PSDU only), maximum
  PSDU of 2047 octets, channel formula F0 + n * spacing: [IEEE].
* SFD values 0x904E/0x7A0E (uncoded) and 0x6F4E/0x632D (coded): [src] (vendor stacks).
* aTurnaroundTime = 1 ms for SUN PHYs: [src] (Atmel ``aMinTurnaroundTimeSUNPHY``).
* Default preamble of 4 octets: [mem].
* EU 863-870 MHz modes: mode #1 F0 / spacing / N: [src] (TI 15.4-stack); modes #2 and #3
  F0 / spacing: [src] (Atmel ``ieee_154g.h``), their N computed to fit the band, their bit
  rates and modulation indices: [mem]. Whether SMWAP uses any of these plans is unknown.

Not supported: FEC (coded SFDs are recognised and refused), mode-switch PHRs, and the 32-bit
SFDs of 4-FSK framing (a 4-FSK mode is described for air time only).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PhyError
from .fcs import _BITREV

__all__ = [
    "EU_863_MODE_1",
    "EU_863_MODE_2",
    "EU_863_MODE_3",
    "MAX_PSDU_LEN",
    "PHY_MODES",
    "SFD_CODED_0",
    "SFD_CODED_1",
    "SFD_UNCODED_0",
    "SFD_UNCODED_1",
    "TURNAROUND_S",
    "Phr",
    "PhyMode",
    "Ppdu",
    "airtime_s",
    "build_ppdu",
    "parse_ppdu",
    "pn9_mask",
    "ppdu_bits",
    "whiten",
]

MAX_PSDU_LEN = 2047
"""aMaxPHYPacketSize for SUN PHYs, in octets (the PHR length field is 11 bits)."""

TURNAROUND_S = 0.001
"""aTurnaroundTime for SUN PHYs: RX-to-TX switch, and the AIFS before an Imm-Ack."""

PREAMBLE_OCTET = 0x55

# 16-bit SFDs, value as sent MSB first, by phyMRFSKSFD (0/1) and FEC on/off. [src]
SFD_UNCODED_0 = 0x904E
SFD_UNCODED_1 = 0x7A0E
SFD_CODED_0 = 0x6F4E
SFD_CODED_1 = 0x632D

_UNCODED_SFDS = frozenset({SFD_UNCODED_0, SFD_UNCODED_1})
_CODED_SFDS = frozenset({SFD_CODED_0, SFD_CODED_1})

_MIN_PREAMBLE, _MAX_PREAMBLE = 4, 1000  # phyFSKPreambleLength range [IEEE]


@dataclass(frozen=True, slots=True)
class PhyMode:
    """One SUN FSK operating mode and its channel plan."""

    name: str
    bitrate_bps: int
    modulation: str  # "2-FSK" or "4-FSK"
    modulation_index: float
    channel_spacing_hz: int
    chan_center_freq0_hz: int
    n_channels: int

    def channel_freq_hz(self, ch: int) -> int:
        """Centre frequency of channel ``ch`` (0..n_channels-1)."""
        if not 0 <= ch < self.n_channels:
            raise ValueError(f"{self.name}: channel {ch} not in 0..{self.n_channels - 1}")
        return self.chan_center_freq0_hz + ch * self.channel_spacing_hz


EU_863_MODE_1 = PhyMode("EU_863_MODE_1", 50_000, "2-FSK", 1.0, 200_000, 863_125_000, 34)
EU_863_MODE_2 = PhyMode("EU_863_MODE_2", 100_000, "2-FSK", 1.0, 400_000, 863_225_000, 17)
EU_863_MODE_3 = PhyMode("EU_863_MODE_3", 200_000, "4-FSK", 0.33, 400_000, 863_225_000, 17)

PHY_MODES: dict[str, PhyMode] = {m.name: m for m in (EU_863_MODE_1, EU_863_MODE_2, EU_863_MODE_3)}


@dataclass(frozen=True, slots=True)
class Phr:
    """The 2-octet MR-FSK PHY header.

    ``frame_length`` is the PSDU length in octets, FCS included. ``mode_switch`` exists so
    the field is named, but mode-switch PHRs (a different layout) are not supported: only
    False is accepted.
    """

    frame_length: int
    fcs_len: int
    whitened: bool
    mode_switch: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.frame_length <= MAX_PSDU_LEN:
            raise ValueError(f"frame_length {self.frame_length} not in 0..{MAX_PSDU_LEN}")
        if self.fcs_len not in (2, 4):
            raise ValueError(f"fcs_len must be 2 or 4, not {self.fcs_len!r}")
        if self.mode_switch:
            raise ValueError("mode switch PHR not supported")

    def to_bytes(self) -> bytes:
        """The two PHR octets, in the order sent (each sent MSB first)."""
        v = (0x1000 if self.fcs_len == 2 else 0) | (0x0800 if self.whitened else 0)
        return (v | self.frame_length).to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Phr:
        """Decode two PHR octets; :class:`PhyError` if malformed or unsupported."""
        if len(data) != 2:
            raise PhyError(f"PHR must be 2 octets, got {len(data)}", 0)
        v = (data[0] << 8) | data[1]
        if v & 0x8000:
            raise PhyError("mode switch PHR not supported", 0)
        if v & 0x6000:
            raise PhyError("reserved PHR bits set", 0)
        return cls(v & 0x07FF, 2 if v & 0x1000 else 4, bool(v & 0x0800))


def _pn9_period() -> bytes:
    # 802.15.4g PN9: 9-bit LFSR, seed all ones, the new (feedback) bit s[n+9] = s[n+5] ^ s[n]
    # is the whitening bit for PSDU bit n; bits packed LSB first, matching LSB-first octets.
    # The sequence repeats every 511 bits, so 511 octets (8 periods) repeat exactly.
    reg, out = 0x1FF, bytearray()
    for _ in range(511):
        octet = 0
        for i in range(8):
            fb = (reg ^ (reg >> 5)) & 1
            reg = (reg >> 1) | (fb << 8)
            octet |= fb << i
        out.append(octet)
    return bytes(out)


_PN9 = (_pn9_period() * 5)[:MAX_PSDU_LEN]


def pn9_mask(n: int) -> bytes:
    """The first ``n`` octets (0..2047) of the PSDU whitening mask."""
    if not 0 <= n <= MAX_PSDU_LEN:
        raise ValueError(f"mask length {n} not in 0..{MAX_PSDU_LEN}")
    return _PN9[:n]


def whiten(data: bytes) -> bytes:
    """XOR a PSDU with the PN9 mask. Its own inverse: it also de-whitens."""
    n = len(data)
    if n > MAX_PSDU_LEN:
        raise ValueError(f"PSDU of {n} octets is longer than {MAX_PSDU_LEN}")
    x = int.from_bytes(data, "little") ^ int.from_bytes(_PN9[:n], "little")
    return x.to_bytes(n, "little")


def build_ppdu(
    psdu: bytes,
    *,
    fcs_len: int,
    whitened: bool = True,
    preamble_octets: int = 4,
    sfd: int = SFD_UNCODED_0,
) -> bytes:
    """SHR + PHR + (whitened) PSDU, as octet values.

    ``psdu`` is the MPDU with its FCS; ``fcs_len`` only sets the PHR FCS-type bit.
    """
    if len(psdu) > MAX_PSDU_LEN:
        raise ValueError(f"PSDU of {len(psdu)} octets is longer than {MAX_PSDU_LEN}")
    if not _MIN_PREAMBLE <= preamble_octets <= _MAX_PREAMBLE:
        raise ValueError(f"preamble_octets {preamble_octets} not in 4..1000")
    if sfd in _CODED_SFDS:
        raise ValueError("FEC-coded frames not supported")
    if sfd not in _UNCODED_SFDS:
        raise ValueError(f"unknown SFD 0x{sfd:04X}")
    phr = Phr(len(psdu), fcs_len, whitened)
    body = whiten(psdu) if whitened else psdu
    return b"\x55" * preamble_octets + sfd.to_bytes(2, "big") + phr.to_bytes() + body


@dataclass(frozen=True, slots=True)
class Ppdu:
    """A decoded PPDU. ``psdu`` is de-whitened and still ends with its FCS."""

    preamble_octets: int
    sfd: int
    phr: Phr
    psdu: bytes

    def to_bytes(self) -> bytes:
        """Encode again with :func:`build_ppdu`."""
        return build_ppdu(
            self.psdu,
            fcs_len=self.phr.fcs_len,
            whitened=self.phr.whitened,
            preamble_octets=self.preamble_octets,
            sfd=self.sfd,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Ppdu:
        """Same as :func:`parse_ppdu`."""
        return parse_ppdu(data)


def parse_ppdu(ppdu: bytes) -> Ppdu:
    """Decode SHR + PHR + PSDU octets; raises only :class:`PhyError`.

    The input starts with the preamble. Any number of 0x55 octets is accepted, including
    fewer than were sent (a receiver may miss the first ones while it settles) and none.
    Octets after the PHR's frame length are ignored. The FCS is not checked here.
    """
    n = len(ppdu)
    i = 0
    while i < n and ppdu[i] == PREAMBLE_OCTET:
        i += 1
    if n - i < 2:
        raise PhyError("truncated SFD", i)
    sfd = (ppdu[i] << 8) | ppdu[i + 1]
    if sfd not in _UNCODED_SFDS:
        if sfd in _CODED_SFDS:
            raise PhyError("FEC-coded frames not supported", i)
        raise PhyError(f"unknown SFD 0x{sfd:04X}", i)
    if n - i < 4:
        raise PhyError("truncated PHR", i + 2)
    try:
        phr = Phr.from_bytes(ppdu[i + 2 : i + 4])
    except PhyError as e:
        raise PhyError(e.reason, i + 2) from None
    start = i + 4
    end = start + phr.frame_length
    if end > n:
        raise PhyError(f"truncated PSDU ({n - start} of {phr.frame_length} octets)", start)
    body = ppdu[start:end]
    return Ppdu(i, sfd, phr, whiten(body) if phr.whitened else body)


def ppdu_bits(ppdu_octets: bytes, header_len: int) -> str:
    """The on-air bit string of a PPDU: the first ``header_len`` octets (SHR + PHR) MSB
    first, the rest (PSDU) LSB first."""
    out = []
    for part in (ppdu_octets[:header_len], ppdu_octets[header_len:].translate(_BITREV)):
        if part:
            out.append(format(int.from_bytes(part, "big"), f"0{8 * len(part)}b"))
    return "".join(out)


def airtime_s(mode: PhyMode, psdu_len: int, preamble_octets: int = 4) -> float:
    """Seconds on air for a PSDU of ``psdu_len`` octets: (preamble + 2 SFD + 2 PHR + PSDU)
    octets at the mode's bit rate."""
    return (preamble_octets + 4 + psdu_len) * 8 / mode.bitrate_bps
