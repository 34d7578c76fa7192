"""The project-defined pairing handshake: DisplayPairing against MeterLink over real frames.

Every frame crosses a simulated air: built by one side, given an FCS, checked and parsed with
``parse_mpdu`` by the other, secured and verified by the real CCM* in ``ihd.smwap.security``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ihd.smwap.fcs import compute_fcs
from ihd.smwap.installcode import InstallCodeError, crc16_x25
from ihd.smwap.link import (
    _TRANSITIONS,
    DISPATCH,
    FAILURE_MESSAGES,
    REJECT_MESSAGES,
    DisplayPairing,
    Event,
    Failed,
    JoinAccept,
    JoinConfirm,
    JoinReject,
    JoinRequest,
    KeyTransport,
    LinkMessageError,
    MessageType,
    MeterLink,
    MeterUtility,
    Paired,
    PairedMeter,
    PairingFailure,
    PairingState,
    Progress,
    RejectReason,
    Send,
    decode_message,
)
from ihd.smwap.mac import (
    BROADCAST,
    Address,
    AuxSecurityHeader,
    MacFrame,
    parse_mpdu,
    parse_mpdu_unchecked,
)
from ihd.smwap.security import Key, secure

CODE = "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"  # the shared vector
GAS_CODE = "0011 2233 4455 6677 8899 AABB CCDD EEFF"  # a 16-octet code without its CRC
WRONG = "83FE D340 7A93 9723 A5C6 39B2 6916 D506"  # typo-free, but not the meter's code

DISPLAY = 0xACDE480000000001
ELEC = 0x0011223344556677
GAS = 0x0011223344556688
PAN = 0x1D1D
FCS = 4

NWK = Key(bytes.fromhex("00112233445566778899aabbccddeeff"))
EK = Key(bytes(range(16)))
AK = Key(bytes(range(0xD0, 0xE0)))
TITLE = b"ELM\x00\x00\xbc\x61\x4e"


def counting_rng(start: int) -> Callable[[int], bytes]:
    state = [start]

    def rng(n: int) -> bytes:
        out = bytes((state[0] + i) & 0xFF for i in range(n))
        state[0] += n
        return out

    return rng


def fixed_rng(*chunks: bytes) -> Callable[[int], bytes]:
    it: Iterator[bytes] = iter(chunks)

    def rng(n: int) -> bytes:
        out = next(it)
        assert len(out) == n
        return out

    return rng


def make_meter(eui: int = ELEC, code: str = CODE, **kw: object) -> MeterLink:
    args: dict[str, object] = dict(
        network_key=NWK,
        network_key_index=1,
        pan_id=PAN,
        utility=MeterUtility.ELECTRICITY,
        dlms_system_title=TITLE,
        dlms_encryption_key=EK,
        dlms_authentication_key=AK,
    )
    args.update(kw)
    rng = args.pop("rng", counting_rng(0x40))
    return MeterLink(eui, code, rng, **args)  # type: ignore[arg-type]


def over_air(mpdu: bytes) -> tuple[bytes, MacFrame]:
    """Add the FCS, then check and parse it as a receiver would."""
    psdu = mpdu + compute_fcs(mpdu, FCS)
    frame = parse_mpdu(psdu, FCS)
    return psdu[:-FCS], frame


def sends(events: list[Event]) -> list[bytes]:
    return [e.mpdu for e in events if isinstance(e, Send)]


@dataclass
class Air:
    """Delivers frames between one display and some meters, with a drop rule."""

    display: DisplayPairing
    meters: list[MeterLink]
    drop: Callable[[str, bytes], bool] = lambda who, mpdu: False
    events: list[Event] = field(default_factory=list)
    log: list[tuple[str, bytes]] = field(default_factory=list)

    def to_meters(self, mpdus: list[bytes], now: float) -> None:
        for m in mpdus:
            self.log.append(("display", m))
            if self.drop("display", m):
                continue
            raw, frame = over_air(m)
            for meter in self.meters:
                for reply in meter.receive(raw, frame, now):
                    self.log.append((f"{meter.eui64:016X}", reply))
                    if not self.drop(f"{meter.eui64:016X}", reply):
                        self.to_display(reply, now)

    def to_display(self, mpdu: bytes, now: float) -> None:
        raw, frame = over_air(mpdu)
        evs = self.display.receive(raw, frame, -61.5, now)
        self.events += evs
        self.to_meters(sends(evs), now)

    def start(self, now: float = 0.0) -> None:
        evs = self.display.start(now)
        self.events += evs
        self.to_meters(sends(evs), now)

    def run_until(self, end: float, step: float = 0.25, start: float = 0.0) -> None:
        t = start
        while t <= end and self.display.state in (
            PairingState.REQUESTING,
            PairingState.CONFIRMING,
        ):
            evs = self.display.tick(t)
            self.events += evs
            self.to_meters(sends(evs), t)
            t += step

    def outcome(self) -> Event:
        final = [e for e in self.events if isinstance(e, Paired | Failed)]
        assert len(final) == 1, final
        return final[0]


def pair(display: DisplayPairing, *meters: MeterLink, **kw: object) -> Air:
    air = Air(display, list(meters), **kw)  # type: ignore[arg-type]
    air.start(0.0)
    air.run_until(20.0)
    return air


def meter_data_frame(eui: int = ELEC, seq: int = 0) -> bytes:
    """A frame the meter sends anyway (e.g. a secured push to another display)."""
    frame = MacFrame.data(
        src=Address.ext(eui),
        dst=Address.short(0x0001),
        dst_pan=PAN,
        seq=seq,
        aux=AuxSecurityHeader(5, 1000 + seq, key_index=1),
        payload=b"push",
    )
    return secure(frame, NWK, src_ext=eui)


# --- messages ------------------------------------------------------------------------------


KT = KeyTransport(
    bytes(range(8)), bytes(range(8, 16)), NWK, 1, PAN, MeterUtility.GAS, TITLE, EK, AK
)
MESSAGES = [
    JoinRequest(DISPLAY, bytes(range(8)), 1),
    KT,
    JoinConfirm(bytes(range(8, 16))),
    JoinReject(RejectReason.TOO_MANY_DISPLAYS),
    JoinAccept(bytes(range(8)), bytes(range(8, 16))),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_message_round_trip_and_layout(msg: object) -> None:
    b = msg.to_bytes()  # type: ignore[attr-defined]
    assert b[0] == DISPATCH and b[1] == msg.TYPE and b[2] == 1  # type: ignore[attr-defined]
    assert len(b) == msg.LENGTH  # type: ignore[attr-defined]
    assert decode_message(b) == msg


def test_message_layouts_byte_by_byte() -> None:
    assert JoinRequest(DISPLAY, bytes(range(8)), 1).to_bytes().hex(" ") == (
        "a5 01 01 ac de 48 00 00 00 00 01 00 01 02 03 04 05 06 07 01"
    )
    kt = KT.to_bytes()
    assert kt[3:11] == bytes(range(8)) and kt[11:19] == bytes(range(8, 16))
    assert kt[19:35] == NWK.value and kt[35] == 1
    assert kt[36:38] == b"\x1d\x1d" and kt[38] == 2
    assert kt[39:47] == TITLE and kt[47:63] == EK.value and kt[63:79] == AK.value
    assert JoinReject(1).to_bytes() == b"\xa5\x04\x01\x01"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"", "dispatch"),
        (b"\xa4\x01\x01", "dispatch"),
        (b"\xa5\x09\x01", "unknown pairing message type 0x09"),
        (b"\xa5\x04\x02\x01", "version 2"),
        (b"\xa5\x04\x01\x01\x00", "4 octets, not 5"),
        (b"\xa5\x03\x01" + bytes(7), "11 octets, not 10"),
        (KT.to_bytes()[:38] + b"\x07" + KT.to_bytes()[39:], "unknown utility 7"),
        (KT.to_bytes()[:36] + b"\xff\xff" + KT.to_bytes()[38:], "PAN ID 0xFFFF"),
    ],
)
def test_decode_refuses(payload: bytes, fragment: str) -> None:
    with pytest.raises(LinkMessageError, match=re.escape(fragment)):
        decode_message(payload)


def test_keys_never_in_repr() -> None:
    pm = PairedMeter(ELEC, MeterUtility.ELECTRICITY, NWK, 1, PAN, TITLE, EK, AK, 5)
    for text in (repr(KT), repr(pm), repr(Paired(pm))):
        for key in (NWK, EK, AK):
            assert key.value.hex() not in text.lower()
        assert "00112233" not in text


# --- the state table -----------------------------------------------------------------------


def test_every_action_in_the_table_exists() -> None:
    for (_state, _inp), (_next, action) in _TRANSITIONS.items():
        assert callable(getattr(DisplayPairing, "_do_" + action))
    finals = {PairingState.PAIRED, PairingState.FAILED}
    assert not any(state in finals for state, _ in _TRANSITIONS)  # final states absorb


# --- the handshake -------------------------------------------------------------------------


def test_full_handshake_unicast() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    air = pair(display, meter)
    out = air.outcome()
    assert isinstance(out, Paired)
    m = out.meter
    assert (m.eui64, m.utility, m.network_key_index, m.pan_id) == (
        ELEC,
        MeterUtility.ELECTRICITY,
        1,
        PAN,
    )
    assert m.network_key == NWK and m.dlms_encryption_key == EK
    assert m.dlms_authentication_key == AK and m.dlms_system_title == TITLE
    assert m.rssi_dbm == -61.5 and m.address == Address.ext(ELEC)
    assert meter.joined == {DISPLAY}
    assert display.state is PairingState.PAIRED and display.paired == m
    assert [e.step for e in air.events if isinstance(e, Progress)] == [
        "searching",
        "found",
        "confirming",
    ]
    # Four frames, in order, each as specified.
    who = [w for w, _ in air.log]
    assert who == ["display", f"{ELEC:016X}", "display", f"{ELEC:016X}"]
    req, kt, conf, acc = (parse_mpdu_unchecked(f) for _, f in air.log)
    assert req.aux is None and req.dst == Address.ext(ELEC) and req.ack_request
    assert req.src == Address.ext(DISPLAY) and req.dst_pan == 0xFFFF
    assert kt.aux == AuxSecurityHeader(6, 0) and kt.dst_pan == 0xFFFF  # not in the PAN yet
    assert conf.aux == AuxSecurityHeader(5, 0, key_index=1) and conf.dst_pan == PAN
    assert acc.aux == AuxSecurityHeader(6, 1)
    assert m.meter_frame_counter == 1 and meter.frame_counter == 2
    assert display.frame_counter == 1
    assert display.next_tick_at is None


def test_broadcast_request_without_the_meter_eui() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10))
    air = pair(display, meter)
    out = air.outcome()
    assert isinstance(out, Paired) and out.meter.eui64 == ELEC
    req = parse_mpdu_unchecked(air.log[0][1])
    assert req.dst == BROADCAST and req.dst_pan == 0xFFFF and not req.ack_request
    conf = parse_mpdu_unchecked(air.log[2][1])
    assert conf.dst == Address.ext(ELEC) and conf.dst_pan == PAN
    assert meter.joined == {DISPLAY}


def test_broadcast_ignores_a_neighbours_meter_in_pairing_mode() -> None:
    neighbour = make_meter(GAS, GAS_CODE)  # answers first, with a key we cannot decrypt
    ours = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10))
    out = pair(display, neighbour, ours).outcome()
    assert isinstance(out, Paired) and out.meter.eui64 == ELEC
    assert neighbour.joined == set() and ours.joined == {DISPLAY}


def test_pairs_two_meters_one_after_the_other() -> None:
    elec = make_meter()
    gas_nwk = Key(bytes(range(0x30, 0x40)))
    gas = make_meter(
        GAS,
        GAS_CODE,
        utility=MeterUtility.GAS,
        network_key=gas_nwk,
        network_key_index=2,
        pan_id=0x2E2E,
        dlms_system_title=b"GAS\x00\x00\x00\x00\x02",
        rng=counting_rng(0x90),
    )
    first = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    out1 = pair(first, elec, gas).outcome()
    second = DisplayPairing(
        DISPLAY,
        GAS_CODE,
        counting_rng(0x20),
        meter_eui=GAS,
        frame_counter=first.frame_counter,
        seq=first.seq,
    )
    out2 = pair(second, elec, gas).outcome()
    assert isinstance(out1, Paired) and isinstance(out2, Paired)
    assert out1.meter.utility is MeterUtility.ELECTRICITY and out2.meter.utility is MeterUtility.GAS
    assert out1.meter.network_key == NWK and out2.meter.network_key == gas_nwk
    assert (out2.meter.pan_id, out2.meter.network_key_index) == (0x2E2E, 2)
    assert elec.joined == {DISPLAY} and gas.joined == {DISPLAY}
    assert second.frame_counter == 2  # the caller carried the counter over


def test_lost_join_accept_is_recovered_by_resending_the_confirm() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    lost: list[bytes] = []

    def drop(who: str, mpdu: bytes) -> bool:
        f = parse_mpdu_unchecked(mpdu)
        if who != "display" and f.aux is not None and f.aux.frame_counter == 1 and not lost:
            lost.append(mpdu)  # the first JOIN_ACCEPT
            return True
        return False

    air = pair(display, meter, drop=drop)
    assert isinstance(air.outcome(), Paired)
    confirms = [m for w, m in air.log if w == "display" and parse_mpdu_unchecked(m).aux]
    assert len(confirms) == 2  # resent after the retry interval
    assert [parse_mpdu_unchecked(c).aux.frame_counter for c in confirms] == [0, 1]  # type: ignore[union-attr]


# --- failures ------------------------------------------------------------------------------


def test_wrong_code_fails_at_once_when_the_meter_is_known() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, WRONG, counting_rng(0x10), meter_eui=ELEC)
    air = Air(display, [meter])
    air.start(0.0)
    out = air.outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.WRONG_CODE
    assert out.message == FAILURE_MESSAGES[PairingFailure.WRONG_CODE]
    assert display.state is PairingState.FAILED and meter.joined == set()


def test_wrong_code_while_broadcasting_is_reported_at_the_end_of_the_window() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, WRONG, counting_rng(0x10))
    air = Air(display, [meter])
    air.start(0.0)
    assert not [e for e in air.events if isinstance(e, Failed)]
    air.run_until(20.0)
    out = air.outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.WRONG_CODE


def test_typo_in_the_code_is_caught_before_any_radio_traffic() -> None:
    with pytest.raises(InstallCodeError, match="typo"):
        DisplayPairing(DISPLAY, CODE[:-1] + "6", counting_rng(0), meter_eui=ELEC)


def test_silent_meter_is_out_of_range_after_the_window() -> None:
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    display.start(100.0)
    before = [e for k in range(30) for e in display.tick(100.0 + k * 0.5)]
    before += display.tick(114.99)
    assert len(sends(before)) == 2  # the two retries, and nothing else
    assert not [e for e in before if isinstance(e, Failed)]
    assert display.state is PairingState.REQUESTING
    events = display.tick(115.0)
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert events[0].reason is PairingFailure.OUT_OF_RANGE
    assert display.tick(200.0) == []  # over


def test_meter_heard_but_key_transport_lost_is_a_timeout() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    air = Air(display, [meter], drop=lambda who, m: who != "display")  # replies lost
    air.start(0.0)
    air.to_display(meter_data_frame(), 3.0)  # but its ordinary traffic is heard
    assert [e for e in air.events if isinstance(e, Progress)][-1].step == "found"
    air.run_until(20.0)
    out = air.outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.TIMEOUT


def test_a_neighbours_traffic_is_not_our_meter_heard() -> None:
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    air = Air(display, [])
    air.start(0.0)
    air.to_display(meter_data_frame(GAS), 1.0)
    air.run_until(20.0)
    out = air.outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.OUT_OF_RANGE


def test_join_accept_lost_for_good_is_a_timeout() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)

    def drop(who: str, mpdu: bytes) -> bool:
        aux = parse_mpdu_unchecked(mpdu).aux
        return who != "display" and aux is not None and aux.frame_counter != 0  # accepts

    air = pair(display, meter, drop=drop)
    out = air.outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.TIMEOUT
    assert display.state is PairingState.FAILED
    assert meter.joined == {DISPLAY}  # the meter did take it: the display cannot know


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"accepting_joins": False}, RejectReason.NOT_ACCEPTING),
        ({"max_displays": 0}, RejectReason.TOO_MANY_DISPLAYS),
    ],
)
def test_join_reject(setup: dict[str, Any], reason: RejectReason) -> None:
    meter = make_meter(**setup)
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    air = Air(display, [meter])
    air.start(0.0)
    out = air.outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.REJECTED
    assert out.message == REJECT_MESSAGES[reason]


def test_forgetting_a_display_frees_its_place() -> None:
    meter = make_meter(max_displays=1)
    assert isinstance(
        pair(DisplayPairing(DISPLAY, CODE, counting_rng(0x10)), meter).outcome(), Paired
    )
    other = DisplayPairing(DISPLAY + 1, CODE, counting_rng(0x20), meter_eui=ELEC)
    out = pair(other, meter).outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.REJECTED
    meter.forget(DISPLAY)
    again = DisplayPairing(DISPLAY + 1, CODE, counting_rng(0x30), meter_eui=ELEC)
    assert isinstance(pair(again, meter).outcome(), Paired)
    assert meter.joined == {DISPLAY + 1}


def test_broadcast_to_a_meter_not_accepting_joins_gets_silence() -> None:
    meter = make_meter(accepting_joins=False)
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10))
    air = pair(display, meter)
    out = air.outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.OUT_OF_RANGE
    assert len(air.log) == 3  # three broadcast requests, no answer


def test_reject_while_broadcasting_is_reported_at_the_end() -> None:
    meter = make_meter(max_displays=0)
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10))
    air = Air(display, [meter])
    air.start(0.0)
    assert not [e for e in air.events if isinstance(e, Failed)]
    air.run_until(20.0)
    out = air.outcome()
    assert isinstance(out, Failed) and out.reason is PairingFailure.REJECTED


def test_unknown_reject_reason_gets_the_generic_message() -> None:
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    display.start(0.0)
    mpdu = MacFrame.data(
        src=Address.ext(ELEC),
        dst=Address.ext(DISPLAY),
        dst_pan=PAN,
        seq=1,
        payload=JoinReject(99).to_bytes(),
    ).to_bytes()
    events = display.receive(*over_air(mpdu), None, 1.0)
    out = events[-1]
    assert isinstance(out, Failed)
    assert out.message == FAILURE_MESSAGES[PairingFailure.REJECTED]


def test_every_outcome_has_its_own_plain_message() -> None:
    texts = list(FAILURE_MESSAGES.values()) + list(REJECT_MESSAGES.values())
    assert len(set(texts)) == len(texts) == 6
    for t in texts:
        assert t.endswith(".") and "MIC" not in t and "0x" not in t


# --- timing --------------------------------------------------------------------------------


def test_retries_at_the_configured_interval() -> None:
    display = DisplayPairing(
        DISPLAY,
        CODE,
        counting_rng(0x10),
        meter_eui=ELEC,
        retry_interval_s=2.0,
        attempts=3,
        timeout_s=15.0,
    )
    first = sends(display.start(10.0))
    assert len(first) == 1 and display.next_tick_at == 12.0
    assert display.tick(11.99) == []
    second = sends(display.tick(12.0))
    assert display.next_tick_at == 14.0
    third = sends(display.tick(14.0))
    assert display.next_tick_at == 25.0  # no attempts left: only the deadline
    assert display.tick(16.0) == [] and display.tick(24.9) == []
    frames = [parse_mpdu_unchecked(m) for m in first + second + third]
    assert [f.seq for f in frames] == [0, 1, 2]
    assert len({f.payload for f in frames}) == 1  # same request, same N_d


def test_a_frame_after_the_deadline_ends_the_window() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC, timeout_s=5.0)
    req = sends(display.start(0.0))[0]
    kt = meter.receive(*over_air(req), 0.0)[0]
    events = display.receive(*over_air(kt), None, 5.0)  # arrives too late
    assert [type(e) for e in events] == [Failed]
    assert isinstance(events[0], Failed) and events[0].reason is PairingFailure.TIMEOUT


def test_confirm_retries_follow_the_interval_too() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    req = sends(display.start(0.0))[0]
    kt = meter.receive(*over_air(req), 0.5)[0]
    assert len(sends(display.receive(*over_air(kt), None, 0.5))) == 1
    assert display.state is PairingState.CONFIRMING and display.next_tick_at == 2.5
    assert len(sends(display.tick(2.5))) == 1 and len(sends(display.tick(4.5))) == 1
    assert display.next_tick_at == 15.0  # three confirms sent: only the deadline left
    out = display.tick(15.0)[0]
    assert isinstance(out, Failed) and out.reason is PairingFailure.TIMEOUT


def test_start_twice_is_a_bug() -> None:
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10))
    display.start(0.0)
    with pytest.raises(RuntimeError):
        display.start(1.0)


# --- replays -------------------------------------------------------------------------------


def test_replayed_key_transport_after_pairing_is_ignored() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    air = pair(display, meter)
    assert isinstance(air.outcome(), Paired)
    kt = air.log[1][1]
    assert display.receive(*over_air(kt), None, 1.0) == []
    assert display.state is PairingState.PAIRED


def test_replayed_key_transport_into_a_new_session_is_ignored() -> None:
    # An attacker records a KEY_TRANSPORT and plays it to a later pairing attempt: it
    # decrypts, but echoes the old N_d, so it is stale.
    meter = make_meter()
    old = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    kt = pair(old, meter).log[1][1]
    fresh = DisplayPairing(DISPLAY, CODE, counting_rng(0x60), meter_eui=ELEC)
    fresh.start(0.0)
    events = fresh.receive(*over_air(kt), None, 1.0)
    assert [e.step for e in events if isinstance(e, Progress)] == ["found"]  # heard, no more
    assert fresh.state is PairingState.REQUESTING
    out = fresh.tick(15.0)[0]
    assert isinstance(out, Failed) and out.reason is PairingFailure.TIMEOUT


def test_meter_ignores_a_replayed_or_forged_confirm() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    air = pair(display, meter)
    conf = air.log[2][1]
    assert meter.receive(*over_air(conf), 1.0) == []  # same counter: replay
    meter.joined.clear()
    # A confirm with the wrong N_m, properly secured with the network key (an insider).
    f = MacFrame.data(
        src=Address.ext(DISPLAY),
        dst=Address.ext(ELEC),
        dst_pan=PAN,
        seq=9,
        aux=AuxSecurityHeader(5, 50, key_index=1),
        payload=JoinConfirm(bytes(8)).to_bytes(),
    )
    assert meter.receive(*over_air(secure(f, NWK, src_ext=DISPLAY)), 1.0) == []
    assert meter.joined == set()


def test_meter_repeats_the_same_meter_nonce_for_a_repeated_request() -> None:
    meter = make_meter()
    display = DisplayPairing(DISPLAY, CODE, counting_rng(0x10), meter_eui=ELEC)
    req1 = sends(display.start(0.0))[0]
    req2 = sends(display.tick(2.0))[0]
    kt1 = meter.receive(*over_air(req1), 0.0)
    kt2 = meter.receive(*over_air(req2), 2.0)
    assert len(kt1) == len(kt2) == 1 and kt1 != kt2  # fresh counters...
    # ...and the display, answering the first, is confirmed even though the second came.
    conf = sends(display.receive(*over_air(kt1[0]), None, 2.1))
    assert display.receive(*over_air(kt2[0]), None, 2.2) == []
    acc = meter.receive(*over_air(conf[0]), 2.3)
    assert isinstance(display.receive(*over_air(acc[0]), None, 2.4)[-1], Paired)


def test_meter_sessions_are_bounded() -> None:
    meter = make_meter(max_sessions=2)
    for i in range(5):
        d = DisplayPairing(0xACDE480000000100 + i, CODE, counting_rng(i * 8))
        assert len(meter.receive(*over_air(sends(d.start(0.0))[0]), 0.0)) == 1
    assert len(meter._sessions) == 2


def test_meter_ignores_other_traffic() -> None:
    meter = make_meter()
    assert meter.receive(*over_air(meter_data_frame(GAS)), 0.0) == []
    f = MacFrame.data(
        src=Address.ext(DISPLAY),
        dst=Address.ext(GAS),
        dst_pan=PAN,
        seq=1,
        payload=JoinRequest(DISPLAY, bytes(8)).to_bytes(),
    )
    assert meter.receive(*over_air(f.to_bytes()), 0.0) == []  # another meter's request
    f = MacFrame.data(
        src=Address.ext(DISPLAY),
        dst=Address.ext(ELEC),
        dst_pan=PAN,
        seq=1,
        payload=JoinRequest(DISPLAY + 1, bytes(8)).to_bytes(),
    )
    assert meter.receive(*over_air(f.to_bytes()), 0.0) == []  # EUI in payload != source


# --- robustness: any octets in, no exception out ---------------------------------------------


@given(st.binary(max_size=120))
def test_decode_message_raises_only_link_message_error(payload: bytes) -> None:
    try:
        msg = decode_message(payload)
    except LinkMessageError:
        return
    assert msg.to_bytes() == payload


@given(
    payload=st.one_of(st.binary(max_size=100), st.binary(max_size=96).map(lambda b: b"\xa5" + b)),
    level=st.sampled_from([None, 5, 6, 7]),
    key_index=st.sampled_from([None, 1]),
    counter=st.integers(0, 0xFFFFFFFE),
)
def test_either_side_survives_arbitrary_frames(
    payload: bytes, level: int | None, key_index: int | None, counter: int
) -> None:
    mic = {None: 0, 5: 4, 6: 8, 7: 16}[level]
    aux = None if level is None else AuxSecurityHeader(level, counter, key_index=key_index)
    if len(payload) < mic:
        payload += bytes(mic - len(payload))
    meter = make_meter()
    for src, dst, pan in ((ELEC, DISPLAY, PAN), (DISPLAY, ELEC, PAN), (DISPLAY, ELEC, 0xFFFF)):
        raw = MacFrame.data(
            src=Address.ext(src), dst=Address.ext(dst), dst_pan=pan, seq=1, aux=aux, payload=payload
        ).to_bytes()
        for broadcast in (False, True):
            d = DisplayPairing(
                DISPLAY, CODE, counting_rng(0), meter_eui=None if broadcast else ELEC
            )
            d.start(0.0)
            d.receive(raw, parse_mpdu_unchecked(raw), None, 1.0)
        meter.receive(raw, parse_mpdu_unchecked(raw), 1.0)


# --- the worked example in docs/smwap-pairing.md -------------------------------------------

N_D = bytes.fromhex("d0d1d2d3d4d5d6d7")
N_M = bytes.fromhex("e0e1e2e3e4e5e6e7")
EXAMPLE = ("JOIN_REQUEST", "KEY_TRANSPORT", "JOIN_CONFIRM", "JOIN_ACCEPT")


def example_run() -> dict[str, str]:
    meter = make_meter(rng=fixed_rng(N_M), frame_counter=0x00000100, seq=0x80)
    display = DisplayPairing(
        DISPLAY, CODE, fixed_rng(N_D), meter_eui=ELEC, seq=0x10, frame_counter=0x00000020
    )
    air = pair(display, meter)
    assert isinstance(air.outcome(), Paired)
    return {name: mpdu.hex(" ") for name, (_, mpdu) in zip(EXAMPLE, air.log, strict=True)}


def test_worked_example_in_the_doc_is_what_the_code_sends() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "smwap-pairing.md").read_text()
    flat = " ".join(doc.split())
    frames = example_run()
    for name, octets in frames.items():
        assert octets in flat, f"{name} in docs/smwap-pairing.md is out of date"
    code = bytes.fromhex(CODE)
    assert crc16_x25(code[:-2]).to_bytes(2, "little") == code[-2:]


def test_worked_example_key_transport_checks_with_plain_aesccm() -> None:
    # Independent of ihd.smwap.security: the IEEE nonce, the vector's link key, AESCCM.
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    kt = bytes.fromhex(example_run()["KEY_TRANSPORT"])
    header, body = kt[:26], kt[26:]
    nonce = ELEC.to_bytes(8, "big") + (0x100).to_bytes(4, "big") + b"\x06"
    link = bytes.fromhex("66b6900981e1ee3ca4206b6b861c02bb")
    plain = AESCCM(link, tag_length=8).decrypt(nonce, body, header)
    assert plain[:3] == b"\xa5\x02\x01" and plain[3:11] == N_D and plain[11:19] == N_M
    assert plain[19:35] == NWK.value and len(plain) == 79


def test_message_types_are_the_documented_ones() -> None:
    assert {t.name: t.value for t in MessageType} == {
        "JOIN_REQUEST": 1,
        "KEY_TRANSPORT": 2,
        "JOIN_CONFIRM": 3,
        "JOIN_REJECT": 4,
        "JOIN_ACCEPT": 5,
    }
