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
from collections.abc import Callable, Iterable, Mapping

from ihd.meter.device import MeterDevice
from ihd.meter.reading import Utility
from ihd.sim.air import Air, AirRx
from ihd.sim.household import EPOCH_DATE, Household
from ihd.sim.meters import SimMeter
from ihd.smwap import Address
from ihd.smwap.errors import FrameError
from ihd.smwap.fcs import compute_fcs
from ihd.smwap.installcode import crc16_x25, format_install_code
from ihd.smwap.link import MeterLink, MeterUtility
from ihd.smwap.mac import FrameType, MacFrame, parse_mpdu
from ihd.smwap.phy import EU_863_MODE_1, TURNAROUND_S, build_ppdu, parse_ppdu
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


def demo_display_eui64(seed: int) -> str:
    """The demo display's own EUI-64 (index 0 of the demo's numbering)."""
    return demo_eui64(seed, 0)


def demo_install_code(seed: int, index: int) -> str:
    """Each simulated meter's install code as printed on its label: 16 octets and the CRC."""
    code = hashlib.sha256(f"ihd demo install code {seed} {index}".encode()).digest()[:16]
    return format_install_code(code + crc16_x25(code).to_bytes(2, "little"))


def _demo_secret(seed: int, index: int, what: str, n: int) -> bytes:
    return hashlib.sha256(f"ihd demo {what} {seed} {index}".encode()).digest()[:n]


_LINK_UTILITY = {
    Utility.ELECTRICITY: MeterUtility.ELECTRICITY,
    Utility.GAS: MeterUtility.GAS,
    Utility.WATER: MeterUtility.WATER,
}


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
        display_eui64: str = "",
    ) -> None:
        self.display_eui64 = display_eui64  # the display the meters know (demo_world's)
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

    def install_codes(self) -> dict[str, str]:
        """Each meter's install code (EUI-64 -> the code as printed), for pairing."""
        return {m.device.eui64: m.install_code for m in self.meters if m.link is not None}

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

    def transmit_from_display(self, ppdu: bytes, now: float) -> float:
        """The display sends (pairing): not before the world's present. Returns when the
        frame ends."""
        return self.air.transmit(max(now, self.now), DISPLAY, ppdu)

    def _meter_listener(self, meter: SimMeter) -> Callable[[bytes, AirRx], None]:
        own = Address.from_eui64(meter.device.eui64)

        def on_air(ppdu: bytes, rx: AirRx) -> None:
            try:
                p = parse_ppdu(ppdu)
                fcs_len = p.phr.fcs_len
                frame = parse_mpdu(p.psdu, fcs_len)
            except FrameError:
                return
            if frame.frame_type is FrameType.ACK:
                if frame.seq is not None:
                    meter.on_ack(frame.seq)
                return
            if frame.frame_type is not FrameType.DATA:
                return
            if frame.ack_request and frame.seq is not None and frame.dst == own:
                self._ack_from(meter, frame, rx, fcs_len)
            meter.on_frame(
                p.psdu[:-fcs_len], frame, rx.end, fcs_len=fcs_len, whitened=self.whitened
            )

        return on_air

    def _ack_from(self, meter: SimMeter, frame: MacFrame, rx: AirRx, fcs_len: int) -> None:
        """The meter's radio acknowledges frames addressed to it, as the display's does."""
        assert frame.seq is not None
        ack = MacFrame.ack(frame.seq).to_bytes()
        ppdu = build_ppdu(ack + compute_fcs(ack, fcs_len), fcs_len=fcs_len, whitened=self.whitened)
        self.air.transmit(rx.end + TURNAROUND_S, meter.device.eui64, ppdu)


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
    joined: Iterable[str] | None = None,
) -> SimWorld:
    """The demo household: electricity, gas and water meters around one display.

    ``epoch`` anchors the meters' registers (default: the household model's fixed epoch);
    a demo keeps the epoch of its first start so that its registers stay continuous.

    Secured meters pair for real (:class:`~ihd.smwap.link.MeterLink`) and push only to
    displays that joined them. ``joined`` lists the meters (EUI-64s) that already know the
    demo display from an earlier run, as a real meter remembers its displays; ``None``
    means all of them (tests that are not about pairing)."""
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
    display_eui = Address.from_eui64(demo_display_eui64(seed)).value
    joined_all = joined is None
    joined_set = {e.upper() for e in joined or ()}
    for index, (utility, interval, path_loss, label) in enumerate(DEMO_METERS, start=1):
        device = MeterDevice(demo_eui64(seed, index), utility, label)
        phase = 0.0 if interval <= 10 else round(rng.uniform(1, 60), 3)
        network_key = demo_network_key(seed, index) if secured else None
        meter = SimMeter(
            device,
            household,
            interval,
            phase_s=phase,
            gas_cv_mj_m3=gas_cv_mj_m3,
            network_key=network_key,
            rng=random.Random(seed * 1000 + index),
        )
        if network_key is not None:
            meter.link = _meter_link(seed, index, meter, network_key)
            if joined_all or device.eui64 in joined_set:
                meter.link.joined.add(display_eui)
        meters.append(meter)
        world_loss[device.eui64] = path_loss
    return SimWorld(
        household,
        meters,
        air,
        start=start,
        fcs_len=fcs_len,
        path_loss_db=world_loss,
        display_eui64=demo_display_eui64(seed),
    )


def _meter_link(seed: int, index: int, meter: SimMeter, network_key: Key) -> MeterLink:
    """The meter side of pairing, with keys fixed by the seed (a demo, not a secret)."""
    code = demo_install_code(seed, index)
    meter.install_code = code
    rng = random.Random(seed * 31 + index)
    return MeterLink(
        Address.from_eui64(meter.device.eui64).value,
        code,
        rng.randbytes,
        network_key=network_key,
        network_key_index=meter.key_index,
        pan_id=PAN_ID,
        utility=_LINK_UTILITY[meter.device.utility],
        dlms_system_title=_demo_secret(seed, index, "system title", 8),
        dlms_encryption_key=Key(_demo_secret(seed, index, "dlms encryption key", 16)),
        dlms_authentication_key=Key(_demo_secret(seed, index, "dlms authentication key", 16)),
    )
