"""Build the configured radio: the one place (with ``ihd radio``) that knows every driver.

``radio.type`` picks it. ``sim`` and ``emulated`` also build the simulated household they
listen to (``emulated`` runs the real AT86RF215 driver on the register-level emulator);
the hardware types import their libraries only when opened, so this module imports
nothing a desktop lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ihd.clock import Clock
from ihd.config import Config
from ihd.diag import Diagnostics
from ihd.radio.contract import Radio, RadioError
from ihd.sim.world import SimWorld, demo_world

SIMULATED = ("sim", "emulated")


@dataclass(frozen=True, slots=True)
class Built:
    radio: Radio
    world: SimWorld | None  # the simulated household, for the simulated types
    display_eui64: str | None  # fixed by the simulation; None: the display's own


def build_radio(
    cfg: Config,
    *,
    clock: Clock,
    diag: Diagnostics,
    kind: str | None = None,
    world: SimWorld | None = None,
    joined: Iterable[str] = (),
) -> Built:
    """The radio for ``kind`` (default ``cfg["radio.type"]``). For the simulated types,
    ``world`` (or the demo world, seed 1, whose meters know the displays in ``joined``)."""
    kind = kind or cfg["radio.type"]
    channel, fcs_len = cfg["radio.channel"], cfg["radio.fcs_len"]
    if kind in SIMULATED:
        if world is None:
            world = demo_world(
                seed=1,
                start=clock.now(),
                fcs_len=fcs_len,
                tz=cfg.timezone,
                gas_cv_mj_m3=cfg["tariff.gas.calorific_value_mj_m3"],
                joined=list(joined),
            )
        if kind == "sim":
            from ihd.radio.sim import SimRadio

            return Built(SimRadio(world, clock=clock, channel=channel, diag=diag), world, None)
        from ihd.radio.emulated import emulated_at86rf215

        radio = emulated_at86rf215(world, clock, diag, channel=channel, fcs_len=fcs_len)
        return Built(radio, world, None)
    if kind == "at86rf215":
        from ihd.radio.at86rf215 import At86rf215Config, At86rf215Radio

        try:
            config = At86rf215Config(
                spi_device=cfg["radio.spi_device"],
                spi_speed_hz=cfg["radio.spi_speed_hz"],
                gpio_chip=cfg["radio.gpio_chip"] or None,
                irq_line=cfg["radio.irq_line"],
                reset_line=cfg["radio.reset_line"],
                channel=channel,
                fcs_len=fcs_len,
            )
        except ValueError as e:
            raise RadioError(f"radio settings: {e}") from None
        return Built(At86rf215Radio(config, clock=clock, diag=diag), None, None)
    if kind == "cc1200":
        from ihd.radio.cc1200 import CC1200Config, CC1200Radio

        try:
            cc = CC1200Config(
                spi_device=cfg["radio.spi_device"],
                spi_speed_hz=cfg["radio.spi_speed_hz"],
                gpio_chip=cfg["radio.gpio_chip"] or None,
                irq_line=cfg["radio.irq_line"],
                channel=channel,
            )
        except ValueError as e:
            raise RadioError(f"radio settings: {e}") from None
        return Built(CC1200Radio(cc, clock=clock, diag=diag), None, None)
    if kind == "serial":
        from ihd.radio.serial_stick import SerialStickConfig, SerialStickRadio, probe_serial_stick

        port = cfg["radio.serial_port"]
        stick = SerialStickConfig(port=port, channel=channel, fcs_len=fcs_len)
        # The stick acknowledges frames to its own EUI-64 only, so that is the display's
        # address. Unplugged at start: the display's stored one, until it is back.
        try:
            eui: str | None = probe_serial_stick(port).eui64
        except RadioError:
            eui = None
        return Built(SerialStickRadio(stick, clock=clock, diag=diag), None, eui)
    raise RadioError(f"radio type {kind!r} is not available in this build")
