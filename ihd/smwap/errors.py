"""Errors raised by the SMWAP framing code.

Everything that decodes octets from the air raises :class:`FrameError` (or its subclass
:class:`PhyError`) and nothing else: a receiver can wrap one ``except FrameError`` around a
frame and count the reasons. Both subclass ``ValueError`` because a malformed frame is a bad
value, not a broken program. Programming mistakes (building a frame whose fields contradict
each other, an FCS length of 3) raise plain ``ValueError`` instead.
"""

from __future__ import annotations

__all__ = ["FrameError", "PhyError"]


class FrameError(ValueError):
    """Octets that are not a valid frame.

    ``reason`` says what is wrong and ``offset`` where (octets from the start of what the
    parser was given). ``str(err)`` is e.g. ``"truncated auxiliary security header at
    offset 7"``.
    """

    reason: str
    offset: int

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at offset {offset}")
        self.reason = reason
        self.offset = offset

    def __reduce__(self) -> tuple[type[FrameError], tuple[str, int]]:
        # Keep the two fields through pickling (e.g. across a multiprocessing queue).
        return (type(self), (self.reason, self.offset))


class PhyError(FrameError):
    """A PPDU (SHR, PHR or PSDU length) that the MR-FSK PHY code cannot decode."""
