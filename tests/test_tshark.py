"""Cross-check our 802.15.4 framing and security against Wireshark's dissector (tshark).

Two captures, each written with ``ihd.smwap.pcap`` (link type 283, TAP) and read back both by
tshark and by our own stack; every frame's fields must agree:

(a) generated frames covering every frame type and option the builder has: beacon (2006
    and enhanced), data, Imm-Ack, Enh-Ack, MAC command (2006 and 2015), multipurpose (short
    and long frame control, every addressing mode combination, with and without the PAN ID,
    sequence number suppression, AR, frame pending, IEs); 2003, 2006 and 2015 formats; every
    addressing mode combination with every PAN ID layout of the 2006 rule and the 2015 table;
    sequence number suppression; header IEs (with HT1/HT2), payload IEs (with the payload
    termination IE), unknown header and payload IEs; MPX IEs of every transfer type (full
    frame with and without Multiplex ID, first, middle and last fragment, abort with and
    without total size; KMP and EtherType Multiplex IDs); secured frames at levels 1-7 with
    key identifier modes 0-3 (the vector key), a short-source secured frame (tshark gets the
    EUI-64 from its static address table), secured 2015 frames with header IEs and encrypted
    payload IEs (MPX among them); 2- and 4-octet FCS mixed in one capture, with RSSI and
    channel TLVs. Plus octets our builder never sends but our parser takes (redundant
    termination IEs, reserved frame control bit 7), one frame with a bad FCS and one with a
    bad MIC, where both must fail.
(b) the simulated air: a few simulated minutes of the demo household, recorded by a passive
    node on the air (everything sent on the channel, acks included) and by ``ihd sniff``'s
    capture path (what the display's radio hands up), with some bit errors on the air so
    that bad FCS verdicts are compared too. Secured frames decrypt with the meters' keys.

tshark runs with ``--disable-protocol 6lowpan`` and the heuristic dissectors that take
802.15.4 payloads (ZigBee, LWM, Thread beacons) off, so every MAC payload lands in
``data.data``; after decryption that is the plaintext. A frame tshark decrypted carries
``wpan.key_number``; a MIC failure shows only an expert message.

Where tshark 4.0 reads a frame differently from us, the test asserts what tshark shows and
the case says why (``Case.limit``, ``expected()``):

* **Secured multipurpose frames**: tshark takes the multipurpose frame version (0) as the
  frame version, so it reads the auxiliary security header in the 2003 layout (frame
  counter, key sequence counter: ``wpan.sec_frame_counter``) and never decrypts. Checked:
  the frame control, sequence number, PAN ID and addresses, and the FCS.
* **IE Present with no IE at all** (our builder sends it if asked): tshark reads a header IE
  descriptor past the end and calls the frame malformed, without an FCS verdict.
* **Two octets or fewer after HT1**: tshark dissects payload IEs only when more than 2
  octets follow HT1 (``ieee802154_dissect_payload_ies``); otherwise it says "Payload IE
  indicated by Header Termination, but no Payload IE present" (malformed) and shows those
  octets as the MAC payload. That hits a frame our builder sends (HT1, one empty payload IE,
  nothing after) and two our parser takes (HT1 at the end; HT1 + PT at the end).
* **MPX IE, transfer type 1** (full frame, no Multiplex ID): tshark reads bits 3-7 of the
  transaction control as a compressed Multiplex ID (``wpan.mpx.multiplex_id``, so 1 means
  KMP and the next octet is a KMP ID), where we keep them as ``transaction_id``.
* **MPX IE, last fragment numbered 0**: we (like Nanostack) read Total Size and Multiplex ID
  after the fragment number, as for a first fragment; tshark reads them only in a non-last
  fragment 0 and shows the rest as the fragment.
* tshark hands MPX data to other dissectors by Multiplex ID (EtherTypes, Wi-SUN, EAPOL KMPs),
  so the cases use KMP ID 8 (ETSI TS 102 887-2, which tshark leaves as data) and EtherType
  0x88B5 (IEEE 802 local experimental, no dissector).
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ihd.smwap import (
    Address,
    AddrMode,
    AuxSecurityHeader,
    FrameType,
    FrameVersion,
    HeaderIE,
    MacFrame,
    MpxIE,
    MpxTransferType,
    PayloadIE,
    compute_fcs,
    parse_mpdu,
    parse_mpdu_unchecked,
)
from ihd.smwap.fcs import check_fcs
from ihd.smwap.pcap import PcapWriter, read_pcap
from ihd.smwap.security import Key, SecurityError, secure, unsecure

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not on PATH (CI installs it: apt-get install tshark)"
)

VECTORS = json.loads((Path(__file__).parent / "data" / "smwap_vectors.json").read_text())
KEY_HEX = VECTORS["ccm_star"][0]["key"]
KEY = Key.from_hex(KEY_HEX)
KEY_INDEXES = (0, 5, 7)  # 0: what tshark takes for key identifier mode 0

METER = 0x0011223344556677
OTHER = 0xACDE480000000002
SHORT_METER = 0x1234  # the short address tshark maps to METER (static address table)
PAN, PAN2 = 0x1D1D, 0x2222
T0 = 1_764_000_000.0

# Protocols whose heuristics claim 802.15.4 payloads; disabled so payloads stay data.data.
PROTOCOLS_OFF = (
    "6lowpan",
    "zbee_nwk",
    "zbee_nwk_gp",
    "lwm",
    "zbip_beacon",
    "zbee_beacon",
    "thread_bcn",
)

FIELDS = (
    "frame.time_epoch",
    "wpan-tap.fcs_type",
    "wpan-tap.rss",
    "wpan-tap.ch_num",
    "wpan-tap.ch_page",
    "wpan.frame_type",
    "wpan.fcf.reserved",
    "wpan.long_frame_control",
    "wpan.pan_id_present",
    "wpan.mpf_version",
    "wpan.security",
    "wpan.pending",
    "wpan.ack_request",
    "wpan.pan_id_compression",
    "wpan.seqno_suppression",
    "wpan.ie_present",
    "wpan.dst_addr_mode",
    "wpan.version",
    "wpan.src_addr_mode",
    "wpan.seq_no",
    "wpan.dst_pan",
    "wpan.dst16",
    "wpan.dst64",
    "wpan.src_pan",
    "wpan.src16",
    "wpan.src64",
    "wpan.aux_sec.sec_level",
    "wpan.aux_sec.key_id_mode",
    "wpan.aux_sec.frame_counter_suppression",
    "wpan.aux_sec.frame_counter",
    "wpan.aux_sec.key_source",
    "wpan.aux_sec.key_index",
    "wpan.mic",
    "wpan.key_number",
    "wpan.header_ie.id",
    "wpan.header_ie.length",
    "wpan.payload_ie.id",
    "wpan.payload_ie.length",
    "wpan.mpx.transfer_type",
    "wpan.mpx.transaction_id",
    "wpan.mpx.multiplex_id",
    "wpan.mpx.fragment_number",
    "wpan.mpx.total_frame_size",
    "wpan.mpx.kmp.id",
    "wpan.mpx.fragment",
    "wpan.sec_frame_counter",
    "wpan.cmd",
    "wpan.beacon_order",
    "wpan.superframe_order",
    "wpan.cap",
    "wpan.battery_ext",
    "wpan.bcn_coord",
    "wpan.assoc_permit",
    "wpan.gts.count",
    "wpan.gts.permit",
    "wpan.fcs",
    "wpan.fcs32",
    "wpan.fcs_ok",
    "data.data",
    "_ws.expert.message",
    "_ws.malformed",
)
# Fields we compute; the rest of FIELDS are read for the failure messages (and the
# documented tshark limits) only.
_NOT_COMPARED = ("_ws.expert.message", "_ws.malformed", "wpan.key_number", "wpan.sec_frame_counter")
_COMPARED = tuple(f for f in FIELDS if f not in _NOT_COMPARED)


# --- running tshark ------------------------------------------------------------------------


def run_tshark(
    pcap: Path, *, keys: list[tuple[str, int]], addresses: list[tuple[int, int, int]] = ()
) -> list[dict[str, list[str]]]:
    """tshark's fields for every frame of ``pcap``: one dict per frame, field -> values."""
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(pcap)]
    for proto in PROTOCOLS_OFF:
        cmd += ["--disable-protocol", proto]
    for key_hex, index in keys:
        cmd += ["-o", f'uat:ieee802154_keys:"{key_hex}","{index}","No hash"']
    for short, pan, eui in addresses:
        cmd += ["-o", f'uat:802154_addresses:"{short:04x}","{pan:04x}",{eui:016x}']
    cmd += ["-T", "json"]
    for f in FIELDS:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    packets = json.loads(res.stdout or "[]")
    return [p["_source"]["layers"] for p in packets]


