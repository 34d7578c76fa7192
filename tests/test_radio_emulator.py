"""The AT86RF215 emulator, driven only through its fake spidev/gpiod modules, as a driver
would drive the chip.

Register addresses, bits and values are written out here from ../shared/hw/radio-chips.md
(sections 1 and 5), not imported from the emulator: this file is a second reading of the
same document. Every test runs on a ManualClock except the pump test (a fast ScaledClock).
"""

from __future__ import annotations

import ast
import errno
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import ihd.radio.emulator as emulator_pkg
from ihd.clock import ManualClock, ScaledClock
from ihd.radio.emulator import EmulatedAt86rf215, Timing
from ihd.sim.world import PAN_ID, SimWorld, demo_world
from ihd.smwap.errors import PhyError
from ihd.smwap.fcs import check_fcs, compute_fcs, crc16_kermit
from ihd.smwap.mac import Address, AddrMode, FrameType, MacFrame, parse_mpdu
from ihd.smwap.phy import parse_ppdu

T0 = 1_700_000_000.0  # the electricity meter of demo_world pushes at T0, T0 + 10, ...

# --- radio-chips.md 1.2 / 1.3 ----------------------------------------------------------------
RF_RST, RF_CFG, RF_CLKO, RF_PN, RF_VN = 0x005, 0x006, 0x007, 0x00D, 0x00E
RF09_IRQS, RF24_IRQS, BBC0_IRQS = 0x00, 0x01, 0x02
RF09_IRQM, RF09_STATE, RF09_CMD = 0x100, 0x102, 0x103
RF09_CS, RF09_CCF0L, RF09_CCF0H, RF09_CNL, RF09_CNM = 0x104, 0x105, 0x106, 0x107, 0x108
RF09_RSSI, RF09_EDC, RF09_EDD, RF09_EDV, RF09_PLL = 0x10D, 0x10E, 0x10F, 0x110, 0x121
RF24_IRQM, RF24_CMD, BBC1_IRQM = 0x200, 0x203, 0x400
BBC0_IRQM, PC, PS = 0x300, 0x301, 0x302
RXFLL, RXFLH, TXFLL, TXFLH, FBLL, FBLH = 0x304, 0x305, 0x306, 0x307, 0x308, 0x309
AFC0, AFFTM, MACEA0, MACPID0F0, MACSHA0F0 = 0x320, 0x322, 0x325, 0x32D, 0x32F
AMCS, AMEDT = 0x340, 0x341
FSKC0, FSKC1, FSKC2, FSKPLL, FSKPHRTX, FSKPHRRX = 0x360, 0x361, 0x362, 0x365, 0x36A, 0x36B
RX_BUF, TX_BUF = 0x2000, 0x2800

WAKEUP, TRXRDY, EDC, BATLOW, TRXERR = 0x01, 0x02, 0x04, 0x08, 0x10
RXFS, RXFE, RXAM, TXFE, AGCR, FBLI = 0x01, 0x02, 0x04, 0x10, 0x40, 0x80
FCSOK = 0x20
NOP, SLEEP, TRXOFF, TXPREP, TX, RX, TRANSITION, RESET = 0, 1, 2, 3, 4, 5, 6, 7

RSTN_LINE, IRQ_LINE = 24, 25  # BCM numbers, radio-chips.md 2


class Host:
    """A minimal driver written from radio-chips.md: what the real one must also do."""

    def __init__(
        self,
        chip: EmulatedAt86rf215,
        clock: ManualClock | ScaledClock,
        *,
        spi: tuple[int, int] = (0, 0),
        rstn: int = RSTN_LINE,
        irq: int = IRQ_LINE,
        active_low_irq: bool = False,
    ) -> None:
        self.chip, self.clock = chip, clock
        spidev, self.gpiod = chip.modules()
        self.L = self.gpiod.line
        self.spi = spidev.SpiDev()
        self.spi.open(*spi)
        self.spi.max_speed_hz = 5_000_000
        self.spi.mode = 0
        self.rstn, self.irq = rstn, irq
        self.req = self.request(active_low_irq=active_low_irq)

    def request(self, *, active_low_irq: bool = False) -> Any:
        L, g = self.L, self.gpiod
        return g.request_lines(
            "/dev/gpiochip0",
            consumer="ihd",
            config={
                self.rstn: g.LineSettings(
                    direction=L.Direction.OUTPUT, output_value=L.Value.ACTIVE
                ),
                self.irq: g.LineSettings(
                    direction=L.Direction.INPUT,
                    edge_detection=L.Edge.RISING,
                    active_low=active_low_irq,
                ),
            },
        )

    # -- SPI (radio-chips.md 1.1)
    def read(self, addr: int, n: int = 1) -> list[int]:
        out = self.spi.xfer2([addr >> 8, addr & 0xFF] + [0] * n)
        assert len(out) == n + 2
        return list(out[2:])

    def read1(self, addr: int) -> int:
        return self.read(addr)[0]

    def write(self, addr: int, *data: int) -> None:
        self.spi.xfer2([0x80 | addr >> 8, addr & 0xFF, *data])

    def state(self) -> int:
        return self.read1(RF09_STATE)

    def cmd(self, c: int) -> None:
        self.write(RF09_CMD, c)

    def irqs(self) -> list[int]:
        return self.read(RF09_IRQS, 4)

    def pin(self) -> bool:
        return bool(self.req.get_value(self.irq) == self.L.Value.ACTIVE)

    # -- bring-up (radio-chips.md 1.2, 1.6, 1.8)
    def pulse_reset(self) -> None:
        self.req.set_value(self.rstn, self.L.Value.INACTIVE)
        if isinstance(self.clock, ManualClock):
            self.clock.advance(16e-6)  # tRST >= 625 ns; on a real clock the calls take longer
        self.req.set_value(self.rstn, self.L.Value.ACTIVE)

    def wait_state(self, want: int, polls: int = 1000) -> int:
        for i in range(polls):
            if self.state() == want:
                return i
        raise AssertionError(f"STATE never reached {want}")

    def bring_up(
        self,
        *,
        display_eui64: str | None = None,
        short: int = 0x0001,
        pc: int = 0x55,
        amcs: int = 0x68,
        bbc_irqm: int = 0x13,
        rf_irqm: int = 0x12,
    ) -> None:
        self.pulse_reset()
        self.wait_state(TRXOFF)
        assert self.read1(RF_PN) in (0x34, 0x36)
        self.irqs()
        self.write(RF24_IRQM, 0x00)
        self.write(BBC1_IRQM, 0x00)
        self.write(RF24_CMD, SLEEP)
        self.cmd(TRXOFF)
        self.wait_state(TRXOFF)
        self.write(RF_CLKO, 0x00)
        self.write(PC, 0x00)
        self.write(0x109, 0x00)
        self.write(0x10A, 0x2A)
        self.write(0x112, 0xC0)
        self.write(0x113, 0x98)
        self.write(0x373, 0x02, 0x03, 0xFC)
        self.write(0x36D, 0xA0)
        self.write(0x36E, 0xA0)
        self.write(FSKPLL, 0x02)
        self.write(FSKC2, 0x80)
        self.write(FSKC1, 0x00)
        self.write(0x10C, 0x20)
        self.write(0x10B, 0x01)
        self.write(FSKC0, 0xD6)
        self.write(0x372, 0x03)
        self.write(0x36C, 0x05)
        self.write(FSKPHRTX, 0x04)  # DW=1: the demo meters whiten
        self.write(RF09_CS, 0x08, 0xDD, 0x86, 0x00, 0x00)  # EU mode #1 channel 0
        self.write(BBC0_IRQM, bbc_irqm)
        self.write(RF09_IRQM, rf_irqm)
        self.write(AMEDT, (-84) & 0xFF)
        if display_eui64 is not None:
            self.write(MACEA0, *Address.from_eui64(display_eui64).value.to_bytes(8, "little"))
            self.write(MACPID0F0, PAN_ID & 0xFF, PAN_ID >> 8, short & 0xFF, short >> 8)
            self.write(AFC0, 0x01)
            self.write(AMCS, amcs)
        self.write(PC, pc)
        self.cmd(RX)
        self.wait_state(RX)
        self.irqs()
        self.drain()

    def drain(self) -> None:
        """Drop queued edge events (without blocking)."""
        if self.req.wait_edge_events(0):
            self.req.read_edge_events()

    # -- IRQs (radio-chips.md 2: edges, re-read IRQS while the line is active)
    def wait_irq(self, timeout: float) -> list[int] | None:
        if not self.pin() and not self.req.wait_edge_events(timeout):
            return None
        self.req.read_edge_events()
        return self.irqs()

    def wait_for(self, src: int, bits: int, timeout: float = 1.0) -> list[int]:
        """Read IRQS on every IRQ until ``bits`` of register ``src`` were seen; returns
        everything seen, ORed."""
        seen = [0, 0, 0, 0]
        deadline = self.clock.now() + timeout
        while not seen[src] & bits:
            left = deadline - self.clock.now()
            got = self.wait_irq(left) if left > 0 else None
            if got is None:
                raise AssertionError(f"no IRQ {bits:#x} in register {src}; saw {seen}")
            seen = [a | b for a, b in zip(seen, got, strict=True)]
        return seen

    def collect(self, duration: float) -> list[int]:
        """Every IRQ cause seen (ORed) until ``duration`` passes."""
        seen = [0, 0, 0, 0]
        deadline = self.clock.now() + duration
        while (left := deadline - self.clock.now()) > 0:
            got = self.wait_irq(left)
            if got is None:
                break
            seen = [a | b for a, b in zip(seen, got, strict=True)]
        return seen

    def rx_len(self) -> int:
        lo, hi = self.read(RXFLL, 2)
        return (lo | hi << 8) & 0x7FF

    def read_frame(self) -> bytes:
        return bytes(self.read(RX_BUF, self.rx_len()))

    def load_tx(self, mpdu: bytes, fcs_len: int = 4) -> None:
        self.write(TX_BUF, *mpdu)
        n = len(mpdu) + fcs_len
        self.write(TXFLL, n & 0xFF, n >> 8)


