"""A simulated UK household: electricity, gas and water demand as a pure function of time.

Why a pure function of time, with no stepping state, clock or thread: the model *is* the
ground truth for end-to-end tests. A test can ask what the register should read at any
instant and compare it with what came out of the radio, the meter layer and the store,
without replaying history. Backfilling 30 days of history for the demo is then a matter of
reading registers at 30-minute steps, not of running the simulation for 30 days. And the
demo runs the same house at ``--speed 1`` or ``--speed 3600``.

How it works. Each local calendar day ``D`` has a schedule drawn from its own
``random.Random(seed * 1_000_003 + D.toordinal())``: integer arithmetic, never ``hash()``,
so it is the same on every run and every machine. A schedule is a list of intervals with a
constant rate (a kettle is 3 kW from 07:12:40 to 07:15:10). A schedule starts at the day's
local midnight and may spill into the next day (a dishwasher started at 22:40), never
further. So the demand in day ``D`` comes from the schedules of ``D - 1`` and ``D`` only.
Per-day totals are cached, so a register a year after the epoch costs one pass over the
year once and little after that.

Calibration, per 365 days (checked by ``tests/test_sim_household.py``): about 2,700 kWh of
electricity and 11,500 kWh of gas (the Ofgem typical medium household), and about 140 litres
of water per person per day. The tunables live in the tables below.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ihd.meter.reading import Utility

__all__ = [
    "EPOCH_DATE",
    "UNIT",
    "Draw",
    "Household",
    "Load",
]

#: Registers count from local midnight at the start of this date.
EPOCH_DATE = date(2024, 1, 1)

#: The unit of ``amount()`` and ``register()`` for each utility.
UNIT: dict[Utility, str] = {Utility.ELECTRICITY: "Wh", Utility.GAS: "Wh", Utility.WATER: "L"}

# Rates are W for electricity and gas and L/min for water; multiply rate x seconds by this.
_PER_SECOND: dict[Utility, float] = {
    Utility.ELECTRICITY: 1 / 3600,
    Utility.GAS: 1 / 3600,
    Utility.WATER: 1 / 60,
}

_SEED_STRIDE = 1_000_003  # > any date ordinal, so (seed, date) pairs never collide
_YEAR_DAYS = 365.2425
_COLDEST = date(2000, 1, 15).toordinal()  # outdoor temperature minimum
_DARKEST = date(2000, 12, 21).toordinal()  # longest night
_WATER_J_PER_L_K = 4186.0
_BOILER_EFFICIENCY = 0.9

# Outdoor temperature, deg C: a seasonal sinusoid plus weather that persists for a few days.
_OUTDOOR_MEAN_C = 10.0
_OUTDOOR_AMPLITUDE_C = 7.0
_WEATHER_SIGMA_C = 2.0
_WEATHER_WEIGHTS = (1.0, 0.8, 0.5)  # today's, yesterday's and the day before's draws
# Cold mains water, deg C: lags the air by about a month.
_MAINS_MEAN_C = 11.0
_MAINS_AMPLITUDE_C = 4.0
_MAINS_LAG_DAYS = 30.0

_Span = tuple[float, float, float, str]  # start, end (POSIX s), rate (W or L/min), name


@dataclass(frozen=True, slots=True)
class Load:
    """An appliance drawing a constant electrical or gas power over [start, end)."""

    start: float  # POSIX seconds, UTC
    end: float
    watts: float  # electrical power, or gas fuel power (kWh of fuel, not of heat)
    name: str


@dataclass(frozen=True, slots=True)
class Draw:
    """A tap, shower or appliance drawing water at a constant flow over [start, end)."""

    start: float  # POSIX seconds, UTC
    end: float
    litres_per_min: float
    name: str


# --------------------------------------------------------------------------------------------
# The appliance tables. Times are local wall-clock hours; ranges are drawn uniformly.


@dataclass(frozen=True, slots=True)
class Window:
    """Part of the local day when something may start, weighted against the other windows."""

    start_h: float
    end_h: float
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Use:
    """A short use that happens a random (Poisson) number of times a day."""

    name: str
    per_day: float  # mean uses a day (a person, if per_person)
    minutes: tuple[float, float]
    windows: tuple[Window, ...]
    per_person: bool = False
    electricity_w: tuple[float, float] = (0.0, 0.0)
    water_lpm: tuple[float, float] = (0.0, 0.0)
    hot_c: float | None = None  # delivery temperature if the combi boiler heats it


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of an appliance programme; a step with a water flow is a fill."""

    minutes: tuple[float, float]
    electricity_w: float = 0.0
    water_lpm: float = 0.0