# --- what tshark should say, from our own stack --------------------------------------------


def _eui(v: int) -> str:
    return ":".join(f"{b:02x}" for b in v.to_bytes(8, "big"))


def _hx(v: int, digits: int) -> str:
    return f"0x{v:0{digits}x}"


def _src_pan_sent(f: MacFrame) -> bool:
    if f.src is None or f.src_pan is None or f.frame_type == FrameType.MULTIPURPOSE:
        return False  # a multipurpose frame's one PAN ID is read as dst_pan
    if f.dst_pan is None:
        return True
    if (
        f.version == FrameVersion.V2015
        and f.dst is not None
        and f.dst.mode == f.src.mode == AddrMode.EXTENDED
    ):
        return False
    return f.dst is not None and not f.pan_id_compression


def expected(
    ts: str,
    mpdu: bytes,
    fcs_len: int,
    *,
    rssi: float | None,
    channel: int | None,
    plain: MacFrame | None,
    addresses: dict[int, int] | None = None,
) -> dict[str, list[str]]:
    """The tshark fields (as tshark prints them) of one frame that our stack parsed.
    ``addresses`` maps short addresses to the EUI-64s tshark's static table gives it."""
    ok = check_fcs(mpdu, fcs_len)
    fcs_raw = int.from_bytes(mpdu[-fcs_len:], "little")
    out: dict[str, list[str]] = {
        "frame.time_epoch": [ts],
        "wpan-tap.fcs_type": ["2" if fcs_len == 4 else "1"],
        ("wpan.fcs32" if fcs_len == 4 else "wpan.fcs"): [_hx(fcs_raw, 2 * fcs_len)],
        "wpan.fcs_ok": ["1" if ok else "0"],
    }
    if rssi is not None:
        out["wpan-tap.rss"] = [_float(rssi)]
    if channel is not None:
        out["wpan-tap.ch_num"] = [str(channel)]
        out["wpan-tap.ch_page"] = ["9"]
    f = parse_mpdu(mpdu, fcs_len) if ok else None
    if f is None:
        return out
    if f.frame_type == FrameType.MULTIPURPOSE:
        out.update(_mp_frame_control(f))
    else:
        fc = f.frame_control
        out.update(
            {
                "wpan.frame_type": [_hx(f.frame_type, 4)],
                "wpan.fcf.reserved": [str(mpdu[0] >> 7)],  # ignored by our parser
                "wpan.security": [str(int(fc.security_enabled))],
                "wpan.pending": [str(int(fc.frame_pending))],
                "wpan.ack_request": [str(int(fc.ack_request))],
                "wpan.pan_id_compression": [str(int(fc.pan_id_compression))],
                "wpan.seqno_suppression": [str(int(fc.seq_suppressed))],
                "wpan.ie_present": [str(int(fc.ie_present))],
                "wpan.dst_addr_mode": [_hx(fc.dst_mode, 4)],
                "wpan.version": [str(int(fc.frame_version))],
                "wpan.src_addr_mode": [_hx(fc.src_mode, 4)],
            }
        )
    if f.seq is not None:
        out["wpan.seq_no"] = [str(f.seq)]
    if f.dst_pan is not None:
        out["wpan.dst_pan"] = [_hx(f.dst_pan, 4)]
    if f.dst is not None:
        out["wpan.dst16" if f.dst.mode == AddrMode.SHORT else "wpan.dst64"] = [
            _hx(f.dst.value, 4) if f.dst.mode == AddrMode.SHORT else _eui(f.dst.value)
        ]
    if _src_pan_sent(f):
        assert f.src_pan is not None
        out["wpan.src_pan"] = [_hx(f.src_pan, 4)]
    if f.src is not None:
        out["wpan.src16" if f.src.mode == AddrMode.SHORT else "wpan.src64"] = [
            _hx(f.src.value, 4) if f.src.mode == AddrMode.SHORT else _eui(f.src.value)
        ]
        if f.src.mode == AddrMode.SHORT and f.src.value in (addresses or {}):
            out["wpan.src64"] = [_eui((addresses or {})[f.src.value])]  # tshark's mapping
    if f.header_ies:
        out["wpan.header_ie.id"] = [_hx(ie.element_id, 4) for ie in f.header_ies]
        out["wpan.header_ie.length"] = [str(len(ie.content)) for ie in f.header_ies]
    aux = f.aux
    body = f if aux is None else plain
    if aux is not None:
        out["wpan.aux_sec.sec_level"] = [_hx(aux.level, 2)]
        out["wpan.aux_sec.key_id_mode"] = [_hx(aux.key_id_mode, 2)]
        out["wpan.aux_sec.frame_counter_suppression"] = [str(int(aux.frame_counter is None))]
        if aux.frame_counter is not None:
            out["wpan.aux_sec.frame_counter"] = [str(aux.frame_counter)]
        if aux.key_source:
            digits = 2 * len(aux.key_source)
            out["wpan.aux_sec.key_source"] = [
                _hx(int.from_bytes(aux.key_source, "big"), max(digits, 16))
            ]
        if aux.key_index is not None:
            out["wpan.aux_sec.key_index"] = [_hx(aux.key_index, 2)]
        if aux.mic_len:
            out["wpan.mic"] = [mpdu[:-fcs_len][-aux.mic_len :].hex()]
    if body is None:
        return out
    if body.payload_ies:
        out["wpan.payload_ie.id"] = [_hx(ie.group_id, 4) for ie in body.payload_ies]
        out["wpan.payload_ie.length"] = [str(len(ie.content)) for ie in body.payload_ies]
    payload = body.payload
    if f.frame_type == FrameType.COMMAND and payload:
        out["wpan.cmd"] = [_hx(payload[0], 2)]
        payload = b""  # the command's own fields: not compared
    elif f.frame_type == FrameType.BEACON and f.version < FrameVersion.V2015:
        sf = payload[0] | payload[1] << 8
        out.update(
            {
                "wpan.beacon_order": [str(sf & 0xF)],
                "wpan.superframe_order": [str(sf >> 4 & 0xF)],
                "wpan.cap": [str(sf >> 8 & 0xF)],
                "wpan.battery_ext": [str(sf >> 12 & 1)],
                "wpan.bcn_coord": [str(sf >> 14 & 1)],
                "wpan.assoc_permit": [str(sf >> 15 & 1)],
                "wpan.gts.count": [str(payload[2] & 7)],
                "wpan.gts.permit": [str(payload[2] >> 7)],
            }
        )
        assert payload[2] & 7 == 0 and payload[3] == 0, "only empty GTS/pending lists here"
        payload = payload[4:]
    # tshark hands a vendor-specific payload IE's content (after the OUI) and an MPX full
    # frame's upper-layer frame to the data dissector too, before the MAC payload
    data: list[str] = []
    for ie in body.payload_ies:
        if ie.group_id == 0x2 and len(ie.content) > 3:
            data.append(ie.content[3:].hex())
        elif ie.group_id == MpxIE.GROUP_ID:
            _expect_mpx(MpxIE.from_payload_ie(ie), out, data)
    if payload:
        data.append(payload.hex())
    if data:
        out["data.data"] = data
    return out


