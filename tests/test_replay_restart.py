"""Replay protection across a restart, end to end: sim air -> radio -> Ingest -> a real SQLite file.

What issue 4 asks of the per-device frame counter, checked on the whole path:

* the high-water mark (``smwap.fc.<EUI-64>.<key id>`` in the store's state) is committed in
  the same transaction as the readings its frames let in;
* after a clean restart, the whole captured stream replayed is refused, frame by frame, as
  ``replay``, and nothing new is stored;
* after a crash (a real ``SIGKILL`` of a process whose store still held uncommitted batches),
  replaying the whole captured stream accepts exactly the frames above the committed marks,
  i.e. the uncommitted interval. They restore exactly the rows that were lost: readings,
  meters and marks then equal those of an uninterrupted run over the same frames, and so do
  the usage rows (cost re-rounded by at most 1 milli-penny a minute after the restart: see
  ``assert_same_usage``). No frame at or below a committed mark is accepted. The same holds
  when the store had been failing to write (disk full) since its last good commit, so that
  the ingest had handed over batches, and their marks, that never landed;
* a forged counter jump (a huge counter with a bad MIC) moves no mark, in memory or stored;
* ``smwap.duplicate`` (a retransmission: same sequence number and counter as the last
  accepted frame) and ``smwap.replay`` (any other old frame) are separate counters.

The capture is what the display's radio delivered (``RxFrame``), recorded as it arrived,
like a sniffer next to the display. A "lossy" air loses frames and ACKs, so the capture also
holds MAC retransmissions (duplicates).

The crash test runs this file as a script in a child process (see ``_crash_child``): it runs
the display as the app does (the store's writer thread, commits only at chosen points),
reports where it stands, and the test kills it with SIGKILL while its last batches are
still in the store's queue.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ihd.app.ingest import Ingest
from ihd.clock import ManualClock
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.radio.contract import RxFrame, RxInfo
from ihd.radio.sim import SimRadio
from ihd.sim.world import PAN_ID, SimWorld, demo_world
from ihd.smwap.fcs import compute_fcs
from ihd.smwap.mac import AddrMode, MacFrame, parse_mpdu_unchecked
from ihd.smwap.receiver import Received, Receiver
from ihd.smwap.replay import STATE_PREFIX, state_key
from ihd.smwap.security import Key, key_id, secure
from ihd.store import Store, UsageTotal
from ihd.tariff import tariffs_from_config

SEED = 11
CV_MJ_M3 = 39.5
START = dt.datetime(2024, 1, 10, 21, 0, tzinfo=dt.UTC).timestamp()  # crosses local midnight
HOURS = 3
#: Where the running display commits (store.flush()); 5 s past the minute, between two
#: electricity pushes (every 10 s on the minute), so no retransmission straddles a commit.
COMMIT_AT = [START + s + 5 for s in (1200, 3300, 5400, 7500)]  # +20 min, +55, +1 h 30, +2 h 05
CRASH_AT = START + HOURS * 3600 - 600 + 5  # +2 h 50: 45 min of frames are not committed
#: In the "disk-full" crash, the store's commits at these points fail (SQLITE_FULL): the
#: batches were handed over (and their marks recorded as handed over) but never written.
FAILED_COMMIT_AT = [START + s + 5 for s in (8400, 9600)]  # +2 h 20, +2 h 40
AIRS = {"clean": 0.0, "lossy": 0.05}  # frame (and ACK) loss on the air
FORGED_COUNTER = 0xFFFF_FFF0


def make_world(loss: float) -> SimWorld:
    """The demo household (electricity every 10 s, gas and water every 30 min), all joined:
    secured level-5 pushes to the display. Same seed, same air: the same frames every time."""
    return demo_world(seed=SEED, start=START, loss=loss, gas_cv_mj_m3=CV_MJ_M3)


class Air:
    """The display's radio on the simulated air, advanced by hand (no thread)."""

    def __init__(self, world: SimWorld) -> None:
        self.radio = SimRadio(world, clock=ManualClock(START), pump=False)
        self.radio.set_addresses(eui64=world.display_eui64, pan_id=PAN_ID, short=None)  # ACKs
        self.t = START

    def until(self, t: float) -> list[RxFrame]:
        """Every frame the radio delivered up to ``t``."""
        out: list[RxFrame] = []
        while self.t < t:
            self.t = min(self.t + 60.0, t)
            self.radio.run_until(self.t)
            while (frame := self.radio.receive(0)) is not None:
                out.append(frame)
        return out


