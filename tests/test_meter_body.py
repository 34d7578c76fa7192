"""ihd.meter.body and the OBIS table additions: layouts built by hand from the A-XDR
rules (Green Book) and the Kaifa list definitions, types dlms-cosem cannot read, and the
registers this issue adds (per-phase power, rates, prepayment, status)."""

from __future__ import annotations

import contextlib
import struct
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ihd.meter import (
    REGISTERS,
    DlmsKeys,
    InvocationGuard,
    MeterDecodeError,
    Push,
    Utility,
    build_push,
    cipher_apdu,
    decode_push,
    resolve,
)
from ihd.meter.link import hdlc_frame

HEADER = bytes.fromhex("0f0000000100")  # invoke id 1, no date-time


def decode(body: str, utility: Utility = Utility.ELECTRICITY) -> Push:
    return decode_push(HEADER + bytes.fromhex(body), meter="M", utility=utility, received_at=9.0)


def u32(n: int) -> str:
    return "06" + n.to_bytes(4, "big").hex()


def text(s: str) -> str:
    return "09" + bytes((len(s),)).hex() + s.encode().hex()


def test_kaifa_single_phase_lists() -> None:
    # Kaifa KFM_001 single-phase list 2: id, meter id, type, P+, P-, Q+, Q-, IL1, UL1
    # (amshan kaifa.py: the three-phase list without IL2/IL3 and UL2/UL3).
    head = text("KFM_001") + text("6970631402614476") + text("MA105H2E")
    l2 = head + u32(1200) + u32(0) + u32(0) + u32(300) + u32(5123) + u32(2301)
    push = decode("0209" + l2)
    assert push.layout == "kaifa_list2_1p"
    v = {r.obis: r.value for r in push.readings}
    assert v == {
        "1-0:1.7.0.255": 1200,
        "1-0:2.7.0.255": 0,
        "1-0:3.7.0.255": 0,
        "1-0:4.7.0.255": 300,
        "1-0:31.7.0.255": Decimal("5.123"),
        "1-0:32.7.0.255": Decimal("230.1"),
    }
    clock = "090c07e4011906" + "0e000aff800000"  # 2020-01-25 14:00:10, no deviation
    l3 = l2 + clock + u32(1000) + u32(2) + u32(3) + u32(4)
    push = decode("020e" + l3)
    assert push.layout == "kaifa_list3_1p"
    assert {r.obis: r.value for r in push.readings}["1-0:1.8.0.255"] == 1000
    assert push.meter_clock == push.timestamp == 1579960810.0


def test_floats_bcd_booleans_and_enums() -> None:
    f32 = "17" + struct.pack(">f", 49.5).hex()
    f64 = "18" + struct.pack(">d", -0.125).hex()
    body = (
        "0204"
        "0203"
        "0906"
        "01000e0700ff" + f32 + "02020f00162c"  # 49.5 Hz
        "0203"
        "0906"
        "0100100700ff" + f64 + "02020f03161b"  # -0.125 kW = -125 W
        "0202"
        "0906"
        "00000e0000ff"
        "0d07"  # BCD 7, an unknown abstract code
        "0202"
        "0906"
        "0000600e00ff"
        "1602"  # enum: tariff rate 2
    )
    push = decode(body)
    v = {r.obis: (r.quantity, r.value) for r in push.readings}
    assert v["1-0:14.7.0.255"] == ("frequency_hz", Decimal("49.5"))
    assert v["1-0:16.7.0.255"] == ("power_net_w", Decimal("-125"))
    assert v["0-0:96.14.0.255"] == ("active_rate_code", 2)
    assert v["0-0:14.0.0.255"][1] == 7
    assert push.unknown == ("0-0:14.0.0.255",)


def test_nan_float_and_nested_values_are_skipped_not_dropped_silently() -> None:
    nan = "17" + struct.pack(">f", float("nan")).hex()
    body = "0202020209060100010700ff" + nan + "020209060100020700ff0200"
    push = decode(body)
    assert push.readings == ()
    assert push.skipped == ("1-0:1.7.0.255", "1-0:2.7.0.255")


def test_visible_strings_may_be_latin1_and_utf8() -> None:
    body = "0202020209060000600100ff0a03c5c6d80202090600002a0000ff0c03e282ac"
    push = decode(body)
    assert dict(push.texts) == {"0-0:96.1.0.255": "ÅÆØ", "0-0:42.0.0.255": "€"}


def test_descriptor_layout_errors() -> None:
    with pytest.raises(MeterDecodeError, match="descriptor entry 0"):
        decode("0202160101020203" + "00" * 12)
    with pytest.raises(MeterDecodeError, match="octets after the push body"):
        decode("020216010101020200030100010700ff02060000000100")


