"""The simulated air: delivery, channels, sensitivity, collisions, capture, loss and pruning."""

from __future__ import annotations

import random

import pytest

from ihd.sim.air import Air, AirRx

FRAME = bytes(range(40))  # 40 octets: 6.4 ms at 50 kb/s


class Inbox:
    def __init__(self) -> None:
        self.frames: list[tuple[bytes, AirRx]] = []

    def __call__(self, data: bytes, info: AirRx) -> None:
        self.frames.append((data, info))

    @property
    def payloads(self) -> list[bytes]:
        return [data for data, _ in self.frames]


def make_air(
    *, loss: float = 0.0, corruption: float = 0.0, capture_threshold_db: float = 10.0
) -> tuple[Air, dict[str, Inbox]]:
    air = Air(
        random.Random(1234),
        loss=loss,
        corruption=corruption,
        capture_threshold_db=capture_threshold_db,
    )
    inboxes = {name: Inbox() for name in ("meter", "ihd", "neighbour")}
    for name, inbox in inboxes.items():
        air.attach(name, on_receive=inbox)
    return air, inboxes


def test_airtime_defaults_to_bits_over_bitrate_and_can_be_replaced() -> None:
    assert Air(random.Random(0)).airtime_s(40) == pytest.approx(40 * 8 / 50_000)
    assert Air(random.Random(0), bitrate_bps=100_000).airtime_s(10) == pytest.approx(0.0008)
    assert Air(random.Random(0), airtime=lambda n: 1.0 + n).airtime_s(3) == 4.0


def test_a_frame_is_delivered_after_it_ends_with_rssi() -> None:
    air, inbox = make_air()
    air.set_path_loss("meter", "ihd", 70.0)
    end = air.transmit(100.0, "meter", FRAME)
    assert end == pytest.approx(100.0 + 40 * 8 / 50_000)
    assert air.next_event_time() == end
    assert air.advance(end - 1e-6) == 0
    assert inbox["ihd"].frames == []
    assert air.advance(end) == 2  # ihd and neighbour
    data, info = inbox["ihd"].frames[0]
    assert data == FRAME
    assert (info.start, info.end, info.channel, info.sender) == (100.0, end, 0, "meter")
    assert info.rssi_dbm == pytest.approx(14.0 - 70.0, abs=5.0)
    assert not info.corrupted
    assert air.next_event_time() is None
    assert air.advance(end + 1.0) == 0  # delivered once only
    assert air.delivered == 2


def test_the_sender_does_not_hear_itself() -> None:
    air, inbox = make_air()
    air.advance(air.transmit(0.0, "meter", FRAME))
    assert inbox["meter"].frames == []
    assert len(inbox["ihd"].frames) == 1


def test_channels_are_separate() -> None:
    air = Air(random.Random(1))
    on_3, on_5 = Inbox(), Inbox()
    air.attach("meter", on_receive=None, channel=3)
    air.attach("a", on_receive=on_3, channel=3)
    air.attach("b", on_receive=on_5, channel=5)
    air.advance(air.transmit(0.0, "meter", b"three"))  # the sender's channel
    air.advance(air.transmit(1.0, "meter", b"five", channel=5))
    assert on_3.payloads == [b"three"]
    assert on_5.payloads == [b"five"]
    assert on_5.frames[0][1].channel == 5
    air.tune("b", 3)
    air.advance(air.transmit(2.0, "meter", b"again"))
    assert on_5.payloads == [b"five", b"again"]


def test_frames_below_sensitivity_are_dropped() -> None:
    air, inbox = make_air()
    air.set_path_loss("meter", "ihd", 120.0)  # 14 - 120 = -106 dBm < -100 dBm
    air.advance(air.transmit(0.0, "meter", FRAME))
    assert inbox["ihd"].frames == []
    assert len(inbox["neighbour"].frames) == 1
    assert air.lost_sensitivity == 1


def test_overlapping_frames_of_equal_strength_collide() -> None:
    air, inbox = make_air()
    air.transmit(0.0, "meter", b"A" * 40)
    air.transmit(0.003, "neighbour", b"B" * 40)  # overlaps the tail of A
    air.advance(1.0)
    assert inbox["ihd"].frames == []
    assert air.lost_collision == 2
    # Each sender was busy sending while the other's frame was on air: half duplex.
    assert inbox["meter"].frames == [] and inbox["neighbour"].frames == []
    assert air.lost_half_duplex == 2


def test_frames_that_only_touch_do_not_collide() -> None:
    air, inbox = make_air()
    end = air.transmit(0.0, "meter", b"A" * 40)
    air.transmit(end, "neighbour", b"B" * 40)
    air.advance(1.0)
    assert inbox["ihd"].payloads == [b"A" * 40, b"B" * 40]


def test_the_stronger_frame_is_captured() -> None:
    air, inbox = make_air()
    air.set_path_loss("meter", "ihd", 50.0)  # -36 dBm
    air.set_path_loss("neighbour", "ihd", 70.0)  # -56 dBm: 20 dB weaker
    air.transmit(0.0, "meter", b"strong")
    air.transmit(0.0001, "neighbour", b"weak")
    air.advance(1.0)
    assert inbox["ihd"].payloads == [b"strong"]
    assert air.lost_collision == 1


