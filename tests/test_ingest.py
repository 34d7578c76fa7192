"""Ingest, one frame at a time: hand-built frames in, counters, batches and snapshots out.

Frames are built with the real encoders (DLMS push, 802.15.4 MAC, FCS) by
``conftest.push_frame``. Expected numbers are worked out here from the register values
the test sends and the configured prices (24.50 p/kWh electricity, 6.24 p/kWh gas,
215 p/m3 water, standing charges 60.10 p and 31.43 p a day), never read back from the
code under test.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import push_frame, rx_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ihd.app.ingest import Ingest
from ihd.app.live import Snapshot
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.meter.device import MeterDevice
from ihd.meter.dlms import PushValue
from ihd.meter.obis import REGISTERS
from ihd.meter.reading import Reading, Utility
from ihd.radio.contract import RxFrame
from ihd.smwap import Address, FrameType, MacFrame, build_mpdu, compute_fcs
from ihd.smwap.receiver import Receiver
from ihd.smwap.security import SecurityPolicy
from ihd.store import Batch, MeterInfo, Store
from ihd.tariff import tariffs_from_config

LONDON = zoneinfo.ZoneInfo("Europe/London")
ENERGY = REGISTERS[(1, 0, 1, 8, 0, 255)]  # energy_import_wh, Wh
POWER = REGISTERS[(1, 0, 1, 7, 0, 255)]  # power_import_w, W
GAS = REGISTERS[(7, 0, 3, 0, 0, 255)]  # volume_m3
WATER = REGISTERS[(8, 0, 1, 0, 0, 255)]  # volume_m3

ELEC_EUI = "0249484400090001"
GAS_EUI = "0249484400090002"
WATER_EUI = "0249484400090003"
STRANGER = "ACDE480000000099"  # a neighbour's meter: valid frames, not paired
METERS = {
    ELEC_EUI: MeterDevice(ELEC_EUI, Utility.ELECTRICITY, "Electricity meter"),
    GAS_EUI: MeterDevice(GAS_EUI, Utility.GAS, "Gas meter"),
    WATER_EUI: MeterDevice(WATER_EUI, Utility.WATER, "Water meter"),
}

ELEC_MILLI_PER_WH = Decimal("24.50")  # p/kWh == milli-p/Wh
GAS_MILLI_PER_WH = Decimal("6.24")
WATER_MILLI_PER_M3 = Decimal("215") * 1000
ELEC_STANDING_MILLI = 60_100
GAS_STANDING_MILLI = 31_430

#: Every frame handed to Ingest.handle ends in exactly one of these.
OUTCOMES = (
    "radio.fcs_error",
    "smwap.fcs_error",
    "smwap.frame_error",
    "smwap.not_data",
    "smwap.no_source_address",
    "smwap.unknown_source",
    "smwap.link",
    "smwap.downgrade",
    "smwap.unknown_key",
    "smwap.replay",
    "smwap.duplicate",
    "smwap.mic_failure",
    "smwap.bad_frame",
    "smwap.unsupported",
    "meter.decode_error",
    "meter.no_key",
    "meter.auth_failure",
    "meter.unauthenticated",
    "meter.replay",
    "meter.duplicate",
    "meter.bad_timestamp",
    "meter.pushes",
)


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> float:
    """POSIX seconds of a Europe/London wall-clock time."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=LONDON).timestamp()


NOON = local(2025, 1, 15, 12, 0, 0)  # GMT: local == UTC


def make_ingest(diag: Diagnostics | None = None) -> Ingest:
    """Frames in these tests are unsecured: the receiver's policy admits them (security has
    its own tests in test_smwap_security.py and test_security_path.py)."""
    return Ingest(
        meters=METERS,
        tariffs=tariffs_from_config(Config()),
        tz="Europe/London",
        diag=diag or Diagnostics(),
        receiver=Receiver(policy=SecurityPolicy(min_level=0)),
    )


def elec(
    t: float,
    wh: int,
    watts: int | None = None,
    *,
    fcs_len: int = 4,
    rx_delay_s: float = 0.015,
    rssi_dbm: float = -60.0,
    fcs_ok: bool | None = None,
) -> RxFrame:
    values: list[PushValue] = [(ENERGY, wh, 0)]
    if watts is not None:
        values.append((POWER, watts, 0))
    return push_frame(
        ELEC_EUI,
        values,
        t,
        fcs_len=fcs_len,
        rx_delay_s=rx_delay_s,
        rssi_dbm=rssi_dbm,
        fcs_ok=fcs_ok,
    )