def _mp_frame_control(f: MacFrame) -> dict[str, list[str]]:
    """A multipurpose frame control as tshark shows it: the short form has only the frame
    type, Long Frame Control and the addressing modes."""

    def b(v: bool) -> list[str]:
        return [str(int(v))]

    out = {
        "wpan.frame_type": [_hx(f.frame_type, 4)],
        "wpan.long_frame_control": b(f.long_fc),
        "wpan.dst_addr_mode": [_hx(f.dst.mode if f.dst else 0, 4)],
        "wpan.src_addr_mode": [_hx(f.src.mode if f.src else 0, 4)],
    }
    if f.long_fc:
        out.update(
            {
                "wpan.pan_id_present": b(f.dst_pan is not None),
                "wpan.security": b(f.aux is not None),
                "wpan.seqno_suppression": b(f.seq is None),
                "wpan.pending": b(f.frame_pending),
                "wpan.mpf_version": ["0"],
                "wpan.ack_request": b(f.ack_request),
                "wpan.ie_present": b(f.ie_present),
            }
        )
    return out


def _expect_mpx(ie: MpxIE, out: dict[str, list[str]], data: list[str]) -> None:
    """Add what tshark 4.0 shows for one MPX IE (see the module docstring for where it
    reads the IE differently from us) to ``out``; upper-layer data it hands to the data
    dissector goes to ``data``."""

    def add(name: str, value: str) -> None:
        out.setdefault(f"wpan.mpx.{name}", []).append(value)

    tt = ie.transfer_type
    add("transfer_type", _hx(tt, 2))
    rest = ie.data
    mux = ie.multiplex_id
    if tt == MpxTransferType.FULL_FRAME_NO_MULTIPLEX_ID:
        mux = ie.transaction_id  # tshark: a compressed Multiplex ID, not a transaction ID
        add("multiplex_id", _hx(mux, 2))
    else:
        add("transaction_id", _hx(ie.transaction_id, 2))
    if ie.fragment_number is not None:
        add("fragment_number", str(ie.fragment_number))
    if tt == MpxTransferType.LAST_FRAGMENT and ie.fragment_number == 0:
        rest = ie.content()[2:]  # tshark: Total Size and Multiplex ID are fragment data here
        mux = None
    else:
        if ie.total_size is not None:
            add("total_frame_size", str(ie.total_size))
        if ie.multiplex_id is not None:
            add("multiplex_id", _hx(ie.multiplex_id, 4))
    if tt == MpxTransferType.ABORT:
        return
    assert mux != 2, "Multiplex ID 2 (Wi-SUN) goes to tshark's Wi-SUN dissectors"
    if mux == 1:  # KMP: the KMP ID is the first data octet
        assert rest[:1] == b"\x08", "KMP IDs other than 8 go to other tshark dissectors"
        add("kmp.id", str(rest[0]))
        rest = rest[1:]
    if tt in (MpxTransferType.FULL_FRAME, MpxTransferType.FULL_FRAME_NO_MULTIPLEX_ID):
        if rest:
            data.append(rest.hex())
    else:
        add("fragment", " ".join(f"{o:02x}" for o in rest) or "<MISSING>")


def _float(v: float) -> str:
    # tshark prints the float32 TLV like printf's %g (6 significant digits)
    f32 = struct.unpack("<f", struct.pack("<f", v))[0]
    return f"{f32:g}"


def compare(
    ours: dict[str, list[str]],
    theirs: dict[str, list[str]],
    what: str,
    *,
    ignore: frozenset[str] = frozenset(),
    malformed: bool = False,
) -> None:
    """Every compared field (but ``ignore``) equal; terminator IEs (which we do not return)
    left out. ``malformed``: tshark must call the frame malformed (a documented limit)."""
    t = dict(theirs)
    for name, term in (("wpan.header_ie", {"0x007e", "0x007f"}), ("wpan.payload_ie", {"0x000f"})):
        ids = t.get(f"{name}.id", [])
        keep = [i for i, v in enumerate(ids) if v not in term]
        if ids:
            for sub in ("id", "length"):
                vals = [t[f"{name}.{sub}"][i] for i in keep]
                if vals:
                    t[f"{name}.{sub}"] = vals
                else:
                    del t[f"{name}.{sub}"]
    got = {k: v for k, v in t.items() if k in _COMPARED and k not in ignore}
    want = {k: v for k, v in ours.items() if k in _COMPARED and k not in ignore}
    if got != want:
        diff = {
            k: (want.get(k), got.get(k))
            for k in sorted(set(got) | set(want))
            if got.get(k) != want.get(k)
        }
        raise AssertionError(
            f"{what}: fields differ (ours, tshark's): {diff}; "
            f"tshark's expert info: {theirs.get('_ws.expert.message')}"
        )
    if malformed:
        assert "_ws.malformed" in theirs, f"{what}: tshark no longer says malformed: {theirs}"
    else:
        assert "_ws.malformed" not in theirs, f"{what}: tshark says malformed: {theirs}"


# --- (a) generated frames ------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    plain: MacFrame  # the frame before securing (for secured frames)
    fcs_len: int
    mpdu: bytes  # with FCS
    src_ext: int | None = None
    expect_mic_ok: bool = True
    limit: str = ""  # a documented tshark 4.0 limit (see the module docstring), or ""


def _beacon_payload(sf: int, payload: bytes = b"") -> bytes:
    return sf.to_bytes(2, "little") + b"\x00\x00" + payload  # no GTS, no pending addresses


VENDOR_HIE = HeaderIE(0x00, bytes.fromhex("bbccdd") + b"vendor")  # vendor specific (OUI)
TIME_CORRECTION = HeaderIE(0x1E, (0x0123).to_bytes(2, "little"))  # time correction IE
VENDOR_PIE = PayloadIE(0x2, bytes.fromhex("bbccdd") + b"payload IE")
MLME_PIE = PayloadIE(0x1, b"")  # empty MLME IE
UNKNOWN_HIES = (HeaderIE(0x50, b"unknown"), HeaderIE(0xA5, b""))  # reserved element IDs
UNKNOWN_PIES = (PayloadIE(0x7, b"unknown"), PayloadIE(0xE, b""))  # reserved group IDs
MPX = MpxTransferType
EXPERIMENTAL_ETHERTYPE = 0x88B5  # IEEE 802 local experimental: no tshark dissector
KMP_ETSI = b"\x08"  # KMP ID 8: ETSI TS 102 887-2 (tshark leaves its data alone)
MPX_KMP = MpxIE(MPX.FULL_FRAME, 3, 1, data=KMP_ETSI + b"kmp frame")


