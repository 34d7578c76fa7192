"""Pairing in the running display, end to end: the simulated meters run the meter side of
the handshake, the display runs ``PairingService`` inside the runner's own pipeline, and
the householder uses the real ``ihd pair`` / ``unpair`` / ``meters`` commands over the
control socket."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import wait_until

from ihd import paths
from ihd.app.control import ControlServer, control_handlers
from ihd.app.pairing import PairingService, PairingStatus
from ihd.app.pipeline import Pipeline
from ihd.app.runner import build_pipeline
from ihd.clock import ScaledClock
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.radio.sim import SimRadio
from ihd.sim.world import SimWorld, demo_world
from ihd.smwap.installcode import crc16_x25, format_install_code
from ihd.smwap.keys import KeyFile
from ihd.smwap.link import FAILURE_MESSAGES, REJECT_MESSAGES, PairingFailure, RejectReason

_SCRIPT = Path(sys.executable).with_name("ihd")
IHD: list[str] = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ihd.cli"]
T0 = 1_764_000_000.0  # 2025-11-24 16:00 UTC
SPEED = 60.0  # a 10 s electricity push every 1/6 s


@dataclass
class Display:
    data_dir: Path
    world: SimWorld
    pipeline: Pipeline
    pairing: PairingService
    diag: Diagnostics
    keyfile: KeyFile

    def eui(self, utility: Utility) -> str:
        return next(e for e, d in self.world.devices().items() if d.utility is utility)

    def code(self, utility: Utility) -> str:
        return self.world.install_codes()[self.eui(utility)]

    def ihd(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        return subprocess.run(
            [*IHD, *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    def rows(self, eui: str) -> int:
        conn = sqlite3.connect(f"file:{self.data_dir / 'history.sqlite'}?mode=ro", uri=True)
        try:
            (n,) = conn.execute("SELECT count(*) FROM readings WHERE meter = ?", (eui,)).fetchone()
        finally:
            conn.close()
        return int(n)


@pytest.fixture
def display(tmp_path: Path) -> Iterator[Display]:
    """``ihd run``'s composition on a simulated household whose meters know no display."""
    p = paths.resolve(demo=False, data_dir=tmp_path / "d")
    p.ensure()
    clock = ScaledClock(T0, SPEED)
    world = demo_world(seed=2, start=T0, joined=[])
    diag = Diagnostics()
    radio = SimRadio(world, clock=clock, diag=diag)
    keyfile = KeyFile(p.keys_file)
    pipeline = build_pipeline(
        cfg=Config(),
        db_path=p.database,
        clock=clock,
        radio=radio,
        keyfile=keyfile,
        display_eui64=world.display_eui64,
        diag=diag,
    )
    assert pipeline.pairing is not None
    control = ControlServer(p.control_socket, control_handlers(pipeline.pairing))
    control.start()
    pipeline.start()
    try:
        yield Display(p.data_dir, world, pipeline, pipeline.pairing, diag, keyfile)
    finally:
        control.stop()
        pipeline.stop()


def _secrets(world: SimWorld) -> list[str]:
    """Every key the meters hold, as hex in both cases: none may ever be printed."""
    out = []
    for m in world.meters:
        link = m.link
        assert link is not None
        for key in (link.network_key, link.dlms_encryption_key, link.dlms_authentication_key):
            h = key.value.hex()
            out += [h, h.upper()]
    return out


def test_pair_by_install_code_alone_then_readings_flow(display: Display) -> None:
    elec = display.eui(Utility.ELECTRICITY)
    assert wait_until(lambda: display.diag.counter("radio.frames") == 0, 1)
    assert display.rows(elec) == 0  # the meter keeps its data to itself until joined

    r = display.ihd("pair", "--install-code", display.code(Utility.ELECTRICITY))

    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Looking for your meter…",
        "Meter found, exchanging keys…",
        "Keys received, confirming with the meter…",
        "Paired with your electricity meter.",
        f"meter {elec} (electricity) is paired",
    ]
    keys = display.keyfile.path
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert [m.eui64_text for m in display.keyfile.load()] == [elec]
    assert wait_until(lambda: display.diag.counter("meter.pushes") >= 3, 10)
    assert display.pipeline.store.flush()
    assert display.rows(elec) >= 6  # two registers a push
    listed = display.ihd("meters")
    assert listed.returncode == 0 and listed.stdout.split() == [
        elec,
        "electricity",
        "Electricity",
        "meter",
    ]
    said = r.stdout + r.stderr + listed.stdout + listed.stderr
    assert not any(s in said for s in _secrets(display.world))
    # The handshake's frames are counted as pairing traffic, not as frames with no key.
    assert display.diag.counter("smwap.unknown_key") == 0
    assert display.diag.counter("smwap.link") >= 2  # KEY_TRANSPORT and JOIN_ACCEPT
    seen = display.pipeline.ingest.receiver.neighbours.get(int(elec, 16))
    assert seen is not None and seen.unknown_key == 0 and seen.frames_ok >= 3