def handle(ingest: Ingest, frame: RxFrame) -> tuple[Batch | None, Snapshot]:
    result = ingest.handle(frame)
    assert result is not None, ingest.diag.snapshot()
    return result


def outcomes(diag: Diagnostics) -> dict[str, int]:
    return {name: diag.counter(name) for name in OUTCOMES if diag.counter(name)}


# --------------------------------------------------------------------------- accepted frames


def test_a_good_frame_yields_its_readings_a_batch_and_a_snapshot() -> None:
    diag = Diagnostics()
    ingest = make_ingest(diag)
    frame = elec(NOON, 12_345_678, watts=450, rx_delay_s=0.02, rssi_dbm=-71.26)

    batch, snap = handle(ingest, frame)

    assert batch is not None
    assert batch.readings == (
        Reading(
            ELEC_EUI, Utility.ELECTRICITY, "energy_import_wh", 12_345_678, 0, NOON, "1-0:1.8.0.255"
        ),
        Reading(ELEC_EUI, Utility.ELECTRICITY, "power_import_w", 450, 0, NOON, "1-0:1.7.0.255"),
    )
    assert batch.usage == ()  # the first register is only a baseline
    assert batch.meters == (
        MeterInfo(ELEC_EUI, Utility.ELECTRICITY, "Electricity meter", round((NOON + 0.02) * 1000)),
    )
    assert snap.readings == batch.readings
    assert snap.demand_w == 450
    assert snap.demand_cost_milli_per_h == 450 * 24.5  # 450 Wh in an hour at 24.50 p/kWh
    assert snap.last_frame_at == NOON + 0.02
    assert outcomes(diag) == {"meter.pushes": 1}
    assert diag.counter("smwap.frames_ok") == 1
    assert diag.state(f"meter.{ELEC_EUI}.rssi_dbm") == -71.3
    assert diag.state(f"meter.{ELEC_EUI}.last_seen") == round(NOON + 0.02, 3)


def test_the_next_push_books_the_register_delta_priced_to_the_minute_it_ends_in() -> None:
    ingest = make_ingest()
    handle(ingest, elec(NOON, 1_000_000))
    batch, snap = handle(ingest, elec(NOON + 10, 1_000_150))

    assert batch is not None
    (u,) = batch.usage
    assert (u.meter, u.utility, u.minute_ms) == (ELEC_EUI, Utility.ELECTRICITY, NOON * 1000)
    assert (u.amount, u.energy_wh, u.cost_milli) == (150, 150, 150 * 24.5)
    today = snap.today[Utility.ELECTRICITY]
    assert (today.amount, today.energy_wh, today.cost_milli) == (150, 150, 3675)
    assert today.standing_milli == ELEC_STANDING_MILLI
    assert today.last_reading_at == NOON + 10


def test_gas_is_converted_to_energy_with_the_bill_formula_and_priced_per_kwh() -> None:
    ingest = make_ingest()
    handle(ingest, push_frame(GAS_EUI, [(GAS, 4_321_000, -3)], NOON))  # 4321.000 m3
    batch, snap = handle(ingest, push_frame(GAS_EUI, [(GAS, 4_321_250, -3)], NOON + 1800))

    # kWh = m3 x 1.02264 x CV 39.5 / 3.6 (SI 1996/439): 0.25 m3 -> 2.805158 kWh
    energy_wh = Decimal("0.25") * Decimal("1.02264") * Decimal("39.5") / Decimal("3.6") * 1000
    assert batch is not None
    (u,) = batch.usage
    assert u.amount == 0.25
    assert u.energy_wh == pytest.approx(float(energy_wh), abs=1e-9)
    assert u.cost_milli == round(energy_wh * GAS_MILLI_PER_WH)  # 17504 milli-p
    assert u.minute_ms == (NOON + 1800 - 60) * 1000  # 12:29, ends 12:30
    today = snap.today[Utility.GAS]
    assert today.energy_wh == pytest.approx(float(energy_wh), abs=1e-9)
    assert today.standing_milli == GAS_STANDING_MILLI


