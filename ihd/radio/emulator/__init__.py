"""Emulated radio chips behind fake ``spidev``/``gpiod`` modules, for driver tests and the
demo: the driver under test runs unchanged against them.

* :class:`EmulatedAt86rf215` (``at86rf215.py``): a register-level AT86RF215 model written
  from ``../shared/hw/radio-chips.md`` only, never from the driver (a test checks that no
  module here imports ``ihd.radio.at86rf215``). ``chip.modules()`` returns the
  ``(spidev, gpiod)`` module objects to construct the driver with.
* ``fakes.py``: the fake ``spidev`` and ``gpiod`` (v2) modules, reusable by other chip
  models (anything with ``spi_transfer`` and a :class:`~.fakes.GpioHost`).
"""

from .at86rf215 import (
    NO_CHANNEL,
    ChipCounters,
    EmulatedAt86rf215,
    RxRecord,
    SpiRecord,
    Timing,
    TxRecord,
    Violation,
)
from .fakes import FakeGpioChip, GpioHost, SpiTarget, make_gpiod_module, make_spidev_module

__all__ = [
    "NO_CHANNEL",
    "ChipCounters",
    "EmulatedAt86rf215",
    "FakeGpioChip",
    "GpioHost",
    "RxRecord",
    "SpiRecord",
    "SpiTarget",
    "Timing",
    "TxRecord",
    "Violation",
    "make_gpiod_module",
    "make_spidev_module",
]
