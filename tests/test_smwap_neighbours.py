"""The neighbour table: counters per outcome, RSSI average, LQI, last seen, eviction, snapshot."""

from __future__ import annotations

import pytest

from ihd.smwap.mac import Address
from ihd.smwap.neighbours import COUNTERS, NeighbourTable, Outcome

METER = Address.from_eui64("0011223344556677")
GAS = Address.from_eui64("0011223344556688")


def test_counts_each_outcome_separately() -> None:
    t = NeighbourTable()
    for i, outcome in enumerate(Outcome):
        for _ in range(i + 1):
            t.note(METER, outcome, -70.0, 200, now=10.0 + i)
    n = t.get(METER)
    assert n is not None
    assert (
        n.frames_ok,
        n.fcs_errors,
        n.mic_failures,
        n.replays,
        n.duplicates,
        n.unknown_key,
        n.downgrades,
        n.unsupported,
        n.bad_frames,
    ) == tuple(range(1, 10))
    assert n.frames == 45
    assert n.first_seen == 10.0 and n.last_seen == 18.0


def test_every_security_error_counter_is_an_outcome() -> None:
    # The receive path can pass SecurityError.counter straight through.
    for counter in (
        "downgrade",
        "unknown_key",
        "unsupported",
        "mic_failure",
        "bad_frame",
        "replay",
        "duplicate",
    ):
        NeighbourTable().note(METER, counter, None, None, now=0.0)


def test_outcome_strings_and_int_eui() -> None:
    t = NeighbourTable()
    t.note(0x0011223344556677, "mic_failure", None, None, now=1.0)
    t.note(METER, "ok", -60.0, 255, now=2.0)
    n = t.get(METER)
    assert n is not None and n.mic_failures == 1 and n.frames_ok == 1
    with pytest.raises(ValueError):
        t.note(METER, "bogus", None, None, now=3.0)


def test_rssi_last_and_average_lqi_kept_when_missing() -> None:
    t = NeighbourTable()
    t.note(METER, Outcome.OK, -60.0, 180, now=0.0)
    first = t.get(METER)
    assert first is not None and first.rssi_avg_dbm == -60.0
    t.note(METER, Outcome.OK, -92.0, None, now=1.0)  # one faded frame
    n = t.get(METER)
    assert n is not None
    assert n.rssi_dbm == -92.0
    assert n.rssi_avg_dbm == pytest.approx(-60.0 + (-92.0 + 60.0) / 8)  # -64.0
    assert n.lqi == 180
    t.note(METER, Outcome.OK, None, None, now=2.0)
    n2 = t.get(METER)
    assert n2 is not None and n2.rssi_dbm == -92.0 and n2.last_seen == 2.0


def test_short_and_extended_sources_are_separate_entries() -> None:
    t = NeighbourTable()
    t.note(Address.short(0x1234), Outcome.OK, -50.0, None, now=0.0)
    t.note(METER, Outcome.OK, -50.0, None, now=0.0)
    assert len(t) == 2
    snap = t.snapshot()
    assert snap["smwap.neighbour.0x1234.frames_ok"] == 1
    assert snap["smwap.neighbour.0011223344556677.frames_ok"] == 1


def test_evicts_least_recently_seen() -> None:
    t = NeighbourTable(max_entries=3)
    addrs = [Address.ext(0xAC00 + i) for i in range(4)]
    for i, a in enumerate(addrs[:3]):
        t.note(a, Outcome.OK, None, None, now=float(i))
    t.note(addrs[0], Outcome.OK, None, None, now=5.0)  # 0 seen again: 1 is now the oldest
    t.note(addrs[3], Outcome.OK, None, None, now=6.0)
    assert len(t) == 3
    assert t.get(addrs[1]) is None
    assert [n.address for n in t] == [addrs[3], addrs[0], addrs[2]]
    assert t.evicted == 1
    assert t.snapshot()["smwap.neighbours.evicted"] == 1


def test_a_busy_street_stays_bounded() -> None:
    t = NeighbourTable()
    for i in range(500):
        t.note(Address.ext(i), Outcome.OK, -80.0, None, now=float(i))
    assert len(t) == 64
    assert t.evicted == 436
    assert t.get(Address.ext(499)) is not None and t.get(Address.ext(0)) is None


def test_snapshot_names_and_values() -> None:
    t = NeighbourTable()
    t.note(METER, Outcome.OK, -61.0, 200, now=100.0)
    t.note(METER, Outcome.REPLAY, -61.0, 200, now=101.5)
    t.note(GAS, Outcome.FCS_ERROR, -95.0, 20, now=102.0)
    snap = t.snapshot()
    base = "smwap.neighbour.0011223344556677."
    assert snap[base + "rssi_dbm"] == -61.0
    assert snap[base + "rssi_avg_dbm"] == -61.0
    assert snap[base + "lqi"] == 200
    assert snap[base + "last_seen"] == 101.5
    assert snap[base + "frames_ok"] == 1 and snap[base + "replays"] == 1
    assert snap["smwap.neighbour.0011223344556688.fcs_errors"] == 1
    assert snap["smwap.neighbours.count"] == 2
    per = {k.rsplit(".", 1)[1] for k in snap if k.startswith(base)}
    assert per == {"rssi_dbm", "rssi_avg_dbm", "lqi", "first_seen", "last_seen", *COUNTERS}
    assert list(snap) == sorted(snap)


def test_forget() -> None:
    t = NeighbourTable()
    t.note(METER, Outcome.OK, None, None, now=0.0)
    t.forget(METER)
    t.forget(GAS)
    assert len(t) == 0 and t.get(METER) is None
    with pytest.raises(ValueError):
        NeighbourTable(max_entries=0)


def test_receiver_notes_unsupported_and_bad_frame_too() -> None:
    # Regression: Receiver returned these two outcomes but did not note them in the table,
    # so the per-neighbour "unsupported" and "bad_frames" counters stayed at 0.
    from ihd.smwap.fcs import compute_fcs
    from ihd.smwap.mac import AuxSecurityHeader, FrameType, FrameVersion, MacFrame
    from ihd.smwap.receiver import Receiver
    from ihd.smwap.security import Key, KeyTable

    keys = KeyTable()
    keys.add_index(1, Key(bytes(16)))
    rx = Receiver(keys=keys)
    display = Address.short(1)
    frames = {
        # TSCH: ASN in the nonce (with a frame counter, so the replay check passes it on).
        "unsupported": MacFrame.data(
            src=METER,
            dst=display,
            dst_pan=0x1D1D,
            seq=1,
            payload=bytes(8),
            version=FrameVersion.V2015,
            aux=AuxSecurityHeader(5, 3, key_index=1, asn_in_nonce=True),
        ),
        # A 2006 MAC command whose secured payload is only the MIC: no Command ID.
        "bad_frame": MacFrame.data(
            src=METER,
            dst=display,
            dst_pan=0x1D1D,
            seq=2,
            payload=bytes(4),
            aux=AuxSecurityHeader(5, 4, key_index=1),
            frame_type=FrameType.COMMAND,
        ),
    }
    for outcome, frame in frames.items():
        raw = frame.to_bytes()
        got = rx.receive(raw + compute_fcs(raw, 4), 4, rssi_dbm=-70.0, now=1.0)
        assert got.outcome == outcome
    n = rx.neighbours.get(METER)
    assert n is not None
    assert (n.unsupported, n.bad_frames, n.frames) == (1, 1, 2)
