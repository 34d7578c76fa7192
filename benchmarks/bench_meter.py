"""DLMS push decoding per push, plain and ciphered, in-process.

Two kinds of input:

* **The display's own pushes**: the simulated electricity meter's DATA-NOTIFICATION (two
  registers with scaler-unit, a date-time; 62-octet APDU, what SMWAP carries bare), built
  ten seconds apart with ``SimMeter.values``. Ciphered, the same APDUs in
  general-glo-ciphering with security control 0x30 (AES-128-GCM, 12-octet tag; 93 octets),
  decoded with ``DlmsKeys`` (both keys) and an ``InvocationGuard``: every push has a new
  invocation counter and takes the full path: replay check, GCM verify and decrypt, mark
  moved.
* **A real HAN list**: the Aidon three-phase list (26 values, HDLC frame with LLC, 581
  octets) plain, and the Kamstrup Omnipower list (31 values, HDLC, general-glo-ciphering
  0x30, 491 octets) ciphered, from ``tests/data/dlms/frames.json``. The same frame each
  call (no guard: a guard would refuse the repeat).

Each figure is the median, over batches of calls (about 200 µs each), of the time per
``decode_push`` call: unwrapping, deciphering, A-XDR parse (dlms-cosem), OBIS mapping,
typed readings. 20,000 calls (10,000 with ``--quick``) after 500 warm-up calls.

| figure | input |
|---|---|
| ``meter.dlms_push_plain_us`` | the simulator's push, plain |
| ``meter.dlms_push_ciphered_us`` | the same, general-glo-ciphered 0x30, with the replay guard |
| ``meter.dlms_decipher_only_us`` | of which: ``decipher`` alone (parse, GCM verify, decrypt) |
| ``meter.dlms_han_list_plain_us`` | Aidon 3-phase, 26 values, HDLC |
| ``meter.dlms_han_list_ciphered_us`` | Kamstrup Omnipower, 31 values, HDLC + GCM |
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from benchlib import REPO, Figure, cycle_calls, per_call_us, rounded

ITERATIONS = 20_000
WARMUP = 500
START = 1_790_000_000.0  # a fixed instant (2026-09-21), so every run builds the same pushes


def run(quick: bool) -> Iterator[Figure]:
    from ihd.meter import DlmsKeys, InvocationGuard, Utility, build_push, cipher_apdu, decipher
    from ihd.meter.dlms import decode_push
    from ihd.sim.world import demo_world

    n = 10_000 if quick else ITERATIONS
    world = demo_world(seed=1, start=START)
    meter = world.meters[0]  # electricity, every 10 s
    count = n + WARMUP + 1500  # one pass: warm-up, the calls, and up to one more batch
    apdus = [
        build_push(meter.values(START + 10 * i), timestamp=START + 10 * i, invoke_id=i & 0xFFFFFF)
        for i in range(count)
    ]
    assert all(50 <= len(a) <= 80 for a in apdus)

    def plain(apdu: bytes) -> object:
        return decode_push(
            apdu, meter="0011223344556677", utility=Utility.ELECTRICITY, received_at=0.0
        )

    us = per_call_us(cycle_calls(plain, [(a,) for a in apdus]), iterations=n, warmup=WARMUP)
    yield Figure("meter.dlms_push_plain_us", rounded(us), "us")

    keys = DlmsKeys(bytes(range(16)), bytes(range(16, 32)), system_title=b"IHD\x00\x00\x00\x00\x01")
    title = b"IHD\x00\x00\x00\x00\x01"
    ciphered = [
        cipher_apdu(a, keys=keys, system_title=title, invocation_counter=i + 1)
        for i, a in enumerate(apdus)
    ]
    assert decode_push(
        ciphered[0], meter="M", utility=Utility.ELECTRICITY, received_at=0, keys=keys
    ).authenticated
    guard = InvocationGuard()
    it = iter(ciphered)

    def secured() -> object:
        return decode_push(
            next(it),
            meter="0011223344556677",
            utility=Utility.ELECTRICITY,
            received_at=0.0,
            keys=keys,
            guard=guard,
        )

    us = per_call_us(secured, iterations=n, warmup=WARMUP)
    yield Figure("meter.dlms_push_ciphered_us", rounded(us), "us")

    us = per_call_us(
        cycle_calls(decipher, [(c, keys) for c in ciphered]), iterations=n, warmup=WARMUP
    )
    yield Figure("meter.dlms_decipher_only_us", rounded(us), "us")

    frames = {
        f["name"]: f
        for f in json.loads((REPO / "tests" / "data" / "dlms" / "frames.json").read_text())[
            "frames"
        ]
    }
    aidon = bytes.fromhex(frames["aidon_3phase_hdlc"]["hex"])
    omni = frames["kamstrup_omnipower_ciphered"]
    omni_hex = bytes.fromhex(omni["hex"])
    omni_keys = DlmsKeys(
        bytes.fromhex(omni["keys"]["encryption_key"]),
        bytes.fromhex(omni["keys"]["authentication_key"]),
    )
    assert len(plain(aidon).readings) == 26  # type: ignore[attr-defined]

    us = per_call_us(lambda: plain(aidon), iterations=n, warmup=WARMUP)
    yield Figure("meter.dlms_han_list_plain_us", rounded(us), "us")

    def omni_call() -> object:
        return decode_push(
            omni_hex, meter="M", utility=Utility.ELECTRICITY, received_at=0.0, keys=omni_keys
        )

    assert len(omni_call().readings) == 31  # type: ignore[attr-defined]
    us = per_call_us(omni_call, iterations=n, warmup=WARMUP)
    yield Figure("meter.dlms_han_list_ciphered_us", rounded(us), "us")
