"""A meter the display is paired with: its EUI-64 and what it measures.

SMETS2-style homes have separate electricity and gas devices (and here, optionally water);
frames from any other source are a neighbour's and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from ihd.meter.reading import Utility


@dataclass(frozen=True, slots=True)
class MeterDevice:
    eui64: str  # 16 upper-case hex digits, as printed on the meter
    utility: Utility
    label: str = ""