def test_capture_needs_the_threshold() -> None:
    air, inbox = make_air(capture_threshold_db=30.0)
    air.set_path_loss("meter", "ihd", 50.0)
    air.set_path_loss("neighbour", "ihd", 70.0)  # only 20 dB apart
    air.transmit(0.0, "meter", b"strong")
    air.transmit(0.0001, "neighbour", b"weak")
    air.advance(1.0)
    assert inbox["ihd"].frames == []


def test_an_interferer_below_the_noise_floor_does_not_matter() -> None:
    air, inbox = make_air(capture_threshold_db=10.0)
    air.set_path_loss("meter", "ihd", 100.0)  # -86 dBm: heard
    air.set_path_loss("neighbour", "ihd", 130.0)  # -116 dBm: under the -110 dBm floor
    air.transmit(0.0, "meter", b"wanted")
    air.transmit(0.0001, "neighbour", b"far away")
    air.advance(1.0)
    assert inbox["ihd"].payloads == [b"wanted"]


def test_loss_one_delivers_nothing() -> None:
    air, inbox = make_air(loss=1.0)
    for i in range(20):
        air.transmit(float(i), "meter", FRAME)
    assert air.advance(100.0) == 0
    assert inbox["ihd"].frames == [] and air.lost_random == 40


def test_some_loss_drops_some() -> None:
    air, inbox = make_air(loss=0.3)
    for i in range(1_000):
        air.transmit(float(i), "meter", FRAME)
    air.advance(2_000.0)
    assert 600 < len(inbox["ihd"].frames) < 800


def test_corruption_one_always_changes_the_bytes_and_says_so() -> None:
    air, inbox = make_air(corruption=1.0)
    for i in range(50):
        air.transmit(float(i), "meter", FRAME)
    air.advance(100.0)
    assert len(inbox["ihd"].frames) == 50
    for data, info in inbox["ihd"].frames:
        assert info.corrupted
        assert len(data) == len(FRAME) and data != FRAME
        assert 1 <= sum(bin(a ^ b).count("1") for a, b in zip(data, FRAME, strict=True)) <= 3
    assert air.corrupted == 100


def test_delivery_follows_end_time_not_send_order() -> None:
    air = Air(random.Random(5))
    inbox = Inbox()
    air.attach("ihd", on_receive=inbox)
    for name in ("long", "short", "third"):
        air.attach(name, on_receive=None)
    air.transmit(0.0, "long", b"L" * 200)  # ends at 32 ms
    air.transmit(10.0, "third", b"T" * 10)
    air.transmit(5.0, "short", b"S" * 10)
    assert air.next_event_time() == pytest.approx(0.032)
    air.advance(20.0)
    assert [info.sender for _, info in inbox.frames] == ["long", "short", "third"]


def test_a_callback_can_answer_inside_advance() -> None:
    air = Air(random.Random(9))
    acks = Inbox()
    air.attach("meter", on_receive=acks)

    def ihd(data: bytes, info: AirRx) -> None:
        air.transmit(info.end + 0.001, "ihd", b"ack:" + data[:2])

    air.attach("ihd", on_receive=ihd)
    air.transmit(0.0, "meter", b"hi there")
    assert air.advance(1.0) == 2
    assert acks.payloads == [b"ack:hi"]
    with pytest.raises(ValueError, match="before"):
        air.transmit(0.5, "meter", b"late")


def test_carrier_sense_sees_other_nodes_only_while_they_send() -> None:
    air, _ = make_air()
    end = air.transmit(0.0, "meter", FRAME)
    assert air.busy(0.001, "ihd")
    assert not air.busy(0.001, "meter")  # its own carrier is not "busy"
    assert not air.busy(end, "ihd")
    assert not air.busy(0.001, "ihd", channel=7)
    assert air.energy_dbm(0.001, "ihd") == pytest.approx(14.0 - 60.0, abs=0.01)
    assert air.energy_dbm(end + 1, "ihd") == pytest.approx(-110.0)


def test_detached_nodes_hear_nothing_and_same_seed_replays() -> None:
    def run(seed: int) -> list[float]:
        air, inbox = make_air(loss=0.2, corruption=0.2)
        air.rng.seed(seed)
        air.detach("neighbour")
        for i in range(200):
            air.transmit(i * 0.01, "meter", FRAME)
        air.advance(10.0)
        assert inbox["neighbour"].frames == []
        return [info.rssi_dbm for _, info in inbox["ihd"].frames]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_memory_stays_bounded_over_100k_transmissions() -> None:
    air = Air(random.Random(3))
    count = 0

    def sink(data: bytes, info: AirRx) -> None:
        nonlocal count
        count += 1

    air.attach("meter", on_receive=None)
    air.attach("ihd", on_receive=sink)
    t = 0.0
    most = 0
    for i in range(100_000):
        air.transmit(t, "meter", b"x" * 20)
        t += 0.01
        if i % 7 == 0:
            air.advance(t)
        most = max(most, air.remembered)
    air.advance(t + 1)
    assert count == 100_000
    assert most <= 10
    assert air.remembered == 0


def test_bad_arguments_are_refused() -> None:
    air, _ = make_air()
    with pytest.raises(ValueError):
        air.attach("ihd", on_receive=None)
    with pytest.raises(ValueError):
        air.transmit(0.0, "nobody", FRAME)
    with pytest.raises(ValueError):
        Air(random.Random(0), loss=1.5)
    air.advance(5.0)
    with pytest.raises(ValueError):
        air.advance(4.0)
