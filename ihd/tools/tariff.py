"""``ihd whatif`` and ``ihd reprice``: the stored history under another tariff.

``whatif`` prices the household's real usage (the store's minutes, read-only) under a
tariff from a TOML file and prints it beside what the usage cost as stored, per local
month, with the standing charges of both and the total. It only reads, so it is safe
while the display runs.

``reprice`` gives every stored usage minute (from ``--from`` on) the cost the configured
tariff says, after a tariff correction, and the hour, day and month rollups with them, in
one transaction (``Store.reprice``). Each meter's minutes are priced in time order, as
the ingest prices its deltas. It writes the history, so it refuses while a display answers
on the control socket. ``--dry-run`` only counts.

Exit status: 0 done; 1 failed (the reason is one line on stderr: a missing or broken
tariff file, no history); 2 a bad argument, or the display is running (``reprice``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby, tee
from operator import attrgetter
from pathlib import Path
from typing import Any

from ihd import config, paths
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.store import MeterUsage, Store, StoreError, StoreReader, ts_ms
from ihd.store.calendar import MONTH
from ihd.tariff import Tariff
from ihd.tariff.config import TariffConfigError, parse_tariff_section
from ihd.tariff.flat import tariffs_from_config
from ihd.tariff.money import Currency, format_money
from ihd.tariff.usage import bill, price_intervals
from ihd.tools.history import date_bound, display_running

#: name -> (help, description)
COMMANDS = {
    "whatif": (
        "price the stored history under another tariff",
        "Price the household's stored usage under the tariff in FILE ([tariff.<utility>] "
        "tables, as in the config file) and compare it, month by month, with what it cost "
        "as stored. Read-only: safe while the display runs. Dates are local (YYYY-MM-DD); "
        "--to is inclusive.",
    ),
    "reprice": (
        "re-price the stored history with the configured tariff (stop the display first)",
        "After correcting a tariff in the config file, give the stored usage (from --from "
        "on) the costs the configured tariff says, minutes and hour/day/month totals alike, "
        "in one transaction. Refused while the display runs. --dry-run only counts.",
    ),
}

UNITS = {"Wh": "kWh"}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true", help="the demo's history, not ihd run's")
    if name == "whatif":
        p.add_argument(
            "--tariff",
            type=Path,
            required=True,
            metavar="FILE",
            help="a TOML file with [tariff.<utility>] tables (the config's format)",
        )
    p.add_argument("--from", dest="start", metavar="DATE", help="first local date or time")
    if name == "whatif":
        p.add_argument("--to", dest="end", metavar="DATE", help="last local date (inclusive)")
    p.add_argument(
        "--utility", choices=[str(u) for u in Utility], help="one utility (default: all)"
    )
    if name == "reprice":
        p.add_argument("--dry-run", action="store_true", help="count the changes, write nothing")


class ToolError(Exception):
    """A one-line reason for stderr (exit 1)."""


def run(args: argparse.Namespace) -> int:
    p = paths.resolve(demo=args.demo, config_file=args.config, data_dir=args.data_dir)
    try:
        if args.command == "whatif":
            return _whatif(p, args)
        return _reprice(p, args)
    except (ToolError, StoreError, config.ConfigError) as e:
        print(f"ihd {args.command}: {e}", file=sys.stderr)
        return 1
    except sqlite3.Error as e:
        print(f"ihd {args.command}: cannot read {p.database}: {e}", file=sys.stderr)
        return 1


# ------------------------------------------------------------------ shared


def _config_tariffs(p: paths.Paths) -> tuple[config.Config, dict[Utility, Tariff]]:
    cfg = config.load(p.config_file)
    return cfg, tariffs_from_config(cfg)


def load_tariff_file(path: Path, cfg: config.Config) -> dict[Utility, Tariff]:
    """The ``[tariff.<utility>]`` tables of ``path``, parsed as the config parses them
    (the household's currency and timezone from ``cfg``; the flat keys' defaults)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ToolError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ToolError(f"{path}: cannot read: {e}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ToolError(f"{path}: not valid TOML: {e}") from None
    tables = raw.get("tariff")
    if not isinstance(tables, dict) or not tables:
        raise ToolError(f"{path}: no [tariff.<utility>] table (e.g. [tariff.electricity])")
    out: dict[Utility, Tariff] = {}
    for name, table in tables.items():
        try:
            utility = Utility(name)
        except ValueError:
            known = ", ".join(str(u) for u in Utility)
            raise ToolError(f"{path}: tariff.{name}: not a utility ({known})") from None
        if not isinstance(table, dict):
            raise ToolError(f"{path}: tariff.{name}: expected a table")
        defaults = {
            k: config.SCHEMA[f"tariff.{utility}.{k}"].default
            for k in ("unit_rate", "standing_charge")
        }
        try:
            entry = parse_tariff_section(
                utility,
                table,
                currency=str(cfg["household.currency"]),
                timezone=cfg.timezone,
                base_dir=path.parent,
                defaults=defaults,
            )
        except TariffConfigError as e:
            raise ToolError(f"{path}: {e}") from None
        out[utility] = entry.tariff
    return out


def _reader(p: paths.Paths) -> StoreReader:
    if not p.database.is_file():
        raise ToolError(f"no history at {p.database}")
    return StoreReader(p.database)


def _signed(milli: int, currency: Currency) -> str:
    text = format_money(milli, currency)
    zero = text == format_money(0, currency)  # rounds to nothing: no sign
    return text if text.startswith("-") or zero else "+" + text


def _quantity(amount: float, unit: str) -> str:
    if unit == "Wh":
        return f"{amount / 1000:,.2f} kWh"
    return f"{amount:,.3f} {unit}"


# ------------------------------------------------------------------ whatif


@dataclass
class _Month:
    start: int  # ms, clipped to the span
    end: int
    amount: float = 0.0
    other_milli: int = 0
    now_milli: int = 0
    whole: bool = True  # the whole local month (not cut by the span)


@dataclass
class WhatIf:
    """One utility's comparison; money in milli-minor units."""

    utility: Utility
    unit: str
    currency: Currency
    months: list[_Month] = field(default_factory=list)
    standing_now: int = 0
    standing_other: int = 0

    @property
    def amount(self) -> float:
        return sum(m.amount for m in self.months)

    @property
    def now_total(self) -> int:
        return sum(m.now_milli for m in self.months) + self.standing_now

    @property
    def other_total(self) -> int:
        return sum(m.other_milli for m in self.months) + self.standing_other


def compare(
    reader: StoreReader,
    utility: Utility,
    now: Tariff,
    other: Tariff,
    start: float | None,
    end: float | None,
) -> WhatIf | None:
    """The usage of ``utility`` in [start, end) (None: from its first minute / to its
    last day) as stored and under ``other``, per local month; None if there is none."""
    cal = reader.calendar
    lo, hi = (-1e12 if start is None else start), (1e12 if end is None else end)
    unit = str(other.metered_unit)
    months: dict[int, _Month] = {}
    first = last = None
    rows = reader.usage_intervals(utility, lo, hi, unit=unit)
    for pi in price_intervals(other, rows):
        ms = ts_ms(pi.start)
        first = ms if first is None else first
        last = ms
        key = cal.floor(ms, MONTH)
        m = months.get(key)
        if m is None:
            m = months[key] = _Month(key, cal.next_start(key, MONTH))
        m.amount += float(pi.amount)
        m.other_milli += pi.cost_milli
    if first is None or last is None:
        return None
    # The span: the given dates, or the whole local days the usage touches.
    span_lo = ts_ms(start) if start is not None else cal.day_ms(cal.local_date(first))
    span_hi = (
        ts_ms(end) if end is not None else cal.day_ms(cal.local_date(last) + dt.timedelta(days=1))
    )
    out = WhatIf(utility, unit, other.currency)
    for key in sorted(months):
        m = months[key]
        m.whole = span_lo <= m.start and m.end <= span_hi
        m.start, m.end = max(m.start, span_lo), min(m.end, span_hi)
        m.now_milli = reader.cost_between(m.start / 1000, m.end / 1000, utility)
        out.months.append(m)
    tz = cal.name
    a, b = span_lo / 1000, span_hi / 1000
    out.standing_now = bill(now, [], start=a, end=b, timezone=tz).standing_milli
    out.standing_other = bill(other, [], start=a, end=b, timezone=tz).standing_milli
    return out


def format_whatif(w: WhatIf, label: str, zone: Any) -> list[str]:
    cur = w.currency
    head = ("period", "energy" if w.unit == "Wh" else "amount", "now", label, "difference")
    rows: list[tuple[str, ...]] = []
    for m in w.months:
        d0 = dt.datetime.fromtimestamp(m.start / 1000, zone).date()
        d1 = dt.datetime.fromtimestamp(m.end / 1000, zone).date() - dt.timedelta(days=1)
        period = f"{d0:%Y-%m}" if m.whole else str(d0) if d0 == d1 else f"{d0} to {d1}"
        rows.append(
            (
                period,
                _quantity(m.amount, w.unit),
                format_money(m.now_milli, cur),
                format_money(m.other_milli, cur),
                _signed(m.other_milli - m.now_milli, cur),
            )
        )
    rows.append(
        (
            "standing",
            "",
            format_money(w.standing_now, cur),
            format_money(w.standing_other, cur),
            _signed(w.standing_other - w.standing_now, cur),
        )
    )
    rows.append(
        (
            "total",
            _quantity(w.amount, w.unit),
            format_money(w.now_total, cur),
            format_money(w.other_total, cur),
            _signed(w.other_total - w.now_total, cur),
        )
    )
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = []
    for r in (head, *rows):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w_) for c, w_ in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _whatif(p: paths.Paths, args: argparse.Namespace) -> int:
    cfg, current = _config_tariffs(p)
    others = load_tariff_file(args.tariff, cfg)
    if args.utility:
        u = Utility(args.utility)
        if u not in others:
            raise ToolError(f"{args.tariff}: no [tariff.{u}] table")
        others = {u: others[u]}
    any_usage = False
    with _reader(p) as reader:
        start = None if args.start is None else date_bound(reader, args.start, end=False)
        end = None if args.end is None else date_bound(reader, args.end, end=True)
        if start is not None and end is not None and end <= start:
            print("ihd whatif: --to is before --from", file=sys.stderr)
            return 2
        blocks: list[list[str]] = []
        for utility, other in others.items():
            w = compare(reader, utility, current[utility], other, start, end)
            if w is None:
                blocks.append([f"{utility}: no usage stored in the span"])
                continue
            any_usage = True
            label = str(getattr(other, "name", "") or "") or args.tariff.stem
            now_name = str(getattr(current[utility], "name", "") or "") or "config"
            intro = f"{utility}: now (as stored; standing charge: {now_name}) vs {label}"
            blocks.append([intro, *format_whatif(w, label, reader.calendar.zone)])
    if not any_usage:
        raise ToolError(f"no usage history for {', '.join(map(str, others))} in {p.database}")
    print("\n\n".join("\n".join(b) for b in blocks))
    return 0


