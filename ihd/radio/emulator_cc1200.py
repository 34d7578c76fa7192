"""A small register-level model of the TI CC1200, behind fake ``spidev`` and ``gpiod`` modules.

Written from ../shared/hw/radio-chips.md section 3 (and the register numbers of TI's CC120x
header, which Contiki-NG ships), **not** from the driver: it must not import
``ihd.radio.cc1200`` (a test parses this file). The real driver runs unchanged against it:
``emu.spidev`` and ``emu.gpiod`` are module objects with the calls of py-spidev and of
libgpiod v2's Python binding.

What is modelled:

* SPI: the header byte (b7 read, b6 burst, b5:0 address); config registers 00..2E; the
  extended space through 2F (AF/6F/EF + an address byte); strobes 30..3D; the FIFO at 3F
  (write = TX FIFO, read = RX FIFO). Every header byte returns the status byte: b7
  CHIP_RDYn, b6:4 the state (0 IDLE, 1 RX, 2 TX, 3 FSTXON, 4 CAL, 5 SETTLING,
  6 RX_FIFO_ERR, 7 TX_FIFO_ERR). After SRES, CHIP_RDYn stays high for a few transactions.
  Burst bytes on a non-burst header, and strobes SFRX/SFTX outside IDLE or their error
  state, are recorded in ``errors`` (a driver test asserts there are none).
* PARTNUMBER (2F8F), PARTVERSION, NUM_RXBYTES/NUM_TXBYTES, RSSI1/RSSI0, MARCSTATE,
  LQI_VAL; writes to read-only status registers are ignored.
* The FIFOs (128 octets each). 802.15.4g mode (PKT_CFG2 b5): the PHR is the first 2 FIFO
  octets; with the CRC on (PKT_CFG1 CRC_CFG != 0) the chip checks the FCS, leaves it out of
  the RX FIFO and appends it on TX; with APPEND_STATUS (PKT_CFG1 b0) two status octets follow
  the packet (RSSI, CRC_OK << 7 | LQI). Whitening: with ``chip_whitening`` (the default) the
  chip de-whitens and whitens by the PHR's DW bit; without it, it does neither (and its CRC
  check then sees whitened octets): radio-chips.md leaves this open, the emulator does both.
* An RX FIFO overflow (a frame longer than the FIFO, or frames piling up unread) puts the
  chip in RX_FIFO_ERR until SFRX; so does reading an empty RX FIFO. TX underflow:
  TX_FIFO_ERR until SFTX. RXOFF_MODE/TXOFF_MODE (RFEND_CFG1/0 b5:4) pick the state after a
  packet. STX from RX or IDLE sends at once (no host-visible TX time: the frame is on the
  simulated air for its air time).
* GPIO0 (IOCFG0 = 6, PKT_SYNC_RXTX; b6 inverts): high from sync to the end of the packet,
  in RX and TX, as edges on the fake gpiod line.
* Channel: the FREQ registers, FREQ = f_kHz * 4096 / 625; EU mode #1 channel n is
  863.125 MHz + n * 200 kHz. Anything else hears nothing.
* Faults: :meth:`inject_rx_fifo_error` (RX_FIFO_ERR until SFRX), :meth:`inject_length_mismatch`
  (the next frame's FIFO content disagrees with its PHR length), ``miso_stuck`` (every byte
  read is that value), ``spi_fault`` (xfer2 raises OSError), ``never_ready`` (CHIP_RDYn
  stuck high).

Register reset values are from memory of the CC120x data sheet [mem]; the driver writes
every register it relies on.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from enum import Enum

from ihd.clock import Clock
from ihd.radio.emulator.fakes import FakeGpioChip, make_gpiod_module, make_spidev_module
from ihd.sim.air import AirRx
from ihd.sim.world import SimWorld
from ihd.smwap.fcs import check_fcs, compute_fcs
from ihd.smwap.phy import whiten

__all__ = ["CC1200Emulator", "EmulatedChipState", "register_name"]

FIFO_SIZE = 128

# --- the register map ------------------------------------------------------------------------
_BASE_NAMES = (
    "IOCFG3",
    "IOCFG2",
    "IOCFG1",
    "IOCFG0",
    "SYNC3",
    "SYNC2",
    "SYNC1",
    "SYNC0",
    "SYNC_CFG1",
    "SYNC_CFG0",
    "DEVIATION_M",
    "MODCFG_DEV_E",
    "DCFILT_CFG",
    "PREAMBLE_CFG1",
    "PREAMBLE_CFG0",
    "IQIC",
    "CHAN_BW",
    "MDMCFG1",
    "MDMCFG0",
    "SYMBOL_RATE2",
    "SYMBOL_RATE1",
    "SYMBOL_RATE0",
    "AGC_REF",
    "AGC_CS_THR",
    "AGC_GAIN_ADJUST",
    "AGC_CFG3",
    "AGC_CFG2",
    "AGC_CFG1",
    "AGC_CFG0",
    "FIFO_CFG",
    "DEV_ADDR",
    "SETTLING_CFG",
    "FS_CFG",
    "WOR_CFG1",
    "WOR_CFG0",
    "WOR_EVENT0_MSB",
    "WOR_EVENT0_LSB",
    "RXDCM_TIME",
    "PKT_CFG2",
    "PKT_CFG1",
    "PKT_CFG0",
    "RFEND_CFG1",
    "RFEND_CFG0",
    "PA_CFG1",
    "PA_CFG0",
    "ASK_CFG",
    "PKT_LEN",
)  # 0x00..0x2E in order
_EXT_CONFIG_NAMES = (
    "IF_MIX_CFG",
    "FREQOFF_CFG",
    "TOC_CFG",
    "MARC_SPARE",
    "ECG_CFG",
    "MDMCFG2",
    "EXT_CTRL",
    "RCCAL_FINE",
    "RCCAL_COARSE",
    "RCCAL_OFFSET",
    "FREQOFF1",
    "FREQOFF0",
    "FREQ2",
    "FREQ1",
    "FREQ0",
    "IF_ADC2",
    "IF_ADC1",
    "IF_ADC0",
    "FS_DIG1",
    "FS_DIG0",
    "FS_CAL3",
    "FS_CAL2",
    "FS_CAL1",
    "FS_CAL0",
    "FS_CHP",
    "FS_DIVTWO",
    "FS_DSM1",
    "FS_DSM0",
    "FS_DVC1",
    "FS_DVC0",
    "FS_LBI",
    "FS_PFD",
    "FS_PRE",
    "FS_REG_DIV_CML",
    "FS_SPARE",
    "FS_VCO4",
    "FS_VCO3",
    "FS_VCO2",
    "FS_VCO1",
    "FS_VCO0",
    "GBIAS6",
    "GBIAS5",
    "GBIAS4",
    "GBIAS3",
    "GBIAS2",
    "GBIAS1",
    "GBIAS0",
    "IFAMP",
    "LNA",
    "RXMIX",
    "XOSC5",
    "XOSC4",
    "XOSC3",
    "XOSC2",
    "XOSC1",
    "XOSC0",
    "ANALOG_SPARE",
    "PA_CFG3",
)  # 0x2F00..0x2F39 in order
_EXT_STATUS_NAMES = {
    0x71: "RSSI1",
    0x72: "RSSI0",
    0x73: "MARCSTATE",
    0x74: "LQI_VAL",
    0x8F: "PARTNUMBER",
    0x90: "PARTVERSION",
    0xD6: "NUM_TXBYTES",
    0xD7: "NUM_RXBYTES",
}
_EXT_STATUS_RANGES = ((0x64, 0xA2), (0xD2, 0xDA))  # read-only status and FIFO pointers

_ADDR: dict[str, int] = {n: a for a, n in enumerate(_BASE_NAMES)}
_ADDR.update({n: 0x2F00 | a for a, n in enumerate(_EXT_CONFIG_NAMES)})
_ADDR.update({n: 0x2F00 | a for a, n in _EXT_STATUS_NAMES.items()})
_NAME: dict[int, str] = {a: n for n, a in _ADDR.items()}

_STROBES = {
    0x30: "SRES",
    0x31: "SFSTXON",
    0x32: "SXOFF",
    0x33: "SCAL",
    0x34: "SRX",
    0x35: "STX",
    0x36: "SIDLE",
    0x37: "AFC",
    0x38: "SWOR",
    0x39: "SPWD",
    0x3A: "SFRX",
    0x3B: "SFTX",
    0x3C: "SWORRST",
    0x3D: "SNOP",
}

#: Reset values [mem]; registers not listed reset to 00.
_RESET = {
    "IOCFG3": 0x06,
    "IOCFG2": 0x07,
    "IOCFG1": 0x30,
    "IOCFG0": 0x3C,
    "SYNC3": 0x93,
    "SYNC2": 0x0B,
    "SYNC1": 0x51,
    "SYNC0": 0xDE,
    "SYNC_CFG1": 0xAA,
    "SYNC_CFG0": 0x03,
    "PREAMBLE_CFG1": 0x14,
    "PKT_CFG2": 0x04,
    "PKT_CFG1": 0x03,
    "PKT_CFG0": 0x00,
    "RFEND_CFG1": 0x0F,
    "RFEND_CFG0": 0x00,
    "PKT_LEN": 0x03,
    "SETTLING_CFG": 0x0B,
}


def register_name(addr: int) -> str:
    """``"PKT_CFG2"`` for 0x26, ``"PARTNUMBER"`` for 0x2F8F, hex for unnamed addresses."""
    return _NAME.get(addr, f"0x{addr:04X}")


class EmulatedChipState(Enum):
    IDLE = 0
    RX = 1
    TX = 2
    FSTXON = 3
    CALIBRATE = 4
    SETTLING = 5
    RX_FIFO_ERR = 6
    TX_FIFO_ERR = 7


_S = EmulatedChipState
#: MARCSTATE.MARC_STATE codes [mem]
_MARC = {
    _S.IDLE: 0x01,
    _S.RX: 0x0D,
    _S.TX: 0x13,
    _S.FSTXON: 0x12,
    _S.CALIBRATE: 0x05,
    _S.SETTLING: 0x0C,
    _S.RX_FIFO_ERR: 0x11,
    _S.TX_FIFO_ERR: 0x16,
}
_OFF_MODE = {0: _S.IDLE, 1: _S.FSTXON, 2: _S.TX, 3: _S.RX}  # RXOFF/TXOFF_MODE

_EU_F0_KHZ, _EU_SPACING_KHZ, _EU_CHANNELS = 863_125, 200, 34


# --- the fake gpiod module (libgpiod v2 Python binding) -------------------------------------
# --- the chip ----------------------------------------------------------------------------------
class CC1200Emulator:
    """One CC1200 on SPI bus ``spi_bus``.``spi_device``, its GPIO0 on line ``gpio0_line``
    of the GPIO chip ``gpio_chip`` (label ``gpio_label``), attached to ``world``'s air as
    the display (or standalone with ``world=None``: feed it with :meth:`receive_ppdu`).

    For tests: ``trace`` (every SPI operation), :meth:`register_writes`, :meth:`strobes`,
    ``errors`` (misuse), ``transmitted`` (PPDUs sent), ``counts`` (what became of frames).
    """

    def __init__(
        self,
        world: SimWorld | None = None,
        *,
        clock: Clock,
        partnumber: int = 0x20,
        partversion: int = 0x11,
        chip_whitening: bool = True,
        spi_bus: int = 0,
        spi_device: int = 0,
        gpio_chip: str = "/dev/gpiochip0",
        gpio_label: str = "pinctrl-bcm2711",
        gpio0_line: int = 25,
        ready_after: int = 2,
        lqi: int = 20,
    ) -> None:
        self.world = world
        self.clock = clock
        self.partnumber = partnumber
        self.partversion = partversion
        self.chip_whitening = chip_whitening
        self.spi_bus, self.spi_device = spi_bus, spi_device
        self.gpio_chip, self.gpio_label, self.gpio0_line = gpio_chip, gpio_label, gpio0_line
        self.ready_after = ready_after
        self.lqi = lqi & 0x7F
        # faults
        self.miso_stuck: int | None = None
        self.spi_fault = False
        self.never_ready = False
        self._mismatch = 0
        # state
        self.lock = threading.RLock()  # the chip and the world
        self._gpio_cond = threading.Condition(self.lock)
        self.regs: dict[int, int] = {}
        self.state = _S.IDLE
        self.rx_fifo = bytearray()
        self.tx_fifo = bytearray()
        self._not_ready = 0
        self._gpio0 = False
        self._seq = 0
        self.channel: int | None = None
        self.last_rssi = -128
        self.last_crc_lqi = 0
        self.trace: list[tuple[str, int, int]] = []
        self.errors: list[str] = []
        self.transmitted: list[bytes] = []
        self.counts: dict[str, int] = {}
        self._pump: threading.Thread | None = None
        self._pump_stop = threading.Event()
        self._wake = threading.Event()
        self._attached = False
        if world is not None:
            world.attach_display(self._on_air, channel=-1)  # FREQ decides; at reset: nowhere
            self._attached = True
        # The same fake spidev and gpiod (v2) modules as the AT86RF215 emulator's: this
        # object is their SPI target and GPIO host.
        self.gpio = FakeGpioChip(self, gpio_chip, gpio_label)
        self.spidev = make_spidev_module({(spi_bus, spi_device): self})
        self.gpiod = make_gpiod_module([self.gpio])
        self._reset()

    # --- observation -------------------------------------------------------------------
    def reg(self, name: str) -> int:
        return self.regs.get(_ADDR[name], 0)

    def register_writes(self, *, since_reset: bool = True) -> list[tuple[str, int]]:
        """Register writes in order as (name, value), from the last SRES by default."""
        ops = self.trace
        if since_reset:
            last = max((i for i, op in enumerate(ops) if op == ("strobe", 0x30, 0)), default=-1)
            ops = ops[last + 1 :]
        return [(register_name(a), v) for kind, a, v in ops if kind == "write"]

    def strobes(self) -> list[str]:
        return [_STROBES[a] for kind, a, _ in self.trace if kind == "strobe"]

    def status_byte(self) -> int:
        with self.lock:
            return self._status()

    # --- faults ----------------------------------------------------------------------------
    def inject_rx_fifo_error(self) -> None:
        """RX FIFO overflow: RX_FIFO_ERR until SFRX, and GPIO0 falls as at a packet's end."""
        with self.lock:
            self.state = _S.RX_FIFO_ERR
            self._count("rx_fifo_error_injected")
            self._gpio0_pulse()

    def inject_length_mismatch(self, delta: int = 3) -> None:
        """The next frame's RX FIFO holds ``delta`` octets more (garbage after it) or, if
        negative, fewer (its end is missing) than its PHR length accounts for."""
        with self.lock:
            self._mismatch = delta

    # --- the simulated world ----------------------------------------------------------------
    def run_until(self, t: float) -> None:
        if self.world is not None:
            with self.lock:
                self.world.run_until(t)

    def start(self) -> None:
        """Advance the world on the clock from a thread ("ihd-sim"), as the demo does."""
        if self._pump is not None or self.world is None:
            return
        self._pump_stop.clear()
        self._pump = threading.Thread(target=self._run, name="ihd-sim", daemon=True)
        self._pump.start()

    def stop(self) -> None:
        self._pump_stop.set()
        self._wake.set()
        if self._pump is not None:
            self._pump.join(timeout=5)
            self._pump = None

    def _run(self) -> None:
        assert self.world is not None
        self.run_until(self.clock.now())
        while not self._pump_stop.is_set():
            self._wake.clear()
            with self.lock:
                nxt = self.world.next_event_time()
            self.clock.sleep_until(nxt, self._wake)
            if self._pump_stop.is_set():
                return
            self.run_until(self.clock.now())

    # --- SPI --------------------------------------------------------------------------------
    def xfer(self, data: list[int]) -> list[int]:
        """One SPI transaction (CS low for all of ``data``); returns what MISO carried."""
        with self.lock:
            if self.spi_fault:
                raise OSError(errno.EIO, "Input/output error")
            if not data:
                return []
            out = self._transaction(data)
            if self._not_ready > 0:
                self._not_ready -= 1
            if self.miso_stuck is not None:
                return [self.miso_stuck] * len(data)
            return out

    def _status(self) -> int:
        rdy = 0x80 if (self._not_ready > 0 or self.never_ready) else 0
        return rdy | self.state.value << 4

    def _transaction(self, data: list[int]) -> list[int]:
        hdr = data[0]
        read, burst, addr = bool(hdr & 0x80), bool(hdr & 0x40), hdr & 0x3F
        out = [self._status()]
        if 0x30 <= addr <= 0x3D:
            if len(data) > 1:
                self.errors.append(f"strobe {_STROBES[addr]} with {len(data) - 1} extra bytes")
            self.trace.append(("strobe", addr, 0))
            self._strobe(addr)
            return out + [self._status()] * (len(data) - 1)
        if addr == 0x3F:
            for b in data[1:]:
                out.append(self._fifo_read() if read else self._fifo_write(b))
            return out
        if addr == 0x3E:
            self.errors.append("direct FIFO access (3E) is not modelled")
            return out + [0] * (len(data) - 1)
        if addr == 0x2F:
            if len(data) < 2:
                self.errors.append("extended access without an address byte")
                return out
            out.append(self._status())
            base, payload = 0x2F00 | data[1], data[2:]
        else:
            base, payload = addr, data[1:]
        if len(payload) > 1 and not burst:
            self.errors.append(f"{len(payload)} data bytes without the burst bit at {base:#x}")
        for i, b in enumerate(payload):
            a = base + i if burst else base
            if read:
                out.append(self._read_reg(a))
            else:
                out.append(self._status())
                self._write_reg(a, b)
        return out

    def _read_reg(self, a: int) -> int:
        self.trace.append(("read", a, 0))
        name = _NAME.get(a)
        if name == "PARTNUMBER":
            return self.partnumber
        if name == "PARTVERSION":
            return self.partversion
        if name == "NUM_RXBYTES":
            return len(self.rx_fifo)
        if name == "NUM_TXBYTES":
            return len(self.tx_fifo)
        if name == "MARCSTATE":
            return _MARC[self.state]
        if name == "RSSI1":
            if self.state is _S.RX:
                self.last_rssi = self._rssi_now()
            return self.last_rssi & 0xFF
        if name == "RSSI0":
            return 0x01 if self.state is _S.RX else 0x00  # RSSI_VALID
        if name == "LQI_VAL":
            return self.last_crc_lqi
        return self.regs.get(a, 0)

    def _write_reg(self, a: int, v: int) -> None:
        ext = a & 0xFF
        if a >= 0x2F00 and any(lo <= ext <= hi for lo, hi in _EXT_STATUS_RANGES):
            return  # read-only
        if a not in _NAME:
            self.errors.append(f"write to unknown register 0x{a:04X}")
        self.trace.append(("write", a, v & 0xFF))
        self.regs[a] = v & 0xFF
        if _NAME.get(a) in ("FREQ2", "FREQ1", "FREQ0"):
            self._retune()

    def _reset(self) -> None:
        self.regs = {_ADDR[n]: v for n, v in _RESET.items()}
        self.rx_fifo.clear()
        self.tx_fifo.clear()
        self.state = _S.IDLE
        self._not_ready = self.ready_after
        self._set_gpio0(False)
        self._retune()

    def _strobe(self, s: int) -> None:
        st = self.state
        name = _STROBES[s]
        if name == "SRES":
            self._reset()
        elif name == "SFSTXON" and st is _S.IDLE:
            self.state = _S.FSTXON
        elif name == "SRX" and st in (_S.IDLE, _S.FSTXON, _S.TX, _S.RX):
            self.state = _S.RX
        elif name == "STX" and st in (_S.IDLE, _S.FSTXON, _S.RX):
            self._transmit()
        elif name in ("SIDLE", "SPWD", "SXOFF") and st not in (_S.RX_FIFO_ERR, _S.TX_FIFO_ERR):
            self.state = _S.IDLE
            self._set_gpio0(False)
        elif name == "SFRX":
            if st in (_S.IDLE, _S.RX_FIFO_ERR):
                self.rx_fifo.clear()
                self.state = _S.IDLE
            else:
                self.errors.append(f"SFRX in {st.name} (only IDLE or RX_FIFO_ERR)")
        elif name == "SFTX":
            if st in (_S.IDLE, _S.TX_FIFO_ERR):
                self.tx_fifo.clear()
                self.state = _S.IDLE
            else:
                self.errors.append(f"SFTX in {st.name} (only IDLE or TX_FIFO_ERR)")

    def _fifo_read(self) -> int:
        if not self.rx_fifo:
            self.state = _S.RX_FIFO_ERR  # underflow
            self._count("rx_underflow")
            return 0
        return self.rx_fifo.pop(0)

    def _fifo_write(self, b: int) -> int:
        status = self._status()
        if len(self.tx_fifo) >= FIFO_SIZE:
            self.state = _S.TX_FIFO_ERR
            self._count("tx_overflow")
        else:
            self.tx_fifo.append(b)
        return status

    # --- what the fake spidev and gpiod modules call ----------------------------------------
    def spi_transfer(
        self, data: list[int], *, speed_hz: int, mode: int, bits_per_word: int, lsbfirst: bool
    ) -> list[int]:
        if mode != 0 or lsbfirst or bits_per_word != 8:
            self.errors.append(f"SPI mode {mode}: the CC1200 needs mode 0, MSB first")
        out = self.xfer(data)
        with self.lock:  # IOCFG0 may have changed what GPIO0 shows
            self.gpio.drive_input(self.gpio0_line, self._gpio0_pin(), self.clock.now())
        return out

    def now(self) -> float:
        return self.clock.now()

    def sync(self) -> None:
        """Nothing to catch up: the world is advanced by ``run_until`` or the pump."""

    def notify(self) -> None:
        self._gpio_cond.notify_all()

    def wait(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        with self._gpio_cond:
            return bool(self._gpio_cond.wait_for(ready, timeout))

    # --- GPIO0 ----------------------------------------------------------------------------------
    def _gpio0_pin(self) -> bool:
        iocfg = self.reg("IOCFG0")
        if iocfg & 0x3F != 0x06:  # not PKT_SYNC_RXTX: a level we do not model
            return bool(iocfg & 0x40)
        return self._gpio0 != bool(iocfg & 0x40)

    def _set_gpio0(self, level: bool) -> None:
        with self.lock:
            self._gpio0 = level
            self.gpio.drive_input(self.gpio0_line, self._gpio0_pin(), self.clock.now())

    def _gpio0_pulse(self) -> None:
        self._set_gpio0(True)
        self._set_gpio0(False)

    # --- radio --------------------------------------------------------------------------------
    def _retune(self) -> None:
        word = self.reg("FREQ2") << 16 | self.reg("FREQ1") << 8 | self.reg("FREQ0")
        f_khz = word * 625 / 4096
        n = round((f_khz - _EU_F0_KHZ) / _EU_SPACING_KHZ)
        ok = 0 <= n < _EU_CHANNELS and abs(f_khz - (_EU_F0_KHZ + n * _EU_SPACING_KHZ)) < 1.0
        self.channel = n if ok else None
        if self.world is not None and self._attached:
            self.world.air.tune(self.world.display, n if ok else -1)

    def _rssi_now(self) -> int:
        if self.world is None:
            return -110
        now = max(self.clock.now(), self.world.now)
        dbm = self.world.air.energy_dbm(now, self.world.display)
        return max(-128, min(127, round(dbm)))

    def _syncs(self) -> set[int]:
        syncs = {self.reg("SYNC1") << 8 | self.reg("SYNC0")}
        if self.reg("SYNC_CFG1") >> 5 == 7:  # 16-bit dual sync: SYNC3:SYNC2 as well
            syncs.add(self.reg("SYNC3") << 8 | self.reg("SYNC2"))
        return syncs

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _on_air(self, ppdu: bytes, rx: AirRx) -> None:
        self.receive_ppdu(ppdu, rssi_dbm=rx.rssi_dbm)

    def receive_ppdu(self, ppdu: bytes, *, rssi_dbm: float = -60.0) -> str:
        """A PPDU (preamble, SFD, PHR, PSDU as sent) reaches the antenna. Returns what
        became of it (also counted in ``counts``)."""
        with self.lock:
            outcome = self._receive(ppdu, rssi_dbm)
            self._count(outcome)
            return outcome

    def _receive(self, ppdu: bytes, rssi_dbm: float) -> str:
        if self.state is not _S.RX:
            return "lost_not_in_rx"
        if not self.reg("PKT_CFG2") & 0x20:
            return "lost_not_802154g_mode"
        i = 0
        while i < len(ppdu) and ppdu[i] == 0x55:
            i += 1
        if len(ppdu) - i < 4:
            return "lost_truncated"
        if (ppdu[i] << 8 | ppdu[i + 1]) not in self._syncs():
            return "lost_no_sync"
        phr = ppdu[i + 2 : i + 4]
        length = (phr[0] & 0x07) << 8 | phr[1]
        fcs_len = 2 if phr[0] & 0x10 else 4
        body = ppdu[i + 4 : i + 4 + length]
        if len(body) < length:
            return "lost_truncated"
        self._set_gpio0(True)  # sync found
        if phr[0] & 0x08 and self.chip_whitening:
            body = whiten(body)
        pkt_cfg1 = self.reg("PKT_CFG1")
        crc_on = (pkt_cfg1 >> 1) & 0x03 != 0
        if crc_on:
            crc_ok = length >= fcs_len and check_fcs(body, fcs_len)
            data = body[:-fcs_len] if length >= fcs_len else b""
        else:
            crc_ok, data = False, body
        rssi = max(-128, min(127, round(rssi_dbm)))
        self.last_rssi = rssi
        self.last_crc_lqi = (0x80 if crc_ok else 0) | self.lqi
        packet = bytearray(phr + data)
        if pkt_cfg1 & 0x01:  # APPEND_STATUS
            packet += bytes([rssi & 0xFF, self.last_crc_lqi])
        if self._mismatch > 0:
            packet += bytes(range(0xA0, 0xA0 + self._mismatch))
        elif self._mismatch < 0:
            del packet[self._mismatch :]
        self._mismatch = 0
        room = FIFO_SIZE - len(self.rx_fifo)
        if len(packet) > room:
            self.rx_fifo += packet[:room]
            self.state = _S.RX_FIFO_ERR
            self._set_gpio0(False)
            return "rx_overflow"
        self.rx_fifo += packet
        self.state = _OFF_MODE[(self.reg("RFEND_CFG1") >> 4) & 3]
        if self.state is _S.TX:  # not modelled: stay in RX
            self.state = _S.RX
        self._set_gpio0(False)  # end of packet
        return "to_fifo" if crc_ok or not crc_on else "to_fifo_crc_error"

    def _transmit(self) -> None:
        fifo = self.tx_fifo
        if len(fifo) < 2:
            self.state = _S.TX_FIFO_ERR
            self._count("tx_underflow")
            return
        phr = bytes(fifo[:2])
        length = (phr[0] & 0x07) << 8 | phr[1]
        fcs_len = 2 if phr[0] & 0x10 else 4
        crc_on = (self.reg("PKT_CFG1") >> 1) & 0x03 != 0
        n = length - fcs_len if crc_on else length
        if n < 0 or len(fifo) - 2 < n:
            del fifo[:]
            self.state = _S.TX_FIFO_ERR
            self._count("tx_underflow")
            return
        payload = bytes(fifo[2 : 2 + n])
        del fifo[: 2 + n]
        psdu = payload + compute_fcs(payload, fcs_len) if crc_on else payload
        body = whiten(psdu) if phr[0] & 0x08 and self.chip_whitening else psdu
        sync = (self.reg("SYNC1") << 8 | self.reg("SYNC0")).to_bytes(2, "big")
        ppdu = b"\x55" * 4 + sync + phr + body
        self.transmitted.append(ppdu)
        self._count("tx_frames")
        self.state = _S.TX
        self._set_gpio0(True)
        if self.world is not None and self.channel is not None:
            self.world.transmit_from_display(ppdu, max(self.clock.now(), self.world.now))
            self._wake.set()
        self._set_gpio0(False)
        self.state = _OFF_MODE[(self.reg("RFEND_CFG0") >> 4) & 3]
        if self.state is _S.TX:
            self.state = _S.IDLE
