"""Start the Qt Quick UI on top of a running pipeline.

The GUI thread only runs Qt: it never touches the radio, the decoder or the disk. The
pipeline's listener emits ``UiController.snapshotReady`` from the ingest thread, and Qt
delivers it here as a queued call.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtQml import QQmlApplicationEngine, QQmlError
from PySide6.QtQuick import QQuickWindow

from ihd.app.live import Snapshot
from ihd.app.pairing import PairingService
from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.tariff.money import Currency

log = logging.getLogger("ihd.ui")


def qml_import_path() -> Path:
    """The directory that holds the ``Ihd`` QML module: inside the wheel, or the repo."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "qml", here.parent / "qml"):
        if (candidate / "Ihd" / "qmldir").is_file():
            return candidate
    raise FileNotFoundError("the Ihd QML module is missing from this installation")


def has_display() -> bool:
    """Can Qt open a window here? (Offscreen rendering always works.)"""
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return True
    if sys.platform != "linux":
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def _log_qml_warnings(warnings: list[QQmlError]) -> None:
    for w in warnings:
        log.warning("QML: %s", w.toString())


class Gui:
    """The application, engine and controller, built in the GUI thread."""

    def __init__(
        self,
        *,
        clock: Clock,
        currency: Currency,
        tz: str,
        pairing: PairingService | None = None,
        diag: Diagnostics | None = None,
    ) -> None:
        from ihd.ui.backend import UiController  # registers the QML types

        QGuiApplication.setApplicationName("ihd")
        QGuiApplication.setApplicationDisplayName("Home energy")
        QGuiApplication.setOrganizationName("ihd")
        self.app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
        self.controller = UiController(
            clock=clock, currency=currency, tz=tz, pairing=pairing, diag=diag
        )
        self.engine = QQmlApplicationEngine()
        self.engine.addImportPath(str(qml_import_path()))
        self.engine.warnings.connect(_log_qml_warnings)
        self.engine.loadFromModule("Ihd", "Main")
        roots = self.engine.rootObjects()
        if not roots or not isinstance(roots[0], QQuickWindow):
            raise RuntimeError("the QML user interface failed to load (see the QML errors above)")
        self.window: QQuickWindow = roots[0]

    def listener(self) -> Callable[[Snapshot], None]:
        """A callable for the pipeline: safe to call from any thread."""
        signal = self.controller.snapshotReady
        return lambda snap: signal.emit(snap)

    def screenshot(self, path: Path) -> bool:
        image = self.window.grabWindow()
        path.parent.mkdir(parents=True, exist_ok=True)
        return bool(image.save(str(path)))

    def run(
        self,
        *,
        run_for: float | None = None,
        screenshot: Path | None = None,
        on_quit: Callable[[], None] | None = None,
    ) -> int:
        status = {"code": 0}
        if run_for is not None:

            def finish() -> None:
                if screenshot is not None:
                    if self.screenshot(screenshot):
                        log.info("saved screenshot to %s", screenshot)
                    else:
                        log.error("could not save a screenshot to %s", screenshot)
                        status["code"] = 1
                self.app.quit()

            QTimer.singleShot(int(run_for * 1000), finish)
        code = self.app.exec()
        if on_quit:
            on_quit()
        return code or status["code"]

    def close(self) -> None:
        # Delete the engine before the singletons' owner so that QML bindings never see
        # dead Python objects at exit; the pairing service must not call into a dead UI.
        self.controller.pairing.detach()
        self.engine.deleteLater()
        del self.engine
