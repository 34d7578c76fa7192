"""Pairing in the running display: the sans-I/O handshake (:mod:`ihd.smwap.link`) wired to
the radio, the clock, the key file and the receive path.

One session at a time (a householder pairs one meter, then the next). Frames reach the
session from the ingest thread (``Ingest.on_frame``); retries and the end of the window
come from a small "ihd-pairing" thread that lives only while a session runs. A lock makes
the two take turns. When a meter pairs, its keys are saved first (0600 key file) and only
then used: the receiver gets a new key table and the ingest a new meter list, each
swapped in as one reference, so the ingest thread never sees half of a change.

Outcomes reach listeners (the UI, a ``ihd pair`` client) as :class:`PairingStatus`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ihd.app.ingest import Ingest
from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.meter.cipher import DlmsKeys
from ihd.meter.device import MeterDevice
from ihd.meter.reading import Utility
from ihd.radio.contract import Radio, RadioError, RxInfo
from ihd.smwap.fcs import compute_fcs
from ihd.smwap.installcode import parse_install_code
from ihd.smwap.keys import KeyFile, KeyFileError, PairedKeys, PairedMeter
from ihd.smwap.link import (
    DisplayPairing,
    Event,
    Failed,
    MeterUtility,
    Paired,
    Progress,
    Send,
)
from ihd.smwap.link import PairedMeter as LinkPaired
from ihd.smwap.mac import Address, AddrMode, AuxSecurityHeader, MacFrame
from ihd.smwap.receiver import Received
from ihd.smwap.security import SecurityError, key_id

log = logging.getLogger("ihd.pairing")

_UTILITY = {
    MeterUtility.ELECTRICITY: Utility.ELECTRICITY,
    MeterUtility.GAS: Utility.GAS,
    MeterUtility.WATER: Utility.WATER,
}
_LABEL = {
    Utility.ELECTRICITY: "Electricity meter",
    Utility.GAS: "Gas meter",
    Utility.WATER: "Water meter",
}

#: Store state: the display's next outgoing frame counter (it must never repeat under a key).
FRAME_COUNTER_KEY = "display.frame_counter"


@dataclass(frozen=True, slots=True)
class PairingStatus:
    """What to show. ``state``: idle, pairing, paired or failed; ``step`` the handshake step
    (searching, found, confirming) or the failure reason (wrong_code, timeout,
    out_of_range, rejected); ``meter`` the EUI-64 once known."""

    state: str
    step: str = ""
    message: str = ""
    meter: str = ""
    utility: str = ""

    @property
    def done(self) -> bool:
        return self.state in ("paired", "failed")

    def as_dict(self) -> dict[str, str]:
        return {
            "state": self.state,
            "step": self.step,
            "message": self.message,
            "meter": self.meter,
            "utility": self.utility,
        }


def dlms_keys(keys: PairedKeys) -> dict[str, DlmsKeys]:
    """The meters' DLMS keys (general-glo-ciphering), as the meter gave them at pairing."""
    out = {}
    for m in keys:
        k = DlmsKeys.from_paired(m)
        if k is not None:
            out[m.eui64_text] = k
    return out


def meter_devices(keys: PairedKeys) -> dict[str, MeterDevice]:
    """The paired meters as the ingest knows them (EUI-64 text -> device)."""
    return {m.eui64_text: MeterDevice(m.eui64_text, Utility(m.utility), m.label) for m in keys}


