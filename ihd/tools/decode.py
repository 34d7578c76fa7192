"""``ihd decode HEX``: explain one SMWAP frame, field by field, and say whether it checks.

Why: when a meter and the display disagree, the first question is what exactly was on the
air. This tool takes the octets a radio or a capture shows (a whole MR-FSK PPDU, or a PSDU
= MPDU with its FCS) and walks them with the display's own decoders: PHY header, MAC
header, auxiliary security header, IEs, payload, FCS; with ``--key`` it verifies the MIC and
shows the plaintext, and a DLMS push in it is decoded into readings.

Input: a PPDU is recognised by its 0x55 preamble followed by a known SFD; its PHR gives the
FCS length (an FEC-coded PPDU is decoded first). A bare PSDU uses ``--fcs`` if given;
without it both FCS lengths are tried and the output says which one checks. The nonce needs
the sender's EUI-64: the frame's extended source address, or ``--src`` when the frame
carries a short one. With a key, the decrypted octets are also printed on one line,
``plaintext: HEX``, for copying.

Exit status: 0 everything checks; 1 the input is not hex, not a frame, or cannot be checked
(no EUI-64 for the nonce, a malformed key); 3 the FCS fails; 4 the MIC fails (or the
security layer refuses the frame). 2 is left to usage errors, as argparse exits with 2. The
first failure in receive order decides, and its reason is one line on stderr; later ones
are notes. Keys are never printed, not even in errors.

Names of command IDs, header IEs and payload IE groups are from IEEE 802.15.4-2015 tables
7-49, 7-7 and 7-15 [mem]; they are labels only and change nothing that is checked.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ihd.meter.dlms import TAG_DATA_NOTIFICATION, MeterDecodeError, decode_push
from ihd.meter.reading import Utility
from ihd.smwap.errors import FrameError, PhyError
from ihd.smwap.fcs import check_fcs
from ihd.smwap.fec import coded_octets
from ihd.smwap.mac import (
    Address,
    AddrMode,
    FrameControl,
    FrameType,
    FrameVersion,
    MacFrame,
    parse_mpdu_unchecked,
)
from ihd.smwap.phy import (
    PREAMBLE_OCTET,
    SFD_CODED_0,
    SFD_CODED_1,
    SFD_UNCODED_0,
    SFD_UNCODED_1,
    parse_ppdu,
)
from ihd.smwap.security import Key, SecurityError, unsecure

__all__ = [
    "EXIT_FCS",
    "EXIT_INPUT",
    "EXIT_MIC",
    "EXIT_OK",
    "Explanation",
    "Field",
    "add_arguments",
    "dlms_summary",
    "explain",
    "main",
    "parse_hex",
    "run",
]

EXIT_OK, EXIT_INPUT, EXIT_FCS, EXIT_MIC = 0, 1, 3, 4  # 2: argparse's usage errors

_SFD_NAMES = {
    SFD_UNCODED_0: "uncoded, phyMRFSKSFD 0",
    SFD_UNCODED_1: "uncoded, phyMRFSKSFD 1",
    SFD_CODED_0: "FEC-coded, phyMRFSKSFD 0",
    SFD_CODED_1: "FEC-coded, phyMRFSKSFD 1",
}
_FCS_NAMES = {2: "CRC-16", 4: "CRC-32"}
_LEVEL_NAMES = (
    "none",
    "MIC-32",
    "MIC-64",
    "MIC-128",
    "ENC",
    "ENC-MIC-32",
    "ENC-MIC-64",
    "ENC-MIC-128",
)
_MODE_NAMES = {AddrMode.NONE: "none", AddrMode.SHORT: "short", AddrMode.EXTENDED: "extended"}
_VERSION_NAMES = {
    FrameVersion.V2003: "2003",
    FrameVersion.V2006: "2006/2011",
    FrameVersion.V2015: "2015",
}
_TYPE_NAMES = {
    FrameType.BEACON: "beacon",
    FrameType.DATA: "data",
    FrameType.ACK: "ack",
    FrameType.COMMAND: "MAC command",
    FrameType.MULTIPURPOSE: "multipurpose",
}
_COMMAND_NAMES = {
    0x01: "association request",
    0x02: "association response",
    0x03: "disassociation notification",
    0x04: "data request",
    0x05: "PAN ID conflict notification",
    0x06: "orphan notification",
    0x07: "beacon request",
    0x08: "coordinator realignment",
    0x09: "GTS request",
    0x0A: "TRLE management request",
    0x0B: "TRLE management response",
}
_HEADER_IE_NAMES = {
    0x00: "vendor specific",
    0x1A: "CSL",
    0x1B: "RIT",
    0x1C: "DSME PAN descriptor",
    0x1D: "rendezvous time",
    0x1E: "time correction",
    0x29: "global time",
    0x2A: "Wi-SUN (external)",
    0x7E: "header termination 1",
    0x7F: "header termination 2",
}
_PAYLOAD_IE_NAMES = {
    0x0: "ESDU",
    0x1: "MLME",
    0x2: "vendor specific",
    0x3: "MPX (802.15.9)",
    0x4: "Wi-SUN (external)",
    0x5: "IETF",
    0xF: "payload termination",
}
_HT1, _HT2 = b"\x00\x3f", b"\x80\x3f"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_MIN_MPDU = 2  # the shortest MAC frame: a frame control (a short multipurpose one + seq)
_PT = b"\x00\xf8"


# --- the explanation -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """One field: where it is (octets from the start of its section, None where octets are
    derived, such as plaintext), its octets, its name, what it means, and sub-fields."""

    offset: int | None
    raw: bytes
    name: str
    meaning: str = ""
    sub: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Section:
    title: str
    fields: list[Field] = field(default_factory=list)

    def add(
        self,
        offset: int | None,
        raw: bytes,
        name: str,
        meaning: str = "",
        sub: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.fields.append(Field(offset, bytes(raw), name, meaning, tuple(sub)))


@dataclass(slots=True)
class Explanation:
    """What :func:`explain` found: sections to print, notes, the exit status and, when it is
    not 0, the one-line reason."""

    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: int = EXIT_OK
    reason: str = ""
    checks: list[str] = field(default_factory=list)
    frame: MacFrame | None = None
    plaintext: MacFrame | None = None
    plaintext_octets: bytes | None = None  # the decrypted (or MIC-only clear) octets
    fcs_len: int | None = None

    def fail(self, status: int, reason: str) -> None:
        """Record a failure; the first one decides the exit status, later ones are notes."""
        if self.status == EXIT_OK:
            self.status, self.reason = status, reason
        else:
            self.notes.append(f"also: {reason}")

    def text(self) -> str:
        """The explanation as printed (no trailing newline)."""
        lines: list[str] = []
        for sec in self.sections:
            lines.append(sec.title)
            for f in sec.fields:
                lines.extend(_field_lines(f))
        if self.plaintext_octets is not None:
            lines.append(f"plaintext: {self.plaintext_octets.hex().upper() or '(none)'}")
        lines.extend(f"note: {n}" for n in self.notes)
        if self.status:
            lines.append(f"result: FAILED: {self.reason}")
        else:
            lines.append(f"result: {', '.join(self.checks) or 'ok'}")
        return "\n".join(lines)


_HEX_PER_LINE = 8
_HEX_WIDTH = 3 * _HEX_PER_LINE - 1


def _field_lines(f: Field) -> list[str]:
    off = "" if f.offset is None else str(f.offset)
    chunks = [
        f.raw[i : i + _HEX_PER_LINE].hex(" ").upper() for i in range(0, len(f.raw), _HEX_PER_LINE)
    ] or [""]
    label = f"{f.name}: {f.meaning}" if f.meaning else f.name
    out = [f"{off:>5}  {chunks[0]:<{_HEX_WIDTH}}  {label}"]
    out.extend(f"{'':>5}  {c}" for c in chunks[1:])
    pad = " " * (5 + 2 + _HEX_WIDTH + 2)
    out.extend(f"{pad}  {name}: {meaning}" for name, meaning in f.sub)
    return out


# --- input ---------------------------------------------------------------------------------


def parse_hex(text: str) -> bytes:
    """Octets from hex digits; spaces, ':', '-', '_' and a leading '0x' are allowed.
    ``ValueError`` if the text is not hex."""
    t = text.strip()
    if t[:2].lower() == "0x":
        t = t[2:]
    digits = "".join(t.split()).replace(":", "").replace("-", "").replace("_", "")
    if not digits:
        raise ValueError("no hex digits")
    bad = next((c for c in digits if c not in _HEX_DIGITS), None)
    if bad is not None:
        raise ValueError(f"{bad!r} is not a hex digit")
    if len(digits) % 2:
        raise ValueError(f"odd number of hex digits ({len(digits)})")
    return bytes.fromhex(digits)


def _looks_like_ppdu(data: bytes) -> bool:
    i = 0
    while i < len(data) and data[i] == PREAMBLE_OCTET:
        i += 1
    if i == 0 or len(data) < i + 2:
        return False
    return (data[i] << 8 | data[i + 1]) in _SFD_NAMES


# --- explain -------------------------------------------------------------------------------


def explain(
    data: bytes, *, fcs_len: int | None = None, key: Key | None = None, src: Address | None = None
) -> Explanation:
    """Explain one PPDU or PSDU (see the module docstring). Never raises for any octets."""
    exp = Explanation()
    if _looks_like_ppdu(data):
        psdu_or_none = _explain_phy(exp, data, fcs_len)
        if psdu_or_none is None:
            return exp
        psdu = psdu_or_none
        assert exp.fcs_len is not None
        fcs_len = exp.fcs_len
        said = ", as the PHR says"
    else:
        psdu = data
        said = ""
        if fcs_len is None and len(psdu) >= _MIN_MPDU + 2:
            fcs_len = _guess_fcs(exp, psdu)  # records a failure itself
            said = "guess"
        exp.fcs_len = fcs_len

    if fcs_len is None or len(psdu) < fcs_len + _MIN_MPDU:
        with_fcs = "its FCS" if fcs_len is None else f"a {fcs_len}-octet FCS"
        exp.fail(
            EXIT_INPUT,
            f"not a frame: {len(psdu)} octets is too short for a MAC frame with {with_fcs}",
        )
        return exp
    if said != "guess" and not check_fcs(psdu, fcs_len):
        exp.fail(EXIT_FCS, f"bad FCS ({fcs_len} octets, {_FCS_NAMES[fcs_len]}{said})")
    mpdu = psdu[:-fcs_len]
    sec = Section(f"MAC (MPDU of {len(mpdu)} octets + {fcs_len}-octet FCS; offsets in the MPDU)")
    exp.sections.append(sec)
    try:
        frame = parse_mpdu_unchecked(mpdu)
    except FrameError as e:
        _explain_fc_only(sec, mpdu)
        sec.add(0, mpdu, "octets")
        _add_fcs(exp, sec, psdu, fcs_len)
        exp.fail(EXIT_INPUT, f"not a frame: {e}")
        return exp
    exp.frame = frame
    _explain_mac(sec, mpdu, frame)
    _add_fcs(exp, sec, psdu, fcs_len)

    if frame.aux is None:
        if key is not None:
            exp.notes.append("the frame is not secured: --key not used")
        _explain_dlms(exp, frame)
        return exp
    if key is None:
        exp.notes.append("secured frame: give --key to verify the MIC and see the plaintext")
        exp.checks.append("MIC not checked (no --key)")
        return exp
    src_ext = _nonce_source(exp, frame, src)
    if src_ext is None:
        return exp
    try:
        plain = unsecure(mpdu, frame, key, src_ext=src_ext)
    except SecurityError as e:
        what = (
            "MIC check failed: wrong key, or the frame was changed"
            if e.counter == "mic_failure"
            else e.reason
        )
        exp.fail(EXIT_MIC, f"{what} (nonce source {src_ext:016X})")
        return exp
    exp.plaintext = plain
    exp.plaintext_octets = _secured_body(plain)
    exp.checks.append("no MIC (level 4)" if frame.aux.level == 4 else "MIC ok")
    psec = Section("PLAINTEXT (after CCM*; octets derived, not on air)")
    exp.sections.append(psec)
    verdict = (
        "no MIC at level 4: decrypted, but nothing was checked"
        if frame.aux.level == 4
        else f"MIC ok ({frame.aux.mic_len} octets)"
    )
    psec.add(None, b"", "security", f"{verdict}; nonce source {src_ext:016X}")
    _payload_ies_fields(psec, plain, None)
    _payload_fields(psec, plain, plain.payload, None)
    _explain_dlms(exp, plain)
    return exp


def _explain_phy(exp: Explanation, data: bytes, fcs_len: int | None) -> bytes | None:
    """The PHY section; returns the (de-whitened, decoded) PSDU and sets ``exp.fcs_len``
    from the PHR. The FCS itself is checked by the caller."""
    sec = Section(f"PHY (PPDU of {len(data)} octets)")
    exp.sections.append(sec)
    try:
        p = parse_ppdu(data)
    except PhyError as e:
        exp.fail(EXIT_INPUT, f"not a PPDU: {e}")
        sec.add(0, data, "octets")
        return None
    n_pre = p.preamble_octets
    if n_pre:
        sec.add(0, data[:n_pre], "preamble", f"{n_pre} octets of 0x55")
    sec.add(n_pre, data[n_pre : n_pre + 2], "SFD", f"0x{p.sfd:04X}, {_SFD_NAMES[p.sfd]}")
    phr = p.phr
    phr_meaning = (
        f"{phr.frame_length}-octet PSDU, {phr.fcs_len}-octet FCS, "
        f"{'whitened' if phr.whitened else 'not whitened'}"
    )
    phr_sub = (
        ("mode switch", "0"),
        ("FCS type", f"{int(phr.fcs_len == 2)} ({phr.fcs_len}-octet {_FCS_NAMES[phr.fcs_len]})"),
        ("data whitening", f"{int(phr.whitened)}"),
        ("frame length", f"{phr.frame_length}"),
    )
    start = n_pre + 2
    if p.fec is None:
        sec.add(start, data[start : start + 2], "PHR", phr_meaning, phr_sub)
        start += 2
        end = start + phr.frame_length
        sec.add(
            start,
            data[start:end],
            "PSDU as sent" if phr.whitened else "PSDU",
            "PN9-whitened; de-whitened below" if phr.whitened else "",
        )
    else:
        end = start + coded_octets(phr.frame_length)
        sec.add(
            start,
            data[start:end],
            "PHR + PSDU, FEC-coded",
            f"{p.fec.upper()} rate 1/2 K=4, "
            f"{'interleaved' if p.fec_interleaving else 'not interleaved'}, "
            f"{p.fec_corrected_bits} code bits corrected",
        )
        sec.add(None, phr.to_bytes(), "PHR (decoded)", phr_meaning, phr_sub)
        if phr.whitened:
            exp.notes.append(
                "the PSDU was PN9-whitened before coding; the MAC section shows it de-whitened"
            )
    if end < len(data):
        sec.add(end, data[end:], "after the PSDU", "ignored")
    if fcs_len is not None and fcs_len != phr.fcs_len:
        exp.notes.append(f"--fcs {fcs_len} ignored: the PHR says {phr.fcs_len}")
    exp.fcs_len = phr.fcs_len
    return p.psdu


def _guess_fcs(exp: Explanation, psdu: bytes) -> int:
    ok4 = len(psdu) >= _MIN_MPDU + 4 and check_fcs(psdu, 4)
    ok2 = check_fcs(psdu, 2)
    if ok4 and ok2:
        exp.notes.append(
            "the FCS checks both as 4 octets (CRC-32) and as 2 (CRC-16): "
            "read as 4; give --fcs 2 for the other reading"
        )
        fcs_len = 4
    elif ok4:
        exp.notes.append("FCS: 4 octets (CRC-32) checks; 2 octets (CRC-16) does not")
        fcs_len = 4
    elif ok2:
        exp.notes.append("FCS: 2 octets (CRC-16) checks; 4 octets (CRC-32) does not")
        fcs_len = 2
    else:
        fcs_len = 4 if len(psdu) >= _MIN_MPDU + 4 else 2
        exp.notes.append(
            "FCS: checks neither as 4 octets (CRC-32) nor as 2 (CRC-16); "
            f"read as {fcs_len}; give --fcs to choose"
        )
        exp.fail(EXIT_FCS, "bad FCS: checks neither as 4 octets (CRC-32) nor as 2 (CRC-16)")
    exp.fcs_len = fcs_len
    return fcs_len


def _add_fcs(exp: Explanation, sec: Section, psdu: bytes, fcs_len: int) -> None:
    raw = psdu[-fcs_len:]
    ok = check_fcs(psdu, fcs_len)
    if ok:
        exp.checks.append(f"FCS ok ({fcs_len} octets, {_FCS_NAMES[fcs_len]})")
    sec.add(
        len(psdu) - fcs_len,
        raw,
        "FCS",
        f"0x{int.from_bytes(raw, 'little'):0{2 * fcs_len}X} {_FCS_NAMES[fcs_len]}, "
        f"{'ok' if ok else 'BAD'}",
    )


def _fc_sub(fc: FrameControl) -> tuple[tuple[str, str], ...]:
    return (
        ("frame type", f"{int(fc.frame_type)} ({_TYPE_NAMES[fc.frame_type]})"),
        ("security enabled", str(int(fc.security_enabled))),
        ("frame pending", str(int(fc.frame_pending))),
        ("ack request", str(int(fc.ack_request))),
        ("PAN ID compression", str(int(fc.pan_id_compression))),
        ("sequence number suppression", str(int(fc.seq_suppressed))),
        ("IE present", str(int(fc.ie_present))),
        ("destination addressing mode", f"{int(fc.dst_mode)} ({_MODE_NAMES[fc.dst_mode]})"),
        ("frame version", f"{int(fc.frame_version)} ({_VERSION_NAMES[fc.frame_version]})"),
        ("source addressing mode", f"{int(fc.src_mode)} ({_MODE_NAMES[fc.src_mode]})"),
    )


def _mp_fc_sub(fc: int, long_fc: bool) -> tuple[tuple[str, str], ...]:
    """The multipurpose frame control's fields (bit layout: see :mod:`ihd.smwap.mac`)."""
    dmode, smode = AddrMode(fc >> 4 & 3), AddrMode(fc >> 6 & 3)
    sub = [
        ("frame type", "5 (multipurpose)"),
        ("long frame control", str(int(long_fc))),
        ("destination addressing mode", f"{int(dmode)} ({_MODE_NAMES[dmode]})"),
        ("source addressing mode", f"{int(smode)} ({_MODE_NAMES[smode]})"),
    ]
    if long_fc:
        sub += [
            ("PAN ID present", str(fc >> 8 & 1)),
            ("security enabled", str(fc >> 9 & 1)),
            ("sequence number suppression", str(fc >> 10 & 1)),
            ("frame pending", str(fc >> 11 & 1)),
            ("frame version", str(fc >> 12 & 3)),
            ("ack request", str(fc >> 14 & 1)),
            ("IE present", str(fc >> 15 & 1)),
        ]
    return tuple(sub)


