"""Replay protection for secured SMWAP frames: everything that decides it lives here.

**The rule** (IEEE 802.15.4 incoming frame security procedure). For each (source EUI-64, key
identifier) the guard keeps the highest frame counter it accepted, the *mark*. A frame passes
only if its counter is strictly above the mark (any counter passes when there is no mark yet).
0xFFFFFFFF is never valid (a sender whose counter reaches it must re-key). Frames without a
frame counter (2015 counter suppression) are refused: we require counters.

**Check before decrypting, accept after.** :meth:`ReplayGuard.check` is cheap and runs before
the MIC check; :meth:`ReplayGuard.accept` runs once the MIC verified, re-checks and moves the
mark. A forged frame therefore can never move a mark.

**Duplicates are not replays.** The meter retransmits a frame whose ACK it missed (up to
macMaxFrameRetries times, within tens of milliseconds). A retransmission is the same secured
frame, so it carries the same sequence number *and* frame counter and would look like a
replay. It is classified ``duplicate`` if its (seq, counter) equals the last accepted frame's
for that source and key; any other counter at or below the mark is a ``replay``. Comparing
with the last frame only is enough because a meter does not send a new frame while it still
retries the previous one; a replayed copy of the last frame is also called a duplicate, and
both are refused, so only the diagnostics counter differs.

What :meth:`ReplayGuard.check` does, by case (``mark`` = highest accepted counter, ``last``
= (seq, counter) of the last accepted frame for the same source and key):

=====================================  =================================
case                                   result
=====================================  =================================
counter suppressed (None)              ``SecurityError(counter="replay")``
counter == 0xFFFFFFFF                  ``SecurityError(counter="replay")``
no mark                                accepted
counter > mark                         accepted
(seq, counter) == last                 ``SecurityError(counter="duplicate")``
otherwise (counter <= mark)            ``SecurityError(counter="replay")``
=====================================  =================================

**Two marks and a crash.** Marks move in memory at once (*accepted*). They become durable only
together with the readings their frames carried: the caller puts :meth:`ReplayGuard.pending`
(store state keys ``smwap.fc.<EUI64>.<key id>`` → decimal counter) into the same store batch as
the readings and calls :meth:`ReplayGuard.committed` with them when it hands the batch to the
store (the store writes batches in order, so a mark can only land with its readings). What the
store holds is the *committed* mark. A batch the store loses (a crash, a full queue) loses its
mark with its readings. After a restart, :meth:`ReplayGuard.load` with the store's state is
the only way marks come back. A frame at or below a loaded mark is refused;
frames above it are accepted again even if they were accepted before the crash: they carry the
readings that were lost with it, and the store deduplicates readings. (An attacker could replay
exactly those frames, which only re-delivers genuine readings.)

:meth:`ReplayGuard.forget` drops a source's marks (re-pairing with a new key, where the meter may
restart its counter); :meth:`pending` then reports the state keys with an empty value, which
:meth:`load` reads as "no mark".

Sans I/O, no clock, not thread-safe: one receive loop owns a guard.
"""

from __future__ import annotations

from collections.abc import Mapping

from ihd.smwap.security import SecurityError

__all__ = ["MAX_FRAME_COUNTER", "STATE_PREFIX", "ReplayGuard", "state_key"]

STATE_PREFIX = "smwap.fc."
MAX_FRAME_COUNTER = 0xFFFFFFFE  # highest valid counter; 0xFFFFFFFF is never valid

_Slot = tuple[int, str]  # (source EUI-64, key identifier)


def state_key(src_ext: int, key_id: str) -> str:
    """The store state key for a mark: ``smwap.fc.<EUI-64 as 16 hex digits>.<key id>``."""
    _check_slot(src_ext, key_id)
    return f"{STATE_PREFIX}{src_ext:016X}.{key_id}"


def _check_slot(src_ext: int, key_id: str) -> None:
    if not 0 <= src_ext <= 0xFFFF_FFFF_FFFF_FFFF:
        raise ValueError(f"source {src_ext!r} is not a 64-bit EUI-64")
    if not key_id or "." in key_id or not key_id.isprintable() or key_id.strip() != key_id:
        raise ValueError(f"key identifier {key_id!r} must be non-empty text without '.'")


def _parse_state_key(key: str) -> _Slot:
    rest = key[len(STATE_PREFIX) :]
    eui, dot, kid = rest.partition(".")
    if len(eui) != 16 or not dot:
        raise ValueError(f"bad replay state key {key!r}")
    try:
        src = int(eui, 16)
    except ValueError:
        raise ValueError(f"bad replay state key {key!r}") from None
    _check_slot(src, kid)
    return src, kid