def _address_frames() -> Iterator[tuple[str, MacFrame]]:
    """Every addressing mode combination with every PAN ID layout the builder accepts."""
    addrs = {
        AddrMode.NONE: None,
        AddrMode.SHORT: Address.short(0x0001),
        AddrMode.EXTENDED: Address.ext(OTHER),
    }
    srcs = {
        AddrMode.NONE: None,
        AddrMode.SHORT: Address.short(0x0042),
        AddrMode.EXTENDED: Address.ext(METER),
    }
    seen: set[bytes] = set()
    for version in (FrameVersion.V2006, FrameVersion.V2015):
        for dmode, dst in addrs.items():
            for smode, src in srcs.items():
                if dst is None and src is None and version < FrameVersion.V2015:
                    continue  # a 2006 data frame needs an address
                for panidc in (False, True):
                    for dst_pan in (None, PAN):
                        for src_pan in (None, PAN2):
                            f = MacFrame(
                                FrameType.DATA,
                                0,
                                dst_pan,
                                dst,
                                src_pan,
                                src,
                                version,
                                pan_id_compression=panidc,
                                payload=b"addressing",
                            )
                            try:
                                raw = f.to_bytes()
                            except ValueError:
                                continue
                            if raw in seen:
                                continue
                            seen.add(raw)
                            yield (
                                f"data {version.name} dst {dmode.name} src {smode.name} "
                                f"panidc {int(panidc)} pans {dst_pan} {src_pan}",
                                f,
                            )


def _secured_frames() -> Iterator[tuple[str, MacFrame, int | None]]:
    for level in range(1, 8):
        for kim in range(4):
            index = None if kim == 0 else (5 if kim != 2 else 7)
            source = {
                0: b"",
                1: b"",
                2: bytes.fromhex("01020304"),
                3: bytes.fromhex("0102030405060708"),
            }[kim]
            aux = AuxSecurityHeader(level, 1000 * level + kim, index, source)
            f = MacFrame.data(
                src=Address.ext(METER),
                dst=Address.short(0x0001),
                dst_pan=PAN,
                seq=level * 4 + kim,
                payload=b"\x0fsecured payload",
                aux=aux,
                ack_request=True,
            )
            yield f"secured level {level} key id mode {kim}", f, METER
    aux15 = AuxSecurityHeader(6, 77, 5)
    yield (
        "secured 2015 header IE + encrypted payload IEs",
        MacFrame.data(
            src=Address.ext(METER),
            dst=Address.ext(OTHER),
            dst_pan=PAN,
            seq=200,
            version=FrameVersion.V2015,
            aux=aux15,
            header_ies=(VENDOR_HIE,),
            payload_ies=(VENDOR_PIE,),
            payload=b"after the IEs",
        ),
        METER,
    )
    yield (
        "secured 2015 header IE, HT2",
        MacFrame.data(
            src=Address.ext(METER),
            dst=Address.short(1),
            dst_pan=PAN,
            seq=201,
            version=FrameVersion.V2015,
            aux=AuxSecurityHeader(5, 78, 5),
            header_ies=(VENDOR_HIE,),
            payload=b"data",
        ),
        METER,
    )
    yield (
        "secured 2015 payload IEs only",
        MacFrame.data(
            src=Address.ext(METER),
            dst=Address.short(1),
            dst_pan=PAN,
            seq=202,
            version=FrameVersion.V2015,
            aux=AuxSecurityHeader(7, 79, 7),
            payload_ies=(VENDOR_PIE,),
        ),
        METER,
    )
    yield (
        "secured 2015 MPX IEs in the encrypted payload IEs",
        MacFrame.data(
            src=Address.ext(METER),
            dst=Address.short(1),
            dst_pan=PAN,
            seq=207,
            version=FrameVersion.V2015,
            aux=AuxSecurityHeader(5, 84, 5),
            payload_ies=(
                MPX_KMP.to_payload_ie(),
                MpxIE(MPX.FULL_FRAME, 4, EXPERIMENTAL_ETHERTYPE, data=b"upper").to_payload_ie(),
            ),
            payload=b"after PT",
        ),
        METER,
    )
    yield (
        "secured short source",
        MacFrame.data(
            src=Address.short(SHORT_METER),
            dst=Address.short(1),
            dst_pan=PAN,
            seq=203,
            aux=AuxSecurityHeader(5, 80, 5),
            payload=b"short source",
        ),
        METER,
    )
    yield (
        "secured 2006 command (data request)",
        MacFrame.data(
            src=Address.ext(METER),
            dst=Address.short(1),
            dst_pan=PAN,
            seq=204,
            aux=AuxSecurityHeader(5, 81, 5),
            payload=b"\x04",
            frame_type=FrameType.COMMAND,
            ack_request=True,
        ),
        METER,
    )
    yield (
        "secured 2015 command (data request)",
        MacFrame.data(
            src=Address.ext(METER),
            dst=Address.short(1),
            dst_pan=PAN,
            seq=206,
            aux=AuxSecurityHeader(5, 83, 5),
            payload=b"\x04",
            frame_type=FrameType.COMMAND,
            version=FrameVersion.V2015,
        ),
        METER,
    )
    yield (
        "secured 2006 beacon (MIC-64)",
        MacFrame.data(
            src=Address.ext(METER),
            dst=None,
            dst_pan=None,
            src_pan=PAN,
            seq=205,
            aux=AuxSecurityHeader(2, 82),
            payload=_beacon_payload(0xCFFF, b"beacon payload"),
            frame_type=FrameType.BEACON,
        ),
        METER,
    )


def _multipurpose_frames() -> Iterator[tuple[str, MacFrame]]:
    """Every addressing mode combination in the short frame control and in the long one
    with and without the PAN ID, then the long form's options."""
    dsts = {
        AddrMode.NONE: None,
        AddrMode.SHORT: Address.short(1),
        AddrMode.EXTENDED: Address.ext(OTHER),
    }
    srcs = {
        AddrMode.NONE: None,
        AddrMode.SHORT: Address.short(0x42),
        AddrMode.EXTENDED: Address.ext(METER),
    }
    seq = 100
    for dmode, dst in dsts.items():
        for smode, src in srcs.items():
            seq += 1
            what = f"dst {dmode.name} src {smode.name}"
            yield (
                f"multipurpose short FC {what}",
                MacFrame.multipurpose(src=src, dst=dst, pan=None, seq=seq, payload=b"mp short"),
            )
            for pan in (None, PAN):
                seq += 1
                yield (
                    f"multipurpose long FC {what} PAN {pan}",
                    MacFrame(
                        FrameType.MULTIPURPOSE,
                        seq,
                        pan,
                        dst,
                        pan if pan is not None and src is not None else None,
                        src,
                        FrameVersion.V2015,
                        payload=b"mp long",
                        long_fc=True,
                    ),
                )
    ext, short = Address.ext(METER), Address.short(1)
    yield (
        "multipurpose seq suppressed, AR, frame pending",
        MacFrame.multipurpose(
            src=ext,
            dst=short,
            pan=PAN,
            seq=None,
            ack_request=True,
            frame_pending=True,
            payload=b"x",
        ),
    )
    yield (
        "multipurpose header + payload IEs (MPX, unknown) + payload",
        MacFrame.multipurpose(
            src=ext,
            dst=short,
            pan=PAN,
            seq=131,
            header_ies=(VENDOR_HIE, TIME_CORRECTION, *UNKNOWN_HIES),
            payload_ies=(VENDOR_PIE, MPX_KMP.to_payload_ie(), *UNKNOWN_PIES),
            payload=b"after PT",
        ),
    )
    yield (
        "multipurpose header IEs only",
        MacFrame.multipurpose(src=short, dst=None, pan=None, seq=132, header_ies=(VENDOR_HIE,)),
    )
    yield (
        "multipurpose payload IEs only",
        MacFrame.multipurpose(
            src=None, dst=short, pan=PAN, seq=133, payload_ies=(MPX_KMP.to_payload_ie(),)
        ),
    )


