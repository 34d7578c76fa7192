"""ihd.meter.registers: deltas with wrap and reset, duplicates and gaps, clock jumps and
DST, and spreading a delta over minutes. Expected numbers are worked by hand here."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ihd.meter.registers import (
    DOUBLE_LONG_UNSIGNED_MODULUS,
    Sample,
    classify_clock,
    classify_interval,
    register_delta,
    spread,
)


def s(ts: float, raw: int, scaler: int = 0) -> Sample:
    return Sample(ts, raw, scaler)


def test_baseline_ok_duplicate_older_conflict() -> None:
    assert register_delta(None, s(10, 5)).kind == "baseline"
    d = register_delta(s(10, 5), s(20, 12))
    assert (d.kind, d.amount, d.keep, d.books) == ("ok", Decimal(7), True, True)
    assert register_delta(s(10, 5), s(20, 5)).amount == 0  # no use is still a delta
    d = register_delta(s(10, 5), s(10, 5))
    assert (d.kind, d.books, d.keep) == ("duplicate", False, False)
    assert register_delta(s(10, 5), s(10, 6)).kind == "conflict"
    d = register_delta(s(20, 5), s(10, 3))
    assert (d.kind, d.books, d.keep) == ("older", False, False)


def test_scaler_changes_are_exact() -> None:
    # 12.345 kWh (raw 12345, scaler 0 in Wh) -> 1235 daWh (raw 1235, scaler 1): +5 Wh.
    assert register_delta(s(0, 12345, 0), s(10, 1235, 1)).amount == Decimal(5)
    # 100.000 m3 at scaler -3 -> 100.25 m3 at scaler -2: +0.250
    assert register_delta(s(0, 100000, -3), s(10, 10025, -2)).amount == Decimal("0.250")


def test_wrap_needs_a_modulus_and_a_short_distance() -> None:
    # An 8-digit register: 99,999,990 -> 5 is 15 units across the wrap.
    d = register_delta(s(0, 99_999_990), s(10, 5), modulus=10**8)
    assert (d.kind, d.amount) == ("wrap", Decimal(15))
    # The same drop without a modulus is a reset: a new baseline, no negative spike.
    d = register_delta(s(0, 99_999_990), s(10, 5))
    assert (d.kind, d.books, d.keep) == ("reset", False, True)
    # 60,000,000 -> 5 would be a 40,000,005-unit wrap: a replaced meter, not a wrap.
    assert register_delta(s(0, 60_000_000), s(10, 5), modulus=10**8).kind == "reset"
    # double-long-unsigned wraps at 2**32; scaled registers wrap in raw units.
    m = DOUBLE_LONG_UNSIGNED_MODULUS
    d = register_delta(s(0, m - 2, -3), s(10, 1, -3), modulus=m)
    assert (d.kind, d.amount) == ("wrap", Decimal("0.003"))
    assert register_delta(s(0, m - 2), s(10, 1), modulus=m, max_wrap=2).kind == "reset"
    assert register_delta(s(0, m - 2, 0), s(10, 1, 1), modulus=m).kind == "reset"  # scaler changed


def test_implausible_rise_is_a_new_baseline() -> None:
    # A meter swapped for one reading 50 MWh higher: not 50 MWh used in 10 s.
    d = register_delta(s(0, 1000), s(10, 50_001_000), max_step=Decimal(100_000))
    assert (d.kind, d.books, d.keep) == ("implausible", False, True)
    assert register_delta(s(0, 1000), s(10, 1500), max_step=Decimal(100_000)).kind == "ok"


@given(
    st.integers(0, 10**9),
    st.integers(-5, 3),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=20),
)
def test_deltas_sum_to_the_register_difference(start: int, scaler: int, steps: list[int]) -> None:
    prev = s(0, start, scaler)
    total = Decimal(0)
    raw = start
    for i, step in enumerate(steps, 1):
        raw += step
        d = register_delta(prev, s(i * 10, raw, scaler))
        assert d.kind == "ok" and d.amount is not None
        total += d.amount
        prev = s(i * 10, raw, scaler)
    assert total == Decimal(raw - start).scaleb(scaler)


def test_intervals_and_gaps() -> None:
    assert classify_interval(None, 10, 10).kind == "first"
    assert classify_interval(10, 20, 10).kind == "ok"
    assert classify_interval(10, 24, 10).kind == "ok"  # jitter under 1.5 periods
    gap = classify_interval(10, 60, 10)
    assert (gap.kind, gap.missed) == ("gap", 4)  # 20, 30, 40, 50 never came
    assert classify_interval(10, 10, 10).kind == "duplicate"
    assert classify_interval(20, 10, 10).kind == "older"


def test_clock_offsets() -> None:
    assert classify_clock(None, 3.0) == "first"
    assert classify_clock(3.0, 5.0) == "ok"
    assert classify_clock(3.0, 3603.0) == "dst_shift"  # local time sent as UTC, spring
    assert classify_clock(3.0, -3590.0) == "dst_shift"  # and autumn
    assert classify_clock(3.0, 600.0) == "jump"  # clock set by 10 minutes
    assert classify_clock(3.0, 300.0, tolerance_s=400) == "ok"


def test_spread_over_minutes() -> None:
    # 90 Wh used from 12:00:30 to 12:02:00: half a minute, then a whole one.
    parts = spread(Decimal(90), 43230.0, 43320.0)
    assert parts == [(43200, Decimal("30.000000")), (43260, Decimal("60.000000"))]
    assert sum(p for _, p in parts) == 90
    # Inside one bucket; an end on a boundary belongs to the bucket before it.
    assert spread(Decimal(5), 43210.0, 43260.0) == [(43200, Decimal(5))]
    parts = spread(Decimal("0.007"), 0.0, 180.0)
    assert [b for b, _ in parts] == [0, 60, 120]
    assert sum(p for _, p in parts) == Decimal("0.007")
    with pytest.raises(ValueError):
        spread(Decimal(1), 10.0, 10.0)
    with pytest.raises(ValueError):
        spread(Decimal(1), 0.0, 10.0, bucket_s=0)


@given(
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    st.floats(0, 10**6),
    st.floats(0.5, 7200),
)
def test_spread_is_exact(amount: Decimal, start: float, length: float) -> None:
    parts = spread(amount, start, start + length)
    assert sum(p for _, p in parts) == amount
    assert all(b % 60 == 0 for b, _ in parts)
    assert [b for b, _ in parts] == sorted({b for b, _ in parts})