# ------------------------------------------------------------------ reprice


def _amount(r: MeterUsage) -> float:
    # As the ingest prices: the energy when there is one (gas in Wh), else the register.
    return r.amount if r.energy_wh is None else r.energy_wh


def new_costs(tariff: Tariff, rows: Iterable[MeterUsage]) -> Iterator[tuple[MeterUsage, int]]:
    """Each row (by meter, then time) with its cost under ``tariff``; each meter's
    minutes are one priced series, as each meter has its own pricer in the ingest."""
    for _, group in groupby(rows, key=attrgetter("meter")):
        a, b = tee(group)
        priced = price_intervals(tariff, ((r.start, r.end, Decimal(repr(_amount(r)))) for r in b))
        for r, pr in zip(a, priced, strict=True):
            yield r, pr.cost_milli


@dataclass
class _Count:
    rows: int = 0
    changed: int = 0
    old_milli: int = 0
    new_milli: int = 0


def _reprice(p: paths.Paths, args: argparse.Namespace) -> int:
    if display_running(p):
        print(
            f"ihd reprice: the display is running (it answers on {p.control_socket}): "
            "stop it first",
            file=sys.stderr,
        )
        return 2
    _, current = _config_tariffs(p)
    utilities = [Utility(args.utility)] if args.utility else list(Utility)
    counts: dict[Utility, _Count] = {}
    with _reader(p) as reader:
        start = -1e12 if args.start is None else date_bound(reader, args.start, end=False)
        for u in utilities:
            c = _Count()
            for r, cost in new_costs(
                current[u], reader.usage_rows("minute", start, 1e12, utility=u)
            ):
                c.rows += 1
                c.old_milli += r.cost_milli
                c.new_milli += cost
                c.changed += cost != r.cost_milli
            if c.rows:
                counts[u] = c
        if not counts:
            raise ToolError(f"no usage history to re-price in {p.database}")
        if not args.dry_run:
            store = Store(p.database, diag=Diagnostics())
            try:
                for u in counts:
                    got = store.reprice(
                        u,
                        (
                            (r.meter, ts_ms(r.start), cost)
                            for r, cost in new_costs(
                                current[u], reader.usage_rows("minute", start, 1e12, utility=u)
                            )
                        ),
                    )
                    counts[u] = _Count(got.rows, got.changed, got.old_milli, got.new_milli)
            finally:
                store.close()
    for u, c in counts.items():
        cur = current[u].currency
        print(
            f"{u}: {c.changed} of {c.rows} minutes {'would change' if args.dry_run else 'changed'}"
            f"; total {format_money(c.old_milli, cur)} -> {format_money(c.new_milli, cur)} "
            f"({_signed(c.new_milli - c.old_milli, cur)})"
        )
    if args.dry_run:
        print("dry run: nothing was written")
    return 0
