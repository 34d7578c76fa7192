"""The simulated home: a household, its meters and the air between them and the display.

``SimWorld`` is sans-I/O like its parts: ``run_until(t)`` plays every meter push and every
air delivery up to ``t`` in time order, and ``next_event_time()`` says when the next one is.
The simulated radio drives it from a thread on the demo clock; tests drive it directly,
playing a day in well under a second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable, Mapping

from ihd.meter.device import MeterDevice
from ihd.meter.reading import Utility
from ihd.sim.air import Air, AirRx
from ihd.sim.household import EPOCH_DATE, Household
from ihd.sim.meters import SimMeter
from ihd.smwap import Address
from ihd.smwap.errors import FrameError
from ihd.smwap.mac import FrameType, parse_mpdu
from ihd.smwap.phy import EU_863_MODE_1, parse_ppdu
from ihd.smwap.security import Key, KeyTable

DISPLAY = "ihd"
PAN_ID = 0x1D1D
DISPLAY_SHORT = Address.short(0x0001)

#: (utility, push interval s, path loss to the display dB, label)
DEMO_METERS: tuple[tuple[Utility, float, float, str], ...] = (
    (Utility.ELECTRICITY, 10.0, 68.0, "Electricity meter"),
    (Utility.GAS, 1800.0, 92.0, "Gas meter"),
    (Utility.WATER, 1800.0, 88.0, "Water meter"),
)


def demo_network_key(seed: int, index: int) -> Key:
    """Each simulated meter's network key, fixed by the seed (a demo, not a secret)."""
    return Key(hashlib.sha256(f"ihd demo network key {seed} {index}".encode()).digest()[:16])


def demo_eui64(seed: int, index: int) -> str:
    """Locally administered EUI-64s (0x02 bit set), so they can never clash with a real meter."""
    return f"02494844{seed & 0xFFFF:04X}{index:04X}"


class SimWorld:
    display = DISPLAY

    def __init__(
        self,
        household: Household,
        meters: list[SimMeter],
        air: Air,
        *,
        start: float,
        fcs_len: int = 4,
        whitened: bool = True,
        path_loss_db: Mapping[str, float] | None = None,
    ) -> None:
        self.household = household
        self.meters = meters
        self.air = air
        self.fcs_len = fcs_len
        self.whitened = whitened
        self.now = start
        self.frames_sent = 0
        self._path_loss = dict(path_loss_db or {})
        for m in meters:
            m.schedule_from(start)
            air.attach(m.device.eui64, on_receive=self._meter_listener(m))

    def attach_display(
        self, on_receive: Callable[[bytes, AirRx], None], *, channel: int = 0
    ) -> None:
        self.air.attach(DISPLAY, on_receive=on_receive, channel=channel)
        for m in self.meters:
            loss = self._path_loss.get(m.device.eui64)
            if loss is not None:
                self.air.set_path_loss(m.device.eui64, DISPLAY, loss)

    def devices(self) -> dict[str, MeterDevice]:
        """The meters the display should pair with."""
        return {m.device.eui64: m.device for m in self.meters}

    def key_table(self) -> KeyTable:
        """The meters' network keys, as a display that has paired with all of them holds
        them. For tests that are not about pairing; the demo pairs for real."""
        table = KeyTable()
        for m in self.meters:
            if m.network_key is not None:
                table.add_index(
                    m.key_index, m.network_key, src_ext=Address.from_eui64(m.device.eui64).value
                )
        return table

    def next_event_time(self) -> float:
        times = [m.next_event() for m in self.meters]
        air = self.air.next_event_time()
        if air is not None:
            times.append(air)
        return min(times)

    def run_until(self, t: float) -> None:
        """Play every push, retry and delivery at or before ``t``, in time order."""
        while True:
            nxt = self.next_event_time()
            if nxt > t:
                break
            air = self.air.next_event_time()
            if air is not None and air <= nxt:
                self.air.advance(air)
                self.now = max(self.now, air)
                continue
            meter = min(self.meters, key=lambda m: m.next_event())
            at = meter.next_event()
            self.now = max(self.now, at)
            for ppdu in meter.step(
                at,
                pan_id=PAN_ID,
                display=DISPLAY_SHORT,
                fcs_len=self.fcs_len,
                whitened=self.whitened,
            ):
                self.air.transmit(max(at, self.air_time()), meter.device.eui64, ppdu)
                self.frames_sent += 1
        self.air.advance(max(t, self.now))
        self.now = max(self.now, t)

    def air_time(self) -> float:
        """The air's own clock: transmissions cannot start before it."""
        return self.now

    def transmit_from_display(self, ppdu: bytes, now: float) -> None:
        """The display sends (pairing): not before the world's present."""
        self.air.transmit(max(now, self.now), DISPLAY, ppdu)

    def _meter_listener(self, meter: SimMeter) -> Callable[[bytes, AirRx], None]:
        def on_air(ppdu: bytes, rx: AirRx) -> None:
            try:
                p = parse_ppdu(ppdu)
                frame = parse_mpdu(p.psdu, p.phr.fcs_len)
            except FrameError:
                return
            if frame.frame_type is FrameType.ACK and frame.seq is not None:
                meter.on_ack(frame.seq)

        return on_air


def demo_world(
    *,
    seed: int = 1,
    start: float,
    fcs_len: int = 4,
    loss: float = 0.0,
    corruption: float = 0.0,
    tz: str = "Europe/London",
    gas_cv_mj_m3: float = 39.5,
    epoch: dt.date | None = None,
    secured: bool = True,
) -> SimWorld:
    """The demo household: electricity, gas and water meters around one display.

    ``epoch`` anchors the meters' registers (default: the household model's fixed epoch);
    a demo keeps the epoch of its first start so that its registers stay continuous."""
    household = Household(seed=seed, tz=tz, epoch=epoch or EPOCH_DATE)
    rng = random.Random(seed)
    air = Air(
        random.Random(seed * 7919 + 1),
        loss=loss,
        corruption=corruption,
        bitrate_bps=EU_863_MODE_1.bitrate_bps,
    )
    meters = []
    world_loss: dict[str, float] = {}
    for index, (utility, interval, path_loss, label) in enumerate(DEMO_METERS, start=1):
        device = MeterDevice(demo_eui64(seed, index), utility, label)
        phase = 0.0 if interval <= 10 else round(rng.uniform(1, 60), 3)
        meters.append(
            SimMeter(
                device,
                household,
                interval,
                phase_s=phase,
                gas_cv_mj_m3=gas_cv_mj_m3,
                network_key=demo_network_key(seed, index) if secured else None,
            )
        )
        world_loss[device.eui64] = path_loss
    return SimWorld(household, meters, air, start=start, fcs_len=fcs_len, path_loss_db=world_loss)