def _explain_fc_only(sec: Section, mpdu: bytes) -> None:
    if mpdu and mpdu[0] & 7 == FrameType.MULTIPURPOSE:
        long_fc = bool(mpdu[0] & 0x08)
        n = 2 if long_fc else 1
        if len(mpdu) < n:
            return
        v = int.from_bytes(mpdu[:n], "little")
        if v >> 4 & 3 == 1 or v >> 6 & 3 == 1:
            sec.add(0, mpdu[:n], "frame control", f"0x{v:0{2 * n}X}: reserved addressing mode 1")
            return
        sec.add(0, mpdu[:n], "frame control", f"0x{v:0{2 * n}X}", _mp_fc_sub(v, long_fc))
        return
    if len(mpdu) < 2:
        return
    v = mpdu[0] | mpdu[1] << 8
    try:
        fc = FrameControl.from_int(v)
    except FrameError as e:
        sec.add(0, mpdu[:2], "frame control", f"0x{v:04X}: {e.reason}")
        return
    sec.add(0, mpdu[:2], "frame control", f"0x{v:04X}", _fc_sub(fc))


def _src_pan_sent(frame: MacFrame) -> bool:
    """Whether the source PAN ID is on air (the parser fills in a compressed one)."""
    if frame.src is None or frame.src_pan is None or frame.frame_type == FrameType.MULTIPURPOSE:
        return False
    if frame.dst_pan is None:
        return True
    if (
        frame.version == FrameVersion.V2015
        and frame.dst is not None
        and frame.dst.mode == frame.src.mode == AddrMode.EXTENDED
    ):
        return False
    return frame.dst is not None and not frame.pan_id_compression


