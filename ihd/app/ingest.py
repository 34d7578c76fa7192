"""From one received frame to readings, priced usage and a fresh snapshot.

This is the only place where the layers meet: SMWAP framing, the meter decoder, the
tariff and the store's records. It holds no thread and no clock of its own (frames carry
their reception time), so tests drive it frame by frame.

Usage is derived from cumulative registers: each push's register minus the previous
one for that meter. The delta is booked to the minute that holds the end of the interval
(so a push at 00:00:00 covering 23:30-00:00 counts for the day before). A register that
goes backwards (a replaced meter) starts a new baseline and books nothing; a push that
is not newer than the last one is a duplicate and books nothing.

Each meter register's ``Pricer`` keeps the exact (Decimal) running cost, and rounds each
delta so that the stored integers telescope. That running total is part of every batch
that books usage (``state``: ``pricer.<EUI-64>.<quantity>``), so it commits with the usage
it priced, and ``resume`` restarts each Pricer from it: the costs after a restart, or
after a crash that lost the uncommitted interval, are rounded exactly as in an
uninterrupted run.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from ihd.app.live import Snapshot, UtilityToday
from ihd.diag import Diagnostics
from ihd.meter.cipher import DlmsKeys
from ihd.meter.device import MeterDevice
from ihd.meter.dlms import MeterDecodeError, decode_push
from ihd.meter.gas import volume_to_kwh_exact
from ihd.meter.reading import Reading, Utility
from ihd.meter.registers import DOUBLE_LONG_UNSIGNED_MODULUS, Sample, register_delta, spread
from ihd.meter.replay import STATE_PREFIX as DLMS_STATE_PREFIX
from ihd.meter.replay import InvocationGuard
from ihd.radio.contract import RxFrame, RxInfo
from ihd.smwap.mac import FrameType
from ihd.smwap.receiver import Received, Receiver
from ihd.smwap.replay import STATE_PREFIX
from ihd.store import Batch, MeterInfo, StoreReader, Usage
from ihd.tariff import Pricer, Tariff

log = logging.getLogger("ihd.ingest")


#: The register whose deltas are each utility's usage. Rate registers (1.8.1, 1.8.2...) are
#: stored but not booked: they split the same energy and would count it twice.
USAGE_QUANTITY = {
    Utility.ELECTRICITY: "energy_import_wh",
    Utility.GAS: "volume_m3",
    Utility.WATER: "volume_m3",
}

#: State keys of the pricers' exact running totals: ``pricer.<EUI-64>.<quantity>``.
PRICER_PREFIX = "pricer."

#: A delta over more than this (and 1.5 x the meter's usual interval) covers missed pushes;
#: before the usual interval is known, more than the longest push period (30 min) does.
GAP_AFTER_S = 90.0
LONGEST_PERIOD_S = 2700.0
#: Longer silences (or a meter clock that jumped) are booked where they end, unspread.
MAX_SPREAD_S = 7 * 86400.0

#: Receiver outcomes -> diagnostics counters (the rest are "smwap.<outcome>").
_OUTCOME_COUNTER = {"ack": "smwap.not_data", "no_source": "smwap.no_source_address"}

#: Meter times outside [1970, 9999) are no real clock, and days around them cannot be computed.
_EARLIEST_PUSH = 0.0
_LATEST_PUSH = dt.datetime(9999, 1, 1, tzinfo=dt.UTC).timestamp()


@dataclass(slots=True)
class _Register:
    ts: float
    raw: int
    scaler: int


@dataclass(slots=True)
class _Totals:
    """Running totals for one utility since local midnight (mutable: the hot path)."""

    has_energy: bool
    standing_milli: int
    amount: float = 0.0
    energy_wh: float = 0.0
    cost_milli: int = 0
    last_at: float | None = None

    def add(
        self, amount: float, energy_wh: float | None, cost_milli: int, at: float | None
    ) -> None:
        self.amount += amount
        self.energy_wh += energy_wh or 0.0
        self.cost_milli += cost_milli
        if at is not None:
            self.last_at = at

    def frozen(self, utility: Utility) -> UtilityToday:
        return UtilityToday(
            utility,
            self.amount,
            self.energy_wh if self.has_energy else None,
            self.cost_milli,
            self.standing_milli,
            self.last_at,
        )


class Ingest:
    def __init__(
        self,
        *,
        meters: Mapping[str, MeterDevice],
        tariffs: Mapping[Utility, Tariff],
        tz: str,
        diag: Diagnostics,
        gas_cv_mj_m3: float = 39.5,
        receiver: Receiver | None = None,
        on_frame: Callable[[Received, RxInfo], bool] | None = None,
        dlms_keys: Mapping[str, DlmsKeys] | None = None,
    ) -> None:
        self.meters = dict(meters)
        # general-glo-ciphering keys per meter (EUI-64 text), from pairing; swapped whole
        self.dlms_keys: Mapping[str, DlmsKeys] = dict(dlms_keys or {})
        self.dlms_guard = InvocationGuard()  # DLMS invocation counters, committed like marks
        self.receiver = receiver or Receiver()
        self.on_frame = on_frame
        self.tariffs = dict(tariffs)
        self.tz = zoneinfo.ZoneInfo(tz)
        self.diag = diag
        self.gas_cv = gas_cv_mj_m3
        self._last: dict[tuple[str, str], _Register] = {}
        self._pricers: dict[tuple[str, str], Pricer] = {}
        self._interval: dict[tuple[str, str], float] = {}  # usual push interval, learned
        self._carried: dict[tuple[str, str], Decimal] = {}  # totals from the store
        self._day: dt.date | None = None
        self._day_start = 0.0
        self._day_end = 0.0
        self._today: dict[Utility, _Totals] = {}
        self._demand_w: float | None = None
        self._demand_at: float | None = None
        self._last_frame_at: float | None = None
        self._at = 0.0
        self.lights: dict[Utility, str] = {}  # set by the housekeeping (ihd.app.ambient)

    # --- start-up --------------------------------------------------------------------------
    def resume(self, reader: StoreReader, now: float) -> None:
        """Continue from the store: register baselines and today's totals so far."""
        demand_at = -1.0
        for (meter, quantity), last in reader.last_readings().items():
            self._last[(meter, quantity)] = _Register(last.ts, last.raw, last.scaler)
            paired = self.meters.get(meter)
            if (
                quantity == "power_import_w"
                and paired is not None
                and paired.utility is Utility.ELECTRICITY
                and last.ts > demand_at
            ):
                demand_at = last.ts
                self._demand_w = float(Decimal(last.raw).scaleb(last.scaler))
                self._demand_at = last.ts
        self.receiver.guard.load(reader.states(STATE_PREFIX))
        self.dlms_guard.load(reader.states(DLMS_STATE_PREFIX))
        self._carried = {}
        self._pricers = {}
        for key, value in reader.states(PRICER_PREFIX).items():
            meter, _, quantity = key.removeprefix(PRICER_PREFIX).partition(".")
            try:
                self._carried[(meter, quantity)] = Decimal(value)
            except ArithmeticError:  # decimal.InvalidOperation: not a number
                log.warning("ignored an unreadable pricer total %s=%r", key, value)
        seen = [m.seen_ms / 1000 for m in reader.meters() if m.eui64 in self.meters]
        self._last_frame_at = max(seen, default=None)
        self._start_day(now)
        for utility in Utility:
            total = reader.usage_total(utility, self._day_start, self._day_end)
            self._today[utility].add(total.amount, total.energy_wh, total.cost_milli, None)
        self._at = now

    # --- per frame ---------------------------------------------------------------------------
    def handle(self, frame: RxFrame) -> tuple[Batch | None, Snapshot] | None:
        info = frame.info
        if info.fcs_ok is False:
            self.diag.count("radio.fcs_error")
            return None
        rx = self.receiver.receive(
            frame.psdu, info.fcs_len, rssi_dbm=info.rssi_dbm, lqi=info.lqi, now=info.timestamp
        )
        # Pairing sees every parsed frame; its own (a KEY_TRANSPORT under the link key, say)
        # are no business of the data path.
        if self.on_frame is not None and rx.frame is not None and self.on_frame(rx, info):
            self.diag.count("smwap.link")
            return None
        if not rx.ok:
            self.diag.count(_OUTCOME_COUNTER.get(rx.outcome, f"smwap.{rx.outcome}"))
            if rx.outcome not in ("ack", "link", "duplicate"):
                log.info(
                    "dropped a frame from %s: %s: %s", rx.src_eui64 or "?", rx.outcome, rx.reason
                )
            return None
        mac = rx.frame
        assert mac is not None
        if mac.frame_type is not FrameType.DATA:
            self.diag.count("smwap.not_data")
            return None
        if mac.src is None or rx.src_ext is None:
            self.diag.count("smwap.no_source_address")
            return None
        eui = f"{rx.src_ext:016X}"
        paired = self.meters.get(eui)
        if paired is None:
            self.diag.count("smwap.unknown_source")
            log.info("ignored a frame from %s: not a paired meter", eui)
            return None
        self.diag.count("smwap.frames_ok")
        try:
            push = decode_push(
                mac.payload,
                meter=eui,
                utility=paired.utility,
                received_at=info.timestamp,
                keys=self.dlms_keys.get(eui),
                guard=self.dlms_guard,
            )
        except MeterDecodeError as e:  # decode_error, no_key, auth_failure, replay, ...
            self.diag.count(f"meter.{e.outcome}")
            log.warning("could not decode a push from %s: %s", eui, e)
            return None
        if push.unknown:  # kept as raw readings; named here so that someone can map them
            self.diag.count("meter.unknown_obis", len(push.unknown))
            self.diag.set(f"meter.{eui}.unknown_obis", " ".join(sorted(set(push.unknown))))
        if not _EARLIEST_PUSH <= push.timestamp < _LATEST_PUSH:
            # The local-day arithmetic cannot place it (datetime ends in year 9999).
            self.diag.count("meter.bad_timestamp")
            log.warning("ignored a push from %s with meter time %r", eui, push.timestamp)
            return None
        self.diag.count("meter.pushes")
        self._last_frame_at = info.timestamp
        self.diag.set(f"meter.{eui}.last_seen", round(info.timestamp, 3))
        if info.rssi_dbm is not None:
            self.diag.set(f"meter.{eui}.rssi_dbm", round(info.rssi_dbm, 1))
        batch = self.accept(paired, push.readings, seen_at=info.timestamp)
        marks = self.receiver.guard.pending()
        dlms_marks = self.dlms_guard.pending()
        if marks or dlms_marks:  # replay marks commit in the same transaction as the readings
            batch = replace(batch, state={**batch.state, **marks, **dlms_marks})
            self.receiver.guard.committed(marks)
            self.dlms_guard.committed(dlms_marks)
        return batch, self.snapshot(push.readings)

    def accept(
        self, meter: MeterDevice, readings: tuple[Reading, ...] | list[Reading], *, seen_at: float
    ) -> Batch:
        """Readings from one push -> the store batch; updates live totals."""
        if readings:
            self.roll_day(max(r.timestamp for r in readings))
        usage: list[Usage] = []
        state: dict[str, str] = {}
        for r in readings:
            if r.quantity == "power_import_w" and r.utility is Utility.ELECTRICITY:
                self._demand_w = float(r.value)
                self._demand_at = r.timestamp
            elif r.quantity == USAGE_QUANTITY.get(r.utility):
                parts = self._delta(r)
                if parts:
                    usage.extend(parts)
                    pricer = self._pricers.get((r.meter, r.quantity))
                    if pricer is not None:  # commits with the usage it priced
                        state[f"{PRICER_PREFIX}{r.meter}.{r.quantity}"] = str(
                            pricer.exact_total_milli
                        )
            else:
                self._last[(r.meter, r.quantity)] = _Register(r.timestamp, r.raw, r.scaler)
        self._at = max(self._at, seen_at)
        return Batch(
            readings=readings,
            usage=usage,
            state=state,
            meters=(MeterInfo(meter.eui64, meter.utility, meter.label, round(seen_at * 1000)),),
        )

    def _delta(self, r: Reading) -> list[Usage]:
        """The usage rows one register reading books: none, one, or one per minute when
        the delta covers a gap (missed pushes), so that no minute shows a spike."""
        key = (r.meter, r.quantity)
        prev = self._last.get(key)
        d = register_delta(
            None if prev is None else Sample(prev.ts, prev.raw, prev.scaler),
            Sample(r.timestamp, r.raw, r.scaler),
            modulus=DOUBLE_LONG_UNSIGNED_MODULUS,  # registers are double-long-unsigned
        )
        if d.keep:
            self._last[key] = _Register(r.timestamp, r.raw, r.scaler)
        if d.kind in ("older", "duplicate", "conflict"):
            self.diag.count("meter.duplicate_or_old")
            return []
        if d.kind in ("reset", "implausible"):  # a replaced meter: a new baseline
            self.diag.count("meter.register_reset")
            assert prev is not None
            log.warning(
                "%s %s went from %s to %s: new baseline",
                r.meter,
                r.quantity,
                Decimal(prev.raw).scaleb(prev.scaler),
                r.value,
            )
            return []
        if d.kind == "wrap":
            self.diag.count("meter.register_wrap")
        if d.amount is None or prev is None:
            return []  # the first register is the baseline
        amount = d.amount
        energy_wh = self._energy_wh(r.utility, amount)
        pricer = self._pricers.get(key)
        if pricer is None and r.utility in self.tariffs:
            pricer = self._pricers[key] = Pricer(
                self.tariffs[r.utility], exact_total_milli=self._carried.pop(key, Decimal(0))
            )
        cost = (
            pricer.add(amount if energy_wh is None else energy_wh, prev.ts, r.timestamp)
            if pricer
            else 0
        )
        step = r.timestamp - prev.ts
        usual = self._interval.get(key)  # the last interval that was not a gap
        gap = step > max(GAP_AFTER_S, 1.5 * usual) if usual else step > LONGEST_PERIOD_S
        if not gap:  # the usual case: booked to the minute holding the interval's end
            self._interval[key] = step
            parts = [(int((r.timestamp - 0.001) // 60) * 60, amount)]
        elif step <= MAX_SPREAD_S:  # missed pushes: spread over the minutes it covers
            self.diag.count("meter.gaps")
            parts = spread(amount, prev.ts, r.timestamp)
        else:  # weeks of silence, or a meter clock that jumped: no profile to guess
            self.diag.count("meter.long_gaps")
            parts = [(int((r.timestamp - 0.001) // 60) * 60, amount)]
        rows: list[Usage] = []
        cost_left = cost
        for i, (minute, part) in enumerate(parts):
            # the cost follows the amount, in whole milli-units; the last part takes the rest
            last = i == len(parts) - 1
            part_cost = cost_left if last else int(cost * part / amount) if amount else 0
            cost_left -= part_cost
            part_wh = self._energy_wh(r.utility, part)
            e = None if part_wh is None else float(part_wh)
            if self._day_start <= minute < self._day_end:  # (minute, minute + 60] is today
                self._today[r.utility].add(float(part), e, part_cost, r.timestamp)
            rows.append(
                Usage(
                    meter=r.meter,
                    utility=r.utility,
                    minute_ms=minute * 1000,
                    amount=float(part),
                    energy_wh=e,
                    cost_milli=part_cost,
                )
            )
        return rows

    def _energy_wh(self, utility: Utility, amount: Decimal) -> Decimal | None:
        if utility is Utility.ELECTRICITY:
            return amount
        if utility is Utility.GAS:
            return volume_to_kwh_exact(amount, calorific_value_mj_m3=self.gas_cv) * 1000
        return None

    # --- today ---------------------------------------------------------------------------------
    def _start_day(self, t: float) -> None:
        """Make 'today' the local day holding ``t`` (usage ending in (start, end] counts)."""
        day = dt.datetime.fromtimestamp(t, self.tz).date()
        self._day = day
        self._day_start = dt.datetime.combine(day, dt.time(), self.tz).timestamp()
        self._day_end = dt.datetime.combine(
            day + dt.timedelta(days=1), dt.time(), self.tz
        ).timestamp()
        self._today = {}
        for utility in Utility:
            tariff = self.tariffs.get(utility)
            # the tariff in force that day (a tariff history changes on dates)
            standing = tariff.standing_charge_milli(1, at=self._day_start) if tariff else 0
            self._today[utility] = _Totals(utility is not Utility.WATER, standing)

    def roll_day(self, t: float) -> Snapshot | None:
        """Start a new 'today' when ``t`` is past local midnight; returns the fresh snapshot."""
        if self._day is not None and t <= self._day_end:
            return None
        self._start_day(t)
        self._at = max(self._at, t)
        return self.snapshot()

    def snapshot(self, readings: tuple[Reading, ...] = ()) -> Snapshot:
        if self._day is None:
            self._start_day(self._at)
        per_hour = None
        tariff = self.tariffs.get(Utility.ELECTRICITY)
        if self._demand_w is not None and tariff is not None:
            per_hour = tariff.cost_milli(Decimal(str(self._demand_w)), self._at, self._at + 3600)
        return Snapshot(
            at=self._at,
            demand_w=self._demand_w,
            demand_cost_milli_per_h=per_hour,
            demand_at=self._demand_at,
            today={u: t.frozen(u) for u, t in self._today.items()},
            last_frame_at=self._last_frame_at,
            readings=readings,
            lights=dict(self.lights),
        )