@dataclass(frozen=True, slots=True)
class Programme:
    """A machine that runs a programme of phases back to back, on some days."""

    name: str
    chance_per_day: float
    windows: tuple[Window, ...]
    phases: tuple[Phase, ...]


@dataclass(frozen=True, slots=True)
class Block:
    """A stretch of lights and TV, in steps of varying power, heavier on dark evenings."""

    name: str
    start_h: tuple[float, float]
    end_h: tuple[float, float]
    watts: float  # all year round
    dark_watts: float  # extra at midwinter, scaled by how long the night is
    step_min: float = 30.0


@dataclass(frozen=True, slots=True)
class Baseload:
    """Always-on devices: a per-hour profile with a little noise, hour by hour."""

    watts_by_hour: tuple[float, ...]  # 24 values, local hour
    jitter: float = 0.08


@dataclass(frozen=True, slots=True)
class Fridge:
    """A fridge-freezer compressor: cycles all day, with a longer duty in summer."""

    watts: float = 90.0
    period_min: tuple[float, float] = (55.0, 65.0)
    duty_winter: float = 0.30
    duty_summer: float = 0.40


@dataclass(frozen=True, slots=True)
class Oven:
    """The evening meal: full power to preheat, then the thermostat cycles it."""

    chance_per_day: float = 0.8
    start_h: tuple[float, float] = (17.5, 18.75)
    minutes: tuple[float, float] = (30.0, 70.0)
    watts: tuple[float, float] = (2000.0, 2500.0)
    preheat_min: float = 12.0
    duty: tuple[float, float] = (0.45, 0.7)
    cycle_min: float = 4.0


@dataclass(frozen=True, slots=True)
class Heating:
    """Space heating by a modulating gas boiler, sized by heating degree-days."""

    wh_per_degree_day: float = 4_500.0  # fuel, per degree-day below base_c
    base_c: float = 15.5
    windows: tuple[Window, ...] = (Window(6.0, 9.0, 0.4), Window(16.5, 22.5, 0.6))  # share
    min_w: float = 10_000.0
    max_w: float = 24_000.0
    full_power_degree_days: float = 16.0  # burns at max_w this cold, min_w when mild
    cycle_min: tuple[float, float] = (12.0, 20.0)
    min_burn_min: float = 3.0


def _w(start_h: float, end_h: float, weight: float = 1.0) -> Window:
    return Window(start_h, end_h, weight)


_MORNING = (_w(6.5, 9.0, 0.7), _w(18.0, 22.5, 0.3))
_WAKING = (_w(6.5, 9.0, 0.3), _w(9.0, 17.0, 0.3), _w(17.0, 23.0, 0.35), _w(23.0, 30.5, 0.05))

BASELOAD = Baseload(
    watts_by_hour=(
        85,
        85,
        85,
        85,
        85,
        85,
        95,
        105,
        105,
        100,
        100,
        100,
        100,
        100,
        100,
        100,
        105,
        115,
        120,
        120,
        120,
        115,
        105,
        90,
    ),
)
FRIDGE = Fridge()
OVEN = Oven()
HEATING = Heating()

BLOCKS: tuple[Block, ...] = (
    Block("lights and tv", start_h=(16.75, 17.5), end_h=(22.5, 23.5), watts=140, dark_watts=120),
    Block("morning lights", start_h=(6.25, 7.0), end_h=(8.0, 8.75), watts=20, dark_watts=110),
)