def test_water_has_no_energy_and_is_priced_per_cubic_metre() -> None:
    ingest = make_ingest()
    handle(ingest, push_frame(WATER_EUI, [(WATER, 812_000, -3)], NOON))  # 812.000 m3
    batch, snap = handle(ingest, push_frame(WATER_EUI, [(WATER, 812_137, -3)], NOON + 1800))

    assert batch is not None
    (u,) = batch.usage
    assert u.amount == pytest.approx(0.137)
    assert u.energy_wh is None
    assert u.cost_milli == round(Decimal("0.137") * WATER_MILLI_PER_M3)  # 29455 milli-p
    assert snap.today[Utility.WATER].energy_wh is None
    assert snap.today[Utility.WATER].amount == pytest.approx(0.137)


def test_a_frame_the_radio_already_rejected_is_counted_and_dropped() -> None:
    diag = Diagnostics()
    assert make_ingest(diag).handle(elec(NOON, 1, fcs_ok=False)) is None
    assert outcomes(diag) == {"radio.fcs_error": 1}


# --------------------------------------------------------------------------- rejected frames


@pytest.mark.parametrize("fcs_len", [2, 4])
@pytest.mark.parametrize("bit", [0, 37, 200, -1])  # frame control, address, APDU, FCS
def test_a_flipped_bit_fails_the_software_fcs(fcs_len: int, bit: int) -> None:
    diag = Diagnostics()
    good = elec(NOON, 1_000, fcs_len=fcs_len)
    psdu = bytearray(good.psdu)
    bit %= len(psdu) * 8
    psdu[bit // 8] ^= 0x80 >> (bit % 8)
    frame = rx_frame(bytes(psdu), NOON, fcs_len=fcs_len)

    assert make_ingest(diag).handle(frame) is None
    assert outcomes(diag) == {"smwap.fcs_error": 1}


def _with_fcs(body: bytes, fcs_len: int = 4) -> bytes:
    return body + compute_fcs(body, fcs_len)


@pytest.mark.parametrize(
    ("psdu", "fcs_len"),
    [
        (b"", 4),  # nothing at all
        (b"\x41", 2),  # shorter than its FCS
        (b"\x41\x88\x00", 4),  # shorter than its FCS
        (_with_fcs(b"\x41"), 4),  # a valid FCS around half a frame control
        (_with_fcs(b"\x41\xcc\x05\x1d\x1d"), 4),  # header cut inside the destination address
        (_with_fcs(b"\x47\x88\x05"), 4),  # frame type 7 (reserved)
    ],
    ids=["empty", "1-octet", "3-octet", "fc-cut", "addr-cut", "reserved-type"],
)
def test_truncated_or_garbage_psdus_are_frame_errors(psdu: bytes, fcs_len: int) -> None:
    diag = Diagnostics()
    assert make_ingest(diag).handle(rx_frame(psdu, NOON, fcs_len=fcs_len)) is None
    assert outcomes(diag) == {"smwap.frame_error": 1}


def test_a_frame_from_an_unpaired_meter_is_ignored() -> None:
    diag = Diagnostics()
    frame = push_frame(STRANGER, [(ENERGY, 5_000, 0)], NOON)
    assert make_ingest(diag).handle(frame) is None
    assert outcomes(diag) == {"smwap.unknown_source": 1}


@pytest.mark.parametrize(
    "mac",
    [
        MacFrame.ack(7),
        MacFrame.data(
            src=Address.from_eui64(ELEC_EUI),
            dst=Address.short(1),
            dst_pan=0x1D1D,
            seq=1,
            payload=b"\x04",
            frame_type=FrameType.COMMAND,
        ),  # data request
    ],
    ids=["ack", "command"],
)
def test_frames_that_are_not_data_are_counted_as_such(mac: MacFrame) -> None:
    diag = Diagnostics()
    assert make_ingest(diag).handle(rx_frame(build_mpdu(mac, 4), NOON)) is None
    assert outcomes(diag) == {"smwap.not_data": 1}


def test_a_data_frame_without_an_extended_source_cannot_be_attributed() -> None:
    diag = Diagnostics()
    mac = MacFrame.data(
        src=Address.short(0x0042), dst=Address.short(1), dst_pan=0x1D1D, seq=1, payload=b"\x0f"
    )
    assert make_ingest(diag).handle(rx_frame(build_mpdu(mac, 4), NOON)) is None
    assert outcomes(diag) == {"smwap.no_source_address": 1}


@pytest.mark.parametrize(
    ("payload", "counter"),
    [
        (b"", "meter.decode_error"),
        (b"hello, meter", "meter.decode_error"),
        # general-glo-ciphering from a meter whose DLMS keys we do not have
        (bytes.fromhex("db08") + bytes(30), "meter.no_key"),
        (bytes.fromhex("0f00000001") + bytes([12]) + bytes(5), "meter.decode_error"),
    ],
    ids=["empty", "text", "ciphered", "truncated"],
)
def test_a_payload_that_is_not_a_dlms_push_is_a_decode_error(payload: bytes, counter: str) -> None:
    diag = Diagnostics()
    mac = MacFrame.data(
        src=Address.from_eui64(ELEC_EUI),
        dst=Address.short(1),
        dst_pan=0x1D1D,
        seq=1,
        payload=payload,
    )
    assert make_ingest(diag).handle(rx_frame(build_mpdu(mac, 4), NOON)) is None
    assert outcomes(diag) == {counter: 1}
    assert diag.counter("smwap.frames_ok") == 1  # the frame itself was fine


# --------------------------------------------------------------------------- register deltas


def test_a_duplicate_or_older_push_books_nothing() -> None:
    diag = Diagnostics()
    ingest = make_ingest(diag)
    handle(ingest, elec(NOON, 1_000))
    handle(ingest, elec(NOON + 10, 1_040))
    again, snap = handle(ingest, elec(NOON + 10, 1_040, rx_delay_s=0.5))  # repeated
    older, _ = handle(ingest, elec(NOON, 1_000, rx_delay_s=11))  # late, old

    assert again is not None and older is not None
    assert again.usage == () and older.usage == ()
    assert diag.counter("meter.duplicate_or_old") == 2
    assert snap.today[Utility.ELECTRICITY].amount == 40
    # The baseline stays at the newest push: the next one books only what is new.
    batch, snap = handle(ingest, elec(NOON + 20, 1_045))
    assert batch is not None and [u.amount for u in batch.usage] == [5]
    assert snap.today[Utility.ELECTRICITY].amount == 45


def test_a_register_that_goes_backwards_starts_a_new_baseline() -> None:
    diag = Diagnostics()
    ingest = make_ingest(diag)
    handle(ingest, elec(NOON, 50_000))
    handle(ingest, elec(NOON + 10, 50_020))
    reset, _ = handle(ingest, elec(NOON + 20, 3))  # a replaced meter
    after, snap = handle(ingest, elec(NOON + 30, 10))

    assert reset is not None and after is not None
    assert reset.usage == ()
    assert [u.amount for u in after.usage] == [7]
    assert diag.counter("meter.register_reset") == 1
    assert snap.today[Utility.ELECTRICITY].amount == 27
    assert snap.today[Utility.ELECTRICITY].cost_milli >= 0


def test_usage_is_booked_to_the_minute_holding_the_interval_end() -> None:
    ingest = make_ingest()
    handle(ingest, elec(NOON - 10, 100))
    on_the_minute, _ = handle(ingest, elec(NOON, 110))  # covers 11:59:50-12:00:00
    after, _ = handle(ingest, elec(NOON + 10, 130))  # covers 12:00:00-12:00:10

    assert on_the_minute is not None and after is not None
    assert [u.minute_ms for u in on_the_minute.usage] == [(NOON - 60) * 1000]
    assert [u.minute_ms for u in after.usage] == [NOON * 1000]


# --------------------------------------------------------------------------- local days


@pytest.mark.parametrize("day", [dt.date(2025, 1, 15), dt.date(2025, 7, 15)], ids=["GMT", "BST"])
def test_a_push_at_local_midnight_belongs_to_the_day_before(day: dt.date) -> None:
    midnight = dt.datetime.combine(day, dt.time(), LONDON).timestamp()
    ingest = make_ingest()
    handle(ingest, elec(midnight - 20, 7_000))
    handle(ingest, elec(midnight - 10, 7_010))
    _, at_midnight = handle(ingest, elec(midnight, 7_030))
    _, after = handle(ingest, elec(midnight + 10, 7_070))

    before = at_midnight.today[Utility.ELECTRICITY]
    assert (before.amount, before.cost_milli) == (30, round(30 * ELEC_MILLI_PER_WH))
    today = after.today[Utility.ELECTRICITY]
    assert (today.amount, today.energy_wh, today.cost_milli) == (40, 40, 980)
    assert today.standing_milli == ELEC_STANDING_MILLI  # one day's, not two
    assert after.today[Utility.GAS].standing_milli == GAS_STANDING_MILLI
    assert after.today[Utility.GAS].amount == 0


def test_the_day_rolls_over_without_frames_and_resets_totals() -> None:
    ingest = make_ingest()
    handle(ingest, elec(local(2025, 1, 15, 23, 0), 100))
    handle(ingest, elec(local(2025, 1, 15, 23, 30), 400))
    handle(ingest, push_frame(GAS_EUI, [(GAS, 1_000, -3)], local(2025, 1, 15, 22, 0)))
    handle(ingest, push_frame(GAS_EUI, [(GAS, 1_500, -3)], local(2025, 1, 15, 23, 30)))

    assert ingest.roll_day(local(2025, 1, 16, 0, 0)) is None  # still the 15th
    snap = ingest.roll_day(local(2025, 1, 16, 0, 0, 5))
    assert snap is not None
    assert {u: (t.amount, t.cost_milli) for u, t in snap.today.items()} == {
        Utility.ELECTRICITY: (0, 0),
        Utility.GAS: (0, 0),
        Utility.WATER: (0, 0),
    }
    assert {u: t.standing_milli for u, t in snap.today.items()} == {
        Utility.ELECTRICITY: ELEC_STANDING_MILLI,
        Utility.GAS: GAS_STANDING_MILLI,
        Utility.WATER: 0,
    }
    assert ingest.roll_day(local(2025, 1, 16, 0, 0, 10)) is None  # once per day


@pytest.mark.parametrize(("day", "hours"), [(30, 23), (26, 25)], ids=["spring", "autumn"])
def test_a_dst_day_ends_at_the_next_local_midnight(day: int, hours: int) -> None:
    # 2025-03-30 has 23 hours and 2025-10-26 has 25: a day is not 86 400 s long.
    month = 3 if day == 30 else 10
    end = local(2025, month, day + 1)
    assert end - local(2025, month, day) == hours * 3600  # the premise
    ingest = make_ingest()
    handle(ingest, elec(end - 10, 1_000))  # starts the DST day
    _, last = handle(ingest, elec(end, 1_004))  # the DST day's last push
    _, snap = handle(ingest, elec(end + 10, 1_010))
    assert last.today[Utility.ELECTRICITY].amount == 4
    assert snap.today[Utility.ELECTRICITY].amount == 6


# --------------------------------------------------------------------------- resume


def test_resume_restores_baselines_today_demand_and_last_frame(tmp_path: Path) -> None:
    store = Store(tmp_path / "ihd.db", diag=Diagnostics())
    first = make_ingest()
    frames = [
        elec(local(2025, 1, 15, 23, 50), 20_000, watts=300),
        elec(local(2025, 1, 16, 0, 10), 20_100, watts=320),
        elec(local(2025, 1, 16, 0, 20), 20_250, watts=2_400, rx_delay_s=0.125),
        push_frame(GAS_EUI, [(GAS, 9_000, -3)], local(2025, 1, 15, 23, 45)),
        push_frame(GAS_EUI, [(GAS, 9_100, -3)], local(2025, 1, 16, 0, 15)),
    ]
    for frame in sorted(frames, key=lambda f: f.info.timestamp):
        batch, _ = handle(first, frame)
        assert batch is not None
        store.write_now(batch)

    restarted = make_ingest()
    with store.reader() as reader:
        restarted.resume(reader, local(2025, 1, 16, 0, 25))
    snap = restarted.snapshot()

    gas_wh = Decimal("0.1") * Decimal("1.02264") * Decimal("39.5") / Decimal("3.6") * 1000
    assert snap.today[Utility.ELECTRICITY].amount == 250
    assert snap.today[Utility.ELECTRICITY].cost_milli == 250 * 24.5
    assert snap.today[Utility.GAS].energy_wh == pytest.approx(float(gas_wh), abs=1e-6)
    assert snap.today[Utility.GAS].standing_milli == GAS_STANDING_MILLI
    assert snap.demand_w == 2_400
    assert snap.last_frame_at == local(2025, 1, 16, 0, 20) + 0.125
    # Deltas continue from the stored registers, not from a new baseline.
    batch, snap = handle(restarted, elec(local(2025, 1, 16, 0, 30), 20_260))
    assert batch is not None and [u.amount for u in batch.usage] == [10]
    assert snap.today[Utility.ELECTRICITY].amount == 260
    store.close()


def test_resume_on_a_later_day_keeps_baselines_but_not_totals(tmp_path: Path) -> None:
    store = Store(tmp_path / "ihd.db", diag=Diagnostics())
    first = make_ingest()
    for t, wh in ((local(2025, 1, 15, 20, 0), 500), (local(2025, 1, 15, 21, 0), 900)):
        batch, _ = handle(first, elec(t, wh))
        assert batch is not None
        store.write_now(batch)

    restarted = make_ingest()
    with store.reader() as reader:
        restarted.resume(reader, local(2025, 1, 17, 9, 0))
    assert restarted.snapshot().today[Utility.ELECTRICITY].amount == 0
    batch, snap = handle(restarted, elec(local(2025, 1, 17, 9, 0), 5_900))
    # 5 kWh over 36 hours of silence (21:00 on the 15th to 09:00 on the 17th): a gap, so it
    # is spread over its 2,160 minutes, not booked as a spike at 09:00. Today holds the 9
    # hours since midnight: 9/36 of it.
    assert batch is not None and len(batch.usage) == 36 * 60
    assert sum(Decimal(str(u.amount)) for u in batch.usage) == 5_000
    assert snap.today[Utility.ELECTRICITY].amount == pytest.approx(1_250, abs=0.01)
    store.close()


def test_resume_from_an_empty_store_starts_clean(tmp_path: Path) -> None:
    store = Store(tmp_path / "ihd.db", diag=Diagnostics())
    ingest = make_ingest()
    with store.reader() as reader:
        ingest.resume(reader, NOON)
    snap = ingest.snapshot()
    assert (snap.demand_w, snap.last_frame_at) == (None, None)
    assert snap.today[Utility.ELECTRICITY].amount == 0
    store.close()


# --------------------------------------------------------------------------- robustness


@settings(max_examples=400, deadline=None)
@given(psdu=st.binary(max_size=160), fcs_len=st.sampled_from([2, 4]), framed=st.booleans())
def test_arbitrary_octets_never_raise_out_of_handle(
    psdu: bytes, fcs_len: int, framed: bool
) -> None:
    """Random octets, with a valid FCS appended half the time to get past the CRC."""
    diag = Diagnostics()
    if framed:
        psdu = _with_fcs(psdu, fcs_len)
    make_ingest(diag).handle(rx_frame(psdu, NOON, fcs_len=fcs_len))
    assert sum(outcomes(diag).values()) == 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=200))
