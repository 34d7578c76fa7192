"""The one exception family of the meter layer.

Everything in ``ihd.meter`` that is given bytes from outside (a push, a link frame, a
ciphered APDU) either returns a value or raises :class:`MeterDecodeError`. Security
refusals are subclasses, so a caller that only wants "did it decode" catches the base,
and one that counts outcomes reads ``outcome``:

=========================  ==================  ==================================================
exception                  ``outcome``         meaning
=========================  ==================  ==================================================
``MeterDecodeError``       ``decode_error``    malformed: framing, checksum, A-XDR, layout
``MeterKeyError``          ``no_key``          ciphered, and no (or the wrong) key/system title
``MeterAuthError``         ``auth_failure``    the GCM tag does not verify (forged, corrupted,
                                               wrong key)
``MeterAuthError``         ``unauthenticated`` not authenticated, and the keys require it
``MeterReplayError``       ``replay``          invocation counter below the accepted mark
``MeterReplayError``       ``duplicate``       invocation counter equal to the accepted mark
=========================  ==================  ==================================================

``reason`` is for people. It never holds key material; it may name octets of the
frame's clear header (tags, lengths, the system title), never decrypted plaintext.
"""

from __future__ import annotations

__all__ = ["MeterAuthError", "MeterDecodeError", "MeterKeyError", "MeterReplayError"]


class MeterDecodeError(ValueError):
    """A push could not be decoded. ``reason`` says why, ``outcome`` is the counter name."""

    outcome = "decode_error"

    def __init__(self, reason: str, outcome: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if outcome is not None:
            self.outcome = outcome

    def __reduce__(self) -> tuple[type[MeterDecodeError], tuple[str, str]]:
        return (type(self), (self.reason, self.outcome))


class MeterKeyError(MeterDecodeError):
    """A ciphered push for which no usable key (or the wrong system title) is configured."""

    outcome = "no_key"


class MeterAuthError(MeterDecodeError):
    """A ciphered push whose authentication failed, or that is not authenticated at all when
    the keys require it (``outcome`` ``auth_failure`` or ``unauthenticated``)."""

    outcome = "auth_failure"


class MeterReplayError(MeterDecodeError):
    """A ciphered push whose invocation counter is not above the accepted mark
    (``outcome`` ``replay`` or ``duplicate``)."""

    outcome = "replay"
