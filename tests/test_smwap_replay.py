"""Replay protection: the counter rule, duplicates versus replays, and marks that survive a
restart only through the store."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd.smwap.replay import MAX_FRAME_COUNTER, STATE_PREFIX, ReplayGuard, state_key
from ihd.smwap.security import SecurityError

ELEC = 0x0011223344556677
GAS = 0xACDE480000000001
K1 = "1:01"


def _refused(
    guard: ReplayGuard, src: int, counter: int | None, seq: int | None = None, kid: str = K1
) -> str:
    with pytest.raises(SecurityError) as e:
        guard.check(src, kid, counter, seq)
    with pytest.raises(SecurityError):
        guard.accept(src, kid, counter, seq)
    return e.value.counter


def test_increasing_counters_are_accepted_equal_and_lower_refused() -> None:
    g = ReplayGuard()
    for c in (0, 1, 5, 1000):
        g.check(ELEC, K1, c, seq=c & 0xFF)
        g.accept(ELEC, K1, c, seq=c & 0xFF)
        assert g.mark(ELEC, K1) == c
    assert _refused(g, ELEC, 1000, seq=7) == "replay"  # same counter, another seq
    assert _refused(g, ELEC, 999) == "replay"
    assert _refused(g, ELEC, 0) == "replay"
    assert g.mark(ELEC, K1) == 1000
    g.accept(ELEC, K1, 1001)


def test_counter_ffffffff_and_suppressed_counters_are_never_valid() -> None:
    g = ReplayGuard()
    assert _refused(g, ELEC, 0xFFFFFFFF) == "replay"
    assert _refused(g, ELEC, None) == "replay"
    assert g.mark(ELEC, K1) is None
    g.accept(ELEC, K1, MAX_FRAME_COUNTER)
    assert MAX_FRAME_COUNTER == 0xFFFFFFFE
    assert _refused(g, ELEC, 0xFFFFFFFF) == "replay"


def test_retransmission_is_a_duplicate_not_a_replay() -> None:
    g = ReplayGuard()
    g.accept(ELEC, K1, 41, seq=200)
    g.accept(ELEC, K1, 42, seq=201)
    assert _refused(g, ELEC, 42, seq=201) == "duplicate"  # the MAC retry of the last frame
    assert _refused(g, ELEC, 41, seq=200) == "replay"  # an older frame
    assert _refused(g, ELEC, 42, seq=5) == "replay"  # same counter, different frame
    g.accept(GAS, K1, 7, seq=None)  # sequence number suppressed (2015)
    assert _refused(g, GAS, 7, seq=None) == "duplicate"


def test_sources_and_keys_are_independent() -> None:
    g = ReplayGuard()
    g.accept(ELEC, K1, 100)
    g.accept(GAS, K1, 5)  # far below ELEC's mark: another source
    g.accept(ELEC, "0", 3)  # another key identifier of the same source
    assert (g.mark(ELEC, K1), g.mark(GAS, K1), g.mark(ELEC, "0")) == (100, 5, 3)
    assert _refused(g, GAS, 5) == "duplicate"
    assert _refused(g, ELEC, 3, kid="0") == "duplicate"
    g.check(GAS, "0", 0)


def test_pending_committed_and_load_round_trip() -> None:
    g = ReplayGuard()
    assert g.pending() == {}
    g.accept(ELEC, K1, 10)
    g.accept(GAS, "2:AABBCCDD:03", 4)
    pending = g.pending()
    assert pending == {
        "smwap.fc.0011223344556677.1:01": "10",
        "smwap.fc.ACDE480000000001.2:AABBCCDD:03": "4",
    }
    assert state_key(ELEC, K1) == "smwap.fc.0011223344556677.1:01"
    # The caller commits `pending` with the readings, then tells the guard.
    g.accept(ELEC, K1, 11)  # arrives while that batch is being written
    g.committed(pending)
    assert g.pending() == {"smwap.fc.0011223344556677.1:01": "11"}
    assert g.committed_mark(ELEC, K1) == 10
    store = {**pending, "store.other": "x"}  # what the store holds; other state is ignored

    # Crash: a fresh guard knows nothing until load().
    g2 = ReplayGuard()
    g2.check(ELEC, K1, 3)  # (before load, anything goes: load is the only way back)
    assert g2.load(store) == 2
    assert g2.pending() == {}
    assert (g2.mark(ELEC, K1), g2.mark(GAS, "2:AABBCCDD:03")) == (10, 4)
    assert _refused(g2, ELEC, 10, seq=0) == "replay"  # at the loaded mark
    assert _refused(g2, ELEC, 9) == "replay"
    g2.accept(ELEC, K1, 11)  # above it: the frame lost in the crash is accepted again
    assert g2.pending() == {"smwap.fc.0011223344556677.1:01": "11"}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([ELEC, GAS]), st.integers(0, 50)), max_size=40),
    st.integers(0, 40),
)
def test_after_load_only_counters_above_the_committed_mark_pass(
    frames: list[tuple[int, int]], commit_after: int
) -> None:
    g = ReplayGuard()
    committed: dict[str, str] = {}
    for i, (src, c) in enumerate(frames):
        with contextlib.suppress(SecurityError):
            g.accept(src, K1, c)
        if i == commit_after:
            committed = g.pending()
            g.committed(committed)
    fresh = ReplayGuard()
    fresh.load(committed)
    for src in (ELEC, GAS):
        key = f"{STATE_PREFIX}{src:016X}.{K1}"
        mark = int(committed[key]) if key in committed else None
        for c in range(52):
            if mark is not None and c <= mark:
                with pytest.raises(SecurityError):
                    fresh.check(src, K1, c)
            else:
                fresh.check(src, K1, c)


def test_load_keeps_the_higher_mark_and_refuses_malformed_state() -> None:
    g = ReplayGuard()
    g.accept(ELEC, K1, 50)
    g.load({state_key(ELEC, K1): "20"})
    assert g.mark(ELEC, K1) == 50
    for bad in (
        {"smwap.fc.XYZ.1:01": "1"},
        {"smwap.fc.0011223344556677": "1"},
        {state_key(ELEC, K1): "-1"},
        {state_key(ELEC, K1): "4294967295"},
        {state_key(ELEC, K1): "ten"},
    ):
        with pytest.raises(ValueError):
            ReplayGuard().load(bad)
    for bad_kid in ("", "a.b", " x"):
        with pytest.raises(ValueError):
            state_key(ELEC, bad_kid)
        with pytest.raises(ValueError):
            ReplayGuard().accept(ELEC, bad_kid, 1)


def test_forget_for_re_pairing() -> None:
    g = ReplayGuard()
    g.accept(ELEC, K1, 500)
    g.accept(GAS, K1, 9)
    g.committed(g.pending())
    assert g.forget(ELEC) == 1
    g.check(ELEC, K1, 0)  # the meter may restart its counter with the new key
    assert g.pending() == {state_key(ELEC, K1): ""}
    g.committed(g.pending())
    assert g.pending() == {} and g.committed_mark(ELEC, K1) is None
    assert ReplayGuard().load({state_key(ELEC, K1): ""}) == 0  # empty: no mark
    g.accept(ELEC, K1, 1)
    assert g.pending() == {state_key(ELEC, K1): "1"}
    assert "2 marks" in repr(g)
