"""Pairing as the touch screen will drive it: the ``Pairing`` QML singleton over the
runner's own pipeline, with statuses crossing from the pipeline's threads by signal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import PySide6.QtQuick  # noqa: F401  (so the root object is a QQuickWindow)
from PySide6.QtQuick import QQuickItem

from ihd.app.pipeline import Pipeline
from ihd.app.runner import build_pipeline
from ihd.clock import ScaledClock
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.radio.sim import SimRadio
from ihd.sim.world import SimWorld, demo_world
from ihd.smwap.keys import KeyFile
from ihd.tariff import GBP

T0 = 1_764_000_000.0


@pytest.fixture
def running(tmp_path: Path, qapp: object) -> Iterator[tuple[object, Pipeline, SimWorld]]:
    from ihd.ui.app import Gui

    clock = ScaledClock(T0, 60.0)
    world = demo_world(seed=6, start=T0, joined=[])
    diag = Diagnostics()
    pipeline = build_pipeline(
        cfg=Config(),
        db_path=tmp_path / "ihd.db",
        clock=clock,
        radio=SimRadio(world, clock=clock, diag=diag),
        keyfile=KeyFile(tmp_path / "keys.json"),
        display_eui64=world.display_eui64,
        diag=diag,
    )
    gui = Gui(
        clock=clock,
        currency=GBP,
        tz="Europe/London",
        pairing=pipeline.pairing,
        diag=pipeline.diag,
    )
    pipeline.add_listener(gui.listener())
    pipeline.start()
    try:
        yield gui, pipeline, world
    finally:
        pipeline.stop()
        gui.close()


def _text(gui: object, name: str) -> str:
    def find(item: QQuickItem) -> QQuickItem | None:
        if item.objectName() == name:
            return item
        for child in item.childItems():
            if (found := find(child)) is not None:
                return found
        return None

    item = find(gui.window.contentItem())  # type: ignore[attr-defined]
    assert item is not None, name
    return str(item.property("text"))


def test_unpaired_then_paired_from_the_screen(running, qtbot) -> None:
    gui, pipeline, world = running
    pairing = gui.controller.pairing
    qtbot.waitUntil(lambda: _text(gui, "linkText") == "No meter paired", timeout=3000)
    assert pairing.pairedCount == 0 and pairing.state == "idle"

    sent = pipeline.diag.counter("radio.tx_frames")
    pairing.start("1234")  # what a child might type
    assert pairing.state == "failed" and "16, 20, 28 or 36" in pairing.message
    assert pipeline.diag.counter("radio.tx_frames") == sent  # nothing went on the air

    elec = next(e for e, d in world.devices().items() if d.utility is Utility.ELECTRICITY)
    steps: list[str] = []
    pairing.changed.connect(lambda: steps.append(pairing.step))
    pairing.start(world.install_codes()[elec])
    qtbot.waitUntil(lambda: pairing.state == "paired", timeout=10_000)
    assert steps == ["searching", "found", "confirming", "paired"]
    assert pairing.pairedCount == 1
    assert pairing.message == "Paired with your electricity meter."
    qtbot.waitUntil(lambda: _text(gui, "linkText").startswith("Meter heard"), timeout=10_000)


def test_a_display_problem_shows_as_one_sentence(running, qtbot, tmp_path: Path) -> None:
    gui, pipeline, _ = running

    def banner() -> QQuickItem | None:
        def find(item: QQuickItem) -> QQuickItem | None:
            if item.objectName() == "warningBanner":
                return item
            for child in item.childItems():
                if (found := find(child)) is not None:
                    return found
            return None

        return find(gui.window.contentItem())

    qtbot.waitUntil(lambda: banner() is not None, timeout=3000)
    assert not banner().isVisible()  # all is well: nothing shown
    full = "History is not being saved: the storage is full. Live readings are still shown."
    pipeline.diag.set("store.warning", full)  # what the store says on a full disk
    qtbot.waitUntil(lambda: banner().isVisible(), timeout=3000)
    assert _text(gui, "warningText") == full
    gui.screenshot(tmp_path / "warning.png")
    pipeline.diag.set("store.warning", "")
    qtbot.waitUntil(lambda: not banner().isVisible(), timeout=3000)
