"""A register-level model of the Microchip AT86RF215: the sub-GHz core (RF09) with its
baseband (BBC0), behind fake ``spidev``/``gpiod`` modules, on the simulated air.

Written from ``../shared/hw/radio-chips.md`` (sections 1 and 5) only, never from the driver
in ``ihd/radio/at86rf215.py``: a test parses every module here and fails if one imports it.
The point is that the driver and this model are two readings of the same facts; where they
disagree, a test fails and someone checks the datasheet.

What the model does (section numbers are radio-chips.md's):

* SPI (1.1): a 2-octet command (bits 15:14 = 10 write, 00 read; 13:0 address), then data
  with the address auto-incrementing over a sparse 14-bit map. Unknown addresses read 00 and
  ignore writes; read-only registers and read-only bits ignore writes (5). A read answers
  00 00 during the command octets. Each transaction takes its bit time at the SPI clock: on
  a ``ManualClock`` it moves the clock forward by that much (so a driver polling STATE sees
  a transition end, and a 2 KB buffer read takes its 3.3 ms), on other clocks the chip's
  time runs that far ahead of the clock.
* Reset (1.2, 5): RSTN low holds the chip in reset (SPI answers 00, IRQ low); on its
  release, and after ``RF_RST``←07, STATE reads 7 for ``Timing.reset_s`` and then TRXOFF,
  with WAKEUP latched in RF09 and RF24 IRQS. Registers revert: PN=34, VN=03, AMEDT=-84.
* IRQs (1.2, 1.3, 5): IRQS clears on read, per register; the pin is OR(IRQS & IRQM) with
  RF_CFG.IRQP polarity and stays asserted until IRQS is read; edge events come from the
  fake gpiod on its transitions. With RF_CFG.IRQMM=0 masked causes do not latch.
* State machine (1.4, 5): CMD 0..5, 7; STATE reads 6 during a transition (``Timing``);
  TRXRDY when a commanded transition ends in TXPREP (or passes it on the way to RX from
  TRXOFF); one queued command during a transition; CMD ignored during TX; after RXFE the
  chip drops to TXPREP; after TXFE to TXPREP, or RX with AMCS.TX2RX. Channel register
  writes (104..108) outside TRXOFF/TXPREP are recorded in :attr:`violations`.
* Channel (1.5): f = (CCF0 + CN × CS) × 25 kHz, applied by the CNM write. The chip hears the
  air channel of the plan (default EU mode #1) whose centre is exactly f, and nothing else.
* RX (1.6, 5): a frame is received only if the chip was listening (RX, baseband on, PHY
  registers matching the plan) from before its SFD; the PHR is parsed with
  ``ihd.smwap.phy.parse_ppdu`` (a bad PHR is lost). Then RXFS (+AGCH, FBLI), the PSDU with
  its FCS at 2000.., RXFL, PC.FCSOK, FSKPHRRX (DW, SFD=FEC, FCST), EDV (the air's RSSI),
  and ``Timing.rx_end_s`` later RXFE (+RXAM, AGCR) and the drop to TXPREP. With PC.FCSFE a
  bad frame raises AGCR only, and the chip stays in RX. Frames the filter rejects raise
  RXFS/AGCR only and the chip stays in RX.
* Frame filter and auto-ACK (1.3, 1.8): AFC0 filters 0..3 (PAN MACPIDxFn, short MACSHAxFn,
  long MACEA), AFFTM frame types, AFC0.PM promiscuous. With AMCS.AACK a filter-matched
  unicast frame with AR set and a good FCS is acknowledged: an Imm-Ack goes on air one
  turnaround (1 ms) after the frame ends, STATE is TX from RXFE until the ACK's TXFE.
* TX (1.7, 5): CMD TX in TXPREP takes TXFL octets from 2800 (TXFL − FCS octets and the
  chip's own FCS with PC.TXAFCS, per PC.FCST), builds the PPDU with
  ``ihd.smwap.phy.build_ppdu`` (FSKPHRTX.DW, FSKPHRTX.SFD → FEC, FSKPLL preamble) and puts
  it on the air; TXFE when it ends.
* CCA/ED (1.4): EDC.EDM=1 in RX measures once for the EDD duration and raises EDC; EDV is
  the air's energy, AMCS.CCAED = EDV ≥ AMEDT; with AMCS.CCATX a clear channel starts TX.
  RSSI (10D) is live energy in RX and 127 otherwise.
* Faults (5): see the ``fault_*`` methods.

Choices where radio-chips.md is silent are marked [assumed] and listed in the report of
issue 5; they are constants or :class:`Timing` fields so a test can change them.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import random
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

from ihd.clock import Clock, ManualClock
from ihd.sim.air import AirRx
from ihd.sim.world import SimWorld
from ihd.smwap.errors import PhyError
from ihd.smwap.fcs import check_fcs, compute_fcs
from ihd.smwap.fec import FecScheme
from ihd.smwap.phy import EU_863_MODE_1, TURNAROUND_S, PhyMode, build_ppdu, parse_ppdu

from .fakes import FakeGpioChip, make_gpiod_module, make_spidev_module

__all__ = [
    "NO_CHANNEL",
    "ChipCounters",
    "EmulatedAt86rf215",
    "RxRecord",
    "SpiRecord",
    "Timing",
    "TxRecord",
    "Violation",
]

# --- the register map (radio-chips.md 1.2, 1.3) -------------------------------------------

RF_RST, RF_CFG, RF_CLKO, RF_XOC, RF_PN, RF_VN = 0x005, 0x006, 0x007, 0x009, 0x00D, 0x00E
_RF09, _RF24, _BBC0, _BBC1 = 0, 1, 2, 3  # IRQS addresses 00..03, in this order
_IRQM = (0x100, 0x200, 0x300, 0x400)

# RF core registers, as offsets from the core's base (RF09 0x100, RF24 0x200)
_IRQM_O, _STATE_O, _CMD_O, _CS_O, _CCF0L_O, _CCF0H_O, _CNL_O, _CNM_O = 0, 2, 3, 4, 5, 6, 7, 8
_RSSI_O, _EDC_O, _EDD_O, _EDV_O, _RNDV_O, _PLL_O = 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x21
RF09_STATE, RF09_CMD, RF09_CS, RF09_CNM = 0x102, 0x103, 0x104, 0x108
RF09_CCF0L, RF09_CCF0H, RF09_CNL = 0x105, 0x106, 0x107
RF09_RSSI, RF09_EDC, RF09_EDD, RF09_EDV = 0x10D, 0x10E, 0x10F, 0x110
RF09_RNDV, RF09_PLL = 0x111, 0x121
RF24_STATE, RF24_CMD = 0x202, 0x203
_CHANNEL_REGS = range(RF09_CS, RF09_CNM + 1)

# BBC0 (BBC1 is the same at +0x100)
BBC0_PC, BBC0_PS = 0x301, 0x302
BBC0_RXFLL, BBC0_RXFLH, BBC0_TXFLL, BBC0_TXFLH = 0x304, 0x305, 0x306, 0x307
BBC0_FBLL, BBC0_FBLH, BBC0_FBLIL, BBC0_FBLIH = 0x308, 0x309, 0x30A, 0x30B
BBC0_AFC0, BBC0_AFFTM, BBC0_MACEA0, BBC0_MACPID0F0 = 0x320, 0x322, 0x325, 0x32D
BBC0_AMCS, BBC0_AMEDT, BBC0_AMAACKPD = 0x340, 0x341, 0x342
BBC0_FSKC0, BBC0_FSKC1, BBC0_FSKC2, BBC0_FSKPLL = 0x360, 0x361, 0x362, 0x365
BBC0_FSKPHRTX, BBC0_FSKPHRRX = 0x36A, 0x36B

RX_BUF, TX_BUF, BUF_LEN = 0x2000, 0x2800, 0x7FF  # 2000..27FE and 2800..2FFE
ADDR_MASK = 0x3FFF

# RF IRQS bits / BBC IRQS bits (1.3)
WAKEUP, TRXRDY, EDC, BATLOW, TRXERR, IQIFSF = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
RXFS, RXFE, RXAM, RXEM, TXFE, AGCH, AGCR, FBLI = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
# register bits
CFG_IRQP, CFG_IRQMM = 0x04, 0x08
PC_PT, PC_BBEN, PC_FCST, PC_TXAFCS, PC_FCSOK, PC_FCSFE = 0x03, 0x04, 0x08, 0x10, 0x20, 0x40
PS_TXUR = 0x01
AMCS_TX2RX, AMCS_CCATX, AMCS_CCAED, AMCS_AACK = 0x01, 0x02, 0x04, 0x08
AFC0_PM = 0x10
PHR_DW, PHR_SFD, PHRRX_FCST = 0x04, 0x08, 0x80
PLL_LS = 0x02

# STATE / CMD values (1.4)
NOP, SLEEP, TRXOFF, TXPREP, TX, RX, TRANSITION, RESET = 0, 1, 2, 3, 4, 5, 6, 7
_STATE_NAMES = {2: "TRXOFF", 3: "TXPREP", 4: "TX", 5: "RX", 6: "TRANSITION", 7: "RESET/SLEEP"}

# FSK settings (1.3): modulation index by FSKC0.MIDX and its scale by MIDXS; symbol rate by
# FSKC1.SRATE (only 0 = 50 and 5 = 400 ksym/s are in radio-chips.md; 1..4 [assumed]).
_MIDX = (3 / 8, 4 / 8, 6 / 8, 1.0, 10 / 8, 12 / 8, 14 / 8, 2.0)
_MIDXS = (7 / 8, 1.0, 9 / 8, 10 / 8)
_SRATE_KSYM = {0: 50, 1: 100, 2: 150, 3: 200, 4: 300, 5: 400}
_EDD_DTB_US = (2, 8, 32, 128)

NO_CHANNEL = -1
"""The air channel the chip listens on when its frequency is not a channel of the plan."""

#: Wall seconds a waiter sleeps before it moves a ManualClock forward (see ``wait``).
MANUAL_YIELD_S = 50e-6

MAX_SPI_HZ = 25_000_000  # "believed" datasheet maximum (1.1): faster is a violation


def _s8(v: int) -> int:
    return v - 256 if v & 0x80 else v


def _dbm_byte(dbm: float) -> int:
    """A signed-dBm register value, clamped to the valid -127..+4 (1.6)."""
    return max(-127, min(4, round(dbm))) & 0xFF


def _register_map() -> bytes:
    """Write masks by address: 0 = read-only or unknown (reads 00 unless modelled)."""
    wmask = bytearray(ADDR_MASK + 1)

    def rw(addr: int, mask: int = 0xFF) -> None:
        wmask[addr] = mask

    rw(RF_CFG, 0x0F)
    rw(RF_CLKO)
    rw(RF_XOC)
    for base in (0x100, 0x200):
        rw(base + _IRQM_O, 0x3F)
        rw(base + _CMD_O, 0x07)
        for off in range(_CS_O, _RSSI_O):  # CS, CCF0L/H, CNL, CNM, RXBWC, RXDFE, AGCC, AGCS
            rw(base + off)
        rw(base + _EDC_O, 0x03)
        rw(base + _EDD_O)
        for off in (0x12, 0x13, 0x14):  # TXCUTC, TXDFE, PAC
            rw(base + off)
        rw(base + _PLL_O, 0xFF & ~PLL_LS)
    for base in (0x300, 0x400):
        rw(base + 0x00)  # IRQM
        rw(base + 0x01, 0xFF & ~PC_FCSOK)  # PC
        rw(base + 0x06)  # TXFLL
        rw(base + 0x07, 0x07)  # TXFLH: 11-bit length
        rw(base + 0x0A)  # FBLIL
        rw(base + 0x0B, 0x07)  # FBLIH
        for off in (0x20, 0x21, 0x22, 0x24, *range(0x25, 0x3D)):  # AFC0/1, AFFTM, AFS, MAC*
            rw(base + off)
        rw(base + 0x40, 0xFF & ~AMCS_CCAED)
        for off in (0x41, 0x42, 0x43, 0x44, *range(0x60, 0x68), 0x6A, 0x6C, 0x6D, 0x6E):
            rw(base + off)
        for off in (0x72, 0x73, 0x74, 0x75, 0x91, 0x92, 0x93, 0x94):
            rw(base + off)
    for a in range(RX_BUF, RX_BUF + BUF_LEN):
        wmask[a] = 0xFF
    for a in range(TX_BUF, TX_BUF + BUF_LEN):
        wmask[a] = 0xFF
    return bytes(wmask)


_WMASK = _register_map()


def _reset_image(part_number: int, version: int) -> bytes:
    """Register values after power-on or reset. Only PN, VN, STATE and AMEDT are in
    radio-chips.md; the rest are [assumed] (see the module docstring)."""
    regs = bytearray(ADDR_MASK + 1)
    regs[RF_PN] = part_number
    regs[RF_VN] = version
    for base in (0x100, 0x200):
        regs[base + _IRQM_O] = 0x3F  # [assumed] all RF causes on: WAKEUP reaches the pin
        regs[base + _RSSI_O] = 0x7F
        regs[base + _EDV_O] = 0x7F  # invalid until a measurement
    for base in (0x300, 0x400):
        regs[base + 0x41] = (-84) & 0xFF  # AMEDT
        regs[base + 0x22] = 0x0F  # AFFTM [assumed]: beacon, data, ACK, command
        regs[base + 0x0A], regs[base + 0x0B] = 0xFF, 0x07  # FBLI [assumed] 2047
    return bytes(regs)


# --- records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """How long the chip takes, in seconds. radio-chips.md 1.4 gives the upper bounds used
    here; the rest are [assumed]."""

    reset_s: float = 25e-6  # RSTN release / RF_RST until TRXOFF + WAKEUP [assumed]
    trxoff_to_txprep_s: float = 200e-6  # ends in TRXRDY (1.4)
    txprep_to_rx_s: float = 1e-6  # [assumed]; part of the RX dead time after a frame
    rx_to_txprep_s: float = 200e-9  # (1.4)
    to_trxoff_s: float = 200e-9  # (1.4)
    sleep_to_trxoff_s: float = 1e-6  # (1.4)
    deep_sleep_to_trxoff_s: float = 500e-6  # both cores asleep; registers lost (1.4)
    channel_switch_s: float = 100e-6  # PLL relock in TXPREP (1.4)
    tx_start_s: float = 32e-6  # CMD TX to the first octet on air (PA ramp) [assumed]
    rx_end_s: float = 16e-6  # RXFS (frame end on air) to RXFE [assumed]
    ed_default_s: float = 128e-6  # ED duration when EDD is 0 [assumed]


@dataclass(slots=True)
class ChipCounters:
    """What happened to every frame the air brought to the antenna, and more."""

    heard: int = 0  # frames delivered by the air on the chip's channel
    delivered: int = 0  # RXFE raised with the frame in the buffer (good or bad FCS)
    delivered_bad_fcs: int = 0  # ... of which FCSOK=0 (PC.FCSFE off)
    lost_dead_time: int = 0  # not listening because the chip left RX after a frame
    lost_not_listening: int = 0  # not in RX, baseband off, in reset, asleep, stuck
    lost_phy_config: int = 0  # PHY registers do not match the air's mode
    lost_overwritten: int = 0  # a received frame the host never read was overwritten
    lost_rxfe: int = 0  # fault: RXFE never raised
    lost_aborted: int = 0  # the host left RX between RXFS and RXFE
    phy_errors: int = 0  # SFD/PHR damaged on air (parse_ppdu failed)
    fcs_dropped: int = 0  # bad FCS dropped by PC.FCSFE (AGCR only)
    filtered: int = 0  # rejected by the frame filter (not a loss)
    acks_sent: int = 0
    tx_frames: int = 0  # host frames put on air
    cmd_ignored: int = 0  # CMD writes that did nothing (during TX, reset, stuck...)
    resets: int = 0  # reset sequences completed (WAKEUP raised)
    irq_assertions: int = 0  # inactive -> active transitions of the IRQ pin

    @property
    def lost_in_chip(self) -> int:
        """Frames that reached the antenna intact enough to be heard and never reached the
        host: dead time, not listening, wrong PHY, overwritten, lost RXFE, aborted."""
        return (
            self.lost_dead_time
            + self.lost_not_listening
            + self.lost_phy_config
            + self.lost_overwritten
            + self.lost_rxfe
            + self.lost_aborted
        )

    def as_dict(self) -> dict[str, int]:
        d = asdict(self)
        d["lost_in_chip"] = self.lost_in_chip
        return d


@dataclass(frozen=True, slots=True)
class Violation:
    """Something a correct driver never does. Kinds: ``channel_write``, ``tx_command``,
    ``tx_length``, ``tx_baseband``, ``txflh_reserved``, ``spi_command``, ``spi_mode``,
    ``spi_speed``."""

    t: float
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class SpiRecord:
    t: float  # chip time at the end of the transaction
    write: bool
    address: int
    data: bytes  # octets written, or octets read (after any MISO fault)


@dataclass(frozen=True, slots=True)
class TxRecord:
    start: float
    end: float
    psdu: bytes  # MPDU with FCS, as the chip sent it
    ppdu: bytes
    fcs_len: int
    whitened: bool
    ack: bool  # the chip's own Imm-Ack
    underrun: bool = False


@dataclass(frozen=True, slots=True)
class RxRecord:
    t: float  # RXFE time
    psdu: bytes
    fcs_ok: bool
    rssi_dbm: float
    sender: str


@dataclass(frozen=True, slots=True)
class _Mhr:
    ftype: int
    ar: bool
    version: int
    seq: int | None
    dst_mode: int
    dst_pan: int | None
    dst: bytes  # on-air order


@dataclass(frozen=True, slots=True)
class _Verdict:
    accept: bool
    matched: bool
    ack: bool = False
    seq: int = 0
    pending: bool = False
    version: int = 0


@dataclass(order=True, slots=True)
class _Event:
    t: float
    seq: int
    fn: Callable[[], None] = field(compare=False)
    gen: int | None = field(compare=False, default=None)
    cancelled: bool = field(compare=False, default=False)


def _parse_mhr(b: bytes) -> _Mhr | None:
    """The frame control, sequence number and destination, as the filter needs them."""
    n = len(b)
    if n < 2:
        return None
    fc = b[0] | b[1] << 8
    ftype, ar, panidc = fc & 7, bool(fc & 0x20), bool(fc & 0x40)
    dmode, version, smode = (fc >> 10) & 3, (fc >> 12) & 3, fc >> 14
    if ftype > 3 or version == 3 or dmode == 1:
        return _Mhr(ftype, False, version, None, 0, None, b"")
    pos = 2
    seq: int | None = None
    if not (version == 2 and fc & 0x100):
        if n < 3:
            return None
        seq, pos = b[2], 3
    if version < 2:
        dpan = dmode != 0
    elif not dmode:
        dpan = panidc and not smode
    elif not smode or (dmode == 3 and smode == 3):
        dpan = not panidc
    else:
        dpan = True
    dst_pan = None
    if dpan:
        if n < pos + 2:
            return None
        dst_pan = b[pos] | b[pos + 1] << 8
        pos += 2
    alen = {0: 0, 2: 2, 3: 8}[dmode]
    if n < pos + alen:
        return None
    return _Mhr(ftype, ar, version, seq, dmode, dst_pan, bytes(b[pos : pos + alen]))


# --- the chip -----------------------------------------------------------------------------


class EmulatedAt86rf215:
    """One AT86RF215 on one SPI device and two GPIO lines.

    ``modules()`` gives the ``(spidev, gpiod)`` module objects a driver is constructed
    with. Time comes from ``clock``; the chip's own events (transitions, frame ends, TX
    done) happen at clock times and run when something calls :meth:`advance_to` (every SPI
    transfer and GPIO call does, up to ``clock.now()``), when a waiter steps the simulation
    (``wait_edge_events`` without a pump), or from the pump thread (:meth:`start_pump`, for
    the wall or a scaled clock; never with a ``ManualClock``).

    With ``world`` the chip is the world's display node: it drives ``world.run_until`` in
    time order with its own events and hears and sends on ``world.air``.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        world: SimWorld | None = None,
        plan: PhyMode = EU_863_MODE_1,
        timing: Timing | None = None,
        spi_bus: int = 0,
        spi_device: int = 0,
        gpio_chip: str = "/dev/gpiochip0",
        gpio_label: str = "pinctrl-bcm2711",
        reset_line: int = 24,
        irq_line: int = 25,
        extra_gpio_chips: Mapping[str, str] | None = None,
        part_number: int = 0x34,
        version_number: int = 0x03,
        noise_floor_dbm: float = -110.0,
        seed: int = 0,
        trace_limit: int = 100_000,
    ) -> None:
        self.clock = clock
        self.world = world
        self.plan = plan
        self.timing = timing or Timing()
        self.spi_bus, self.spi_device = spi_bus, spi_device
        self.reset_line, self.irq_line = reset_line, irq_line
        self.noise_floor_dbm = noise_floor_dbm
        self.lock = threading.RLock()
        self._cond = threading.Condition(self.lock)
        self._wake = threading.Event()
        self._rng = random.Random(seed)
        self._seq = itertools.count()
        self._heap: list[_Event] = []
        self._gen = 0
        self._now = clock.now()

        self.counters = ChipCounters()
        self.violations: list[Violation] = []
        self._violation_keys: set[tuple[str, str]] = set()
        self.spi_trace: deque[SpiRecord] = deque(maxlen=max(1, trace_limit))
        self._trace_on = trace_limit > 0
        self.tx_log: deque[TxRecord] = deque(maxlen=10_000)
        self.rx_log: deque[RxRecord] = deque(maxlen=10_000)
        self.rearm_latencies_s: deque[float] = deque(maxlen=1_000_000)
        self.rstn_pulses_s: list[float] = []

        self._reset_img = _reset_image(part_number, version_number)
        self._regs = bytearray(self._reset_img)
        self._irqs = [0, 0, 0, 0]
        self._state = TRXOFF
        self._rf24_state = TRXOFF
        self._pending: int | None = None
        self._sleeping = self._rf24_sleeping = self._deep_sleep = False
        self._resetting = False
        self._rstn_low = False
        self._rstn_fell_at = 0.0
        self._pll_on = False
        self._pll_lock_at = -math.inf
        self._rx_since: float | None = None
        self._rx_pending: _Event | None = None
        self._ed_ev: _Event | None = None
        self._tx_evs: list[_Event] = []
        self._buffer_unread = False
        self._rxfe_at: float | None = None
        self._auto_left_rx_at = -math.inf
        self._host_leave_at = -math.inf
        self._freq_hz = 0
        self._air_channel = NO_CHANNEL
        self._pin = False

        # faults
        self._stuck = False
        self._irq_stuck = False
        self._irq_stuck_until_reset = False
        self._miso_stuck: int | None = None
        self._miso_flip_rate = 0.0
        self._edv_invalid: int | None = 0  # reads left; None = until cleared
        self._overwrite_after: int | None = None
        self._lose_rxfe = 0
        self._tx_underrun = False
        self._txfl_overflow = False
        self._air_corruption_saved: float | None = None

        self.gpio = FakeGpioChip(self, gpio_chip, gpio_label)
        self.gpio.on_output(reset_line, self._rstn_changed, idle=True)
        chips = [self.gpio]
        for n, (path, label) in enumerate((extra_gpio_chips or {}).items()):
            chips.append(FakeGpioChip(self, path, label, num_lines=8, name=f"gpiochip{n + 1}"))
        self._spidev = make_spidev_module({(spi_bus, spi_device): self})
        self._gpiod = make_gpiod_module(chips)

        self._pump_thread: threading.Thread | None = None
        self._pump_stop = threading.Event()
        if world is not None:
            world.attach_display(self._on_air, channel=NO_CHANNEL)
        # Power-on: the chip has come out of reset with WAKEUP pending.
        self._finish_reset(count=False)

    # --- public: wiring and time ----------------------------------------------------------

    def modules(self) -> tuple[types.ModuleType, types.ModuleType]:
        """The ``(spidev, gpiod)`` module objects bound to this chip."""
        return self._spidev, self._gpiod

    def now(self) -> float:
        """The chip's time (never behind the last event it ran)."""
        return self._now

    def next_event_time(self) -> float:
        """When the chip or its world next has something to do (``inf`` if never)."""
        with self.lock:
            ev = self._head()
            return min(ev.t if ev else math.inf, self._world_next())

    def advance_to(self, t: float) -> None:
        """Run the chip's events and the world's, in time order, up to ``t``."""
        with self.lock:
            while True:
                ev = self._head()
                tc = ev.t if ev is not None else math.inf
                tw = self._world_next()
                if min(tc, tw) > t:
                    break
                if ev is not None and tc <= tw:
                    heapq.heappop(self._heap)
                    self._now = max(self._now, tc)
                    ev.fn()
                else:
                    assert self.world is not None
                    self._now = max(self._now, tw)
                    self.world.run_until(tw)
            self._now = max(self._now, t)
            if self.world is not None:
                self.world.run_until(self._now)

    run_until = advance_to

    def start_pump(self) -> None:
        """Start the "ihd-sim" thread: it advances the chip and its world on the clock
        (wall or scaled; not a ManualClock, which it would run forward without limit)."""
        with self.lock:
            if self._pump_thread is not None:
                return
            self._pump_stop.clear()
            self._pump_thread = threading.Thread(target=self._pump, name="ihd-sim", daemon=True)
            self._pump_thread.start()

    def stop_pump(self) -> None:
        thread = self._pump_thread
        if thread is None:
            return
        self._pump_stop.set()
        self._wake.set()
        thread.join(timeout=5)
        with self._cond:
            self._pump_thread = None
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the pump and leave the air."""
        self.stop_pump()
        if self.world is not None:
            with self.lock, contextlib.suppress(KeyError):
                self.world.air.detach(self.world.display)

    def _pump(self) -> None:
        while not self._pump_stop.is_set():
            with self.lock:
                self.advance_to(self.clock.now())
                nxt = min(self.next_event_time(), self.clock.now() + 1.0)
                self._wake.clear()
            self.clock.sleep_until(nxt, self._wake)

    # --- GpioHost (for the fake gpiod) ----------------------------------------------------

    def sync(self) -> None:
        with self.lock:
            self.advance_to(self.clock.now())

    def notify(self) -> None:
        self._cond.notify_all()

    def wait(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        if self._pump_thread is not None:
            deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
            with self._cond:
                self.advance_to(self.clock.now())
                while not ready():
                    if self._pump_thread is None:
                        break
                    if deadline is None:
                        self._cond.wait(0.5)
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return ready()
        # No pump: the waiter drives the simulation on the clock (a ManualClock jumps).
        with self.lock:
            self.advance_to(self.clock.now())
            if ready():
                return True
            deadline = math.inf if timeout is None else self.clock.now() + max(0.0, timeout)
        manual = self.clock if isinstance(self.clock, ManualClock) else None
        yielded = False
        while True:
            with self.lock:
                if ready():
                    return True
                nxt = min(self.next_event_time(), deadline)
                if nxt == math.inf:
                    return ready()
                self._wake.clear()
                if manual is not None and (yielded or nxt <= manual.now()):
                    # A ManualClock jumps at once and never sees _wake: look, jump and run
                    # under the lock, or an event another thread schedules in between (a
                    # frame a test injects) runs in one batch with everything up to the
                    # old deadline, before the waiter can react to the first one.
                    yielded = False
                    manual.set(nxt)
                    self.advance_to(self.clock.now())
                    if ready():
                        return True
                    if self.clock.now() >= deadline:
                        return False
                    continue
            if manual is not None:
                # Before moving simulated time forward, let the host's other threads act
                # at the present time: a thread woken by this one (a transmit that just
                # got its TXFE) would otherwise wait for CPython's switch interval (5 ms)
                # while this loop runs the clock ahead of it by hundreds of jumps.
                time.sleep(MANUAL_YIELD_S)
                yielded = True
                continue
            self.clock.sleep_until(nxt, self._wake)
            with self.lock:
                self.advance_to(self.clock.now())
                if ready():
                    return True
                if self.clock.now() >= deadline:
                    return False

    # --- public: observation --------------------------------------------------------------

    @property
    def state(self) -> int:
        """RF09 STATE as the chip is (ignores the STATE-stuck fault)."""
        return self._state

    @property
    def frequency_hz(self) -> int:
        """The frequency the CNM write last applied."""
        return self._freq_hz

    @property
    def air_channel(self) -> int | None:
        """The plan's channel the chip is tuned to, or None."""
        return None if self._air_channel == NO_CHANNEL else self._air_channel

    @property
    def irq_level(self) -> bool:
        """The IRQ pin's physical level."""
        return self._pin

    @property
    def in_reset(self) -> bool:
        return self._rstn_low or self._resetting

    def peek(self, address: int) -> int:
        """A register or buffer octet, without side effects (no clear-on-read)."""
        with self.lock:
            if address <= 3:
                return self._irqs[address]
            return self._regs[address & ADDR_MASK]

    def register_writes(self) -> list[tuple[int, int]]:
        """Every octet written over SPI as (address, value), in order (from ``spi_trace``)."""
        out: list[tuple[int, int]] = []
        for rec in self.spi_trace:
            if rec.write:
                out.extend(((rec.address + i) & ADDR_MASK, v) for i, v in enumerate(rec.data))
        return out

    def clear_trace(self) -> None:
        self.spi_trace.clear()

    # --- public: the air without a world --------------------------------------------------

    def inject_ppdu(
        self,
        ppdu: bytes,
        *,
        rssi_dbm: float = -60.0,
        at: float | None = None,
        channel: int | None = None,
        sender: str = "inject",
    ) -> float:
        """Put a PPDU on the antenna, starting at ``at`` (default: now) on ``channel``
        (default: the one the chip listens on when it ends). Returns when it ends."""
        with self.lock:
            start = self._now if at is None else max(at, self._now)
            end = start + len(ppdu) * 8 / self.plan.bitrate_bps

            def land() -> None:
                ch = self._air_channel if channel is None else channel
                if ch == self._air_channel and ch != NO_CHANNEL:
                    self._on_air(ppdu, AirRx(start, end, ch, rssi_dbm, sender, False))

            self._schedule_at(end, land, survive_reset=True)
            return end

    def inject_rx(
        self,
        psdu: bytes,
        *,
        fcs_len: int = 4,
        whitened: bool = True,
        corrupt_fcs: bool = False,
        rssi_dbm: float = -60.0,
        at: float | None = None,
        channel: int | None = None,
        preamble_octets: int = 4,
    ) -> float:
        """A PSDU (MPDU with its FCS) sent to the chip as an MR-FSK PPDU; see
        :meth:`inject_ppdu`. ``corrupt_fcs`` flips the last octet."""
        if corrupt_fcs and psdu:
            psdu = psdu[:-1] + bytes([psdu[-1] ^ 0xFF])
        ppdu = build_ppdu(psdu, fcs_len=fcs_len, whitened=whitened, preamble_octets=preamble_octets)
        return self.inject_ppdu(ppdu, rssi_dbm=rssi_dbm, at=at, channel=channel)

    def inject_stream(
        self,
        psdus: Iterable[bytes],
        *,
        start: float | None = None,
        gap_s: float = 0.0,
        fcs_len: int = 4,
        whitened: bool = True,
        rssi_dbm: float = -60.0,
    ) -> float:
        """Frames back to back on the chip's channel, each starting ``gap_s`` after the one
        before ends (``gap_s=0``: the channel's maximum rate). Returns when the last ends."""
        with self.lock:
            t = self._now if start is None else start
            end = t
            for p in psdus:
                ppdu = build_ppdu(p, fcs_len=fcs_len, whitened=whitened)
                end = self.inject_ppdu(ppdu, rssi_dbm=rssi_dbm, at=t)
                t = end + gap_s
            return end

    # --- public: faults -------------------------------------------------------------------

    def fault_overwrite_during_read(self, after: int = 4) -> None:
        """The next SPI read of the RX buffer sees a new frame overwrite it after ``after``
        octets: the rest of the read (and RXFL) belong to a different frame."""
        with self.lock:
            self._overwrite_after = max(0, after)

    def fault_lose_rxfe(self, count: int = 1) -> None:
        """The next ``count`` received frames fill the buffer and drop the chip to TXPREP,
        but RXFE is never raised."""
        with self.lock:
            self._lose_rxfe += count

    def fault_tx_underrun(self) -> None:
        """The next host TX goes out truncated and sets PS.TXUR (TXFE still comes)."""
        with self.lock:
            self._tx_underrun = True

    def fault_txfl_overflow(self) -> None:
        """The next CMD TX sees a frame length above 2047 (as if TXFL were corrupted): no
        frame goes out, PS.TXUR and TRXERR are raised, the chip stays in TXPREP."""
        with self.lock:
            self._txfl_overflow = True

    def fault_batlow(self) -> None:
        """Latch BATLOW in RF09 IRQS."""
        with self.lock:
            self._latch(_RF09, BATLOW)

    def fault_trxerr(self) -> None:
        """Latch TRXERR in RF09 IRQS; a reception or transmission in progress is aborted and
        the chip drops to TXPREP [assumed: what a PLL unlock does]."""
        with self.lock:
            self._latch(_RF09, TRXERR)
            if self._state in (RX, TX):
                self._abort_activity()
                self._state = TXPREP

    def fault_reset(self) -> None:
        """A spontaneous reset: registers revert, STATE goes 7 then TRXOFF, WAKEUP."""
        with self.lock:
            self._begin_reset()
            self._schedule(self.timing.reset_s, self._finish_reset)

    def fault_miso_stuck(self, value: int) -> None:
        """Every octet the host reads is ``value`` (0x00 or 0xFF: a dead MISO)."""
        with self.lock:
            self._miso_stuck = value & 0xFF

    def fault_miso_bit_flips(self, rate: float) -> None:
        """Each bit the host reads is flipped with probability ``rate``."""
        with self.lock:
            self._miso_flip_rate = rate

    def fault_state_stuck(self) -> None:
        """STATE reads 6 and the state machine hangs (no transitions, no RX) until a reset
        (RSTN or RF_RST)."""
        with self.lock:
            self._stuck = True
            self._abort_activity()

    def fault_irq_stuck_high(self, *, until_reset: bool = False) -> None:
        """The IRQ pin stays physically high whatever IRQS says; with ``until_reset`` a
        reset clears it, else only :meth:`clear_faults` does."""
        with self.lock:
            self._irq_stuck = True
            self._irq_stuck_until_reset = until_reset
            self._update_pin()

    def fault_edv_invalid(self, reads: int | None = None) -> None:
        """EDV and RSSI read 127 (invalid) for the next ``reads`` reads (None: until
        cleared)."""
        with self.lock:
            self._edv_invalid = reads

    def fault_air_bit_errors(self, probability: float) -> None:
        """Bit errors on the air: the world's ``air.corruption`` (1..3 bits per frame)."""
        if self.world is None:
            raise ValueError("bit errors on air need a world")
        with self.lock:
            if self._air_corruption_saved is None:
                self._air_corruption_saved = self.world.air.corruption
            self.world.air.corruption = probability

    def clear_faults(self) -> None:
        with self.lock:
            self._stuck = False
            self._irq_stuck = False
            self._miso_stuck = None
            self._miso_flip_rate = 0.0
            self._edv_invalid = 0
            self._overwrite_after = None
            self._lose_rxfe = 0
            self._tx_underrun = self._txfl_overflow = False
            if self.world is not None and self._air_corruption_saved is not None:
                self.world.air.corruption = self._air_corruption_saved
                self._air_corruption_saved = None
            self._update_pin()

    # --- SPI (SpiTarget for the fake spidev) ----------------------------------------------

    def spi_transfer(
        self,
        data: list[int],
        *,
        speed_hz: int,
        mode: int,
        bits_per_word: int,
        lsbfirst: bool,
    ) -> list[int]:
        with self.lock:
            duration = len(data) * 8 / speed_hz
            if isinstance(self.clock, ManualClock):
                self.clock.advance(duration)  # simulated time: the transfer takes its time
                self.advance_to(self.clock.now())
            else:
                self.advance_to(max(self._now, self.clock.now()) + duration)
            if speed_hz > MAX_SPI_HZ:
                self._violation("spi_speed", f"SPI clock {speed_hz} Hz above {MAX_SPI_HZ}")
            if mode != 0 or bits_per_word != 8 or lsbfirst:
                detail = f"mode {mode}, {bits_per_word} bits, lsbfirst={lsbfirst}"
                self._violation("spi_mode", detail + ": the chip needs mode 0, 8 bits, MSB first")
                out = [0xFF] * len(data)
            else:
                out = self._transaction(data)
            return self._miso(out)

    def _transaction(self, data: list[int]) -> list[int]:
        n = len(data)
        if n < 2 or self._rstn_low:
            return [0] * n
        cmd = data[0] << 8 | data[1]
        kind, addr = cmd >> 14, cmd & ADDR_MASK
        if kind == 0b10:
            for i, v in enumerate(data[2:]):
                self._write((addr + i) & ADDR_MASK, v)
            self._trace(True, addr, bytes(data[2:]))
            return [0] * n
        if kind != 0b00:
            self._violation("spi_command", f"command word 0x{cmd:04X}: mode bits {kind:02b}")
            return [0] * n
        out = [0, 0]
        buf_reads = 0
        for i in range(n - 2):
            a = (addr + i) & ADDR_MASK
            if RX_BUF <= a < RX_BUF + BUF_LEN:
                if self._overwrite_after is not None and buf_reads == self._overwrite_after:
                    self._overwrite_now()
                buf_reads += 1
                self._buffer_unread = False
            out.append(self._read(a))
        self._trace(False, addr, bytes(out[2:]))
        return out

    def _miso(self, out: list[int]) -> list[int]:
        if self._miso_stuck is not None:
            return [self._miso_stuck] * len(out)
        rate = self._miso_flip_rate
        if rate > 0:
            rnd = self._rng.random
            out = [v ^ sum(1 << b for b in range(8) if rnd() < rate) for v in out]
        return out

    def _trace(self, write: bool, addr: int, data: bytes) -> None:
        if self._trace_on:
            self.spi_trace.append(SpiRecord(self._now, write, addr, data))

    def _violation(self, kind: str, detail: str) -> None:
        if kind.startswith("spi_"):
            if (kind, detail) in self._violation_keys:
                return
            self._violation_keys.add((kind, detail))
        self.violations.append(Violation(self._now, kind, detail))

    def _read(self, a: int) -> int:
        if a <= 3:
            v = self._irqs[a]
            if v:
                self._irqs[a] = 0
                self._update_pin()
            return v
        if a == RF09_STATE:
            return TRANSITION if self._stuck else self._state
        if a == RF24_STATE:
            return self._rf24_state
        if a == RF09_RSSI:
            if self._edv_fault():
                return 127
            if self._state == RX and not self.in_reset and not self._stuck:
                return _dbm_byte(self._energy_dbm())
            return 127
        if a == RF09_EDV:
            return 127 if self._edv_fault() else self._regs[a]
        if a in (RF09_RNDV, RF09_RNDV + 0x100):
            return self._rng.randrange(256)
        if a == RF09_PLL:
            locked = self._pll_on and self._now >= self._pll_lock_at and not self._stuck
            return (self._regs[a] & ~PLL_LS) | (PLL_LS if locked else 0)
        return self._regs[a]

    def _edv_fault(self) -> bool:
        if self._edv_invalid is None:
            return True
        if self._edv_invalid > 0:
            self._edv_invalid -= 1
            return True
        return False

    def _write(self, a: int, v: int) -> None:
        if a == RF_RST:
            if v == 0x07:
                self._host_leave_at = self._now
                self._begin_reset()
                self._schedule(self.timing.reset_s, self._finish_reset)
            return
        mask = _WMASK[a]
        if not mask:
            return
        if a in _CHANNEL_REGS and (self._stuck or self._state not in (TRXOFF, TXPREP)):
            state = "TRANSITION" if self._stuck else _STATE_NAMES.get(self._state, "?")
            self._violation("channel_write", f"0x{a:03X}<-0x{v:02X} in {state}")
        if a == BBC0_TXFLH and v & ~0x07:
            self._violation("txflh_reserved", f"TXFLH<-0x{v:02X}: a length above 2047")
        self._regs[a] = (self._regs[a] & ~mask) | (v & mask)
        if a in _IRQM or a == RF_CFG:
            self._update_pin()
        elif a == RF09_CMD:
            self._command(v & 0x07)
        elif a == RF24_CMD:
            self._rf24_command(v & 0x07)
        elif a == RF09_CNM:
            self._apply_channel()
        elif a == RF09_EDC:
            self._edc_written()

    def _overwrite_now(self) -> None:
        """Fault: a new (garbage) frame lands in the RX buffer while the host reads it."""
        self._overwrite_after = None
        n = self._rng.randint(10, 60)
        self._regs[RX_BUF : RX_BUF + n] = self._rng.randbytes(n)
        self._regs[BBC0_RXFLL], self._regs[BBC0_RXFLH] = n & 0xFF, n >> 8
        self._regs[BBC0_PC] &= ~PC_FCSOK
        self.counters.lost_overwritten += 1

    # --- events ---------------------------------------------------------------------------

    def _schedule(self, delay: float, fn: Callable[[], None]) -> _Event:
        return self._schedule_at(self._now + max(0.0, delay), fn)

    def _schedule_at(
        self, t: float, fn: Callable[[], None], *, survive_reset: bool = False
    ) -> _Event:
        ev = _Event(max(t, self._now), next(self._seq), fn, None if survive_reset else self._gen)
        heapq.heappush(self._heap, ev)
        self._wake.set()
        return ev

    def _head(self) -> _Event | None:
        heap = self._heap
        while heap and (
            heap[0].cancelled or (heap[0].gen is not None and heap[0].gen != self._gen)
        ):
            heapq.heappop(heap)
        return heap[0] if heap else None

    def _world_next(self) -> float:
        if self.world is None:
            return math.inf
        try:
            return self.world.next_event_time()
        except ValueError:  # no meters and nothing on the air
            return math.inf

    # --- IRQs -----------------------------------------------------------------------------

    def _latch(self, src: int, bits: int) -> None:
        if not self._regs[RF_CFG] & CFG_IRQMM:
            bits &= self._regs[_IRQM[src]]
        if bits:
            self._irqs[src] |= bits
            self._update_pin()

    def _update_pin(self) -> None:
        active = any(self._irqs[i] & self._regs[_IRQM[i]] for i in range(4))
        level = True if self._irq_stuck else active != bool(self._regs[RF_CFG] & CFG_IRQP)
        if level != self._pin:
            self._pin = level
            if level != bool(self._regs[RF_CFG] & CFG_IRQP):
                self.counters.irq_assertions += 1
            self.gpio.drive_input(self.irq_line, level, self._now)

    # --- reset ----------------------------------------------------------------------------

    def _rstn_changed(self, level: bool) -> None:
        if not level:
            self._rstn_low = True
            self._rstn_fell_at = self._now
            self._host_leave_at = self._now
            self._begin_reset()
        elif self._rstn_low:
            self._rstn_low = False
            self.rstn_pulses_s.append(self._now - self._rstn_fell_at)
            self._schedule(self.timing.reset_s, self._finish_reset)

    def _begin_reset(self) -> None:
        """Registers revert; the chip is busy resetting (STATE 7) until _finish_reset."""
        self._gen += 1  # cancels every pending chip event
        self._regs[:] = self._reset_img
        self._irqs = [0, 0, 0, 0]
        self._state = self._rf24_state = RESET
        self._resetting = True
        self._pending = None
        self._sleeping = self._rf24_sleeping = self._deep_sleep = False
        self._pll_on = False
        self._pll_lock_at = -math.inf
        self._rx_since = None
        if self._rx_pending is not None:
            self.counters.lost_aborted += 1
        self._rx_pending = self._ed_ev = None
        self._tx_evs = []
        self._buffer_unread = False
        self._rxfe_at = None
        self._stuck = False
        if self._irq_stuck_until_reset:
            self._irq_stuck = False
        self._freq_hz = 0
        self._retune(NO_CHANNEL)
        self._update_pin()

    def _finish_reset(self, count: bool = True) -> None:
        self._resetting = False
        self._state = self._rf24_state = TRXOFF
        if count:
            self.counters.resets += 1
        self._latch(_RF09, WAKEUP)
        self._latch(_RF24, WAKEUP)

    # --- the state machine (RF09) ---------------------------------------------------------

    def _command(self, cmd: int) -> None:
        if cmd == NOP:
            return
        if self._stuck or self._resetting or self._rstn_low or self._state == TX:
            self.counters.cmd_ignored += 1
            return
        if self._state == TRANSITION:
            self._pending = cmd  # the chip queues one command
            return
        st = self._state
        if self._sleeping:
            if cmd == TRXOFF:
                self._host_leave_at = self._now
                self._wake_from_sleep()
            else:
                self.counters.cmd_ignored += 1
            return
        t = self.timing
        if cmd == SLEEP:
            if st != TRXOFF:
                self.counters.cmd_ignored += 1
                return
            self._host_leave_at = self._now
            self._state = RESET  # STATE 7 = SLEEP
            self._sleeping = True
            self._pll_on = False
            self._deep_sleep = self._rf24_sleeping
        elif cmd == TRXOFF:
            self._host_leave_at = self._now
            if st != TRXOFF:
                self._transition(TRXOFF, t.to_trxoff_s)
        elif cmd == TXPREP:
            self._host_leave_at = self._now
            if st == TRXOFF:
                self._transition(TXPREP, t.trxoff_to_txprep_s, trxrdy=True)
            elif st == RX:
                self._transition(TXPREP, t.rx_to_txprep_s, trxrdy=True)
        elif cmd == TX:
            if st != TXPREP:
                name = _STATE_NAMES.get(st, "?")
                self._violation("tx_command", f"CMD TX in {name}: TX only starts from TXPREP")
                self.counters.cmd_ignored += 1
                return
            self._host_leave_at = self._now
            self._start_tx()
        elif cmd == RX:
            if self._rxfe_at is not None and st != RX:
                self.rearm_latencies_s.append(self._now - self._rxfe_at)
                self._rxfe_at = None
            if st == TRXOFF:
                self._transition(RX, t.trxoff_to_txprep_s + t.txprep_to_rx_s, trxrdy=True)
            elif st == TXPREP:
                self._transition(RX, max(t.txprep_to_rx_s, self._pll_lock_at - self._now))
        elif cmd == RESET:
            self._host_leave_at = self._now
            self._core_reset()
        else:
            self.counters.cmd_ignored += 1

    def _transition(self, target: int, delay: float, *, trxrdy: bool = False) -> None:
        if self._state == RX:
            self._leave_rx()
        self._state = TRANSITION
        self._schedule(delay, lambda: self._arrive(target, trxrdy))

    def _arrive(self, target: int, trxrdy: bool) -> None:
        if self._stuck:
            return
        self._state = target
        if target == TRXOFF:
            self._pll_on = False
        elif not self._pll_on:
            self._pll_on = True
            self._pll_lock_at = min(self._pll_lock_at, self._now)
        if target == RX:
            self._enter_rx()
        if trxrdy:
            self._latch(_RF09, TRXRDY)
        pending, self._pending = self._pending, None
        if pending is not None:
            self._command(pending)

    def _enter_rx(self) -> None:
        self._rx_since = self._now
        if self._regs[RF09_EDC] & 3 == 2:
            self._start_ed()

    def _leave_rx(self) -> None:
        """Leave RX (host or chip): a frame being finished is lost, ED stops."""
        self._rx_since = None
        if self._rx_pending is not None:
            self._rx_pending.cancelled = True
            self._rx_pending = None
            self.counters.lost_aborted += 1
        if self._ed_ev is not None:
            self._ed_ev.cancelled = True
            self._ed_ev = None

    def _abort_activity(self) -> None:
        if self._state == RX:
            self._leave_rx()
        for ev in self._tx_evs:
            ev.cancelled = True
        self._tx_evs = []

    def _wake_from_sleep(self) -> None:
        self._sleeping = False
        if self._deep_sleep:
            self._begin_reset()  # registers are lost in DEEP_SLEEP (1.4 [mem])
            self._schedule(self.timing.deep_sleep_to_trxoff_s, self._finish_reset)
            return
        self._state = TRANSITION
        self._schedule(self.timing.sleep_to_trxoff_s, lambda: self._arrive(TRXOFF, False))

    def _core_reset(self) -> None:
        """CMD RESET: RF09 and BBC0 registers revert, TRXOFF, WAKEUP [assumed]."""
        self._abort_activity()
        for lo, hi in ((0x100, 0x200), (0x300, 0x400)):
            self._regs[lo:hi] = self._reset_img[lo:hi]
        self._irqs[_RF09] = self._irqs[_BBC0] = 0
        self._pll_on = False
        self._apply_channel()
        self._update_pin()
        self._state = TRANSITION
        self._pending = None

        def done() -> None:
            self._arrive(TRXOFF, False)
            self._latch(_RF09, WAKEUP)

        self._schedule(self.timing.to_trxoff_s, done)

    def _rf24_command(self, cmd: int) -> None:
        """The 2.4 GHz core only sleeps and wakes here (there is no 2.4 GHz air)."""
        if self._resetting or self._rstn_low or cmd == NOP:
            return
        if cmd == SLEEP and self._rf24_state == TRXOFF:
            self._rf24_state = RESET
            self._rf24_sleeping = True
            self._deep_sleep = self._sleeping
        elif cmd == TRXOFF:
            if self._rf24_sleeping and self._deep_sleep:
                self._wake_from_sleep()
                return
            self._rf24_sleeping = False
            self._rf24_state = TRXOFF
        elif cmd in (TXPREP, RX) and not self._rf24_sleeping:
            self._rf24_state = cmd
            if cmd == TXPREP:
                self._latch(_RF24, TRXRDY)
        elif cmd == RESET:
            self._regs[0x200:0x300] = self._reset_img[0x200:0x300]
            self._rf24_sleeping = False
            self._rf24_state = TRXOFF
            self._latch(_RF24, WAKEUP)

    # --- channel --------------------------------------------------------------------------

    def _apply_channel(self) -> None:
        r = self._regs
        ccf0 = r[RF09_CCF0L] | r[RF09_CCF0H] << 8
        cn = r[RF09_CNL] | (r[RF09_CNM] & 1) << 8
        cm = r[RF09_CNM] >> 6
        self._freq_hz = (ccf0 + cn * r[RF09_CS]) * 25_000 if cm == 0 else 0
        plan = self.plan
        d = self._freq_hz - plan.chan_center_freq0_hz
        ch = d // plan.channel_spacing_hz
        on_plan = d % plan.channel_spacing_hz == 0 and 0 <= ch < plan.n_channels
        self._retune(ch if on_plan else NO_CHANNEL)
        if self._state == TXPREP and self._pll_on:
            self._pll_lock_at = self._now + self.timing.channel_switch_s
        elif self._state == RX:
            self._rx_since = self._now  # retuned: listening starts again

    def _retune(self, ch: int) -> None:
        self._air_channel = ch
        if self.world is not None:
            with contextlib.suppress(KeyError):  # detached (closed)
                self.world.air.tune(self.world.display, ch)

    # --- energy detection -----------------------------------------------------------------

    def _energy_dbm(self) -> float:
        w = self.world
        if w is None or self._air_channel == NO_CHANNEL:
            return self.noise_floor_dbm
        return w.air.energy_dbm(self._now, w.display, self._air_channel)

    def _edc_written(self) -> None:
        if self._ed_ev is not None:
            self._ed_ev.cancelled = True
            self._ed_ev = None
        if self._regs[RF09_EDC] & 3 in (1, 2) and self._state == RX and not self._stuck:
            self._start_ed()

    def _start_ed(self) -> None:
        edd = self._regs[RF09_EDD]
        dur = (edd >> 2) * _EDD_DTB_US[edd & 3] * 1e-6 or self.timing.ed_default_s
        self._ed_ev = self._schedule(dur, self._ed_done)

    def _ed_done(self) -> None:
        self._ed_ev = None
        if self._state != RX:
            return
        edv = _dbm_byte(self._energy_dbm())
        self._regs[RF09_EDV] = edv
        busy = _s8(edv) >= _s8(self._regs[BBC0_AMEDT])
        self._regs[BBC0_AMCS] = (self._regs[BBC0_AMCS] & ~AMCS_CCAED) | (AMCS_CCAED if busy else 0)
        self._latch(_RF09, EDC)
        edm = self._regs[RF09_EDC] & 3
        if edm == 1 and self._regs[BBC0_AMCS] & AMCS_CCATX and not busy:
            self._host_leave_at = self._now
            self._start_tx()
        elif edm == 2:
            self._start_ed()

    # --- TX -------------------------------------------------------------------------------

    def _start_tx(self) -> None:
        r = self._regs
        if self._txfl_overflow:
            self._txfl_overflow = False
            r[BBC0_PS] |= PS_TXUR
            self._latch(_RF09, TRXERR)
            return
        pc = r[BBC0_PC]
        fcs_len = 2 if pc & PC_FCST else 4
        txfl = r[BBC0_TXFLL] | (r[BBC0_TXFLH] & 7) << 8
        if pc & PC_TXAFCS:
            if txfl < fcs_len:
                self._violation("tx_length", f"TXFL {txfl} shorter than the {fcs_len}-octet FCS")
            body = bytes(r[TX_BUF : TX_BUF + max(0, txfl - fcs_len)])
            psdu = body + compute_fcs(body, fcs_len)
        else:
            psdu = bytes(r[TX_BUF : TX_BUF + txfl])
        if pc & PC_PT != 1 or not pc & PC_BBEN:
            self._violation("tx_baseband", f"TX with PC=0x{pc:02X} (needs MR-FSK, BBEN)")
        r[BBC0_PS] &= ~PS_TXUR
        if self._state == RX:
            self._leave_rx()
        self._state = TX
        at = max(self._now + self.timing.tx_start_s, self._pll_lock_at)
        self._tx_evs = [self._schedule_at(at, lambda: self._tx_air(psdu, fcs_len, ack=False))]

    def _tx_air(self, psdu: bytes, fcs_len: int, *, ack: bool) -> None:
        r = self._regs
        underrun = not ack and self._tx_underrun
        if underrun:
            self._tx_underrun = False
        phr = r[BBC0_FSKPHRTX]
        preamble = max(4, min(1000, r[BBC0_FSKPLL] | (r[BBC0_FSKC1] >> 6) << 8))
        fec: FecScheme | None = None
        if phr & PHR_SFD:
            fec = "rsc" if r[BBC0_FSKC2] & 0x02 else "nrnsc"  # FSKC2.FECS [assumed 1 = RSC]
        ppdu = build_ppdu(
            psdu,
            fcs_len=fcs_len,
            whitened=bool(phr & PHR_DW),
            preamble_octets=preamble,
            fec=fec,
        )
        if underrun:
            ppdu = ppdu[: len(ppdu) - max(1, len(psdu) // 2)]
            r[BBC0_PS] |= PS_TXUR
        start, end = self._air_send(ppdu)
        self.tx_log.append(
            TxRecord(start, end, psdu, ppdu, fcs_len, bool(phr & PHR_DW), ack, underrun)
        )
        if ack:
            self.counters.acks_sent += 1
        else:
            self.counters.tx_frames += 1
        self._tx_evs = [self._schedule_at(end, self._tx_done)]

    def _air_send(self, ppdu: bytes) -> tuple[float, float]:
        w = self.world
        if w is None:
            return self._now, self._now + len(ppdu) * 8 / self.plan.bitrate_bps
        end = w.transmit_from_display(ppdu, self._now)
        return end - w.air.airtime_s(len(ppdu)), end

    def _tx_done(self) -> None:
        self._tx_evs = []
        self._latch(_BBC0, TXFE)
        if self._regs[BBC0_AMCS] & AMCS_TX2RX:
            self._state = RX
            self._enter_rx()
        else:
            self._state = TXPREP

    # --- RX -------------------------------------------------------------------------------

    def _on_air(self, ppdu: bytes, rx: AirRx) -> None:
        with self.lock:
            self._now = max(self._now, rx.end)
            self.counters.heard += 1
            lost = self._deaf_reason(ppdu, rx)
            if lost is not None:
                setattr(self.counters, lost, getattr(self.counters, lost) + 1)
                return
            try:
                p = parse_ppdu(ppdu)
            except PhyError:
                self.counters.phy_errors += 1
                return
            self._receive(p.psdu, p.phr.fcs_len, p.phr.whitened, p.fec is not None, rx)

    def _deaf_reason(self, ppdu: bytes, rx: AirRx) -> str | None:
        if self._rstn_low or self._resetting or self._stuck or self._sleeping:
            return "lost_not_listening"
        if self._state == RX and self._rx_since is not None and self._rx_pending is None:
            n_pre = len(ppdu) - len(ppdu.lstrip(b"\x55"))
            slack = max(0, n_pre - 2) * 8 / self.plan.bitrate_bps  # 2 octets to sync [assumed]
            if self._rx_since <= rx.start + slack:
                if not self._regs[BBC0_PC] & PC_BBEN:
                    return "lost_not_listening"
                if not self._phy_ok():
                    return "lost_phy_config"
                return None
        if self._auto_left_rx_at > self._host_leave_at:
            return "lost_dead_time"
        return "lost_not_listening"

    def _phy_ok(self) -> bool:
        r = self._regs
        if r[BBC0_PC] & PC_PT != 1:
            return False
        c0 = r[BBC0_FSKC0]
        four = bool(c0 & 1)
        h = _MIDX[(c0 >> 1) & 7] * _MIDXS[(c0 >> 4) & 3]
        ksym = _SRATE_KSYM.get(r[BBC0_FSKC1] & 0x0F)
        if ksym is None:
            return False
        plan = self.plan
        return (
            ksym * 1000 * (2 if four else 1) == plan.bitrate_bps
            and (plan.modulation == "4-FSK") == four
            and abs(h - plan.modulation_index) < 1e-6
        )

    def _receive(self, psdu: bytes, fcs_len: int, whitened: bool, coded: bool, rx: AirRx) -> None:
        r = self._regs
        n = len(psdu)
        if self._buffer_unread:
            self.counters.lost_overwritten += 1
            self._buffer_unread = False
        r[RX_BUF : RX_BUF + n] = psdu
        r[BBC0_RXFLL], r[BBC0_RXFLH] = n & 0xFF, n >> 8
        r[BBC0_FBLL], r[BBC0_FBLH] = n & 0xFF, n >> 8
        r[BBC0_FSKPHRRX] = (
            (PHR_DW if whitened else 0)
            | (PHR_SFD if coded else 0)
            | (PHRRX_FCST if fcs_len == 2 else 0)
        )
        fcs_ok = check_fcs(psdu, fcs_len)
        r[BBC0_PC] = (r[BBC0_PC] & ~PC_FCSOK) | (PC_FCSOK if fcs_ok else 0)
        r[RF09_EDV] = _dbm_byte(rx.rssi_dbm)
        bits = RXFS | AGCH
        fbli = r[BBC0_FBLIL] | (r[BBC0_FBLIH] & 7) << 8
        if fbli <= n:
            bits |= FBLI
        self._latch(_BBC0, bits)
        if not fcs_ok and r[BBC0_PC] & PC_FCSFE:
            self._latch(_BBC0, AGCR)
            self.counters.fcs_dropped += 1
            return
        verdict = self._filter(psdu[: max(0, n - fcs_len)])
        if not verdict.accept:
            self._latch(_BBC0, AGCR)
            self.counters.filtered += 1
            return
        ack = verdict.ack and fcs_ok
        self._rx_pending = self._schedule(
            self.timing.rx_end_s, lambda: self._rx_end(psdu, fcs_len, fcs_ok, verdict, ack, rx)
        )

    def _rx_end(
        self, psdu: bytes, fcs_len: int, fcs_ok: bool, verdict: _Verdict, ack: bool, rx: AirRx
    ) -> None:
        self._rx_pending = None
        self._leave_rx()
        self._auto_left_rx_at = self._now
        if self._lose_rxfe > 0:
            self._lose_rxfe -= 1
            self.counters.lost_rxfe += 1
            bits = AGCR
        else:
            bits = RXFE | AGCR | (RXAM if verdict.matched else 0)
            self.counters.delivered += 1
            if not fcs_ok:
                self.counters.delivered_bad_fcs += 1
            self._buffer_unread = True
            self._rxfe_at = self._now
            self.rx_log.append(RxRecord(self._now, psdu, fcs_ok, rx.rssi_dbm, rx.sender))
        if ack:
            self._state = TX
            fc = 0x0002 | (0x10 if verdict.pending else 0) | verdict.version << 12
            mpdu = fc.to_bytes(2, "little") + bytes([verdict.seq])
            ack_psdu = mpdu + compute_fcs(mpdu, fcs_len)
            at = max(rx.end + TURNAROUND_S, self._now)
            self._tx_evs = [
                self._schedule_at(at, lambda: self._tx_air(ack_psdu, fcs_len, ack=True))
            ]
        else:
            self._state = TXPREP
        self._latch(_BBC0, bits)

    def _filter(self, mpdu: bytes) -> _Verdict:
        r = self._regs
        afc0 = r[BBC0_AFC0]
        enabled, promiscuous = afc0 & 0x0F, bool(afc0 & AFC0_PM)
        if not enabled and not promiscuous:
            return _Verdict(True, False)
        h = _parse_mhr(mpdu)
        if h is None or not (r[BBC0_AFFTM] >> h.ftype) & 1:
            return _Verdict(promiscuous, False)
        if h.ftype == 2:  # an ACK has no address: the frame type filter decides
            return _Verdict(True, False)
        for n in range(4):
            if enabled >> n & 1 and self._addr_match(h, n):
                broadcast = h.dst_mode == 2 and h.dst == b"\xff\xff"
                ack = bool(r[BBC0_AMCS] & AMCS_AACK) and h.ar and not broadcast
                ack = ack and h.seq is not None
                pending = bool(r[BBC0_AMAACKPD] >> n & 1)
                return _Verdict(True, True, ack, h.seq or 0, pending, h.version)
        return _Verdict(promiscuous, False)

    def _addr_match(self, h: _Mhr, n: int) -> bool:
        r = self._regs
        base = BBC0_MACPID0F0 + 4 * n
        if h.dst_pan is not None and h.dst_pan not in (0xFFFF, r[base] | r[base + 1] << 8):
            return False
        if h.dst_mode == 2:
            return h.dst in (b"\xff\xff", bytes(r[base + 2 : base + 4]))
        if h.dst_mode == 3:
            return h.dst == bytes(r[BBC0_MACEA0 : BBC0_MACEA0 + 8])
        return False