def make(
    *,
    world: SimWorld | None = None,
    start: float = T0,
    timing: Timing | None = None,
    host: dict[str, Any] | None = None,
    **chip_kw: Any,
) -> tuple[EmulatedAt86rf215, Host, ManualClock]:
    clock = ManualClock(start)
    chip = EmulatedAt86rf215(clock, world=world, timing=timing, **chip_kw)
    return chip, Host(chip, clock, **(host or {})), clock


@pytest.fixture
def bench() -> Any:
    chip, host, clock = make()
    yield chip, host, clock
    chip.close()


@pytest.fixture
def live() -> Any:
    """The chip as the display of the demo household; RX armed a second before the
    electricity meter's first push."""
    world = demo_world(start=T0, joined=None)
    chip, host, clock = make(world=world, start=T0 - 1)
    host.bring_up(display_eui64=world.display_eui64, bbc_irqm=RXFS | RXFE | RXAM | TXFE)
    yield chip, host, clock, world
    chip.close()


def data_frame(dst: Address, *, seq: int = 7, ar: bool = True, payload: bytes = b"push") -> bytes:
    """An MPDU (no FCS) from a meter to ``dst`` in the demo PAN."""
    mac = MacFrame.data(
        src=Address.from_eui64("0249484400019999"),
        dst=dst,
        dst_pan=PAN_ID,
        seq=seq,
        payload=payload,
        ack_request=ar,
    )
    return mac.to_bytes()


def psdu(mpdu: bytes, fcs_len: int = 4) -> bytes:
    return mpdu + compute_fcs(mpdu, fcs_len)


# --- independence --------------------------------------------------------------------------


def _imported_modules(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)  # importlib.import_module("...") and the like
    return found


def test_no_emulator_module_imports_the_driver() -> None:
    pkg_dir = Path(emulator_pkg.__file__).parent
    files = sorted(pkg_dir.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "at86rf215.py", "fakes.py"}
    for f in files:
        mods = _imported_modules(f, "ihd.radio.emulator")
        bad = {
            m for m in mods if m == "ihd.radio.at86rf215" or m.startswith("ihd.radio.at86rf215.")
        }
        assert not bad, f"{f.name} imports the driver: {sorted(bad)}"


def test_the_import_check_catches_every_spelling(tmp_path: Path) -> None:
    for src in (
        "import ihd.radio.at86rf215\n",
        "from ihd.radio.at86rf215 import Driver\n",
        "from ihd.radio import at86rf215\n",
        "from .. import at86rf215\n",
        "from ..at86rf215 import Driver\n",
        "import importlib\nimportlib.import_module('ihd.radio.at86rf215')\n",
    ):
        f = tmp_path / "m.py"
        f.write_text(src)
        mods = _imported_modules(f, "ihd.radio.emulator")
        assert "ihd.radio.at86rf215" in mods or any(
            m.startswith("ihd.radio.at86rf215.") for m in mods
        ), src
    f.write_text("from .at86rf215 import EmulatedAt86rf215\n")  # the emulator's own module
    assert "ihd.radio.at86rf215" not in _imported_modules(f, "ihd.radio.emulator")


# --- reset and identity ----------------------------------------------------------------------