def _mpx_frames() -> Iterator[tuple[str, MacFrame]]:
    """MPX IEs of every transfer type, one or more to a 2015 data frame."""
    ies = {
        "full frame, KMP": MPX_KMP,
        "full frame, EtherType": MpxIE(MPX.FULL_FRAME, 4, EXPERIMENTAL_ETHERTYPE, data=b"upper"),
        "full frame, no data": MpxIE(MPX.FULL_FRAME, 5, 0x0003),
        "full frame, no Multiplex ID": MpxIE(MPX.FULL_FRAME_NO_MULTIPLEX_ID, 9, data=b"upper"),
        # tshark reads transaction ID 1 here as the compressed Multiplex ID 1 = KMP
        "full frame, no Multiplex ID, ID bits 1": MpxIE(
            MPX.FULL_FRAME_NO_MULTIPLEX_ID, 1, data=KMP_ETSI + b"kmp"
        ),
        "first fragment, KMP": MpxIE(MPX.NON_LAST_FRAGMENT, 6, 1, 0, 300, KMP_ETSI + b"frag 0"),
        "first fragment, EtherType": MpxIE(
            MPX.NON_LAST_FRAGMENT, 7, EXPERIMENTAL_ETHERTYPE, 0, 0xFFFF, b"frag 0"
        ),
        "middle fragment": MpxIE(MPX.NON_LAST_FRAGMENT, 6, fragment_number=1, data=b"frag 1"),
        "middle fragment, no data": MpxIE(MPX.NON_LAST_FRAGMENT, 6, fragment_number=2),
        "last fragment": MpxIE(MPX.LAST_FRAGMENT, 6, fragment_number=255, data=b"frag 255"),
        "last fragment numbered 0": MpxIE(MPX.LAST_FRAGMENT, 8, 1, 0, 4, KMP_ETSI + b"one"),
        "abort with total size": MpxIE(MPX.ABORT, 6, total_size=300),
        "abort": MpxIE(MPX.ABORT, 31),
    }
    ext, short = Address.ext(METER), Address.short(1)
    for i, (name, ie) in enumerate(ies.items()):
        yield (
            f"data 2015 MPX {name}",
            MacFrame.data(
                src=ext,
                dst=short,
                dst_pan=PAN,
                seq=140 + i,
                version=FrameVersion.V2015,
                payload_ies=(ie.to_payload_ie(),),
            ),
        )
    yield (
        "data 2015 three MPX IEs among other payload IEs + payload",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=160,
            version=FrameVersion.V2015,
            payload_ies=(
                ies["first fragment, KMP"].to_payload_ie(),
                VENDOR_PIE,
                ies["middle fragment"].to_payload_ie(),
                ies["abort"].to_payload_ie(),
            ),
            payload=b"after PT",
        ),
    )


def _more_frames() -> Iterator[tuple[str, MacFrame]]:
    """2003 frames, sequence number suppression and IEs in other frame types, unknown IEs."""
    ext, short = Address.ext(METER), Address.short(1)
    v15 = FrameVersion.V2015
    yield (
        "data 2003 intra-PAN",
        MacFrame.data(
            src=ext, dst=short, dst_pan=PAN, seq=170, payload=b"2003", version=FrameVersion.V2003
        ),
    )
    yield "imm-ack 2003", MacFrame.ack(171, version=FrameVersion.V2003)
    yield (
        "data 2015 unknown header and payload IEs",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=172,
            version=v15,
            header_ies=UNKNOWN_HIES,
            payload_ies=UNKNOWN_PIES,
            payload=b"after PT",
        ),
    )
    yield (
        "data 2015 IE present, no IEs, payload (HT2)",
        MacFrame(
            FrameType.DATA,
            173,
            PAN,
            short,
            PAN,
            ext,
            v15,
            pan_id_compression=True,
            ie_present=True,
            payload=b"after HT2",
        ),
    )
    yield (
        "enhanced beacon 2015 seq suppressed",
        MacFrame.data(
            src=ext,
            dst=None,
            dst_pan=None,
            src_pan=PAN,
            seq=None,
            version=v15,
            header_ies=(VENDOR_HIE,),
            payload_ies=(MLME_PIE, VENDOR_PIE),
            frame_type=FrameType.BEACON,
        ),
    )
    yield (
        "enh-ack 2015 seq suppressed",
        MacFrame(
            FrameType.ACK,
            None,
            PAN,
            ext,
            None,
            None,
            v15,
            ie_present=True,
            header_ies=(TIME_CORRECTION,),
        ),
    )
    yield (
        "command 2015 with header and payload IEs",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=174,
            version=v15,
            header_ies=(VENDOR_HIE,),
            payload_ies=(VENDOR_PIE,),
            payload=b"\x04",
            frame_type=FrameType.COMMAND,
        ),
    )


def _raw_frames() -> Iterator[tuple[str, bytes, str]]:
    """Octets our builder never sends but our parser takes: (name, MPDU without FCS, limit)."""
    ht1, ht2, pt = bytes.fromhex("003f"), bytes.fromhex("803f"), bytes.fromhex("00f8")
    mhr = MacFrame.data(
        src=Address.ext(METER),
        dst=Address.short(1),
        dst_pan=PAN,
        seq=180,
        version=FrameVersion.V2015,
        header_ies=(VENDOR_HIE,),
    ).to_bytes()
    yield "HT2 before nothing", mhr + ht2, ""
    yield "HT1 + PT before a payload", mhr + ht1 + pt + b"payload", ""
    yield "payload IEs + PT before nothing", mhr + ht1 + UNKNOWN_PIES[0].to_bytes() + pt, ""
    yield "HT1 before nothing", mhr + ht1, "2 octets after HT1"
    yield "HT1 + PT before nothing", mhr + ht1 + pt, "2 octets after HT1"
    one_empty_pie = MacFrame.data(
        src=Address.ext(METER),
        dst=None,
        dst_pan=None,
        src_pan=PAN,
        seq=183,
        version=FrameVersion.V2015,
        payload_ies=(MLME_PIE,),
        frame_type=FrameType.BEACON,
    )
    yield "enhanced beacon, one empty payload IE", one_empty_pie.to_bytes(), "2 octets after HT1"
    empty = MacFrame(
        FrameType.DATA,
        181,
        PAN,
        Address.short(1),
        None,
        None,
        FrameVersion.V2015,
        ie_present=True,
    )
    yield "data 2015 IE present, no IEs, nothing after", empty.to_bytes(), "ie present, no ies"
    bit7 = MacFrame.data(
        src=Address.ext(METER), dst=Address.short(1), dst_pan=PAN, seq=182, payload=b"bit 7"
    ).to_bytes()
    yield "reserved frame control bit 7 set", bytes([bit7[0] | 0x80]) + bit7[1:], ""


