"""The protocol stack per frame, in-process and without Qt.

Inputs are the demo's own electricity pushes (``SimMeter.frame``: a DLMS
DATA-NOTIFICATION with two registers, in an 802.15.4 data frame with extended source
address and 4-octet FCS, in a whitened MR-FSK PPDU; 89 octets on the air, 81-octet PSDU,
62-octet APDU). Each figure is the median, over batches of calls (about 200 µs each), of
the time per call, from at least 10^4 calls after a warm-up.

Pushes ten seconds apart are prepared in advance, so that stateful code (``Ingest``) sees
a new register value every call and takes its full path: MAC, DLMS, delta, pricing.
"""

from __future__ import annotations

from collections.abc import Iterator

from benchlib import Figure, cycle_calls, per_call_us, rounded

ITERATIONS = 20_000
START = 1_790_000_000.0  # a fixed instant (2026-09-21), so every run builds the same frames


def run(quick: bool) -> Iterator[Figure]:
    from ihd.app.ingest import Ingest
    from ihd.config import Config
    from ihd.diag import Diagnostics
    from ihd.meter.dlms import decode_push
    from ihd.radio.contract import RxFrame, RxInfo
    from ihd.sim.world import DISPLAY_SHORT, PAN_ID, demo_world
    from ihd.smwap import parse_mpdu, parse_ppdu
    from ihd.smwap.receiver import Receiver
    from ihd.tariff import tariffs_from_config

    n = 10_000 if quick else ITERATIONS
    world = demo_world(seed=1, start=START)
    meter = world.meters[0]  # electricity, every 10 s
    times = [START + 10 * i for i in range(n + 2000)]  # warm-up + last batch margin

    def build(t: float) -> bytes:
        return meter.frame(t, pan_id=PAN_ID, display=DISPLAY_SHORT, fcs_len=4)

    yield Figure(
        "sim.push_build_us",
        rounded(per_call_us(cycle_calls(build, [(t,) for t in times]), iterations=n)),
        "us",
    )

    meter.seq = meter.invoke_id = 0
    ppdus = [build(t) for t in times]
    psdus = [parse_ppdu(p).psdu for p in ppdus]
    eui = meter.device.eui64
    # The pushes are secured (level 5): the DLMS decoder gets the MAC payload as the
    # receiver hands it on, decrypted.
    from ihd.smwap.security import unsecure

    first = parse_mpdu(psdus[0], 4)
    key = world.key_table().lookup(first.aux, first.src.value)  # type: ignore[union-attr,arg-type]
    assert key is not None
    payload = unsecure(psdus[0][:-4], first, key, src_ext=first.src.value).payload  # type: ignore[union-attr]

    yield Figure(
        "smwap.parse_ppdu_us",
        rounded(per_call_us(cycle_calls(parse_ppdu, [(p,) for p in ppdus]), iterations=n)),
        "us",
    )
    yield Figure(
        "smwap.parse_mpdu_us",
        rounded(per_call_us(cycle_calls(parse_mpdu, [(p, 4) for p in psdus]), iterations=n)),
        "us",
    )
    yield Figure(
        "meter.decode_push_us",
        rounded(
            per_call_us(
                lambda: decode_push(
                    payload, meter=eui, utility=meter.device.utility, received_at=START
                ),
                iterations=n,
            )
        ),
        "us",
    )

    cfg = Config()
    ingest = Ingest(
        meters=world.devices(),
        tariffs=tariffs_from_config(cfg),
        tz=cfg.timezone,
        diag=Diagnostics(),
        gas_cv_mj_m3=cfg["tariff.gas.calorific_value_mj_m3"],
        receiver=Receiver(keys=world.key_table()),
    )
    frames = [
        RxFrame(
            psdu,
            RxInfo(
                timestamp=t + 0.01, channel=0, fcs_len=4, whitened=True, fcs_ok=None, rssi_dbm=-68.0
            ),
        )
        for psdu, t in zip(psdus, times, strict=True)
    ]
    it = iter(frames)  # exactly one pass: every frame is new to the ingest

    def handle() -> object:
        result = ingest.handle(next(it))
        assert result is not None
        return result

    us = per_call_us(handle, iterations=n, warmup=500)
    yield Figure("ingest.handle_frame_us", rounded(us), "us")