def test_power_on_reset_and_id(bench: Any) -> None:
    chip, h, clock = bench
    assert h.pin()  # WAKEUP after power-on
    assert h.irqs() == [WAKEUP, WAKEUP, 0, 0]
    assert not h.pin()
    assert h.irqs() == [0, 0, 0, 0]  # cleared by the read
    assert h.read1(RF_PN) == 0x34
    assert h.read1(RF_VN) == 0x03
    assert h.state() == TRXOFF
    assert h.read1(AMEDT) == (-84) & 0xFF

    h.write(PC, 0x55)
    h.write(RF09_CS, 0x08, 0xDD, 0x86, 0x05, 0x00)
    h.req.set_value(RSTN_LINE, h.L.Value.INACTIVE)
    assert chip.in_reset
    assert h.read1(RF_PN) == 0x00  # held in reset: the chip does not answer
    clock.advance(16e-6)
    h.req.set_value(RSTN_LINE, h.L.Value.ACTIVE)
    assert h.state() == RESET  # STATE 7 while the chip comes up, then TRXOFF
    assert 0 < h.wait_state(TRXOFF) < 100
    assert h.read(RF09_CS, 5) == [0, 0, 0, 0, 0]
    assert h.read1(PC) == 0x00
    assert h.read1(RF_PN) == 0x34
    assert h.pin()
    assert h.irqs()[:2] == [WAKEUP, WAKEUP]
    assert chip.counters.resets == 1
    assert chip.rstn_pulses_s and chip.rstn_pulses_s[-1] >= 16e-6


def test_soft_reset_through_rf_rst(bench: Any) -> None:
    _chip, h, clock = bench
    h.irqs()
    h.write(PC, 0x55)
    h.write(RF_RST, 0x07)
    h.wait_state(TRXOFF)
    assert h.read1(PC) == 0
    assert h.irqs()[:2] == [WAKEUP, WAKEUP]
    h.write(RF_RST, 0x03)  # only 07 resets
    h.write(PC, 0x5D)
    clock.advance(1e-3)
    assert h.read1(PC) == 0x5D


def test_reset_and_irq_lines_are_configurable() -> None:
    chip, h, _clock = make(
        reset_line=17,
        irq_line=27,
        spi_bus=1,
        spi_device=2,
        host={"spi": (1, 2), "rstn": 17, "irq": 27},
    )
    spidev, _gpiod = chip.modules()
    with pytest.raises(FileNotFoundError):
        spidev.SpiDev().open(0, 0)
    h.bring_up()
    assert h.state() == RX
    h.pulse_reset()
    h.wait_state(TRXOFF)
    assert h.pin() and h.irqs()[0] == WAKEUP


# --- SPI --------------------------------------------------------------------------------------


def test_spi_map_auto_increment_and_read_only_registers(bench: Any) -> None:
    chip, h, _clock = bench
    for addr in (0x004, 0x0FF, 0x101, 0x1FF, 0x1000, 0x27FF, 0x3FFF):
        h.write(addr, 0xA5)
        assert h.read1(addr) == 0  # unknown addresses read 00 and ignore writes
    h.write(RF09_CS, 0x08, 0xDD, 0x86, 0x21, 0x01)  # CS..CNM in one burst
    assert h.read(RF09_CS, 5) == [0x08, 0xDD, 0x86, 0x21, 0x01]
    for addr in (RF_PN, RF_VN, RF09_STATE, RF09_RSSI, RF09_EDV, RXFLL, RXFLH, FSKPHRRX):
        before = h.read1(addr)
        h.write(addr, before ^ 0x5A)
        assert h.read1(addr) == before, hex(addr)
    h.write(PC, 0xFF)
    assert h.read1(PC) == 0xFF & ~FCSOK  # FCSOK is read-only
    h.write(RF09_IRQS, 0xFF)  # IRQS is read-only too
    assert h.irqs()[0] == WAKEUP
    # the frame buffers auto-increment like registers
    data = list(range(256)) * 3
    h.write(TX_BUF, *data)
    assert h.read(TX_BUF, len(data)) == data
    assert h.read(TX_BUF + 255, 3) == [255, 0, 1]
    assert chip.register_writes()[-1] == (TX_BUF + len(data) - 1, data[-1])


def test_spidev_behaves_like_the_real_module(bench: Any) -> None:
    chip, _h, _clock = bench
    spidev, _ = chip.modules()
    dev = spidev.SpiDev()
    with pytest.raises(FileNotFoundError) as e:
        dev.open(0, 1)
    assert e.value.errno == errno.ENOENT
    assert "No such file or directory" in str(e.value)
    with pytest.raises(OSError) as e2:
        dev.max_speed_hz = 5_000_000  # not open
    assert e2.value.errno == errno.EBADF
    with pytest.raises(OSError):
        dev.xfer2([0x00, 0x0D, 0x00])
    dev.open(0, 0)
    with pytest.raises(TypeError):
        dev.mode = 4
    with pytest.raises(TypeError):
        dev.xfer2([0x00, 0x0D, 256])
    with pytest.raises(OverflowError):
        dev.xfer2([0] * 4097)
    dev.max_speed_hz = 5_000_000
    assert dev.xfer2([0x00, 0x0D, 0x00])[2] == 0x34
    # xfer releases chip select between octets: a 2-octet command never gets through
    assert dev.xfer([0x00, 0x0D, 0x00]) == [0, 0, 0]
    assert chip.violations == []
    dev.mode = 1
    assert dev.xfer2([0x00, 0x0D, 0x00])[2] != 0x34
    dev.mode = 0
    dev.max_speed_hz = 30_000_000
    dev.xfer2([0x00, 0x0D, 0x00])
    dev.xfer2([0x40, 0x0D, 0x00])  # mode bits 01: undefined
    assert {v.kind for v in chip.violations} == {"spi_mode", "spi_speed", "spi_command"}
    dev.close()
    dev.close()
    with pytest.raises(OSError):
        dev.readbytes(1)


def test_spi_transactions_take_time(bench: Any) -> None:
    chip, h, _clock = bench
    t = chip.now()
    h.read(TX_BUF, 98)  # 100 octets at 5 MHz = 160 us
    assert chip.now() - t == pytest.approx(160e-6, rel=0.05)


# --- IRQs -------------------------------------------------------------------------------------


