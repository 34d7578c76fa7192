"""The neighbour table: what the display hears from each radio nearby, for diagnostics.

Why: when a display shows no data, the first questions are "is the meter heard at all, how
strongly, and what goes wrong with its frames?". A per-source record of signal strength,
last-seen time and outcome counters (frames ok, FCS errors, MIC failures, replays,
duplicates, unknown keys, security downgrades, unsupported security, bad plaintext) answers
them, and ``ihd diag`` shows it.

Sans I/O like the rest of :mod:`ihd.smwap`: the receive path calls :meth:`NeighbourTable.note`
with the time it was given, and :meth:`NeighbourTable.snapshot` returns flat, dotted names for
the diagnostics registry (``smwap.neighbour.0011223344556677.rssi_dbm``), so this module
does not import the registry.

Choices:

* Entries are keyed by the source :class:`~ihd.smwap.mac.Address`: the EUI-64 when the
  frame carries it, else the short address (frames with only a short source are common
  after association). The two are not merged here: only the caller knows the mapping.
* The table is bounded (64 entries by default): a dense street has many meters, and a
  neighbour's meter must not grow memory without limit. Beyond the bound the least recently
  seen entry goes, and ``smwap.neighbours.evicted`` counts it.
* An FCS error is counted against the source address parsed from the damaged frame, which
  may itself be damaged: treat per-neighbour FCS counts as a hint (the global
  ``smwap.fcs_error`` counter is exact).
* RSSI keeps the last value and an exponential average (weight 1/8 for the newest frame),
  so one faded frame does not hide a steady link.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from ihd.smwap.mac import Address

__all__ = ["COUNTERS", "Neighbour", "NeighbourTable", "Outcome"]

StatValue = int | float | None


class Outcome(StrEnum):
    """What happened to one frame from a neighbour."""

    OK = "ok"
    FCS_ERROR = "fcs_error"
    MIC_FAILURE = "mic_failure"
    REPLAY = "replay"
    DUPLICATE = "duplicate"
    UNKNOWN_KEY = "unknown_key"
    DOWNGRADE = "downgrade"  # secured below the level required, or unsecured
    UNSUPPORTED = "unsupported"  # security features we do not implement (TSCH nonce)
    BAD_FRAME = "bad_frame"  # decrypted, but the plaintext does not parse


# Outcome -> the counter it increments (the names ``snapshot`` publishes).
_COUNTER: dict[Outcome, str] = {
    Outcome.OK: "frames_ok",
    Outcome.FCS_ERROR: "fcs_errors",
    Outcome.MIC_FAILURE: "mic_failures",
    Outcome.REPLAY: "replays",
    Outcome.DUPLICATE: "duplicates",
    Outcome.UNKNOWN_KEY: "unknown_key",
    Outcome.DOWNGRADE: "downgrades",
    Outcome.UNSUPPORTED: "unsupported",
    Outcome.BAD_FRAME: "bad_frames",
}
COUNTERS = tuple(_COUNTER.values())

RSSI_AVG_WEIGHT = 1 / 8


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One neighbour as last seen (a copy; the table keeps its own)."""

    address: Address
    rssi_dbm: float | None  # of the last frame that had one
    rssi_avg_dbm: float | None  # exponential average, weight RSSI_AVG_WEIGHT
    lqi: int | None
    first_seen: float
    last_seen: float
    frames_ok: int = 0
    fcs_errors: int = 0
    mic_failures: int = 0
    replays: int = 0
    duplicates: int = 0
    unknown_key: int = 0
    downgrades: int = 0
    unsupported: int = 0
    bad_frames: int = 0

    @property
    def frames(self) -> int:
        """All frames noted, whatever their outcome."""
        return sum(getattr(self, c) for c in COUNTERS)


class _Entry:
    __slots__ = ("counts", "first_seen", "last_seen", "lqi", "rssi_avg_dbm", "rssi_dbm")

    def __init__(self, now: float) -> None:
        self.rssi_dbm: float | None = None
        self.rssi_avg_dbm: float | None = None
        self.lqi: int | None = None
        self.first_seen = now
        self.last_seen = now
        self.counts = dict.fromkeys(COUNTERS, 0)


