"""The serial radio stick: the SLIP codec and slip-radio messages (ihd/radio/slip.py), the
driver (ihd/radio/serial_stick.py) with real pyserial on a pty, and the fake stick
(ihd/radio/emulator_stick.py), written from Contiki-NG's sources independently of both.

The fake stick is the display on the simulated air, with the display's EUI-64, so the demo
meters push to it and it acknowledges them as a real slip-radio stick's CSMA MAC would.
"""

from __future__ import annotations

import ast
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd.clock import ManualClock
from ihd.diag import Diagnostics
from ihd.radio.contract import RadioError, RxFrame
from ihd.radio.emulator_stick import SlipRadioStickEmulator
from ihd.radio.serial_stick import SerialStickConfig, SerialStickRadio, probe_serial_stick
from ihd.radio.slip import (
    DebugText,
    MacAddress,
    ReceivedFrame,
    SendFrame,
    SendReport,
    SlipDecoder,
    UnknownCommand,
    ValueReport,
    parse_stick_message,
    slip_encode,
)
from ihd.sim.world import demo_world
from ihd.smwap.fcs import check_fcs, compute_fcs
from ihd.smwap.mac import Address, MacFrame, build_mpdu, parse_mpdu, parse_mpdu_unchecked
from ihd.smwap.phy import parse_ppdu

T0 = 1_705_320_000.0
ROOT = Path(__file__).resolve().parents[1]


