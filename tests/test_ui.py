"""The home screen, loaded offscreen, shows the simulator's ground truth, formatted.

The household model is the truth: energy is its exact integral, demand its power at the
last push. The frames travel the real path (meters -> air -> SimRadio -> Ingest), and the
snapshot reaches the QML through the same cross-thread signal the app uses.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import zoneinfo
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import PySide6.QtQuick  # noqa: F401  (so the root object is a QQuickWindow)
from PySide6.QtGui import QImage
from PySide6.QtQuick import QQuickItem

from ihd.app.ingest import Ingest
from ihd.app.live import Snapshot
from ihd.clock import ManualClock
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.radio.sim import SimRadio
from ihd.sim.world import PAN_ID, demo_world
from ihd.smwap.receiver import Receiver
from ihd.tariff import GBP, tariffs_from_config

TZ = "Europe/London"
# A Tuesday in March, before the clocks change: local midnight is 00:00 UTC.
MIDNIGHT = dt.datetime(2026, 3, 10, tzinfo=zoneinfo.ZoneInfo(TZ)).timestamp()
RUN_UNTIL = MIDNIGHT + 7 * 3600 + 5  # 07:00:05 local: breakfast kettle time

ELEC_RATE = Decimal("24.50")  # Config defaults, p/kWh and p/day (the test restates them)
ELEC_STANDING = Decimal("60.10")
GAS_RATE = Decimal("6.24")
GAS_STANDING = Decimal("31.43")


def pounds(pence: Decimal) -> str:
    return "£" + str((pence / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


@pytest.fixture(scope="module")
def played() -> tuple[Snapshot, object]:
    """Play the household from just before midnight to 07:00 through the real stack."""
    world = demo_world(seed=3, start=MIDNIGHT - 120, fcs_len=4, tz=TZ)
    clock = ManualClock(MIDNIGHT - 120)
    radio = SimRadio(world, clock=clock, pump=False)
    radio.set_addresses(eui64=world.display_eui64, pan_id=PAN_ID, short=None)
    ingest = Ingest(
        meters=world.devices(),
        tariffs=tariffs_from_config(Config()),
        tz=TZ,
        diag=Diagnostics(),
        receiver=Receiver(keys=world.key_table()),
    )
    ingest.roll_day(MIDNIGHT - 120)
    snap = None
    t = MIDNIGHT - 120
    while t < RUN_UNTIL:
        t = min(t + 600, RUN_UNTIL)
        radio.run_until(t)
        while (frame := radio.receive(0)) is not None:
            out = ingest.handle(frame)
            if out is not None:
                snap = out[1]
    assert snap is not None
    return snap, world


@pytest.fixture(scope="module")
def gui(played: tuple[Snapshot, object], qapp: object) -> object:
    from ihd.ui.app import Gui

    snap, _ = played
    g = Gui(clock=ManualClock(RUN_UNTIL), currency=GBP, tz=TZ)
    # Deliver the snapshot the way the pipeline does: emitted from a non-GUI thread.
    t = threading.Thread(target=g.listener(), args=(snap,))
    t.start()
    t.join()
    yield g
    g.close()


def _find(item: QQuickItem, name: str) -> QQuickItem | None:
    """Search the visual tree (delegates are not QObject children of the window)."""
    if item.objectName() == name:
        return item
    for child in item.childItems():
        found = _find(child, name)
        if found is not None:
            return found
    return None


def _text(gui: object, name: str) -> str:
    item = _find(gui.window.contentItem(), name)  # type: ignore[attr-defined]
    assert item is not None, f"no QML item named {name!r}"
    return str(item.property("text"))


def _settle(qtbot: object, gui: object) -> None:
    qtbot.waitUntil(  # type: ignore[attr-defined]
        lambda: _text(gui, "demandText") != "–", timeout=3000
    )


def test_demand_is_the_models_power_at_the_last_push(gui, played, qtbot) -> None:
    _settle(qtbot, gui)
    _, world = played
    last_push = RUN_UNTIL - (RUN_UNTIL % 10)
    watts = round(world.household.power_w(last_push))
    assert _text(gui, "demandText") == f"{watts / 1000:.2f}"
    per_hour = Decimal(watts) / 1000 * ELEC_RATE
    assert _text(gui, "costPerHourText") == f"{pounds(per_hour)} an hour"


def test_today_electricity_is_the_models_integral_since_midnight(gui, played, qtbot) -> None:
    _settle(qtbot, gui)
    _, world = played
    last_push = RUN_UNTIL - (RUN_UNTIL % 10)
    truth_wh = world.household.electricity_wh(MIDNIGHT, last_push)
    shown = float(_text(gui, "amount_electricity"))
    # The meter truncates its register to whole Wh, so the display may be 1 Wh either side.
    assert shown in {round((truth_wh + d) / 1000, 2) for d in (-1, 0, 1)}
    cost = Decimal(str(truth_wh)) / 1000 * ELEC_RATE + ELEC_STANDING
    assert _text(gui, "cost_electricity") in {
        pounds(cost + d) for d in (Decimal("-0.05"), Decimal(0), Decimal("0.05"))
    }


def test_today_gas_is_the_models_integral_since_midnight(gui, played, qtbot) -> None:
    _settle(qtbot, gui)
    snap, world = played
    gas = snap.today[Utility.GAS]
    assert gas.last_reading_at is not None
    # Gas pushes every 30 min at the meter's phase; the first push after midnight is the
    # first one booked to today, the one before it is the baseline.
    meter = next(m for m in world.meters if m.device.utility is Utility.GAS)
    pushes = meter.push_times(MIDNIGHT - 1800, RUN_UNTIL)
    baseline = max(p for p in pushes if p <= MIDNIGHT)
    truth_kwh = world.household.gas_wh(baseline, gas.last_reading_at) / 1000
    shown = float(_text(gui, "amount_gas"))
    # one dm3 of gas (the register's resolution) is ~0.011 kWh at CV 39.5
    assert abs(shown - truth_kwh) <= 0.05 + 0.025
    assert _text(gui, "cost_gas").startswith("£")
    expected = Decimal(str(truth_kwh)) * GAS_RATE + GAS_STANDING
    shown_cost = Decimal(_text(gui, "cost_gas")[1:]) * 100
    assert abs(shown_cost - expected) <= 1


def test_link_and_clock_use_the_app_clock(gui, qtbot) -> None:
    _settle(qtbot, gui)
    assert _text(gui, "linkText").startswith("Meter heard")
    assert gui.controller.link.state == "live"
    assert gui.controller.house_clock.timeText == "07:00"


def test_screenshot_is_the_home_screen(gui, qtbot, tmp_path: Path) -> None:
    _settle(qtbot, gui)
    out = tmp_path / "home.png"
    assert gui.screenshot(out)
    img = QImage(str(out))
    assert (img.width(), img.height()) == (800, 480)
    # Not a blank window: the theme background plus bright text and accent colours.
    colours = {img.pixel(x, y) for x in range(0, 800, 7) for y in range(0, 480, 7)}
    assert len(colours) > 20
    artifacts = os.environ.get("IHD_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        img.save(str(Path(artifacts) / "home.png"))


def test_today_model_updates_rows_without_reset(gui, played, qtbot) -> None:
    """The list model diffs: a new snapshot changes data in place, rows stay."""
    _settle(qtbot, gui)
    model = gui.controller.today
    resets: list[int] = []
    removed: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    model.rowsRemoved.connect(lambda *a: removed.append(1))
    changed: list[list[int]] = []
    model.dataChanged.connect(lambda a, b, roles: changed.append(list(roles)))
    snap, _ = played
    today = dict(snap.today)
    e = today[Utility.ELECTRICITY]
    from dataclasses import replace

    today[Utility.ELECTRICITY] = replace(e, energy_wh=(e.energy_wh or 0) + 500)
    gui.controller.apply(replace(snap, today=today))
    assert model.rowCount() == 3
    assert not resets and not removed
    assert changed, "expected dataChanged for the electricity row"


def test_old_demand_is_not_shown_as_now(gui, played, qtbot) -> None:
    """After an outage the gauge shows no number rather than an hour-old one."""
    from dataclasses import replace

    _settle(qtbot, gui)
    snap, _ = played
    assert snap.demand_at is not None
    gui.controller.apply(replace(snap, demand_at=RUN_UNTIL - 3600))
    qtbot.waitUntil(lambda: _text(gui, "demandText") == "–", timeout=3000)
    assert _text(gui, "costPerHourText") == ""
    gui.controller.apply(snap)
    qtbot.waitUntil(lambda: _text(gui, "demandText") != "–", timeout=3000)