def _parse_mark(key: str, value: str) -> int | None:
    if value == "":
        return None
    if not value.isdigit() or int(value) > MAX_FRAME_COUNTER:
        raise ValueError(f"bad frame counter {value!r} for replay state key {key!r}")
    return int(value)


class ReplayGuard:
    """Frame counter marks per (source EUI-64, key identifier); see the module docstring."""

    __slots__ = ("_accepted", "_committed", "_forgotten", "_last")

    def __init__(self) -> None:
        self._accepted: dict[_Slot, int] = {}
        self._last: dict[_Slot, tuple[int | None, int]] = {}
        self._committed: dict[_Slot, int] = {}
        self._forgotten: set[_Slot] = set()

    def check(self, src_ext: int, key_id: str, counter: int | None, seq: int | None = None) -> None:
        """Raise ``SecurityError`` (counter ``replay`` or ``duplicate``) unless a frame with
        this frame counter (and sequence number) may be accepted now. Changes nothing."""
        if counter is None:
            raise SecurityError("frame counter suppressed: replay protection needs one", "replay")
        if not 0 <= counter <= MAX_FRAME_COUNTER:
            raise SecurityError(f"frame counter {counter:#x} is never valid", "replay")
        slot = (src_ext, key_id)
        mark = self._accepted.get(slot)
        if mark is None or counter > mark:
            return
        if self._last.get(slot) == (seq, counter):
            raise SecurityError(
                f"retransmission of frame counter {counter} from {src_ext:016X}", "duplicate"
            )
        raise SecurityError(
            f"frame counter {counter} from {src_ext:016X} not above {mark}", "replay"
        )

    def accept(
        self, src_ext: int, key_id: str, counter: int | None, seq: int | None = None
    ) -> None:
        """Check again, then move the mark (call after the MIC verified)."""
        self.check(src_ext, key_id, counter, seq)
        assert counter is not None  # check() refuses None
        _check_slot(src_ext, key_id)
        slot = (src_ext, key_id)
        self._accepted[slot] = counter
        self._last[slot] = (seq, counter)
        self._forgotten.discard(slot)

    def mark(self, src_ext: int, key_id: str) -> int | None:
        """The highest accepted counter for this source and key, or None."""
        return self._accepted.get((src_ext, key_id))

    def committed_mark(self, src_ext: int, key_id: str) -> int | None:
        """The counter the store holds for this source and key (as far as we know), or None."""
        return self._committed.get((src_ext, key_id))

    def pending(self) -> dict[str, str]:
        """Marks that moved since they were last committed, as store state key/values
        (decimal counter; empty string for a forgotten mark)."""
        out = {
            state_key(*slot): str(c)
            for slot, c in self._accepted.items()
            if self._committed.get(slot) != c
        }
        for slot in self._forgotten:
            out[state_key(*slot)] = ""
        return out

    def committed(self, marks: Mapping[str, str]) -> None:
        """Record that ``marks`` (a :meth:`pending` result) are now in the store."""
        for key, value in marks.items():
            if not key.startswith(STATE_PREFIX):
                continue
            slot = _parse_state_key(key)
            counter = _parse_mark(key, value)
            # The store writes batches in order and the last write wins, so after this
            # commit it holds exactly these values.
            if counter is None:
                self._forgotten.discard(slot)
                self._committed.pop(slot, None)
            else:
                self._committed[slot] = counter

    def load(self, states: Mapping[str, str]) -> int:
        """Restore committed marks from the store's state (other keys are ignored); returns
        how many marks were loaded. A malformed ``smwap.fc.*`` entry raises ``ValueError``
        naming the key (fail closed: a lost mark would let old frames in again)."""
        parsed: list[tuple[_Slot, int]] = []
        for key, value in states.items():
            if not key.startswith(STATE_PREFIX):
                continue
            counter = _parse_mark(key, value)
            slot = _parse_state_key(key)
            if counter is not None:
                parsed.append((slot, counter))
        for slot, counter in parsed:
            if counter > self._committed.get(slot, -1):
                self._committed[slot] = counter
            if counter > self._accepted.get(slot, -1):
                self._accepted[slot] = counter
                self._last.pop(slot, None)
        return len(parsed)

    def forget(self, src_ext: int) -> int:
        """Drop every mark of this source (re-pairing); returns how many."""
        slots = {s for s in (*self._accepted, *self._committed) if s[0] == src_ext}
        for slot in slots:
            self._accepted.pop(slot, None)
            self._last.pop(slot, None)
            if slot in self._committed:
                self._forgotten.add(slot)
        return len(slots)

    def __repr__(self) -> str:
        return f"ReplayGuard({len(self._accepted)} marks, {len(self.pending())} pending commit)"