def test_irq_status_clears_per_register_and_edges_follow_the_pin(bench: Any) -> None:
    chip, h, clock = bench
    h.irqs()
    h.req.read_edge_events()
    h.write(RF09_IRQM, TRXRDY | TRXERR)
    h.write(BBC0_IRQM, RXFS | RXFE | TXFE)
    h.cmd(TXPREP)
    assert h.req.wait_edge_events(timedelta(milliseconds=10))
    (ev,) = h.req.read_edge_events()
    assert ev.event_type == h.gpiod.EdgeEvent.Type.RISING_EDGE
    assert ev.line_offset == IRQ_LINE
    assert abs(ev.timestamp_ns / 1e9 - chip.now()) < 1e-3
    assert h.pin()
    assert h.read1(BBC0_IRQS) == 0  # another register: RF09's cause stays
    assert h.pin()
    assert h.read1(RF09_IRQS) == TRXRDY
    assert not h.pin()
    assert h.read1(RF09_IRQS) == 0
    # stays asserted until read, however long
    chip.fault_batlow()  # masked (IRQMM=0): not even latched
    h.write(RF09_IRQM, TRXRDY | TRXERR | BATLOW)
    chip.fault_batlow()
    clock.advance(5.0)
    assert h.pin()
    assert h.req.wait_edge_events(0)
    assert len(h.req.read_edge_events()) == 1
    assert h.read1(RF09_IRQS) == BATLOW
    # no IRQ: the wait times out on the (manual) clock
    t = clock.now()
    assert not h.req.wait_edge_events(0.25)
    assert clock.now() == pytest.approx(t + 0.25)


def test_irqmm_latches_masked_causes(bench: Any) -> None:
    chip, h, _clock = bench
    h.irqs()
    h.write(RF09_IRQM, TRXRDY)
    chip.fault_batlow()
    assert h.read1(RF09_IRQS) == 0
    h.write(RF_CFG, 0x08)  # IRQMM: masked causes still show in IRQS
    chip.fault_batlow()
    assert not h.pin()
    assert h.read1(RF09_IRQS) == BATLOW


def test_irq_polarity_and_active_low_lines(bench: Any) -> None:
    chip, h, _clock = bench
    h.irqs()
    h.write(RF09_IRQM, TRXRDY)
    h.write(RF_CFG, 0x04)  # IRQP: active low
    assert chip.irq_level  # idles high
    h.req.release()
    with pytest.raises(h.gpiod.RequestReleasedError):
        h.req.get_value(IRQ_LINE)
    h.req = h.request(active_low_irq=True)
    assert not h.pin()
    h.cmd(TXPREP)
    assert h.req.wait_edge_events(0.01)
    (ev,) = h.req.read_edge_events()
    assert ev.event_type == h.gpiod.EdgeEvent.Type.RISING_EDGE  # logical, as the kernel does
    assert not chip.irq_level and h.pin()
    assert h.read1(RF09_IRQS) == TRXRDY
    assert chip.irq_level and not h.pin()


def test_gpiod_chip_lookup_and_line_rules() -> None:
    chip, h, _clock = make(extra_gpio_chips={"/dev/gpiochip1": "raspberrypi-exp-gpio"})
    _, gpiod = chip.modules()
    assert gpiod.is_gpiochip_device("/dev/gpiochip0")
    assert not gpiod.is_gpiochip_device("/dev/gpiochip7")
    labels = {}
    for n in range(4):
        path = f"/dev/gpiochip{n}"
        if gpiod.is_gpiochip_device(path):
            with gpiod.Chip(path) as c:
                labels[c.get_info().label] = path
    assert labels == {"pinctrl-bcm2711": "/dev/gpiochip0", "raspberrypi-exp-gpio": "/dev/gpiochip1"}
    with pytest.raises(FileNotFoundError):
        gpiod.Chip("/dev/gpiochip7")
    with pytest.raises(OSError) as e:
        gpiod.request_lines("/dev/gpiochip0", consumer="x", config={IRQ_LINE: None})
    assert e.value.errno == errno.EBUSY
    with pytest.raises(OSError) as e:
        h.req.set_value(IRQ_LINE, h.L.Value.ACTIVE)
    assert e.value.errno == errno.EPERM
    h.req.release()
    req = gpiod.request_lines(
        "/dev/gpiochip0",
        consumer="ihd",
        config={
            ("GPIO24",): gpiod.LineSettings(
                direction=h.L.Direction.OUTPUT, output_value=h.L.Value.ACTIVE
            ),
            "GPIO25": gpiod.LineSettings(
                direction=h.L.Direction.INPUT, edge_detection=h.L.Edge.BOTH
            ),
        },
    )
    assert req.get_value(IRQ_LINE) == h.L.Value.ACTIVE  # WAKEUP from power-on
    h.read(RF09_IRQS, 4)
    assert [e.event_type.name for e in req.read_edge_events()] == ["FALLING_EDGE"]
    req.release()


# --- state machine ----------------------------------------------------------------------------


def test_transitions_trxrdy_queue_and_pll(bench: Any) -> None:
    chip, h, _clock = bench
    h.irqs()
    h.write(RF09_IRQM, TRXRDY)
    h.cmd(TXPREP)
    assert h.state() == TRANSITION
    assert not h.read1(RF09_PLL) & 0x02
    assert not h.pin()
    h.wait_state(TXPREP)
    assert h.read1(RF09_PLL) & 0x02
    assert h.pin() and h.read1(RF09_IRQS) == TRXRDY
    h.cmd(TRXOFF)
    h.wait_state(TRXOFF)
    h.cmd(TXPREP)
    h.cmd(RX)  # during the transition: queued
    h.cmd(NOP)
    h.wait_state(RX)
    h.cmd(TRXOFF)
    h.wait_state(TRXOFF)
    h.cmd(SLEEP)
    assert h.state() == RESET  # 7 = SLEEP
    h.cmd(RX)  # ignored while asleep
    assert h.state() == RESET
    h.cmd(TRXOFF)
    h.wait_state(TRXOFF)
    assert chip.violations == []


def test_transition_delay_is_configurable() -> None:
    _chip, h, clock = make(timing=Timing(trxoff_to_txprep_s=0.010))
    h.cmd(TXPREP)
    clock.advance(0.009)
    assert h.state() == TRANSITION
    clock.advance(0.002)
    assert h.state() == TXPREP


def test_channel_writes_outside_trxoff_txprep_are_violations(bench: Any) -> None:
    chip, h, _clock = bench
    h.write(PC, 0x55)
    h.write(FSKC0, 0xD6)
    h.write(RF09_CS, 0x08, 0xDD, 0x86, 0x00, 0x00)  # TRXOFF: fine
    assert chip.violations == []
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    h.write(RF09_CNL, 0x05)
    h.write(RF09_CNM, 0x00)  # TXPREP: fine, and CNM applies channel 5
    assert chip.violations == []
    assert chip.frequency_hz == 863_125_000 + 5 * 200_000
    assert chip.air_channel == 5
    h.write(RF09_CNL, 0x07)  # not applied until CNM is written
    assert chip.air_channel == 5
    h.cmd(RX)
    h.wait_state(RX)
    h.write(RF09_CNL, 0x00)
    h.write(RF09_CNM, 0x00)
    assert [(v.kind, v.detail) for v in chip.violations] == [
        ("channel_write", "0x107<-0x00 in RX"),
        ("channel_write", "0x108<-0x00 in RX"),
    ]
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    h.write(RF09_CCF0L, 0x00, 0x00, 0x00, 0x00)  # 0 Hz is no channel of the plan
    assert chip.air_channel is None
    assert len(chip.violations) == 2