def _addr_meaning(a: Address) -> str:
    if a.mode == AddrMode.SHORT:
        return f"{a}{' (broadcast)' if a.value == 0xFFFF else ''}"
    return f"EUI-64 {a}"


def _pan_meaning(pan: int) -> str:
    return f"0x{pan:04X}{' (broadcast)' if pan == 0xFFFF else ''}"


def _explain_mac(sec: Section, mpdu: bytes, frame: MacFrame) -> None:
    """Add the MHR fields, then the payload (clear) or the secured payload and MIC."""
    mp = frame.frame_type == FrameType.MULTIPURPOSE
    if mp:
        pos = 2 if frame.long_fc else 1
        v = int.from_bytes(mpdu[:pos], "little")
        form = "long" if frame.long_fc else "short"
        sec.add(
            0,
            mpdu[:pos],
            "frame control",
            f"0x{v:0{2 * pos}X}, multipurpose ({form} form)",
            _mp_fc_sub(v, frame.long_fc),
        )
    else:
        fc = frame.frame_control
        sec.add(
            0,
            mpdu[:2],
            "frame control",
            f"0x{fc.to_int():04X}, {_TYPE_NAMES[frame.frame_type]}",
            _fc_sub(FrameControl.from_bytes(mpdu[:2])),
        )
        pos = 2
    if frame.seq is not None:
        sec.add(pos, mpdu[pos : pos + 1], "sequence number", str(frame.seq))
        pos += 1
    if frame.dst_pan is not None:
        sec.add(
            pos,
            mpdu[pos : pos + 2],
            "PAN ID" if mp else "destination PAN ID",
            _pan_meaning(frame.dst_pan),
        )
        pos += 2
    if frame.dst is not None:
        n = len(frame.dst.to_bytes())
        sec.add(pos, mpdu[pos : pos + n], "destination address", _addr_meaning(frame.dst))
        pos += n
    if _src_pan_sent(frame):
        assert frame.src_pan is not None
        sec.add(pos, mpdu[pos : pos + 2], "source PAN ID", _pan_meaning(frame.src_pan))
        pos += 2
    elif frame.src is not None and frame.src_pan is not None:
        why = "the frame's one PAN ID" if mp else "compressed: the destination PAN"
        sec.add(None, b"", "source PAN ID", f"0x{frame.src_pan:04X} ({why})")
    if frame.src is not None:
        n = len(frame.src.to_bytes())
        sec.add(pos, mpdu[pos : pos + n], "source address", _addr_meaning(frame.src))
        pos += n
    aux = frame.aux
    mic_len = 0
    if aux is not None:
        raw = aux.to_bytes()
        mic_len = aux.mic_len
        sub = [
            ("security level", f"{aux.level} ({_LEVEL_NAMES[aux.level]})"),
            ("key identifier mode", str(aux.key_id_mode)),
            ("frame counter suppression", str(int(aux.frame_counter is None))),
            ("ASN in nonce", str(int(aux.asn_in_nonce))),
        ]
        if aux.frame_counter is not None:
            sub.append(("frame counter", str(aux.frame_counter)))
        if aux.key_source:
            sub.append(("key source", aux.key_source.hex().upper()))
        if aux.key_index is not None:
            sub.append(("key index", str(aux.key_index)))
        sec.add(
            pos,
            mpdu[pos : pos + len(raw)],
            "auxiliary security header",
            f"level {aux.level} ({_LEVEL_NAMES[aux.level]}), key id mode {aux.key_id_mode}",
            sub,
        )
        pos += len(raw)
    bound = len(mpdu) - mic_len
    for hie in frame.header_ies:
        n = 2 + len(hie.content)
        name = _HEADER_IE_NAMES.get(hie.element_id, "")
        sec.add(
            pos,
            mpdu[pos : pos + n],
            "header IE",
            f"element ID 0x{hie.element_id:02X}{f' ({name})' if name else ''}, "
            f"{len(hie.content)} content octets",
        )
        pos += n
    if frame.ie_present and pos + 2 <= bound and mpdu[pos : pos + 2] in (_HT1, _HT2):
        which = "1 (payload IEs follow)" if mpdu[pos : pos + 2] == _HT1 else "2 (payload follows)"
        sec.add(pos, mpdu[pos : pos + 2], "header termination IE", which)
        pos += 2
    if aux is None:
        pos = _payload_ies_fields(sec, frame, pos, mpdu)
        if len(mpdu) - pos != len(frame.payload):  # pragma: no cover - parser invariant
            sec.add(pos, mpdu[pos:], "rest", "layout not understood")
            return
        _payload_fields(sec, frame, frame.payload, pos)
        return
    clear = int(frame.frame_type == FrameType.COMMAND and frame.version < FrameVersion.V2015)
    if aux.level < 4:
        sec.add(
            pos,
            mpdu[pos:bound],
            "secured payload",
            "in clear, authenticated by the MIC"
            + ("; begins with payload IEs" if frame.secured_payload_ies else ""),
        )
    else:
        if clear and pos < bound:
            cid = mpdu[pos]
            sec.add(
                pos,
                mpdu[pos : pos + 1],
                "command ID",
                f"0x{cid:02X} ({_COMMAND_NAMES.get(cid, 'reserved')}), in clear",
            )
            pos += 1
        sec.add(
            pos,
            mpdu[pos:bound],
            "secured payload",
            "encrypted" + ("; begins with payload IEs" if frame.secured_payload_ies else ""),
        )
    if mic_len:
        sec.add(bound, mpdu[bound:], "MIC", f"{mic_len} octets")


