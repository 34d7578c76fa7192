"""Fake ``spidev`` and ``gpiod`` (libgpiod v2) modules for chip emulators.

A driver is given module objects and calls on them exactly what it calls on the real
libraries; here those calls land in a chip model instead of ``/dev/spidev0.0`` and
``/dev/gpiochip0``. What is faithful, because drivers trip over it on real hardware:

* ``spidev``: ``SpiDev().open(bus, device)`` raises ``FileNotFoundError`` (errno 2) for a
  device the fake does not have; attributes and transfers on a closed device raise
  ``OSError`` (EBADF); ``mode`` must be 0..3 (``TypeError``); lists longer than 4096 octets
  raise ``OverflowError``. ``xfer2``/``xfer3``/``readbytes``/``writebytes`` are one
  chip-select-low transaction each; ``xfer`` releases chip select between octets, as the
  real one does, so a 2-octet-command chip sees one-octet transactions.
* ``gpiod`` (v2 API): ``request_lines(path, config=..., consumer=...)`` with
  ``LineSettings(direction, edge_detection, active_low, output_value, ...)``;
  ``LineRequest.get_value/set_value/wait_edge_events/read_edge_events/release``; a line
  held by another request raises ``OSError`` (EBUSY); setting an input raises ``OSError``
  (EPERM); a released request raises ``RequestReleasedError``; ``Chip(path)`` of a
  missing path raises ``FileNotFoundError``. Edge events follow the *logical* value, so
  with ``active_low=True`` a physical falling edge is reported as ``RISING_EDGE``, as the
  kernel's v2 uAPI does. Each request buffers at most ``event_buffer_size`` events (default
  16 per line, like the kernel); more are dropped.

Differences, on purpose:

* ``EdgeEvent.timestamp_ns`` is the emulator's clock (the injected ``Clock``, POSIX
  seconds × 10^9), not ``CLOCK_MONOTONIC``, so tests on a ``ManualClock`` get exact times.
* ``wait_edge_events(timeout)`` goes through :meth:`GpioHost.wait`: with a background
  pump it waits on the wall; without one it *drives* the simulation up to ``timeout``
  seconds of the host's clock (a ``ManualClock`` moves forward), so single-threaded tests
  are deterministic. ``read_edge_events`` with nothing pending waits the same way (the
  real one blocks) and returns ``[]`` only if nothing can ever happen.

Enums (``line.Value`` etc.) are this module's own, with the real names and values, so the
fakes work where libgpiod is not installed.
"""

from __future__ import annotations

import errno
import os
import threading
import types
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any, Protocol

__all__ = [
    "EdgeEvent",
    "FakeGpioChip",
    "GpioHost",
    "LineSettings",
    "SpiTarget",
    "make_gpiod_module",
    "make_spidev_module",
]

SPIDEV_MAX_LIST = 4096  # py-spidev refuses longer lists in xfer/xfer2/readbytes/writebytes
SPIDEV_DEFAULT_SPEED_HZ = 125_000_000  # what a Pi's spidev reports before anyone sets it


