"""A simulated radio medium that carries PPDU octets between named nodes.

Sans-I/O, like the protocol stack it tests: time comes in as an argument, randomness comes
from an injected ``random.Random``, and nothing runs on its own. A runner calls
``transmit()`` when a node sends, and ``advance(now)`` to hand over every frame whose last
octet has left the air; ``next_event_time()`` says how long it may sleep. So a test can
play a day of meter traffic in milliseconds, and a failing run replays exactly from its seed.

The air knows octets and airtime, not MAC frames. It models what breaks a real link, so the
layers above meet it in tests before they meet it in a house:

* path loss between each pair of nodes, with a little per-frame fading, against each
  receiver's sensitivity;
* collisions between frames that overlap in time on one channel, unless the wanted frame is
  ``capture_threshold_db`` stronger than every interferer (the capture effect);
* half duplex: a node does not hear anything while it is itself sending;
* random loss and random bit errors, for the FCS and retry paths.

Interferers are judged by their mean power at the receiver, without fading, and an
interferer below the noise floor does not count. A callback may transmit (an ACK, say) from
inside ``advance()``, at any time from the end of the frame it was given.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Air", "AirRx", "ReceiveCallback"]

DEFAULT_PATH_LOSS_DB = 60.0
FADING_SIGMA_DB = 1.0


@dataclass(frozen=True, slots=True)
class AirRx:
    """What a receiver learns with a frame. ``corrupted`` is ground truth for tests only:
    receivers must find out from the FCS, as they would on a real radio."""

    start: float  # POSIX seconds at the first octet
    end: float  # POSIX seconds at the end of the last octet
    channel: int
    rssi_dbm: float
    sender: str
    corrupted: bool


ReceiveCallback = Callable[[bytes, AirRx], None]


@dataclass(slots=True)
class _Node:
    name: str
    on_receive: ReceiveCallback | None
    channel: int
    sensitivity_dbm: float


@dataclass(slots=True, order=True)
class _Tx:
    end: float
    seq: int  # tie-break: equal end times go in send order
    start: float = field(compare=False)
    sender: str = field(compare=False)
    ppdu: bytes = field(compare=False)
    channel: int = field(compare=False)
    tx_power_dbm: float = field(compare=False)


def _mw(dbm: float) -> float:
    return math.pow(10.0, dbm / 10.0)


def _dbm(mw: float) -> float:
    return 10.0 * math.log10(mw)


class Air:
    """The shared medium. One instance is one room full of radios."""

    def __init__(
        self,
        rng: random.Random,
        *,
        bitrate_bps: float = 50_000,
        loss: float = 0.0,
        corruption: float = 0.0,
        noise_floor_dbm: float = -110.0,
        capture_threshold_db: float = 10.0,
        airtime: Callable[[int], float] | None = None,
    ) -> None:
        if bitrate_bps <= 0:
            raise ValueError("bitrate_bps must be positive")
        if not (0.0 <= loss <= 1.0 and 0.0 <= corruption <= 1.0):
            raise ValueError("loss and corruption are probabilities in [0, 1]")
        self.rng = rng
        self.bitrate_bps = bitrate_bps
        self.loss = loss
        self.corruption = corruption
        self.noise_floor_dbm = noise_floor_dbm
        self.capture_threshold_db = capture_threshold_db
        self._airtime = airtime
        self._nodes: dict[str, _Node] = {}
        self._path_loss: dict[frozenset[str], float] = {}
        self._pending: list[_Tx] = []  # heap by end time: not yet delivered
        self._recent: list[_Tx] = []  # all that may still overlap a frame, by start
        self._starts: list[float] = []  # their start times, for bisect
        self._longest = 0.0  # the longest airtime seen: bounds the search
        self._seq = 0
        self._now = -math.inf  # delivered up to here; time may not go back
        # Diagnostics: one count per (frame, receiver) pair.
        self.delivered = 0
        self.lost_collision = 0
        self.lost_random = 0
        self.lost_sensitivity = 0
        self.lost_half_duplex = 0
        self.corrupted = 0
        self.by_receiver: dict[str, dict[str, int]] = {}

    # ---- nodes and geometry

    def attach(
        self,
        name: str,
        *,
        on_receive: ReceiveCallback | None,
        channel: int = 0,
        sensitivity_dbm: float = -100.0,
    ) -> None:
        """Add a radio listening on ``channel``; with no callback it only transmits."""
        if name in self._nodes:
            raise ValueError(f"node {name!r} is already attached")
        self._nodes[name] = _Node(name, on_receive, channel, sensitivity_dbm)

    def detach(self, name: str) -> None:
        """Remove a radio. Frames it already put on the air still go out."""
        del self._nodes[name]

    def tune(self, name: str, channel: int) -> None:
        """Move a radio's receiver to another channel (for channel scans)."""
        self._nodes[name].channel = channel

    def set_path_loss(self, a: str, b: str, db: float) -> None:
        """Set the loss between two nodes, the same both ways."""
        self._path_loss[frozenset((a, b))] = db

    def path_loss_db(self, a: str, b: str) -> float:
        return self._path_loss.get(frozenset((a, b)), DEFAULT_PATH_LOSS_DB)

    def airtime_s(self, n_octets: int) -> float:
        """Seconds on air for a PPDU of n octets."""
        if self._airtime is not None:
            return self._airtime(n_octets)
        return n_octets * 8 / self.bitrate_bps

    # ---- sending and carrier sense

    def transmit(
        self,
        now: float,
        sender: str,
        ppdu: bytes,
        *,
        channel: int | None = None,
        tx_power_dbm: float = 14.0,
    ) -> float:
        """Put a PPDU on the air over [now, now + airtime); return the end time.

        ``channel`` defaults to the sender's own channel.
        """
        node = self._nodes.get(sender)
        if node is None:
            raise ValueError(f"node {sender!r} is not attached")
        if now < self._now:
            raise ValueError(f"transmit at {now} is before the air's time {self._now}")
        tx = _Tx(
            end=now + self.airtime_s(len(ppdu)),
            seq=self._seq,
            start=now,
            sender=sender,
            ppdu=bytes(ppdu),
            channel=node.channel if channel is None else channel,
            tx_power_dbm=tx_power_dbm,
        )
        self._seq += 1
        heapq.heappush(self._pending, tx)
        i = bisect.bisect_right(self._starts, now)
        self._starts.insert(i, now)
        self._recent.insert(i, tx)
        self._longest = max(self._longest, tx.end - tx.start)
        return tx.end

    def _on_air(self, start: float, end: float) -> list[_Tx]:
        """Frames overlapping [start, end) on any channel (or holding the instant, if equal)."""
        lo = bisect.bisect_left(self._starts, start - self._longest)
        hi = bisect.bisect_right(self._starts, end)
        return [
            tx
            for tx in self._recent[lo:hi]
            if tx.end > start and (tx.start < end or tx.start == start == end)
        ]

    def energy_dbm(self, now: float, name: str, channel: int | None = None) -> float:
        """Power a node would measure at ``now``: noise plus other nodes' carriers."""
        node = self._nodes[name]
        channel = node.channel if channel is None else channel
        total_mw = _mw(self.noise_floor_dbm)
        for tx in self._on_air(now, now):
            if tx.channel == channel and tx.sender != name:
                total_mw += _mw(self._mean_rssi_dbm(tx, name))
        return _dbm(total_mw)

    def busy(self, now: float, name: str, channel: int | None = None) -> bool:
        """Clear channel assessment: is there energy the node could hear?"""
        return self.energy_dbm(now, name, channel) >= self._nodes[name].sensitivity_dbm

    # ---- delivery

    def next_event_time(self) -> float | None:
        """When the next frame ends, so a runner knows how long it may sleep."""
        return self._pending[0].end if self._pending else None

    def advance(self, now: float) -> int:
        """Deliver every frame that ended at or before ``now``, in end-time order.

        Returns the number of (frame, receiver) deliveries made.
        """
        if now < self._now:
            raise ValueError(f"advance to {now} is before the air's time {self._now}")
        delivered = 0
        while self._pending and self._pending[0].end <= now:
            tx = heapq.heappop(self._pending)
            self._now = tx.end  # callbacks may transmit from here on, never into tx
            overlapping = [o for o in self._on_air(tx.start, tx.end) if o is not tx]
            for node in list(self._nodes.values()):
                attached = self._nodes.get(node.name) is node  # a callback may detach it
                if attached and node.name != tx.sender and node.channel == tx.channel:
                    delivered += self._deliver(tx, node, overlapping)
        self._now = now
        self._prune()
        return delivered

    def _deliver(self, tx: _Tx, node: _Node, overlapping: list[_Tx]) -> int:
        """Judge one frame at one receiver, in the order a radio would fail it."""
        on_receive = node.on_receive
        if on_receive is None:
            return 0
        if any(o.sender == node.name for o in overlapping):
            self._count("lost_half_duplex", node.name)
            return 0
        rssi = self._mean_rssi_dbm(tx, node.name) + self.rng.gauss(0.0, FADING_SIGMA_DB)
        if rssi < node.sensitivity_dbm:
            self._count("lost_sensitivity", node.name)
            return 0
        for other in overlapping:
            if other.channel != tx.channel:
                continue
            interference = self._mean_rssi_dbm(other, node.name)
            if interference < self.noise_floor_dbm:
                continue
            if rssi < interference + self.capture_threshold_db:
                self._count("lost_collision", node.name)
                return 0
        if self.rng.random() < self.loss:
            self._count("lost_random", node.name)
            return 0
        data = tx.ppdu
        corrupted = False
        if data and self.rng.random() < self.corruption:
            data = self._flip_bits(data)
            corrupted = True
            self._count("corrupted", node.name)
        info = AirRx(tx.start, tx.end, tx.channel, rssi, tx.sender, corrupted)
        self._count("delivered", node.name)
        on_receive(data, info)
        return 1

    def _count(self, outcome: str, receiver: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        per = self.by_receiver.setdefault(receiver, {})
        per[outcome] = per.get(outcome, 0) + 1

    def counts(self, receiver: str) -> dict[str, int]:
        """The outcome counters for frames judged at one receiver (ground truth for tests)."""
        per = self.by_receiver.get(receiver, {})
        return {
            k: per.get(k, 0)
            for k in (
                "delivered",
                "lost_collision",
                "lost_random",
                "lost_sensitivity",
                "lost_half_duplex",
                "corrupted",
            )
        }

    def _flip_bits(self, data: bytes) -> bytes:
        """Flip one to three distinct bits, so the copy always differs."""
        n_bits = len(data) * 8
        flipped = bytearray(data)
        for bit in self.rng.sample(range(n_bits), min(n_bits, self.rng.randint(1, 3))):
            flipped[bit // 8] ^= 0x80 >> (bit % 8)
        return bytes(flipped)

    def _mean_rssi_dbm(self, tx: _Tx, receiver: str) -> float:
        return tx.tx_power_dbm - self.path_loss_db(tx.sender, receiver)

    def _prune(self) -> None:
        """Forget frames that can no longer overlap anything still to be judged.

        Pending frames start no earlier than the oldest pending start, and new ones no
        earlier than ``self._now``; a delivered frame that ended before both is history.
        """
        horizon = min((tx.start for tx in self._pending), default=self._now)
        horizon = min(horizon, self._now)
        self._recent = [tx for tx in self._recent if tx.end > horizon]
        self._starts = [tx.start for tx in self._recent]

    @property
    def remembered(self) -> int:
        """Frames still held (pending or recent): bounded by the traffic in flight."""
        return len(self._recent)
