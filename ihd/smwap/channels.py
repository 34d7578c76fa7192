"""SUN FSK channel plans for Europe (863-870 and 870-876 MHz), as data.

Why a table module: which plan SMWAP uses is unknown (ETSI TS 102 887 was not available), so
the receiver, the simulated air and the diagnostics need every candidate plan by name, each
with the source of its numbers. Channel n is centred at ``chan_center_freq0_hz + n *
channel_spacing_hz`` for n in 0..n_channels-1 (:meth:`PhyMode.channel_freq_hz`).

Three families, which do **not** agree with one another:

* ``EU_863_MODE_1..3`` (defined in :mod:`.phy`, repeated here): the 802.15.4g-2012 table,
  mode #1 50 kb/s h=1 on 200 kHz from 863.125 MHz. [src: TI 15.4-stack, Atmel
  ``ieee_154g.h``; see :mod:`.phy`].
* ``SUN_FSK_863_MODE_1..3`` and ``SUN_FSK_870_MODE_1..3``: IEEE 802.15.4-2020 (which took in
  802.15.4v-2017, the amendment that added the EU 870-876 MHz band), modes #1-#3: 50, 100 and
  150 kb/s 2-FSK with h = 0.5. [src: Microchip ``ieee_15_4_sun_fsk.h`` (RF215 driver, 2023),
  which says it follows IEEE 802.15.4-2020 sections 10.1.3.9 and 19.3; the standard itself
  was not available]. Caution: that file gives 870-876 MHz modes #2/#3 channels 0..29 at
  200 kHz from 870.2 MHz, so channel 29 is centred on 876.0 MHz and half of it lies outside
  the band. It may be an off-by-one in the source (29 channels would end at 875.8 MHz); we
  keep the source's 30 and flag it here rather than guess.
* ``WISUN_EU_*``: Wi-SUN FAN regulatory domain EU operating classes 1-4 (PHY mode 1a =
  50 kb/s h=0.5, 2a = 100 kb/s h=0.5). [src: Silicon Labs ``sl_wisun_regdb.c`` (2023) for
  F0, spacing and channel count; mode names and rates from Silicon Labs' radio configurator
  (``calc_wisun``: "Mode1a 2FSK 50kbps mi=0.5", "Mode2a 2FSK 100kbps mi=0.5")]. Wi-SUN
  also allows 150 kb/s (mode 3) on the 200 kHz classes; not listed separately.

Air time and ACK wait for any of these: :func:`.phy.airtime_s` and :func:`.phy.ack_wait_s`.
"""

from __future__ import annotations

from .phy import EU_863_MODE_1, EU_863_MODE_2, EU_863_MODE_3, PhyMode

__all__ = [
    "CHANNEL_PLANS",
    "SUN_FSK_863_MODE_1",
    "SUN_FSK_863_MODE_2",
    "SUN_FSK_863_MODE_3",
    "SUN_FSK_870_MODE_1",
    "SUN_FSK_870_MODE_2",
    "SUN_FSK_870_MODE_3",
    "WISUN_EU_863_CLASS_1",
    "WISUN_EU_863_CLASS_2",
    "WISUN_EU_870_CLASS_3",
    "WISUN_EU_870_CLASS_4",
    "channel_plan",
]

_IEEE_2020 = "IEEE 802.15.4-2020 via Microchip ieee_15_4_sun_fsk.h [src]"
_WISUN = "Wi-SUN FAN EU via Silicon Labs sl_wisun_regdb.c [src]"

SUN_FSK_863_MODE_1 = PhyMode(
    "SUN_FSK_863_MODE_1", 50_000, "2-FSK", 0.5, 100_000, 863_100_000, 69, _IEEE_2020
)
SUN_FSK_863_MODE_2 = PhyMode(
    "SUN_FSK_863_MODE_2", 100_000, "2-FSK", 0.5, 200_000, 863_100_000, 35, _IEEE_2020
)
SUN_FSK_863_MODE_3 = PhyMode(
    "SUN_FSK_863_MODE_3", 150_000, "2-FSK", 0.5, 200_000, 863_100_000, 35, _IEEE_2020
)
SUN_FSK_870_MODE_1 = PhyMode(
    "SUN_FSK_870_MODE_1", 50_000, "2-FSK", 0.5, 100_000, 870_100_000, 59, _IEEE_2020
)
SUN_FSK_870_MODE_2 = PhyMode(
    "SUN_FSK_870_MODE_2",
    100_000,
    "2-FSK",
    0.5,
    200_000,
    870_200_000,
    30,
    _IEEE_2020 + "; last channel reaches past 876 MHz (see channels.py)",
)
SUN_FSK_870_MODE_3 = PhyMode(
    "SUN_FSK_870_MODE_3",
    150_000,
    "2-FSK",
    0.5,
    200_000,
    870_200_000,
    30,
    _IEEE_2020 + "; last channel reaches past 876 MHz (see channels.py)",
)

WISUN_EU_863_CLASS_1 = PhyMode(
    "WISUN_EU_863_CLASS_1", 50_000, "2-FSK", 0.5, 100_000, 863_100_000, 69, _WISUN + ", mode 1a"
)
WISUN_EU_863_CLASS_2 = PhyMode(
    "WISUN_EU_863_CLASS_2", 100_000, "2-FSK", 0.5, 200_000, 863_100_000, 35, _WISUN + ", mode 2a"
)
WISUN_EU_870_CLASS_3 = PhyMode(
    "WISUN_EU_870_CLASS_3", 50_000, "2-FSK", 0.5, 100_000, 870_100_000, 55, _WISUN + ", mode 1a"
)
WISUN_EU_870_CLASS_4 = PhyMode(
    "WISUN_EU_870_CLASS_4", 100_000, "2-FSK", 0.5, 200_000, 870_200_000, 27, _WISUN + ", mode 2a"
)

CHANNEL_PLANS: dict[str, PhyMode] = {
    m.name: m
    for m in (
        EU_863_MODE_1,
        EU_863_MODE_2,
        EU_863_MODE_3,
        SUN_FSK_863_MODE_1,
        SUN_FSK_863_MODE_2,
        SUN_FSK_863_MODE_3,
        SUN_FSK_870_MODE_1,
        SUN_FSK_870_MODE_2,
        SUN_FSK_870_MODE_3,
        WISUN_EU_863_CLASS_1,
        WISUN_EU_863_CLASS_2,
        WISUN_EU_870_CLASS_3,
        WISUN_EU_870_CLASS_4,
    )
}
"""Every plan above by name."""


def channel_plan(name: str) -> PhyMode:
    """A plan by name (``KeyError`` lists the known names)."""
    try:
        return CHANNEL_PLANS[name]
    except KeyError:
        raise KeyError(f"unknown channel plan {name!r}; known: {sorted(CHANNEL_PLANS)}") from None
