"""The real AT86RF215 driver receiving from the register-level emulator on the wall clock.

Measured on the development machine (x86_64), not on a Raspberry Pi: every figure is named
``radio.x86_*``. The driver is ``ihd.radio.at86rf215`` with its default configuration
(``gpio_chip="/dev/gpiochip0"`` given, as the emulated header has no label to search); the
chip is ``ihd.radio.emulator`` with its default ``Timing``, so the RX dead time is modelled:
after each frame the chip drops to TXPREP and hears nothing until the driver's RX command
(and a 1 us TXPREP->RX transition) has gone through; a frame is received only if RX was
armed before the end of its preamble. The emulator's pump thread ("ihd-sim") runs the chip
on the wall clock, and a consumer thread drains ``receive()`` as the pipeline's radio
thread does. CPython 3, one process: the emulator, the driver and the consumer share the
GIL, which a Pi's driver would not have to share with a chip.

Throughput: short frames back to back (``inject_stream``, no gap), the channel's maximum
rate at 50 kb/s (2-FSK, 50 ksym/s): a 14-octet PSDU (data frame, short addresses, a 1-octet
payload, 4-octet FCS, to the display, no ACK request) in a 22-octet PPDU (4 octets of
preamble, SFD, PHR) is 3.52 ms on air, 284 frames/s, for 10 s (3 s with ``--quick``).

Figures:

* ``radio.x86_offered_frames_per_s``, ``radio.x86_frames_offered``: what the air carried;
* ``radio.x86_frames_delivered``: frames the driver handed to ``receive()``;
* ``radio.x86_frames_lost_chip``: frames the chip never delivered (its ``lost_in_chip``:
  the chip was in its RX dead time, or not listening);
* ``radio.x86_frames_lost_driver``: frames the driver read but dropped (its receive queue
  full); ``radio.x86_delivered_frames_per_s``;
* ``radio.x86_irq_to_rearm_p50_us``/``_p99_us``: from the chip raising RXFE (the IRQ) to
  the chip receiving the driver's RX command, per frame, as the emulator timed it on the
  wall clock: the IRQ thread's wake-up, the IRQS/RXFL/buffer/PHR/PC/EDV reads and the CMD
  write, plus the SPI bit time at 5 MHz (the emulator's chip time runs ahead of the wall by
  the transfers' duration) and the pump's own lateness;
* ``radio.x86_driver_rearm_p50_us``/``_p99_us``: the driver's own view
  (``stats().latency_s``): from its IRQ thread waking on the edge to the RX command written;
* ``radio.x86_driver_thread_cpu_percent``: CPU time of the driver's ``ihd-radio-irq``
  thread (``pthread_getcpuclockid``) over the stream's wall time, in % of one core;
  ``radio.x86_emulator_thread_cpu_percent`` the same for the emulator's pump, for scale;
* ``radio.x86_recover_<fault>_s``: wall time from injecting the fault (from ending it, for
  the MISO faults, bit flips and bit errors on air, which last until cleared) until frames
  flow again: probe frames go on the air every 10 ms, and the figure is the arrival at
  ``receive()`` of the first probe from which on every probe arrives. Each fault runs on a
  fresh chip and driver (the driver pauses after 5 re-initialisations within 10 s). It
  includes detection: the driver's watchdog (0.5 s without an IRQ) finds a lost RXFE and a
  stuck STATE; a failed re-initialisation is retried after 0.05 s, then 0.25 s. Bit errors
  on the air have no figure: the chip drops the damaged frames (PC.FCSFE) and nothing in
  the chip or the driver needs recovering, so the next clean frame is received
  (tests/test_radio_at86rf215_emulated.py covers it).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from benchlib import Figure, rounded

PAN = 0x1D1D
DISPLAY_EUI = "02494844FFFF0000"
DISPLAY_SHORT = 0x0001
PROBE_GAP_S = 0.010


def _thread_cpu_s(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def _percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if values else 0.0


@dataclass
class _Rig:
    chip: Any
    radio: Any
    diag: Any
    world: Any
    received: list[tuple[float, bytes]]  # (monotonic time, PSDU) as receive() gave them
    stop: threading.Event
    consumer: threading.Thread

    def close(self) -> None:
        self.stop.set()
        self.consumer.join(timeout=5)
        self.radio.close()
        self.chip.close()


def _rig() -> _Rig:
    import random

    from ihd.clock import WallClock
    from ihd.diag import Diagnostics
    from ihd.radio.at86rf215 import At86rf215Config, At86rf215Radio
    from ihd.radio.contract import RadioError
    from ihd.radio.emulator import EmulatedAt86rf215
    from ihd.sim.world import demo_world

    clock = WallClock()
    # The demo household, with meters that know no display: they send nothing, and the
    # air carries only what the benchmark sends.
    world = demo_world(seed=1, start=clock.now(), joined=[])
    chip = EmulatedAt86rf215(clock, world=world, trace_limit=0)
    spidev, gpiod = chip.modules()
    diag = Diagnostics()
    radio = At86rf215Radio(
        At86rf215Config(gpio_chip="/dev/gpiochip0"),
        clock=clock,
        diag=diag,
        spidev_module=spidev,
        gpiod_module=gpiod,
        rng=random.Random(7),
    )
    radio.set_addresses(eui64=DISPLAY_EUI, pan_id=PAN, short=DISPLAY_SHORT)
    radio.open()
    chip.start_pump()
    received: list[tuple[float, bytes]] = []
    stop = threading.Event()

    def consume() -> None:  # what the pipeline's radio thread does
        while not stop.is_set():
            try:
                frame = radio.receive(0.25)
            except RadioError:
                stop.wait(0.005)
                continue
            if frame is not None:
                received.append((time.monotonic(), frame.psdu))

    consumer = threading.Thread(target=consume, name="bench-consumer", daemon=True)
    consumer.start()
    return _Rig(chip, radio, diag, world, received, stop, consumer)


def _frame(seq: int, n_payload: int = 1) -> bytes:
    from ihd.smwap.fcs import compute_fcs
    from ihd.smwap.mac import Address, MacFrame

    mpdu = MacFrame.data(
        src=Address.short(0x0002),
        dst=Address.short(DISPLAY_SHORT),
        dst_pan=PAN,
        seq=seq & 0xFF,
        payload=bytes([seq & 0xFF]) * n_payload,
        ack_request=False,
    ).to_bytes()
    return mpdu + compute_fcs(mpdu, 4)


def _stream(seconds: float) -> Iterator[Figure]:
    from ihd.smwap.phy import build_ppdu

    rig = _rig()
    try:
        time.sleep(0.2)  # settle: the IRQ thread waiting, the pump asleep
        first = _frame(0)
        ppdu_s = len(build_ppdu(first, fcs_len=4, whitened=True)) * 8 / 50_000
        n = int(seconds / ppdu_s)
        frames = [_frame(k) for k in range(n)]
        irq = next(t for t in threading.enumerate() if t.name == "ihd-radio-irq")
        pump = next(t for t in threading.enumerate() if t.name == "ihd-sim")
        with rig.chip.lock:  # (the chip's own time stands still while its pump sleeps)
            start = time.time() + 0.1
            end = rig.chip.inject_stream(frames, start=start, gap_s=0.0)
        time.sleep(max(0.0, start - time.time()))
        w0, c_irq0, c_pump0 = time.monotonic(), _thread_cpu_s(irq), _thread_cpu_s(pump)
        time.sleep(max(0.0, end - time.time()))
        wall = time.monotonic() - w0
        c_irq, c_pump = _thread_cpu_s(irq) - c_irq0, _thread_cpu_s(pump) - c_pump0
        time.sleep(0.3)  # the last frames through the driver and the consumer
        stats = rig.radio.stats()
        counters = rig.chip.counters
        rearm_chip = [x * 1e6 for x in rig.chip.rearm_latencies_s]
        rearm_driver = [x * 1e6 for x in stats.latency_s]
        delivered = len(rig.received)
    finally:
        rig.close()
    if counters.heard != n:
        raise RuntimeError(f"the air carried {counters.heard} of {n} frames")
    yield Figure("radio.x86_offered_frames_per_s", rounded(1 / ppdu_s), "frames/s")
    yield Figure("radio.x86_frames_offered", n, "frames")
    yield Figure("radio.x86_frames_delivered", delivered, "frames")
    yield Figure("radio.x86_frames_lost_chip", counters.lost_in_chip, "frames")
    yield Figure("radio.x86_frames_lost_driver", stats.frames_lost_driver, "frames")
    yield Figure("radio.x86_delivered_frames_per_s", rounded(delivered / seconds), "frames/s")
    yield Figure("radio.x86_irq_to_rearm_p50_us", rounded(_percentile(rearm_chip, 50)), "us")
    yield Figure("radio.x86_irq_to_rearm_p99_us", rounded(_percentile(rearm_chip, 99)), "us")
    yield Figure("radio.x86_driver_rearm_p50_us", rounded(_percentile(rearm_driver, 50)), "us")
    yield Figure("radio.x86_driver_rearm_p99_us", rounded(_percentile(rearm_driver, 99)), "us")
    yield Figure("radio.x86_driver_thread_cpu_percent", rounded(100 * c_irq / wall), "%")
    yield Figure("radio.x86_emulator_thread_cpu_percent", rounded(100 * c_pump / wall), "%")


# --- recovery from each fault ------------------------------------------------------------------


@dataclass(frozen=True)
class _Fault:
    inject: Callable[[_Rig], None]  # with chip.lock held
    transmit: bool = False  # takes effect in a transmit
    lasts_s: float = 0.0  # cleared after this long (wall), or once ``detected`` counts
    detected: str = ""


def _then_a_frame(fault: Callable[[_Rig], None]) -> Callable[[_Rig], None]:
    """The fault, and a frame 2 ms later for it to act on."""

    def inject(rig: _Rig) -> None:
        fault(rig)
        rig.chip.inject_rx(_frame(250), at=time.time() + 0.002)

    return inject


FAULTS: dict[str, _Fault] = {
    "overwrite": _Fault(_then_a_frame(lambda r: r.chip.fault_overwrite_during_read(4))),
    "lost_rxfe": _Fault(_then_a_frame(lambda r: r.chip.fault_lose_rxfe(1))),
    "tx_underrun": _Fault(lambda r: r.chip.fault_tx_underrun(), transmit=True),
    "txfl_overflow": _Fault(lambda r: r.chip.fault_txfl_overflow(), transmit=True),
    "trxerr": _Fault(lambda r: r.chip.fault_trxerr()),
    "batlow": _Fault(lambda r: r.chip.fault_batlow()),
    "reset": _Fault(lambda r: r.chip.fault_reset()),
    "miso_stuck_00": _Fault(
        lambda r: r.chip.fault_miso_stuck(0x00), detected="radio.reinit_failed"
    ),
    "miso_stuck_ff": _Fault(
        lambda r: r.chip.fault_miso_stuck(0xFF), detected="radio.reinit_failed"
    ),
    "miso_bit_flips": _Fault(lambda r: r.chip.fault_miso_bit_flips(0.01), lasts_s=0.3),
    "state_stuck": _Fault(lambda r: r.chip.fault_state_stuck()),
    "irq_stuck": _Fault(lambda r: r.chip.fault_irq_stuck_high(until_reset=True)),
    "edv_invalid": _Fault(_then_a_frame(lambda r: r.chip.fault_edv_invalid(None)), lasts_s=0.1),
}


def _recover_s(name: str, fault: _Fault) -> float:
    """Wall seconds from the fault (or its end) to the first probe from which all arrive."""
    from ihd.radio.contract import RadioError

    rig = _rig()
    probes: list[tuple[float, bytes]] = []  # (monotonic time sent, PSDU)
    stop = threading.Event()

    def send_probes() -> None:  # every 10 ms, during the fault and after
        seq = 0
        while not stop.wait(PROBE_GAP_S):
            psdu = _frame(1000 + seq, n_payload=2)
            with rig.chip.lock:
                rig.chip.inject_rx(psdu, at=time.time())
            probes.append((time.monotonic(), psdu))
            seq += 1

    sender = threading.Thread(target=send_probes, name="bench-probes", daemon=True)
    try:
        time.sleep(0.05)
        sender.start()
        time.sleep(0.05)
        with rig.chip.lock:
            fault.inject(rig)
        t0 = time.monotonic()
        if fault.transmit:
            try:
                rig.radio.transmit(_frame(251), fcs_len=4)
            except RadioError:
                pass
            else:
                raise RuntimeError(f"{name}: the transmit did not fail")
        if fault.detected:
            deadline = time.monotonic() + 5
            while not rig.diag.counter(fault.detected):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: never detected")
                time.sleep(0.001)
        elif fault.lasts_s:
            time.sleep(fault.lasts_s)
        if fault.detected or fault.lasts_s:
            with rig.chip.lock:
                rig.chip.clear_faults()
            t0 = time.monotonic()
        deadline = t0 + 3.0
        while True:
            time.sleep(0.02)
            now = time.monotonic()
            got = {p for _, p in rig.received}
            # probes sent after t0 and more than 50 ms ago: the first from which all arrived
            settled = [(t, p) for t, p in list(probes) if t0 < t < now - 0.05]
            missing = [i for i, (_, p) in enumerate(settled) if p not in got]
            first = missing[-1] + 1 if missing else 0
            if len(settled) - first >= 10:
                break
            if now > deadline:
                raise RuntimeError(f"{name}: frames did not flow again within 3 s")
        wanted = settled[first][1]
        arrival = next(t for t, p in list(rig.received) if p == wanted)
        return arrival - t0
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(timeout=5)
        rig.close()


def run(quick: bool) -> Iterator[Figure]:
    import logging

    logging.getLogger("ihd.radio.at86rf215").setLevel(logging.CRITICAL)  # faults on purpose
    yield from _stream(3.0 if quick else 10.0)
    for name, fault in FAULTS.items():
        yield Figure(f"radio.x86_recover_{name}_s", rounded(_recover_s(name, fault)), "s")
