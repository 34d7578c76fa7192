"""The real AT86RF215 driver on the register-level emulator, attached to the simulated air.

This is the demo's hardware-free path through the real driver code:
sim meter -> air -> emulated chip (``ihd.radio.emulator``) -> :class:`At86rf215Radio`
-> smwap -> ... The driver is the production driver, unchanged; it is only given the
emulator's fake ``spidev``/``gpiod`` modules instead of the real ones.

Time: the emulator's pump thread ("ihd-sim") advances the chip and its world on the given
clock (the wall clock, or the demo's ``ScaledClock``); :meth:`EmulatedAt86rf215Radio.open`
starts it and :meth:`~EmulatedAt86rf215Radio.close` stops it, so the ``Radio`` contract's
open/close manage the whole simulation. The driver's own latencies are in wall time, so a
``ScaledClock`` multiplies them in simulated time. After its own transmission the driver
re-arms RX from Python (about 0.3 ms here), and a meter answers a pairing message 4.4 ms
after it: pairing through this radio works up to about ``--speed 4`` and times out from
about 10 (measured). Receiving pushes works at any demo speed (the chip acknowledges them
itself); at 600 some meter ACKs land late in simulated time and meters retry.

Not for a ``ManualClock`` (the pump would run it forward without limit): tests on a
``ManualClock`` build the emulator and the driver themselves and let the driver's IRQ thread
step simulated time inside ``wait_edge_events`` (see tests/test_radio_at86rf215_emulated.py).
"""

from __future__ import annotations

import random
from typing import Any

from ihd.clock import Clock
from ihd.diag import Diagnostics
from ihd.radio.at86rf215 import At86rf215Config, At86rf215Radio, spi_bus_device
from ihd.radio.emulator import EmulatedAt86rf215
from ihd.sim.world import SimWorld

__all__ = ["EMULATED_GPIO_CHIP", "EmulatedAt86rf215Radio", "emulated_at86rf215"]

#: The GPIO chip path of the emulated Pi header (the driver is told it, never searches).
EMULATED_GPIO_CHIP = "/dev/gpiochip0"


class EmulatedAt86rf215Radio(At86rf215Radio):
    """:class:`At86rf215Radio` whose ``open``/``close`` also start/stop the emulator's pump.

    ``chip`` is the emulated chip (counters, violations, fault injection); ``world`` the
    simulated household it listens to.
    """

    def __init__(
        self,
        chip: EmulatedAt86rf215,
        world: SimWorld,
        config: At86rf215Config,
        *,
        clock: Clock,
        diag: Diagnostics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        spidev, gpiod = chip.modules()
        super().__init__(
            config, clock=clock, diag=diag, spidev_module=spidev, gpiod_module=gpiod, rng=rng
        )
        self.chip = chip
        self.world = world

    def open(self) -> None:
        """Bring the chip up through the driver, then let simulated time run. The driver's
        bring-up comes first: until the pump runs, nothing moves on the air, so no meter
        frame can arrive before the chip listens."""
        try:
            super().open()
        finally:
            # Also after a failed open: receive() retries open(), and the world must go on.
            self.chip.start_pump()

    def close(self) -> None:
        """Close the driver (TRXOFF, lines released), then stop the pump. The chip stays on
        the air, so the radio can be opened again."""
        try:
            super().close()
        finally:
            self.chip.stop_pump()


def emulated_at86rf215(
    world: SimWorld,
    clock: Clock,
    diag: Diagnostics | None = None,
    channel: int = 0,
    fcs_len: int = 4,
    *,
    config: At86rf215Config | None = None,
    rng: random.Random | None = None,
    **chip_options: Any,
) -> EmulatedAt86rf215Radio:
    """The real AT86RF215 driver on an emulated chip that is ``world``'s display.

    ``channel`` and ``fcs_len`` configure the driver (EU mode #1 channel, the FCS it
    appends on TX); ``config`` replaces the whole driver configuration (its ``gpio_chip``
    must be :data:`EMULATED_GPIO_CHIP`, and its SPI device, IRQ and reset lines are given to
    the chip). ``chip_options`` go to :class:`EmulatedAt86rf215` (``timing``, ``seed``,
    ``part_number``, ``trace_limit``, ...). The chip's SPI trace is off by default (a demo
    runs for days); pass ``trace_limit`` to keep one.
    """
    if config is None:
        config = At86rf215Config(gpio_chip=EMULATED_GPIO_CHIP, channel=channel, fcs_len=fcs_len)
    elif config.gpio_chip != EMULATED_GPIO_CHIP:
        raise ValueError(f"the emulated chip's GPIO lines are on {EMULATED_GPIO_CHIP}")
    bus, device = spi_bus_device(config.spi_device)
    chip_options.setdefault("trace_limit", 0)
    chip = EmulatedAt86rf215(
        clock,
        world=world,
        spi_bus=bus,
        spi_device=device,
        gpio_chip=EMULATED_GPIO_CHIP,
        reset_line=config.reset_line,
        irq_line=config.irq_line,
        **chip_options,
    )
    return EmulatedAt86rf215Radio(chip, world, config, clock=clock, diag=diag, rng=rng)
