"""Tariffs from the configuration: one ``[tariff.<utility>]`` TOML table -> a Tariff.

``parse_tariff_section`` takes the table as ``tomllib`` loaded it (``ihd.config`` hands it
over) and returns the utility's tariff and budgets, or raises ``TariffConfigError`` whose
``str()`` is one line naming the key: ``tariff.electricity.bands[2].start: expected a
time like '07:30', got '25:00'``. Array entries count from 1, in file order. The layout
is documented, with examples, in docs/tariffs.md; in short::

    [tariff.electricity]
    type = "tou"                   # "flat" (default), "tou", "blocks" or "dynamic"
    unit_rate = 27.0               # flat rate; tou: the rate outside the bands;
                                   # dynamic: the rate for slots with no price
    standing_charge = 53.35        # minor units per local day
    vat_percent = 0                # 0: prices include VAT; 5: add 5 % to them
    export_rate = 15.0             # electricity only: credit per exported kWh
    [[tariff.electricity.bands]]   # as many as needed
    start = "00:30"
    end = "05:30"
    rate = 8.5
    days = "all"                   # or "weekdays", "weekends", ["mon", "tue", ...]
    months = [11, 12, 1, 2]        # or dates = ["11-01", "02-28"]; default: all year
    [[tariff.electricity.history]] # a new tariff from a date (a whole tariff)
    from = 2026-04-01
    ...

This module reads a price CSV named by ``csv``/``export_csv`` (relative paths are taken
from ``base_dir``, the config file's directory); nothing else here does I/O.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ihd.meter.reading import Utility
from ihd.tariff.blocks import Blocks, Tier
from ihd.tariff.budget import Budget, Period
from ihd.tariff.dynamic import DynamicRates, PriceCsvError, PriceTable, load_price_csv
from ihd.tariff.flat import FlatTariff
from ihd.tariff.localtime import zone
from ihd.tariff.money import MILLI_PER_MINOR, currency_for, round_half_even
from ihd.tariff.plan import TariffHistory, TariffPlan
from ihd.tariff.pricer import Tariff
from ihd.tariff.schedule import WEEKDAYS, Band, BandError, FixedRate, RateSchedule, TimeOfUse

KINDS = ("flat", "tou", "blocks", "dynamic")

# Keys of a tariff (the [tariff.<utility>] table or a history entry).
TARIFF_KEYS = (
    "type",
    "name",
    "unit_rate",
    "standing_charge",
    "vat_percent",
    "bands",
    "bands_timezone",
    "blocks",
    "block_period",
    "billing_day",
    "csv",
    "export_rate",
    "export_bands",
    "export_csv",
)
# Keys only the [tariff.<utility>] table has.
UTILITY_KEYS = ("currency", "history", "budget")
# The keys ihd.config's flat schema already knows (and validates first).
FLAT_KEYS = ("unit_rate", "standing_charge", "calorific_value_mj_m3")
#: Every key of a [tariff.<utility>] table that this module reads beyond the flat ones.
SECTION_KEYS = frozenset(TARIFF_KEYS + UTILITY_KEYS) - frozenset(FLAT_KEYS)

_BAND_KEYS = ("start", "end", "rate", "days", "months", "dates", "name")
_BLOCK_KEYS = ("up_to", "rate")
_BUDGET_KEYS = ("daily", "weekly", "monthly", "typical_weeks", "month_start")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_SETS = {
    "all": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}


class TariffConfigError(ValueError):
    """A tariff table that cannot be used: ``str()`` is "key: reason", one line."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class UtilityTariff:
    """One utility's configured tariff, budgets and typical-use window."""

    utility: Utility
    tariff: Tariff
    budgets: tuple[Budget, ...] = ()
    typical_weeks: int = 4
    month_start: int = 1


# ------------------------------------------------------------------------ value parsers


def _decimal(key: str, v: Any, *, negative: bool = False) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise TariffConfigError(key, f"expected a decimal number, got {v!r}")
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise TariffConfigError(key, f"expected a decimal number, got {v!r}") from None
    if not d.is_finite():
        raise TariffConfigError(key, f"expected a decimal number, got {v!r}")
    if d < 0 and not negative:
        raise TariffConfigError(key, f"expected a non-negative number, got {v!r}")
    return d


