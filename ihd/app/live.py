"""What the display shows right now, as immutable snapshots.

The ingest thread builds a new ``Snapshot`` after each frame and hands it to whoever
listens (the UI bridge, the headless printer). Snapshots are plain frozen data, so they
cross threads without locks and the UI never reads half-updated state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ihd.meter.reading import Reading, Utility


@dataclass(frozen=True, slots=True)
class UtilityToday:
    utility: Utility
    amount: float  # register unit: Wh (electricity), m3 (gas, water)
    energy_wh: float | None  # electricity and gas (converted); None for water
    cost_milli: int  # priced usage since local midnight
    standing_milli: int  # today's standing charge
    last_reading_at: float | None = None

    @property
    def total_milli(self) -> int:
        return self.cost_milli + self.standing_milli


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float  # POSIX seconds of the newest data
    demand_w: float | None  # latest electricity import power
    demand_cost_milli_per_h: int | None  # what that demand costs per hour
    demand_at: float | None = None  # when the meter measured that demand
    today: Mapping[Utility, UtilityToday] = field(default_factory=dict)
    last_frame_at: float | None = None  # any meter, accepted frame
    readings: tuple[Reading, ...] = ()  # the readings that caused this snapshot
    # the traffic light per utility and what it compares with: "amber:budget", "green:usual"
    lights: Mapping[Utility, str] = field(default_factory=dict)