def test_arbitrary_payloads_from_a_paired_meter_never_raise(payload: bytes) -> None:
    diag = Diagnostics()
    mac = MacFrame.data(
        src=Address.from_eui64(ELEC_EUI),
        dst=Address.short(1),
        dst_pan=0x1D1D,
        seq=1,
        payload=payload,
    )
    make_ingest(diag).handle(rx_frame(build_mpdu(mac, 4), NOON))
    assert sum(outcomes(diag).values()) == 1


_FIRST = dt.datetime(1, 1, 1, tzinfo=dt.UTC).timestamp()
_LAST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp()


@settings(max_examples=300, deadline=None)
@given(t=st.floats(_FIRST, _LAST) | st.sampled_from([_FIRST, _LAST, 0.0, -1.0]))
def test_a_push_with_any_meter_clock_never_raises(t: float) -> None:
    """A meter clock anywhere a COSEM date-time can express is dropped or accepted."""
    diag = Diagnostics()
    ingest = make_ingest(diag)
    ingest.handle(elec(t, 1_000))
    ingest.handle(elec(NOON, 1_010))  # and the ingest still works after it
    assert sum(outcomes(diag).values()) == 2
    assert ingest.snapshot().today[Utility.ELECTRICITY].standing_milli == ELEC_STANDING_MILLI


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC),  # the last day datetime can hold
        dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.UTC),  # before London's LMT year 1
    ],
    ids=["9999", "0001"],
)
def test_a_meter_clock_at_the_end_of_time_is_dropped_not_a_crash(when: dt.datetime) -> None:
    diag = Diagnostics()
    ingest = make_ingest(diag)
    assert ingest.handle(elec(when.timestamp(), 1_000)) is None
    assert outcomes(diag) == {"meter.bad_timestamp": 1}
    handle(ingest, elec(NOON, 1_000))
    _, snap = handle(ingest, elec(NOON + 10, 1_003))
    assert snap.today[Utility.ELECTRICITY].amount == 3


