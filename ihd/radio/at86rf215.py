"""The AT86RF215 driver: MR-FSK on the sub-GHz core (RF09 + BBC0) over spidev and gpiod.

Written from ``radio-chips.md`` (``../shared/hw/``) sections 1 and 2: chip facts, Pi wiring.
The driver is given the ``spidev`` and ``gpiod`` (libgpiod v2) *modules* and calls only
their public API, so tests pass fakes and the register-level emulator passes its own;
with none given, :meth:`At86rf215Radio.open` imports the real ones (the ``pi`` extra).

How it runs:

* ``open()`` opens the SPI device and requests the IRQ (input, rising edge) and RSTN
  (output, idle high) lines in one gpiod request, pulses RSTN, checks the part number
  (RF_PN 0x34 AT86RF215 or 0x36 AT86RF215M), writes :data:`BRINGUP_SEQUENCE`
  (section 1.6, ending in RX), then the frame filter and auto-ACK (section 1.8) once
  :meth:`set_addresses` has given them, and starts the ``ihd-radio-irq`` thread.
* ``ihd-radio-irq`` blocks in ``wait_edge_events`` (IRQs are edges; no busy polling).
  On an edge it reads IRQS 00..03 in one burst, handles the causes, and reads IRQS again
  while the IRQ line still reads ACTIVE (an edge that comes while the line is already
  high is not an edge). On RXFE it reads RXFL, the frame buffer, FSKPHRRX, PC.FCSOK and
  EDV, and re-arms RX at once (after RXFE the chip sits in TXPREP). When the frame asked
  for an ACK and matched the address filter (RXAM), the chip sends the ACK itself; RX is
  re-armed on that TXFE instead. Frames go into a bounded queue that ``receive`` reads.
* ``transmit`` (any thread) does CSMA-CA: random backoff, then CCA by energy detection
  (section 1.4: baseband off, RX, EDC single, wait for the EDC IRQ, read EDV), then the
  TX of section 1.7, waiting for TXFE. A busy channel after all attempts raises
  ``RadioError``.

Recovery: an SPI error, an unexpected WAKEUP (the chip reset itself), an impossible
frame length (RXFL 0 or above 2047), an IRQ line stuck active with nothing pending in
IRQS, a chip found outside RX while the line is quiet (a watchdog reads STATE when no
IRQ came for ``watchdog_s``), and STATE stuck in TRANSITION are each logged with a
reason and counted as ``radio.<cause>``; the driver then re-initialises the chip (RSTN
pulse and the whole bring-up) and keeps running. A TXPREP found by the watchdog (an RXFE
was lost) only needs RX again (``radio.watchdog_rearm``). If re-initialisation keeps
failing, it retries with a growing delay and ``receive`` raises ``RadioError`` meanwhile.
A transmit that ends with PS.TXUR set (an underrun, or a frame length beyond 2047) or
with TRXERR instead of TXFE fails (``radio.tx_underrun``, ``radio.tx_error``) and the chip
is re-initialised. Counted and logged without re-initialising: a frame the chip dropped
after RXFS (bad FCS with PC.FCSFE, or the address filter: ``radio.rx_dropped``), an
auto-ACK for a frame whose RXFE never came (``radio.rxfe_lost``), EDV still 127 after
re-reads (``radio.edv_invalid``), PC.FCSOK clear after RXFE (``radio.fcs_error``: with
FCSFE set, the buffer changed under the read), TRXERR and BATLOW.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import glob
import importlib
import logging
import queue
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.radio.contract import RadioError, RxFrame, RxInfo

log = logging.getLogger("ihd.radio.at86rf215")

# --- registers (radio-chips.md 1.2, 1.3) -------------------------------------------------
RF09_IRQS = 0x000  # IRQS 00..03: RF09, RF24, BBC0, BBC1 (clear on read)
RF_CLKO = 0x007
RF_PN = 0x00D
RF_VN = 0x00E
RF09_IRQM = 0x100
RF09_STATE = 0x102
RF09_CMD = 0x103
RF09_CS = 0x104  # CS, CCF0L, CCF0H, CNL, CNM: one burst
RF09_CNL = 0x107
RF09_CNM = 0x108
RF09_RXBWC = 0x109
RF09_RXDFE = 0x10A
RF09_AGCC = 0x10B
RF09_AGCS = 0x10C
RF09_EDC = 0x10E
RF09_EDV = 0x110
RF09_TXCUTC = 0x112
RF09_TXDFE = 0x113
RF24_IRQM = 0x200
RF24_CMD = 0x203
BBC0_IRQM = 0x300
BBC0_PC = 0x301
BBC0_PS = 0x302
BBC0_RXFLL = 0x304
BBC0_TXFLL = 0x306
BBC0_AFC0 = 0x320
BBC0_MACEA0 = 0x325
BBC0_MACPID0F0 = 0x32D
BBC0_MACSHA0F0 = 0x32F
BBC0_AMCS = 0x340
BBC0_AMEDT = 0x341
BBC0_FSKC0 = 0x360
BBC0_FSKC1 = 0x361
BBC0_FSKC2 = 0x362
BBC0_FSKPLL = 0x365
BBC0_FSKPHRTX = 0x36A
BBC0_FSKPHRRX = 0x36B
BBC0_FSKRPC = 0x36C
BBC0_FSKRPCONT = 0x36D
BBC0_FSKRPCOFFT = 0x36E
BBC0_FSKDM = 0x372
BBC0_FSKPE0 = 0x373
BBC1_IRQM = 0x400  # BBC1 register block starts at 0x400 (Microchip header)
RX_BUFFER = 0x2000
TX_BUFFER = 0x2800

# CMD and STATE values (1.4)
CMD_SLEEP = 0x01
CMD_TRXOFF = 0x02
CMD_TXPREP = 0x03
CMD_TX = 0x04
CMD_RX = 0x05
STATE_TRXOFF = 0x02
STATE_TXPREP = 0x03
STATE_TX = 0x04
STATE_RX = 0x05
STATE_TRANSITION = 0x06
STATE_RESET = 0x07
STATE_NAMES = {2: "TRXOFF", 3: "TXPREP", 4: "TX", 5: "RX", 6: "TRANSITION", 7: "RESET/SLEEP"}

# IRQ bits (1.3)
RF_IRQ_WAKEUP = 0x01
RF_IRQ_TRXRDY = 0x02
RF_IRQ_EDC = 0x04
RF_IRQ_BATLOW = 0x08
RF_IRQ_TRXERR = 0x10
BB_IRQ_RXFS = 0x01
BB_IRQ_RXFE = 0x02
BB_IRQ_RXAM = 0x04
BB_IRQ_TXFE = 0x10

# PC bits (1.3)
PC_PT_MRFSK = 0x01
PC_BBEN = 0x04
PC_FCST16 = 0x08  # 1 = 16-bit FCS, 0 = 32-bit
PC_TXAFCS = 0x10
PC_FCSOK = 0x20
PC_FCSFE = 0x40
PS_TXUR = 0x01

FSKPHR_DW = 0x04
FSKPHRRX_FCST16 = 0x80
AMCS_CCAED = 0x04
AMCS_AUTO_ACK = 0x68  # AACK | AACKDR | AACKFA (RIOT's default, 1.8)
AFC0_AFEN0 = 0x01

PART_NUMBERS = {0x34: "AT86RF215", 0x35: "AT86RF215IQ", 0x36: "AT86RF215M"}
CHIP_TYPES = {"auto": (0x34, 0x36), "at86rf215": (0x34,), "at86rf215m": (0x36,)}
GPIOCHIP_LABELS = ("pinctrl-bcm2835", "pinctrl-bcm2711", "pinctrl-rp1")

EDV_INVALID = 127
MAX_FRAME_LEN = 2047
FSK_RX_PREAMBLE = 0x02  # FSKPLL in RX (1.6 step 7)
FSK_TX_PREAMBLE = 0x10  # FSKPLL in TX (1.7 step 4)
FSK_BIT_S = 1 / 50_000  # 2-FSK at 50 ksym/s

# --- timing ------------------------------------------------------------------------------
RESET_PULSE_S = 10e-6  # tRST >= 625 ns; Microchip pulses 7 us, RIOT 16 us
STATE_POLLS = 100  # RIOT gives up after 100 polls
STATE_POLL_S = 100e-6
CHIP_EVENT_TIMEOUT_S = 0.1  # TRXRDY (<= 200 us), EDC (one ED period): generous
TX_TIMEOUT_MARGIN_S = 0.1
ACK_WAIT_S = 0.02  # an auto-ACK at 50 kb/s: 1 ms turnaround + about 5 ms on air
STUCK_IRQ_READS = 8  # empty IRQS reads in a row with the line still active
MAX_IRQ_ROUNDS = 64  # IRQS reads per edge before going back to wait (the line is re-checked)
EDV_REREADS = 3
RETRY_DELAYS_S = (0.05, 0.25, 1.0, 2.0, 5.0)  # re-initialisation attempts that failed
REOPEN_S = 5.0  # receive() retries a failed open() this often
RECOVERY_BURST = 5  # more re-initialisations than this within RECOVERY_WINDOW_S ...
RECOVERY_WINDOW_S = 10.0
RECOVERY_PAUSE_S = 1.0  # ... wait this long before the next (a fault that keeps coming back)
LATENCY_SAMPLES = 100_000

# CSMA-CA (802.15.4 unslotted): macMinBE 3, macMaxBE 5, macMaxCSMABackoffs 4; a SUN
# unit backoff period is aTurnaroundTime (1 ms) + the CCA time (8 symbols of 20 us).
CSMA_MIN_BE = 3
CSMA_MAX_BE = 5
CSMA_MAX_BACKOFFS = 4
CSMA_UNIT_S = 0.001 + 8 * 20e-6

Write = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class At86rf215Config:
    """Where the chip is wired and how it is set up. Defaults: radio-chips.md section 2."""

    spi_device: str = "/dev/spidev0.0"  # CE0
    spi_speed_hz: int = 5_000_000
    gpio_chip: str | None = None  # e.g. "/dev/gpiochip0"; None: find the header's chip by label
    irq_line: int = 25  # BCM 25, pin 22 (input, rising edge)
    reset_line: int = 24  # BCM 24, pin 18 (RSTN, active low, idle high)
    chip: str = "auto"  # "auto" (0x34 or 0x36), "at86rf215" (0x34) or "at86rf215m" (0x36)
    channel: int = 0  # EU 863 MHz mode #1, 0..33
    fcs_len: int = 4  # FCS the chip appends on TX (PC.FCST); RX takes it from each PHR
    whitening: bool = True  # PHR DW bit on TX (RX follows each PHR)
    cca_threshold_dbm: int = -84  # AMEDT; CCA busy above this energy
    rx_queue_size: int = 256
    watchdog_s: float = 0.5  # check STATE after this long without an IRQ
    irq_wait_s: float = 0.25  # longest block in wait_edge_events (close() and timers)

    def __post_init__(self) -> None:
        spi_bus_device(self.spi_device)  # raises ValueError
        if self.chip not in CHIP_TYPES:
            raise ValueError(f"chip must be one of {sorted(CHIP_TYPES)}, not {self.chip!r}")
        if not 0 <= self.channel <= 33:
            raise ValueError(f"channel must be 0..33 (EU 863 MHz mode #1), not {self.channel}")
        if self.fcs_len not in (2, 4):
            raise ValueError(f"fcs_len must be 2 or 4, not {self.fcs_len}")
        if not -127 <= self.cca_threshold_dbm <= 4:
            raise ValueError(f"cca_threshold_dbm must be -127..4, not {self.cca_threshold_dbm}")
        if self.irq_line == self.reset_line or min(self.irq_line, self.reset_line) < 0:
            raise ValueError("irq_line and reset_line must be two different GPIO lines")
        if self.spi_speed_hz <= 0 or self.rx_queue_size <= 0:
            raise ValueError("spi_speed_hz and rx_queue_size must be positive")
        if self.watchdog_s <= 0 or self.irq_wait_s <= 0:
            raise ValueError("watchdog_s and irq_wait_s must be positive")


def spi_bus_device(path: str) -> tuple[int, int]:
    """``/dev/spidev0.1`` -> (0, 1), the arguments of ``SpiDev.open``."""
    m = re.fullmatch(r"/dev/spidev(\d+)\.(\d+)", path)
    if m is None:
        raise ValueError(f"SPI device must look like /dev/spidevB.D, not {path!r}")
    return int(m.group(1)), int(m.group(2))


# --- the register writes, as data -----------------------------------------------------------


def pc_value(fcs_len: int) -> int:
    """BBC0_PC in operation: MR-FSK, baseband on, chip appends and filters the FCS."""
    pc = PC_PT_MRFSK | PC_BBEN | PC_TXAFCS | PC_FCSFE
    return pc | PC_FCST16 if fcs_len == 2 else pc


def bringup_sequence(config: At86rf215Config | None = None, *, vn: int = 0x03) -> list[Write]:
    """Every register write of a bring-up after the reset and the part-number check, in
    order, as (address, data) with bursts as one entry: radio-chips.md 1.2 ("after any
    reset": shut the 2.4 GHz side) then 1.6 steps 2..14. The driver polls STATE after the
    two CMD writes (TRXOFF, RX). ``vn`` is RF_VN (TXDFE differs on version 1)."""
    cfg = config or At86rf215Config()
    ch = cfg.channel
    return [
        # 1.2 / 1.6 step 1: the 2.4 GHz core off
        (RF24_IRQM, b"\x00"),
        (BBC1_IRQM, b"\x00"),
        (RF24_CMD, bytes([CMD_SLEEP])),
        # step 2: TRXOFF (then poll STATE=2), clock output off
        (RF09_CMD, bytes([CMD_TRXOFF])),
        (RF_CLKO, b"\x00"),
        # step 3: baseband off while configuring
        (BBC0_PC, b"\x00"),
        # step 4: RX bandwidth 160 kHz / IF 250 kHz, RX frontend, TX 32 us ramp / 80 kHz LPF
        (RF09_RXBWC, b"\x00"),
        (RF09_RXDFE, b"\x2a"),
        (RF09_TXCUTC, b"\xc0"),
        # step 5: TX frontend (RIOT uses 9A on RF_VN=1)
        (RF09_TXDFE, b"\x9a" if vn == 0x01 else b"\x98"),
        # step 6: pre-emphasis FSKPE0..2 (burst), RPC on/off times
        (BBC0_FSKPE0, b"\x02\x03\xfc"),
        (BBC0_FSKRPCONT, b"\xa0"),
        (BBC0_FSKRPCOFFT, b"\xa0"),
        # step 7: RX preamble length 2, FSKC2 with PDTM (OpenMote's 41 | b7), 50 ksym/s
        (BBC0_FSKPLL, bytes([FSK_RX_PREAMBLE])),
        (BBC0_FSKC2, b"\xc1"),
        (BBC0_FSKC1, b"\x00"),
        # step 8: AGC target, AGC on
        (RF09_AGCS, b"\x20"),
        (RF09_AGCC, b"\x01"),
        # step 9: BT 2, h=1, 2-FSK; direct modulation + pre-emphasis; RPC base time
        (BBC0_FSKC0, b"\xd6"),
        (BBC0_FSKDM, b"\x03"),
        (BBC0_FSKRPC, b"\x05"),
        # step 10: no FEC; DW as configured
        (BBC0_FSKPHRTX, bytes([FSKPHR_DW if cfg.whitening else 0x00])),
        # step 11: CS, CCF0L, CCF0H, CNL, CNM (200 kHz spacing from 863.125 MHz)
        (RF09_CS, bytes([0x08, 0xDD, 0x86, ch & 0xFF, (ch >> 8) & 0x01])),
        # step 12: BBC IRQs RXFS|RXFE|RXAM|TXFE; RF IRQs TRXRDY|EDC|TRXERR, and BATLOW (ours:
        # with IRQMM=0 a masked cause never latches, and a low supply must be counted)
        (BBC0_IRQM, bytes([BB_IRQ_RXFS | BB_IRQ_RXFE | BB_IRQ_RXAM | BB_IRQ_TXFE])),
        (RF09_IRQM, bytes([RF_IRQ_TRXRDY | RF_IRQ_EDC | RF_IRQ_BATLOW | RF_IRQ_TRXERR])),
        (BBC0_AMEDT, bytes([cfg.cca_threshold_dbm & 0xFF])),
        # step 13: MR-FSK, baseband on, chip appends and filters the FCS (55 or 5D)
        (BBC0_PC, bytes([pc_value(cfg.fcs_len)])),
        # step 14: RX (then poll STATE=5)
        (RF09_CMD, bytes([CMD_RX])),
    ]


#: The bring-up writes for the default configuration on an RF_VN=3 chip.
BRINGUP_SEQUENCE: tuple[Write, ...] = tuple(bringup_sequence())


def parse_eui64(text: str) -> int:
    """An EUI-64 from 16 hex digits, optionally split by ':' or '-'."""
    digits = text.replace(":", "").replace("-", "")
    if len(digits) != 16:
        raise ValueError(f"EUI-64 needs 16 hex digits: {text!r}")
    try:
        return int(digits, 16)
    except ValueError:
        raise ValueError(f"EUI-64 needs 16 hex digits: {text!r}") from None


def filter_sequence(eui64: str, pan_id: int | None, short: int | None) -> list[Write]:
    """The frame filter 0 and auto-ACK writes (1.8). Multi-byte values go least significant
    octet first (the on-air order), so the EUI-64 text is written reversed. No PAN is
    0xFFFF and no short address 0xFFFE, as in 802.15.4."""
    ext = parse_eui64(eui64)
    pan = 0xFFFF if pan_id is None else pan_id
    sa = 0xFFFE if short is None else short
    if not (0 <= pan <= 0xFFFF and 0 <= sa <= 0xFFFF):
        raise ValueError("PAN ID and short address are 16-bit values")
    return [
        (BBC0_MACEA0, ext.to_bytes(8, "little")),
        (BBC0_MACPID0F0, pan.to_bytes(2, "little")),
        (BBC0_MACSHA0F0, sa.to_bytes(2, "little")),
        (BBC0_AFC0, bytes([AFC0_AFEN0])),
        (BBC0_AMCS, bytes([AMCS_AUTO_ACK])),
    ]


# --- the real modules, and finding the GPIO chip --------------------------------------------


def load_hardware_modules() -> tuple[Any, Any]:
    """Import the real ``spidev`` and ``gpiod`` (the ``pi`` extra)."""
    try:
        spidev = importlib.import_module("spidev")
        gpiod = importlib.import_module("gpiod")
    except ImportError as e:
        raise RadioError(
            f"the AT86RF215 driver needs the spidev and gpiod modules ({e}): "
            "install the 'pi' extra (pip install 'ihd[pi]') on the Raspberry Pi"
        ) from None
    if not hasattr(gpiod, "request_lines"):
        raise RadioError("the gpiod module is libgpiod v1; the driver needs gpiod>=2.1")
    return spidev, gpiod


def find_gpiochip(gpiod: Any, dev_dir: str = "/dev") -> str:
    """The GPIO chip of the Pi's 40-pin header, found by its label (never by number)."""
    seen: list[str] = []
    for path in sorted(glob.glob(f"{dev_dir}/gpiochip*")):
        try:
            if not gpiod.is_gpiochip_device(path):
                continue
            chip = gpiod.Chip(path)
            try:
                label = str(chip.get_info().label)
            finally:
                close = getattr(chip, "close", None)
                if close is not None:
                    close()
        except OSError as e:
            seen.append(f"{path} ({e.strerror or e})")
            continue
        if label in GPIOCHIP_LABELS:
            return path
        seen.append(f"{path} ({label})")
    found = ", ".join(seen) if seen else "none"
    raise RadioError(
        f"no Raspberry Pi GPIO chip ({', '.join(GPIOCHIP_LABELS)}) found; GPIO chips: {found}. "
        "Set the GPIO chip path in the radio configuration"
    )


# --- internals ---------------------------------------------------------------------------


class _Fault(Exception):
    """Something the driver recovers from by re-initialising the chip."""

    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter = counter
        self.reason = reason


class _Aborted(Exception):
    """A transmit was cut short by close() or a re-initialisation."""


def _s8(v: int) -> int:
    return v - 256 if v & 0x80 else v


def _part_name(pn: int) -> str:
    return PART_NUMBERS.get(pn, "unknown part")


@dataclass(frozen=True, slots=True)
class Recovery:
    """One re-initialisation: why, and the wall time from detection to RX again."""

    counter: str  # the radio.* counter name
    reason: str
    seconds: float


@dataclass(frozen=True, slots=True)
class At86rf215Stats:
    """What the benchmark reports, beside the ``radio.*`` counters."""

    frames_delivered: int
    frames_lost_driver: int  # the receive queue was full
    latency_s: tuple[float, ...]  # IRQ to RX re-armed, per frame
    recoveries: tuple[Recovery, ...]


class At86rf215Radio:
    """The AT86RF215 (or AT86RF215M) as a :class:`~ihd.radio.contract.Radio`."""

    name = "at86rf215"

    def __init__(
        self,
        config: At86rf215Config | None = None,
        *,
        clock: Clock,
        diag: Diagnostics | None = None,
        spidev_module: Any = None,
        gpiod_module: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or At86rf215Config()
        self.clock = clock
        self.diag = diag or Diagnostics()
        self._spidev_mod = spidev_module
        self._gpiod_mod = gpiod_module
        self._rng = rng or random.Random()
        self._pc = pc_value(self.config.fcs_len)

        self._spi: Any = None
        self._req: Any = None
        self._active: Any = None  # gpiod line.Value.ACTIVE of the module in use
        self._inactive: Any = None
        self._spi_lock = threading.RLock()  # one SPI transaction sequence at a time
        self._tx_lock = threading.Lock()  # one transmit at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rx: queue.Queue[RxFrame] = queue.Queue(maxsize=self.config.rx_queue_size)

        self._opened = False
        self._open_error: str | None = None
        self._next_reopen = 0.0
        self._down: str | None = None  # set while re-initialisation keeps failing
        self._generation = 0  # bumped by every re-initialisation and close()
        self._recover_request: _Fault | None = None
        self._addresses: tuple[str, int | None, int | None] | None = None
        self.part: str | None = None  # "AT86RF215 (RF_PN 0x34, RF_VN 0x03)"

        # IRQ thread state (guarded by _spi_lock where the TX thread reads it)
        self._tx_phase: str | None = None  # None, "cca" or "tx"
        self._ev_trxrdy = threading.Event()
        self._ev_edc = threading.Event()
        self._ev_txfe = threading.Event()
        self._ack_idle = threading.Event()  # no auto-ACK on its way
        self._ack_idle.set()
        self._ack_deadline: float | None = None
        self._rxam = False
        self._rx_started = False  # RXFS seen and no RXFE yet
        self._tx_error = False  # TRXERR came while a transmit waited for TXFE
        self._last_irq = 0.0  # clock time of the last IRQ with a cause
        self._last_check = 0.0  # clock time of the last watchdog STATE read

        self._stats_lock = threading.Lock()
        self._delivered = 0
        self._lost = 0
        self._latency: collections.deque[float] = collections.deque(maxlen=LATENCY_SAMPLES)
        self._recoveries: list[Recovery] = []
        self._recent_recoveries: list[float] = []  # time.monotonic() of each

    # --- the Radio contract --------------------------------------------------------------
    def open(self) -> None:
        if self._opened:
            return
        self._stop.clear()  # a closed radio can be opened again
        self._next_reopen = time.monotonic() + REOPEN_S
        try:
            self._open()
        except RadioError as e:
            self._open_error = str(e)
            self._release()
            raise
        self._open_error = None
        self._opened = True
        self._thread = threading.Thread(target=self._irq_loop, name="ihd-radio-irq", daemon=True)
        self._thread.start()

    def receive(self, timeout: float) -> RxFrame | None:
        try:
            return self._rx.get_nowait()
        except queue.Empty:
            pass
        if not self._opened:
            if self._open_error is None:
                raise RadioError("the AT86RF215 is not open")
            if time.monotonic() < self._next_reopen:
                raise RadioError(self._open_error)
            self.open()  # raises RadioError again if it still cannot
        if self._down is not None:
            raise RadioError(f"the AT86RF215 is not answering ({self._down}); retrying")
        try:
            return self._rx.get(timeout=timeout) if timeout > 0 else None
        except queue.Empty:
            return None

    def transmit(self, psdu: bytes, *, fcs_len: int) -> None:
        if fcs_len not in (2, 4):
            raise ValueError(f"fcs_len must be 2 or 4, not {fcs_len}")
        if not fcs_len < len(psdu) <= MAX_FRAME_LEN:
            raise ValueError(f"a PSDU of {len(psdu)} octets cannot be sent (FCS {fcs_len})")
        with self._tx_lock:
            gen = self._usable_generation()
            try:
                self._csma(gen)
                self._send(psdu, fcs_len, gen)
            except _Fault as f:
                self._request_recovery(f)
                raise RadioError(f"transmit failed: {f.reason}") from None
            except _Aborted as e:
                raise RadioError(f"transmit aborted: {e}") from None
            finally:
                with self._spi_lock:
                    self._tx_phase = None
        self.diag.count("radio.tx_frames")

    def _usable_generation(self) -> int:
        """The chip's current generation, or RadioError if it cannot be used now (call
        with the TX lock held)."""
        if not self._opened:
            raise RadioError("the AT86RF215 is not open")
        if self._down is not None:
            raise RadioError(f"the AT86RF215 is not answering ({self._down})")
        return self._generation

    def energy_dbm(self, channel: int | None = None) -> float:
        """One energy measurement on ``channel`` (default: ours), in dBm, for ``ihd radio
        scan``. 1.4: channels change only in TXPREP; ED runs in RX with the baseband off;
        the chip goes back to our channel and RX afterwards."""
        ch = self.config.channel if channel is None else channel
        if not 0 <= ch <= 33:
            raise ValueError(f"channel {ch} not in 0..33")
        with self._tx_lock:
            gen = self._usable_generation()
            try:
                if ch != self.config.channel:
                    self._tune(ch)
                try:
                    edv = self._energy(gen)
                finally:
                    if ch != self.config.channel and gen == self._generation:
                        self._tune(self.config.channel)
            except _Fault as f:
                self._request_recovery(f)
                raise RadioError(f"energy scan failed: {f.reason}") from None
            except _Aborted as e:
                raise RadioError(f"energy scan aborted: {e}") from None
            finally:
                with self._spi_lock:
                    self._tx_phase = None
                    if gen == self._generation and not self._stop.is_set():
                        self._write(RF09_CMD, bytes([CMD_RX]))
        if edv is None:
            raise RadioError("the chip reported no valid energy (EDV 127)")
        return float(edv)

    def _tune(self, ch: int) -> None:
        """TXPREP, then CNL and CNM (the CNM write applies the channel [mem])."""
        with self._spi_lock:
            self._tx_phase = "cca"
            self._write(RF09_CMD, bytes([CMD_TXPREP]))
            self._await_state(STATE_TXPREP)
            self._write(RF09_CNL, bytes([ch & 0xFF]))
            self._write(RF09_CNM, bytes([(ch >> 8) & 0x01]))

    def set_addresses(self, *, eui64: str, pan_id: int | None, short: int | None) -> None:
        writes = filter_sequence(eui64, pan_id, short)  # ValueError before anything changes
        self._addresses = (eui64, pan_id, short)
        if not self._opened or self._down is not None:
            return  # written by the next bring-up
        try:
            with self._spi_lock:
                for addr, data in writes:
                    self._write(addr, data)
        except _Fault as f:
            self._request_recovery(f)  # the bring-up writes the filter again

    def close(self) -> None:
        self._stop.set()
        self._generation += 1
        for ev in (self._ev_trxrdy, self._ev_edc, self._ev_txfe, self._ack_idle):
            ev.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.irq_wait_s + 5)
            self._thread = None
        if self._opened and self._spi is not None:
            with self._spi_lock, contextlib.suppress(_Fault):
                self._write(RF09_CMD, bytes([CMD_TRXOFF]))  # stop listening
        self._opened = False
        self._open_error = None
        self._release()

    # --- for benchmarks and `ihd radio probe` ----------------------------------------------
    def stats(self) -> At86rf215Stats:
        with self._stats_lock:
            return At86rf215Stats(
                frames_delivered=self._delivered,
                frames_lost_driver=self._lost,
                latency_s=tuple(self._latency),
                recoveries=tuple(self._recoveries),
            )

    # --- opening ---------------------------------------------------------------------------
    def _open(self) -> None:
        cfg = self.config
        if self._spidev_mod is None or self._gpiod_mod is None:
            spidev, gpiod = load_hardware_modules()
            self._spidev_mod = self._spidev_mod or spidev
            self._gpiod_mod = self._gpiod_mod or gpiod
        gpiod = self._gpiod_mod
        bus, device = spi_bus_device(cfg.spi_device)
        spi = self._spidev_mod.SpiDev()
        try:
            spi.open(bus, device)
        except FileNotFoundError:
            raise RadioError(
                f"SPI device {cfg.spi_device} not found: enable SPI (dtparam=spi=on in "
                "/boot/firmware/config.txt, /boot/config.txt before Bookworm) and reboot, "
                "or set the SPI device in the radio configuration"
            ) from None
        except PermissionError:
            raise RadioError(
                f"no permission to open {cfg.spi_device}: add the user to the spi group "
                "(sudo usermod -aG spi,gpio $USER) and log in again"
            ) from None
        except OSError as e:
            raise RadioError(f"cannot open SPI device {cfg.spi_device}: {e}") from None
        self._spi = spi
        try:
            spi.max_speed_hz = cfg.spi_speed_hz
            spi.mode = 0
        except OSError as e:
            raise RadioError(f"cannot set up SPI device {cfg.spi_device}: {e}") from None

        chip_path = cfg.gpio_chip or find_gpiochip(gpiod)
        line = gpiod.line
        self._active, self._inactive = line.Value.ACTIVE, line.Value.INACTIVE
        settings = {
            cfg.irq_line: gpiod.LineSettings(
                direction=line.Direction.INPUT, edge_detection=line.Edge.RISING
            ),
            cfg.reset_line: gpiod.LineSettings(
                direction=line.Direction.OUTPUT, output_value=line.Value.ACTIVE
            ),
        }
        try:
            self._req = gpiod.request_lines(chip_path, consumer="ihd", config=settings)
        except PermissionError:
            raise RadioError(
                f"no permission to use {chip_path}: add the user to the gpio group "
                "(sudo usermod -aG spi,gpio $USER) and log in again"
            ) from None
        except OSError as e:
            if e.errno == errno.EBUSY:
                raise RadioError(
                    f"GPIO line {cfg.irq_line} or {cfg.reset_line} on {chip_path} is in use by "
                    "another program or a device-tree overlay"
                ) from None
            raise RadioError(
                f"cannot request GPIO lines {cfg.irq_line} (IRQ) and {cfg.reset_line} (RSTN) "
                f"on {chip_path}: {e}"
            ) from None
        except ValueError as e:  # an offset the chip does not have
            raise RadioError(f"bad GPIO line for {chip_path}: {e}") from None

        try:
            self._bringup()
        except _Fault as f:
            raise RadioError(f"AT86RF215 bring-up on {cfg.spi_device} failed: {f.reason}") from None
        except OSError as e:  # a GPIO error
            raise RadioError(f"AT86RF215 bring-up failed: GPIO error: {e}") from None

    def _release(self) -> None:
        req, self._req = self._req, None
        spi, self._spi = self._spi, None
        if req is not None:
            with contextlib.suppress(Exception):
                req.release()
        if spi is not None:
            with contextlib.suppress(Exception):
                spi.close()

    # --- SPI -----------------------------------------------------------------------------
    def _xfer(self, data: list[int]) -> list[int]:
        spi = self._spi
        if spi is None:
            raise _Aborted("the radio was closed")
        try:
            rx: list[int] = spi.xfer2(data)
        except OSError as e:
            raise _Fault("spi_error", f"SPI transfer failed: {e}") from None
        if len(rx) != len(data):
            raise _Fault("spi_error", f"SPI transfer returned {len(rx)} of {len(data)} octets")
        return rx

    def _read(self, addr: int, n: int = 1) -> bytes:
        return bytes(self._xfer([addr >> 8, addr & 0xFF] + [0] * n)[2:])

    def _read1(self, addr: int) -> int:
        return self._read(addr, 1)[0]

    def _write(self, addr: int, data: bytes | Sequence[int]) -> None:
        self._xfer([0x80 | addr >> 8, addr & 0xFF, *data])

    def _sleep(self, seconds: float) -> None:
        self.clock.sleep_until(self.clock.now() + seconds, self._stop)

    def _poll_state(self, want: int) -> int:
        state = -1
        for i in range(STATE_POLLS):
            state = self._read1(RF09_STATE)
            if state == want:
                return state
            if i + 1 < STATE_POLLS:
                self._sleep(STATE_POLL_S)
        return state

    def _await_state(self, want: int) -> None:
        state = self._poll_state(want)
        if state == want:
            return
        name = STATE_NAMES.get(want, hex(want))
        if state == STATE_TRANSITION:
            raise _Fault(
                "state_stuck", f"STATE stuck in TRANSITION after {STATE_POLLS} reads (want {name})"
            )
        raise _Fault(
            "unexpected_state",
            f"STATE reads 0x{state:02X} ({STATE_NAMES.get(state, '?')}), expected {name}",
        )

    # --- bring-up ------------------------------------------------------------------------
    def _bringup(self) -> None:
        """Reset the chip and configure it; raises RadioError (wrong or no chip), _Fault or
        OSError (GPIO)."""
        cfg = self.config
        with self._spi_lock:
            self._tx_phase = None
            self._ack_deadline = None
            self._ack_idle.set()
            self._rxam = False
            self._rx_started = False
            # 1.2: RSTN low for >= 625 ns, then poll STATE until TRXOFF
            self._req.set_value(cfg.reset_line, self._inactive)
            self.clock.sleep_until(self.clock.now() + RESET_PULSE_S, threading.Event())
            self._req.set_value(cfg.reset_line, self._active)
            state = self._poll_state(STATE_TRXOFF)
            pn, vn = self._read(RF_PN, 2)
            self._check_part(pn, vn)
            if state != STATE_TRXOFF:
                raise _Fault(
                    "state_stuck" if state == STATE_TRANSITION else "unexpected_state",
                    f"{_part_name(pn)} did not reach TRXOFF after reset "
                    f"(STATE reads 0x{state:02X} after {STATE_POLLS} reads)",
                )
            self._read(RF09_IRQS, 4)  # clear the WAKEUP of the reset
            for addr, data in bringup_sequence(cfg, vn=vn):
                self._write(addr, data)
                if addr == RF09_CMD:
                    self._await_state(data[0])
            if self._addresses is not None:
                for addr, data in filter_sequence(*self._addresses):
                    self._write(addr, data)
            now = self.clock.now()
            self._last_irq = self._last_check = now
        self.part = f"{_part_name(pn)} (RF_PN 0x{pn:02X}, RF_VN 0x{vn:02X})"
        self.diag.set("radio.part", self.part)
        self.diag.set("radio.status", "ok")
        log.info("AT86RF215: %s up on %s, channel %d", self.part, cfg.spi_device, cfg.channel)

    def _check_part(self, pn: int, vn: int) -> None:
        cfg = self.config
        where = f"on {cfg.spi_device}"
        if pn in (0x00, 0xFF):
            raise RadioError(
                f"no AT86RF215 answering {where}: RF_PN reads 0x{pn:02X} (MISO stuck "
                f"{'low' if pn == 0 else 'high'}?). Check the wiring, 3.3 V, and that RSTN "
                f"(BCM {cfg.reset_line}) is idle high"
            )
        if pn == 0x35:
            raise RadioError(
                f"found an AT86RF215IQ {where} (RF_PN 0x35): it has no baseband and cannot "
                "receive frames; use an AT86RF215 (0x34) or AT86RF215M (0x36)"
            )
        wanted = CHIP_TYPES[cfg.chip]
        if pn not in wanted:
            expected = " or ".join(f"0x{p:02X} ({PART_NUMBERS[p]})" for p in wanted)
            raise RadioError(
                f"wrong part {where}: RF_PN reads 0x{pn:02X} ({_part_name(pn)}, RF_VN "
                f"0x{vn:02X}), expected {expected}"
            )

    # --- the IRQ thread --------------------------------------------------------------------
    def _irq_loop(self) -> None:
        while not self._stop.is_set():
            try:
                req = self._recover_request
                if req is not None:
                    self._recover_request = None
                    raise req
                self._wait_and_service()
                self._timers()
            except _Fault as f:
                self._recover(f)
            except OSError as e:  # from gpiod
                self._recover(_Fault("gpio_error", f"GPIO error: {e}"))
            except Exception:  # a bug must not silently stop the radio
                log.exception("AT86RF215: unexpected error in the IRQ thread")
                self._recover(_Fault("driver_error", "unexpected error in the IRQ thread"))

    def _wait_and_service(self) -> None:
        timeout = self.config.irq_wait_s
        if self._ack_deadline is not None:
            timeout = min(timeout, max(0.0, self._ack_deadline - self.clock.now()))
        got = bool(self._req.wait_edge_events(timeout))
        if self._stop.is_set():
            return
        t_irq = time.monotonic_ns()
        if got:
            events = self._req.read_edge_events()
            if events:  # the kernel's timestamp of the edge, when it is on our clock
                ts = getattr(events[0], "timestamp_ns", None)
                if isinstance(ts, int) and 0 <= t_irq - ts < 1_000_000_000:
                    t_irq = ts
        elif self._req.get_value(self.config.irq_line) != self._active:
            return
        self._service(t_irq)

    def _service(self, t_irq: int) -> None:
        """Read IRQS until the line goes inactive; a line that stays active with nothing
        pending is stuck."""
        empty = 0
        for _ in range(MAX_IRQ_ROUNDS):
            with self._spi_lock:
                rf09, rf24, bbc0, _bbc1 = self._read(RF09_IRQS, 4)
                if rf09 or rf24 or bbc0:
                    empty = 0
                    self._last_irq = self.clock.now()
                    self._handle(rf09, rf24, bbc0, t_irq)
                else:
                    empty += 1
            if self._req.get_value(self.config.irq_line) != self._active:
                return
            self.diag.count("radio.irq_rereads")
            if empty >= STUCK_IRQ_READS:
                raise _Fault(
                    "irq_stuck",
                    f"IRQ line (BCM {self.config.irq_line}) stays active after {empty} reads "
                    "of IRQS with nothing pending",
                )

    def _handle(self, rf09: int, rf24: int, bbc0: int, t_irq: int) -> None:
        if (rf09 | rf24) & RF_IRQ_WAKEUP:
            raise _Fault("chip_reset", "unexpected WAKEUP IRQ: the chip reset itself")
        if rf09 & RF_IRQ_TRXERR:
            self.diag.count("radio.trx_error")
            log.warning("AT86RF215: TRXERR IRQ (transceiver error)")
            if self._tx_phase == "tx":  # the frame will not go out: no TXFE will come
                self._tx_error = True
                self._ev_txfe.set()
            idle = self._tx_phase is None and self._ack_deadline is None
            if idle and not bbc0 & (BB_IRQ_RXFE | BB_IRQ_TXFE):
                self._rearm(None)  # whatever it broke, listen again
        if rf09 & RF_IRQ_BATLOW:
            self.diag.count("radio.batlow")
            log.warning("AT86RF215: BATLOW IRQ (supply voltage low)")
        if rf09 & RF_IRQ_EDC:
            self._ev_edc.set()
        if rf09 & RF_IRQ_TRXRDY:
            self._ev_trxrdy.set()
        if bbc0 & BB_IRQ_RXFS:
            self._rxam = False
            if self._rx_started:  # the frame before started and never ended in RXFE
                self.diag.count("radio.rx_dropped")
                log.info(
                    "AT86RF215: a frame started (RXFS) and the chip dropped it without RXFE: "
                    "bad FCS (PC.FCSFE) or not addressed to this display"
                )
            self._rx_started = True
        if bbc0 & BB_IRQ_RXAM:
            self._rxam = True
        if bbc0 & BB_IRQ_RXFE:
            self._rx_started = False
            self._on_rxfe(t_irq)
        if bbc0 & BB_IRQ_TXFE:
            if self._tx_phase == "tx":
                self._ev_txfe.set()
            else:  # the auto-ACK went out; the chip is in TXPREP
                if self._rx_started:  # it acknowledged a frame whose RXFE never came
                    self._rx_started = False
                    self.diag.count("radio.rxfe_lost")
                    log.warning(
                        "AT86RF215: the chip acknowledged a frame but raised no RXFE: "
                        "the frame is lost"
                    )
                self.diag.count("radio.acks_sent")
                self._ack_deadline = None
                self._ack_idle.set()
                self._rearm(t_irq)

    def _on_rxfe(self, t_irq: int) -> None:
        lo, hi = self._read(BBC0_RXFLL, 2)
        n = lo | hi << 8
        if n == 0 or n > MAX_FRAME_LEN:
            raise _Fault("rx_bad_length", f"frame buffer length RXFL={n} (0x{n:04X}) is impossible")
        psdu = self._read(RX_BUFFER, n)
        phr = self._read1(BBC0_FSKPHRRX)
        fcs_ok = bool(self._read1(BBC0_PC) & PC_FCSOK)
        edv = self._read1(RF09_EDV)
        for _ in range(EDV_REREADS):
            if edv != EDV_INVALID:
                break
            edv = self._read1(RF09_EDV)
        if edv == EDV_INVALID:
            self.diag.count("radio.edv_invalid")
            log.info(
                "AT86RF215: EDV reads 127 (invalid) %d times after RXFE: frame without RSSI",
                EDV_REREADS + 1,
            )
        rxam, self._rxam = self._rxam, False
        fcs_len = 2 if phr & FSKPHRRX_FCST16 else 4
        ack_coming = (
            rxam
            and fcs_ok
            and self._addresses is not None
            and psdu[0] & 0x20 != 0  # AR
            and psdu[0] & 0x07 != 0x02  # not an ACK
        )
        if ack_coming:  # the chip sends the ACK; RX again on its TXFE
            self._ack_deadline = self.clock.now() + ACK_WAIT_S
            self._ack_idle.clear()
        elif self._tx_phase != "tx":
            self._rearm(t_irq)
        now = self.clock.now()
        if not fcs_ok:  # PC.FCSFE drops bad frames: the buffer changed under the read
            self.diag.count("radio.fcs_error")
            log.warning(
                "AT86RF215: PC.FCSOK=0 after RXFE: the frame buffer was overwritten while "
                "it was read, or SPI corruption; dropped a %d-octet frame",
                n,
            )
            return
        if n <= fcs_len:
            self.diag.count("radio.rx_too_short")
            log.info("AT86RF215: dropped a %d-octet frame with a %d-octet FCS", n, fcs_len)
            return
        info = RxInfo(
            timestamp=now,
            channel=self.config.channel,
            fcs_len=fcs_len,
            whitened=bool(phr & FSKPHR_DW),
            fcs_ok=fcs_ok,
            rssi_dbm=None if edv == EDV_INVALID else float(_s8(edv)),
            lqi=None,
        )
        try:
            self._rx.put_nowait(RxFrame(psdu, info))
        except queue.Full:
            self.diag.count("radio.rx_queue_full")
            with self._stats_lock:
                self._lost += 1
            log.warning("AT86RF215: receive queue full, dropped a frame")
            return
        self.diag.count("radio.rx_delivered")
        with self._stats_lock:
            self._delivered += 1

    def _rearm(self, t_irq: int | None) -> None:
        self._write(RF09_CMD, bytes([CMD_RX]))
        if t_irq is not None:
            with self._stats_lock:
                self._latency.append((time.monotonic_ns() - t_irq) / 1e9)

    def _timers(self) -> None:
        """The auto-ACK deadline and the watchdog; both only on the injected clock."""
        now = self.clock.now()
        if self._ack_deadline is not None and now >= self._ack_deadline:
            with self._spi_lock:
                self._ack_deadline = None
                self._ack_idle.set()
                self.diag.count("radio.aack_missing")
                if self._tx_phase is None:
                    self._rearm(None)
        if (
            self._tx_phase is not None
            or self._ack_deadline is not None
            or now - max(self._last_irq, self._last_check) < self.config.watchdog_s
        ):
            return
        self._last_check = now
        with self._spi_lock:
            if self._tx_phase is not None:
                return
            state = self._read1(RF09_STATE)
            if state == STATE_TRANSITION:
                state = self._poll_state(STATE_RX)
                if state == STATE_TRANSITION:
                    raise _Fault(
                        "state_stuck", f"STATE stuck in TRANSITION for {STATE_POLLS} reads"
                    )
            if state in (STATE_RX, STATE_TX):  # listening, or sending an ACK
                return
            if state == STATE_TXPREP:  # an RXFE that never came, or a lost RX command
                self._rx_started = False  # that frame: counted here
                self.diag.count("radio.watchdog_rearm")
                log.warning(
                    "AT86RF215: no IRQ for %.1f s and the chip waits in TXPREP: RX again",
                    now - self._last_irq,
                )
                self._rearm(None)
                return
        raise _Fault(
            "unexpected_state",
            f"no IRQ for {now - self._last_irq:.1f} s and STATE reads 0x{state:02X} "
            f"({STATE_NAMES.get(state, '?')}) instead of RX",
        )

    # --- recovery --------------------------------------------------------------------------
    def _request_recovery(self, fault: _Fault) -> None:
        """From another thread: let the IRQ thread re-initialise the chip."""
        if self._recover_request is None:
            self._recover_request = fault

    def _recover(self, fault: _Fault) -> None:
        t0 = time.monotonic()
        self.diag.count(f"radio.{fault.counter}")
        self.diag.set("radio.status", f"recovering: {fault.reason}")
        log.warning("AT86RF215: %s; re-initialising the chip", fault.reason)
        self._generation += 1
        for ev in (self._ev_trxrdy, self._ev_edc, self._ev_txfe, self._ack_idle):
            ev.set()  # a transmit in progress sees the new generation and gives up
        recent = [t for t in self._recent_recoveries if t0 - t < RECOVERY_WINDOW_S]
        self._recent_recoveries = [*recent, t0]
        if len(recent) >= RECOVERY_BURST:
            log.warning(
                "AT86RF215: %d re-initialisations in %g s; pausing %g s",
                len(recent) + 1,
                RECOVERY_WINDOW_S,
                RECOVERY_PAUSE_S,
            )
            self._stop.wait(RECOVERY_PAUSE_S)
        attempt = 0
        while not self._stop.is_set():
            try:
                self._bringup()
            except (RadioError, _Fault, OSError) as e:
                reason = e.reason if isinstance(e, _Fault) else str(e)
                delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                attempt += 1
                self._down = reason
                self.diag.count("radio.reinit_failed")
                self.diag.set("radio.status", f"error: {reason}")
                log.error("AT86RF215: re-initialisation failed (%s); retrying in %g s", e, delay)
                self._stop.wait(delay)
                continue
            self._down = None
            self._recover_request = None  # this bring-up also covers a request made meanwhile
            self.diag.count("radio.reinit")
            took = time.monotonic() - t0
            with self._stats_lock:
                self._recoveries.append(Recovery(f"radio.{fault.counter}", fault.reason, took))
            log.info("AT86RF215: recovered from %s in %.3f s", fault.counter, took)
            return

    # --- transmit ----------------------------------------------------------------------------
    def _wait(self, ev: threading.Event, timeout: float, gen: int, what: str) -> None:
        ok = ev.wait(timeout)
        if self._stop.is_set():
            raise _Aborted("the radio was closed")
        if gen != self._generation:
            raise _Aborted("the chip was re-initialised")
        if not ok:
            raise _Fault("tx_timeout", f"no {what} within {timeout:g} s")

    def _csma(self, gen: int) -> None:
        """Unslotted CSMA-CA with CCA by energy detection; returns with the channel clear."""
        be = CSMA_MIN_BE
        for nb in range(CSMA_MAX_BACKOFFS + 1):
            slots = self._rng.randint(0, 2**be - 1)
            if slots:
                self._sleep(slots * CSMA_UNIT_S)
            # let an auto-ACK in flight finish (the IRQ thread's deadline ends the wait)
            self._ack_idle.wait(ACK_WAIT_S * 2)
            if self._cca_clear(gen):
                return
            if nb < CSMA_MAX_BACKOFFS:
                self.diag.count("radio.csma_backoffs")
            be = min(be + 1, CSMA_MAX_BE)
        self.diag.count("radio.csma_failure")
        raise RadioError(
            f"channel busy: CSMA-CA gave up after {CSMA_MAX_BACKOFFS + 1} clear-channel "
            f"assessments (threshold {self.config.cca_threshold_dbm} dBm)"
        )

    def _cca_clear(self, gen: int) -> bool:
        try:
            edv = self._energy(gen)
            if edv is None:  # no valid energy: take the chip's own verdict
                self.diag.count("radio.cca_invalid")
                with self._spi_lock:
                    busy = bool(self._read1(BBC0_AMCS) & AMCS_CCAED)
            else:
                busy = edv > self.config.cca_threshold_dbm
        finally:
            with self._spi_lock:
                self._tx_phase = None
        return not busy

    def _energy(self, gen: int) -> int | None:
        """One ED measurement on the current channel (1.4: baseband off, RX, EDC single,
        the EDC IRQ, EDV); None if EDV stays invalid. Leaves the chip in RX, baseband on."""
        with self._spi_lock:
            self._tx_phase = "cca"
            self._ev_edc.clear()
            self._write(BBC0_PC, bytes([self._pc & ~PC_BBEN]))  # baseband off for ED
            self._write(RF09_CMD, bytes([CMD_RX]))
            self._await_state(STATE_RX)  # from TXPREP (a channel change) this takes a moment
            self._write(RF09_EDC, b"\x01")  # EDM single: one measurement, then EDC IRQ
        try:
            self._wait(self._ev_edc, CHIP_EVENT_TIMEOUT_S, gen, "EDC IRQ")
            with self._spi_lock:
                edv = self._read1(RF09_EDV)
                for _ in range(EDV_REREADS):
                    if edv != EDV_INVALID:
                        break
                    edv = self._read1(RF09_EDV)
        finally:
            with self._spi_lock:
                if gen == self._generation and not self._stop.is_set():
                    self._write(BBC0_PC, bytes([self._pc]))  # baseband on again
        return None if edv == EDV_INVALID else _s8(edv)

    def _send(self, psdu: bytes, fcs_len: int, gen: int) -> None:
        """1.7: TXPREP, frame to the TX buffer, TXFL, long preamble, TX, TXFE, back to RX."""
        pc = pc_value(fcs_len)
        n = len(psdu)
        with self._spi_lock:
            if gen != self._generation:
                raise _Aborted("the chip was re-initialised")
            self._tx_phase = "tx"
            self._tx_error = False
            self._ev_trxrdy.clear()
            if pc != self._pc:
                self._write(BBC0_PC, bytes([pc]))
            self._write(RF09_CMD, bytes([CMD_TXPREP]))
        restore = True
        try:
            self._wait(self._ev_trxrdy, CHIP_EVENT_TIMEOUT_S, gen, "TRXRDY IRQ")
            with self._spi_lock:
                self._await_state(STATE_TXPREP)
                self._ev_txfe.clear()
                self._write(TX_BUFFER, psdu[: n - fcs_len])  # the chip appends the FCS
                self._write(BBC0_TXFLL, bytes([n & 0xFF, n >> 8]))
                self._write(BBC0_FSKPLL, bytes([FSK_TX_PREAMBLE]))
                self._write(RF09_CMD, bytes([CMD_TX]))
            air_s = (FSK_TX_PREAMBLE + 2 + 2 + n) * 8 * FSK_BIT_S
            self._wait(self._ev_txfe, air_s + TX_TIMEOUT_MARGIN_S, gen, "TXFE IRQ")
            with self._spi_lock:
                ps = self._read1(BBC0_PS)
            if ps & PS_TXUR:
                raise _Fault(
                    "tx_underrun",
                    "PS.TXUR after TX: the frame buffer underran or the frame length was "
                    "beyond 2047; the frame did not go out whole",
                )
            if self._tx_error:
                raise _Fault("tx_error", "TRXERR during TX: the frame did not go out")
        except _Aborted:
            restore = False
            raise
        finally:
            if restore:
                with self._spi_lock:
                    self._write(BBC0_FSKPLL, bytes([FSK_RX_PREAMBLE]))
                    if pc != self._pc:
                        self._write(BBC0_PC, bytes([self._pc]))
                    self._write(RF09_CMD, bytes([CMD_RX]))
                    self._tx_phase = None
