"""Cross-check our 802.15.4 framing and security against Wireshark's dissector (tshark).

Two captures, each written with ``ihd.smwap.pcap`` (link type 283, TAP) and read back both by
tshark and by our own stack; every frame's fields must agree:

(a) generated frames covering every frame type and option the builder has today: beacon,
    data, Imm-Ack, Enh-Ack, MAC command; 2006 and 2015 formats; every addressing mode
    combination with and without PAN ID compression; sequence number suppression; header
    IEs (with HT1/HT2), payload IEs (with the payload termination IE); secured frames at
    levels 1-7 with key identifier modes 0-3 (the vector key), a short-source secured frame
    (tshark gets the EUI-64 from its static address table), secured 2015 frames with header
    IEs and encrypted payload IEs; 2- and 4-octet FCS mixed in one capture, with RSSI and
    channel TLVs. Plus one frame with a bad FCS and one with a bad MIC, where both must fail.
(b) the simulated air: a few simulated minutes of the demo household, recorded by a passive
    node on the air (everything sent on the channel, acks included) and by ``ihd sniff``'s
    capture path (what the display's radio hands up), with some bit errors on the air so
    that bad FCS verdicts are compared too. Secured frames decrypt with the meters' keys.

tshark runs with ``--disable-protocol 6lowpan`` and the heuristic dissectors that take
802.15.4 payloads (ZigBee, LWM, Thread beacons) off, so every MAC payload lands in
``data.data``; after decryption that is the plaintext. A frame tshark decrypted carries
``wpan.key_number``; a MIC failure shows only an expert message.
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
    PayloadIE,
    compute_fcs,
    parse_mpdu,
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
# Fields we compute; the rest of FIELDS are read for the failure messages only.
_COMPARED = tuple(
    f for f in FIELDS if f not in ("_ws.expert.message", "_ws.malformed", "wpan.key_number")
)


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
    if f.src is None or f.src_pan is None:
        return False
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
    fc = f.frame_control
    out.update(
        {
            "wpan.frame_type": [_hx(f.frame_type, 4)],
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
    # tshark hands a vendor-specific payload IE's content (after the OUI) to the data
    # dissector too, before the MAC payload
    data = [
        ie.content[3:].hex()
        for ie in body.payload_ies
        if ie.group_id == 0x2 and len(ie.content) > 3
    ]
    if payload:
        data.append(payload.hex())
    if data:
        out["data.data"] = data
    return out


def _float(v: float) -> str:
    # tshark prints the float32 TLV like printf's %g (6 significant digits)
    f32 = struct.unpack("<f", struct.pack("<f", v))[0]
    return f"{f32:g}"


def compare(ours: dict[str, list[str]], theirs: dict[str, list[str]], what: str) -> None:
    """Every compared field equal; terminator IEs (which we do not return) left out."""
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
    got = {k: v for k, v in t.items() if k in _COMPARED}
    want = {k: v for k, v in ours.items() if k in _COMPARED}
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


def _beacon_payload(sf: int, payload: bytes = b"") -> bytes:
    return sf.to_bytes(2, "little") + b"\x00\x00" + payload  # no GTS, no pending addresses


VENDOR_HIE = HeaderIE(0x00, bytes.fromhex("bbccdd") + b"vendor")  # vendor specific (OUI)
TIME_CORRECTION = HeaderIE(0x1E, (0x0123).to_bytes(2, "little"))  # time correction IE
VENDOR_PIE = PayloadIE(0x2, bytes.fromhex("bbccdd") + b"payload IE")
MLME_PIE = PayloadIE(0x1, b"")  # empty MLME IE


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


def _plain_frames() -> Iterator[tuple[str, MacFrame]]:
    yield from _address_frames()
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
    ) -> None:
        fcs_len = 4 if len(cases) % 2 == 0 else 2
        mpdu = raw + compute_fcs(raw, fcs_len)
        if not fcs_ok:
            mpdu = mpdu[:-1] + bytes([mpdu[-1] ^ 0x01])
        cases.append(Case(f"{name}, FCS{fcs_len}", plain, fcs_len, mpdu, src_ext, mic_ok))

    for name, f in _plain_frames():
        add(name, f, f.to_bytes())
    for name, f, src_ext in _secured_frames():
        assert src_ext is not None
        add(name, f, secure(f, KEY, src_ext=src_ext), src_ext)
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
    n_secured = 0
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
        assert theirs.get("wpan.fcs_ok") == ["1"], f"{c.name}: {theirs}"
        frame = parse_mpdu(c.mpdu, c.fcs_len)
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
    assert n_secured >= 7 * 4 + 6


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