def _secured_body(plain: MacFrame) -> bytes:
    """The octets that were secured, in clear: payload IEs (and the payload termination IE
    when a payload follows them), then the MAC payload; without the MIC. For a 2006 MAC
    command the Command ID (sent in clear) comes first, as in the payload."""
    body = b"".join(ie.to_bytes() for ie in plain.payload_ies)
    if plain.payload_ies and plain.payload:
        body += _PT
    return body + plain.payload


def _payload_ies_fields(
    sec: Section, frame: MacFrame, pos: int | None, mpdu: bytes | None = None
) -> int:
    """Payload IEs (of a clear or decrypted frame) and the payload termination IE."""
    at = pos
    for pie in frame.payload_ies:
        raw = pie.to_bytes()
        name = _PAYLOAD_IE_NAMES.get(pie.group_id, "")
        sec.add(
            at,
            raw,
            "payload IE",
            f"group ID 0x{pie.group_id:X}"
            f"{f' ({name})' if name else ''}, {len(pie.content)} content octets",
        )
        if at is not None:
            at += len(raw)
    if at is not None and mpdu is not None:
        if frame.payload_ies and mpdu[at : at + 2] == _PT:
            sec.add(at, _PT, "payload termination IE")
            at += 2
        return at
    if frame.payload_ies and frame.payload:
        sec.add(None, _PT, "payload termination IE")
    return 0 if at is None else at