USES: tuple[Use, ...] = (
    Use(
        "kettle",
        4.5,
        (2.0, 4.0),
        (_w(6.5, 9.5, 0.45), _w(12.0, 14.0, 0.15), _w(15.0, 22.0, 0.4)),
        electricity_w=(2900, 3100),
    ),
    Use("microwave", 0.8, (1.0, 5.0), (_w(12.0, 14.0), _w(17.0, 21.0)), electricity_w=(800, 1200)),
    Use("toaster", 0.5, (2.0, 4.0), (_w(7.0, 9.5),), electricity_w=(800, 1000)),
    Use("vacuum", 0.3, (10.0, 30.0), (_w(9.0, 18.0),), electricity_w=(1200, 1600)),
    Use("shower", 0.62, (5.0, 10.0), _MORNING, per_person=True, water_lpm=(8.0, 10.0), hot_c=38.0),
    Use(
        "bath",
        0.1,
        (6.0, 8.0),
        (_w(18.0, 22.0),),
        per_person=True,
        water_lpm=(11.0, 13.0),
        hot_c=40.0,
    ),
    Use("toilet", 5.0, (0.75, 1.25), _WAKING, per_person=True, water_lpm=(6.0, 6.0)),
    Use("basin", 6.0, (0.2, 0.8), _WAKING, per_person=True, water_lpm=(4.0, 6.0), hot_c=30.0),
    Use("kitchen tap", 4.4, (0.3, 1.5), _WAKING, per_person=True, water_lpm=(5.0, 8.0)),
    Use("washing up", 0.8, (1.5, 3.0), (_w(18.5, 21.5),), water_lpm=(6.0, 8.0), hot_c=45.0),
)