def _secured_multipurpose_frames() -> Iterator[tuple[str, MacFrame]]:
    """tshark 4.0 reads these with the 2003 auxiliary security header (see the module
    docstring)."""
    for kim, aux in ((0, AuxSecurityHeader(5, 90)), (1, AuxSecurityHeader(6, 91, 5))):
        yield (
            f"secured multipurpose key id mode {kim}",
            MacFrame.multipurpose(
                src=Address.ext(METER),
                dst=Address.short(1),
                pan=PAN,
                seq=210 + kim,
                aux=aux,
                payload=b"mp secured",
            ),
        )


def _plain_frames() -> Iterator[tuple[str, MacFrame]]:
    yield from _address_frames()
    yield from _multipurpose_frames()
    yield from _mpx_frames()
    yield from _more_frames()
    ext, short = Address.ext(METER), Address.short(0x0001)
    yield (
        "data 2015 seq suppressed",
        MacFrame.data(
            src=ext, dst=short, dst_pan=PAN, seq=None, payload=b"no seq", version=FrameVersion.V2015
        ),
    )
    yield (
        "data 2015 header IEs (HT2)",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=10,
            version=FrameVersion.V2015,
            header_ies=(VENDOR_HIE, TIME_CORRECTION),
            payload=b"after HT2",
        ),
    )
    yield (
        "data 2015 header IEs, no payload",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=11,
            version=FrameVersion.V2015,
            header_ies=(VENDOR_HIE,),
        ),
    )
    yield (
        "data 2015 payload IEs (HT1) + payload (PT)",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=12,
            version=FrameVersion.V2015,
            header_ies=(VENDOR_HIE,),
            payload_ies=(VENDOR_PIE, MLME_PIE),
            payload=b"after PT",
        ),
    )
    yield (
        "data 2015 payload IEs only",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=13,
            version=FrameVersion.V2015,
            payload_ies=(VENDOR_PIE,),
        ),
    )
    yield (
        "data pending + ack request",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=14,
            payload=b"flags",
            frame_pending=True,
            ack_request=True,
        ),
    )
    yield (
        "beacon 2006",
        MacFrame.data(
            src=Address.short(0x0000),
            dst=None,
            dst_pan=None,
            src_pan=PAN,
            seq=15,
            payload=_beacon_payload(0xCFFF, b"beacon payload"),
            frame_type=FrameType.BEACON,
        ),
    )
    yield (
        "beacon 2006 no payload, extended source",
        MacFrame.data(
            src=ext,
            dst=None,
            dst_pan=None,
            src_pan=PAN,
            seq=16,
            payload=_beacon_payload(0x4F12),
            frame_type=FrameType.BEACON,
        ),
    )
    yield (
        "enhanced beacon 2015 (IEs)",
        MacFrame.data(
            src=ext,
            dst=None,
            dst_pan=None,
            src_pan=PAN,
            seq=17,
            version=FrameVersion.V2015,
            header_ies=(VENDOR_HIE,),
            payload_ies=(VENDOR_PIE,),
            frame_type=FrameType.BEACON,
        ),
    )
    yield "imm-ack 2006", MacFrame.ack(18)
    yield "imm-ack 2006 pending", MacFrame.ack(19, frame_pending=True)
    yield (
        "enh-ack 2015 time correction",
        MacFrame(
            FrameType.ACK,
            20,
            PAN,
            ext,
            None,
            None,
            FrameVersion.V2015,
            ie_present=True,
            header_ies=(TIME_CORRECTION,),
        ),
    )
    yield (
        "command data request",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=21,
            payload=b"\x04",
            frame_type=FrameType.COMMAND,
            ack_request=True,
        ),
    )
    yield (
        "command association request",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            src_pan=0xFFFF,
            seq=22,
            payload=b"\x01\x80",
            frame_type=FrameType.COMMAND,
            ack_request=True,
        ),
    )
    yield (
        "command beacon request",
        MacFrame.data(
            src=None,
            dst=Address.short(0xFFFF),
            dst_pan=0xFFFF,
            seq=23,
            payload=b"\x07",
            frame_type=FrameType.COMMAND,
        ),
    )
    yield (
        "command 2015 data request",
        MacFrame.data(
            src=ext,
            dst=short,
            dst_pan=PAN,
            seq=24,
            payload=b"\x04",
            frame_type=FrameType.COMMAND,
            version=FrameVersion.V2015,
        ),
    )


def generated_cases() -> list[Case]:
    cases: list[Case] = []

    def add(
        name: str,
        plain: MacFrame,
        raw: bytes,
        src_ext: int | None = None,
        mic_ok: bool = True,
        fcs_ok: bool = True,
        limit: str = "",
    ) -> None:
        fcs_len = 4 if len(cases) % 2 == 0 else 2
        mpdu = raw + compute_fcs(raw, fcs_len)
        if not fcs_ok:
            mpdu = mpdu[:-1] + bytes([mpdu[-1] ^ 0x01])
        cases.append(Case(f"{name}, FCS{fcs_len}", plain, fcs_len, mpdu, src_ext, mic_ok, limit))

    for name, f in _plain_frames():
        add(name, f, f.to_bytes())
    for name, raw, limit in _raw_frames():
        add(name, parse_mpdu_unchecked(raw), raw, limit=limit)
    for name, f, src_ext in _secured_frames():
        assert src_ext is not None
        add(name, f, secure(f, KEY, src_ext=src_ext), src_ext)
    for name, f in _secured_multipurpose_frames():
        add(name, f, secure(f, KEY, src_ext=METER), METER, limit="secured multipurpose")
    bad = next(f for name, f, _ in _secured_frames() if "level 5 key id mode 1" in name)
    raw = secure(replace(bad, seq=250), KEY, src_ext=METER)
    add("bad MIC", bad, raw[:-1] + bytes([raw[-1] ^ 0x80]), METER, mic_ok=False)
    add("bad FCS", bad, secure(replace(bad, seq=251), KEY, src_ext=METER), METER, fcs_ok=False)
    return cases


def write_cases(path: Path, cases: list[Case]) -> list[tuple[float, float | None, int | None]]:
    meta = []
    with path.open("wb") as fh:
        w = PcapWriter(fh)
        for i, c in enumerate(cases):
            ts = T0 + i * 0.25
            rssi = None if i % 5 == 4 else -40.0 - i * 0.5
            channel = None if i % 7 == 6 else i % 34
            w.write(ts, c.mpdu, fcs_len=c.fcs_len, rssi_dbm=rssi, channel=channel)
            meta.append((ts, rssi, channel))
    return meta


def _plaintext(c: Case) -> MacFrame | None:
    mpdu = c.mpdu[: -c.fcs_len]
    try:
        frame = parse_mpdu(c.mpdu, c.fcs_len)
    except ValueError:
        return None
    if frame.aux is None or c.src_ext is None:
        return None
    try:
        return unsecure(mpdu, frame, KEY, src_ext=c.src_ext)
    except SecurityError:
        return None


