"""The AT86RF215 driver against minimal fakes written here (not the emulator).

The fakes: a register file with clear-on-read IRQS, CMD -> STATE, TRXRDY/EDC/TXFE on the
matching writes and a reset on the RSTN rising edge, behind a fake ``spidev`` module; and a
fake ``gpiod`` module whose request gives an edge only when the IRQ line goes from inactive
to active, as a real line does. The expected bring-up writes are typed in from
radio-chips.md section 1.6, not generated from the driver.
"""

from __future__ import annotations

import enum
import errno
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import wait_until

from ihd.clock import ManualClock
from ihd.diag import Diagnostics
from ihd.radio import at86rf215
from ihd.radio.at86rf215 import (
    BRINGUP_SEQUENCE,
    At86rf215Config,
    At86rf215Radio,
    bringup_sequence,
    filter_sequence,
    find_gpiochip,
    load_hardware_modules,
)
from ihd.radio.contract import RadioError

T0 = 1_700_000_000.0
IRQ, RST = 25, 24
GPIOCHIP = "/dev/gpiochip0"
EUI = "00:11:22:33:44:55:66:77"

# IRQ bits, from radio-chips.md 1.3
WAKEUP, TRXRDY, EDC, TRXERR = 0x01, 0x02, 0x04, 0x10
RXFS, RXFE, RXAM, TXFE = 0x01, 0x02, 0x04, 0x10


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# radio-chips.md 1.2 ("after any reset") and 1.6 steps 2..14, default config: channel 0,
# 4-octet FCS, whitening on, CCA threshold -84 dBm (0xAC), RF_VN 3.
GOLDEN = [
    (0x200, h("00")),  # RF24_IRQM = 0
    (0x400, h("00")),  # BBC1_IRQM = 0
    (0x203, h("01")),  # RF24_CMD = SLEEP
    (0x103, h("02")),  # 2. TRXOFF (poll STATE = 2)
    (0x007, h("00")),  #    RF_CLKO off
    (0x301, h("00")),  # 3. baseband off
    (0x109, h("00")),  # 4. RXBWC
    (0x10A, h("2a")),  #    RXDFE
    (0x112, h("c0")),  #    TXCUTC
    (0x113, h("98")),  # 5. TXDFE (RF_VN 3)
    (0x373, h("02 03 fc")),  # 6. FSKPE0..2
    (0x36D, h("a0")),  #    FSKRPCONT
    (0x36E, h("a0")),  #    FSKRPCOFFT
    (0x365, h("02")),  # 7. FSKPLL
    (0x362, h("c1")),  #    FSKC2 = OpenMote's 41 with PDTM (b7)
    (0x361, h("00")),  #    FSKC1
    (0x10C, h("20")),  # 8. AGCS
    (0x10B, h("01")),  #    AGCC
    (0x360, h("d6")),  # 9. FSKC0
    (0x372, h("03")),  #    FSKDM
    (0x36C, h("05")),  #    FSKRPC
    (0x36A, h("04")),  # 10. FSKPHRTX: SFD 0, DW 1
    (0x104, h("08 dd 86 00 00")),  # 11. CS, CCF0L/H, CNL, CNM
    (0x300, h("17")),  # 12. BBC0_IRQM: RXFS|RXFE|TXFE + RXAM
    (0x100, h("1E")),  #     RF09_IRQM: TRXRDY|TRXERR + EDC + BATLOW (ours: see it counted)
    (0x341, h("ac")),  #     AMEDT -84 dBm
    (0x301, h("55")),  # 13. PC: MR-FSK|BBEN|TXAFCS|FCSFE, 32-bit FCS
    (0x103, h("05")),  # 14. RX (poll STATE = 5)
]

# 1.8: filter 0 and auto-ACK for EUI, PAN 0x1D1D, short 0x0001
GOLDEN_FILTER = [
    (0x325, h("77 66 55 44 33 22 11 00")),  # MACEA0..7, least significant octet first
    (0x32D, h("1d 1d")),  # MACPID0F0, MACPID1F0
    (0x32F, h("01 00")),  # MACSHA0F0, MACSHA1F0
    (0x320, h("01")),  # AFC0.AFEN0
    (0x340, h("68")),  # AMCS = AACK|AACKDR|AACKFA
]


# --- fakes -------------------------------------------------------------------------------