PROGRAMMES: tuple[Programme, ...] = (
    Programme(
        "washing machine",
        0.55,
        (_w(8.0, 20.0),),
        (
            Phase((1.5, 2.0), electricity_w=10, water_lpm=10.0),  # fill
            Phase((15.0, 25.0), electricity_w=2000),  # heat
            Phase((35.0, 45.0), electricity_w=200),  # wash
            Phase((1.5, 2.0), electricity_w=10, water_lpm=10.0),  # rinse fill
            Phase((12.0, 15.0), electricity_w=200),  # rinse
            Phase((1.5, 2.0), electricity_w=10, water_lpm=10.0),  # rinse fill
            Phase((10.0, 12.0), electricity_w=200),  # rinse
            Phase((8.0, 12.0), electricity_w=450),  # spin
        ),
    ),
    Programme(
        "dishwasher",
        0.5,
        (_w(19.5, 22.5),),
        (
            Phase((1.0, 1.0), electricity_w=10, water_lpm=4.0),  # fill
            Phase((18.0, 22.0), electricity_w=2000),  # heat
            Phase((25.0, 35.0), electricity_w=100),  # wash
            Phase((1.0, 1.0), electricity_w=10, water_lpm=4.0),  # fill
            Phase((8.0, 12.0), electricity_w=2000),  # hot rinse
            Phase((10.0, 15.0), electricity_w=100),  # rinse
            Phase((1.0, 1.0), electricity_w=10, water_lpm=4.0),  # fill
            Phase((25.0, 35.0), electricity_w=10),  # dry
        ),
    ),
)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: exact, and cheap for the small means used here."""
    limit = math.exp(-mean)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _season(ordinal: int, reference: int, lag_days: float = 0.0) -> float:
    """+1 on the reference day of the year (plus lag), -1 six months later."""
    return math.cos(2 * math.pi * (ordinal - reference - lag_days) / _YEAR_DAYS)


# --------------------------------------------------------------------------------------------
# Step functions: a day's demand as a piecewise-constant rate, for fast lookups and integrals.


@dataclass(frozen=True, slots=True)
class _Profile:
    start: float
    end: float
    times: list[float]  # breakpoints; times[0] == start
    rates: list[float]  # the rate on [times[i], times[i + 1])
    cum: list[float]  # rate x seconds from start to times[i]

    @classmethod
    def build(cls, start: float, end: float, spans: list[_Span]) -> _Profile:
        events: list[tuple[float, int, float]] = []
        for s, e, rate, _ in spans:
            s, e = max(s, start), min(e, end)
            if s < e:
                events.append((s, 1, rate))
                events.append((e, -1, rate))
        events.sort()
        times, rates, cum = [start], [], [0.0]
        level, active, i = 0.0, 0, 0
        while True:
            while i < len(events) and events[i][0] <= times[-1]:
                _, sign, rate = events[i]
                level += sign * rate
                active += sign
                i += 1
            if active == 0:
                level = 0.0  # drop the float residue of adding and removing rates
            rates.append(max(level, 0.0))
            if i == len(events):
                return cls(start, end, times, rates, cum)
            t = events[i][0]
            cum.append(cum[-1] + rates[-1] * (t - times[-1]))
            times.append(t)

    def rate_at(self, t: float) -> float:
        return self.rates[bisect.bisect_right(self.times, t) - 1]

    def integral_to(self, t: float) -> float:
        """Rate x seconds over [start, t), for start <= t <= end."""
        i = bisect.bisect_right(self.times, t) - 1
        return self.cum[i] + self.rates[i] * (t - self.times[i])


# --------------------------------------------------------------------------------------------


class Household:
    """A seeded household whose demand and registers are pure functions of time.

    Every method takes POSIX seconds and gives the same answer for the same seed, whatever
    was asked before; the caches only make it fast.
    """

    _SCHEDULE_CACHE = 8  # days of schedules kept
    _PROFILE_CACHE = 12  # (day, utility) step functions kept

    def __init__(
        self,
        seed: int = 1,
        tz: str = "Europe/London",
        occupants: float = 2.4,
        epoch: date = EPOCH_DATE,
    ) -> None:
        """``epoch`` anchors the registers: the first register read costs one pass over the
        days since it, so a long-running demo keeps its own epoch (near its first start)."""
        if occupants <= 0:
            raise ValueError("occupants must be positive")
        self.seed = seed
        self.tz = ZoneInfo(tz)
        self.occupants = occupants
        self.epoch_date = epoch
        self._epoch_ordinal = epoch.toordinal()
        self.epoch = self._day_start(epoch.toordinal())
        # Real meters are not new: start the registers at a seeded, plausible reading.
        rng = random.Random(seed * _SEED_STRIDE)  # ordinal 0 is never a date
        self.initial: dict[Utility, float] = {
            Utility.ELECTRICITY: round(rng.uniform(5_000, 60_000)) * 1000.0,  # Wh
            Utility.GAS: round(rng.uniform(10_000, 150_000)) * 1000.0,  # Wh
            Utility.WATER: round(rng.uniform(100, 2_000)) * 1000.0,  # L
        }
        self._weather: dict[int, float] = {}
        self._schedules: OrderedDict[int, dict[Utility, list[_Span]]] = OrderedDict()
        self._profiles: OrderedDict[tuple[int, Utility], _Profile] = OrderedDict()
        self._last: dict[Utility, _Profile] = {}
        self._totals: dict[int, dict[Utility, float]] = {}
        # _prefix[u][o]: amount from the epoch to the start of day o; known for lo..hi.
        self._prefix: dict[Utility, dict[int, float]] = {
            u: {self._epoch_ordinal: 0.0} for u in Utility
        }
        self._prefix_range = {u: (self._epoch_ordinal, self._epoch_ordinal) for u in Utility}

    # ---- instantaneous demand

    def power_w(self, t: float) -> float:
        """Electrical demand at instant t, W."""
        return self._profile_at(Utility.ELECTRICITY, t).rate_at(t)

    def gas_power_w(self, t: float) -> float:
        """Gas fuel demand at instant t, W."""
        return self._profile_at(Utility.GAS, t).rate_at(t)

    def water_flow_lpm(self, t: float) -> float:
        """Water flow at instant t, litres per minute."""
        return self._profile_at(Utility.WATER, t).rate_at(t)

    # ---- amounts and registers

    def amount(self, utility: Utility, start: float, end: float) -> float:
        """Exact use over [start, end): Wh for electricity and gas, litres for water."""
        if end <= start:
            return 0.0
        first, last = self._ordinal(start), self._ordinal(end)
        head = self._profile(utility, first)
        if first == last:
            raw = head.integral_to(end) - head.integral_to(start)
            return raw * _PER_SECOND[utility]
        tail = self._profile(utility, last)
        raw = (head.integral_to(head.end) - head.integral_to(start)) + tail.integral_to(end)
        middle = sum(self._total(utility, o) for o in range(first + 1, last))
        return raw * _PER_SECOND[utility] + middle

    def electricity_wh(self, start: float, end: float) -> float:
        return self.amount(Utility.ELECTRICITY, start, end)

    def gas_wh(self, start: float, end: float) -> float:
        return self.amount(Utility.GAS, start, end)

    def water_l(self, start: float, end: float) -> float:
        return self.amount(Utility.WATER, start, end)

    def register(self, utility: Utility, t: float) -> float:
        """The cumulative meter register at t: Wh for electricity and gas, litres for water.

        It counts from the household's seeded initial reading at local midnight starting
        ``EPOCH_DATE`` (and counts down before it), so register(t1) - register(t0) is the
        amount over [t0, t1).
        """
        ordinal = self._ordinal(t)
        profile = self._profile(utility, ordinal)
        today = profile.integral_to(t) * _PER_SECOND[utility]
        # Grouped so that the sum is monotonic in t across midnight, despite rounding.
        return self.initial[utility] + (self._prefix_at(utility, ordinal) + today)

    # ---- the schedule itself

    def loads(self, utility: Utility, start: float, end: float) -> list[Load]:
        """Electricity or gas loads overlapping [start, end), in start order, unclipped."""
        if utility is Utility.WATER:
            raise ValueError("water comes as draws in L/min, not loads in W: use draws()")
        return [Load(*span) for span in self._spans(utility, start, end)]

    def draws(self, start: float, end: float) -> list[Draw]:
        """Water draws overlapping [start, end), in start order, unclipped."""
        return [Draw(*span) for span in self._spans(Utility.WATER, start, end)]

    def outdoor_c(self, day: date) -> float:
        """The day's mean outdoor temperature: season plus weather lasting a few days."""
        o = day.toordinal()
        weather = sum(w * self._weather_draw(o - k) for k, w in enumerate(_WEATHER_WEIGHTS))
        norm = math.sqrt(sum(w * w for w in _WEATHER_WEIGHTS))
        seasonal = _OUTDOOR_MEAN_C - _OUTDOOR_AMPLITUDE_C * _season(o, _COLDEST)
        return seasonal + _WEATHER_SIGMA_C * weather / norm

    # ---- internals: days

    def _ordinal(self, t: float) -> int:
        """The local date containing t, as an ordinal."""
        return datetime.fromtimestamp(t, self.tz).date().toordinal()

    def _day_start(self, ordinal: int) -> float:
        return datetime.combine(date.fromordinal(ordinal), time(), tzinfo=self.tz).timestamp()

    def _spans(self, utility: Utility, start: float, end: float) -> list[_Span]:
        found: list[_Span] = []
        for o in range(self._ordinal(start) - 1, self._ordinal(end) + 1):
            found.extend(s for s in self._schedule(o)[utility] if s[0] < end and s[1] > start)
        found.sort()
        return found

    def _profile_at(self, utility: Utility, t: float) -> _Profile:
        last = self._last.get(utility)
        if last is not None and last.start <= t < last.end:
            return last
        profile = self._last[utility] = self._profile(utility, self._ordinal(t))
        return profile

    def _profile(self, utility: Utility, ordinal: int, *, keep: bool = True) -> _Profile:
        key = (ordinal, utility)
        profile = self._profiles.get(key)
        if profile is None:
            start, end = self._day_start(ordinal), self._day_start(ordinal + 1)
            spans = self._schedule(ordinal - 1)[utility] + self._schedule(ordinal)[utility]
            profile = _Profile.build(start, end, spans)
            if not keep:  # a one-off for a day total: do not evict the days in use
                return profile
            self._profiles[key] = profile
            if len(self._profiles) > self._PROFILE_CACHE:
                self._profiles.popitem(last=False)
        else:
            self._profiles.move_to_end(key)
        return profile

    def _total(self, utility: Utility, ordinal: int) -> float:
        """The amount over local day `ordinal`.

        Taken from the same step function that register() integrates within the day, so a
        register never steps back at midnight, not even by a rounding error: a meter that
        floors it to whole Wh would report that as a 1 Wh reverse flow.
        """
        totals = self._totals.get(ordinal)
        if totals is None:
            totals = self._totals[ordinal] = {}
            for u in Utility:
                profile = self._profile(u, ordinal, keep=False)
                totals[u] = profile.integral_to(profile.end) * _PER_SECOND[u]
        return totals[utility]

    def _prefix_at(self, utility: Utility, ordinal: int) -> float:
        prefix = self._prefix[utility]
        lo, hi = self._prefix_range[utility]
        while ordinal > hi:
            prefix[hi + 1] = prefix[hi] + self._total(utility, hi)
            hi += 1
        while ordinal < lo:
            total = self._total(utility, lo - 1)
            before = prefix[lo] - total
            while before + total > prefix[lo]:  # rounding must not make the day overshoot
                before = math.nextafter(before, -math.inf)
            prefix[lo - 1] = before
            lo -= 1
        self._prefix_range[utility] = (lo, hi)
        return prefix[ordinal]

    def _weather_draw(self, ordinal: int) -> float:
        """The day's weather draw: the first number of that day's own generator."""
        z = self._weather.get(ordinal)
        if z is None:
            z = self._weather[ordinal] = self._day_rng(ordinal).gauss(0.0, 1.0)
        return z

    def _day_rng(self, ordinal: int) -> random.Random:
        return random.Random(self.seed * _SEED_STRIDE + ordinal)

    def _schedule(self, ordinal: int) -> dict[Utility, list[_Span]]:
        schedule = self._schedules.get(ordinal)
        if schedule is None:
            schedule = _DayBuilder(self, ordinal).build()
            self._schedules[ordinal] = schedule
            if len(self._schedules) > self._SCHEDULE_CACHE:
                self._schedules.popitem(last=False)
        else:
            self._schedules.move_to_end(ordinal)
        return schedule


