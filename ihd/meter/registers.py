"""Meter-side facts, as pure functions: register deltas (wrap, reset), duplicates and gaps,
clock jumps and DST, and spreading one delta over the minutes it covers.

The ingest (``ihd/app/ingest.py``) owns the state: the last sample of each (meter,
quantity) and the last clock offset of each meter. These helpers only decide, so they are
tested here exhaustively and the ingest stays a thin loop. Usage is derived from
cumulative registers only, never from instantaneous power, and exactly: values are
``Decimal(raw).scaleb(scaler)``, so a delta never drifts.

**Register deltas** (:func:`register_delta`), previous sample -> this one:

=============================================  ===============  =========================
case                                           ``kind``         book
=============================================  ===============  =========================
no previous sample                             ``baseline``     nothing
meter time older than the previous sample      ``older``        nothing; keep the previous
same meter time, same value                    ``duplicate``    nothing
same meter time, another value                 ``conflict``     nothing; keep the previous
value went up (or stayed)                      ``ok``           the difference
went down, and ``modulus`` says it wrapped     ``wrap``         up to the modulus, and on
went down otherwise (meter replaced, reset)    ``reset``        nothing: a new baseline
went up by more than ``max_step``              ``implausible``  nothing: a new baseline
=============================================  ===============  =========================

A wrap is believed only when the wrapped distance is small against the modulus (at most
``modulus // 100`` by default): a register at 99,999,990 that reads 5 next has wrapped
(15 units); one at 60,000,000 that reads 5 was replaced. The modulus is in raw units of
the register: ``10 ** digits`` for a register with a fixed number of display digits, or
``2 ** 32`` for a double-long-unsigned (``DOUBLE_LONG_UNSIGNED_MODULUS``).

**Gaps** (:func:`classify_interval`): pushes come on a fixed period; a step of more than
1.5 periods is a ``gap`` (``missed`` pushes), and the delta covering it is spread over its
minutes with :func:`spread` so no minute shows a spike.

**Clock** (:func:`classify_clock`): the offset is meter time minus reception time. A change
of the offset beyond ``tolerance_s`` between two pushes is a ``jump`` (the meter clock was
set, or it drifted badly); a change of one hour (within the tolerance) is ``dst_shift``: a
meter that sends local time with no deviation, which we take as UTC, crossing a DST change.
The ingest then books by reception time until the offset is stable again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "DOUBLE_LONG_UNSIGNED_MODULUS",
    "Delta",
    "Interval",
    "Sample",
    "classify_clock",
    "classify_interval",
    "register_delta",
    "spread",
]

DOUBLE_LONG_UNSIGNED_MODULUS = 1 << 32
DST_SHIFT_S = 3600.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a cumulative register: value = raw * 10**scaler, at meter time ts."""

    ts: float
    raw: int
    scaler: int

    @property
    def value(self) -> Decimal:
        return Decimal(self.raw).scaleb(self.scaler)


@dataclass(frozen=True, slots=True)
class Delta:
    kind: str  # see the module docstring
    amount: Decimal | None  # what to book, in the register's unit; None: book nothing
    keep: bool  # True: this sample becomes the new "previous"; False: keep the old one

    @property
    def books(self) -> bool:
        return self.amount is not None


def register_delta(
    prev: Sample | None,
    cur: Sample,
    *,
    modulus: int | None = None,
    max_wrap: int | None = None,
    max_step: Decimal | None = None,
) -> Delta:
    """Classify ``prev`` -> ``cur`` and say what to book (see the module docstring).

    ``modulus`` (raw units of ``prev``'s scaler) enables wrap detection; ``max_wrap``
    (default ``modulus // 100``) bounds the raw distance a wrap may cover. ``max_step``
    (in the register's unit) refuses rises no household could use in the interval, which
    is what a meter swapped for one with a higher reading looks like.
    """
    if prev is None:
        return Delta("baseline", None, True)
    if cur.ts < prev.ts:
        return Delta("older", None, False)
    if cur.ts == prev.ts:
        if cur.value == prev.value:
            return Delta("duplicate", None, False)
        return Delta("conflict", None, False)
    amount = cur.value - prev.value
    if amount >= 0:
        if max_step is not None and amount > max_step:
            return Delta("implausible", None, True)
        return Delta("ok", amount, True)
    if modulus is not None and modulus > 0:
        limit = modulus // 100 if max_wrap is None else max_wrap
        # Compare in prev's raw units (a wrap keeps the scaler; a changed scaler is a reset).
        if cur.scaler == prev.scaler and 0 <= cur.raw < modulus and 0 <= prev.raw < modulus:
            distance = cur.raw + modulus - prev.raw
            if 0 < distance <= limit:
                return Delta("wrap", Decimal(distance).scaleb(cur.scaler), True)
    return Delta("reset", None, True)


@dataclass(frozen=True, slots=True)
class Interval:
    kind: str  # "first", "ok", "duplicate", "older", "gap"
    missed: int = 0  # pushes missing in a gap


def classify_interval(prev_ts: float | None, ts: float, period_s: float) -> Interval:
    """The step from the previous push time to this one, against the push period."""
    if prev_ts is None:
        return Interval("first")
    step = ts - prev_ts
    if step == 0:
        return Interval("duplicate")
    if step < 0:
        return Interval("older")
    if period_s > 0 and step > 1.5 * period_s:
        return Interval("gap", max(1, round(step / period_s) - 1))
    return Interval("ok")


def classify_clock(
    prev_offset_s: float | None, offset_s: float, *, tolerance_s: float = 90.0
) -> str:
    """``first``, ``ok``, ``dst_shift`` or ``jump`` for the change of (meter time - reception
    time) between two pushes of one meter."""
    if prev_offset_s is None:
        return "first"
    change = offset_s - prev_offset_s
    if abs(change) <= tolerance_s:
        return "ok"
    if abs(abs(change) - DST_SHIFT_S) <= tolerance_s:
        return "dst_shift"
    return "jump"


def spread(
    amount: Decimal, start: float, end: float, bucket_s: int = 60
) -> list[tuple[int, Decimal]]:
    """Split ``amount`` used over (start, end] into buckets, in proportion to the time in
    each. Returns ``(bucket_start, part)`` pairs (bucket_start in whole seconds, a multiple
    of ``bucket_s``); the parts sum to ``amount`` exactly (the last one takes the rest).
    A bucket holds the times (bucket_start, bucket_start + bucket_s]."""
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    if not end > start:
        raise ValueError("spread needs end > start")
    first = _bucket_of(start, bucket_s, exclusive=True)
    last = _bucket_of(end, bucket_s, exclusive=False)
    if first == last:
        return [(last, amount)]
    total = Decimal(repr(end - start))
    out: list[tuple[int, Decimal]] = []
    booked = Decimal(0)
    b = first
    while b < last:
        lo, hi = max(float(b), start), float(b + bucket_s)
        part = (amount * Decimal(repr(hi - lo)) / total).quantize(_quantum(amount))
        out.append((b, part))
        booked += part
        b += bucket_s
    out.append((last, amount - booked))
    return out


def _bucket_of(t: float, bucket_s: int, *, exclusive: bool) -> int:
    """The bucket holding t, buckets being (b, b + bucket_s]."""
    b = int(t // bucket_s) * bucket_s
    if t == b and not exclusive:
        b -= bucket_s  # t is the end of the previous bucket
    return b


def _quantum(amount: Decimal) -> Decimal:
    exp = amount.as_tuple().exponent
    assert isinstance(exp, int)
    return Decimal(1).scaleb(min(exp, 0) - 6)  # six more decimals than the register has