class Direction(enum.Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Edge(enum.Enum):
    NONE = 1
    RISING = 2
    FALLING = 3
    BOTH = 4


class Value(enum.Enum):
    INACTIVE = 0
    ACTIVE = 1


@dataclass
class LineSettings:
    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    output_value: Value = Value.INACTIVE


class FakeChip:
    """Just enough AT86RF215 for the driver's unit tests."""

    def __init__(self, pn: int = 0x34, vn: int = 0x03) -> None:
        self.lock = threading.RLock()
        self.pn, self.vn = pn, vn
        self.log: list[tuple[str, int, bytes]] = []  # ("r"|"w", address, data)
        self.gpio: FakeRequest | None = None
        self.spi_fail: OSError | None = None  # raised by the next transfer
        self.during_irqs_read: tuple[int, int] | None = None  # latch (index, bits) mid-read
        self.cca_edv: list[int] = []  # EDV per ED measurement (then -100)
        self.tx_frames: list[bytes] = []
        self.edges = 0
        self.missing = False
        self.open_error: OSError | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.regs: dict[int, int] = {0x00D: self.pn, 0x00E: self.vn, 0x102: 2, 0x341: 0xAC}
            self.irqs = [WAKEUP, WAKEUP, 0, 0]
            self.stuck_line = False
            self.state_override: int | None = None
            self.fcs_ok = True

    # the IRQ pin: OR of the pending causes (the masks are not modelled)
    def line_active(self) -> bool:
        return self.stuck_line or any(self.irqs)

    def raise_irq(self, index: int, bits: int) -> None:
        with self.lock:
            was = self.line_active()
            self.irqs[index] |= bits
            if not was and self.gpio is not None:
                self.edges += 1
                self.gpio.edge()

    def spontaneous_reset(self) -> None:
        with self.lock:
            self.reset()
            if self.gpio is not None:
                self.edges += 1
                self.gpio.edge()

    def receive(
        self,
        psdu: bytes,
        *,
        phr: int = 0x04,
        fcs_ok: bool = True,
        edv: int = -60,
        rxam: bool = False,
        rxfl: int | None = None,
    ) -> None:
        with self.lock:
            for i, b in enumerate(psdu):
                self.regs[0x2000 + i] = b
            n = len(psdu) if rxfl is None else rxfl
            self.regs[0x304], self.regs[0x305] = n & 0xFF, n >> 8
            self.regs[0x36B] = phr
            self.regs[0x110] = edv & 0xFF
            self.fcs_ok = fcs_ok
            self.regs[0x102] = 3  # after RXFE the chip waits in TXPREP
            self.raise_irq(2, RXFS | (RXAM if rxam else 0) | RXFE)

    def writes(self) -> list[tuple[int, bytes]]:
        with self.lock:
            return [(a, d) for kind, a, d in self.log if kind == "w"]

    def xfer2(self, data: list[int]) -> list[int]:
        with self.lock:
            if self.spi_fail is not None:
                e, self.spi_fail = self.spi_fail, None
                raise e
            addr = (data[0] & 0x3F) << 8 | data[1]
            if data[0] & 0x80:
                payload = bytes(data[2:])
                self.log.append(("w", addr, payload))
                for i, b in enumerate(payload):
                    self.regs[addr + i] = b
                self._wrote(addr, payload)
                return [0] * len(data)
            out = []
            for i in range(len(data) - 2):
                out.append(self._read(addr + i))
                if addr + i == 0 and self.during_irqs_read is not None:
                    index, bits = self.during_irqs_read
                    self.during_irqs_read = None
                    self.irqs[index] |= bits  # the line is still active: no edge
            self.log.append(("r", addr, bytes(out)))
            return [0, 0, *out]

    def _read(self, a: int) -> int:
        if a <= 3:
            v, self.irqs[a] = self.irqs[a], 0
            return v
        if a == 0x102 and self.state_override is not None:
            return self.state_override
        if a == 0x301:
            return (self.regs.get(a, 0) & ~0x20) | (0x20 if self.fcs_ok else 0)
        return self.regs.get(a, 0)

    def _wrote(self, addr: int, payload: bytes) -> None:
        if addr == 0x103:
            cmd = payload[0]
            if cmd in (2, 3, 5):
                self.regs[0x102] = cmd
            if cmd == 3:
                self.raise_irq(0, TRXRDY)
            if cmd == 4:
                n = self.regs[0x306] | self.regs[0x307] << 8
                fcs = 2 if self.regs[0x301] & 0x08 else 4
                self.tx_frames.append(bytes(self.regs[0x2800 + i] for i in range(n - fcs)))
                self.regs[0x102] = 3
                self.raise_irq(2, TXFE)
        elif addr == 0x10E and payload[0] == 1:
            self.regs[0x110] = (self.cca_edv.pop(0) if self.cca_edv else -100) & 0xFF
            self.raise_irq(0, EDC)


class FakeSpiDev:
    def __init__(self, chip: FakeChip) -> None:
        self.chip = chip
        self.max_speed_hz = 0
        self.mode = -1
        self.opened: tuple[int, int] | None = None
        self.closed = False

    def open(self, bus: int, device: int) -> None:
        if self.chip.missing:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        if self.chip.open_error is not None:
            raise self.chip.open_error
        self.opened = (bus, device)

    def xfer2(self, data: list[int]) -> list[int]:
        assert self.opened is not None and self.max_speed_hz == 5_000_000 and self.mode == 0
        return self.chip.xfer2(data)

    def close(self) -> None:
        self.closed = True


class FakeRequest:
    def __init__(self, chip: FakeChip, path: str, consumer: str, config: dict[int, Any]) -> None:
        self.chip, self.path, self.consumer, self.config = chip, path, consumer, config
        self.cond = threading.Condition()
        self.pending = 0
        self.waits = 0
        self.values = {
            off: s.output_value for off, s in config.items() if s.direction is Direction.OUTPUT
        }
        self.ops: list[tuple[int, Value]] = []
        self.released = False

    def edge(self) -> None:
        with self.cond:
            self.pending += 1
            self.cond.notify_all()

    def wait_edge_events(self, timeout: float) -> bool:
        with self.cond:
            self.waits += 1
            if not self.pending:
                self.cond.wait(timeout)
            return self.pending > 0

    def read_edge_events(self) -> list[Any]:
        with self.cond:
            n, self.pending = self.pending, 0
        return [SimpleNamespace(timestamp_ns=time.monotonic_ns())] * n

    def get_value(self, offset: int) -> Value:
        if offset == IRQ:
            return Value.ACTIVE if self.chip.line_active() else Value.INACTIVE
        return self.values[offset]

    def set_value(self, offset: int, value: Value) -> None:
        before = self.values.get(offset)
        self.values[offset] = value
        self.ops.append((offset, value))
        if offset == RST and before is Value.INACTIVE and value is Value.ACTIVE:
            self.chip.reset()

    def release(self) -> None:
        self.released = True


class FakeGpiod:
    line = SimpleNamespace(Direction=Direction, Edge=Edge, Value=Value)
    LineSettings = LineSettings

    def __init__(self, chip: FakeChip, labels: dict[str, str] | None = None) -> None:
        self.chip = chip
        self.labels = labels or {GPIOCHIP: "pinctrl-bcm2711"}
        self.requests: list[FakeRequest] = []

    def request_lines(self, path: str, consumer: str, config: dict[int, Any]) -> FakeRequest:
        req = FakeRequest(self.chip, path, consumer, config)
        self.chip.gpio = req
        self.requests.append(req)
        return req

    def is_gpiochip_device(self, path: str) -> bool:
        return path in self.labels

    def Chip(self, path: str) -> Any:
        label = self.labels[path]
        return SimpleNamespace(
            get_info=lambda: SimpleNamespace(label=label, name=path), close=lambda: None
        )


class ZeroRng(random.Random):
    """Backoffs of zero unit periods: CSMA runs its CCAs back to back."""

    def randint(self, a: int, b: int) -> int:
        return a


@dataclass
class Rig:
    radio: At86rf215Radio
    chip: FakeChip
    spi: list[FakeSpiDev]
    gpiod: FakeGpiod
    clock: ManualClock
    diag: Diagnostics

    @property
    def req(self) -> FakeRequest:
        return self.gpiod.requests[-1]

    def count(self, name: str) -> int:
        return self.diag.counter(name)

    def wait_count(self, name: str, n: int = 1) -> None:
        assert wait_until(lambda: self.diag.counter(name) >= n, 5), f"{name} never reached {n}"


def cfg(**kw: Any) -> At86rf215Config:
    kw.setdefault("gpio_chip", GPIOCHIP)
    kw.setdefault("irq_wait_s", 0.02)
    return At86rf215Config(**kw)


@pytest.fixture
def make() -> Iterator[Callable[..., Rig]]:
    radios: list[At86rf215Radio] = []

    def build(
        config: At86rf215Config | None = None,
        *,
        chip: FakeChip | None = None,
        addresses: bool = False,
        open_: bool = True,
        rng: random.Random | None = None,
    ) -> Rig:
        chip = chip or FakeChip()
        spis: list[FakeSpiDev] = []

        def spidev() -> FakeSpiDev:
            spis.append(FakeSpiDev(chip))
            return spis[-1]

        gpiod = FakeGpiod(chip)
        clock = ManualClock(T0)
        diag = Diagnostics()
        radio = At86rf215Radio(
            config or cfg(),
            clock=clock,
            diag=diag,
            spidev_module=SimpleNamespace(SpiDev=spidev),
            gpiod_module=gpiod,
            rng=rng or ZeroRng(),
        )
        radios.append(radio)
        if addresses:
            radio.set_addresses(eui64=EUI, pan_id=0x1D1D, short=0x0001)
        if open_:
            radio.open()
        return Rig(radio, chip, spis, gpiod, clock, diag)

    yield build
    for r in radios:
        r.close()


def data_frame(payload: bytes = b"hello", *, ack: bool = False, fcs_len: int = 4) -> bytes:
    fc0 = 0x41 | (0x20 if ack else 0)  # data, PAN ID compression, AR
    mhr = bytes([fc0, 0x88, 0x07, 0x1D, 0x1D, 0x01, 0x00, 0x02, 0x00])
    return mhr + payload + b"\xaa" * fcs_len


# --- bring-up ----------------------------------------------------------------------------


def test_bringup_writes_match_radio_chips_1_6(make: Callable[..., Rig]) -> None:
    rig = make()
    assert rig.chip.writes() == GOLDEN
    assert rig.spi[0].opened == (0, 0)
    # RSTN pulsed low then high before anything else, on the configured lines and chip
    assert rig.req.ops[:2] == [(RST, Value.INACTIVE), (RST, Value.ACTIVE)]
    assert rig.req.path == GPIOCHIP and rig.req.consumer == "ihd"
    irq, rst = rig.req.config[IRQ], rig.req.config[RST]
    assert (irq.direction, irq.edge_detection) == (Direction.INPUT, Edge.RISING)
    assert (rst.direction, rst.output_value) == (Direction.OUTPUT, Value.ACTIVE)
    # before the first write: STATE polled to TRXOFF, part number read, IRQS cleared
    first_write = next(i for i, (k, _, _) in enumerate(rig.chip.log) if k == "w")
    reads = [(a, len(d)) for k, a, d in rig.chip.log[:first_write]]
    assert reads == [(0x102, 1), (0x00D, 2), (0x000, 4)]
    assert rig.diag.state("radio.status") == "ok"
    assert rig.diag.state("radio.part") == "AT86RF215 (RF_PN 0x34, RF_VN 0x03)"
    assert any(t.name == "ihd-radio-irq" and t.is_alive() for t in threading.enumerate())


def test_bringup_sequence_data_is_the_golden_list() -> None:
    assert list(BRINGUP_SEQUENCE) == GOLDEN
    assert filter_sequence(EUI, 0x1D1D, 0x0001) == GOLDEN_FILTER
    other = bringup_sequence(At86rf215Config(channel=33, fcs_len=2, whitening=False), vn=1)
    assert [a for a, _ in other] == [a for a, _ in GOLDEN]
    changed = [(a, d) for (a, d), (_, g) in zip(other, GOLDEN, strict=True) if d != g]
    assert changed == [
        (0x113, h("9a")),
        (0x36A, h("00")),
        (0x104, h("08 dd 86 21 00")),
        (0x301, h("5d")),
    ]


def test_filter_and_auto_ack_follow_the_bringup(make: Callable[..., Rig]) -> None:
    rig = make(addresses=True)
    assert rig.chip.writes() == GOLDEN + GOLDEN_FILTER
    # changed while running: written at once
    rig.radio.set_addresses(eui64="0011223344556677", pan_id=None, short=None)
    assert rig.chip.writes()[-5:-2] == [
        (0x325, h("77 66 55 44 33 22 11 00")),
        (0x32D, h("ff ff")),
        (0x32F, h("fe ff")),
    ]


@pytest.mark.parametrize(
    ("pn", "words"),
    [
        (0x00, ["RF_PN reads 0x00", "MISO stuck low", "/dev/spidev0.0"]),
        (0xFF, ["RF_PN reads 0xFF", "MISO stuck high"]),
        (0x35, ["AT86RF215IQ", "0x35", "no baseband"]),
        (0x12, ["RF_PN reads 0x12", "expected 0x34 (AT86RF215) or 0x36 (AT86RF215M)"]),
    ],
)
def test_part_number_check(make: Callable[..., Rig], pn: int, words: list[str]) -> None:
    rig = make(chip=FakeChip(pn=pn), open_=False)
    with pytest.raises(RadioError) as e:
        rig.radio.open()
    for w in words:
        assert w in str(e.value)
    assert rig.spi[0].closed and rig.req.released  # nothing left open
    assert not any(t.name == "ihd-radio-irq" for t in threading.enumerate())
    with pytest.raises(RadioError, match=r"RF_PN|AT86RF215IQ"):  # receive() says the same
        rig.radio.receive(0.01)


def test_am_variant_accepted_and_chip_type_checked(make: Callable[..., Rig]) -> None:
    rig = make(chip=FakeChip(pn=0x36))
    assert rig.diag.state("radio.part") == "AT86RF215M (RF_PN 0x36, RF_VN 0x03)"
    rig = make(cfg(chip="at86rf215m"), chip=FakeChip(pn=0x34), open_=False)
    with pytest.raises(RadioError, match=r"RF_PN reads 0x34 .*expected 0x36 \(AT86RF215M\)"):
        rig.radio.open()


def test_chip_that_never_reaches_trxoff(make: Callable[..., Rig]) -> None:
    chip = FakeChip()
    rig = make(chip=chip, open_=False)
    orig = chip.reset

    def reset_stuck() -> None:
        orig()
        chip.state_override = 6

    chip.reset = reset_stuck  # type: ignore[method-assign]
    with pytest.raises(RadioError, match=r"did not reach TRXOFF.*0x06"):
        rig.radio.open()


def test_missing_spi_device_is_a_clear_error(make: Callable[..., Rig]) -> None:
    chip = FakeChip()
    chip.missing = True
    rig = make(chip=chip, open_=False)
    with pytest.raises(RadioError) as e:
        rig.radio.open()
    assert str(e.value).startswith(
        "SPI device /dev/spidev0.0 not found: enable SPI (dtparam=spi=on"
    )
    assert e.value.__cause__ is None and e.value.__suppress_context__
    chip.open_error = PermissionError(errno.EACCES, "Permission denied")
    chip.missing = False
    with pytest.raises(RadioError, match=r"no permission to open /dev/spidev0\.0.*spi group"):
        rig.radio.open()


def test_missing_spi_device_with_the_real_spidev_module() -> None:
    spidev = pytest.importorskip("spidev")
    radio = At86rf215Radio(
        cfg(spi_device="/dev/spidev9.7"),
        clock=ManualClock(T0),
        spidev_module=spidev,
        gpiod_module=FakeGpiod(FakeChip()),
    )
    with pytest.raises(RadioError, match=r"^SPI device /dev/spidev9.7 not found: enable SPI"):
        radio.open()


def test_missing_pi_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spidev", None)
    with pytest.raises(RadioError, match=r"pip install 'ihd\[pi\]'"):
        load_hardware_modules()
    with pytest.raises(RadioError, match="spidev and gpiod"):
        At86rf215Radio(cfg(), clock=ManualClock(T0)).open()


def test_gpiochip_found_by_label(tmp_path: Any) -> None:
    for n in range(3):
        (tmp_path / f"gpiochip{n}").touch()
    labels = {
        f"{tmp_path}/gpiochip0": "gpio-brcmstb@107d508500",
        f"{tmp_path}/gpiochip1": "pinctrl-rp1",
    }
    gpiod = FakeGpiod(FakeChip(), labels)
    assert find_gpiochip(gpiod, str(tmp_path)) == f"{tmp_path}/gpiochip1"
    del labels[f"{tmp_path}/gpiochip1"]
    with pytest.raises(RadioError, match="gpio-brcmstb@107d508500"):
        find_gpiochip(gpiod, str(tmp_path))


@pytest.mark.parametrize(
    "kw",
    [
        {"spi_device": "spidev0.0"},
        {"channel": 34},
        {"fcs_len": 3},
        {"chip": "cc1200"},
        {"irq_line": 24},
        {"cca_threshold_dbm": 10},
    ],
)
def test_config_validation(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        At86rf215Config(**kw)


def test_defaults_match_the_wiring_table() -> None:
    c = At86rf215Config()
    assert (c.spi_device, c.irq_line, c.reset_line, c.gpio_chip) == ("/dev/spidev0.0", 25, 24, None)
    assert c.spi_speed_hz == 5_000_000


# --- the IRQ thread and RX ---------------------------------------------------------------


def test_rx_reads_the_buffer_and_rearms(make: Callable[..., Rig]) -> None:
    rig = make()
    n_log = len(rig.chip.log)
    psdu = data_frame()
    rig.chip.receive(psdu, phr=0x04, edv=-71)
    frame = rig.radio.receive(2)
    assert frame is not None
    assert frame.psdu == psdu
    info = frame.info
    assert (info.fcs_len, info.whitened, info.fcs_ok, info.rssi_dbm) == (4, True, True, -71.0)
    assert (info.channel, info.lqi, info.timestamp) == (0, None, rig.clock.now())
    # IRQS burst, RXFL, the frame buffer, FSKPHRRX, PC, EDV, then RX
    ops = [(k, a, len(d)) for k, a, d in rig.chip.log[n_log:]]
    assert ops == [
        ("r", 0x000, 4),
        ("r", 0x304, 2),
        ("r", 0x2000, len(psdu)),
        ("r", 0x36B, 1),
        ("r", 0x301, 1),
        ("r", 0x110, 1),
        ("w", 0x103, 1),
    ]
    assert rig.chip.writes()[-1] == (0x103, h("05"))
    assert rig.chip.regs[0x102] == 5
    assert rig.count("radio.rx_delivered") == 1
    stats = rig.radio.stats()
    assert stats.frames_delivered == 1 and len(stats.latency_s) == 1
    assert 0 <= stats.latency_s[0] < 1


def test_rx_fcs_length_and_whitening_from_the_phr(make: Callable[..., Rig]) -> None:
    rig = make()
    psdu = data_frame(fcs_len=2)
    rig.chip.receive(psdu, phr=0x80, edv=127)  # FCST=1: 2 octets; DW=0; EDV invalid
    frame = rig.radio.receive(2)
    assert frame is not None and frame.psdu == psdu
    assert (frame.info.fcs_len, frame.info.whitened, frame.info.rssi_dbm) == (2, False, None)


def test_rx_bad_fcs_is_counted_not_delivered(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.chip.receive(data_frame(), fcs_ok=False)
    rig.wait_count("radio.fcs_error")
    assert rig.radio.receive(0.05) is None
    assert rig.chip.regs[0x102] == 5  # listening again


def test_rx_queue_full_counts_frames_lost_in_driver(make: Callable[..., Rig]) -> None:
    rig = make(cfg(rx_queue_size=1))
    for seq in range(3):
        rig.chip.receive(data_frame(bytes([seq])))
        assert wait_until(lambda: rig.chip.regs[0x102] == 5, 5)
    rig.wait_count("radio.rx_queue_full", 2)
    stats = rig.radio.stats()
    assert (stats.frames_delivered, stats.frames_lost_driver) == (1, 2)


def test_irq_line_still_active_is_read_again_without_an_edge(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.wait_count("radio.irq_rereads", 0)
    edges = rig.chip.edges
    # while the driver reads IRQS, RF09 latches TRXERR after its byte was read: BBC0 still
    # holds RXFE, so the line never drops and no new edge comes
    rig.chip.during_irqs_read = (0, TRXERR)
    rig.chip.receive(data_frame())
    assert rig.radio.receive(2) is not None
    rig.wait_count("radio.trx_error")
    assert rig.chip.edges == edges + 1
    assert rig.count("radio.irq_rereads") >= 1
    assert not rig.chip.line_active()


def test_irq_thread_blocks_instead_of_polling(make: Callable[..., Rig]) -> None:
    rig = make(cfg(irq_wait_s=0.05))
    waits = rig.req.waits
    xfers = len(rig.chip.log)
    time.sleep(0.3)
    assert rig.req.waits - waits <= 10  # about 6 timeouts of 50 ms
    assert len(rig.chip.log) == xfers  # and no SPI traffic while nothing happens


def test_auto_ack_rearms_rx_after_the_chips_ack(make: Callable[..., Rig]) -> None:
    rig = make(addresses=True)
    rig.chip.receive(data_frame(ack=True), rxam=True)
    assert rig.radio.receive(2) is not None
    time.sleep(0.05)
    assert rig.chip.regs[0x102] == 3  # no RX command while the chip sends the ACK
    rig.chip.regs[0x102] = 4
    rig.chip.raise_irq(2, TXFE)  # the ACK went out
    rig.wait_count("radio.acks_sent")
    assert wait_until(lambda: rig.chip.regs[0x102] == 5, 5)
    # an AR frame that did not match the filter (no RXAM) gets no ACK: RX at once
    rig.chip.receive(data_frame(ack=True), rxam=False)
    assert rig.radio.receive(2) is not None
    assert wait_until(lambda: rig.chip.regs[0x102] == 5, 5)


def test_missing_auto_ack_rearms_after_a_deadline(make: Callable[..., Rig]) -> None:
    rig = make(addresses=True)
    rig.chip.receive(data_frame(ack=True), rxam=True)
    assert rig.radio.receive(2) is not None
    rig.clock.advance(0.1)
    rig.wait_count("radio.aack_missing")
    assert wait_until(lambda: rig.chip.regs[0x102] == 5, 5)


# --- TX ----------------------------------------------------------------------------------


def test_transmit_cca_then_tx(make: Callable[..., Rig]) -> None:
    rig = make()
    n_writes = len(rig.chip.writes())
    psdu = data_frame(b"ping")
    rig.radio.transmit(psdu, fcs_len=4)
    n = len(psdu)
    assert (
        rig.chip.writes()[n_writes:]
        == [
            (0x301, h("51")),  # CCA: baseband off,
            (0x103, h("05")),  # RX,
            (0x10E, h("01")),  # single energy measurement (then the EDC IRQ, EDV -100 dBm)
            (0x301, h("55")),  # baseband on
            (0x103, h("03")),  # TXPREP, then TRXRDY
            (0x2800, psdu[:-4]),  # the PSDU without FCS
            (0x306, bytes([n, 0])),  # TXFL counts the FCS
            (0x365, h("10")),  # long TX preamble
            (0x103, h("04")),  # TX, then TXFE
            (0x365, h("02")),  # RX preamble again
            (0x103, h("05")),  # RX
        ]
    )
    assert rig.chip.tx_frames == [psdu[:-4]]
    assert rig.count("radio.tx_frames") == 1
    assert rig.chip.regs[0x102] == 5


def test_transmit_with_the_other_fcs_length_switches_pc(make: Callable[..., Rig]) -> None:
    rig = make()
    n_writes = len(rig.chip.writes())
    psdu = data_frame(b"x", fcs_len=2)
    rig.radio.transmit(psdu, fcs_len=2)
    w = rig.chip.writes()[n_writes:]
    assert (0x301, h("5d")) in w and w[-2:] == [(0x301, h("55")), (0x103, h("05"))]
    assert rig.chip.tx_frames == [psdu[:-2]]


def test_transmit_gives_up_on_a_busy_channel(make: Callable[..., Rig]) -> None:
    rig = make(rng=random.Random(1))
    rig.chip.cca_edv = [-40] * 5
    t = rig.clock.now()
    with pytest.raises(RadioError, match="channel busy: CSMA-CA gave up after 5"):
        rig.radio.transmit(data_frame(), fcs_len=4)
    assert rig.count("radio.csma_failure") == 1 and rig.count("radio.csma_backoffs") == 4
    assert rig.chip.tx_frames == []
    assert rig.clock.now() > t  # backed off on the injected clock
    assert rig.chip.regs[0x301] == 0x55  # baseband back on, still listening
    rig.chip.cca_edv = [-40, -40]
    rig.radio.transmit(data_frame(), fcs_len=4)  # clear at the third CCA
    assert rig.count("radio.csma_backoffs") == 6 and len(rig.chip.tx_frames) == 1


def test_transmit_argument_and_state_errors(make: Callable[..., Rig]) -> None:
    rig = make(open_=False)
    with pytest.raises(RadioError, match="not open"):
        rig.radio.transmit(data_frame(), fcs_len=4)
    with pytest.raises(ValueError):
        rig.radio.transmit(b"\x01\x02", fcs_len=4)
    with pytest.raises(ValueError):
        rig.radio.transmit(data_frame(), fcs_len=3)


# --- recovery ----------------------------------------------------------------------------


def bringups(rig: Rig) -> int:
    return rig.chip.writes().count((0x373, h("02 03 fc")))


def assert_recovered(rig: Rig, counter: str) -> None:
    rig.wait_count(counter)
    rig.wait_count("radio.reinit")
    assert bringups(rig) == 2
    assert rig.diag.state("radio.status") == "ok"
    assert [r.counter for r in rig.radio.stats().recoveries] == [counter]
    # and it keeps receiving
    while rig.radio.receive(0) is not None:
        pass
    psdu = data_frame(b"after")
    rig.chip.receive(psdu)
    frame = rig.radio.receive(2)
    assert frame is not None and frame.psdu == psdu


def test_recovers_from_an_spi_error(make: Callable[..., Rig]) -> None:
    rig = make(addresses=True)
    rig.chip.spi_fail = OSError(errno.EIO, "Input/output error")
    rig.chip.receive(data_frame())
    assert_recovered(rig, "radio.spi_error")
    full = GOLDEN + GOLDEN_FILTER  # the second bring-up programs the filter again
    w = rig.chip.writes()
    assert sum(w[i : i + len(full)] == full for i in range(len(w))) == 2


def test_recovers_from_a_chip_reset(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.chip.spontaneous_reset()  # WAKEUP, configuration lost
    assert_recovered(rig, "radio.chip_reset")
    assert rig.req.ops.count((RST, Value.INACTIVE)) == 2


@pytest.mark.parametrize("rxfl", [0, 0x900])
def test_recovers_from_an_impossible_frame_length(make: Callable[..., Rig], rxfl: int) -> None:
    rig = make()
    rig.chip.receive(data_frame(), rxfl=rxfl)
    assert_recovered(rig, "radio.rx_bad_length")


def test_recovers_from_a_stuck_irq_line_with_rstn(make: Callable[..., Rig]) -> None:
    rig = make()
    with rig.chip.lock:
        rig.chip.stuck_line = True
        rig.req.edge()
    assert_recovered(rig, "radio.irq_stuck")
    assert rig.req.ops.count((RST, Value.INACTIVE)) == 2


def test_watchdog_rearms_rx_after_a_lost_rxfe(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.chip.regs[0x102] = 3  # a frame ended in TXPREP but its RXFE never came
    rig.clock.advance(0.2)
    time.sleep(0.1)
    assert rig.count("radio.watchdog_rearm") == 0  # low rate: not yet
    rig.clock.advance(0.5)
    rig.wait_count("radio.watchdog_rearm")
    assert rig.chip.regs[0x102] == 5 and bringups(rig) == 1


def test_watchdog_reinitialises_a_chip_found_in_trxoff(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.chip.regs[0x102] = 2
    rig.clock.advance(1)
    assert_recovered(rig, "radio.unexpected_state")


def test_recovers_from_state_stuck_in_transition(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.chip.state_override = 6  # cleared by the RSTN reset
    rig.clock.advance(1)
    assert_recovered(rig, "radio.state_stuck")


def test_keeps_retrying_while_the_chip_does_not_answer(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.chip.pn = 0x00  # MISO stuck low from the next reset on
    rig.chip.spontaneous_reset()
    rig.wait_count("radio.reinit_failed")
    with pytest.raises(RadioError, match=r"not answering.*RF_PN reads 0x00"):
        rig.radio.receive(0.01)
    assert str(rig.diag.state("radio.status")).startswith("error: ")
    rig.chip.pn = 0x34
    rig.wait_count("radio.reinit")
    assert rig.diag.state("radio.status") == "ok"
    assert rig.radio.receive(0.01) is None


def test_spi_error_during_transmit_raises_and_recovers(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.chip.spi_fail = OSError(errno.EIO, "Input/output error")
    with pytest.raises(RadioError, match="SPI transfer failed"):
        rig.radio.transmit(data_frame(), fcs_len=4)
    assert_recovered(rig, "radio.spi_error")
    rig.radio.transmit(data_frame(), fcs_len=4)
    assert len(rig.chip.tx_frames) == 1


def test_close_releases_everything(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.radio.close()
    assert rig.chip.writes()[-1] == (0x103, h("02"))  # TRXOFF
    assert rig.spi[0].closed and rig.req.released
    assert not any(t.name == "ihd-radio-irq" for t in threading.enumerate())
    rig.radio.close()
    with pytest.raises(RadioError, match="not open"):
        rig.radio.receive(0)


def test_open_again_after_close(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.radio.close()
    rig.radio.open()
    assert bringups(rig) == 2 and rig.req.ops[-2:] == [(RST, Value.INACTIVE), (RST, Value.ACTIVE)]
    psdu = data_frame()
    rig.chip.receive(psdu)
    frame = rig.radio.receive(2)
    assert frame is not None and frame.psdu == psdu


def test_receive_retries_a_failed_open(
    make: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(at86rf215, "REOPEN_S", 0.0)
    chip = FakeChip()
    chip.missing = True
    rig = make(chip=chip, open_=False)
    with pytest.raises(RadioError, match="not found"):
        rig.radio.open()
    with pytest.raises(RadioError, match="not found"):  # what the pipeline logs and shows
        rig.radio.receive(0.01)
    chip.missing = False  # SPI enabled, say
    assert rig.radio.receive(0.01) is None
    assert rig.diag.state("radio.status") == "ok"


def test_frame_no_longer_than_its_fcs_is_dropped_without_reinit(make: Callable[..., Rig]) -> None:
    rig = make()
    rig.chip.receive(b"\x02\x00\xaa\xbb", phr=0x00)  # 4 octets, all FCS
    rig.wait_count("radio.rx_too_short")
    assert rig.radio.receive(0.05) is None
    assert rig.count("radio.reinit") == 0 and rig.chip.regs[0x102] == 5
