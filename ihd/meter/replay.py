"""Replay protection for ciphered DLMS pushes: one invocation counter mark per system title.

The same design as :mod:`ihd.smwap.replay` (read that first), one layer up:

**The rule** (Green Book 9.2.7.2.4: the invocation counter of a sender's key only grows).
For each system title the guard keeps the highest invocation counter it accepted, the
*mark*. A push passes only if its counter is strictly above the mark (any counter passes
when there is no mark yet).

**Check before deciphering, accept after decoding.** :meth:`InvocationGuard.check` is
cheap and runs before any AES; :meth:`InvocationGuard.accept` runs once the push was
authenticated (or, for encryption-only pushes, decrypted into a push that decodes: a
forged counter gives another keystream and garbage), re-checks and moves the mark. A
forged push can therefore never move a mark.

**Duplicates are not replays, but both are refused.** A counter equal to the mark is the
same push received again (a relay, a retried link frame): ``MeterReplayError`` with
``outcome`` ``duplicate``. A counter below the mark is ``replay``.

**Two marks and a crash.** Marks move in memory at once (*accepted*) and become durable only
with the readings their pushes carried: the caller puts :meth:`pending` (state keys
``dlms.ic.<SYSTEM TITLE HEX>`` -> decimal counter) into the same store batch as the readings
and calls :meth:`committed` once that batch committed. After a restart :meth:`load` with the
store's state brings the committed marks back; pushes above them (the ones whose readings were
lost with the crash) are accepted again, and the store deduplicates readings.
:meth:`forget` drops a system title's mark (re-keying, where the meter may restart its
counter); :meth:`pending` then reports the key with an empty value, which :meth:`load` reads
as "no mark".

Pure: sans I/O, no clock, not thread-safe (one ingest loop owns a guard).
"""

from __future__ import annotations

from collections.abc import Mapping

from ihd.meter.errors import MeterReplayError

__all__ = ["MAX_INVOCATION_COUNTER", "STATE_PREFIX", "InvocationGuard", "state_key"]

STATE_PREFIX = "dlms.ic."
MAX_INVOCATION_COUNTER = 0xFFFFFFFF


def _check_title(system_title: bytes) -> None:
    if not isinstance(system_title, bytes) or len(system_title) != 8:
        raise ValueError("a system title is 8 octets")


def state_key(system_title: bytes) -> str:
    """The store state key for a mark: ``dlms.ic.<16 upper-case hex digits>``."""
    _check_title(system_title)
    return STATE_PREFIX + system_title.hex().upper()


def _parse_state_key(key: str) -> bytes:
    rest = key[len(STATE_PREFIX) :]
    if len(rest) != 16:
        raise ValueError(f"bad invocation counter state key {key!r}")
    try:
        return bytes.fromhex(rest)
    except ValueError:
        raise ValueError(f"bad invocation counter state key {key!r}") from None


def _parse_mark(key: str, value: str) -> int | None:
    if value == "":
        return None
    if not value.isdigit() or int(value) > MAX_INVOCATION_COUNTER:
        raise ValueError(f"bad invocation counter {value!r} for state key {key!r}")
    return int(value)


class InvocationGuard:
    """Invocation counter marks per system title; see the module docstring."""

    __slots__ = ("_accepted", "_committed", "_forgotten")

    def __init__(self) -> None:
        self._accepted: dict[bytes, int] = {}
        self._committed: dict[bytes, int] = {}
        self._forgotten: set[bytes] = set()

    def check(self, system_title: bytes, counter: int) -> None:
        """Raise ``MeterReplayError`` (``replay`` or ``duplicate``) unless a push with this
        counter may be accepted now. Changes nothing."""
        if not 0 <= counter <= MAX_INVOCATION_COUNTER:
            raise MeterReplayError(f"invocation counter {counter} is out of range", "replay")
        mark = self._accepted.get(system_title)
        if mark is None or counter > mark:
            return
        title = system_title.hex().upper()
        if counter == mark:
            raise MeterReplayError(
                f"invocation counter {counter} from {title} was already accepted", "duplicate"
            )
        raise MeterReplayError(
            f"invocation counter {counter} from {title} is not above {mark}", "replay"
        )

    def accept(self, system_title: bytes, counter: int) -> None:
        """Check again, then move the mark (call after the push was authenticated/decoded)."""
        _check_title(system_title)
        self.check(system_title, counter)
        self._accepted[system_title] = counter
        self._forgotten.discard(system_title)

    def mark(self, system_title: bytes) -> int | None:
        """The highest accepted counter for this system title, or None."""
        return self._accepted.get(system_title)

    def committed_mark(self, system_title: bytes) -> int | None:
        """The counter the store holds for this system title (as far as we know), or None."""
        return self._committed.get(system_title)

    def pending(self) -> dict[str, str]:
        """Marks that moved since they were last committed, as store state key/values
        (decimal counter; empty string for a forgotten mark)."""
        out = {
            state_key(title): str(c)
            for title, c in self._accepted.items()
            if self._committed.get(title) != c
        }
        for title in self._forgotten:
            out[state_key(title)] = ""
        return out

    def committed(self, marks: Mapping[str, str]) -> None:
        """Record that ``marks`` (a :meth:`pending` result) are now in the store."""
        for key, value in marks.items():
            if not key.startswith(STATE_PREFIX):
                continue
            title = _parse_state_key(key)
            counter = _parse_mark(key, value)
            if counter is None:
                self._forgotten.discard(title)
                self._committed.pop(title, None)
            else:
                self._committed[title] = counter

    def load(self, states: Mapping[str, str]) -> int:
        """Restore committed marks from the store's state (other keys are ignored); returns
        how many were loaded. A malformed ``dlms.ic.*`` entry raises ``ValueError`` naming
        the key (fail closed: a lost mark would let old pushes in again)."""
        parsed: list[tuple[bytes, int]] = []
        for key, value in states.items():
            if not key.startswith(STATE_PREFIX):
                continue
            counter = _parse_mark(key, value)
            title = _parse_state_key(key)
            if counter is not None:
                parsed.append((title, counter))
        for title, counter in parsed:
            if counter > self._committed.get(title, -1):
                self._committed[title] = counter
            if counter > self._accepted.get(title, -1):
                self._accepted[title] = counter
        return len(parsed)

    def forget(self, system_title: bytes) -> bool:
        """Drop the mark of this system title (re-keying); True if there was one."""
        had = system_title in self._accepted or system_title in self._committed
        self._accepted.pop(system_title, None)
        if system_title in self._committed:
            self._forgotten.add(system_title)
        return had

    def __repr__(self) -> str:
        return f"InvocationGuard({len(self._accepted)} marks, {len(self.pending())} pending commit)"