def _enoent(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


# --- spidev ----------------------------------------------------------------------------


class SpiTarget(Protocol):
    """What sits behind one ``/dev/spidevB.D``: one full-duplex transaction at a time."""

    def spi_transfer(
        self,
        data: list[int],
        *,
        speed_hz: int,
        mode: int,
        bits_per_word: int,
        lsbfirst: bool,
    ) -> list[int]:
        """Octets clocked out on MOSI with chip select low; returns as many MISO octets."""
        ...


def _octets(values: Iterable[Any], *, limit: bool = True) -> list[int]:
    out = []
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 255:
            raise TypeError("Non-Int/Long value in arguments: %r" % (v,))  # noqa: UP031
        out.append(v)
    if limit and len(out) > SPIDEV_MAX_LIST:
        raise OverflowError(f"Argument list size exceeds {SPIDEV_MAX_LIST} bytes.")
    return out


def make_spidev_module(targets: Mapping[tuple[int, int], SpiTarget]) -> types.ModuleType:
    """A module object standing in for ``spidev``: ``SpiDev`` reaches ``targets`` by
    (bus, device); any other (bus, device) does not exist."""
    devices = dict(targets)

    class SpiDev:
        """``spidev.SpiDev([bus], [client])``."""

        def __init__(self, bus: int | None = None, client: int | None = None) -> None:
            self._target: SpiTarget | None = None
            self._mode = 0
            self._speed = SPIDEV_DEFAULT_SPEED_HZ
            self._bits = 8
            self._flags = {"lsbfirst": False, "cshigh": False, "threewire": False}
            self._flags.update({"loop": False, "no_cs": False})
            if bus is not None:
                self.open(bus, 0 if client is None else client)

        # -- open/close
        def open(self, bus: int, device: int) -> None:
            target = devices.get((bus, device))
            if target is None:
                raise _enoent(f"/dev/spidev{bus}.{device}")
            self._target = target
            self._mode, self._speed, self._bits = 0, SPIDEV_DEFAULT_SPEED_HZ, 8

        def open_path(self, path: str) -> None:
            name = os.path.basename(path)
            if name.startswith("spidev") and "." in name:
                bus_s, _, dev_s = name[6:].partition(".")
                if bus_s.isdigit() and dev_s.isdigit():
                    self.open(int(bus_s), int(dev_s))
                    return
            raise _enoent(path)

        def close(self) -> None:
            self._target = None

        def fileno(self) -> int:
            self._need_open()
            return 1000 + id(self) % 1000

        def _need_open(self) -> SpiTarget:
            if self._target is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            return self._target

        # -- attributes (all need an open device, as in py-spidev)
        @property
        def mode(self) -> int:
            self._need_open()
            return self._mode

        @mode.setter
        def mode(self, value: int) -> None:
            self._need_open()
            if not isinstance(value, int) or not 0 <= value <= 3:
                raise TypeError("The mode attribute must be an integer between 0 and 3.")
            self._mode = value

        @property
        def max_speed_hz(self) -> int:
            self._need_open()
            return self._speed

        @max_speed_hz.setter
        def max_speed_hz(self, value: int) -> None:
            self._need_open()
            if not isinstance(value, int) or value <= 0:
                raise TypeError("The max_speed_hz attribute must be a positive integer.")
            self._speed = value

        @property
        def bits_per_word(self) -> int:
            self._need_open()
            return self._bits

        @bits_per_word.setter
        def bits_per_word(self, value: int) -> None:
            self._need_open()
            if not isinstance(value, int) or not 8 <= value <= 16:
                raise TypeError("The bits_per_word attribute must be an integer from 8 to 16.")
            self._bits = value

        def _flag(self, name: str) -> bool:
            self._need_open()
            return self._flags[name]

        def _set_flag(self, name: str, value: bool) -> None:
            self._need_open()
            self._flags[name] = bool(value)

        lsbfirst = property(
            lambda self: self._flag("lsbfirst"), lambda self, v: self._set_flag("lsbfirst", v)
        )
        cshigh = property(
            lambda self: self._flag("cshigh"), lambda self, v: self._set_flag("cshigh", v)
        )
        threewire = property(
            lambda self: self._flag("threewire"), lambda self, v: self._set_flag("threewire", v)
        )
        loop = property(lambda self: self._flag("loop"), lambda self, v: self._set_flag("loop", v))
        no_cs = property(
            lambda self: self._flag("no_cs"), lambda self, v: self._set_flag("no_cs", v)
        )

        # -- transfers
        def _one(self, data: list[int], speed_hz: int = 0, bits: int = 0) -> list[int]:
            target = self._need_open()
            return target.spi_transfer(
                data,
                speed_hz=speed_hz or self._speed,
                mode=self._mode,
                bits_per_word=bits or self._bits,
                lsbfirst=self._flags["lsbfirst"],
            )

        def xfer2(
            self,
            values: Iterable[int],
            speed_hz: int = 0,
            delay_usecs: int = 0,
            bits_per_word: int = 0,
        ) -> list[int]:
            """One transaction; chip select held low throughout."""
            self._need_open()
            return self._one(_octets(values), speed_hz, bits_per_word)

        def xfer3(
            self,
            values: Iterable[int],
            speed_hz: int = 0,
            delay_usecs: int = 0,
            bits_per_word: int = 0,
        ) -> tuple[int, ...]:
            """Like xfer2 without the length limit (py-spidev returns a tuple)."""
            self._need_open()
            return tuple(self._one(_octets(values, limit=False), speed_hz, bits_per_word))

        def xfer(
            self,
            values: Iterable[int],
            speed_hz: int = 0,
            delay_usecs: int = 0,
            bits_per_word: int = 0,
        ) -> list[int]:
            """Chip select is released and re-asserted between octets."""
            self._need_open()
            return [self._one([v], speed_hz, bits_per_word)[0] for v in _octets(values)]

        def readbytes(self, n: int) -> list[int]:
            self._need_open()
            return self._one(_octets([0] * n))

        def writebytes(self, values: Iterable[int]) -> None:
            self._need_open()
            self._one(_octets(values))

        def writebytes2(self, values: Iterable[int]) -> None:
            self._need_open()
            self._one(_octets(values, limit=False))

    module = types.ModuleType("spidev", "Emulated spidev (ihd.radio.emulator.fakes)")
    module.SpiDev = SpiDev  # type: ignore[attr-defined]
    module.__version__ = "3.8+emulated"  # type: ignore[attr-defined]
    return module


# --- gpiod -----------------------------------------------------------------------------


class Value(Enum):
    INACTIVE = 0
    ACTIVE = 1

    def __bool__(self) -> bool:
        return self is Value.ACTIVE


class Direction(Enum):
    AS_IS = 1
    INPUT = 2
    OUTPUT = 3


class Bias(Enum):
    AS_IS = 1
    UNKNOWN = 2
    DISABLED = 3
    PULL_UP = 4
    PULL_DOWN = 5


class Drive(Enum):
    PUSH_PULL = 1
    OPEN_DRAIN = 2
    OPEN_SOURCE = 3


class Edge(Enum):
    NONE = 1
    RISING = 2
    FALLING = 3
    BOTH = 4


class Clock(Enum):
    MONOTONIC = 1
    REALTIME = 2
    HTE = 3


@dataclass(repr=False)
class LineSettings:
    """``gpiod.LineSettings`` (same fields and defaults)."""

    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    bias: Bias = Bias.AS_IS
    drive: Drive = Drive.PUSH_PULL
    active_low: bool = False
    debounce_period: timedelta = field(default_factory=timedelta)
    event_clock: Clock = Clock.MONOTONIC
    output_value: Value = Value.INACTIVE

    def __repr__(self) -> str:
        return (
            f"gpiod.LineSettings(direction={self.direction}, "
            f"edge_detection={self.edge_detection}, active_low={self.active_low}, "
            f"output_value={self.output_value})"
        )


class EdgeEvent:
    """``gpiod.EdgeEvent``: ``event_type``, ``timestamp_ns``, ``line_offset``, seqnos."""

    class Type(Enum):
        RISING_EDGE = 1
        FALLING_EDGE = 2

    __slots__ = ("event_type", "global_seqno", "line_offset", "line_seqno", "timestamp_ns")

    def __init__(
        self,
        event_type: EdgeEvent.Type,
        timestamp_ns: int,
        line_offset: int,
        global_seqno: int,
        line_seqno: int,
    ) -> None:
        self.event_type = event_type
        self.timestamp_ns = timestamp_ns
        self.line_offset = line_offset
        self.global_seqno = global_seqno
        self.line_seqno = line_seqno

    def __repr__(self) -> str:
        return (
            f"<EdgeEvent type={self.event_type} timestamp_ns={self.timestamp_ns} "
            f"line_offset={self.line_offset} global_seqno={self.global_seqno} "
            f"line_seqno={self.line_seqno}>"
        )


@dataclass(frozen=True, repr=False)
class ChipInfo:
    name: str
    label: str
    num_lines: int

    def __str__(self) -> str:
        return f'<ChipInfo name="{self.name}" label="{self.label}" num_lines={self.num_lines}>'


class ChipClosedError(Exception):
    def __init__(self) -> None:
        super().__init__("I/O operation on closed chip")


class RequestReleasedError(Exception):
    def __init__(self) -> None:
        super().__init__("GPIO lines have been released")


class GpioHost(Protocol):
    """The simulation behind a fake GPIO chip (an emulated radio)."""

    lock: threading.RLock

    def now(self) -> float:
        """The simulation's time (POSIX seconds): edge timestamps."""
        ...

    def sync(self) -> None:
        """Bring the simulation up to the host clock before a line is read or written."""
        ...

    def notify(self) -> None:
        """Wake waiters: an edge event was queued (called with ``lock`` held)."""
        ...

    def wait(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        """Until ``ready()`` or ``timeout`` seconds (None: no limit); returns ``ready()``."""
        ...


class _Request:
    """``gpiod.LineRequest`` on a fake chip."""

    def __init__(
        self,
        chip: FakeGpioChip,
        settings: dict[int, LineSettings],
        consumer: str | None,
        buffer_size: int,
        names: dict[str, int],
    ) -> None:
        self._chip = chip
        self._settings = settings
        self._consumer = consumer
        self._events: deque[EdgeEvent] = deque()
        self._buffer_size = buffer_size
        self._released = False
        self._names = names
        self.dropped_events = 0

    # -- gpiod API
    def __bool__(self) -> bool:
        return not self._released

    def __enter__(self) -> _Request:
        self._check()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        with self._chip.host.lock:
            if not self._released:
                self._released = True
                self._chip._drop_request(self)

    def _check(self) -> None:
        if self._released:
            raise RequestReleasedError()

    def _offset(self, line: int | str) -> int:
        if isinstance(line, str):
            if line not in self._names:
                raise ValueError(f"unknown line name: {line}")
            line = self._names[line]
        if line not in self._settings:
            raise ValueError(f"line {line} is not part of this request")
        return line

    @property
    def offsets(self) -> list[int]:
        self._check()
        return list(self._settings)

    @property
    def lines(self) -> list[int | str]:
        self._check()
        return list(self._settings)

    @property
    def num_lines(self) -> int:
        self._check()
        return len(self._settings)

    @property
    def chip_name(self) -> str:
        self._check()
        return self._chip.name

    @property
    def fd(self) -> int:
        self._check()
        return 2000 + id(self) % 1000

    def fileno(self) -> int:
        return self.fd

    def get_value(self, line: int | str) -> Value:
        self._check()
        host = self._chip.host
        host.sync()
        with host.lock:
            offset = self._offset(line)
            level = self._chip.physical(offset) != self._settings[offset].active_low
            return Value.ACTIVE if level else Value.INACTIVE

    def get_values(self, lines: Iterable[int | str] | None = None) -> list[Value]:
        return [self.get_value(x) for x in (lines or self.offsets)]

    def set_value(self, line: int | str, value: Value) -> None:
        self.set_values({line: value})

    def set_values(self, values: Mapping[int | str, Value]) -> None:
        self._check()
        host = self._chip.host
        host.sync()
        with host.lock:
            for line, value in values.items():
                if not isinstance(value, Value):
                    raise TypeError(f"line value must be gpiod.line.Value, not {value!r}")
                offset = self._offset(line)
                s = self._settings[offset]
                if s.direction is not Direction.OUTPUT:
                    raise OSError(errno.EPERM, os.strerror(errno.EPERM))
                self._chip._drive_output(offset, bool(value) != s.active_low)

    def reconfigure_lines(self, config: Mapping[Any, LineSettings | None]) -> None:
        self._check()
        with self._chip.host.lock:
            for offsets, s in _config_items(config, self._names):
                for off in offsets:
                    if off in self._settings:
                        self._settings[off] = s or LineSettings()
                        if self._settings[off].direction is Direction.OUTPUT:
                            self._chip._drive_output(
                                off,
                                bool(self._settings[off].output_value)
                                != self._settings[off].active_low,
                            )

    def wait_edge_events(self, timeout: timedelta | float | None = None) -> bool:
        self._check()
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        return self._chip.host.wait(lambda: bool(self._events) or self._released, timeout) and (
            not self._released
        )

    def read_edge_events(self, max_events: int | None = None) -> list[EdgeEvent]:
        self._check()
        host = self._chip.host
        if not self._events:
            host.wait(lambda: bool(self._events) or self._released, None)
        with host.lock:
            n = len(self._events) if max_events is None else min(max_events, len(self._events))
            return [self._events.popleft() for _ in range(n)]

    def __str__(self) -> str:
        if self._released:
            return "<LineRequest RELEASED>"
        return f'<LineRequest chip="{self._chip.name}" offsets={self.offsets}>'

    # -- from the chip
    def _edge(self, offset: int, physical: bool, t: float, gseq: int, lseq: int) -> bool:
        s = self._settings.get(offset)
        if s is None or s.edge_detection is Edge.NONE or s.direction is Direction.OUTPUT:
            return False
        rising = physical != s.active_low
        if (s.edge_detection is Edge.RISING and not rising) or (
            s.edge_detection is Edge.FALLING and rising
        ):
            return False
        if len(self._events) >= self._buffer_size:
            self.dropped_events += 1
            return False
        kind = EdgeEvent.Type.RISING_EDGE if rising else EdgeEvent.Type.FALLING_EDGE
        self._events.append(EdgeEvent(kind, round(t * 1e9), offset, gseq, lseq))
        return True


def _config_items(
    config: Mapping[Any, LineSettings | None], names: Mapping[str, int]
) -> list[tuple[list[int], LineSettings | None]]:
    out = []
    for key, s in config.items():
        keys = list(key) if isinstance(key, tuple | list | frozenset | set) else [key]
        offsets = []
        for k in keys:
            if isinstance(k, str):
                if k not in names:
                    raise ValueError(f"unknown line name: {k}")
                offsets.append(names[k])
            elif isinstance(k, int) and not isinstance(k, bool):
                offsets.append(k)
            else:
                raise TypeError(f"a line is an offset or a name, not {k!r}")
        out.append((offsets, s))
    return out


class FakeGpioChip:
    """One ``/dev/gpiochipN``: lines the model drives (inputs to the host) and lines the
    host drives (outputs), with the model told of every output change."""

    def __init__(
        self,
        host: GpioHost,
        path: str,
        label: str,
        *,
        num_lines: int = 58,
        name: str | None = None,
    ) -> None:
        self.host = host
        self.path = path
        self.label = label
        self.num_lines = num_lines
        self.name = name or os.path.basename(path)
        self.line_names = {f"GPIO{n}": n for n in range(num_lines)}  # as on a Pi
        self._levels: dict[int, bool] = {}  # physical level of every line we know
        self._output_hooks: dict[int, Callable[[bool], None]] = {}
        self._requests: list[_Request] = []
        self._holder: dict[int, _Request] = {}
        self._global_seq = 0
        self._line_seq: dict[int, int] = {}
        self.edges = 0  # edge events queued, all requests

    # -- model side
    def on_output(self, offset: int, hook: Callable[[bool], None], *, idle: bool) -> None:
        """Call ``hook(physical_level)`` when the host drives ``offset``; ``idle`` is the
        level before any request (a pull-up or pull-down)."""
        self._output_hooks[offset] = hook
        self._levels[offset] = idle

    def drive_input(self, offset: int, level: bool, t: float) -> None:
        """The model sets a line's physical level (with ``host.lock`` held)."""
        if self._levels.get(offset, False) == level:
            return
        self._levels[offset] = level
        req = self._holder.get(offset)
        if req is None:
            return
        self._global_seq += 1
        self._line_seq[offset] = self._line_seq.get(offset, 0) + 1
        if req._edge(offset, level, t, self._global_seq, self._line_seq[offset]):
            self.edges += 1
            self.host.notify()

    def physical(self, offset: int) -> bool:
        return self._levels.get(offset, False)

    def _drive_output(self, offset: int, level: bool) -> None:
        old = self._levels.get(offset)
        self._levels[offset] = level
        hook = self._output_hooks.get(offset)
        if hook is not None and old != level:
            hook(level)

    # -- host side
    def request(
        self,
        config: Mapping[Any, LineSettings | None],
        consumer: str | None,
        event_buffer_size: int | None,
        output_values: Mapping[int | str, Value] | None,
    ) -> _Request:
        with self.host.lock:
            settings: dict[int, LineSettings] = {}
            for offsets, s in _config_items(config, self.line_names):
                for off in offsets:
                    if not 0 <= off < self.num_lines:
                        raise ValueError("line offset out of range")
                    settings[off] = s if s is not None else LineSettings()
            for key, v in (output_values or {}).items():
                off = self.line_names[key] if isinstance(key, str) else key
                if off in settings:
                    s = settings[off]
                    settings[off] = LineSettings(
                        s.direction,
                        s.edge_detection,
                        s.bias,
                        s.drive,
                        s.active_low,
                        s.debounce_period,
                        s.event_clock,
                        v,
                    )
            if not settings:
                raise ValueError("no lines requested")
            for off in settings:
                if off in self._holder:
                    raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            size = event_buffer_size or 16 * len(settings)
            req = _Request(self, settings, consumer, size, self.line_names)
            self._requests.append(req)
            for off in settings:
                self._holder[off] = req
            self.host.sync()
            for off, s in settings.items():
                if s.direction is Direction.OUTPUT:
                    self._drive_output(off, bool(s.output_value) != s.active_low)
            return req

    def _drop_request(self, req: _Request) -> None:
        self._requests = [r for r in self._requests if r is not req]
        for off in [o for o, r in self._holder.items() if r is req]:
            del self._holder[off]  # an output keeps its level, as the kernel leaves it
        self.host.notify()


def make_gpiod_module(chips: Iterable[FakeGpioChip]) -> types.ModuleType:
    """A module object standing in for ``gpiod`` (v2) with these chips."""
    by_path = {c.path: c for c in chips}

    def lookup(path: str) -> FakeGpioChip:
        chip = by_path.get(path)
        if chip is None:
            raise _enoent(path)
        return chip

    class Chip:
        """``gpiod.Chip(path)``."""

        def __init__(self, path: str) -> None:
            self._chip: FakeGpioChip | None = lookup(path)
            self._path = path

        def __bool__(self) -> bool:
            return self._chip is not None

        def __enter__(self) -> Chip:
            self._need()
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def _need(self) -> FakeGpioChip:
            if self._chip is None:
                raise ChipClosedError()
            return self._chip

        def close(self) -> None:
            self._chip = None

        @property
        def path(self) -> str:
            self._need()
            return self._path

        @property
        def fd(self) -> int:
            self._need()
            return 3000 + id(self) % 1000

        def fileno(self) -> int:
            return self.fd

        def get_info(self) -> ChipInfo:
            c = self._need()
            return ChipInfo(c.name, c.label, c.num_lines)

        def line_offset_from_id(self, id: str | int) -> int:
            c = self._need()
            if isinstance(id, str):
                if id.isdigit():
                    id = int(id)
                elif id in c.line_names:
                    return c.line_names[id]
                else:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), id)
            if not 0 <= id < c.num_lines:
                raise ValueError("line offset of out range")
            return id

        def request_lines(
            self,
            config: Mapping[Any, LineSettings | None],
            consumer: str | None = None,
            event_buffer_size: int | None = None,
            output_values: Mapping[int | str, Value] | None = None,
        ) -> _Request:
            return self._need().request(config, consumer, event_buffer_size, output_values)

        def __repr__(self) -> str:
            return f'gpiod.Chip("{self._path}")' if self._chip else "<Chip CLOSED>"

    def request_lines(
        path: str,
        config: Mapping[Any, LineSettings | None],
        consumer: str | None = None,
        event_buffer_size: int | None = None,
        output_values: Mapping[int | str, Value] | None = None,
    ) -> _Request:
        return lookup(path).request(config, consumer, event_buffer_size, output_values)

    def is_gpiochip_device(path: str) -> bool:
        return path in by_path

    line = types.ModuleType("gpiod.line")
    for enum in (Value, Direction, Bias, Drive, Edge, Clock):
        setattr(line, enum.__name__, enum)
    edge_event = types.ModuleType("gpiod.edge_event")
    edge_event.EdgeEvent = EdgeEvent  # type: ignore[attr-defined]
    exception = types.ModuleType("gpiod.exception")
    exception.ChipClosedError = ChipClosedError  # type: ignore[attr-defined]
    exception.RequestReleasedError = RequestReleasedError  # type: ignore[attr-defined]

    module = types.ModuleType("gpiod", "Emulated gpiod v2 (ihd.radio.emulator.fakes)")
    attrs: dict[str, Any] = {
        "Chip": Chip,
        "ChipInfo": ChipInfo,
        "EdgeEvent": EdgeEvent,
        "LineSettings": LineSettings,
        "LineRequest": _Request,
        "ChipClosedError": ChipClosedError,
        "RequestReleasedError": RequestReleasedError,
        "request_lines": request_lines,
        "is_gpiochip_device": is_gpiochip_device,
        "line": line,
        "edge_event": edge_event,
        "exception": exception,
        "api_version": "2.5.0+emulated",
        "__version__": "2.5.0+emulated",
    }
    for k, v in attrs.items():
        setattr(module, k, v)
    return module
