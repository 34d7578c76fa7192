"""The running display: threads and queues around the sans-I/O layers.

    radio thread ──RxFrame──▶ frames queue ──▶ ingest thread ──Batch──▶ store writer thread
                                                   │
                                                   └──Snapshot──▶ listeners (UI signal, printer)

* radio thread ("ihd-radio"): blocks in ``Radio.receive`` and only moves frames into a
  bounded queue, so a slow decode or a disk stall never makes the radio miss a frame.
* ingest thread ("ihd-ingest"): PHY/MAC checks, meter decoding, pricing, live state. It
  submits batches to the store without waiting and calls listeners with snapshots.
* store writer ("ihd-store", owned by ``Store``): commits everything pending once per
  commit interval.
* housekeeping ("ihd-housekeeping"): publishes the diagnostics snapshot for ``ihd diag``
  and rolls "today" over at local midnight even when no meter speaks.
* the GUI thread (when there is one) only receives snapshots through a Qt signal.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from ihd.app.ingest import Ingest
from ihd.app.live import Snapshot
from ihd.app.pairing import PairingService
from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.radio.contract import Radio, RadioError, RxFrame
from ihd.store import Store

log = logging.getLogger("ihd.pipeline")

Listener = Callable[[Snapshot], None]


class Pipeline:
    def __init__(
        self,
        *,
        radio: Radio,
        ingest: Ingest,
        store: Store,
        diag: Diagnostics,
        clock: Clock,
        diag_path: Path | None = None,
        queue_size: int = 4096,
        pairing: PairingService | None = None,
        turn: threading.Lock | None = None,
        ambient: Callable[[Snapshot], dict[Utility, str]] | None = None,
    ) -> None:
        self.radio = radio
        self.pairing = pairing
        self.ambient = ambient  # the traffic lights, from the store (ihd.app.ambient)
        self.ingest = ingest
        self.store = store
        self.diag = diag
        self.clock = clock
        self.diag_path = diag_path
        self.listeners: list[Listener] = []
        self._frames: queue.Queue[RxFrame | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Ingest is not thread-safe and listeners expect one caller at a time: the ingest
        # and housekeeping threads take turns (handle or roll_day, then publish).
        self._turn = turn or threading.Lock()
        self._observe: Callable[[float], None] | None = getattr(clock, "observe", None)

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def start(self) -> None:
        try:
            self.radio.open()
        except RadioError as e:  # the display stays up and says so; receive() keeps trying
            self._radio_failed(e)
        self.store.start()
        self.diag.set("radio.name", self.radio.name)
        self._publish(self.ingest.snapshot())
        for name, target in (
            ("ihd-radio", self._radio_loop),
            ("ihd-ingest", self._ingest_loop),
            ("ihd-housekeeping", self._housekeeping_loop),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop threads, commit what is pending, close the radio. Safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._frames.put_nowait(None)
        for t in self._threads:
            t.join(timeout=5)
        if self.pairing is not None:
            self.pairing.stop()
        self.radio.close()
        self.store.close()
        self._write_diag()

    # --- threads -----------------------------------------------------------------------
    def _radio_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.radio.receive(0.25)
            except RadioError as e:
                self._radio_failed(e)
                self._stop.wait(1.0)
                continue
            if frame is None:
                continue
            self.diag.count("radio.frames")
            try:
                self._frames.put_nowait(frame)
            except queue.Full:
                self.diag.count("pipeline.queue_overflow")
                log.warning("ingest is behind: dropped a received frame")

    def _ingest_loop(self) -> None:
        while True:
            frame = self._frames.get()
            if frame is None or self._stop.is_set():
                return
            with self._turn:
                try:
                    result = self.ingest.handle(frame)
                except Exception:  # a bug must not take the display down; count and go on
                    self.diag.count("pipeline.ingest_crash")
                    log.exception("unexpected error while handling a frame")
                    continue
                if result is None:
                    continue
                batch, snap = result
                if batch is not None:
                    self.store.submit(batch)
                if snap.readings and self._observe is not None:  # meters keep time
                    self._observe(max(r.timestamp for r in snap.readings))
                self._publish(snap)

    def _housekeeping_loop(self) -> None:
        while not self._stop.wait(5.0):
            with self._turn:
                snap = self.ingest.roll_day(self.clock.now())
                if snap is not None:
                    self._publish(snap)
                current = self.ingest.snapshot()
            self._update_lights(current)
            source = getattr(self.clock, "source", None)
            if source is not None:  # which clock "now" follows (household.clock)
                self.diag.set("clock.source", source)
            self._write_diag()

    def _update_lights(self, snap: Snapshot) -> None:
        if self.ambient is None:
            return
        try:
            lights = self.ambient(snap)  # store queries: outside the ingest's turn
        except Exception:  # a light is a nicety: never let it stop the housekeeping
            self.diag.count("pipeline.ambient_errors")
            log.exception("could not work out the traffic lights")
            return
        with self._turn:
            if lights != self.ingest.lights:
                self.ingest.lights = lights
                self._publish(self.ingest.snapshot())

    # --- helpers -----------------------------------------------------------------------
    def _radio_failed(self, e: RadioError) -> None:
        self.diag.count("radio.errors")
        self.diag.set("radio.status", f"error: {e}")
        log.error("radio: %s", e)

    def _publish(self, snap: Snapshot) -> None:
        for listener in self.listeners:
            try:
                listener(snap)
            except Exception:
                self.diag.count("pipeline.listener_errors")
                log.exception("a snapshot listener failed")

    def _write_diag(self) -> None:
        with self._turn:  # the neighbour table belongs to the ingest thread
            neighbours = self.ingest.receiver.neighbours.snapshot()
        self.diag.set_many(neighbours)
        if self.diag_path is None:
            return
        try:
            self.diag.write_snapshot(self.diag_path)
        except OSError as e:
            log.warning("cannot write diagnostics snapshot %s: %s", self.diag_path, e)
