"""Dynamic prices: a table of (usually half-hourly) prices from a CSV file.

The CSV format (documented in docs/tariffs.md)::

    # Agile prices, p/kWh including VAT          <- lines starting with # are comments
    start,end,price
    2026-04-01T00:00:00Z,2026-04-01T00:30:00Z,12.34
    2026-04-01T01:30:00+01:00,,-1.05             <- an empty end: start + 30 minutes

* a header row names the columns, in any order and any case: ``start`` (or
  ``valid_from``), ``price`` (or ``value_inc_vat`` / ``value_exc_vat``, as in the Octopus
  API), and optionally ``end`` (or ``valid_to``); other columns are ignored;
* ``start`` and ``end`` are ISO-8601 date-times **with** a UTC offset or ``Z``; a time with
  no offset is an error (it would be ambiguous once a year);
* ``price`` is a decimal number of minor units per priced unit (p/kWh), in the same VAT
  basis as the rest of the tariff; it may be negative (Agile pays for use at times);
* slots may come in any order and leave gaps, but may not overlap.

A slot the table has no price for is priced by the tariff's fallback schedule, and each
piece priced that way is flagged ``estimated`` (``Pricer.estimated`` and the usage
functions count them), so that the display can say a cost is provisional.

Errors are ``PriceCsvError``: one line, ``file:line: what is wrong``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path

from ihd.tariff.money import MONEY_CONTEXT
from ihd.tariff.schedule import Piece, RateSchedule, merge_pieces, weighted_from_pieces

_mul = MONEY_CONTEXT.multiply

DEFAULT_SLOT_S = 1800

_COLUMNS = {
    "start": "start",
    "valid_from": "start",
    "end": "end",
    "valid_to": "end",
    "price": "price",
    "value_inc_vat": "price",
    "value_exc_vat": "price",
}


class PriceCsvError(ValueError):
    """A price table that cannot be used; ``str()`` is one line, naming file and line."""


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by slot: sorted, non-overlapping [start, end) in POSIX seconds."""

    starts: tuple[float, ...]
    ends: tuple[float, ...]
    prices: tuple[Decimal, ...]
    source: str = "<prices>"

    def __post_init__(self) -> None:
        if not (len(self.starts) == len(self.ends) == len(self.prices)):
            raise ValueError("starts, ends and prices differ in length")
        for i in range(len(self.starts)):
            if not self.starts[i] < self.ends[i]:
                raise ValueError(f"slot {i} ends before it starts")
            if i and self.starts[i] < self.ends[i - 1]:
                raise ValueError(f"slot {i} overlaps the one before (or is out of order)")

    def __len__(self) -> int:
        return len(self.starts)

    def price_at(self, t: float) -> Decimal | None:
        """The price of the slot holding ``t``, or None."""
        i = bisect_right(self.starts, t) - 1
        if i >= 0 and t < self.ends[i]:
            return self.prices[i]
        return None

    def gaps(self, start: float, end: float) -> list[tuple[float, float]]:
        """The parts of [start, end) that no slot covers."""
        out: list[tuple[float, float]] = []
        n = len(self.starts)
        i = max(0, bisect_right(self.starts, start) - 1)
        t = start
        while t < end:
            if i < n and self.ends[i] <= t:
                i += 1
            elif i < n and self.starts[i] <= t:
                t = self.ends[i]
                i += 1
            else:
                stop = min(self.starts[i], end) if i < n else end
                out.append((t, stop))
                t = stop
        return out


@dataclass(eq=False)
class DynamicRates:
    """A price table, with a fallback schedule for the times it has no price for."""

    table: PriceTable
    fallback: RateSchedule

    def rate_at(self, t: float) -> Decimal:
        p = self.table.price_at(t)
        return self.fallback.rate_at(t) if p is None else p

    def estimated_at(self, t: float) -> bool:
        return self.table.price_at(t) is None

    def pieces(self, start: float, end: float) -> list[Piece]:
        tab = self.table
        if end <= start:
            p = tab.price_at(start)
            if p is None:
                return [(start, start, self.fallback.rate_at(start), True)]
            return [(start, start, p, False)]
        out: list[Piece] = []
        n = len(tab.starts)
        i = max(0, bisect_right(tab.starts, start) - 1)
        t = start
        while t < end:
            if i < n and tab.ends[i] <= t:
                i += 1
                continue
            if i < n and tab.starts[i] <= t:
                e = min(tab.ends[i], end)
                out.append((t, e, tab.prices[i], False))
                t = e
                i += 1
                continue
            stop = min(tab.starts[i], end) if i < n else end
            out.extend((a, b, r, True) for a, b, r, _ in self.fallback.pieces(t, stop))
            t = stop
        return merge_pieces(out)

    def weighted(self, q: Decimal, start: float, end: float) -> tuple[Decimal, bool]:
        tab = self.table
        i = bisect_right(tab.starts, start) - 1
        if i >= 0 and start < tab.ends[i] and end <= tab.ends[i]:
            return _mul(q, tab.prices[i]), False  # the common case: inside one slot
        pieces = self.pieces(start, end)
        return weighted_from_pieces(q, start, end, pieces), any(p[3] for p in pieces)