def test_generated_frames_match_tshark(tmp_path: Path) -> None:
    cases = generated_cases()
    pcap = tmp_path / "generated.pcap"
    meta = write_cases(pcap, cases)
    packets = run_tshark(
        pcap, keys=[(KEY_HEX, i) for i in KEY_INDEXES], addresses=[(SHORT_METER, PAN, METER)]
    )
    assert len(packets) == len(cases)
    n_secured = n_mp_secured = 0
    for c, (ts, rssi, channel), theirs in zip(cases, meta, packets, strict=True):
        plain = _plaintext(c)
        ours = expected(
            f"{ts:.9f}",
            c.mpdu,
            c.fcs_len,
            rssi=rssi,
            channel=channel,
            plain=plain,
            addresses={SHORT_METER: METER},
        )
        if c.name.startswith("bad FCS"):
            assert theirs["wpan.fcs_ok"] == ["0"] and ours["wpan.fcs_ok"] == ["0"], c.name
            continue
        if c.limit == "ie present, no ies":
            # tshark reads a header IE descriptor past the end: malformed, no FCS verdict
            fcs = frozenset({"wpan.fcs", "wpan.fcs32", "wpan.fcs_ok"})
            compare(ours, theirs, c.name, ignore=fcs, malformed=True)
            assert fcs.isdisjoint(theirs), f"{c.name}: {theirs}"
            continue
        assert theirs.get("wpan.fcs_ok") == ["1"], f"{c.name}: {theirs}"
        frame = parse_mpdu(c.mpdu, c.fcs_len)
        # ``ours`` comes from parsing the octets: tie them to the frame that was meant
        if c.expect_mic_ok:
            _assert_meant(frame if frame.aux is None else plain, c)
        if c.limit == "2 octets after HT1":
            # tshark shows the (0 or 2) octets after HT1 as the MAC payload, no payload IEs
            after = c.mpdu[: -c.fcs_len].rsplit(bytes.fromhex("003f"), 1)[1]
            assert len(after) <= 2 and not frame.payload, c.name
            pies = frozenset({"data.data", "wpan.payload_ie.id", "wpan.payload_ie.length"})
            compare(ours, theirs, c.name, ignore=pies, malformed=True)
            assert theirs.get("data.data", []) == ([after.hex()] if after else []), theirs
            assert "wpan.payload_ie.id" not in theirs, f"{c.name}: {theirs}"
            assert any("no Payload IE present" in m for m in theirs["_ws.expert.message"])
            continue
        if c.limit == "secured multipurpose":
            _check_secured_multipurpose(c, ours, theirs, plain)
            n_mp_secured += 1
            continue
        if frame.aux is None:
            compare(ours, theirs, c.name)
            continue
        n_secured += 1
        decrypted = "wpan.key_number" in theirs
        if not c.expect_mic_ok:
            assert plain is None and not decrypted, f"{c.name}: {theirs}"
            continue
        assert plain is not None, c.name
        assert decrypted, f"{c.name}: tshark did not decrypt: {theirs}"
        compare(ours, theirs, c.name)
        assert plain.payload == c.plain.payload and plain.payload_ies == c.plain.payload_ies
    assert n_secured >= 7 * 4 + 7
    assert n_mp_secured == 2
    _check_coverage(cases)


def _assert_meant(got: MacFrame | None, c: Case) -> None:
    """``got`` (parsed, or decrypted) is the frame ``c`` was built from; a compressed source
    PAN given as None reads as the destination PAN (see ``ihd.smwap.mac``)."""
    meant = c.plain
    if got is not None and meant.src_pan is None and got.src_pan == got.dst_pan:
        meant = replace(meant, src_pan=got.src_pan)
    assert got == meant, f"{c.name}: parsed {got}, built from {c.plain}"


# What tshark 4.0 shows of a secured multipurpose frame: everything before the auxiliary
# security header (which it reads in the 2003 layout, see the module docstring).
_MP_HEADER_FIELDS = frozenset(
    {
        "frame.time_epoch",
        "wpan-tap.fcs_type",
        "wpan-tap.rss",
        "wpan-tap.ch_num",
        "wpan-tap.ch_page",
        "wpan.frame_type",
        "wpan.long_frame_control",
        "wpan.dst_addr_mode",
        "wpan.src_addr_mode",
        "wpan.pan_id_present",
        "wpan.security",
        "wpan.seqno_suppression",
        "wpan.pending",
        "wpan.mpf_version",
        "wpan.ack_request",
        "wpan.ie_present",
        "wpan.seq_no",
        "wpan.dst_pan",
        "wpan.dst16",
        "wpan.dst64",
        "wpan.src16",
        "wpan.src64",
        "wpan.fcs",
        "wpan.fcs32",
        "wpan.fcs_ok",
    }
)


def _check_secured_multipurpose(
    c: Case, ours: dict[str, list[str]], theirs: dict[str, list[str]], plain: MacFrame | None
) -> None:
    want = {k: v for k, v in ours.items() if k in _MP_HEADER_FIELDS}
    got = {k: v for k, v in theirs.items() if k in _MP_HEADER_FIELDS}
    assert got == want, f"{c.name}: (ours, tshark's) {want} {got}"
    assert "wpan.sec_frame_counter" in theirs, f"{c.name}: tshark now reads 2015 security?"
    assert "wpan.aux_sec.sec_level" not in theirs and "wpan.key_number" not in theirs
    assert "_ws.malformed" not in theirs, f"{c.name}: {theirs}"
    # our own stack decrypts it all the same
    assert plain is not None and plain.payload == c.plain.payload, c.name


def _check_coverage(cases: list[Case]) -> None:
    """The capture still holds every multipurpose form and MPX transfer type."""
    mp: set[tuple[bool, int, int, bool]] = set()
    mpx: set[tuple[int, str]] = set()
    for c in cases:
        if c.name.startswith("bad FCS"):
            continue
        f = parse_mpdu(c.mpdu, c.fcs_len)
        if f.frame_type == FrameType.MULTIPURPOSE:
            modes = (f.dst.mode if f.dst else 0, f.src.mode if f.src else 0)
            mp.add((f.long_fc, *modes, f.dst_pan is not None))
        for ie in c.plain.payload_ies:
            if ie.group_id == MpxIE.GROUP_ID:
                m = MpxIE.from_payload_ie(ie)
                frag = m.fragment_number
                mpx.add((m.transfer_type, "first" if frag == 0 else str(m.total_size is None)))
    modes = (AddrMode.NONE, AddrMode.SHORT, AddrMode.EXTENDED)
    short = {(False, d, s, False) for d in modes for s in modes}
    long = {(True, d, s, p) for d in modes for s in modes for p in (False, True)}
    assert short | long <= mp
    assert {
        (MPX.FULL_FRAME, "True"),
        (MPX.FULL_FRAME_NO_MULTIPLEX_ID, "True"),
        (MPX.NON_LAST_FRAGMENT, "first"),
        (MPX.NON_LAST_FRAGMENT, "True"),
        (MPX.LAST_FRAGMENT, "True"),
        (MPX.LAST_FRAGMENT, "first"),
        (MPX.ABORT, "False"),
        (MPX.ABORT, "True"),
    } <= mpx


def test_generated_capture_reads_back(tmp_path: Path) -> None:
    """Our reader gives back what went in (and the FCS lengths mixed in one file)."""
    cases = generated_cases()
    pcap = tmp_path / "generated.pcap"
    meta = write_cases(pcap, cases)
    with pcap.open("rb") as fh:
        records = list(read_pcap(fh))
    assert [(r.mpdu, r.fcs_len) for r in records] == [(c.mpdu, c.fcs_len) for c in cases]
    assert {r.fcs_len for r in records} == {2, 4}
    for r, (ts, rssi, channel) in zip(records, meta, strict=True):
        assert abs(r.timestamp - ts) < 1e-6
        assert r.channel == channel
        assert (r.rssi_dbm is None) == (rssi is None)


# --- (b) the simulated air -----------------------------------------------------------------