class _DayBuilder:
    """Draws one local day's schedule. The order of the draws is part of the model."""

    def __init__(self, house: Household, ordinal: int) -> None:
        self.house = house
        self.ordinal = ordinal
        self.day = date.fromordinal(ordinal)
        self.midnight = datetime.combine(self.day, time())
        self.start = house._day_start(ordinal)
        self.end = house._day_start(ordinal + 1)
        self.rng = house._day_rng(ordinal)
        self.rng.gauss(0.0, 1.0)  # the weather draw (see Household._weather_draw)
        self.out: dict[Utility, list[_Span]] = {u: [] for u in Utility}
        self.summer = (1 - _season(ordinal, _COLDEST)) / 2  # 0 mid-January, 1 mid-July
        self.darkness = (1 + _season(ordinal, _DARKEST)) / 2  # 1 at the winter solstice
        mains_c = _MAINS_MEAN_C - _MAINS_AMPLITUDE_C * _season(ordinal, _COLDEST, _MAINS_LAG_DAYS)
        self.mains_c = mains_c

    def at(self, hours: float) -> float:
        """Local wall-clock hours after midnight (may pass 24) as POSIX seconds."""
        local = (self.midnight + timedelta(hours=hours)).replace(tzinfo=self.house.tz)
        return max(local.timestamp(), self.start)

    def add(self, utility: Utility, start: float, seconds: float, rate: float, name: str) -> None:
        if seconds > 0 and rate > 0:
            self.out[utility].append((start, start + seconds, rate, name))

    def pick(self, windows: tuple[Window, ...]) -> float:
        """A uniformly random instant in one of the windows, chosen by weight."""
        (w,) = self.rng.choices(windows, weights=[w.weight for w in windows])
        return self.at(self.rng.uniform(w.start_h, w.end_h))

    def build(self) -> dict[Utility, list[_Span]]:
        self.baseload(BASELOAD)
        self.fridge(FRIDGE)
        for block in BLOCKS:
            self.block(block)
        for use in USES:
            self.use(use)
        self.oven(OVEN)
        for programme in PROGRAMMES:
            self.programme(programme)
        self.heating(HEATING)
        limit = self.house._day_start(self.ordinal + 2)
        for spans in self.out.values():
            spans.sort()
            if any(end > limit for _, end, _, _ in spans):
                raise ValueError(f"a schedule for {self.day} spills past the next day")
        return self.out

    def baseload(self, spec: Baseload) -> None:
        # Hour by elapsed hour, so DST days get 23 or 25 of them and no gap or overlap.
        rng, t = self.rng, self.start
        while t < self.end:
            hour = datetime.fromtimestamp(t, self.house.tz).hour
            watts = spec.watts_by_hour[hour] * rng.uniform(1 - spec.jitter, 1 + spec.jitter)
            self.add(Utility.ELECTRICITY, t, min(3600.0, self.end - t), watts, "base")
            t += 3600.0

    def fridge(self, spec: Fridge) -> None:
        rng = self.rng
        period = rng.uniform(*spec.period_min) * 60
        duty = spec.duty_winter + (spec.duty_summer - spec.duty_winter) * self.summer
        t = self.start - rng.uniform(0, period)
        while t < self.end:
            on = min(t + duty * period * rng.uniform(0.9, 1.1), self.end)
            s = max(t, self.start)
            self.add(Utility.ELECTRICITY, s, on - s, spec.watts, "fridge")
            t += period

    def block(self, spec: Block) -> None:
        rng = self.rng
        t = self.at(rng.uniform(*spec.start_h))
        end = self.at(rng.uniform(*spec.end_h))
        mean_w = spec.watts + spec.dark_watts * self.darkness
        while t < end:
            step = min(spec.step_min * 60, end - t)
            self.add(Utility.ELECTRICITY, t, step, mean_w * rng.uniform(0.6, 1.4), spec.name)
            t += step

    def use(self, spec: Use) -> None:
        rng = self.rng
        mean = spec.per_day * (self.house.occupants if spec.per_person else 1.0)
        for _ in range(_poisson(rng, mean)):
            start = self.pick(spec.windows)
            seconds = rng.uniform(*spec.minutes) * 60
            self.add(
                Utility.ELECTRICITY, start, seconds, rng.uniform(*spec.electricity_w), spec.name
            )
            lpm = rng.uniform(*spec.water_lpm)
            self.add(Utility.WATER, start, seconds, lpm, spec.name)
            if spec.hot_c is not None:
                self.add(Utility.GAS, start, seconds, self.hot_water_w(lpm, spec.hot_c), spec.name)

    def hot_water_w(self, lpm: float, hot_c: float) -> float:
        """Gas fuel power for a combi boiler heating a flow from mains to hot_c."""
        heat_w = lpm / 60 * _WATER_J_PER_L_K * max(0.0, hot_c - self.mains_c)
        return heat_w / _BOILER_EFFICIENCY

    def oven(self, spec: Oven) -> None:
        rng = self.rng
        if rng.random() >= spec.chance_per_day:
            return
        t = self.at(rng.uniform(*spec.start_h))
        end = t + rng.uniform(*spec.minutes) * 60
        watts = rng.uniform(*spec.watts)
        duty = rng.uniform(*spec.duty)
        self.add(Utility.ELECTRICITY, t, spec.preheat_min * 60, watts, "oven")
        t += spec.preheat_min * 60
        while t < end:
            self.add(
                Utility.ELECTRICITY, t, min(duty * spec.cycle_min * 60, end - t), watts, "oven"
            )
            t += spec.cycle_min * 60

    def programme(self, spec: Programme) -> None:
        rng = self.rng
        if rng.random() >= spec.chance_per_day:
            return
        t = self.pick(spec.windows)
        for phase in spec.phases:
            seconds = rng.uniform(*phase.minutes) * 60
            self.add(Utility.ELECTRICITY, t, seconds, phase.electricity_w, spec.name)
            self.add(Utility.WATER, t, seconds, phase.water_lpm, spec.name)
            t += seconds

    def heating(self, spec: Heating) -> None:
        rng = self.rng
        degree_days = max(0.0, spec.base_c - self.house.outdoor_c(self.day))
        if degree_days <= 0:
            return
        cold = min(1.0, degree_days / spec.full_power_degree_days)
        watts = spec.min_w + (spec.max_w - spec.min_w) * cold * rng.uniform(0.85, 1.0)
        total_s = degree_days * spec.wh_per_degree_day * 3600 / watts  # burning time
        share = sum(w.weight for w in spec.windows)
        for window in spec.windows:
            start, end = self.at(window.start_h), self.at(window.end_h)
            burn_s = total_s * window.weight / share
            cycle_s = rng.uniform(*spec.cycle_min) * 60
            cycles = max(1, int((end - start) // cycle_s))
            if burn_s / cycles < spec.min_burn_min * 60:  # mild: fewer, longer burns
                cycles = max(1, int(burn_s // (spec.min_burn_min * 60)))
                cycle_s = (end - start) / cycles
            each_s = burn_s / cycles
            if each_s > cycle_s:  # too cold for this power: burn harder
                each_s = cycle_s
                watts_here = min(spec.max_w, burn_s * watts / (cycles * cycle_s))
            else:
                watts_here = watts
            for i in range(cycles):
                self.add(Utility.GAS, start + i * cycle_s, each_s, watts_here, "heating")
