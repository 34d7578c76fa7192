"""The simulated radio: the display's receiver on the simulated air.

It behaves like a radio that leaves framing to the host (CC1200-style): it gets whole
PPDUs off the air and runs ``smwap.phy`` to find the PHR, de-whiten and cut out the PSDU,
then hands the PSDU with its ``RxInfo`` to the pipeline like any other radio. A PPDU whose
PHR is damaged is dropped here and counted, as a real demodulator would lose it.

Like the AT86RF215 with its address filter and auto-ACK, it acknowledges frames addressed
to the display that ask for an ACK and pass the FCS, one turnaround time (1 ms) after they
end, without involving the host. Like a chip's CSMA-CA, ``transmit`` waits for its own
last frame (an ACK, say) to end and for a clear channel, backing off a few times.

In ``open()`` it starts the "ihd-sim" thread that advances the simulated household and air
on the demo clock; ``pump=False`` leaves that to the caller (tests).
"""

from __future__ import annotations

import logging
import queue
import random
import threading

from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.radio.contract import RxFrame, RxInfo
from ihd.sim.air import AirRx
from ihd.sim.world import SimWorld
from ihd.smwap.errors import FrameError, PhyError
from ihd.smwap.mac import Address, AddrMode, FrameType, MacFrame, build_mpdu, parse_mpdu
from ihd.smwap.phy import TURNAROUND_S, build_ppdu, parse_ppdu

log = logging.getLogger("ihd.radio.sim")

#: CSMA-CA as 802.15.4 does it, roughly: up to 4 clear-channel checks with random backoffs
#: of 1..2^BE unit periods (BE from 3); a SUN unit backoff period is about 1 ms [mem].
CSMA_BACKOFFS = 4
CSMA_UNIT_S = 0.001


class SimRadio:
    name = "sim"

    def __init__(
        self,
        world: SimWorld,
        *,
        clock: Clock,
        channel: int = 0,
        diag: Diagnostics | None = None,
        pump: bool = True,
    ) -> None:
        self.world = world
        self.clock = clock
        self.channel = channel
        self.diag = diag or Diagnostics()
        self.pump = pump
        self._rx: queue.Queue[RxFrame] = queue.Queue()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop and by transmit
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # guards the world: the sim thread, transmit(), tests
        self._ext: int | None = None
        self._pan: int | None = None
        self._short: int | None = None
        self._tx_end = 0.0  # when the display's last frame (data or ACK) leaves the air
        self._backoff = random.Random(0x1D)
        world.attach_display(self._on_air, channel=channel)

    def set_addresses(self, *, eui64: str, pan_id: int | None, short: int | None) -> None:
        self._ext = Address.from_eui64(eui64).value
        self._pan = pan_id
        self._short = short

    def transmit(self, psdu: bytes, *, fcs_len: int) -> None:
        ppdu = build_ppdu(psdu, fcs_len=fcs_len, whitened=self.world.whitened)
        air, me = self.world.air, self.world.display
        with self._lock:
            t = max(self.clock.now(), self.world.now, self._tx_end + TURNAROUND_S)
            for backoff in range(CSMA_BACKOFFS):
                if not air.busy(t, me):
                    break
                self.diag.count("radio.csma_backoffs")
                t += self._backoff.randint(1, 2 ** (3 + backoff)) * CSMA_UNIT_S
            self._tx_end = self.world.transmit_from_display(ppdu, t)
        self._wake.set()  # the sim thread may be asleep until the next meter push
        self.diag.count("radio.tx_frames")

    def energy_dbm(self, channel: int | None = None) -> float:
        """What an energy detection would read on ``channel`` now (``ihd radio scan``)."""
        with self._lock:
            return self.world.air.energy_dbm(self.clock.now(), self.world.display, channel)

    def open(self) -> None:
        if self.pump and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ihd-sim", daemon=True)
            self._thread.start()

    def receive(self, timeout: float) -> RxFrame | None:
        try:
            return self._rx.get(timeout=timeout) if timeout > 0 else self._rx.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def run_until(self, t: float) -> None:
        """Advance the simulated world to ``t`` (what the sim thread does on its own)."""
        with self._lock:
            self.world.run_until(t)

    def _run(self) -> None:
        self.run_until(self.clock.now())
        while not self._stop.is_set():
            self._wake.clear()  # before looking: a transmit from now on wakes the sleep below
            with self._lock:
                nxt = self.world.next_event_time()
            self.clock.sleep_until(nxt, self._wake)
            if self._stop.is_set():
                return
            self.run_until(self.clock.now())

    def _on_air(self, ppdu: bytes, rx: AirRx) -> None:
        try:
            p = parse_ppdu(ppdu)
        except PhyError as e:
            self.diag.count("radio.phy_error")
            log.info("lost a frame at the PHY: %s", e)
            return
        info = RxInfo(
            timestamp=rx.end,
            channel=rx.channel,
            fcs_len=p.phr.fcs_len,
            whitened=p.phr.whitened,
            fcs_ok=None,
            rssi_dbm=rx.rssi_dbm,
            lqi=None,
        )
        self._auto_ack(p.psdu, p.phr.fcs_len, rx)
        self._rx.put(RxFrame(p.psdu, info))

    def _auto_ack(self, psdu: bytes, fcs_len: int, rx: AirRx) -> None:
        """What the chip's address filter and auto-ACK do: no host involvement."""
        if self._ext is None:
            return
        try:
            frame = parse_mpdu(psdu, fcs_len)
        except FrameError:
            return  # bad FCS or not a frame: no ACK
        if not frame.ack_request or frame.frame_type is FrameType.ACK or frame.seq is None:
            return
        dst = frame.dst
        if dst is None or not (
            (dst.mode is AddrMode.EXTENDED and dst.value == self._ext)
            or (dst.mode is AddrMode.SHORT and dst.value == self._short)
        ):
            return
        ack = build_mpdu(MacFrame.ack(frame.seq), fcs_len)
        self._tx_end = self.world.air.transmit(
            rx.end + TURNAROUND_S,
            self.world.display,
            build_ppdu(ack, fcs_len=fcs_len, whitened=self.world.whitened),
        )
        self.diag.count("radio.acks_sent")