def _integer(key: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TariffConfigError(key, f"expected a whole number, got {v!r}")
    if not lo <= v <= hi:
        raise TariffConfigError(key, f"must be between {lo} and {hi}, got {v!r}")
    return v


def _string(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise TariffConfigError(key, f"expected a string, got {v!r}")
    return v


def _choice(key: str, v: Any, options: Sequence[str]) -> str:
    if v not in options:
        raise TariffConfigError(key, f"must be one of {', '.join(map(repr, options))}, got {v!r}")
    return str(v)


_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def _time(key: str, v: Any) -> int:
    """'HH:MM' or 'HH:MM:SS' (00:00 to 24:00) -> seconds after midnight."""
    m = _TIME.fullmatch(v) if isinstance(v, str) else None
    if m is not None:
        h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
        total = h * 3600 + mi * 60 + s
        if mi < 60 and s < 60 and total <= 86_400:
            return total
    if isinstance(v, dt.time):  # TOML local time: start = 07:30:00
        return v.hour * 3600 + v.minute * 60 + v.second
    raise TariffConfigError(key, f"expected a time like '07:30', got {v!r}")


def _days(key: str, v: Any) -> frozenset[int]:
    if isinstance(v, str) and v.lower() in _DAY_SETS:
        return _DAY_SETS[v.lower()]
    names = [v] if isinstance(v, str) else v
    if not isinstance(names, list) or not names:
        raise TariffConfigError(
            key, f"expected 'all', 'weekdays', 'weekends' or a list like ['mon', 'tue'], got {v!r}"
        )
    out: set[int] = set()
    for name in names:
        low = name.lower() if isinstance(name, str) else ""
        if low in _FULL_DAYS:
            low = low[:3]
        if low not in WEEKDAYS:
            raise TariffConfigError(key, f"unknown day {name!r} (use mon, tue, ... sun)")
        out.add(WEEKDAYS.index(low))
    return frozenset(out)


def _months(key: str, v: Any) -> frozenset[int]:
    if not isinstance(v, list) or not v:
        raise TariffConfigError(key, f"expected a list of months 1-12, got {v!r}")
    for m in v:
        _integer(key, m, 1, 12)
    return frozenset(v)


def _month_day(key: str, v: Any) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{2})-(\d{2})", v) if isinstance(v, str) else None
    if m is not None:
        try:
            dt.date(2024, int(m[1]), int(m[2]))  # a leap year: 02-29 exists
            return int(m[1]), int(m[2])
        except ValueError:
            pass
    raise TariffConfigError(key, f"expected a month-day like '11-01', got {v!r}")


def _date(key: str, v: Any) -> dt.date:
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    raise TariffConfigError(key, f"expected a date like 2026-04-01, got {v!r}")


def _timezone(key: str, v: Any) -> str:
    name = _string(key, v)
    try:
        zone(name)
    except ValueError:
        raise TariffConfigError(
            key, f"unknown timezone {name!r} (use an IANA name like 'Europe/London')"
        ) from None
    return name


def _table(key: str, v: Any) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise TariffConfigError(key, f"expected a table, got {v!r}")
    return v


def _tables(key: str, v: Any) -> list[Mapping[str, Any]]:
    if not isinstance(v, list) or not v or not all(isinstance(e, dict) for e in v):
        raise TariffConfigError(
            key, f"expected an array of tables ([[{key}]] entries), got {v!r}"[:200]
        )
    return v


def _known(key: str, table: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for k in table:
        if k not in allowed:
            near = difflib.get_close_matches(str(k), allowed, n=1)
            hint = f" (did you mean '{key}.{near[0]}'?)" if near else ""
            shown = k if str(k).isprintable() else repr(k)
            raise TariffConfigError(f"{key}.{shown}", f"unknown key{hint}")


# ------------------------------------------------------------------------------- parts


def _bands(key: str, v: Any) -> list[Band]:
    bands: list[Band] = []
    for n, entry in enumerate(_tables(key, v), 1):
        k = f"{key}[{n}]"
        _known(k, entry, _BAND_KEYS)
        for need in ("start", "end", "rate"):
            if need not in entry:
                raise TariffConfigError(f"{k}.{need}", "required")
        start, end = _time(f"{k}.start", entry["start"]), _time(f"{k}.end", entry["end"])
        if start == 86_400:
            raise TariffConfigError(f"{k}.start", "a band cannot start at 24:00")
        if "months" in entry and "dates" in entry:
            raise TariffConfigError(f"{k}.dates", "give months or dates, not both")
        dates = None
        if "dates" in entry:
            d = entry["dates"]
            if not isinstance(d, list) or len(d) != 2:
                raise TariffConfigError(
                    f"{k}.dates", f"expected [first, last] like ['11-01', '02-28'], got {d!r}"
                )
            dates = (_month_day(f"{k}.dates", d[0]), _month_day(f"{k}.dates", d[1]))
        bands.append(
            Band(
                start=start,
                end=end,
                rate=_decimal(f"{k}.rate", entry["rate"], negative=True),
                days=_days(f"{k}.days", entry["days"]) if "days" in entry else frozenset(range(7)),
                months=_months(f"{k}.months", entry["months"]) if "months" in entry else None,
                dates=dates,
                name=_string(f"{k}.name", entry.get("name", "")),
            )
        )
    return bands


def _time_of_use(key: str, bands: list[Band], default: Decimal | None, timezone: str) -> TimeOfUse:
    try:
        return TimeOfUse(bands, default, timezone)
    except BandError as e:
        hint = (
            "" if default is not None or "no band" not in str(e) else "; add one or set unit_rate"
        )
        raise TariffConfigError(key, f"{e}{hint}") from None


def _blocks(key: str, v: Any) -> list[Tier]:
    entries = _tables(key, v)
    tiers: list[Tier] = []
    prev = Decimal(0)
    for n, entry in enumerate(entries, 1):
        k = f"{key}[{n}]"
        _known(k, entry, _BLOCK_KEYS)
        if "rate" not in entry:
            raise TariffConfigError(f"{k}.rate", "required")
        last = n == len(entries)
        up_to = None
        if "up_to" in entry:
            if last:
                raise TariffConfigError(f"{k}.up_to", "the last block has no upper limit")
            up_to = _decimal(f"{k}.up_to", entry["up_to"])
            if not up_to > prev:
                raise TariffConfigError(f"{k}.up_to", f"must be above {prev}, got {up_to}")
            prev = up_to
        elif not last:
            raise TariffConfigError(f"{k}.up_to", "required (every block but the last)")
        tiers.append(Tier(up_to, _decimal(f"{k}.rate", entry["rate"])))
    return tiers


def _csv(key: str, v: Any, base_dir: Path | None) -> PriceTable:
    path = Path(_string(key, v)).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return load_price_csv(path)
    except PriceCsvError as e:
        raise TariffConfigError(key, str(e)) from None


@dataclass(frozen=True, slots=True)
class _Context:
    utility: Utility
    currency: str
    timezone: str
    base_dir: Path | None
    defaults: Mapping[str, Decimal]


def _tariff(key: str, d: Mapping[str, Any], ctx: _Context, *, top: bool) -> Tariff:
    """One tariff: the utility's table (``top``) or a history entry."""
    kind = _choice(f"{key}.type", d.get("type", "flat"), KINDS)
    name = _string(f"{key}.name", d.get("name", ""))

    def only_with(field: str, kinds: Sequence[str]) -> None:
        if field in d and kind not in kinds:
            need = " or ".join(f"type = {k!r}" for k in kinds)
            raise TariffConfigError(f"{key}.{field}", f"needs {need} (this tariff is {kind!r})")

    only_with("bands", ("tou", "dynamic"))
    if "export_bands" not in d:  # the export bands follow bands_timezone too
        only_with("bands_timezone", ("tou", "dynamic"))
    only_with("blocks", ("blocks",))
    only_with("block_period", ("blocks",))
    only_with("billing_day", ("blocks",))
    only_with("csv", ("dynamic",))
    if kind == "blocks" and "unit_rate" in d:
        raise TariffConfigError(f"{key}.unit_rate", "blocks set the rates; remove unit_rate")

    def required(field: str, why: str) -> Any:
        if field not in d:
            raise TariffConfigError(f"{key}.{field}", f"required {why}")
        return d[field]

    if "standing_charge" in d:
        standing = _decimal(f"{key}.standing_charge", d["standing_charge"])
    elif top and kind == "flat":
        standing = ctx.defaults["standing_charge"]
    else:
        standing = _decimal(
            f"{key}.standing_charge",
            required("standing_charge", "(minor units per day; 0 if none)"),
        )
    unit_rate = _decimal(f"{key}.unit_rate", d["unit_rate"]) if "unit_rate" in d else None
    vat = _decimal(f"{key}.vat_percent", d.get("vat_percent", 0))
    if vat > 100:
        raise TariffConfigError(f"{key}.vat_percent", f"must be at most 100, got {vat}")
    bands_tz = (
        _timezone(f"{key}.bands_timezone", d["bands_timezone"])
        if "bands_timezone" in d
        else ctx.timezone
    )

    rates: RateSchedule | Blocks
    if kind == "flat":
        if unit_rate is None:
            unit_rate = (
                ctx.defaults["unit_rate"]
                if top
                else _decimal(f"{key}.unit_rate", required("unit_rate", "(minor units per unit)"))
            )
        rates = FixedRate(unit_rate)
    elif kind == "tou":
        bands = _bands(f"{key}.bands", required("bands", "with type = 'tou'"))
        rates = _time_of_use(f"{key}.bands", bands, unit_rate, bands_tz)
    elif kind == "blocks":
        tiers = _blocks(f"{key}.blocks", required("blocks", "with type = 'blocks'"))
        period = _choice(f"{key}.block_period", d.get("block_period", "day"), ("day", "month"))
        billing_day = _integer(f"{key}.billing_day", d.get("billing_day", 1), 1, 28)
        rates = Blocks(tiers, period, billing_day, ctx.timezone)  # type: ignore[arg-type]
    else:  # dynamic
        table = _csv(f"{key}.csv", required("csv", "with type = 'dynamic'"), ctx.base_dir)
        if "bands" in d:
            bands = _bands(f"{key}.bands", d["bands"])
            fallback: RateSchedule = _time_of_use(f"{key}.bands", bands, unit_rate, bands_tz)
        elif unit_rate is not None:
            fallback = FixedRate(unit_rate)
        else:
            raise TariffConfigError(
                f"{key}.unit_rate",
                "required with type = 'dynamic': the rate for times the CSV has no price for",
            )
        rates = DynamicRates(table, fallback)

    export = _export(key, d, ctx, bands_tz)
    currency = currency_for(ctx.currency)
    if kind == "flat" and not vat and export is None and not name:
        assert unit_rate is not None
        per = (
            "unit_rate_minor_per_m3" if ctx.utility is Utility.WATER else "unit_rate_minor_per_kwh"
        )
        return FlatTariff(  # exactly the tariff the flat keys always made
            utility=ctx.utility,
            currency=currency,
            standing_charge_minor_per_day=standing,
            timezone=ctx.timezone,
            **{per: unit_rate},
        )
    return TariffPlan(
        utility=ctx.utility,
        rates=rates,
        standing_charge_minor_per_day=standing,
        currency=currency,
        vat_percent=vat,
        export=export,
        timezone=ctx.timezone,
        name=name,
    )


def _export(key: str, d: Mapping[str, Any], ctx: _Context, bands_tz: str) -> RateSchedule | None:
    fields = [f for f in ("export_rate", "export_bands", "export_csv") if f in d]
    if not fields:
        return None
    if ctx.utility is not Utility.ELECTRICITY:
        raise TariffConfigError(f"{key}.{fields[0]}", "only electricity has export rates")
    rate = _decimal(f"{key}.export_rate", d["export_rate"]) if "export_rate" in d else None
    schedule: RateSchedule | None = None
    if "export_bands" in d:
        bands = _bands(f"{key}.export_bands", d["export_bands"])
        schedule = _time_of_use(f"{key}.export_bands", bands, rate, bands_tz)
    elif rate is not None:
        schedule = FixedRate(rate)
    if "export_csv" in d:
        table = _csv(f"{key}.export_csv", d["export_csv"], ctx.base_dir)
        if schedule is None:
            raise TariffConfigError(
                f"{key}.export_rate",
                "required with export_csv: the rate for times the CSV has no price for",
            )
        return DynamicRates(table, schedule)
    return schedule


def _budgets(key: str, v: Any, utility: Utility) -> tuple[tuple[Budget, ...], int, int]:
    table = _table(key, v)
    _known(key, table, _BUDGET_KEYS)
    budgets = []
    for field, period in (
        ("daily", Period.DAY),
        ("weekly", Period.WEEK),
        ("monthly", Period.MONTH),
    ):
        if field in table:
            minor = _decimal(f"{key}.{field}", table[field])
            budgets.append(Budget(utility, period, round_half_even(minor * MILLI_PER_MINOR)))
    weeks = _integer(f"{key}.typical_weeks", table.get("typical_weeks", 4), 1, 52)
    month_start = _integer(f"{key}.month_start", table.get("month_start", 1), 1, 28)
    return tuple(budgets), weeks, month_start


def parse_tariff_section(
    utility: Utility,
    section: Mapping[str, Any],
    *,
    currency: str = "GBP",
    timezone: str = "Europe/London",
    base_dir: Path | None = None,
    defaults: Mapping[str, Decimal] | None = None,
) -> UtilityTariff:
    """The ``[tariff.<utility>]`` table (as loaded, possibly empty) -> its tariff.

    ``currency`` and ``timezone`` are the household's; ``defaults`` the flat keys'
    defaults (``unit_rate``, ``standing_charge``), which apply to a flat tariff given
    without them, as always. Raises TariffConfigError naming the key."""
    key = f"tariff.{utility}"
    allowed = (
        TARIFF_KEYS + UTILITY_KEYS + (("calorific_value_mj_m3",) if utility is Utility.GAS else ())
    )
    _known(key, section, allowed)
    if defaults is None:
        defaults = {"unit_rate": Decimal(0), "standing_charge": Decimal(0)}
    if "currency" in section:
        code = _string(f"{key}.currency", section["currency"])
        try:
            currency = currency_for(code).code
        except ValueError as e:
            raise TariffConfigError(f"{key}.currency", str(e)) from None
    ctx = _Context(utility, currency, timezone, base_dir, defaults)
    tariff = _tariff(key, section, ctx, top=True)
    if "history" in section:
        entries: list[tuple[dt.date, Tariff]] = [(dt.date.min, tariff)]
        for n, entry in enumerate(_tables(f"{key}.history", section["history"]), 1):
            k = f"{key}.history[{n}]"
            _known(k, entry, ("from", *TARIFF_KEYS))
            if "from" not in entry:
                raise TariffConfigError(f"{k}.from", "required (the date the tariff starts)")
            start = _date(f"{k}.from", entry["from"])
            if start <= entries[-1][0]:
                raise TariffConfigError(
                    f"{k}.from", f"must be after the entry before it ({entries[-1][0]})"
                )
            entries.append((start, _tariff(k, entry, ctx, top=False)))
        tariff = TariffHistory(entries, timezone=timezone)
    budgets: tuple[Budget, ...] = ()
    weeks, month_start = 4, 1
    if "budget" in section:
        budgets, weeks, month_start = _budgets(f"{key}.budget", section["budget"], utility)
    return UtilityTariff(utility, tariff, budgets, weeks, month_start)


#: Commented lines for ``ihd config --example``: the richer tariff keys, not set.
EXAMPLE = """\
# Tariffs beyond a flat rate (docs/tariffs.md has every key and more examples):
# [tariff.electricity]
# type = "tou"                  # "flat", "tou" (time of use), "blocks" or "dynamic"
# unit_rate = 27.0              # outside the bands (tou) / when the CSV has no price (dynamic)
# standing_charge = 53.35
# vat_percent = 0               # 0: prices include VAT; 5: prices exclude it, add 5 %
# export_rate = 15.0            # credit per exported kWh (also export_bands, export_csv)
# [[tariff.electricity.bands]]  # as many bands as needed
# start = "00:30"
# end = "05:30"
# rate = 8.5
# days = "all"                  # "weekdays", "weekends", ["mon", "tue", ...]
# months = [1, 2, 3]            # or dates = ["11-01", "02-28"]; default: all year
# [[tariff.electricity.history]] # the tariff changes on a date
# from = 2026-04-01
# unit_rate = 25.73
# standing_charge = 51.37
# [tariff.electricity.budget]   # minor units; without one, the light follows typical use
# daily = 300
"""