# --------------------------------------------------------------------------- DLMS ciphering


TITLE = bytes.fromhex("4B464D1020000001")
EK = bytes(range(16))
AK = bytes(range(16, 32))


def ciphered_elec(t: float, wh: int, counter: int, *, key: bytes = EK) -> RxFrame:
    """An electricity push in general-glo-ciphering, as a meter that gave us its DLMS keys
    at pairing would send it."""
    from ihd.meter.cipher import DlmsKeys, cipher_apdu
    from ihd.meter.dlms import build_push

    apdu = build_push([(ENERGY, wh, 0)], timestamp=t, invoke_id=counter & 0xFFFFFF)
    payload = cipher_apdu(
        apdu, keys=DlmsKeys(key, AK), system_title=TITLE, invocation_counter=counter
    )
    mac = MacFrame.data(
        src=Address.from_eui64(ELEC_EUI),
        dst=Address.short(1),
        dst_pan=0x1D1D,
        seq=counter,
        payload=payload,
    )
    return rx_frame(build_mpdu(mac, 4), t + 0.015)


def test_ciphered_pushes_use_the_paired_keys_and_commit_their_invocation_counter() -> None:
    from ihd.meter.cipher import DlmsKeys

    diag = Diagnostics()
    ingest = make_ingest(diag)
    ingest.dlms_keys = {ELEC_EUI: DlmsKeys(EK, AK, system_title=TITLE)}
    first = ingest.handle(ciphered_elec(NOON, 1000, 7))
    assert first is not None and first[0] is not None
    assert first[0].state == {"dlms.ic." + TITLE.hex().upper(): "7"}  # with the readings
    second = ingest.handle(ciphered_elec(NOON + 10, 1002, 8))
    assert second is not None and second[0] is not None and second[0].usage[0].amount == 2
    assert ingest.handle(ciphered_elec(NOON + 20, 1004, 8)) is None  # the same again
    assert ingest.handle(ciphered_elec(NOON + 30, 1006, 5)) is None  # an older counter
    assert ingest.handle(ciphered_elec(NOON + 40, 1008, 9, key=bytes(16))) is None
    assert outcomes(diag) == {
        "meter.pushes": 2,
        "meter.duplicate": 1,
        "meter.replay": 1,
        "meter.auth_failure": 1,
    }