def test_simulated_air_matches_tshark(tmp_path: Path) -> None:
    import random

    from ihd.clock import ManualClock
    from ihd.radio.contract import RxFrame, RxInfo
    from ihd.radio.sim import SimRadio
    from ihd.sim.air import AirRx
    from ihd.sim.world import PAN_ID, demo_world
    from ihd.smwap.fcs import compute_fcs
    from ihd.smwap.installcode import link_key, parse_install_code
    from ihd.smwap.link import DisplayPairing, Send
    from ihd.smwap.phy import parse_ppdu
    from ihd.tools import sniff

    start = T0
    world = demo_world(start=start, corruption=0.03, seed=3, joined=[])  # unpaired meters
    clock = ManualClock(start)
    radio = SimRadio(world, clock=clock, pump=False)
    radio.set_addresses(eui64=world.display_eui64, pan_id=PAN_ID, short=None)
    heard: list[RxFrame] = []

    def on_air(ppdu: bytes, rx: AirRx) -> None:  # a passive sniffer beside the display
        try:
            p = parse_ppdu(ppdu)
        except ValueError:
            return
        heard.append(
            RxFrame(
                p.psdu, RxInfo(rx.end, rx.channel, p.phr.fcs_len, p.phr.whitened, None, rx.rssi_dbm)
            )
        )

    world.air.attach("sniffer", on_receive=on_air, channel=0)
    displayed: list[RxFrame] = []
    display_eui = int(world.display_eui64, 16)
    table = world.key_table()
    keys = [
        (m.network_key.value.hex(), m.key_index) for m in world.meters if m.network_key is not None
    ]
    rng = random.Random(5)
    confirm_keys: dict[int, Key] = {}

    # Pair with the electricity and the gas meter on the air, as the display does.
    t = start
    for meter in world.meters[:2]:
        eui = int(meter.device.eui64, 16)
        session = DisplayPairing(display_eui, meter.install_code, rng.randbytes, meter_eui=eui)
        events = session.start(t)
        while session.next_tick_at is not None:
            for ev in events:
                if isinstance(ev, Send):
                    radio.transmit(ev.mpdu + compute_fcs(ev.mpdu, 4), fcs_len=4)
            t += 0.005
            clock.set(t)
            radio.run_until(t)
            events = session.tick(t)
            while (rx := radio.receive(0)) is not None:
                displayed.append(rx)
                if check_fcs(rx.psdu, 4):
                    raw = rx.psdu[:-4]
                    events += session.receive(raw, parse_mpdu(rx.psdu, 4), rx.info.rssi_dbm, t)
        assert session.paired is not None, session.failure
        link = Key(link_key(parse_install_code(meter.install_code)))
        table.add_implicit(link, src_ext=eui)
        keys.append((link.value.hex(), 0))
        assert meter.network_key is not None
        confirm_keys[eui] = meter.network_key  # the display's JOIN_CONFIRM to this meter

    minutes = 40  # the gas and water meters push every 30 min
    for step in range(1, minutes * 6 + 1):
        t = start + step * 10
        clock.set(t)
        radio.run_until(t)
        while (rx := radio.receive(0)) is not None:
            displayed.append(rx)

    # what `ihd sniff --pcap` writes, through its own code path
    class Replay:
        name = "replay"

        def __init__(self, frames: list[RxFrame]) -> None:
            self.frames = list(frames)

        def open(self) -> None: ...

        def close(self) -> None: ...

        def receive(self, timeout: float) -> RxFrame | None:
            return self.frames.pop(0) if self.frames else None

    sniffed = tmp_path / "sniff.pcap"
    lines: list[str] = []
    with sniffed.open("wb") as fh:
        stop_after = len(displayed)
        import threading

        stop = threading.Event()

        def out(line: str) -> None:
            lines.append(line)
            if len(lines) >= stop_after:
                stop.set()

        n = sniff.sniff(
            Replay(displayed),
            out=out,
            pcap=PcapWriter(fh),
            pcap_file=fh,
            keys=sniff.Keys(table),
            stop=stop,
            poll_s=0,
        )
    assert n == len(displayed)

    air = tmp_path / "air.pcap"
    with air.open("wb") as fh:
        w = PcapWriter(fh)
        for rx in heard:
            w.write(
                rx.info.timestamp,
                rx.psdu,
                fcs_len=rx.info.fcs_len,
                rssi_dbm=rx.info.rssi_dbm,
                channel=rx.info.channel,
            )

    kinds: dict[str, int] = {}
    for path in (air, sniffed):
        with path.open("rb") as fh:
            records = list(read_pcap(fh))
        packets = run_tshark(path, keys=keys)
        assert len(packets) == len(records) > 0
        for i, (r, theirs) in enumerate(zip(records, packets, strict=True)):
            assert r.fcs_len is not None
            ok = check_fcs(r.mpdu, r.fcs_len)
            what = f"{path.name} frame {i + 1}"
            plain = None
            if ok:
                frame = parse_mpdu(r.mpdu, r.fcs_len)
                kind = f"{frame.frame_type.name.lower()}" + (
                    f" level {frame.aux.level}" if frame.aux else ""
                )
                kinds[kind] = kinds.get(kind, 0) + 1
                if frame.aux is not None and frame.src is not None:
                    if frame.src.value == display_eui and frame.dst is not None:
                        key = confirm_keys[frame.dst.value]
                    else:
                        key = table.lookup(frame.aux, frame.src.value)
                    assert key is not None, what
                    plain = unsecure(r.mpdu[: -r.fcs_len], frame, key, src_ext=frame.src.value)
                    assert "wpan.key_number" in theirs, f"{what}: tshark did not decrypt"
            else:
                kinds["bad FCS"] = kinds.get("bad FCS", 0) + 1
            ours = expected(
                f"{r.ts_sec}.{r.ts_frac:06d}000",
                r.mpdu,
                r.fcs_len,
                rssi=r.rssi_dbm,
                channel=r.channel,
                plain=plain,
            )
            if not ok:
                assert theirs.get("wpan.fcs_ok") == ["0"], (what, theirs)
                continue
            compare(ours, theirs, what)
    # Pairing (requests in clear, key transport at level 6, confirm at level 5), pushes
    # from both meters at level 5, and the ACKs of both sides.
    assert kinds.get("data", 0) >= 2 and kinds.get("data level 6", 0) >= 4, kinds
    assert kinds.get("data level 5", 0) > 200 and kinds.get("ack", 0) > 200, kinds
    assert any(line for line in lines), "sniff printed nothing"
    print("simulated air frames checked:", kinds)


def test_tshark_reads_our_tap_tlvs(tmp_path: Path) -> None:
    """The TAP header fields as tshark sees them (length, FCS type, RSS, channel, page)."""
    pcap = tmp_path / "tap.pcap"
    buf = io.BytesIO()
    w = PcapWriter(buf)
    body = MacFrame.ack(1).to_bytes()
    w.write(T0, body + compute_fcs(body, 2), fcs_len=2, rssi_dbm=-71.25, channel=33)
    w.write(T0 + 1, body + compute_fcs(body, 4), fcs_len=4)
    pcap.write_bytes(buf.getvalue())
    packets = run_tshark(pcap, keys=[])
    assert packets[0]["wpan-tap.fcs_type"] == ["1"]
    assert packets[0]["wpan-tap.rss"] == ["-71.25"]
    assert packets[0]["wpan-tap.ch_num"] == ["33"] and packets[0]["wpan-tap.ch_page"] == ["9"]
    assert packets[1]["wpan-tap.fcs_type"] == ["2"] and "wpan-tap.rss" not in packets[1]
    assert all(p["wpan.fcs_ok"] == ["1"] for p in packets)
