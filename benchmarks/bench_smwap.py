"""SMWAP receive path per frame, and our MAC parser against scapy's, in one process.

Inputs are the demo's secured electricity pushes, built the way the simulated meter builds
them (``SimMeter.frame``: a DLMS DATA-NOTIFICATION in an 802.15.4-2006 data frame with an
extended source address, secured at level 5 (ENC-MIC-32) with key identifier mode 1, in a
whitened MR-FSK PPDU), but with the 2-octet FCS, which is the only one scapy knows: 87-octet
MPDU + 2-octet FCS = 89-octet PSDU, 97 octets on the air. Pushes ten seconds of simulated
time apart, so every frame is different and frame counters only grow.

Each figure is the median, over batches of calls (about 200 µs each), of the time per call,
from at least 10^4 calls (20,000; 10,000 with ``--quick``) after 500 warm-up calls; see
``benchlib.per_call_us``. Both parsers run on the same PSDUs, in the same process, through
the same call wrapper.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

from benchlib import Figure, cycle_calls, per_call_us, rounded

ITERATIONS = 20_000
WARMUP = 500
START = 1_790_000_000.0  # a fixed instant (2026-09-21), so every run builds the same frames


def run(quick: bool) -> Iterator[Figure]:
    from ihd.sim.world import DISPLAY_SHORT, PAN_ID, demo_world
    from ihd.smwap.mac import AddrMode, FrameVersion, parse_mpdu
    from ihd.smwap.phy import parse_ppdu
    from ihd.smwap.receiver import Receiver

    n = 10_000 if quick else ITERATIONS
    world = demo_world(seed=1, start=START)
    meter = world.meters[0]  # electricity, secured with the demo network key
    assert meter.network_key is not None
    # One pass of the secured path needs warm-up + n + up to one batch (1000) of new frames.
    count = n + WARMUP + 1500
    ppdus = [
        meter.frame(START + 10 * i, pan_id=PAN_ID, display=DISPLAY_SHORT, fcs_len=2)
        for i in range(count)
    ]
    psdus = [parse_ppdu(p).psdu for p in ppdus]
    for psdu in psdus:  # the frames are what the figures say they are
        f = parse_mpdu(psdu, 2)
        assert f.aux is not None and f.src is not None
        assert f.version is FrameVersion.V2006 and f.src.mode is AddrMode.EXTENDED
        assert f.aux.level == 5 and f.aux.key_id_mode == 1
        assert 60 <= len(psdu) - 2 <= 100

    # --- our MAC parse with the FCS check -------------------------------------------------
    # parse_mpdu checks the CRC-16 and parses the MHR and auxiliary security header into
    # frozen values; reading the frame counter makes both sides end on the same field.
    def ours(psdu: bytes) -> object:
        aux = parse_mpdu(psdu, 2).aux
        assert aux is not None
        return aux.frame_counter

    ours_us = per_call_us(cycle_calls(ours, [(p,) for p in psdus]), iterations=n, warmup=WARMUP)
    yield Figure("smwap.mac_parse_fcs2_us", rounded(ours_us), "us")

    # --- scapy's Dot15d4FCS on the same PSDUs ---------------------------------------------
    scapy_log = logging.getLogger("scapy.runtime")
    old_level = scapy_log.level
    scapy_log.setLevel(logging.ERROR)  # or it logs (with a stack) on every odd frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from scapy.config import conf
        from scapy.layers.dot15d4 import Dot15d4FCS

        old_protocol = conf.dot15d4_protocol
        conf.dot15d4_protocol = "sixlowpan"  # unused here (level 5 payloads stay Raw): no warning
        try:
            # Dot15d4FCS(raw) dissects eagerly, every layer down to the Raw (encrypted)
            # payload: frame control, sequence number, the Dot15d4Data addressing fields, the
            # auxiliary security header packet and the FCS field. Reading the frame counter
            # out of the nested security header is the same end point as ours. scapy does not
            # check the FCS (it only reads the field); we do not add that to its time, which
            # favours scapy in the ratio.
            def theirs(psdu: bytes) -> object:
                return Dot15d4FCS(psdu).payload.aux_sec_header.sec_framecounter

            for psdu in psdus[:: max(1, len(psdus) // 200)]:  # same frames, same reading
                pkt = Dot15d4FCS(psdu)
                ref = parse_mpdu(psdu, 2)
                assert ref.aux is not None and ref.src is not None
                assert theirs(psdu) == ref.aux.frame_counter
                assert pkt.seqnum == ref.seq and pkt.payload.src_addr == ref.src.value
                assert bytes(pkt.payload.payload) == ref.payload

            scapy_us = per_call_us(
                cycle_calls(theirs, [(p,) for p in psdus]), iterations=n, warmup=WARMUP
            )
        finally:
            conf.dot15d4_protocol = old_protocol
            scapy_log.setLevel(old_level)
    yield Figure("smwap.scapy_dot15d4fcs_us", rounded(scapy_us), "us")
    yield Figure("smwap.mac_parse_speedup_vs_scapy_x", rounded(scapy_us / ours_us), "x")

    # --- the whole secured receive path ---------------------------------------------------
    # PHR (parse_ppdu: SFD, PHR, de-whitening), then Receiver.receive: CRC-16 check, MAC
    # parse, policy (level 5 >= 5), key lookup, replay check against the in-memory
    # ReplayGuard, CCM* verify + decrypt, accept (moves the mark), neighbour table update.
    # Each frame is used once and has a higher counter than the last, so all are accepted.
    receiver = Receiver(keys=world.key_table())
    it = iter(ppdus)

    def secured() -> object:
        ppdu = parse_ppdu(next(it))
        r = receiver.receive(ppdu.psdu, ppdu.phr.fcs_len)
        if r.outcome != "ok":
            raise AssertionError(f"secured push refused: {r.outcome} {r.reason}")
        return r

    path_us = per_call_us(secured, iterations=n, warmup=WARMUP)
    yield Figure("smwap.secured_path_us", rounded(path_us), "us")
    yield Figure("smwap.secured_frames_per_s", rounded(1e6 / path_us), "frames/s")
