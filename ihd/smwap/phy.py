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

FEC (rate 1/2 NRNSC or RSC, with the interleaver) is done in software by :mod:`.fec` when
``build_ppdu(..., fec=...)`` is asked for it or ``parse_ppdu`` sees a coded SFD; that module's
docstring says which details are confirmed and how. Coded or not, the PHR's frame length
counts PSDU octets before coding. In a coded PPDU everything after the SFD is code bits,
packed and sent MSB first (``ppdu_bits(octets, len(octets))``).

Timing: :func:`airtime_s` (with or without FEC) and :func:`ack_wait_s`. Channel plans beyond
the three modes here are in :mod:`.channels`.

Mode-switch PHRs (:class:`ModeSwitchPhr`) are built and checked (BCH(15,11) and parity),
and a receiver refuses them with a reason that names the new mode; switching the PHY mode
for the next packet is not supported. Not supported: the 32-bit SFDs of 4-FSK framing (a
4-FSK mode is described for air time only, with the 2-FSK SHR length).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import fec as _fec
from .errors import PhyError
from .fcs import _BITREV
from .fec import FecScheme

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
    "FecScheme",
    "ModeSwitchPhr",
    "Phr",
    "PhyMode",
    "Ppdu",
    "ack_wait_s",
    "airtime_s",
    "build_mode_switch_ppdu",
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
_CODED_SFD_FOR = {SFD_UNCODED_0: SFD_CODED_0, SFD_UNCODED_1: SFD_CODED_1}  # same phyMRFSKSFD

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
    source: str = ""  # where the numbers come from (see channels.py)

    def channel_freq_hz(self, ch: int) -> int:
        """Centre frequency of channel ``ch`` (0..n_channels-1)."""
        if not 0 <= ch < self.n_channels:
            raise ValueError(f"{self.name}: channel {ch} not in 0..{self.n_channels - 1}")
        return self.chan_center_freq0_hz + ch * self.channel_spacing_hz


_SRC_4G = "802.15.4g-2012 EU 863-870 MHz table; "
EU_863_MODE_1 = PhyMode(
    "EU_863_MODE_1", 50_000, "2-FSK", 1.0, 200_000, 863_125_000, 34, _SRC_4G + "TI 15.4-stack [src]"
)
EU_863_MODE_2 = PhyMode(
    "EU_863_MODE_2",
    100_000,
    "2-FSK",
    1.0,
    400_000,
    863_225_000,
    17,
    _SRC_4G + "F0/spacing Atmel ieee_154g.h [src], N computed, rate and h [mem]",
)
EU_863_MODE_3 = PhyMode(
    "EU_863_MODE_3",
    200_000,
    "4-FSK",
    0.33,
    400_000,
    863_225_000,
    17,
    _SRC_4G + "F0/spacing Atmel ieee_154g.h [src], N computed, rate and h [mem]",
)

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
            try:
                ms = ModeSwitchPhr.from_bytes(data)
            except PhyError as e:
                raise PhyError(f"mode switch PHR: {e.reason}", 0) from None
            raise PhyError(
                f"mode switch PHR (to PHY mode {ms.new_mode}"
                f"{', FEC' if ms.fec else ''}) not supported by this receiver",
                0,
            )
        if v & 0x6000:
            raise PhyError("reserved PHR bits set", 0)
        return cls(v & 0x07FF, 2 if v & 0x1000 else 4, bool(v & 0x0800))


_BCH_POLY = 0b10011  # g(x) = x^4 + x + 1, the BCH(15,11) generator


def _bch15_11_checksum(message11: int) -> int:
    """The 4 check bits of the systematic BCH(15,11) code: m(x)·x^4 mod g(x), with the
    first bit on air as the highest-degree coefficient."""
    r = message11 << 4
    for bit in range(14, 3, -1):
        if r >> bit & 1:
            r ^= _BCH_POLY << (bit - 4)
    return r & 0xF