class RecordingReceiver(Receiver):
    """The real receiver, keeping every outcome (the test's view of each frame's fate)."""

    def __init__(self, world: SimWorld) -> None:
        super().__init__(keys=world.key_table())
        self.outcomes: list[Received] = []

    def receive(
        self,
        psdu: bytes,
        fcs_len: int,
        *,
        fcs_ok: bool | None = None,
        rssi_dbm: float | None = None,
        lqi: int | None = None,
        now: float = 0.0,
    ) -> Received:
        rx = super().receive(psdu, fcs_len, fcs_ok=fcs_ok, rssi_dbm=rssi_dbm, lqi=lqi, now=now)
        self.outcomes.append(rx)
        return rx


@dataclasses.dataclass
class Display:
    """What the app runs: a receiver inside an Ingest, feeding a Store on one database file."""

    receiver: RecordingReceiver
    ingest: Ingest
    store: Store
    diag: Diagnostics
    submitted: int = 0

    def handle(self, frames: Iterable[RxFrame]) -> list[str]:
        """Every frame through ``Ingest.handle``, batches to the store; the outcomes."""
        out = []
        for frame in frames:
            n = len(self.receiver.outcomes)
            result = self.ingest.handle(frame)
            assert len(self.receiver.outcomes) == n + 1  # every frame reached the receiver
            out.append(self.receiver.outcomes[-1].outcome)
            if result is not None and result[0] is not None:
                self.store.submit(result[0])
                self.submitted += 1
        return out


def open_display(world: SimWorld, db: Path, *, resume_at: float | None = None) -> Display:
    """A display process starting on ``db``; ``resume_at``: a restart (resume from the store)."""
    diag = Diagnostics()
    receiver = RecordingReceiver(world)
    ingest = Ingest(
        meters=world.devices(),
        tariffs=tariffs_from_config(Config()),
        tz="Europe/London",
        diag=diag,
        gas_cv_mj_m3=CV_MJ_M3,
        receiver=receiver,
    )
    # Commits only where a test says (flush, close): never on the writer thread's own clock.
    store = Store(db, diag=diag, commit_interval_s=3600)
    if resume_at is not None:
        with store.reader() as reader:
            ingest.resume(reader, resume_at)
    return Display(receiver, ingest, store, diag)


# --------------------------------------------------------------------------- frames


@dataclasses.dataclass(frozen=True)
class Ident:
    src: int  # EUI-64
    kid: str  # key identifier
    counter: int
    seq: int | None

    @property
    def slot(self) -> str:
        """The replay state key: ``smwap.fc.<EUI-64>.<key id>``."""
        return state_key(self.src, self.kid)


def ident(frame: RxFrame) -> Ident:
    """Who sent a secured frame, under which key, with which frame counter."""
    mac = parse_mpdu_unchecked(frame.psdu[: -frame.info.fcs_len])
    assert mac.aux is not None, "every captured frame is secured"
    assert mac.src is not None and mac.src.mode is AddrMode.EXTENDED
    assert mac.aux.frame_counter is not None
    return Ident(mac.src.value, key_id(mac.aux), mac.aux.frame_counter, mac.seq)


def reframe(frame: RxFrame, mpdu: bytes) -> RxFrame:
    """``mpdu`` (no FCS) delivered like ``frame``, with a valid FCS."""
    fcs_len = frame.info.fcs_len
    return RxFrame(mpdu + compute_fcs(mpdu, fcs_len), frame.info)


def save_frames(path: Path, frames: Sequence[RxFrame]) -> None:
    with path.open("a") as out:
        for f in frames:
            out.write(json.dumps({"psdu": f.psdu.hex(), "info": dataclasses.asdict(f.info)}))
            out.write("\n")
            out.flush()  # in the kernel at once: a SIGKILL does not lose it


def load_frames(path: Path) -> list[RxFrame]:
    frames = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        frames.append(RxFrame(bytes.fromhex(d["psdu"]), RxInfo(**d["info"])))
    return frames


def highest(frames: Iterable[RxFrame]) -> dict[str, int]:
    """The highest frame counter per replay slot."""
    out: dict[str, int] = {}
    for f in frames:
        i = ident(f)
        out[i.slot] = max(out.get(i.slot, -1), i.counter)
    return out