def test_each_failure_has_its_own_message(display: Display) -> None:
    gas = display.eui(Utility.GAS)
    code = bytes(16)
    other = format_install_code(code + crc16_x25(code).to_bytes(2, "little"))

    wrong = display.ihd("pair", "--install-code", other, "--meter", gas)
    assert wrong.returncode == 1
    assert wrong.stdout.splitlines()[-1] == FAILURE_MESSAGES[PairingFailure.WRONG_CODE]

    absent = display.ihd(
        "pair", "--install-code", display.code(Utility.GAS), "--meter", "0249484400020009"
    )
    assert absent.returncode == 1
    assert absent.stdout.splitlines()[-1] == FAILURE_MESSAGES[PairingFailure.OUT_OF_RANGE]

    water = next(m for m in display.world.meters if m.device.utility is Utility.WATER)
    assert water.link is not None
    water.link.accepting_joins = False  # its supplier has not opened it for displays
    refused = display.ihd(
        "pair", "--install-code", display.code(Utility.WATER), "--meter", water.device.eui64
    )
    assert refused.returncode == 1
    assert refused.stdout.splitlines()[-1] == REJECT_MESSAGES[RejectReason.NOT_ACCEPTING]

    sent = display.diag.counter("radio.tx_frames")
    typo = display.ihd("pair", "--install-code", other[:-1] + ("0" if other[-1] != "0" else "1"))
    assert typo.returncode == 2
    assert "typo" in typo.stderr and "Traceback" not in typo.stderr
    assert display.diag.counter("radio.tx_frames") == sent  # nothing went on the air

    for reason in ("wrong_code", "out_of_range", "rejected"):
        assert display.diag.counter(f"pairing.failed.{reason}") == 1
    assert len(display.keyfile.load()) == 0


def test_unpair_keeps_history_and_re_pairing_continues_it(display: Display) -> None:
    elec = display.eui(Utility.ELECTRICITY)
    code = display.code(Utility.ELECTRICITY)
    assert display.ihd("pair", "--install-code", code, "--meter", elec).returncode == 0
    assert wait_until(lambda: display.diag.counter("meter.pushes") >= 5, 10)
    assert display.pipeline.store.flush()
    kept = display.rows(elec)
    assert kept >= 10  # two registers a push

    r = display.ihd("unpair", elec)
    assert r.returncode == 0 and "history is kept" in r.stdout
    assert len(display.keyfile.load()) == 0
    # The meter still pushes to the display it knew; without keys these are refused.
    assert wait_until(lambda: display.diag.counter("smwap.unknown_key") >= 2, 10)
    pushes = display.diag.counter("meter.pushes")
    assert display.rows(elec) >= kept  # nothing deleted

    again = display.ihd("pair", "--install-code", code, "--meter", elec)
    assert again.returncode == 0, again.stdout + again.stderr
    assert wait_until(lambda: display.diag.counter("meter.pushes") >= pushes + 3, 10)
    assert display.pipeline.store.flush()
    assert display.rows(elec) > kept
    assert display.ihd("unpair", elec).returncode == 0
    assert display.ihd("unpair", elec).returncode == 1  # not paired any more


def test_second_pairing_while_one_runs_is_refused(display: Display) -> None:
    statuses: list[PairingStatus] = []
    display.pairing.listeners.append(statuses.append)
    display.pairing.start(display.code(Utility.GAS), meter_eui=0x0249484400020009)  # absent
    with pytest.raises(RuntimeError, match="already in progress"):
        display.pairing.start(display.code(Utility.GAS))
    assert wait_until(lambda: bool(statuses) and statuses[-1].done, 10)
    assert statuses[-1].step == "out_of_range"


def test_pair_and_unpair_without_a_running_display(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}

    def ihd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*IHD, *args, "--data-dir", str(tmp_path)], capture_output=True, text=True, env=env
        )

    code = bytes(range(16))
    text = format_install_code(code + crc16_x25(code).to_bytes(2, "little"))
    r = ihd("pair", "--install-code", text)
    assert r.returncode == 2
    assert "no running display" in r.stderr and "ihd run" in r.stderr
    assert r.stderr.count("\n") == 1
    r = ihd("unpair", "0249484400010001")
    assert r.returncode == 1 and "not paired" in r.stderr
    assert ihd("meters").stdout.startswith("no meter is paired")


def test_demo_pairs_itself_once_and_unpaired_shows_the_codes(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("XDG_RUNTIME_DIR", None)

    def demo(*extra: str) -> subprocess.CompletedProcess[str]:
        args = ["demo", "--headless", "--run-for", "4", "--speed", "10", "--history-days", "1"]
        return subprocess.run(
            [*IHD, *args, "--data-dir", str(data), *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    first = demo()
    assert first.returncode == 0, first.stderr
    keys = KeyFile(data / "keys.json")
    assert {m.utility for m in keys.load()} == {"electricity", "gas", "water"}
    assert stat.S_IMODE((data / "keys.json").stat().st_mode) == 0o600
    assert "energy_import_wh" in first.stdout  # readings flow after pairing

    written = (data / "keys.json").stat().st_mtime_ns
    second = demo()
    assert second.returncode == 0, second.stderr
    assert (data / "keys.json").stat().st_mtime_ns == written  # no pairing the second time
    assert "energy_import_wh" in second.stdout  # the meters remembered the display

    unpaired = demo("--unpaired")
    assert unpaired.returncode == 0, unpaired.stderr
    assert len(keys.load()) == 0
    assert unpaired.stderr.count("ihd pair --demo --install-code") == 3
    assert "energy_import_wh" not in unpaired.stdout
    conn = sqlite3.connect(f"file:{data / 'history.sqlite'}?mode=ro", uri=True)
    try:
        (n,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    finally:
        conn.close()
    assert n > 1000  # the seeded and received history stays