def wait_for(cond: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


# --- SLIP -------------------------------------------------------------------------------------
def test_slip_escapes_end_and_esc_as_contiki_writes_them() -> None:
    assert slip_encode(b"\x01\xc0\x02\xdb\x03") == bytes.fromhex("c0 01 dbdc 02 dbdd 03 c0")
    assert slip_encode(b"?M") == bytes.fromhex("c0 3f4d c0")


@given(
    frames=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=20),
)
@settings(max_examples=200, deadline=None)
def test_slip_round_trips_however_the_stream_is_cut(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(slip_encode(f) for f in frames)
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    dec = SlipDecoder()
    out = []
    for a, b in itertools.pairwise(points):
        out += dec.feed(stream[a:b])
    assert out == frames
    assert dec.errors == 0 and not dec.partial


@given(noise=st.binary(max_size=200), frame=st.binary(min_size=1, max_size=100))
@settings(max_examples=200, deadline=None)
def test_slip_resynchronises_after_garbage(noise: bytes, frame: bytes) -> None:
    dec = SlipDecoder(max_frame=64)
    dec.feed(noise)  # anything: never raises
    assert dec.feed(slip_encode(frame))[-1:] == ([frame] if len(frame) <= 64 else [])


def test_slip_drops_a_frame_with_a_bad_escape_or_too_long() -> None:
    dec = SlipDecoder(max_frame=4)
    assert dec.feed(bytes.fromhex("c0 01 db 05 02 c0 c0 0a c0")) == [b"\x0a"]
    assert dec.feed(bytes.fromhex("c0 0102030405 c0 c0 0b c0")) == [b"\x0b"]
    assert dec.errors == 2


# --- slip-radio messages -------------------------------------------------------------------------
def test_stick_messages_are_told_apart() -> None:
    assert parse_stick_message(b"!M" + bytes.fromhex("0212345678abcdef")) == MacAddress(
        bytes.fromhex("0212345678abcdef")
    )
    assert MacAddress(bytes.fromhex("0212345678abcdef")).eui64 == "0212345678ABCDEF"
    v = parse_stick_message(b"!V\x00\x08\xff\xa6")
    assert v == ValueReport(8, 0xFFA6) and isinstance(v, ValueReport) and v.signed == -90
    r = parse_stick_message(b"!R\x07\x02\x04")
    assert r == SendReport(7, 2, 4) and isinstance(r, SendReport) and r.status_name == "NOACK"
    assert parse_stick_message(b"EUnknown command") == UnknownCommand("Unknown command")
    assert parse_stick_message(b"\rradio: setting channel: 3\n") == DebugText(
        "radio: setting channel: 3"
    )
    # a data frame that starts with '!' (0x21: data, AR set, no PAN ID compression)
    mpdu = bytes.fromhex("21 88 05 1d1d 0100 1d1d 0200") + b"x"
    assert parse_mpdu_unchecked(mpdu).ack_request
    assert parse_stick_message(mpdu) == ReceivedFrame(mpdu)


@given(
    src=st.integers(0, 2**64 - 1),
    dst=st.integers(0, 2**16 - 1),
    seq=st.integers(0, 255),
    payload=st.binary(max_size=100),
    ack=st.booleans(),
)
def test_every_mac_frame_is_taken_for_a_frame(
    src: int, dst: int, seq: int, payload: bytes, ack: bool
) -> None:
    mac = MacFrame.data(
        src=Address.ext(src),
        dst=Address.short(dst),
        dst_pan=0x1D1D,
        seq=seq,
        payload=payload,
        ack_request=ack,
    )
    mpdu = mac.to_bytes()
    assert parse_stick_message(mpdu) == ReceivedFrame(mpdu)


@given(
    sid=st.integers(0, 255),
    mpdu=st.binary(max_size=127),
    attrs=st.lists(st.tuples(st.integers(0, 31), st.integers(0, 0xFFFF)), max_size=4),
)
def test_send_frames_round_trip(sid: int, mpdu: bytes, attrs: list[tuple[int, int]]) -> None:
    msg = SendFrame(sid, mpdu, tuple(attrs))
    raw = msg.to_bytes()
    assert raw[:4] == b"!S" + bytes([sid, len(attrs)])
    assert SendFrame.from_bytes(raw) == msg
    dec = SlipDecoder()
    assert dec.feed(slip_encode(raw)) == [raw]


# --- the driver on a pty, against the fake stick ------------------------------------------------
class Rig:
    def __init__(self, tmp: Path, **stick: object) -> None:
        self.clock = ManualClock(T0)
        self.world = demo_world(seed=7, start=T0, joined=None, secured=True)
        self.stick = SlipRadioStickEmulator(
            self.world,
            clock=self.clock,
            link=tmp / "ttyUSB-stick",
            **stick,  # type: ignore[arg-type]
        )
        self.diag = Diagnostics()
        self.radio = SerialStickRadio(
            SerialStickConfig(port=str(self.stick.link), reconnect_interval_s=2.0),
            clock=self.clock,
            diag=self.diag,
        )

    def run(self, seconds: float) -> None:
        t = self.clock.now() + seconds
        self.clock.set(t)
        self.stick.run_until(t)

    def frames(self, n: int, timeout: float = 2.0) -> list[RxFrame]:
        got: list[RxFrame] = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            f = self.radio.receive(0.05)
            if f is not None:
                got.append(f)
        return got

    def close(self) -> None:
        self.radio.close()
        self.stick.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    r.stick.plug()
    yield r
    r.close()


def test_the_fake_stick_is_written_without_the_driver() -> None:
    tree = ast.parse((ROOT / "ihd/radio/emulator_stick.py").read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    assert not mods & {"ihd.radio.serial_stick", "ihd.radio.slip", "ihd.radio"}


def test_open_identifies_the_stick_and_sets_the_channel_byte_for_byte(rig: Rig) -> None:
    rig.radio.open()
    assert rig.radio.eui64 == rig.world.display_eui64
    assert rig.diag.state("radio.status") == "ok"
    # END, ?M; then !V CHANNEL(1) 0 -- and, once the PAN ID is known, !V PAN_ID(2) 0x1D1D
    rig.radio.set_addresses(eui64=rig.world.display_eui64, pan_id=0x1D1D, short=None)
    wanted = bytes.fromhex("c0 c03f4dc0 c02156000100 00c0 c0215600021d1dc0")
    assert wait_for(lambda: bytes(rig.stick.host_bytes[0]) == wanted)
    assert rig.stick.params[2] == 0x1D1D
    assert rig.diag.state("radio.stick_address_mismatch") is False


def test_receives_pushes_the_stick_acknowledged(rig: Rig) -> None:
    rig.radio.open()
    rig.run(35.0)
    sent = sum(m.counters.get("tx_frames", 0) for m in rig.world.meters)
    frames = rig.frames(sent)
    assert len(frames) == sent >= 4
    for m in rig.world.meters:  # the stick ACKed: no retries
        assert m.counters.get("tx_retries", 0) == 0
        assert m.counters.get("acked", 0) == m.counters.get("tx_frames", 0)
    srcs = {m.device.eui64 for m in rig.world.meters}
    for f in frames:
        assert f.info.fcs_ok is True and f.info.fcs_len == 4
        assert check_fcs(f.psdu, 4)  # the FCS the stick stripped, put back
        mac = parse_mpdu(f.psdu, 4)
        assert str(mac.src) in srcs and str(mac.dst) == rig.world.display_eui64
        assert f.info.rssi_dbm is None and f.info.channel == 0
    assert rig.radio.receive(0) is None


def test_transmit_sends_the_mpdu_and_waits_for_the_report(rig: Rig) -> None:
    rig.radio.open()
    rig.run(5.0)
    mac = MacFrame.data(
        src=Address.from_eui64(rig.world.display_eui64),
        dst=Address.from_eui64(rig.world.meters[0].device.eui64),
        dst_pan=0x1D1D,
        seq=42,
        payload=b"hello meter",
    )
    psdu = build_mpdu(mac, 4)
    rig.radio.transmit(psdu, fcs_len=4)
    assert rig.diag.counter("radio.tx_frames") == 1
    (ppdu,) = rig.stick.sent
    assert parse_ppdu(ppdu).psdu == psdu  # the stick appended the same FCS
    assert rig.stick.commands[-1] == b"!S" + bytes([1, 0]) + psdu[:-4]


def test_queries_and_the_unknown_command_quirk(rig: Rig) -> None:
    rig.radio.open()
    assert rig.radio.query_value(1) == 0  # ?V CHANNEL
    assert rig.radio.energy_dbm(5) < -100  # ?V RSSI on channel 5: the noise floor
    assert rig.stick.channel == 5
    rig.radio.receive(0.1)
    assert rig.diag.counter("radio.stick_errors") == 0  # the E after each ?V was expected


def test_an_unprovoked_error_reply_is_counted(rig: Rig) -> None:
    rig.radio.open()
    rig.radio._send(b"!C5")  # the border router's stdin command, not one of slip-radio's
    rig.radio.receive(0.2)
    assert rig.diag.counter("radio.stick_errors") == 1


def test_line_noise_is_counted_and_frames_after_it_arrive(rig: Rig) -> None:
    rig.radio.open()
    rig.stick.inject_bytes(bytes.fromhex("c0 01 02 db 07 03 c0"))  # a bad escape
    rig.run(1.0)  # the push at T0
    (frame,) = rig.frames(1)
    assert check_fcs(frame.psdu, 4)
    assert rig.diag.counter("radio.slip_errors") == 1


def test_unplug_and_replug_reconnect_on_the_same_path(rig: Rig) -> None:
    rig.radio.open()
    rig.run(1.0)
    assert len(rig.frames(1)) == 1
    rig.stick.unplug()
    with pytest.raises(RadioError, match="disconnected"):
        rig.frames(1)
    assert rig.diag.counter("radio.serial_disconnects") == 1
    assert str(rig.diag.state("radio.status")).startswith("error: ")
    with pytest.raises(RadioError, match="not connected"):
        rig.radio.transmit(b"\x41\x88\x01" + bytes(4), fcs_len=4)
    rig.run(10.0)  # meters push to nobody: no power, no ACK
    assert rig.frames(1, timeout=0.1) == []
    rig.stick.plug()  # a new pty behind the same link
    assert rig.frames(1, timeout=0.1) == []  # not time to retry yet
    rig.clock.advance(2.0)
    assert rig.frames(1, timeout=0.1) == []  # reconnected
    rig.run(10.0)  # the next push
    frames = rig.frames(1)
    assert len(frames) == 1 and check_fcs(frames[0].psdu, 4)
    assert rig.diag.counter("radio.serial_reconnects") == 1
    assert rig.diag.state("radio.status") == "ok"
    assert rig.stick.commands[-1] == b"!V\x00\x01\x00\x00"  # the channel, set again


def test_a_missing_port_is_a_clear_error_and_is_retried(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        with pytest.raises(RadioError, match=r"cannot open .*ttyUSB-stick"):
            rig.radio.open()
        assert rig.diag.counter("radio.serial_open_failures") == 1
        assert rig.radio.receive(0.05) is None
        rig.stick.plug()
        rig.clock.advance(2.0)
        assert rig.radio.receive(0.05) is None
        assert rig.radio.eui64 == rig.world.display_eui64
        assert rig.diag.counter("radio.serial_reconnects") == 0  # the first connection
    finally:
        rig.close()


def test_a_device_that_does_not_speak_slip_radio_is_refused(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.stick.plug()
    rig.stick.mute = True
    rig.radio = SerialStickRadio(
        SerialStickConfig(port=str(rig.stick.link), identify_timeout_s=0.2),
        clock=rig.clock,
        diag=rig.diag,
    )
    try:
        with pytest.raises(RadioError, match=r"no answer to \?M .* slip-radio"):
            rig.radio.open()
    finally:
        rig.close()


def test_probe_identifies_without_changing_the_channel(rig: Rig) -> None:
    rig.stick.channel = rig.stick.params[1] = 9
    ident = probe_serial_stick(str(rig.stick.link), timeout=0.5)
    assert ident.eui64 == rig.world.display_eui64 and ident.channel == 9
    assert "slip-radio" in ident.describe()
    assert [c[:2] for c in rig.stick.commands] == [b"?M", b"?V"]


def test_the_stick_answers_only_for_its_own_address(tmp_path: Path) -> None:
    rig = Rig(tmp_path, eui64="02AAAAAAAAAAAAAA")
    rig.stick.plug()
    try:
        rig.radio.open()
        rig.radio.set_addresses(eui64=rig.world.display_eui64, pan_id=0x1D1D, short=None)
        assert rig.diag.state("radio.stick_address_mismatch") is True
        rig.run(35.0)
        assert rig.frames(1, timeout=0.1) == []
        assert rig.stick.counts["not_for_us"] > 0
    finally:
        rig.close()


def test_the_fcs_is_recomputed_for_two_octet_builds(tmp_path: Path) -> None:
    rig = Rig(tmp_path, fcs_len=2)
    rig.radio = SerialStickRadio(
        SerialStickConfig(port=str(rig.stick.link), fcs_len=2), clock=rig.clock
    )
    rig.stick.plug()
    try:
        rig.radio.open()
        mpdu = MacFrame.data(
            src=Address.ext(1),
            dst=Address.from_eui64(rig.world.display_eui64),
            dst_pan=0x1D1D,
            seq=1,
            payload=b"x",
        ).to_bytes()
        rig.stick._to_host(mpdu)
        (frame,) = rig.frames(1)
        assert frame.psdu == mpdu + compute_fcs(mpdu, 2) and frame.info.fcs_len == 2
    finally:
        rig.close()