def _payload_fields(sec: Section, frame: MacFrame, payload: bytes, pos: int | None) -> None:
    def at(i: int) -> int | None:
        return None if pos is None else pos + i

    ftype = frame.frame_type
    if ftype == FrameType.COMMAND and payload:
        cid = payload[0]
        sec.add(
            at(0),
            payload[:1],
            "command ID",
            f"0x{cid:02X} ({_COMMAND_NAMES.get(cid, 'reserved or not known here')})",
        )
        if len(payload) > 1:
            sec.add(at(1), payload[1:], "command payload", f"{len(payload) - 1} octets")
        return
    if ftype == FrameType.BEACON and frame.version < FrameVersion.V2015:
        _beacon_fields(sec, payload, at)
        return
    if payload:
        sec.add(
            at(0),
            payload,
            "payload" if ftype != FrameType.BEACON else "beacon payload",
            f"{len(payload)} octets",
        )
    elif ftype in (FrameType.DATA, FrameType.COMMAND):
        sec.add(at(0), b"", "payload", "empty")


def _beacon_fields(sec: Section, p: bytes, at: Callable[[int], int | None]) -> None:
    if len(p) < 4:
        sec.add(
            at(0),
            p,
            "beacon payload",
            "too short for superframe, GTS and pending address specifications",
        )
        return
    sf = p[0] | p[1] << 8
    sec.add(
        at(0),
        p[:2],
        "superframe specification",
        f"0x{sf:04X}",
        (
            ("beacon order", str(sf & 0xF)),
            ("superframe order", str(sf >> 4 & 0xF)),
            ("final CAP slot", str(sf >> 8 & 0xF)),
            ("battery life extension", str(sf >> 12 & 1)),
            ("PAN coordinator", str(sf >> 14 & 1)),
            ("association permit", str(sf >> 15 & 1)),
        ),
    )
    gts = p[2]
    count = gts & 7
    sec.add(at(2), p[2:3], "GTS specification", f"{count} descriptors, GTS permit {gts >> 7}")
    i = 3
    if count:
        n = 1 + 3 * count
        sec.add(at(i), p[i : i + n], "GTS directions and list")
        i += n
    if i >= len(p):
        sec.add(at(i), b"", "pending address specification", "missing")
        return
    pend = p[i]
    n_short, n_ext = pend & 7, pend >> 4 & 7
    sec.add(
        at(i), p[i : i + 1], "pending address specification", f"{n_short} short, {n_ext} extended"
    )
    i += 1
    n = 2 * n_short + 8 * n_ext
    if n:
        sec.add(at(i), p[i : i + n], "pending addresses")
        i += n
    if i < len(p):
        sec.add(at(i), p[i:], "beacon payload", f"{len(p) - i} octets")


