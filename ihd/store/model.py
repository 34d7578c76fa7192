"""Records that cross the store boundary: what goes in (``Batch``) and what comes out.

A ``Batch`` is the unit of atomicity. Everything in one batch (raw readings, the usage
they produced, the meters they came from and small durable state such as a radio frame
counter) lands in the same SQLite transaction or not at all. That lets a layer say "this
frame was accepted" (``state``) only together with the data the frame carried, so a
restart can never replay a frame whose readings were lost, nor keep readings whose
frame counter was not advanced.

Batches are frozen and copy their sequences on construction: ``Store.submit`` is
asynchronous, and a producer that reused its list after submitting would otherwise race
with the writer thread.

Timestamps inside the database are integer milliseconds (exact, compact, and sortable as
a primary key). The public read API gives float POSIX seconds like the rest of ihd, except
``MeterInfo`` which mirrors its table (``*_ms``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from ihd.meter.reading import Reading, Utility

MINUTE_MS = 60_000


class StoreError(Exception):
    """The store cannot be opened or used; the message says why, for a human."""


def ts_ms(t: float) -> int:
    """POSIX seconds (float) to the integer milliseconds the database keys on."""
    return round(t * 1000)


def minute_ms(t: float) -> int:
    """Start of the UTC minute holding POSIX time ``t``, in milliseconds (a ``Usage`` key)."""
    return (ts_ms(t) // MINUTE_MS) * MINUTE_MS


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage derived from register deltas, attributed to one minute of one meter.

    Rows for the same (meter, minute) add up in the database, so the ingest can emit one
    ``Usage`` per reading delta without reading back what is already stored.
    """

    meter: str  # EUI-64, like Reading.meter
    utility: Utility
    minute_ms: int  # start of the minute, ms since the epoch, multiple of 60 000
    amount: float  # in the meter's register unit: Wh (electricity), m3 (gas, water)
    energy_wh: float | None  # energy in Wh (electricity; gas converted); None for water
    cost_milli: int  # thousandths of the minor currency unit (e.g. 1/1000 penny)

    def __post_init__(self) -> None:
        if self.minute_ms % MINUTE_MS:
            raise ValueError(f"minute_ms {self.minute_ms} is not on a minute boundary")


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """A meter as the store knows it.

    Written: ``seen_ms`` is when it was seen (first_seen keeps the earliest, last_seen the
    latest; a ``None`` label keeps the stored one). Read back: ``seen_ms`` is the last time
    seen and ``first_seen_ms`` the first.
    """

    eui64: str
    utility: Utility
    label: str | None
    seen_ms: int
    first_seen_ms: int | None = None  # on write: defaults to seen_ms


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows that must land together (one SQLite transaction, or a savepoint inside one)."""

    readings: Sequence[Reading] = ()
    usage: Sequence[Usage] = ()
    state: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    meters: Sequence[MeterInfo] = ()

    def __post_init__(self) -> None:
        # Freeze the contents, not just the attributes: see the module docstring.
        object.__setattr__(self, "readings", tuple(self.readings))
        object.__setattr__(self, "usage", tuple(self.usage))
        object.__setattr__(self, "state", MappingProxyType(dict(self.state)))
        object.__setattr__(self, "meters", tuple(self.meters))

    @property
    def rows(self) -> int:
        return len(self.readings) + len(self.usage) + len(self.state) + len(self.meters)


class LastReading(NamedTuple):
    ts: float  # POSIX seconds
    raw: int
    scaler: int


class UsageTotal(NamedTuple):
    amount: float  # register unit of the utility (Wh or m3)
    energy_wh: float | None  # None when no row in the window has an energy figure
    cost_milli: int


class UsageBucket(NamedTuple):
    start: float  # POSIX seconds, bucket start
    amount: float
    energy_wh: float | None
    cost_milli: int


class PeriodUsage(NamedTuple):
    """Usage in one period of a history view: [start, end) in POSIX seconds.

    Periods follow the household's calendar, so a day may be 23 or 25 hours long.
    A period with no data has amount 0, energy None and cost 0.
    """

    start: float
    end: float
    amount: float  # register unit of the utility (Wh or m3)
    energy_wh: float | None  # None when no row in the period has an energy figure
    cost_milli: int


class MeterUsage(NamedTuple):
    """One meter's usage in one minute, hour, day or month (as exported)."""

    meter: str
    utility: Utility
    start: float  # POSIX seconds
    end: float
    amount: float
    energy_wh: float | None
    cost_milli: int
