"""The QObjects that QML sees: one per concept on the screen.

They are registered as QML singletons in the ``Ihd.Backend`` module (not context
properties, whose objects die before the engine at exit). Each holds display-ready
values with notify signals; ``UiController`` is the only writer, and it runs in the GUI
thread. Background threads reach it only by emitting ``UiController.snapshotReady``,
which Qt queues onto the GUI thread.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from enum import IntEnum, auto
from typing import Any, ClassVar, TypeVar

from PySide6.QtCore import Property, QObject, QTimer, Signal, Slot
from PySide6.QtQml import QmlElement, QmlSingleton, QQmlEngine

from ihd.app.live import Snapshot, UtilityToday
from ihd.app.pairing import PairingService, PairingStatus
from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.smwap.installcode import InstallCodeError
from ihd.tariff.money import Currency
from ihd.ui import text
from ihd.ui.listmodel import RoleListModel

QML_IMPORT_NAME = "Ihd.Backend"
QML_IMPORT_MAJOR_VERSION = 1

T = TypeVar("T", bound=QObject)


class _Provided:
    """Mixin: the engine asks ``create`` for the instance the app made (one per process)."""

    _instance: ClassVar[QObject | None] = None

    @classmethod
    def provide(cls: type[T], instance: T) -> T:  # type: ignore[misc]
        cls._instance = instance  # type: ignore[attr-defined]
        return instance

    @staticmethod
    def _own(engine: QQmlEngine, obj: QObject | None) -> QObject:
        if obj is None:
            raise RuntimeError("backend singleton requested before the app provided it")
        QQmlEngine.setObjectOwnership(obj, QQmlEngine.ObjectOwnership.CppOwnership)
        return obj


@QmlElement
@QmlSingleton
class Live(QObject, _Provided):
    """Electricity demand right now, and what it costs."""

    changed = Signal()
    FRESH_FOR_S: ClassVar[float] = 120.0

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._watts = 0.0
        self._has = False
        self._demand = "–"
        self._cost = ""

    @staticmethod
    def create(engine: QQmlEngine) -> QObject:
        return _Provided._own(engine, Live._instance)

    def set(self, watts: float | None, cost_text: str) -> None:
        has = watts is not None
        demand = text.kilowatts(watts) if watts is not None else "–"
        new = (float(watts or 0.0), has, demand, cost_text)
        if new != (self._watts, self._has, self._demand, self._cost):
            self._watts, self._has, self._demand, self._cost = new
            self.changed.emit()

    @Property(float, notify=changed)
    def watts(self) -> float:
        return self._watts

    @Property(bool, notify=changed)
    def hasDemand(self) -> bool:
        return self._has

    @Property(str, notify=changed)
    def demandText(self) -> str:
        return self._demand

    @Property(str, notify=changed)
    def costPerHourText(self) -> str:
        return self._cost


@QmlElement
@QmlSingleton
class Link(QObject, _Provided):
    """Is the display hearing its meters? ``state``: waiting, live, stale or lost."""

    changed = Signal()
    STALE_AFTER_S: ClassVar[float] = 60.0
    LOST_AFTER_S: ClassVar[float] = 300.0

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = "waiting"
        self._text = "Waiting for the meter"

    @staticmethod
    def create(engine: QQmlEngine) -> QObject:
        return _Provided._own(engine, Link._instance)

    def refresh(self, last_frame_at: float | None, now: float, *, paired: bool = True) -> None:
        if not paired:
            state, msg = "unpaired", "No meter paired"
        elif last_frame_at is None:
            state, msg = "waiting", "Waiting for the meter"
        else:
            age = now - last_frame_at
            state = (
                "live"
                if age < self.STALE_AFTER_S
                else "stale"
                if age < self.LOST_AFTER_S
                else "lost"
            )
            msg = f"Meter heard {text.age(age)}"
        if (state, msg) != (self._state, self._text):
            self._state, self._text = state, msg
            self.changed.emit()

    @Property(str, notify=changed)
    def state(self) -> str:
        return self._state

    @Property(str, notify=changed)
    def text(self) -> str:
        return self._text


@QmlElement
@QmlSingleton
class HouseClock(QObject, _Provided):
    """The household's local time, from the app clock (simulated time in the demo)."""

    changed = Signal()

    def __init__(self, tz: str = "UTC", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tz = zoneinfo.ZoneInfo(tz)
        self._time = ""
        self._date = ""

    @staticmethod
    def create(engine: QQmlEngine) -> QObject:
        return _Provided._own(engine, HouseClock._instance)

    def refresh(self, now: float) -> None:
        local = dt.datetime.fromtimestamp(now, self._tz)
        t, d = local.strftime("%H:%M"), local.strftime("%A %-d %B")
        if (t, d) != (self._time, self._date):
            self._time, self._date = t, d
            self.changed.emit()

    @Property(str, notify=changed)
    def timeText(self) -> str:
        return self._time

    @Property(str, notify=changed)
    def dateText(self) -> str:
        return self._date


@QmlElement
@QmlSingleton
class Pairing(QObject, _Provided):
    """Pairing with a meter, for the screen that will drive it: ``state`` is idle, pairing,
    paired or failed; ``message`` is what to show; ``start(code)`` begins.

    Status arrives from the pipeline's threads through a queued signal, like snapshots.
    """

    changed = Signal()
    statusReady = Signal(object)

    def __init__(self, service: PairingService | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._service = service
        self._state, self._step, self._message = "idle", "", ""
        self._count = len(service.paired()) if service is not None else 0
        self.statusReady.connect(self._apply)
        self._listener = self.statusReady.emit  # called from the pipeline's threads
        if service is not None:
            service.listeners.append(self._listener)

    @staticmethod
    def create(engine: QQmlEngine) -> QObject:
        return _Provided._own(engine, Pairing._instance)

    @property
    def available(self) -> bool:
        return self._service is not None

    @property
    def has_meters(self) -> bool:
        return self._count > 0

    def detach(self) -> None:
        """Stop listening (the service outlives the UI)."""
        if self._service is not None and self._listener in self._service.listeners:
            self._service.listeners.remove(self._listener)

    @Slot(object)
    def _apply(self, status: PairingStatus) -> None:
        self._state, self._step, self._message = status.state, status.step, status.message
        if self._service is not None and status.done:
            self._count = len(self._service.paired())
        self.changed.emit()

    @Slot(str)
    def start(self, install_code: str) -> None:
        """Begin pairing with the code the householder typed (any meter that answers)."""
        if self._service is None:
            self._apply(PairingStatus("failed", "unavailable", "Pairing is not available."))
            return
        try:
            self._service.start(install_code)
        except InstallCodeError as e:
            self._apply(PairingStatus("failed", "typo", str(e).capitalize() + "."))
        except RuntimeError:
            self._apply(PairingStatus("pairing", self._step, "Pairing is already under way."))

    @Property(str, notify=changed)
    def state(self) -> str:
        return self._state

    @Property(str, notify=changed)
    def step(self) -> str:
        return self._step

    @Property(str, notify=changed)
    def message(self) -> str:
        return self._message

    @Property(int, notify=changed)
    def pairedCount(self) -> int:
        return self._count


@QmlElement
@QmlSingleton
class Status(QObject, _Provided):
    """Something the household should know about the display itself (history not being
    saved, the radio not answering); ``warning`` is empty when all is well."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._warning = ""

    @staticmethod
    def create(engine: QQmlEngine) -> QObject:
        return _Provided._own(engine, Status._instance)

    def refresh(self, warning: str) -> None:
        if warning != self._warning:
            self._warning = warning
            self.changed.emit()

    @Property(str, notify=changed)
    def warning(self) -> str:
        return self._warning


def status_warning(diag: Diagnostics) -> str:
    """The one sentence to show, most important first: history, then the radio."""
    store = diag.state("store.warning")
    if isinstance(store, str) and store:
        return store
    radio = diag.state("radio.status")
    if isinstance(radio, str) and radio.startswith("error"):
        return "The radio is not working, so no new readings arrive. See ihd diag for why."
    return ""


class TodayRoles(IntEnum):
    utility = 0x0101
    title = auto()
    amountText = auto()
    unit = auto()
    costText = auto()
    detailText = auto()
    hasData = auto()
    light = auto()  # green, amber, red, or "" (no budget and no history to compare with)
    lightText = auto()


_TITLES = {Utility.ELECTRICITY: "Electricity", Utility.GAS: "Gas", Utility.WATER: "Water"}


@QmlElement
@QmlSingleton
class Today(RoleListModel, _Provided):
    """Since local midnight, per utility: one row each, in a fixed order."""

    Roles = TodayRoles
    key_role = "utility"

    @staticmethod
    def create(engine: QQmlEngine) -> QObject:
        return _Provided._own(engine, Today._instance)

    def set_today(
        self,
        today: dict[Utility, UtilityToday],
        currency: Currency,
        lights: Mapping[Utility, str] | None = None,
    ) -> None:
        rows = []
        for utility in (Utility.ELECTRICITY, Utility.GAS, Utility.WATER):
            u = today.get(utility)
            light, _, basis = (lights or {}).get(utility, "").partition(":")
            said = _LIGHT_TEXT.get((light, basis), "")
            rows.append(
                {
                    **_today_row(utility, u, currency),
                    "light": light if said else "",
                    "lightText": said,
                }
            )
        self.update(rows)


#: Said next to the light, so that it does not rest on colour alone.
_LIGHT_TEXT = {
    ("green", "budget"): "Within budget",
    ("amber", "budget"): "Ahead of budget",
    ("red", "budget"): "Over budget",
    ("green", "usual"): "Usual or less",
    ("amber", "usual"): "More than usual",
    ("red", "usual"): "Much more than usual",
}


def _today_row(utility: Utility, u: UtilityToday | None, currency: Currency) -> dict[str, Any]:
    if utility is Utility.WATER:
        amount, unit = (text.litres(u.amount) if u else "–"), "litres"
    else:
        wh = u.energy_wh if u and u.energy_wh is not None else None
        amount, unit = (text.kilowatt_hours(wh) if wh is not None else "–"), "kWh"
    return {
        "utility": str(utility),
        "title": _TITLES[utility],
        "amountText": amount,
        "unit": unit,
        "costText": text.money(u.total_milli, currency) if u else "–",
        "detailText": (
            f"incl. {text.money(u.standing_milli, currency)} standing"
            if u and u.standing_milli
            else ""
        ),
        "hasData": u is not None,
    }


class UiController(QObject):
    """Applies snapshots from the pipeline to the singletons, in the GUI thread."""

    snapshotReady = Signal(object)

    def __init__(
        self,
        *,
        clock: Clock,
        currency: Currency,
        tz: str,
        pairing: PairingService | None = None,
        diag: Diagnostics | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.clock = clock
        self.diag = diag
        self.status = Status.provide(Status(self))
        self.pairing = Pairing.provide(Pairing(pairing, self))
        self.currency = currency
        self.live = Live.provide(Live(self))
        self.link = Link.provide(Link(self))
        self.house_clock = HouseClock.provide(HouseClock(tz, self))
        self.today = Today.provide(Today(self))
        self.today.set_today({}, currency)
        self.last: Snapshot | None = None
        self.snapshotReady.connect(self.apply)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.tick)
        self._timer.start()
        self.tick()

    @Slot(object)
    def apply(self, snap: Snapshot) -> None:
        self.last = snap
        self.today.set_today(dict(snap.today), self.currency, snap.lights)
        self.tick()

    @Slot()
    def tick(self) -> None:
        now = self.clock.now()
        self.house_clock.refresh(now)
        snap = self.last
        if self.diag is not None:
            self.status.refresh(status_warning(self.diag))
        paired = self.pairing.has_meters or not self.pairing.available
        self.link.refresh(snap.last_frame_at if snap else None, now, paired=paired)
        # A demand figure is "now" only while it is fresh: after an outage the gauge shows
        # no number rather than an old one (the link line says how old the data is).
        fresh = (
            snap is not None
            and snap.demand_w is not None
            and snap.demand_at is not None
            and now - snap.demand_at < Live.FRESH_FOR_S
        )
        if fresh and snap is not None and snap.demand_cost_milli_per_h is not None:
            self.live.set(snap.demand_w, text.per_hour(snap.demand_cost_milli_per_h, self.currency))
        elif fresh and snap is not None:
            self.live.set(snap.demand_w, "")
        else:
            self.live.set(None, "")