class PairingService:
    def __init__(
        self,
        *,
        radio: Radio,
        clock: Clock,
        keyfile: KeyFile,
        ingest: Ingest,
        display_eui: int,
        diag: Diagnostics,
        fcs_len: int = 4,
        frame_counter: int = 0,
        save_counter: Callable[[int], None] | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        ingest_turn: threading.Lock | None = None,
        pan_id: int | None = None,
    ) -> None:
        self.radio = radio
        self.clock = clock
        self.keyfile = keyfile
        self.ingest = ingest
        self.display_eui = display_eui
        self.diag = diag
        self.fcs_len = fcs_len
        self.frame_counter = frame_counter
        self._save_counter = save_counter
        self._rng = rng
        self._pan = pan_id  # the PAN the radio filters on
        # Held by the ingest thread while it handles a frame: commands from other threads
        # take it before touching the ingest's state (always before self._lock).
        self._ingest_turn = ingest_turn or threading.Lock()
        self.status = PairingStatus("idle")
        self.listeners: list[Callable[[PairingStatus], None]] = []
        self._lock = threading.RLock()
        self._session: DisplayPairing | None = None
        self._link_window_end = 0.0  # late answers to a broadcast request count as pairing
        self._label: str | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- commands (any thread) ----------------------------------------------------------
    def start(self, install_code: str, *, meter_eui: int | None = None, label: str = "") -> None:
        """Begin pairing. Raises InstallCodeError (a typo: nothing was sent) or
        RuntimeError (a session is already running)."""
        code = parse_install_code(install_code)
        with self._lock:
            if self._session is not None:
                raise RuntimeError("pairing is already in progress")
            self._session = DisplayPairing(
                self.display_eui,
                code,
                self._rng,
                meter_eui=meter_eui,
                frame_counter=self.frame_counter,
            )
            self._label = label or None
            self.diag.count("pairing.started")
            events = self._session.start(self.clock.now())
            self._handle(events)
        self._ensure_thread()

    def unpair(self, eui64: int) -> bool:
        """Forget a meter's keys (its history stays). False if it was not paired."""
        with self._ingest_turn, self._lock:
            removed = self.keyfile.remove(eui64)
            if removed:
                self._apply(self.keyfile.load())
                self.ingest.receiver.guard.forget(eui64)
                self.diag.count("pairing.unpaired")
                log.info("unpaired meter %016X (its history is kept)", eui64)
        return removed

    def paired(self) -> PairedKeys:
        return self.keyfile.load()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    # --- from the ingest thread ----------------------------------------------------------
    def on_frame(self, rx: Received, info: RxInfo) -> bool:
        """A frame the display heard; True if it was a pairing message of this session."""
        session = self._session
        if session is None or rx.frame is None or rx.raw is None:
            return False
        with self._lock:
            if self._session is not session:
                return False
            events = session.receive(rx.raw, rx.frame, info.rssi_dbm, info.timestamp)
            self._handle(events)
        return bool(events) or rx.outcome == "link"

    def is_link_frame(self, frame: MacFrame) -> bool:
        """Is this secured frame pairing traffic for us (under a link key, key identifier
        mode 0, addressed to this display) while pairing runs or just after? Answers to a
        broadcast request come from every meter in pairing mode, also after ours answered.
        The receiver asks, so that such frames are not counted as "unknown key"."""
        aux, src = frame.aux, frame.src
        return (
            (self._session is not None or self.clock.now() < self._link_window_end)
            and aux is not None
            and aux.key_id_mode == 0
            and frame.dst == Address.ext(self.display_eui)
            and src is not None
            and src.mode is AddrMode.EXTENDED
        )

    # --- internals -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="ihd-pairing", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                session = self._session
                at = session.next_tick_at if session is not None else None
            if at is None:
                return
            self._wake.clear()
            self.clock.sleep_until(at, self._wake)
            with self._lock:
                if self._session is session and session is not None:
                    self._handle(session.tick(self.clock.now()))

    def _handle(self, events: list[Event]) -> None:
        session = self._session
        assert session is not None
        for ev in events:
            if isinstance(ev, Send):
                self._send(ev.mpdu)
            elif isinstance(ev, Progress):
                meter = f"{session.meter_eui:016X}" if session.meter_eui is not None else ""
                self._set(PairingStatus("pairing", ev.step, ev.message, meter))
            elif isinstance(ev, Paired):
                self._paired(ev.meter)
            elif isinstance(ev, Failed):
                self.diag.count(f"pairing.failed.{ev.reason.value}")
                log.warning("pairing failed: %s", ev.reason.value)
                self._end(PairingStatus("failed", ev.reason.value, ev.message))
        if session.frame_counter != self.frame_counter:
            self.frame_counter = session.frame_counter
            if self._save_counter is not None:
                self._save_counter(self.frame_counter)

    def _send(self, mpdu: bytes) -> None:
        try:
            self.radio.transmit(mpdu + compute_fcs(mpdu, self.fcs_len), fcs_len=self.fcs_len)
        except RadioError as e:  # the handshake retries; the window's end says what happened
            self.diag.count("pairing.tx_errors")
            log.warning("pairing: could not send: %s", e)

    def _paired(self, got: LinkPaired) -> None:
        utility = _UTILITY[got.utility]
        label = self._label or _LABEL[utility]
        meter = PairedMeter(
            eui64=got.eui64,
            utility=utility.value,
            label=label,
            pan_id=got.pan_id,
            network_key=got.network_key,
            key_index=got.network_key_index,
            dlms_system_title=got.dlms_system_title,
            dlms_encryption_key=got.dlms_encryption_key,
            dlms_authentication_key=got.dlms_authentication_key,
        )
        eui = f"{got.eui64:016X}"
        try:
            keys = self.keyfile.add(meter)
        except KeyFileError as e:
            self.diag.count("pairing.failed.keyfile")
            log.error("pairing: %s", e)
            self._end(
                PairingStatus(
                    "failed", "keyfile", "The display could not save the meter's keys.", eui
                )
            )
            return
        guard = self.ingest.receiver.guard
        guard.forget(got.eui64)  # a re-paired meter starts a new key's counters
        floor = AuxSecurityHeader(5, 0, key_index=got.network_key_index)
        # Frames it sends later continue its one counter: anything older is a replay.
        with contextlib.suppress(SecurityError):
            guard.accept(got.eui64, key_id(floor), got.meter_frame_counter)
        self._apply(keys)
        self.diag.count("pairing.paired")
        log.info("paired with %s %s", utility.value, eui)
        message = f"Paired with your {label.lower()}."
        self._end(PairingStatus("paired", "paired", message, eui, utility.value))

    def _apply(self, keys: PairedKeys) -> None:
        """Use ``keys`` from the next frame on (each swap is one reference), and put the
        radio's address filter in the meters' PAN so that their pushes pass it."""
        self.ingest.receiver.keys = keys.key_table()
        self.ingest.meters = meter_devices(keys)
        self.ingest.dlms_keys = dlms_keys(keys)
        self.diag.set("pairing.meters", len(keys))
        pan = next((m.pan_id for m in keys), None)
        if pan is not None and pan != self._pan:
            try:
                self.radio.set_addresses(eui64=f"{self.display_eui:016X}", pan_id=pan, short=None)
                self._pan = pan
            except (RadioError, ValueError) as e:
                self.diag.count("pairing.radio_errors")
                log.warning("pairing: could not set the radio's PAN 0x%04X: %s", pan, e)

    def _end(self, status: PairingStatus) -> None:
        session = self._session
        if session is not None:
            self._link_window_end = self.clock.now() + session.timeout_s
        self._session = None
        self._set(status)

    def _set(self, status: PairingStatus) -> None:
        self.status = status
        for listener in list(self.listeners):
            try:
                listener(status)
            except Exception:
                log.exception("a pairing listener failed")