class NeighbourTable:
    """Per-source reception statistics, at most ``max_entries`` sources (least recently
    seen evicted first)."""

    def __init__(self, max_entries: int = 64) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.evicted = 0
        self._entries: OrderedDict[Address, _Entry] = OrderedDict()

    def note(
        self,
        source: Address | int,
        outcome: Outcome | str,
        rssi_dbm: float | None,
        lqi: int | None,
        now: float,
    ) -> None:
        """Record one frame from ``source`` (an :class:`Address`, or an EUI-64 as an int).

        ``outcome`` is an :class:`Outcome` or its value (``"ok"``, ``"mic_failure"``...);
        the values are the ``counter`` names of :class:`ihd.smwap.security.SecurityError`
        and the replay guard, so ``note(src, err.counter, ...)`` works. Anything else is a
        ``ValueError``. ``rssi_dbm``/``lqi`` may be None when the radio
        did not report them (the previous values are kept).
        """
        counter = _COUNTER[Outcome(outcome)]
        addr = Address.ext(source) if isinstance(source, int) else source
        entry = self._entries.get(addr)
        if entry is None:
            entry = self._entries[addr] = _Entry(now)
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.evicted += 1
        else:
            self._entries.move_to_end(addr)
        entry.last_seen = now
        entry.counts[counter] += 1
        if rssi_dbm is not None:
            entry.rssi_dbm = rssi_dbm
            avg = entry.rssi_avg_dbm
            entry.rssi_avg_dbm = (
                rssi_dbm if avg is None else avg + RSSI_AVG_WEIGHT * (rssi_dbm - avg)
            )
        if lqi is not None:
            entry.lqi = lqi

    def get(self, source: Address | int) -> Neighbour | None:
        """The neighbour's statistics, or None if it is not (or no longer) in the table."""
        addr = Address.ext(source) if isinstance(source, int) else source
        entry = self._entries.get(addr)
        return None if entry is None else _freeze(addr, entry)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Neighbour]:
        """Neighbours, most recently seen first."""
        for addr, entry in reversed(self._entries.items()):
            yield _freeze(addr, entry)

    def forget(self, source: Address | int) -> None:
        """Drop one neighbour (e.g. a meter unpaired); no error if absent."""
        addr = Address.ext(source) if isinstance(source, int) else source
        self._entries.pop(addr, None)

    def snapshot(self) -> dict[str, StatValue]:
        """Flat names for the diagnostics registry, sorted.

        ``smwap.neighbours.count``, ``smwap.neighbours.evicted``, then per neighbour
        ``smwap.neighbour.<address>.<stat>`` where ``<address>`` is the EUI-64 as 16 hex
        digits or a short address as ``0x1234``, and ``<stat>`` is one of ``rssi_dbm``,
        ``rssi_avg_dbm``, ``lqi``, ``last_seen``, ``first_seen`` and the counters
        (``frames_ok``, ``fcs_errors``, ``mic_failures``, ``replays``, ``duplicates``,
        ``unknown_key``, ``downgrades``, ``unsupported``, ``bad_frames``).
        """
        out: dict[str, StatValue] = {
            "smwap.neighbours.count": len(self._entries),
            "smwap.neighbours.evicted": self.evicted,
        }
        for addr, e in self._entries.items():
            base = f"smwap.neighbour.{addr}."
            out[base + "rssi_dbm"] = None if e.rssi_dbm is None else round(e.rssi_dbm, 1)
            out[base + "rssi_avg_dbm"] = (
                None if e.rssi_avg_dbm is None else round(e.rssi_avg_dbm, 1)
            )
            out[base + "lqi"] = e.lqi
            out[base + "first_seen"] = round(e.first_seen, 3)
            out[base + "last_seen"] = round(e.last_seen, 3)
            for name, n in e.counts.items():
                out[base + name] = n
        return dict(sorted(out.items()))


def _freeze(addr: Address, e: _Entry) -> Neighbour:
    return Neighbour(addr, e.rssi_dbm, e.rssi_avg_dbm, e.lqi, e.first_seen, e.last_seen, **e.counts)