# --------------------------------------------------------------------------- register wrap


def test_a_register_that_wraps_books_the_energy_across_the_wrap() -> None:
    diag = Diagnostics()
    ingest = make_ingest(diag)
    ingest.handle(elec(NOON, 2**32 - 3))  # a double-long-unsigned register about to wrap
    out = ingest.handle(elec(NOON + 10, 4))
    assert out is not None and out[0] is not None
    assert [u.amount for u in out[0].usage] == [7]  # 3 to the top, then 0..4
    assert diag.counter("meter.register_wrap") == 1 and diag.counter("meter.register_reset") == 0


def test_unknown_obis_codes_are_stored_raw_and_named_in_diagnostics() -> None:
    import dataclasses

    odd = dataclasses.replace(ENERGY, obis=(1, 0, 99, 97, 0, 255))  # in no table of ours
    diag = Diagnostics()
    out = make_ingest(diag).handle(push_frame(ELEC_EUI, [(ENERGY, 5, 0), (odd, 42, 0)], NOON))
    assert out is not None and out[0] is not None
    raw = [r for r in out[0].readings if r.obis == "1-0:99.97.0.255"]
    assert len(raw) == 1 and raw[0].raw == 42  # kept, not dropped
    assert diag.counter("meter.unknown_obis") == 1
    assert diag.state(f"meter.{ELEC_EUI}.unknown_obis") == "1-0:99.97.0.255"
