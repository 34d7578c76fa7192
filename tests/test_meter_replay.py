"""ihd.meter.replay: the invocation counter guard, alone and inside decode_push."""

from __future__ import annotations

import pytest

from ihd.meter import (
    DlmsKeys,
    InvocationGuard,
    MeterAuthError,
    MeterDecodeError,
    MeterReplayError,
    Utility,
    build_push,
    cipher_apdu,
    decode_push,
)
from ihd.meter.replay import state_key

EK = bytes(range(16))
AK = bytes(range(16, 32))
KEYS = DlmsKeys(EK, AK)
A = bytes.fromhex("4B464D1020000001")
B = bytes.fromhex("4B464D1020000002")


def push(ic: int, title: bytes = A, sc: int = 0x30, value: int = 100) -> bytes:
    apdu = build_push([((1, 0, 1, 8, 0, 255), value, 0)], timestamp=1_700_000_000 + ic, invoke_id=1)
    return cipher_apdu(
        apdu, keys=KEYS, system_title=title, invocation_counter=ic, security_control=sc
    )


def decode(data: bytes, guard: InvocationGuard, keys: DlmsKeys = KEYS) -> object:
    return decode_push(
        data, meter="M", utility=Utility.ELECTRICITY, received_at=0, keys=keys, guard=guard
    )


def test_check_and_accept() -> None:
    g = InvocationGuard()
    g.check(A, 0)  # no mark: anything passes
    g.accept(A, 5)
    assert g.mark(A) == 5 and g.mark(B) is None
    g.check(A, 6)
    g.check(B, 1)  # marks are per system title
    with pytest.raises(MeterReplayError) as info:
        g.check(A, 5)
    assert info.value.outcome == "duplicate"
    with pytest.raises(MeterReplayError) as info:
        g.accept(A, 4)
    assert info.value.outcome == "replay" and "not above 5" in info.value.reason
    assert g.mark(A) == 5  # a refused accept moves nothing
    with pytest.raises(MeterReplayError):
        g.check(A, 1 << 32)
    with pytest.raises(ValueError):
        g.accept(b"short", 1)


def test_pending_committed_load_forget() -> None:
    g = InvocationGuard()
    g.accept(A, 10)
    g.accept(B, 3)
    marks = g.pending()
    assert marks == {state_key(A): "10", state_key(B): "3"}
    assert state_key(A) == "dlms.ic.4B464D1020000001"
    g.committed(marks)
    assert g.pending() == {} and g.committed_mark(A) == 10
    g.accept(A, 11)
    assert g.pending() == {state_key(A): "11"}

    # A restart: only committed marks come back; A's 11 was not committed.
    fresh = InvocationGuard()
    assert fresh.load({**marks, "smwap.fc.0011223344556677.1": "9", "other": "x"}) == 2
    assert fresh.mark(A) == 10 and fresh.mark(B) == 3
    fresh.check(A, 11)  # the push whose readings were lost with the crash comes in again
    with pytest.raises(MeterReplayError):
        fresh.check(A, 10)

    assert fresh.forget(A) is True
    assert fresh.mark(A) is None
    assert fresh.pending() == {state_key(A): ""}
    fresh.committed(fresh.pending())
    assert fresh.pending() == {} and fresh.committed_mark(A) is None
    assert fresh.forget(A) is False
    with pytest.raises(ValueError, match="bad invocation counter"):
        InvocationGuard().load({state_key(A): "-1"})
    with pytest.raises(ValueError, match="state key"):
        InvocationGuard().load({"dlms.ic.XYZ": "1"})
    assert "marks" in repr(fresh)


def test_decode_push_refuses_replays_and_duplicates() -> None:
    g = InvocationGuard()
    assert decode(push(1), g)
    assert decode(push(2), g)
    assert g.mark(A) == 2
    with pytest.raises(MeterReplayError) as info:
        decode(push(2), g)
    assert info.value.outcome == "duplicate"
    with pytest.raises(MeterReplayError) as info:
        decode(push(1), g)
    assert info.value.outcome == "replay"
    assert isinstance(info.value, MeterDecodeError)
    assert decode(push(1, title=B), g)  # another meter has its own counter


def test_forged_push_never_moves_the_mark() -> None:
    g = InvocationGuard()
    decode(push(5), g)
    forged = bytearray(push(1000))
    forged[-1] ^= 0x01  # tag
    with pytest.raises(MeterAuthError):
        decode(bytes(forged), g)
    assert g.mark(A) == 5
    assert decode(push(6), g)  # the real next push still passes


def test_encryption_only_moves_the_mark_only_when_it_decodes() -> None:
    g = InvocationGuard()
    keys = DlmsKeys(EK)
    good = push(7, sc=0x20)
    # Change the invocation counter in the clear header: another keystream, garbage body.
    forged = bytearray(good)
    forged[12:16] = (1_000_000).to_bytes(4, "big")
    with pytest.raises(MeterDecodeError):
        decode(bytes(forged), g, keys)
    assert g.mark(A) is None
    p = decode(good, g, keys)
    assert p.authenticated is False and g.mark(A) == 7  # type: ignore[attr-defined]


def test_replay_is_checked_before_deciphering() -> None:
    g = InvocationGuard()
    g.accept(A, 50)
    # A push at or below the mark is refused even when it would not decipher at all.
    with pytest.raises(MeterReplayError):
        decode(push(50)[:-5] + b"\x00" * 5, g)


def test_plain_pushes_bypass_the_guard() -> None:
    g = InvocationGuard()
    apdu = build_push([((1, 0, 1, 8, 0, 255), 1, 0)], timestamp=0, invoke_id=0)
    decode(apdu, g)
    decode(apdu, g)
    assert g.pending() == {}