def expected_after_restart(frames: Sequence[RxFrame], marks: dict[str, int]) -> list[str]:
    """What a display that loaded ``marks`` must do with ``frames``, in order: refuse every
    frame at or below its mark as a replay; accept each newer push once; a retransmission
    of an accepted push (same seq and counter, right after it) is a duplicate."""
    accepted: dict[str, tuple[int | None, int]] = {}
    out = []
    for f in frames:
        i = ident(f)
        mark = max(marks.get(i.slot, -1), accepted.get(i.slot, (None, -1))[1])
        if i.counter > mark:
            out.append("ok")
            accepted[i.slot] = (i.seq, i.counter)
        elif accepted.get(i.slot) == (i.seq, i.counter):
            out.append("duplicate")
        else:
            out.append("replay")
    return out


# --------------------------------------------------------------------------- the database


def contents(db: Path) -> dict[str, Any]:
    """Everything the store holds, comparable across files (not ``state.updated_ms``)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            "readings": conn.execute(
                "SELECT meter, quantity, ts_ms, raw, scaler FROM readings ORDER BY 1, 2, 3"
            ).fetchall(),
            "usage": conn.execute(
                "SELECT meter, minute_ms, utility, amount, energy_wh, cost_milli FROM usage "
                "ORDER BY 1, 2"
            ).fetchall(),
            "meters": conn.execute(
                "SELECT eui64, utility, label, first_seen_ms, last_seen_ms FROM meters ORDER BY 1"
            ).fetchall(),
            "state": dict(conn.execute("SELECT key, value FROM state ORDER BY key").fetchall()),
        }
    finally:
        conn.close()


def stored_marks(db: Path) -> dict[str, int]:
    state = contents(db)["state"]
    return {k: int(v) for k, v in state.items() if k.startswith(STATE_PREFIX)}


def usage_totals(store: Store) -> dict[Utility, UsageTotal]:
    with store.reader() as reader:
        return {u: reader.usage_total(u, START - 86400, START + 86400) for u in Utility}


def reference(frames: Sequence[RxFrame], db: Path) -> dict[str, Any]:
    """The database of one uninterrupted run over ``frames`` (from an empty file)."""
    display = open_display(make_world(0.0), db)
    outcomes = display.handle(frames)
    assert display.store.flush()
    display.store.close()
    assert outcomes == expected_after_restart(frames, {})
    return contents(db)


def run_live(display: Display, air: Air, until: float) -> list[RxFrame]:
    """Run the display as the app would, committing at each of ``COMMIT_AT`` before
    ``until``; returns the capture."""
    frames: list[RxFrame] = []
    for t in [c for c in COMMIT_AT if c < until] + [until]:
        got = air.until(t)
        frames += got
        display.handle(got)
        assert display.store.flush()
    return frames


# --------------------------------------------------------------------------- clean restart


@pytest.mark.parametrize("loss", AIRS.values(), ids=AIRS.keys())
def test_whole_capture_replayed_after_a_clean_restart_is_refused(
    tmp_path: Path, loss: float
) -> None:
    db = tmp_path / "ihd.db"
    world = make_world(loss)
    live = open_display(world, db)
    frames = run_live(live, Air(world), START + HOURS * 3600)
    # As it ran: every push accepted once, retransmissions refused as duplicates.
    first = [r.outcome for r in live.receiver.outcomes]
    assert first == expected_after_restart(frames, {})
    pushes = first.count("ok")
    assert pushes > 1000 and live.diag.counter("meter.pushes") == pushes
    assert live.diag.counter("smwap.duplicate") == first.count("duplicate")
    assert (first.count("duplicate") > 0) == (loss > 0)
    totals = usage_totals(live.store)
    live.store.close()  # a clean stop: everything committed
    before = contents(db)
    assert stored_marks(db) == highest(frames)  # the marks are the last accepted counters
    assert len(before["readings"]) > 2000 and len(before["usage"]) > 150

    # A new process on the same file, with the same keys (configuration, not state).
    again = open_display(make_world(loss), db, resume_at=frames[-1].info.timestamp + 1)
    assert again.handle(frames) == ["replay"] * len(frames)
    assert again.diag.counter("smwap.replay") == len(frames)
    assert again.diag.counter("smwap.duplicate") == 0  # nothing accepted yet to retransmit
    assert again.diag.counter("meter.pushes") == 0
    assert again.submitted == 0
    assert again.store.flush()
    assert usage_totals(again.store) == totals
    again.store.close()
    assert contents(db) == before  # not a row more, not a mark moved


# --------------------------------------------------------------------------- crash


def _crash_child(db: Path, capture: Path, loss: float, disk_full: bool) -> None:
    """The display as the app runs it, until CRASH_AT; then it says where it stands and
    waits to be killed. The store's writer thread is running and holds every batch
    submitted since the last commit in memory only. With ``disk_full`` the file system
    fills up after the last good commit: the commits at FAILED_COMMIT_AT fail."""
    world = make_world(loss)
    display = open_display(world, db)
    display.store.start()
    air = Air(world)
    handled = committed = batches_at_commit = 0
    points = [*COMMIT_AT, *(FAILED_COMMIT_AT if disk_full else ()), CRASH_AT]
    for t in points:
        for frame in air.until(t):
            save_frames(capture, [frame])  # recorded as it arrives
            display.handle([frame])
            handled += 1
        if t in COMMIT_AT:
            assert display.store.flush()
            committed, batches_at_commit = handled, display.submitted
            if disk_full and t == COMMIT_AT[-1]:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                (pages,) = conn.execute("PRAGMA page_count").fetchone()
                conn.close()
                display.store.set_max_pages(pages)  # a real SQLITE_FULL from now on
        elif t in FAILED_COMMIT_AT:
            assert not display.store.flush()
    guard = display.receiver.guard
    in_memory = {i.slot: guard.mark(i.src, i.kid) for i in map(ident, load_frames(capture))}
    report = {
        "pid": os.getpid(),
        "handled": handled,
        "committed": committed,
        "uncommitted_batches": display.submitted - batches_at_commit,
        "marks_in_memory": in_memory,
        "marks_pending": guard.pending(),
        "write_errors": display.diag.counter("store.write_errors"),
        "status": display.store.status,
    }
    print(json.dumps(report), flush=True)
    time.sleep(120)  # the test kills us long before this
    os._exit(3)


def crash_run(
    tmp_path: Path, loss: float, *, disk_full: bool = False
) -> tuple[Path, list[RxFrame], dict[str, Any]]:
    """Run the child, SIGKILL it in its uncommitted interval; (database, capture, report)."""
    db, capture = tmp_path / "ihd.db", tmp_path / "capture.jsonl"
    proc = subprocess.Popen(
        [sys.executable, __file__, "crash-child", str(db), str(capture), repr(loss)]
        + (["disk-full"] if disk_full else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "the crash child did not report within 120 s"
        line = proc.stdout.readline()
        if not line:
            proc.wait(10)
            assert proc.stderr is not None
            pytest.fail(f"crash child failed ({proc.returncode}):\n{proc.stderr.read()}")
        report: dict[str, Any] = json.loads(line)
        assert report["pid"] == proc.pid
        proc.send_signal(signal.SIGKILL)  # the power stays on, the process just dies
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    return db, load_frames(capture), report


#: (air loss, whether the disk fills up after the last good commit)
CRASHES = {"clean": (0.0, False), "lossy": (0.05, False), "disk-full": (0.0, True)}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("case", CRASHES.values(), ids=CRASHES.keys())
def test_after_a_crash_the_replayed_capture_restores_exactly_the_lost_rows(
    tmp_path: Path, case: tuple[float, bool]
) -> None:
    loss, disk_full = case
    db, frames, report = crash_run(tmp_path, loss, disk_full=disk_full)
    k = report["committed"]
    assert len(frames) == report["handled"] > k > 0
    committed, lost = frames[:k], frames[k:]
    assert report["uncommitted_batches"] > 200  # in the store's queue when it died
    assert (report["write_errors"] > 0) == disk_full
    assert report["status"].startswith("error: database or disk is full" if disk_full else "ok")
    # Every meter has frames on both sides of the last commit.
    assert set(highest(lost)) == set(highest(committed)) and len(highest(lost)) == 3

    # What survived is exactly the committed prefix: its readings with its marks.
    after_crash = contents(db)
    assert after_crash == reference(committed, tmp_path / "prefix.db")
    marks = stored_marks(db)
    assert marks == highest(committed)
    # In memory the marks had moved on, and the ingest had handed them over with their
    # batches (nothing pending), even where the store had failed to write them: all of
    # that died with the process.
    assert report["marks_in_memory"] == highest(frames) != marks
    assert report["marks_pending"] == {}

    # Restart on the same file and replay the WHOLE capture.
    again = open_display(make_world(loss), db, resume_at=frames[-1].info.timestamp + 1)
    outcomes = again.handle(frames)
    assert outcomes == expected_after_restart(frames, marks)
    # No frame at or below its meter's committed mark got in...
    for frame, outcome in zip(frames, outcomes, strict=True):
        i = ident(frame)
        if i.counter <= marks[i.slot]:
            assert outcome == "replay"
        else:
            assert outcome in ("ok", "duplicate")
    # ... and exactly the pushes of the uncommitted interval did, each once.
    accepted = [ident(f) for f, o in zip(frames, outcomes, strict=True) if o == "ok"]
    lost_pushes = {(i.slot, i.counter) for i in map(ident, lost)}
    assert len(accepted) == len(lost_pushes) == report["uncommitted_batches"]
    assert {(i.slot, i.counter) for i in accepted} == lost_pushes
    assert outcomes[:k] == ["replay"] * k
    assert again.diag.counter("smwap.replay") == k
    assert again.diag.counter("smwap.duplicate") == outcomes.count("duplicate")
    assert (outcomes.count("duplicate") > 0) == (loss > 0)
    assert again.diag.counter("meter.pushes") == len(accepted)
    assert again.store.flush()
    again.store.close()
    # They restored exactly the lost rows: none was already there...
    assert again.diag.counter("store.duplicate_readings") == 0
    # ... and the file now equals one uninterrupted run over the same frames.
    restored, whole = contents(db), reference(frames, tmp_path / "whole.db")
    assert len(restored["readings"]) > len(after_crash["readings"])
    assert restored["readings"] == whole["readings"]
    assert restored["meters"] == whole["meters"]
    assert restored["state"] == whole["state"]
    assert stored_marks(db) == highest(frames)
    assert_same_usage(restored["usage"], whole["usage"], since=lost[0].info.timestamp)


def assert_same_usage(got: list[Any], want: list[Any], *, since: float) -> None:
    """The same usage rows: meter, minute, utility, amount and energy exactly. Costs too,
    except that the restarted ingest prices with a fresh ``Pricer`` (``Ingest.resume``
    does not carry the exact running total over), so from the restart on each minute's
    cost may be rounded differently, by at most 1 milli-penny, and each meter's total by
    at most 1 (the rounded deltas telescope). Before the restart costs are identical."""
    assert [r[:5] for r in got] == [r[:5] for r in want]
    for g, w in zip(got, want, strict=True):
        if g[1] < since * 1000 - 60_000:
            assert g == w
        else:
            assert abs(g[5] - w[5]) <= 1, (g, w)
    for meter in {r[0] for r in want}:
        cost_got = sum(r[5] for r in got if r[0] == meter)
        cost_want = sum(r[5] for r in want if r[0] == meter)
        assert abs(cost_got - cost_want) <= 1, meter


def test_a_restart_keeps_the_cost_rounding_of_an_uninterrupted_run(tmp_path: Path) -> None:
    world = make_world(0.0)
    air = Air(world)
    first = open_display(world, tmp_path / "ihd.db")
    frames = run_live(first, air, START + 3600)
    first.store.close()
    second = open_display(world, tmp_path / "ihd.db", resume_at=frames[-1].info.timestamp)
    more = air.until(START + 2 * 3600)
    assert second.handle(more) == ["ok"] * len(more)
    assert second.store.flush()
    second.store.close()
    got, want = contents(tmp_path / "ihd.db"), reference(frames + more, tmp_path / "whole.db")
    assert {k: v for k, v in got.items() if k != "usage"} == {
        k: v for k, v in want.items() if k != "usage"
    }
    assert [r[:5] for r in got["usage"]] == [r[:5] for r in want["usage"]]
    assert got["usage"] == want["usage"]  # the cost_milli column is what differs


# --------------------------------------------------------------------------- forgery


def forged_frames(genuine: RxFrame, plain: MacFrame, counter: int) -> list[RxFrame]:
    """Two forgeries of ``genuine`` with a huge frame counter and a valid FCS, whose MIC
    cannot verify: (1) the genuine ciphertext and MIC under a rewritten counter (the nonce
    changes); (2) a fresh frame secured under a key the attacker made up."""
    raw = genuine.psdu[: -genuine.info.fcs_len]
    mac = parse_mpdu_unchecked(raw)
    assert mac.aux is not None and mac.src is not None
    assert mac.to_bytes() == raw  # the parsed frame rebuilds to the same octets
    aux = dataclasses.replace(mac.aux, frame_counter=counter)
    rewritten = dataclasses.replace(mac, aux=aux).to_bytes()
    resecured = secure(
        dataclasses.replace(plain, aux=aux, seq=(mac.seq or 0) ^ 0x55),
        Key(bytes(range(16))),
        src_ext=mac.src.value,
    )
    return [reframe(genuine, rewritten), reframe(genuine, resecured)]


def test_a_forged_counter_jump_moves_no_mark(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    world = make_world(0.0)
    display, air = open_display(world, db), Air(world)
    frames = run_live(display, air, START + 1800)
    victim = frames[-1]  # an electricity push, accepted
    assert display.receiver.outcomes[-1].ok
    plain = display.receiver.outcomes[-1].frame
    assert plain is not None
    v = ident(victim)
    assert v.counter < FORGED_COUNTER
    guard = display.receiver.guard
    assert guard.mark(v.src, v.kid) == v.counter

    forged = forged_frames(victim, plain, FORGED_COUNTER)
    assert display.handle(forged) == ["mic_failure", "mic_failure"]
    assert display.diag.counter("smwap.mic_failure") == 2
    assert guard.mark(v.src, v.kid) == v.counter  # not moved
    assert display.submitted == len([o for o in display.receiver.outcomes if o.ok])
    # Had the mark moved, every genuine push after this would now be a "replay".
    later = air.until(START + 3600)
    assert display.handle(later) == ["ok"] * len(later)
    assert display.store.flush()
    display.store.close()
    marks = stored_marks(db)
    assert marks == highest(frames + later)
    assert all(m < FORGED_COUNTER for m in marks.values())

    # After a restart the forgeries are still only MIC failures, and move nothing either.
    again = open_display(make_world(0.0), db, resume_at=later[-1].info.timestamp + 1)
    capture = frames + later
    assert again.handle([*capture, *forged]) == ["replay"] * len(capture) + ["mic_failure"] * 2
    assert again.store.flush()
    again.store.close()
    assert stored_marks(db) == marks


# --------------------------------------------------------------------------- duplicate vs replay


def test_duplicates_and_replays_are_counted_apart(tmp_path: Path) -> None:
    db = tmp_path / "ihd.db"
    world = make_world(0.0)
    display = open_display(world, db)
    frames = run_live(display, Air(world), START + 600)
    elec = [f for f in frames if ident(f).slot == ident(frames[-1]).slot]
    last, older = elec[-1], elec[-5]

    def counts(d: Display) -> tuple[int, int]:
        return d.diag.counter("smwap.duplicate"), d.diag.counter("smwap.replay")

    assert counts(display) == (0, 0)
    # The same frame again (a MAC retransmission: same seq and counter): a duplicate.
    assert display.handle([last]) == ["duplicate"]
    assert counts(display) == (1, 0)
    # An older frame of the same meter sent again: a replay.
    assert display.handle([older]) == ["replay"]
    assert counts(display) == (1, 1)
    # The retransmission is still recognised after the replay was refused.
    assert display.handle([last]) == ["duplicate"]
    assert counts(display) == (2, 1)
    # The last frame's counter under another sequence number is not a retransmission.
    raw = last.psdu[: -last.info.fcs_len]
    mac = parse_mpdu_unchecked(raw)
    other_seq = reframe(last, dataclasses.replace(mac, seq=((mac.seq or 0) + 1) & 0xFF).to_bytes())
    assert display.handle([other_seq]) == ["replay"]
    assert counts(display) == (2, 2)
    # The neighbour table keeps them apart too.
    eui = f"{ident(last).src:016X}"
    table = display.receiver.neighbours.snapshot()
    assert table[f"smwap.neighbour.{eui}.duplicates"] == 2
    assert table[f"smwap.neighbour.{eui}.replays"] == 2
    assert display.diag.counter("meter.pushes") == len(frames)
    display.store.close()

    # After a restart only the committed mark is known: the last frame is a replay now
    # (nothing tells a late retransmission from an attacker's copy; both are refused).
    again = open_display(make_world(0.0), db, resume_at=last.info.timestamp + 1)
    assert again.handle([last, older]) == ["replay", "replay"]
    assert counts(again) == (0, 2)
    again.store.close()


if __name__ == "__main__" and sys.argv[1:2] == ["crash-child"]:
    _crash_child(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]), "disk-full" in sys.argv)