@dataclass(frozen=True, slots=True)
class ModeSwitchPhr:
    """A mode-switch PHR (MS bit set): the next packet comes in ``new_mode``.

    Layout, in the order sent [mem: IEEE 802.15.4-2015 20.2.3, not checked here]: MS (1) |
    mode switch parameter entry (2) | FEC (1) | new mode (7) | BCH(15,11) checksum over the
    first 11 bits (4) | even parity over the first 15 bits (1). ihd builds and checks these
    (tests, sniffing) but its receivers do not switch modes: SMWAP's use of mode switch is
    unknown to us.
    """

    new_mode: int
    fec: bool = False
    parameter_entry: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.new_mode <= 0x7F:
            raise ValueError(f"new_mode {self.new_mode} not in 0..127")
        if not 0 <= self.parameter_entry <= 3:
            raise ValueError(f"parameter_entry {self.parameter_entry} not in 0..3")

    def to_bytes(self) -> bytes:
        msg = 0x400 | self.parameter_entry << 8 | int(self.fec) << 7 | self.new_mode
        v = msg << 5 | _bch15_11_checksum(msg) << 1
        v |= v.bit_count() & 1  # even parity over all 16 bits
        return v.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> ModeSwitchPhr:
        """Decode two octets; :class:`PhyError` unless MS is set and both checks pass."""
        if len(data) != 2:
            raise PhyError(f"PHR must be 2 octets, got {len(data)}", 0)
        v = (data[0] << 8) | data[1]
        if not v & 0x8000:
            raise PhyError("not a mode switch PHR (MS bit clear)", 0)
        if v.bit_count() & 1:
            raise PhyError("parity check failed", 0)
        msg = v >> 5
        if _bch15_11_checksum(msg) != (v >> 1) & 0xF:
            raise PhyError("BCH checksum mismatch", 0)
        return cls(new_mode=msg & 0x7F, fec=bool(msg >> 7 & 1), parameter_entry=msg >> 8 & 3)


def build_mode_switch_ppdu(
    phr: ModeSwitchPhr, *, preamble_octets: int = 4, sfd: int = SFD_UNCODED_0
) -> bytes:
    """SHR + mode-switch PHR: a whole mode-switch packet (it carries no PSDU)."""
    if not _MIN_PREAMBLE <= preamble_octets <= _MAX_PREAMBLE:
        raise ValueError(f"preamble_octets {preamble_octets} not in 4..1000")
    if sfd not in _UNCODED_SFDS:
        raise ValueError(f"a mode switch PHR is sent with an uncoded SFD, not 0x{sfd:04X}")
    return b"\x55" * preamble_octets + sfd.to_bytes(2, "big") + phr.to_bytes()


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
    fec: FecScheme | None = None,
    fec_interleaving: bool = True,
) -> bytes:
    """SHR + PHR + (whitened) PSDU, as octet values.

    ``psdu`` is the MPDU with its FCS; ``fcs_len`` only sets the PHR FCS-type bit. With
    ``fec`` ("nrnsc" or "rsc") PHR and PSDU are coded: ``sfd`` may be given as either SFD of
    its group (phyMRFSKSFD 0 or 1) and the coded one is sent; ``fec_interleaving=False`` is
    allowed for RSC only. Without ``fec`` a coded SFD is refused.
    """
    if len(psdu) > MAX_PSDU_LEN:
        raise ValueError(f"PSDU of {len(psdu)} octets is longer than {MAX_PSDU_LEN}")
    if not _MIN_PREAMBLE <= preamble_octets <= _MAX_PREAMBLE:
        raise ValueError(f"preamble_octets {preamble_octets} not in 4..1000")
    if sfd not in _UNCODED_SFDS and sfd not in _CODED_SFDS:
        raise ValueError(f"unknown SFD 0x{sfd:04X}")
    phr = Phr(len(psdu), fcs_len, whitened)
    shr = b"\x55" * preamble_octets
    if fec is None:
        if sfd in _CODED_SFDS:
            raise ValueError(f"SFD 0x{sfd:04X} is for FEC-coded frames: pass fec=")
        body = whiten(psdu) if whitened else psdu
        return shr + sfd.to_bytes(2, "big") + phr.to_bytes() + body
    sfd = _CODED_SFD_FOR.get(sfd, sfd)
    coded = _fec.encode_frame(
        phr.to_bytes(), psdu, fec, interleaved=fec_interleaving, whitened=whitened
    )
    return shr + sfd.to_bytes(2, "big") + coded