def test_tx_only_from_txprep_ignores_cmd_and_returns(bench: Any) -> None:
    chip, h, _clock = bench
    h.irqs()
    h.write(BBC0_IRQM, TXFE)
    h.write(PC, 0x55)
    h.write(FSKPLL, 0x10)
    h.load_tx(data_frame(Address.short(0x0002)))
    h.cmd(TX)  # in TRXOFF: ignored and reported
    assert h.state() == TRXOFF
    assert [v.kind for v in chip.violations] == ["tx_command"]
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    h.cmd(TX)
    assert h.state() == TX
    ignored = chip.counters.cmd_ignored
    h.cmd(TRXOFF)  # ignored during TX
    assert h.state() == TX
    assert chip.counters.cmd_ignored == ignored + 1
    assert h.wait_for(2, TXFE)[2] & TXFE
    assert h.state() == TXPREP
    h.write(AMCS, 0x01)  # TX2RX
    h.cmd(TX)
    h.wait_for(2, TXFE)
    assert h.state() == RX
    assert chip.counters.tx_frames == 2


# --- RX from a simulated meter, filter and auto-ACK -----------------------------------------


def test_rx_of_a_meter_push_with_auto_ack(live: Any) -> None:
    chip, h, clock, world = live
    elec = world.meters[0]
    seen = h.wait_for(2, RXFE, timeout=2.0)
    assert seen[2] & RXAM  # matched filter 0
    assert abs(clock.now() - T0) < 0.05
    n = h.rx_len()
    frame_octets = h.read_frame()
    assert len(frame_octets) == n
    assert h.read1(PC) & FCSOK
    assert check_fcs(frame_octets, 4)
    frame = parse_mpdu(frame_octets, 4)
    assert frame.src == Address.from_eui64(elec.device.eui64)
    assert frame.dst == Address.from_eui64(world.display_eui64)
    assert frame.ack_request
    phr = h.read1(FSKPHRRX)
    assert phr & 0x04 and not phr & 0x80  # whitened, 32-bit FCS
    edv = h.read1(RF09_EDV) - 256
    assert -75 < edv < -40  # 14 dBm - 68 dB, with fading
    assert h.read(FBLL, 2) == [n & 0xFF, n >> 8]
    # the chip is sending the ACK: a re-arm now is ignored, the host waits for TXFE
    assert h.state() == TX
    h.cmd(RX)
    h.wait_for(2, TXFE)
    assert h.state() == TXPREP
    assert elec.counters.get("acked") == 1
    ack = chip.tx_log[-1]
    assert ack.ack
    assert ack.start - T0 > 0.001
    assert parse_mpdu(ack.psdu, 4).frame_type is FrameType.ACK
    assert ack.psdu[2] == frame.seq
    h.cmd(RX)
    h.wait_state(RX)
    h.wait_for(2, RXFE, timeout=11.0)
    assert frame.seq is not None
    assert parse_mpdu(h.read_frame(), 4).seq == (frame.seq + 1) & 0xFF  # no retry needed
    h.wait_for(2, TXFE)
    assert elec.counters.get("acked") == 2
    assert elec.counters.get("tx_retries", 0) == 0
    assert chip.counters.delivered == 2 and chip.counters.acks_sent == 2
    assert chip.counters.lost_in_chip == 0
    assert chip.violations == []
    assert len(chip.rearm_latencies_s) >= 1


def test_filter_rejects_other_addresses_and_the_meter_retries() -> None:
    world = demo_world(start=T0, joined=None)
    chip, h, _clock = make(world=world, start=T0 - 1)
    h.bring_up(display_eui64="0249484400FF0000")  # not the display the meters know
    seen = h.collect(1.5)
    assert seen[2] & RXFS and not seen[2] & RXFE  # started, then dropped by the filter
    elec = world.meters[0]
    assert chip.counters.filtered >= 1 and chip.counters.delivered == 0
    assert elec.counters.get("tx_retries", 0) >= 1 and "acked" not in elec.counters
    assert h.state() == RX  # a rejected frame does not end RX


def test_promiscuous_receives_without_ack() -> None:
    world = demo_world(start=T0, joined=None)
    chip, h, _clock = make(world=world, start=T0 - 1)
    h.bring_up(display_eui64="0249484400FF0000")
    h.write(AFC0, 0x11)  # filter 0 + PM
    seen = h.wait_for(2, RXFE, timeout=1.5)
    assert not seen[2] & RXAM
    assert h.state() == TXPREP
    assert chip.counters.acks_sent == 0