def _nonce_source(exp: Explanation, frame: MacFrame, src: Address | None) -> int | None:
    if frame.src is not None and frame.src.mode == AddrMode.EXTENDED:
        if src is not None and src.value != frame.src.value:
            exp.notes.append(f"--src {src} ignored: the frame carries its EUI-64 {frame.src}")
        return frame.src.value
    if src is not None:
        return src.value
    what = "a short" if frame.src is not None else "no"
    exp.fail(
        EXIT_INPUT,
        f"cannot check the MIC: the frame has {what} source address; give "
        "the sender's EUI-64 with --src",
    )
    return None


def dlms_summary(payload: bytes, *, meter: str, received_at: float = 0.0) -> str | None:
    """A one-line summary of the DLMS push in ``payload`` (OBIS code, value, unit for each
    reading), ``"DLMS: <reason>"`` if it does not decode, or None if ``payload`` does not
    start like a DATA-NOTIFICATION."""
    if not payload or payload[0] != TAG_DATA_NOTIFICATION:
        return None
    try:
        push = decode_push(
            payload, meter=meter, utility=Utility.ELECTRICITY, received_at=received_at
        )
    except MeterDecodeError as e:
        return f"DLMS: {e.reason}"
    return "; ".join(f"{r.obis} {r.value} {r.unit}" for r in push.readings) or "DLMS: empty"