@dataclass(frozen=True, slots=True)
class Ppdu:
    """A decoded PPDU. ``psdu`` is de-whitened (and decoded) and still ends with its FCS.

    ``fec`` is None for an uncoded frame, else the scheme it was decoded with;
    ``fec_interleaving`` says whether the code bits were interleaved (always for NRNSC).
    ``fec_corrected_bits`` is how many code bits the Viterbi decoder changed (a link quality
    figure; not part of equality).
    """

    preamble_octets: int
    sfd: int
    phr: Phr
    psdu: bytes
    fec: FecScheme | None = None
    fec_interleaving: bool = True
    fec_corrected_bits: int = field(default=0, compare=False)

    def to_bytes(self) -> bytes:
        """Encode again with :func:`build_ppdu` (errors the decoder corrected are gone)."""
        return build_ppdu(
            self.psdu,
            fcs_len=self.phr.fcs_len,
            whitened=self.phr.whitened,
            preamble_octets=self.preamble_octets,
            sfd=self.sfd,
            fec=self.fec,
            fec_interleaving=self.fec_interleaving,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Ppdu:
        """Same as :func:`parse_ppdu` with its defaults."""
        return parse_ppdu(data)


def parse_ppdu(
    ppdu: bytes, *, fec_scheme: FecScheme | None = None, fec_interleaving: bool = True
) -> Ppdu:
    """Decode SHR + PHR + PSDU octets; raises only :class:`PhyError` for bad octets.

    The input starts with the preamble. Any number of 0x55 octets is accepted, including
    fewer than were sent (a receiver may miss the first ones while it settles) and none.
    Octets after the PHR's frame length are ignored. The FCS is not checked here.

    A coded SFD selects FEC decoding. The code (phyFskFecScheme) and RSC interleaving
    (phyFskFecInterleavingRsc) are not sent on air: give them if known; with
    ``fec_scheme=None`` both codes are tried on the PHR and the better one is kept.
    ``ValueError`` if ``fec_scheme`` is not None, "nrnsc" or "rsc".
    """
    if fec_scheme is not None and fec_scheme not in _fec.FEC_SCHEMES:
        raise ValueError(f"fec_scheme must be None, 'nrnsc' or 'rsc', not {fec_scheme!r}")
    n = len(ppdu)
    i = 0
    while i < n and ppdu[i] == PREAMBLE_OCTET:
        i += 1
    if n - i < 2:
        raise PhyError("truncated SFD", i)
    sfd = (ppdu[i] << 8) | ppdu[i + 1]
    if sfd not in _UNCODED_SFDS:
        if sfd in _CODED_SFDS:
            return _parse_coded(ppdu, i, sfd, fec_scheme, fec_interleaving)
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


def _parse_coded(
    ppdu: bytes, i: int, sfd: int, scheme: FecScheme | None, interleaving: bool
) -> Ppdu:
    start = i + 2
    coded = ppdu[start:]
    try:
        phr_octets, found = _fec.decode_phr(coded, scheme, interleaved=interleaving)
        phr = Phr.from_bytes(phr_octets)
    except PhyError as e:
        raise PhyError(e.reason, start + e.offset) from None
    il = interleaving or found == "nrnsc"
    try:
        frame = _fec.decode_frame(
            coded, phr.frame_length, found, interleaved=il, whitened=phr.whitened
        )
    except PhyError as e:
        raise PhyError(e.reason, start + e.offset) from None
    if frame.phr != phr_octets:
        raise PhyError("coded PHR decodes differently with the whole frame", start)
    return Ppdu(i, sfd, phr, frame.psdu, found, il, frame.corrected_bits)


def ppdu_bits(ppdu_octets: bytes, header_len: int) -> str:
    """The on-air bit string of a PPDU: the first ``header_len`` octets (SHR + PHR) MSB
    first, the rest (PSDU) LSB first. For a coded PPDU pass ``len(ppdu_octets)``: its code
    bits all go MSB first."""
    out = []
    for part in (ppdu_octets[:header_len], ppdu_octets[header_len:].translate(_BITREV)):
        if part:
            out.append(format(int.from_bytes(part, "big"), f"0{8 * len(part)}b"))
    return "".join(out)


def airtime_s(
    mode: PhyMode, psdu_len: int, preamble_octets: int = 4, *, fec: bool = False
) -> float:
    """Seconds on air for a PSDU of ``psdu_len`` octets: preamble, 2 SFD octets, then PHR
    and PSDU (2 + ``psdu_len`` octets) at the mode's bit rate. With ``fec`` the PHR, PSDU,
    3 tail bits and the pad bits go out as two code bits each (:func:`.fec.coded_octets`)."""
    body = _fec.coded_octets(psdu_len) if fec else 2 + psdu_len
    return (preamble_octets + 2 + body) * 8 / mode.bitrate_bps


IMM_ACK_MPDU_LEN = 3
"""Frame control and sequence number of an Imm-Ack; the FCS comes on top."""


def ack_wait_s(
    mode: PhyMode,
    *,
    fcs_len: int = 4,
    fec: bool = False,
    preamble_octets: int = 4,
    margin_s: float = 0.001,
) -> float:
    """How long a sender waits for an Imm-Ack after the last bit of its frame:
    AIFS (aTurnaroundTime, 1 ms for SUN PHYs) + the Imm-Ack's air time + ``margin_s``.

    The margin is our choice, not the standard's (macAckWaitDuration for SUN PHYs was not
    checked here): it covers SFD detection and clock tolerance. For mode #1 (50 kb/s) with
    CRC-32 this gives 1 + 2.4 + 1 = 4.4 ms.
    """
    if fcs_len not in (2, 4):
        raise ValueError(f"fcs_len must be 2 or 4, not {fcs_len!r}")
    if margin_s < 0:
        raise ValueError("margin_s must not be negative")
    ack = airtime_s(mode, IMM_ACK_MPDU_LEN + fcs_len, preamble_octets, fec=fec)
    return TURNAROUND_S + ack + margin_s