def test_short_address_pan_broadcast_and_frame_type_filter(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up(display_eui64="0249484400000000", short=0x0001, bbc_irqm=0x17)

    def deliver(mpdu: bytes) -> list[int] | None:
        h.irqs()
        chip.inject_rx(psdu(mpdu))
        got = h.wait_irq(0.05)
        seen = got or [0, 0, 0, 0]
        while got is not None and not seen[2] & RXFE:
            got = h.wait_irq(0.01)
            seen = [a | b for a, b in zip(seen, got or [0] * 4, strict=True)]
        if seen[2] & RXFE:
            h.wait_for(2, TXFE) if h.state() == TX else None
            h.cmd(RX)
            h.wait_state(RX)
            return seen
        return None

    to_us = deliver(data_frame(Address.short(0x0001)))
    assert to_us is not None and to_us[2] & RXAM
    assert chip.tx_log[-1].ack
    assert deliver(data_frame(Address.short(0x0002))) is None
    acks = chip.counters.acks_sent
    bcast = deliver(data_frame(Address.short(0xFFFF), ar=False))
    assert bcast is not None and chip.counters.acks_sent == acks
    other_pan = MacFrame.data(
        src=Address.short(5), dst=Address.short(1), dst_pan=0x1234, seq=1, payload=b"x"
    ).to_bytes()
    assert deliver(other_pan) is None
    h.write(AFFTM, 0x0D)  # beacon, ACK, command: no data frames
    assert deliver(data_frame(Address.short(0x0001))) is None
    h.write(AFFTM, 0x0F)
    h.write(AFC0, 0x00)  # filter off: everything, no RXAM, no ACK
    off = deliver(data_frame(Address.short(0x0002)))
    assert off is not None and not off[2] & RXAM
    assert chip.counters.filtered == 3
    assert chip.violations == []


def test_no_ack_for_a_bad_fcs_and_fcsfe_drops_it(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up(display_eui64="0249484400000000", pc=0x15, bbc_irqm=0x13 | AGCR)  # FCSFE off
    chip.inject_rx(psdu(data_frame(Address.short(1))), corrupt_fcs=True)
    seen = h.wait_for(2, RXFE, timeout=0.1)
    assert seen[2] & RXFE
    assert not h.read1(PC) & FCSOK
    assert not check_fcs(h.read_frame(), 4)
    assert h.state() == TXPREP and chip.counters.acks_sent == 0
    h.write(PC, 0x55)  # FCSFE on: a bad frame raises AGCR only, and RX goes on
    h.cmd(RX)
    h.wait_state(RX)
    h.irqs()
    frame = psdu(data_frame(Address.short(1), payload=b"a longer payload"))
    chip.inject_rx(frame, corrupt_fcs=True)
    seen = h.wait_for(2, AGCR, timeout=0.1)
    assert not seen[2] & RXFE
    assert h.read(FBLL, 2) == [len(frame), 0]  # FBL = the full length
    assert h.state() == RX
    assert chip.counters.fcs_dropped == 1 and chip.counters.delivered_bad_fcs == 1


def test_frame_on_another_channel_or_with_wrong_phy_is_not_heard(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up()
    chip.inject_rx(psdu(data_frame(Address.short(1))), channel=3)
    assert h.wait_irq(0.05) is None
    assert chip.counters.heard == 0
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    h.write(FSKC1, 0x01)  # 100 ksym/s: not the air's 50 kb/s
    h.cmd(RX)
    h.wait_state(RX)
    chip.inject_rx(psdu(data_frame(Address.short(1))))
    assert h.collect(0.05)[2] == 0
    assert chip.counters.lost_phy_config == 1


# --- TX -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pc", "fcs_len", "dw"), [(0x55, 4, 0x04), (0x5D, 2, 0x00)])
def test_tx_capture_with_the_chips_fcs(bench: Any, pc: int, fcs_len: int, dw: int) -> None:
    chip, h, _clock = bench
    h.bring_up()
    h.write(PC, pc)
    h.write(FSKPHRTX, dw)
    h.write(FSKPLL, 0x10)
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    h.irqs()
    mpdu = data_frame(Address.ext(0x0249484400010001), seq=42)
    h.load_tx(mpdu, fcs_len)
    h.cmd(TX)
    t_cmd = chip.now()
    h.wait_for(2, TXFE)
    (tx,) = chip.tx_log
    assert not tx.ack
    assert tx.psdu[:-fcs_len] == mpdu
    if fcs_len == 4:
        assert tx.psdu == psdu(mpdu, 4)
    else:
        assert tx.psdu[-2:] == crc16_kermit(mpdu).to_bytes(2, "little")
    p = parse_ppdu(tx.ppdu)
    assert p.preamble_octets == 16
    assert p.phr.fcs_len == fcs_len and p.phr.whitened == bool(dw)
    assert p.psdu == tx.psdu
    airtime = (16 + 2 + 2 + len(tx.psdu)) * 8 / 50_000
    assert tx.end - tx.start == pytest.approx(airtime, abs=1e-6)
    assert tx.end - t_cmd == pytest.approx(airtime + 32e-6, abs=20e-6)
    assert h.read1(PS) & 0x01 == 0


def test_tx_without_txafcs_sends_the_buffer_as_is(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up(pc=0x45)  # MR-FSK, BBEN, FCSFE; no TXAFCS
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    whole = psdu(data_frame(Address.short(2)))
    h.write(TX_BUF, *whole)
    h.write(TXFLL, len(whole), 0)
    h.cmd(TX)
    h.wait_for(2, TXFE)
    assert chip.tx_log[-1].psdu == whole


def test_tx_with_ack_from_a_simulated_meter(live: Any) -> None:
    chip, h, _clock, world = live
    elec = world.meters[0]
    h.wait_for(2, RXFE, timeout=2.0)  # the first push, and our ACK
    h.wait_for(2, TXFE)
    h.write(FSKPLL, 0x10)
    h.write(AMCS, 0x68 | 0x01)  # TX2RX: listen for the ACK at once
    h.write(AFFTM, 0x04)  # ACK frames only (radio-chips.md 1.7)
    mac = MacFrame.data(
        src=Address.short(0x0001),
        dst=Address.from_eui64(elec.device.eui64),
        dst_pan=PAN_ID,
        seq=99,
        payload=b"hello",
        ack_request=True,
    )
    h.load_tx(mac.to_bytes())
    h.cmd(TX)
    h.wait_for(2, TXFE)
    assert h.state() == RX
    h.wait_for(2, RXFE, timeout=0.02)
    ack = parse_mpdu(h.read_frame(), 4)
    assert ack.frame_type is FrameType.ACK and ack.seq == 99
    assert chip.tx_log[-1].psdu[:-4] == mac.to_bytes()
    assert chip.violations == []


# --- dead time ------------------------------------------------------------------------------


def test_frames_arriving_before_rx_is_rearmed_are_lost_in_the_chip(live: Any) -> None:
    chip, h, clock, _world = live
    h.write(AMCS, 0x00)  # no auto-ACK: the meter retries, each retry is a frame too
    h.wait_for(2, RXFE, timeout=2.0)
    assert h.state() == TXPREP
    h.read_frame()
    clock.advance(0.5)  # the host is slow: the meter's retries land in the dead time
    h.wait_state(TXPREP)
    assert chip.counters.lost_dead_time >= 1
    lost = chip.counters.lost_dead_time
    assert chip.counters.lost_in_chip == lost
    h.cmd(RX)
    h.wait_state(RX)
    h.wait_for(2, RXFE, timeout=10.0)
    assert chip.counters.delivered == 2


def test_rx_settle_time_lengthens_the_dead_time() -> None:
    def two_frames(timing: Timing) -> tuple[int, int]:
        chip, h, _clock = make(timing=timing)
        h.bring_up()
        first = psdu(data_frame(Address.short(1), seq=1))
        end = chip.inject_rx(first)
        chip.inject_rx(psdu(data_frame(Address.short(1), seq=2)), at=end + 0.0005)
        h.wait_for(2, RXFE, timeout=0.1)
        h.cmd(RX)  # re-armed at once
        got = h.wait_irq(0.1)
        while got is not None and not got[2] & RXFE:
            got = h.wait_irq(0.1)
        return chip.counters.delivered, chip.counters.lost_dead_time

    assert two_frames(Timing()) == (2, 0)
    assert two_frames(Timing(txprep_to_rx_s=0.001)) == (1, 1)


def test_a_frame_left_unread_is_overwritten(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up()
    end = chip.inject_rx(psdu(data_frame(Address.short(1), seq=1)))
    chip.inject_rx(psdu(data_frame(Address.short(1), seq=2)), at=end + 0.002)
    h.wait_for(2, RXFE, timeout=0.1)
    h.cmd(RX)  # re-armed before reading the buffer
    h.irqs()
    h.wait_for(2, RXFE, timeout=0.1)
    assert parse_mpdu(h.read_frame(), 4).seq == 2
    assert chip.counters.lost_overwritten == 1


def test_back_to_back_frames_need_a_fast_rearm() -> None:
    def run(host_delay_s: float) -> tuple[int, int]:
        chip, h, clock = make()
        h.bring_up()
        frames = [psdu(data_frame(Address.short(1), seq=i)) for i in range(6)]
        end = chip.inject_stream(frames)  # the channel's maximum rate
        seqs: list[int | None] = []
        while clock.now() < end + 0.01:
            got = h.wait_irq(end + 0.01 - clock.now())
            if got is None:
                break
            if got[2] & RXFE:
                clock.advance(host_delay_s)
                seqs.append(parse_mpdu(h.read_frame(), 4).seq)
                h.cmd(RX)
        assert chip.counters.heard == 6
        assert seqs == sorted(seqs, key=lambda q: q or 0)
        return chip.counters.delivered, chip.counters.lost_dead_time

    assert run(0.0) == (6, 0)  # re-armed within the next frame's preamble
    assert run(0.002) == (3, 3)  # a slow host misses every other frame


def test_deep_sleep_loses_registers_and_core_reset(bench: Any) -> None:
    _chip, h, _clock = bench
    h.irqs()
    h.write(PC, 0x55)
    h.write(RF24_CMD, SLEEP)
    h.cmd(SLEEP)  # both cores asleep: DEEP_SLEEP
    assert h.state() == RESET
    h.cmd(TRXOFF)
    h.wait_state(TRXOFF)
    assert h.read1(PC) == 0
    assert h.irqs()[:2] == [WAKEUP, WAKEUP]
    h.write(PC, 0x55)
    h.write(RF_CLKO, 0x00)
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    h.cmd(RESET)  # the core: RF09 and BBC0 registers revert, TRXOFF
    h.wait_state(TRXOFF)
    assert h.read1(PC) == 0
    assert h.irqs()[0] & WAKEUP


# --- CCA / ED --------------------------------------------------------------------------------


def test_energy_detection_and_cca(live: Any) -> None:
    chip, h, clock, _world = live
    h.write(RF09_IRQM, 0x12 | EDC)
    h.write(PC, 0x51)  # BBEN off for the measurement (radio-chips.md 1.4)
    h.irqs()
    h.write(RF09_EDC, 0x01)
    h.wait_for(0, EDC)
    assert h.read1(RF09_EDV) - 256 == -110  # the air's noise floor
    assert not h.read1(AMCS) & 0x04
    clock.set(T0 + 0.005)  # the electricity meter is on air now
    assert -75 < h.read1(RF09_RSSI) - 256 < -40
    h.write(RF09_EDC, 0x01)
    h.wait_for(0, EDC)
    assert -75 < h.read1(RF09_EDV) - 256 < -40
    assert h.read1(AMCS) & 0x04  # CCAED: busy
    clock.set(T0 + 0.1)
    h.state()
    # the baseband was off for that frame and the meter's retries (no ACK came)
    assert chip.counters.lost_not_listening == chip.counters.heard >= 2


def test_ccatx_sends_only_on_a_clear_channel(live: Any) -> None:
    chip, h, clock, _world = live
    h.write(RF09_IRQM, 0x12 | EDC)
    h.write(FSKPLL, 0x10)
    h.load_tx(data_frame(Address.short(9), ar=False))
    h.write(AMCS, 0x68 | 0x02)  # CCATX
    clock.set(T0 + 0.005)  # busy
    h.write(RF09_EDC, 0x01)
    h.wait_for(0, EDC)
    assert h.state() == RX and chip.counters.tx_frames == 0
    h.wait_for(2, RXFE)  # the meter's push, and the chip's ACK
    h.wait_for(2, TXFE)
    h.cmd(RX)
    h.wait_state(RX)
    clock.set(T0 + 0.5)  # clear
    h.irqs()
    h.write(RF09_EDC, 0x01)
    seen = h.wait_for(2, TXFE)
    assert seen[0] & EDC
    assert chip.counters.tx_frames == 1


# --- faults --------------------------------------------------------------------------------


def test_fault_buffer_overwritten_mid_read(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up()
    frame = psdu(data_frame(Address.short(1), payload=bytes(40)))
    chip.inject_rx(frame)
    h.wait_for(2, RXFE, timeout=0.1)
    n = h.rx_len()
    chip.fault_overwrite_during_read(after=4)
    got = bytes(h.read(RX_BUF, n))
    assert got[:4] == frame[:4] and got != frame
    assert not check_fcs(got, 4)
    assert chip.counters.lost_overwritten == 1
    h.cmd(RX)
    h.wait_state(RX)
    chip.inject_rx(frame)
    h.wait_for(2, RXFE, timeout=0.1)
    assert h.read_frame() == frame  # the next frame is whole


def test_fault_lost_rxfe(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up()
    chip.fault_lose_rxfe()
    chip.inject_rx(psdu(data_frame(Address.short(1))))
    seen = h.wait_for(2, RXFS, timeout=0.1)
    assert h.wait_irq(0.05) is None
    assert not seen[2] & RXFE
    assert h.state() == TXPREP  # the chip left RX all the same
    assert chip.counters.lost_rxfe == 1
    h.cmd(RX)
    h.wait_state(RX)
    chip.inject_rx(psdu(data_frame(Address.short(1), seq=8)))
    h.wait_for(2, RXFE, timeout=0.1)
    assert parse_mpdu(h.read_frame(), 4).seq == 8


def test_fault_tx_underrun(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up()
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    h.load_tx(data_frame(Address.short(2)))
    chip.fault_tx_underrun()
    h.cmd(TX)
    h.wait_for(2, TXFE)
    assert h.read1(PS) & 0x01
    tx = chip.tx_log[-1]
    assert tx.underrun
    with pytest.raises(PhyError):
        parse_ppdu(tx.ppdu)
    h.cmd(TX)
    h.wait_for(2, TXFE)
    assert not h.read1(PS) & 0x01
    assert parse_ppdu(chip.tx_log[-1].ppdu).psdu == chip.tx_log[-1].psdu


def test_fault_txfl_over_2047(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up()
    h.cmd(TXPREP)
    h.wait_state(TXPREP)
    h.irqs()
    h.write(TXFLL, 0x00, 0x08)  # 2048: the reserved bits are dropped, and reported
    assert [v.kind for v in chip.violations] == ["txflh_reserved"]
    assert h.read(TXFLL, 2) == [0x00, 0x00]
    h.load_tx(data_frame(Address.short(2)))
    chip.fault_txfl_overflow()
    h.cmd(TX)
    seen = h.wait_for(0, TRXERR)
    assert not seen[2] & TXFE
    assert h.read1(PS) & 0x01
    assert h.state() == TXPREP and not chip.tx_log


def test_fault_batlow_and_trxerr(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up(rf_irqm=0x12 | BATLOW)
    chip.fault_batlow()
    assert h.wait_irq(0.01) == [BATLOW, 0, 0, 0]
    chip.fault_trxerr()
    assert h.wait_irq(0.01) == [TRXERR, 0, 0, 0]
    assert h.state() == TXPREP  # RX was aborted
    chip.inject_rx(psdu(data_frame(Address.short(1))))
    assert h.wait_irq(0.05) is None
    assert chip.counters.lost_not_listening == 1
    h.cmd(RX)
    h.wait_state(RX)
    chip.inject_rx(psdu(data_frame(Address.short(1))))
    h.wait_for(2, RXFE, timeout=0.1)


def test_fault_spontaneous_reset(live: Any) -> None:
    chip, h, clock, world = live
    h.wait_for(2, RXFE, timeout=2.0)
    h.wait_for(2, TXFE)
    h.cmd(RX)
    h.wait_state(RX)
    clock.advance(1.0)
    chip.fault_reset()
    irqs = h.wait_irq(0.01)
    assert irqs is not None and irqs[0] == WAKEUP and irqs[1] == WAKEUP
    assert h.state() == TRXOFF
    assert h.read1(PC) == 0 and h.read1(AFC0) == 0 and h.read(RF09_CS, 5) == [0] * 5
    assert chip.air_channel is None
    assert chip.counters.resets == 2  # the host's bring-up, then this one
    # the driver reconfigures; the next push arrives
    h.bring_up(display_eui64=world.display_eui64)
    h.wait_for(2, RXFE, timeout=10.0)
    assert parse_mpdu(h.read_frame(), 4).src == Address.from_eui64(world.meters[0].device.eui64)


@pytest.mark.parametrize("stuck", [0x00, 0xFF])
def test_fault_miso_stuck(bench: Any, stuck: int) -> None:
    chip, h, _clock = bench
    chip.fault_miso_stuck(stuck)
    assert h.read1(RF_PN) == stuck
    h.write(PC, 0x55)  # MOSI still works
    chip.clear_faults()
    assert h.read1(RF_PN) == 0x34
    assert h.read1(PC) == 0x55


def test_fault_miso_bit_flips(bench: Any) -> None:
    chip, h, _clock = bench
    chip.fault_miso_bit_flips(0.05)
    reads = [h.read1(RF_PN) for _ in range(200)]
    assert 0x34 in reads and any(r != 0x34 for r in reads)
    chip.clear_faults()
    assert all(h.read1(RF_PN) == 0x34 for _ in range(50))


def test_fault_state_stuck_in_transition(bench: Any) -> None:
    chip, h, clock = bench
    h.bring_up()
    chip.fault_state_stuck()
    clock.advance(1.0)
    assert h.state() == TRANSITION
    h.cmd(TRXOFF)
    clock.advance(0.01)
    assert h.state() == TRANSITION
    chip.inject_rx(psdu(data_frame(Address.short(1))))
    assert h.wait_irq(0.05) is None
    h.pulse_reset()  # a reset clears it
    h.wait_state(TRXOFF)


@pytest.mark.parametrize("until_reset", [True, False])
def test_fault_irq_stuck_high(bench: Any, until_reset: bool) -> None:
    chip, h, _clock = bench
    h.irqs()
    chip.fault_irq_stuck_high(until_reset=until_reset)
    assert h.req.wait_edge_events(0.01)
    h.req.read_edge_events()
    assert h.pin() and h.irqs() == [0, 0, 0, 0]
    assert h.pin()
    h.pulse_reset()
    h.wait_state(TRXOFF)
    h.irqs()
    assert h.pin() is not until_reset
    chip.clear_faults()
    assert not h.pin()


def test_fault_edv_and_rssi_invalid(bench: Any) -> None:
    chip, h, _clock = bench
    h.bring_up()
    chip.inject_rx(psdu(data_frame(Address.short(1))), rssi_dbm=-71.2)
    h.wait_for(2, RXFE, timeout=0.1)
    chip.fault_edv_invalid(reads=2)
    assert [h.read1(RF09_EDV) for _ in range(3)] == [127, 127, (-71) & 0xFF]
    h.cmd(RX)
    h.wait_state(RX)
    assert h.read1(RF09_RSSI) - 256 == -110
    chip.fault_edv_invalid()
    assert h.read1(RF09_RSSI) == 127 and h.read1(RF09_EDV) == 127
    chip.clear_faults()
    assert h.read1(RF09_RSSI) - 256 == -110


def test_fault_bit_errors_on_air(live: Any) -> None:
    chip, h, _clock, world = live
    h.write(PC, 0x15)  # FCSFE off: the host sees bad frames
    h.write(AMCS, 0x00)
    chip.fault_air_bit_errors(1.0)
    bad = 0
    for _ in range(3):
        got = h.wait_irq(11.0)
        while got is not None and not got[2] & RXFE:
            got = h.wait_irq(11.0)
        assert got is not None
        bad += not h.read1(PC) & FCSOK
        assert not check_fcs(h.read_frame(), 4)
        h.cmd(RX)
        h.wait_state(RX)
    assert bad == 3
    assert world.air.counts("ihd")["corrupted"] >= 3
    chip.clear_faults()
    assert world.air.corruption == 0.0


# --- the pump on a (scaled) wall clock --------------------------------------------------------


def test_pump_on_a_scaled_clock() -> None:
    world = demo_world(start=T0, joined=None)
    clock = ScaledClock(T0 - 0.2, speed=20.0)
    chip = EmulatedAt86rf215(clock, world=world)
    try:
        h = Host(chip, clock)
        h.bring_up(display_eui64=world.display_eui64)
        chip.start_pump()
        assert any(t.name == "ihd-sim" for t in threading.enumerate())
        assert not h.req.wait_edge_events(0.001)
        seen = [0, 0, 0, 0]
        for _ in range(10):
            if not h.pin():
                assert h.req.wait_edge_events(2.0)  # wall seconds
            h.req.read_edge_events()
            seen = [a | b for a, b in zip(seen, h.irqs(), strict=True)]
            if seen[2] & RXFE:
                break
        assert seen[2] & RXFE
        assert parse_mpdu(h.read_frame(), 4).src.mode is AddrMode.EXTENDED  # type: ignore[union-attr]
    finally:
        chip.close()
    assert not any(t.name == "ihd-sim" and t.is_alive() for t in threading.enumerate())
