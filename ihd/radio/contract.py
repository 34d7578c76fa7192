"""The radio contract: what every radio hands to the SMWAP stack.

A radio delivers the PSDU (the MPDU *including* its FCS octets) plus an ``RxInfo``.
Chips such as the AT86RF215 build and strip the PHR themselves and only report what it
said (FCS length, whitening); radios that leave framing to the host (the simulated air,
CC1200, SX126x) use ``ihd.smwap.phy`` to get there. Either way, the layer above sees
the same thing and re-checks the FCS in software: it is cheap, and it catches SPI
corruption that a chip's own CRC check cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RadioError(Exception):
    """The radio cannot be opened or stopped answering. The message says why."""


@dataclass(frozen=True, slots=True)
class RxInfo:
    timestamp: float  # POSIX seconds (UTC) at the end of reception
    channel: int  # channel number in the radio's PHY mode
    fcs_len: int  # 2 or 4, from the PHR
    whitened: bool  # PHR DW bit (the PSDU given here is already de-whitened)
    fcs_ok: bool | None  # the radio's own FCS verdict, None if it did not check
    rssi_dbm: float | None = None
    lqi: int | None = None  # 0..255, radio-specific, None if unknown


@dataclass(frozen=True, slots=True)
class RxFrame:
    psdu: bytes  # MPDU including the FCS octets
    info: RxInfo


class Radio(Protocol):
    """A transceiver. ``receive`` is called from the radio thread only; ``transmit`` may be
    called from any thread (pairing sends from the ingest thread).

    Acknowledgements are the radio's job, not the host's: an Imm-Ack must start about 1 ms
    after the frame ends, which Python over SPI cannot meet, so radios acknowledge frames
    addressed to them in hardware (the AT86RF215's auto-ACK) or not at all.
    """

    name: str

    def open(self) -> None:
        """Bring the radio up; raise RadioError with a reason if it cannot be."""
        ...

    def receive(self, timeout: float) -> RxFrame | None:
        """Block for at most ``timeout`` wall seconds; None if nothing arrived."""
        ...

    def transmit(self, psdu: bytes, *, fcs_len: int) -> None:
        """Send one PSDU (MPDU including its FCS octets), with channel access as the radio
        does it (CSMA-CA). Raises RadioError if the radio cannot send."""
        ...

    def set_addresses(self, *, eui64: str, pan_id: int | None, short: int | None) -> None:
        """Program the address filter: frames to these addresses are acknowledged."""
        ...

    def close(self) -> None: ...
