"""TI CC1200/CC1201 driver (experimental): SPI through spidev, GPIO0 through gpiod (v2).

Bring-up (../shared/hw/radio-chips.md section 3): SRES, wait for CHIP_RDYn, check PARTNUMBER
(0x20 CC1200, 0x21 CC1201), write the SmartRF settings Contiki-NG uses for 802.15.4g
863-870 MHz mode #1 (:data:`SMARTRF_MODE_1`), then what Contiki-NG's ``configure()`` adds
(:data:`DRIVER_SETTINGS`: RSSI offset, GPIO0 = PKT_SYNC_RXTX, stay in RX after RX and TX,
802.15.4g mode with CCA by the host, CRC and appended status), the channel (FREQ =
f_kHz * 4096 / 625), a read-back check, and RX. GPIO0 falls at the end of every packet;
the driver waits for that edge (no busy polling), reads NUM_RXBYTES, the 2-octet PHR
(:func:`ihd.smwap.phy.Phr.from_bytes`), the rest of the packet and the two appended status
octets (RSSI, CRC_OK | LQI).

**Limits** (this is the experimental radio; the AT86RF215 is the supported one):

* **No acknowledgements.** An Imm-Ack must start ~1 ms after the frame; Python over SPI
  cannot. The driver receives frames that ask for an ACK but does not answer them, so a
  meter pushing to us will retry (up to 3 times) and the layer above drops the repeats
  (``smwap.duplicate``); counted here as ``radio.ack_requests_unanswered``. Pairing, which
  needs the meter to hear our ACKs, will not work reliably.
* **Frames up to the FIFO.** The RX FIFO is 128 octets: PHR (2) + MPDU without FCS + 2
  status octets, so MPDUs over ~124 octets need FIFO refills on the GPIO2 threshold
  interrupt, which this driver does not do. Longer frames overflow the FIFO; that is
  recovered (SFRX, ``radio.rx_fifo_error``) and the frame is lost. TX refuses them.
* **The FCS octets are recomputed.** With the chip's CRC on (``fcs_check="chip"``, the
  default, as Contiki-NG does it) the chip checks the FCS and leaves it out of the FIFO;
  the driver appends the FCS computed over the received octets if CRC_OK was set and its
  complement if not, so the layer above agrees with the chip's verdict (``fcs_ok``).
  ``fcs_check="software"`` turns the chip's CRC off and checks the FCS here instead; that
  the FIFO then holds the FCS octets is unconfirmed.
* **Whitening is unconfirmed.** 802.15.4g asks for PN9 whitening by the PHR's DW bit; the
  SmartRF settings turn the chip's own whitening off, and whether the chip then follows DW
  in 802.15.4g mode is not known (radio-chips.md, open questions). ``dewhiten="chip"``
  (default) trusts the chip; ``dewhiten="software"`` de-whitens here with
  :func:`ihd.smwap.phy.whiten` (and needs ``fcs_check="software"``, since the chip's CRC
  would then run over whitened octets). Check with a real meter: ``radio.fcs_error`` on
  every whitened frame means the other setting.
* **No FEC** (the chip syncs on the uncoded SFD only), EU 863 MHz mode #1 channels only, no
  address filter (everything on the channel goes up), RSSI from the appended status with
  Contiki's offset (AGC_GAIN_ADJUST = -81), not calibrated; timestamps are host time when
  the frame was read.

Recovery (each logged with its reason and counted): RX FIFO error (``radio.rx_fifo_error``,
SFRX + SRX), TX FIFO error (``radio.tx_fifo_error``), NUM_RXBYTES disagreeing with the PHR
length (``radio.rx_length_mismatch``, flush and restart RX), a damaged PHR
(``radio.phy_error``), the chip found out of RX (``radio.rx_restarts``), bytes waiting with
no edge seen (``radio.missed_irq``), CHIP_RDYn high while running (``radio.not_ready``), and
SPI/GPIO errors (``radio.spi_errors``). The last two close the chip: ``receive`` raises
``RadioError`` once, then re-initialises it (``radio.reinit``; every
``reopen_interval_s`` while that fails).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal, NoReturn

from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.radio.contract import RadioError, RxFrame, RxInfo
from ihd.smwap.errors import PhyError
from ihd.smwap.fcs import check_fcs, compute_fcs
from ihd.smwap.phy import EU_863_MODE_1, Phr, airtime_s, whiten

__all__ = [
    "DRIVER_SETTINGS",
    "PARTNUMBERS",
    "PI_GPIO_LABELS",
    "REGISTERS",
    "SMARTRF_MODE_1",
    "CC1200Config",
    "CC1200Identity",
    "CC1200Radio",
    "ChipState",
    "find_gpio_chip",
    "freq_word",
    "hardware_modules",
    "probe_cc1200",
    "spi_bus_device",
]

log = logging.getLogger("ihd.radio.cc1200")

# --- the register map (TI CC120x; radio-chips.md section 3) ---------------------------------
_BASE = (
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
)
REGISTERS: dict[str, int] = {name: addr for addr, name in enumerate(_BASE)}
REGISTERS.update(
    IF_MIX_CFG=0x2F00,
    TOC_CFG=0x2F02,
    MDMCFG2=0x2F05,
    FREQ2=0x2F0C,
    FREQ1=0x2F0D,
    FREQ0=0x2F0E,
    IF_ADC1=0x2F10,
    IF_ADC0=0x2F11,
    FS_DIG1=0x2F12,
    FS_DIG0=0x2F13,
    FS_CAL1=0x2F16,
    FS_CAL0=0x2F17,
    FS_DIVTWO=0x2F19,
    FS_DSM0=0x2F1B,
    FS_DVC1=0x2F1C,
    FS_DVC0=0x2F1D,
    FS_PFD=0x2F1F,
    FS_PRE=0x2F20,
    FS_REG_DIV_CML=0x2F21,
    FS_SPARE=0x2F22,
    FS_VCO0=0x2F27,
    IFAMP=0x2F2F,
    XOSC5=0x2F32,
    XOSC1=0x2F36,
    RSSI1=0x2F71,
    RSSI0=0x2F72,
    MARCSTATE=0x2F73,
    LQI_VAL=0x2F74,
    PARTNUMBER=0x2F8F,
    PARTVERSION=0x2F90,
    NUM_TXBYTES=0x2FD6,
    NUM_RXBYTES=0x2FD7,
)

# header byte bits and the special addresses
_READ, _BURST, _EXT, _FIFO = 0x80, 0x40, 0x2F, 0x3F
SRES, SFSTXON, SCAL, SRX, STX, SIDLE, SPWD, SFRX, SFTX, SNOP = (
    0x30,
    0x31,
    0x33,
    0x34,
    0x35,
    0x36,
    0x39,
    0x3A,
    0x3B,
    0x3D,
)
FIFO_SIZE = 128
STATUS_LEN = 2  # APPEND_STATUS: RSSI, CRC_OK << 7 | LQI

PARTNUMBERS = {0x20: "CC1200", 0x21: "CC1201"}  # 0x20 [mem], 0x21 [src]


class ChipState(IntEnum):
    """Status byte b6:4."""

    IDLE = 0
    RX = 1
    TX = 2
    FSTXON = 3
    CALIBRATE = 4
    SETTLING = 5
    RX_FIFO_ERR = 6
    TX_FIFO_ERR = 7


#: SmartRF Studio settings for 802.15.4g mode #1 (50 kb/s 2-GFSK, +-25 kHz, RX BW 104 kHz,
#: 40 MHz crystal), in the order of radio-chips.md section 3 [src Contiki-NG
#: cc1200-802154g-863-870-fsk-50kbps.c]. FREQ here is 868.0 MHz; the channel follows.
SMARTRF_MODE_1: tuple[tuple[str, int], ...] = (
    ("IOCFG2", 0x06),
    ("SYNC3", 0x6E),
    ("SYNC2", 0x4E),
    ("SYNC1", 0x90),
    ("SYNC0", 0x4E),
    ("SYNC_CFG1", 0xE5),
    ("SYNC_CFG0", 0x23),
    ("DEVIATION_M", 0x47),
    ("MODCFG_DEV_E", 0x0B),
    ("DCFILT_CFG", 0x56),
    ("PREAMBLE_CFG1", 0x19),
    ("PREAMBLE_CFG0", 0xBA),
    ("IQIC", 0xC8),
    ("CHAN_BW", 0x84),
    ("MDMCFG1", 0x42),
    ("MDMCFG0", 0x05),
    ("SYMBOL_RATE2", 0x94),
    ("SYMBOL_RATE1", 0x7A),
    ("SYMBOL_RATE0", 0xE1),
    ("AGC_REF", 0x27),
    ("AGC_CS_THR", 0xF1),
    ("AGC_CFG1", 0x11),
    ("AGC_CFG0", 0x90),
    ("FIFO_CFG", 0x00),
    ("FS_CFG", 0x12),
    ("PKT_CFG2", 0x24),
    ("PKT_CFG0", 0x20),
    ("PKT_LEN", 0xFF),
    ("IF_MIX_CFG", 0x18),
    ("TOC_CFG", 0x03),
    ("MDMCFG2", 0x02),
    ("FREQ2", 0x56),
    ("FREQ1", 0xCC),
    ("FREQ0", 0xCC),
    ("IF_ADC1", 0xEE),
    ("IF_ADC0", 0x10),
    ("FS_DIG1", 0x04),
    ("FS_DIG0", 0x50),
    ("FS_CAL1", 0x40),
    ("FS_CAL0", 0x0E),
    ("FS_DIVTWO", 0x03),
    ("FS_DSM0", 0x33),
    ("FS_DVC1", 0xF7),
    ("FS_DVC0", 0x0F),
    ("FS_PFD", 0x00),
    ("FS_PRE", 0x6E),
    ("FS_REG_DIV_CML", 0x1C),
    ("FS_SPARE", 0xAC),
    ("FS_VCO0", 0xB5),
    ("IFAMP", 0x05),
    ("XOSC5", 0x0E),
    ("XOSC1", 0x03),
)


def _driver_settings(chip_crc: bool) -> tuple[tuple[str, int], ...]:
    """What Contiki-NG's ``configure()`` writes after the SmartRF list [src cc1200.c], as
    absolute values from the reset state."""
    return (
        ("AGC_GAIN_ADJUST", 0xAF),  # RSSI offset -81 dB: RSSI1 reads dBm
        ("IOCFG0", 0x06),  # GPIO0 = PKT_SYNC_RXTX: high from sync to the end of the packet
        ("RFEND_CFG1", 0x3F),  # RXOFF_MODE = RX, RX timeout off
        ("RFEND_CFG0", 0x30),  # TXOFF_MODE = RX
        ("PKT_CFG2", 0x20),  # 802.15.4g mode (2-octet PHR); CCA mode 0: the host does CCA
        ("PKT_CFG1", 0x03 if chip_crc else 0x01),  # CRC_CFG = 1 (or off), APPEND_STATUS
    )


DRIVER_SETTINGS = _driver_settings(chip_crc=True)

#: Labels of the Raspberry Pi's own GPIO controllers (gpiod 2: find the chip by label).
PI_GPIO_LABELS = ("pinctrl-bcm2711", "pinctrl-bcm2835", "pinctrl-rp1", "pinctrl-bcm2712")

_F0_KHZ = EU_863_MODE_1.chan_center_freq0_hz // 1000
_SPACING_KHZ = EU_863_MODE_1.channel_spacing_hz // 1000


def freq_word(channel: int) -> int:
    """FREQ2..0 for an EU mode #1 channel: f_kHz * 4096 / 625 (40 MHz crystal, LO / 4);
    channel 0 (863.125 MHz) is 0x565000."""
    if not 0 <= channel < EU_863_MODE_1.n_channels:
        raise ValueError(f"channel {channel} not in 0..{EU_863_MODE_1.n_channels - 1}")
    return (_F0_KHZ + channel * _SPACING_KHZ) * 4096 // 625


def hardware_modules() -> tuple[Any, Any]:
    """The real ``spidev`` and ``gpiod`` modules (the ``pi`` extra), imported only here."""
    try:
        import gpiod
        import spidev
    except ImportError as e:
        raise RadioError(
            f"the CC1200 driver needs spidev and gpiod (pip install 'ihd[pi]'): {e}"
        ) from None
    return spidev, gpiod


def find_gpio_chip(gpiod: Any, candidates: Iterable[str] | None = None) -> str:
    """The path of the Pi's GPIO controller, found by its label (not by number: the Pi 5
    numbers its chips differently from earlier models)."""
    paths = sorted(glob.glob("/dev/gpiochip*")) if candidates is None else list(candidates)
    seen = []
    for path in paths:
        try:
            with gpiod.Chip(path) as chip:
                label = chip.get_info().label
        except OSError:
            continue
        seen.append(f"{path} ({label})")
        if label in PI_GPIO_LABELS:
            return path
    found = ", ".join(seen) or "none"
    raise RadioError(
        f"no Raspberry Pi GPIO controller ({', '.join(PI_GPIO_LABELS)}) among the GPIO chips"
        f" found: {found}. Set the radio's gpio_chip to a /dev/gpiochipN path."
    )


def spi_bus_device(path: str) -> tuple[int, int]:
    """``/dev/spidev0.1`` -> (0, 1), the arguments of ``SpiDev.open``."""
    m = re.fullmatch(r"/dev/spidev(\d+)\.(\d+)", path)
    if m is None:
        raise ValueError(f"SPI device must look like /dev/spidevB.D, not {path!r}")
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True, slots=True)
class CC1200Config:
    spi_device: str = "/dev/spidev0.0"  # CE0
    spi_speed_hz: int = 5_000_000
    gpio_chip: str | None = None  # e.g. "/dev/gpiochip0"; None: the Pi's, found by label
    irq_line: int = 25  # BCM25 (header pin 22), wired to the CC1200's GPIO0
    channel: int = 0  # EU 863 MHz mode #1, 0..33
    fcs_check: Literal["chip", "software"] = "chip"
    dewhiten: Literal["chip", "software"] = "chip"
    tx_whitening: bool = False  # set DW on frames we send (Contiki's default: off)
    cca_threshold_dbm: int = -91  # Contiki's RF_CFG_CCA_THRESHOLD for mode #1 [src]
    reopen_interval_s: float = 2.0  # injected-clock seconds between re-init attempts

    def __post_init__(self) -> None:
        spi_bus_device(self.spi_device)  # ValueError if malformed
        freq_word(self.channel)  # ValueError if out of range
        if self.spi_speed_hz <= 0 or self.reopen_interval_s <= 0:
            raise ValueError("spi_speed_hz and reopen_interval_s must be positive")
        if self.dewhiten == "software" and self.fcs_check == "chip":
            raise ValueError("dewhiten='software' needs fcs_check='software'")


@dataclass(frozen=True, slots=True)
class CC1200Identity:
    part: str  # "CC1200" or "CC1201"
    partnumber: int
    partversion: int
    spi: str  # "/dev/spidev0.0"

    def describe(self) -> str:
        return (
            f"TI {self.part} (PARTNUMBER 0x{self.partnumber:02X}, PARTVERSION "
            f"0x{self.partversion:02X}) on {self.spi}"
        )


class _Fault(Exception):
    """Something the driver cannot recover from without re-initialising the chip."""

    def __init__(self, reason: str, counter: str) -> None:
        super().__init__(reason)
        self.counter = counter


class _Spi:
    """The CC1200's SPI access patterns over an open spidev object. Every transaction's
    first octet is the status byte; it is kept in ``status``."""

    def __init__(self, dev: Any) -> None:
        self.dev = dev
        self.status = 0

    def xfer(self, data: list[int]) -> list[int]:
        out: list[int] = self.dev.xfer2(data)
        if len(out) != len(data):
            raise OSError(f"spidev returned {len(out)} octets for {len(data)}")
        self.status = out[0]
        return out

    def strobe(self, cmd: int) -> int:
        return self.xfer([cmd])[0]

    def read(self, addr: int) -> int:
        if addr >= 0x2F00:
            return self.xfer([_READ | _EXT, addr & 0xFF, 0])[2]
        return self.xfer([_READ | addr, 0])[1]

    def write(self, addr: int, value: int) -> None:
        if addr >= 0x2F00:
            self.xfer([_EXT, addr & 0xFF, value])
        else:
            self.xfer([addr, value])

    def write_burst(self, addr: int, data: bytes) -> None:
        if addr >= 0x2F00:
            self.xfer([_BURST | _EXT, addr & 0xFF, *data])
        else:
            self.xfer([_BURST | addr, *data])

    def read_fifo(self, n: int) -> bytes:
        return bytes(self.xfer([_READ | _BURST | _FIFO] + [0] * n)[1:])

    def write_fifo(self, data: bytes) -> None:
        self.xfer([_BURST | _FIFO, *data])


def _signed(b: int) -> int:
    return b - 256 if b & 0x80 else b


class CC1200Radio:
    """The :class:`~ihd.radio.contract.Radio` for a CC1200 on the Pi's SPI and GPIO.

    ``spidev``/``gpiod`` are module objects (the real ones from :func:`hardware_modules`
    when None, imported at ``open``; an emulator's fakes in tests). ``sleep`` is used for the
    short waits of state changes and CSMA backoffs.
    """

    name = "cc1200"

    #: wall seconds between health checks while no edge comes
    HEALTH_INTERVAL_S = 1.0

    def __init__(
        self,
        config: CC1200Config | None = None,
        *,
        clock: Clock,
        diag: Diagnostics | None = None,
        spidev: Any = None,
        gpiod: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or CC1200Config()
        self.clock = clock
        self.diag = diag or Diagnostics()
        self._spidev_mod = spidev
        self._gpiod_mod = gpiod
        self._sleep = sleep
        self._lock = threading.RLock()  # every SPI sequence
        self._spi: _Spi | None = None
        self._dev: Any = None
        self._req: Any = None
        self._frames: deque[RxFrame] = deque()
        self._closed = True
        self._ever_up = False
        self._next_reopen = 0.0
        self._last_health = 0.0
        self._rng = random.Random()
        self.channel = self.config.channel
        self.identity: CC1200Identity | None = None
        self._ext: int | None = None

    @property
    def _chip_crc(self) -> bool:
        return self.config.fcs_check == "chip"

    @property
    def _spi_path(self) -> str:
        return self.config.spi_device

    # --- the Radio contract ---------------------------------------------------------------
    def open(self) -> None:
        self._closed = False
        if self._spi is not None:
            return
        try:
            self._bring_up()
        except RadioError as e:
            self._next_reopen = self.clock.now() + self.config.reopen_interval_s
            self.diag.set("radio.status", f"error: {e}")
            raise
        self._ever_up = True

    def close(self) -> None:
        self._closed = True
        with self._lock:
            spi = self._spi
            if spi is not None:
                try:
                    spi.strobe(SIDLE)
                    spi.strobe(SPWD)
                except OSError:
                    pass
            self._teardown()

    def receive(self, timeout: float) -> RxFrame | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if self._frames:
                return self._frames.popleft()
            left = deadline - time.monotonic()
            req = self._req
            if self._spi is None or req is None:
                if self._closed:
                    return None
                if self.clock.now() >= self._next_reopen:
                    self._reopen()
                    continue
                if left <= 0:
                    return None
                self._sleep(min(left, 0.05))
                continue
            try:
                if req.wait_edge_events(max(0.0, min(left, self.HEALTH_INTERVAL_S))):
                    req.read_edge_events()
                    with self._lock:
                        self._service()
                elif time.monotonic() - self._last_health >= self.HEALTH_INTERVAL_S:
                    with self._lock:
                        self._health_check()
            except _Fault as f:
                self._fail(f)
            except (OSError, RuntimeError) as e:
                self._fail(_Fault(f"SPI/GPIO error: {e}", "radio.spi_errors"))
            if self._frames:
                return self._frames.popleft()
            if left <= 0:
                return None

    def transmit(self, psdu: bytes, *, fcs_len: int) -> None:
        """CSMA (RSSI against ``cca_threshold_dbm``, up to 4 random backoffs), then the PHR
        and the PSDU (without FCS if the chip appends it) into the TX FIFO and STX."""
        if fcs_len not in (2, 4) or len(psdu) < fcs_len:
            raise ValueError("psdu must end with its 2- or 4-octet FCS")
        body = psdu[:-fcs_len] if self._chip_crc else psdu
        if 2 + len(body) > FIFO_SIZE:
            raise RadioError(
                f"a {len(psdu)}-octet PSDU needs TX FIFO refills, which this driver lacks"
            )
        whitened = self.config.tx_whitening
        if whitened and self.config.dewhiten == "software":
            body = whiten(body)
        phr = Phr(len(psdu), fcs_len, whitened).to_bytes()
        with self._lock:
            spi = self._spi
            if spi is None:
                raise RadioError("the CC1200 is not running")
            try:
                self._csma(spi)
                self._go_idle(spi)
                spi.strobe(SFTX)
                spi.write_fifo(phr + body)
                spi.strobe(STX)
                deadline = time.monotonic() + airtime_s(EU_863_MODE_1, len(psdu)) + 0.05
                state = self._state(spi)
                while state in (ChipState.TX, ChipState.SETTLING, ChipState.CALIBRATE):
                    if time.monotonic() > deadline:
                        raise _Fault("TX did not end in time", "radio.tx_errors")
                    self._sleep(0.0005)
                    state = self._state(spi)
                if state is ChipState.TX_FIFO_ERR:
                    self.diag.count("radio.tx_fifo_error")
                    spi.strobe(SFTX)
                    self._start_rx(spi)
                    raise RadioError("TX FIFO error (underflow): the frame was not sent")
                if state is not ChipState.RX:
                    self._start_rx(spi)
            except _Fault as f:
                self._fail(f)
            except OSError as e:
                self._fail(_Fault(f"SPI error: {e}", "radio.spi_errors"))
        self.diag.count("radio.tx_frames")

    def set_addresses(self, *, eui64: str, pan_id: int | None, short: int | None) -> None:
        """Kept for the log only: the CC1200 has no 802.15.4 address filter and no auto-ACK
        (everything on the channel is received; nothing is acknowledged)."""
        self._ext = int(eui64.replace(":", "").replace("-", ""), 16)
        log.debug("CC1200: no address filter or ACKs; addresses %s/%s noted", eui64, pan_id)

    # --- extras for ihd radio probe / scan ----------------------------------------------------
    def set_channel(self, channel: int) -> None:
        word = freq_word(channel)
        with self._lock:
            spi = self._need_spi()
            try:
                self._go_idle(spi)
                spi.write_burst(REGISTERS["FREQ2"], word.to_bytes(3, "big"))
                self._start_rx(spi)
            except _Fault as f:
                self._fail(f)
            except OSError as e:
                self._fail(_Fault(f"SPI error: {e}", "radio.spi_errors"))
            self.channel = channel

    def energy_dbm(self, channel: int | None = None) -> float:
        """The RSSI now (dBm, RSSI1 with Contiki's offset), on ``channel`` if given (the
        radio stays there: ``set_channel`` back after a scan)."""
        if channel is not None:
            self.set_channel(channel)
        with self._lock:
            spi = self._need_spi()
            try:
                return float(self._rssi(spi))
            except _Fault as f:
                self._fail(f)
            except OSError as e:
                self._fail(_Fault(f"SPI error: {e}", "radio.spi_errors"))

    # --- bring-up ---------------------------------------------------------------------------
    def _modules(self) -> tuple[Any, Any]:
        if self._spidev_mod is None or self._gpiod_mod is None:
            spidev, gpiod = hardware_modules()
            self._spidev_mod = self._spidev_mod or spidev
            self._gpiod_mod = self._gpiod_mod or gpiod
        return self._spidev_mod, self._gpiod_mod

    def _bring_up(self) -> None:
        spidev, gpiod = self._modules()
        cfg = self.config
        with self._lock:
            self._teardown()
            dev = _open_spi(spidev, cfg.spi_device, cfg.spi_speed_hz)
            self._dev = dev
            spi = _Spi(dev)
            try:
                self.identity = _reset_and_identify(spi, self._spi_path, self._sleep)
                self._req = self._request_irq(gpiod)
                for name, value in SMARTRF_MODE_1 + _driver_settings(self._chip_crc):
                    spi.write(REGISTERS[name], value)
                spi.write_burst(REGISTERS["FREQ2"], freq_word(self.channel).to_bytes(3, "big"))
                got = spi.read(REGISTERS["PKT_CFG2"]), spi.read(REGISTERS["FREQ1"])
                want = 0x20, (freq_word(self.channel) >> 8) & 0xFF
                if got != want:
                    raise RadioError(
                        f"CC1200 on {self._spi_path}: registers read back "
                        f"{got[0]:02X} {got[1]:02X}, not {want[0]:02X} {want[1]:02X}: "
                        "check MOSI and the SPI mode"
                    )
                self._start_rx(spi)
            except _Fault as f:
                self._teardown()
                raise RadioError(str(f)) from None
            except OSError as e:
                self._teardown()
                raise RadioError(f"CC1200 on {self._spi_path}: SPI/GPIO error: {e}") from None
            except RadioError:
                self._teardown()
                raise
            self._spi = spi
            self._last_health = time.monotonic()
        self.diag.set("radio.status", "ok")
        assert self.identity is not None
        log.info("%s up on channel %d", self.identity.describe(), self.channel)

    def _request_irq(self, gpiod: Any) -> Any:
        cfg = self.config
        path = find_gpio_chip(gpiod) if cfg.gpio_chip is None else cfg.gpio_chip
        settings = gpiod.LineSettings(
            direction=gpiod.line.Direction.INPUT, edge_detection=gpiod.line.Edge.FALLING
        )
        try:
            return gpiod.request_lines(path, consumer="ihd-cc1200", config={cfg.irq_line: settings})
        except FileNotFoundError:
            raise RadioError(f"no GPIO chip {path}: set the radio's gpio_chip") from None
        except PermissionError:
            raise RadioError(
                f"no permission on {path}: add the user to the 'gpio' group (see hw/)"
            ) from None
        except OSError as e:
            raise RadioError(f"cannot request GPIO line {cfg.irq_line} on {path}: {e}") from None

    def _teardown(self) -> None:
        req, self._req = self._req, None
        dev, self._dev = self._dev, None
        self._spi = None
        for release in (getattr(req, "release", None), getattr(dev, "close", None)):
            if release is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    release()

    def _fail(self, fault: _Fault) -> NoReturn:
        """Close the chip after a fault; ``receive`` re-initialises it. Raises RadioError."""
        reason = f"CC1200: {fault}"
        self.diag.count(fault.counter)
        self.diag.set("radio.status", f"error: {reason}")
        log.warning("%s: closing it; it will be re-initialised", reason)
        with self._lock:
            self._teardown()
        self._next_reopen = self.clock.now()
        raise RadioError(reason)

    def _reopen(self) -> None:
        try:
            self._bring_up()
        except RadioError as e:
            self._next_reopen = self.clock.now() + self.config.reopen_interval_s
            self.diag.count("radio.reinit_failures")
            self.diag.set("radio.status", f"error: {e}")
            raise
        if self._ever_up:
            self.diag.count("radio.reinit")
            log.info("CC1200 re-initialised")
        self._ever_up = True

    def _need_spi(self) -> _Spi:
        if self._spi is None:
            raise RadioError("the CC1200 is not running")
        return self._spi

    # --- states -------------------------------------------------------------------------------
    def _state(self, spi: _Spi) -> ChipState:
        status = spi.strobe(SNOP)
        if status & 0x80:
            raise _Fault(
                f"status byte 0x{status:02X}: CHIP_RDYn is high (the chip reset itself, or "
                "lost power or its crystal)",
                "radio.not_ready",
            )
        return ChipState((status >> 4) & 7)

    def _wait_state(self, spi: _Spi, want: tuple[ChipState, ...], what: str) -> ChipState:
        state = self._state(spi)
        for _ in range(200):
            if state in want:
                return state
            self._sleep(0.0002)
            state = self._state(spi)
        if state in want:
            return state
        raise _Fault(f"stuck in {state.name} waiting for {what}", "radio.not_ready")

    def _go_idle(self, spi: _Spi) -> None:
        spi.strobe(SIDLE)
        state = self._wait_state(
            spi, (ChipState.IDLE, ChipState.RX_FIFO_ERR, ChipState.TX_FIFO_ERR), "IDLE"
        )
        if state is ChipState.RX_FIFO_ERR:
            spi.strobe(SFRX)
        elif state is ChipState.TX_FIFO_ERR:
            spi.strobe(SFTX)
        if state is not ChipState.IDLE:
            self._wait_state(spi, (ChipState.IDLE,), "IDLE")

    def _start_rx(self, spi: _Spi) -> None:
        """IDLE, flush the RX FIFO, RX."""
        self._go_idle(spi)
        spi.strobe(SFRX)
        spi.strobe(SRX)
        self._wait_state(spi, (ChipState.RX,), "RX")

    def _rssi(self, spi: _Spi) -> int:
        for _ in range(50):
            if spi.read(REGISTERS["RSSI0"]) & 0x01:  # RSSI_VALID
                return _signed(spi.read(REGISTERS["RSSI1"]))
            self._sleep(0.0002)
        raise _Fault("RSSI never became valid (is the chip in RX?)", "radio.not_ready")

    def _csma(self, spi: _Spi) -> None:
        for backoff in range(4):
            if self._rssi(spi) < self.config.cca_threshold_dbm:
                return
            self.diag.count("radio.csma_backoffs")
            self._sleep(self._rng.randint(1, 2 ** (3 + backoff)) * 0.001)
        self.diag.count("radio.tx_errors")
        raise RadioError(
            f"channel {self.channel} busy (RSSI over {self.config.cca_threshold_dbm} dBm)"
        )

    # --- RX ---------------------------------------------------------------------------------
    def _service(self) -> None:
        """GPIO0 fell: a packet ended (or our own TX did). Read what the FIFO holds: one
        packet, or several if the host was late (each must match its PHR length exactly)."""
        spi = self._spi
        if spi is None:
            return
        state = self._state(spi)
        if state is ChipState.RX_FIFO_ERR:
            self._recover_rx_fifo(spi, "RX FIFO overflow")
            return
        if state is ChipState.TX_FIFO_ERR:
            self.diag.count("radio.tx_fifo_error")
            log.warning("CC1200 in TX_FIFO_ERR: flushed with SFTX, RX restarted")
            spi.strobe(SFTX)
            self._start_rx(spi)
            return
        n = spi.read(REGISTERS["NUM_RXBYTES"])
        if n == 0:
            if state not in (ChipState.RX, ChipState.SETTLING, ChipState.CALIBRATE):
                self._restart_rx(spi, state)
            return
        first = True
        while n > 0:
            under_way = self._req is not None and bool(self._req.get_value(self.config.irq_line))
            if under_way and not first:
                return  # the rest is the packet being received: its edge will come
            used = self._read_packet(spi, n)
            if used is None:
                return
            n -= used
            first = False

    def _read_packet(self, spi: _Spi, n: int) -> int | None:
        """Read the packet at the head of the FIFO (``n`` octets in it). Returns the octets
        it took, or None if the FIFO disagreed with the PHR and was flushed."""
        if n < 2 + STATUS_LEN:
            self._flush(spi, "radio.rx_length_mismatch", f"{n} octets in the RX FIFO: not a packet")
            return None
        raw_phr = spi.read_fifo(2)
        try:
            phr = Phr.from_bytes(raw_phr)
        except PhyError as e:
            self._flush(spi, "radio.phy_error", f"bad PHR {raw_phr.hex()}: {e.reason}")
            return None
        body_len = phr.frame_length - (phr.fcs_len if self._chip_crc else 0)
        if body_len < 0:
            self._flush(spi, "radio.phy_error", f"PHR length {phr.frame_length} < FCS")
            return None
        need = body_len + STATUS_LEN
        if 2 + need > FIFO_SIZE:
            self._flush(
                spi, "radio.frame_too_long", f"a {phr.frame_length}-octet PSDU needs refills"
            )
            return None
        if need > n - 2:
            self._flush(
                spi,
                "radio.rx_length_mismatch",
                f"NUM_RXBYTES says {n - 2} octets after the PHR, the PHR length means {need}",
            )
            return None
        data = spi.read_fifo(need)
        body, rssi, crc_lqi = data[:-STATUS_LEN], _signed(data[-2]), data[-1]
        if self.config.dewhiten == "software" and phr.whitened:
            body = whiten(body)
        if self._chip_crc:
            ok = bool(crc_lqi & 0x80)
            fcs = compute_fcs(body, phr.fcs_len)
            psdu = body + (fcs if ok else bytes(b ^ 0xFF for b in fcs))
        else:
            psdu = body
            ok = check_fcs(psdu, phr.fcs_len)
        if ok and len(psdu) > 2 and psdu[0] & 0x07 == 1 and psdu[0] & 0x20:
            self.diag.count("radio.ack_requests_unanswered")  # a data frame asking for one
        info = RxInfo(
            timestamp=self.clock.now(),
            channel=self.channel,
            fcs_len=phr.fcs_len,
            whitened=phr.whitened,
            fcs_ok=ok,
            rssi_dbm=float(rssi),
            lqi=crc_lqi & 0x7F,
        )
        self._frames.append(RxFrame(psdu, info))
        return 2 + need

    def _flush(self, spi: _Spi, counter: str, reason: str) -> None:
        self.diag.count(counter)
        log.warning("CC1200: %s: RX FIFO flushed, RX restarted", reason)
        self._start_rx(spi)

    def _recover_rx_fifo(self, spi: _Spi, why: str) -> None:
        self.diag.count("radio.rx_fifo_error")
        log.warning(
            "CC1200 in RX_FIFO_ERR (%s: a frame longer than the FIFO, or frames coming faster "
            "than they are read): SFRX, RX restarted",
            why,
        )
        spi.strobe(SFRX)
        self._wait_state(spi, (ChipState.IDLE,), "IDLE after SFRX")
        spi.strobe(SRX)
        self._wait_state(spi, (ChipState.RX,), "RX")

    def _restart_rx(self, spi: _Spi, state: ChipState) -> None:
        self.diag.count("radio.rx_restarts")
        log.warning("CC1200 found in %s instead of RX: RX restarted", state.name)
        self._start_rx(spi)

    def _health_check(self) -> None:
        """No edge for a while: is the chip still in RX, and did we miss a packet's end?"""
        self._last_health = time.monotonic()
        spi = self._spi
        if spi is None:
            return
        state = self._state(spi)
        if state in (ChipState.RX_FIFO_ERR, ChipState.TX_FIFO_ERR):
            self._service()
        elif state not in (ChipState.RX, ChipState.SETTLING, ChipState.CALIBRATE):
            self._restart_rx(spi, state)
        elif spi.read(REGISTERS["NUM_RXBYTES"]) and not (
            self._req is not None and self._req.get_value(self.config.irq_line)
        ):
            self.diag.count("radio.missed_irq")
            log.warning("CC1200: a packet waited in the RX FIFO with no GPIO0 edge seen")
            self._service()


def _open_spi(spidev: Any, path: str, speed_hz: int) -> Any:
    bus, device = spi_bus_device(path)
    dev = spidev.SpiDev()
    try:
        dev.open(bus, device)
    except FileNotFoundError:
        raise RadioError(
            f"no SPI device {path}: enable SPI (dtparam=spi=on in /boot/firmware/config.txt, "
            "then reboot) or fix the radio's SPI bus/device in the config"
        ) from None
    except PermissionError:
        raise RadioError(f"no permission on {path}: add the user to the 'spi' group") from None
    except OSError as e:
        raise RadioError(f"cannot open {path}: {e}") from None
    dev.max_speed_hz = speed_hz
    dev.mode = 0
    return dev


def _reset_and_identify(spi: _Spi, where: str, sleep: Callable[[float], None]) -> CC1200Identity:
    """SRES, wait for CHIP_RDYn low, read PARTNUMBER/PARTVERSION; RadioError if no CC120x."""
    spi.strobe(SRES)
    status = spi.strobe(SNOP)
    for _ in range(100):
        if not status & 0x80:
            break
        sleep(0.001)
        status = spi.strobe(SNOP)
    if status & 0x80:
        hint = " (MISO stuck high, or nothing on the bus)" if status == 0xFF else ""
        raise RadioError(
            f"no CC1200 answers on {where}: CHIP_RDYn stays high after SRES, status byte "
            f"0x{status:02X}{hint}"
        )
    pn = spi.read(REGISTERS["PARTNUMBER"])
    pv = spi.read(REGISTERS["PARTVERSION"])
    part = PARTNUMBERS.get(pn)
    if part is None:
        raise RadioError(
            f"no CC1200 on {where}: PARTNUMBER reads 0x{pn:02X} (0x20 CC1200, 0x21 CC1201)"
        )
    return CC1200Identity(part, pn, pv, where)


def probe_cc1200(
    config: CC1200Config | None = None,
    *,
    spidev: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CC1200Identity:
    """Reset the chip and read its part number (SPI only); RadioError with the reason if
    there is no CC1200/CC1201. For ``ihd radio probe``. Leaves the chip reset (IDLE)."""
    cfg = config or CC1200Config()
    if spidev is None:
        spidev, _ = hardware_modules()
    dev = _open_spi(spidev, cfg.spi_device, cfg.spi_speed_hz)
    try:
        return _reset_and_identify(_Spi(dev), cfg.spi_device, sleep)
    except OSError as e:
        raise RadioError(f"SPI error on {cfg.spi_device}: {e}") from None
    finally:
        dev.close()