# ------------------------------------------------------------------------------ CSV


def _instant(text: str, column: str, where: str) -> float:
    s = text.strip()
    try:
        when = dt.datetime.fromisoformat(s)
    except ValueError:
        raise PriceCsvError(f"{where}: {column} {s!r} is not an ISO-8601 date-time") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise PriceCsvError(
            f"{where}: {column} {s!r} has no UTC offset (write it as ...Z or ...+01:00)"
        )
    ts = when.timestamp()
    return int(ts) if ts == int(ts) else ts


def parse_price_csv(
    text: str, source: str = "<prices>", *, slot_s: int = DEFAULT_SLOT_S
) -> PriceTable:
    """Parse CSV text into a PriceTable (see the module docstring for the format)."""
    text = text.removeprefix("\ufeff")  # a byte-order mark, as spreadsheets write
    reader = csv.reader(io.StringIO(text, newline=""))
    roles: dict[str, int] | None = None
    rows: list[tuple[float, float, Decimal, int]] = []
    try:
        for row in reader:
            line = reader.line_num
            where = f"{source}:{line}"
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if roles is None:
                roles = {}
                for n, name in enumerate(row):
                    role = _COLUMNS.get(name.strip().lower())
                    if role is None:
                        continue
                    if role in roles:
                        raise PriceCsvError(f"{where}: two {role} columns in the header")
                    roles[role] = n
                for need in ("start", "price"):
                    if need not in roles:
                        raise PriceCsvError(
                            f"{where}: the header has no {need} column "
                            f"(expected start,end,price; got {','.join(row)[:60]!r})"
                        )
                continue
            if len(row) <= max(roles.values()):
                raise PriceCsvError(f"{where}: expected {max(roles.values()) + 1} columns")
            start = _instant(row[roles["start"]], "start", where)
            end_text = row[roles["end"]].strip() if "end" in roles else ""
            end = _instant(end_text, "end", where) if end_text else start + slot_s
            if not end > start:
                raise PriceCsvError(f"{where}: end is not after start")
            price_text = row[roles["price"]].strip()
            try:
                price = Decimal(price_text)
            except InvalidOperation:
                raise PriceCsvError(f"{where}: price {price_text!r} is not a number") from None
            if not price.is_finite():
                raise PriceCsvError(f"{where}: price {price_text!r} is not a number")
            rows.append((start, end, price, line))
    except csv.Error as e:
        raise PriceCsvError(f"{source}:{reader.line_num}: {e}") from None
    if roles is None:
        raise PriceCsvError(f"{source}:1: empty: expected a header start,end,price")
    if not rows:
        raise PriceCsvError(f"{source}:{reader.line_num}: no prices after the header")
    rows.sort()
    for (_, prev_end, _, prev_line), (start, _, _, line) in pairwise(rows):
        if start < prev_end:
            raise PriceCsvError(f"{source}:{line}: this slot overlaps the slot on line {prev_line}")
    return PriceTable(
        starts=tuple(r[0] for r in rows),
        ends=tuple(r[1] for r in rows),
        prices=tuple(r[2] for r in rows),
        source=source,
    )


def load_price_csv(path: Path, *, slot_s: int = DEFAULT_SLOT_S) -> PriceTable:
    """Read and parse a price CSV file (UTF-8). Errors are one-line PriceCsvErrors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PriceCsvError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PriceCsvError(f"{path}: cannot read: {e}") from None
    return parse_price_csv(text, str(path), slot_s=slot_s)
