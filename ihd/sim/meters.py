"""Simulated smart meters: they read the household model and push real SMWAP frames.

A meter samples its registers at fixed times (electricity every 10 s, gas and water every
30 min, as UK SMETS2 meters do), builds a DLMS/COSEM DATA-NOTIFICATION with the real
encoder, wraps it in an 802.15.4 data frame and an MR-FSK PPDU, and hands the octets to
the air. Registers are truncated to the meter's resolution, the way real meters count, so
what the display stores is the model's exact integral, less at most one unit.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ihd.meter.device import MeterDevice
from ihd.meter.dlms import PushValue, build_push
from ihd.meter.gas import VOLUME_CORRECTION_FACTOR
from ihd.meter.obis import REGISTERS, Register, format_obis
from ihd.meter.reading import Reading, Utility
from ihd.sim.household import Household
from ihd.smwap import Address, AuxSecurityHeader, MacFrame, build_mpdu
from ihd.smwap.fcs import compute_fcs
from ihd.smwap.link import MeterLink
from ihd.smwap.mac import BROADCAST
from ihd.smwap.phy import EU_863_MODE_1, ack_wait_s, build_ppdu
from ihd.smwap.security import Key, secure

ENERGY_IMPORT = REGISTERS[(1, 0, 1, 8, 0, 255)]
POWER_IMPORT = REGISTERS[(1, 0, 1, 7, 0, 255)]
GAS_VOLUME = REGISTERS[(7, 0, 3, 0, 0, 255)]
WATER_VOLUME = REGISTERS[(8, 0, 1, 0, 0, 255)]

VOLUME_CORRECTION = float(VOLUME_CORRECTION_FACTOR)


def meter_frame(
    *,
    src_eui64: str,
    dst: Address,
    pan_id: int,
    seq: int,
    payload: bytes,
    fcs_len: int,
    whitened: bool = True,
    ack_request: bool = False,
    aux: AuxSecurityHeader | None = None,
) -> bytes:
    """The PPDU a meter sends for one push: 802.15.4 data frame (2006 format, source by
    EUI-64, PAN ID compressed) with its FCS, in an MR-FSK PPDU. ``payload`` is the MAC
    payload as it goes on air (already secured when ``aux`` is given)."""
    mac = MacFrame.data(
        src=Address.from_eui64(src_eui64),
        dst=dst,
        dst_pan=pan_id,
        seq=seq,
        payload=payload,
        aux=aux,
        ack_request=ack_request,
    )
    return build_ppdu(build_mpdu(mac, fcs_len), fcs_len=fcs_len, whitened=whitened)


#: Simulated meters count frames in deciseconds since 2020-01-01 UTC: always increasing,
#: and 32 bits last until 2033.
COUNTER_EPOCH = 1_577_836_800.0

#: 802.15.4 MAC defaults: an unacknowledged frame is sent again up to 3 times.
MAX_FRAME_RETRIES = 3
#: How long a meter waits for an Imm-Ack: AIFS + the ACK's airtime + margin (SUN, 50 kb/s).
ACK_WAIT_S = 0.010


@dataclass(slots=True)
class _Outgoing:
    ppdu: bytes
    seq: int
    ack_request: bool
    attempts: int = 0
    due: float = 0.0


@dataclass(slots=True)
class SimMeter:
    """One meter: its registers, its push schedule and its side of the MAC.

    Sans-I/O like the air: ``next_event()`` says when it next has something to do, ``step``
    does it and returns the PPDUs to put on the air, ``on_air`` takes what it hears (ACKs).
    Pushes that ask for an ACK are sent again after ``ACK_WAIT_S`` up to
    ``MAX_FRAME_RETRIES`` times, with the same sequence number, as a real MAC does.
    """

    device: MeterDevice
    household: Household
    interval_s: float
    phase_s: float = 0.0  # offset from the interval grid, avoids collisions
    gas_cv_mj_m3: float = 39.5
    seq: int = 0
    invoke_id: int = 0
    next_push: float = field(default=0.0)
    ack_request: bool = False
    network_key: Key | None = None  # None: unsecured pushes (tests of the bare path)
    key_index: int = 1
    counter_epoch: float = COUNTER_EPOCH  # frame counter = deciseconds since this time
    outbox: list[_Outgoing] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    link: MeterLink | None = None  # pairing: pushes go only to displays that joined
    install_code: str = ""  # as printed on the meter's label
    rng: random.Random = field(default_factory=random.Random)  # reply jitter

    def _next_counter(self, t: float) -> int:
        """The meter's one outgoing frame counter, for pushes and pairing replies alike:
        the clock's deciseconds, or one above the last frame if that is higher."""
        counter = int((t - self.counter_epoch) * 10)
        if self.link is not None:
            counter = max(counter, self.link.frame_counter)
            self.link.frame_counter = counter + 1
        return counter

    def destination(self, fallback: Address) -> tuple[Address, bool] | None:
        """Where a push goes and whether it asks for an ACK: without pairing, ``fallback``
        (tests of the bare path); with it, the one joined display (acknowledged), several
        joined displays by broadcast, and nobody (None) before any display joined."""
        if self.link is None:
            return fallback, self.ack_request
        joined = sorted(self.link.joined)
        if not joined:
            return None
        if len(joined) == 1:
            return Address.ext(joined[0]), True
        return BROADCAST, False

    def on_frame(
        self, raw: bytes, frame: MacFrame, now: float, *, fcs_len: int, whitened: bool
    ) -> None:
        """A data frame the meter heard: pairing requests and confirms get their replies
        queued after the Imm-Ack the meter's radio sends first (one ACK wait later)."""
        if self.link is None:
            return
        self._next_counter(now)  # link replies continue the meter's one counter
        # Every meter in pairing mode answers a broadcast request: a random delay keeps
        # their answers from colliding, as a CSMA backoff would.
        jitter = self.rng.uniform(0, 0.4) if frame.dst == BROADCAST else 0.0
        for mpdu in self.link.receive(raw, frame, now):
            ppdu = build_ppdu(mpdu + compute_fcs(mpdu, fcs_len), fcs_len=fcs_len, whitened=whitened)
            at = now + ack_wait_s(EU_863_MODE_1, fcs_len=fcs_len) + jitter
            self.queue(ppdu, seq=mpdu[2], ack_request=False, at=at)
            self._count("link_replies")

    def schedule_from(self, t: float) -> None:
        """Push next at the first grid time at or after ``t``."""
        k = math.ceil((t - self.phase_s) / self.interval_s)
        self.next_push = k * self.interval_s + self.phase_s

    def push_times(self, start: float, end: float) -> list[float]:
        """Grid times in (start, end]: when this meter would have pushed."""
        k = math.floor((start - self.phase_s) / self.interval_s) + 1
        out = []
        t = k * self.interval_s + self.phase_s
        while t <= end:
            out.append(t)
            t += self.interval_s
        return out

    def values(self, t: float) -> list[tuple[Register, int, int]]:
        """The registers at ``t``: (register, raw, scaler), truncated like a meter."""
        h = self.household
        u = self.device.utility
        if u is Utility.ELECTRICITY:
            return [
                (ENERGY_IMPORT, math.floor(h.register(u, t)), 0),
                (POWER_IMPORT, round(h.power_w(t)), 0),
            ]
        if u is Utility.GAS:
            kwh = h.register(u, t) / 1000
            m3 = kwh * 3.6 / (VOLUME_CORRECTION * self.gas_cv_mj_m3)
            return [(GAS_VOLUME, math.floor(m3 * 1000), -3)]
        litres = h.register(u, t)
        return [(WATER_VOLUME, math.floor(litres), -3)]

    def readings(self, t: float) -> list[Reading]:
        """The same registers as typed readings (for seeding history without the radio)."""
        return [
            Reading(
                self.device.eui64, reg.utility, reg.quantity, raw, scaler, t, format_obis(reg.obis)
            )
            for reg, raw, scaler in self.values(t)
        ]

    def frame(
        self,
        t: float,
        *,
        pan_id: int,
        display: Address,
        fcs_len: int,
        whitened: bool = True,
        ack_request: bool | None = None,
    ) -> bytes:
        """The PPDU this meter sends at ``t``; advances its sequence and invoke ids.

        With a network key the push is secured at level 5 (ENC-MIC-32, key index 1). The
        frame counter comes from the meter's clock (deciseconds since ``counter_epoch``),
        so it only ever grows, across restarts of the simulation too, as a real meter's
        persisted counter does."""
        values: list[PushValue] = list(self.values(t))
        apdu = build_push(values, timestamp=t, invoke_id=self.invoke_id)
        src = Address.from_eui64(self.device.eui64)
        aux = None
        if self.network_key is not None:
            counter = self._next_counter(t)
            aux = AuxSecurityHeader(5, frame_counter=counter, key_index=self.key_index)
        mac = MacFrame.data(
            src=src,
            dst=display,
            dst_pan=pan_id,
            seq=self.seq,
            payload=apdu,
            aux=aux,
            ack_request=self.ack_request if ack_request is None else ack_request,
        )
        raw = (
            secure(mac, self.network_key, src_ext=src.value) if self.network_key else mac.to_bytes()
        )
        self.seq = (self.seq + 1) & 0xFF
        self.invoke_id = (self.invoke_id + 1) & 0xFFFFFF
        return build_ppdu(raw + compute_fcs(raw, fcs_len), fcs_len=fcs_len, whitened=whitened)

    # --- the MAC side ---------------------------------------------------------------------
    def next_event(self) -> float:
        return min([self.next_push, *(o.due for o in self.outbox)])

    def queue(self, ppdu: bytes, *, seq: int, ack_request: bool, at: float) -> None:
        self.outbox.append(_Outgoing(ppdu, seq, ack_request, due=at))

    def step(
        self, now: float, *, pan_id: int, display: Address, fcs_len: int, whitened: bool
    ) -> list[bytes]:
        """Do what is due at ``now``: a scheduled push, a retry. Returns PPDUs to send."""
        if self.next_push <= now:
            to = self.destination(display)
            if to is None:
                self._count("not_joined")  # a real meter keeps its data to itself
            else:
                seq = self.seq
                dst, ack = to
                ppdu = self.frame(
                    self.next_push,
                    pan_id=pan_id,
                    display=dst,
                    fcs_len=fcs_len,
                    whitened=whitened,
                    ack_request=ack,
                )
                self.queue(ppdu, seq=seq, ack_request=ack, at=self.next_push)
            self.next_push += self.interval_s
        out = []
        for o in [o for o in self.outbox if o.due <= now]:
            if o.attempts > MAX_FRAME_RETRIES:
                self.outbox.remove(o)
                self._count("tx_failed")
                continue
            o.attempts += 1
            out.append(o.ppdu)
            self._count("tx_frames" if o.attempts == 1 else "tx_retries")
            if o.ack_request:
                o.due = now + ACK_WAIT_S + len(o.ppdu) * 8 / 50_000
            else:
                self.outbox.remove(o)
        return out

    def on_ack(self, seq: int) -> None:
        for o in self.outbox:
            if o.ack_request and o.seq == seq and o.attempts > 0:
                self.outbox.remove(o)
                self._count("acked")
                return

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1