def test_table_additions() -> None:
    def q(obis: tuple[int, int, int, int, int, int]) -> str:
        return REGISTERS[obis].quantity

    assert q((1, 0, 21, 7, 0, 255)) == "power_import_l1_w"
    assert q((1, 0, 62, 7, 0, 255)) == "power_export_l3_w"
    assert q((1, 0, 2, 8, 3, 255)) == "energy_export_rate3_wh"
    assert q((1, 0, 90, 7, 0, 255)) == "current_sum_a"
    assert q((7, 0, 13, 0, 0, 255)) == "volume_corrected_m3"
    assert q((9, 0, 1, 0, 0, 255)) == "volume_hot_m3"
    assert q((0, 0, 19, 10, 0, 255)) == "prepay_credit_currency"
    assert q((0, 0, 19, 10, 1, 255)) == "prepay_emergency_credit_currency"
    assert q((0, 0, 19, 20, 0, 255)) == "prepay_debt_currency"
    assert q((0, 0, 96, 5, 0, 255)) == "status_code"
    # Abstract registers take the device's utility; medium-coded ones keep their own.
    assert resolve((0, 0, 19, 10, 0, 255), -2, 10).utility is None
    assert resolve((7, 0, 13, 0, 0, 255), -3, 14).utility is Utility.GAS
    # No channel fallback for abstract codes: relay 1 of a disconnector is not relay 0.
    assert resolve((0, 1, 96, 3, 10, 255), 0, None).register is None
    assert resolve((1, 1, 21, 7, 0, 255), 0, 27).quantity == "power_import_l1_w"


def test_prepayment_push_from_a_gas_meter() -> None:
    apdu = build_push(
        [((0, 0, 19, 10, 0, 255), 1234, -2), ((0, 0, 19, 20, 0, 255), 500, -2)],
        timestamp=1_700_000_000,
        invoke_id=3,
    )
    push = decode_push(apdu, meter="G", utility=Utility.GAS, received_at=0)
    got = {r.quantity: (r.utility, r.value, r.unit) for r in push.readings}
    assert got["prepay_credit_currency"] == (Utility.GAS, Decimal("12.34"), "currency")
    assert got["prepay_debt_currency"] == (Utility.GAS, Decimal("5.00"), "currency")


def test_meter_clock_in_flat_and_entry_layouts() -> None:
    clock = "090c07e80101010c000000000000"  # 2024-01-01 12:00:00 UTC
    flat = "020409060000010000ff" + clock + "09060100010800ff" + u32(5)
    push = decode(flat)
    assert push.meter_clock == push.timestamp == 1704110400.0
    # A bare 12-octet meter number is text, not a clock.
    flat2 = "0203" + text("181220000009") + "09060100010800ff" + u32(5)
    push = decode(flat2)
    assert push.meter_clock is None and push.timestamp == 9.0
    assert push.texts == (("", "181220000009"),)


# ------------------------------------------------------------------------------- fuzzing

KEYS = DlmsKeys(bytes(16), bytes(range(16)))
TITLE = b"KFM\x00\x00\x00\x00\x01"
SEED = build_push(
    [((1, 0, 1, 8, 0, 255), 1, 0), ((1, 0, 1, 7, 0, 255), 2, 0)], timestamp=0, invoke_id=0
)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from(["raw", "hdlc", "ggc", "ggc_enc"]))
def test_any_bytes_with_keys_and_guard_raise_only_meter_decode_error(
    data: bytes, wrap: str
) -> None:
    if wrap == "hdlc":
        data = hdlc_frame(b"\xe6\xe7\x00" + data[:1500])
    elif wrap.startswith("ggc"):
        sc = 0x20 if wrap == "ggc_enc" else 0x30
        data = cipher_apdu(
            HEADER + data, keys=KEYS, system_title=TITLE, invocation_counter=1, security_control=sc
        )
    with contextlib.suppress(MeterDecodeError):
        decode_push(
            data,
            meter="M",
            utility=Utility.ELECTRICITY,
            received_at=0,
            keys=KEYS,
            guard=InvocationGuard(),
        )


def test_seed_is_valid() -> None:
    assert (
        len(decode_push(SEED, meter="M", utility=Utility.ELECTRICITY, received_at=0).readings) == 2
    )


def test_one_quantity_twice_keeps_the_second_raw() -> None:
    body = "0202020209060100010800ff" + u32(10) + "020209060101010800ff" + u32(11)
    push = decode(body)
    assert [r.quantity for r in push.readings] == ["energy_import_wh", "raw_1_1_1_8_0_255_unknown"]
    assert push.unknown == ("1-1:1.8.0.255",)