def _explain_dlms(exp: Explanation, frame: MacFrame) -> None:
    p = frame.payload
    if frame.frame_type != FrameType.DATA or not p or p[0] != TAG_DATA_NOTIFICATION:
        return
    meter = str(frame.src) if frame.src is not None else "unknown"
    sec = Section("DLMS (DATA-NOTIFICATION in the MAC payload)")
    exp.sections.append(sec)
    try:
        push = decode_push(p, meter=meter, utility=Utility.ELECTRICITY, received_at=0.0)
    except MeterDecodeError as e:
        sec.add(None, b"", "not decoded", e.reason)
        return
    import datetime as dt

    when = dt.datetime.fromtimestamp(push.timestamp, dt.UTC).isoformat(timespec="seconds")
    sec.add(None, b"", "invoke id", str(push.invoke_id))
    sec.add(None, b"", "time", when.replace("+00:00", "Z"))
    for r in push.readings:
        sec.add(None, b"", r.obis, f"{r.value} {r.unit} ({r.quantity})")
    for obis in push.skipped:
        sec.add(None, b"", obis, "not a number: skipped")


# --- command line --------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``ihd decode`` arguments."""
    p.add_argument(
        "hex",
        metavar="HEX",
        nargs="?",
        help="the frame: a PSDU (MPDU with FCS) or a whole PPDU, as hex digits "
        "(spaces and ':' allowed; quote them)",
    )
    p.add_argument(
        "--key",
        metavar="HEX",
        help="the 128-bit key (32 hex digits) that secured the frame: check the MIC, decrypt",
    )
    p.add_argument(
        "--fcs", type=int, choices=(2, 4), help="FCS octets of a bare PSDU (default: try both)"
    )
    p.add_argument(
        "--src",
        metavar="EUI64",
        help="the sender's EUI-64 for the nonce, when the frame has a short source address",
    )
    from ihd.tools import dlms_decode

    dlms_decode.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    """``ihd decode``: print the explanation; one line on stderr and non-zero if it fails."""
    if getattr(args, "dlms", None) is not None:
        if args.hex is not None:
            return _fail(EXIT_INPUT, "give either a frame (HEX) or --dlms HEX, not both")
        from ihd.tools import dlms_decode

        return dlms_decode.run(args)
    if args.hex is None:
        return _fail(EXIT_INPUT, "nothing to decode: give a frame as HEX, or --dlms HEX")
    try:
        data = parse_hex(args.hex)
    except ValueError as e:
        return _fail(EXIT_INPUT, f"the frame is not hex: {e}")
    key = None
    if args.key is not None:
        try:
            key = Key.from_hex(args.key)
        except ValueError:
            return _fail(EXIT_INPUT, "--key: a key needs 32 hex digits")
    src = None
    if args.src is not None:
        try:
            src = Address.from_eui64(args.src)
        except ValueError:
            return _fail(EXIT_INPUT, "--src: an EUI-64 needs 16 hex digits")
    exp = explain(data, fcs_len=args.fcs, key=key, src=src)
    try:
        print(exp.text(), flush=True)
    except BrokenPipeError:  # `ihd decode ... | head`: the reader left; not our failure
        _silence_stdout()
    if exp.status:
        return _fail(exp.status, exp.reason)
    return EXIT_OK


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the interpreter's last flush
    does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (e.g. captured in a test)
        pass


def _fail(status: int, reason: str) -> int:
    print(f"ihd decode: {reason}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="ihd decode", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
