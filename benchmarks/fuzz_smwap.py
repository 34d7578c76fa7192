"""Fuzz the SMWAP decoders with random and mutated frames.

    .venv/bin/python benchmarks/fuzz_smwap.py [--count N] [--seed S] [--jobs J]

Four targets, each fed ``N`` inputs (default 1,000,000) and each with its contract:

* ``mac``: ``ihd.smwap.mac.parse_mpdu_unchecked`` (and ``parse_mpdu`` with a right or a
  random FCS) raises only ``FrameError``. A frame it returns must build again
  (``to_bytes``) and parse to an equal frame, as ``mac.py`` promises.
* ``phy``: ``ihd.smwap.phy.parse_ppdu`` raises only ``PhyError``; a PPDU it returns has a
  PSDU of the PHR's length.
* ``receiver``: ``ihd.smwap.receiver.Receiver.receive`` (FCS, MAC, policy, keys, replay,
  CCM* verify and decrypt) returns an outcome for everything and never raises.
* ``link``: ``ihd.smwap.link.decode_message`` raises only ``LinkMessageError``; a message it
  returns encodes back to the same octets.

Inputs: about 15 % random byte strings, a few unmodified valid frames, the rest valid frames
mutated one to three times (bit flips, truncation, insertion, deletion, overwriting with
edge values, duplicated chunks, a random frame control, splicing two frames). The valid
frames cover every frame type (beacon, data, Imm-Ack, MAC command, multipurpose in both
frame control forms), frame versions 2003/2006/2015, every addressing mode and PAN ID
layout, sequence number suppression, header and payload IEs (MPX too), and security levels
1-7 with key identifier modes 0-3 in 2006 and 2015 frames; the receiver also gets freshly
secured frames with new frame counters, so mutated frames reach the MIC check instead of
stopping at the replay check; PPDUs come with 2- and 4-octet FCS, whitened or not, both SFDs,
and some FEC-coded (NRNSC and RSC).

It prints, per target, how many inputs were tried and accepted, rejections by reason class
(digits and hex in the reason replaced by ``#``) and unexpected exceptions, whose first few
tracebacks and inputs are written to ``--failures`` (default ``fuzz_smwap_failures.txt``,
only when there are any). Exit status 1 if any unexpected exception or broken promise.

The work is split into chunks of ``CHUNK`` inputs per target; chunk ``i`` draws from
``random.Random(f"{seed}:{i}")`` with its own receivers, so a run is the same whatever
``--jobs`` is. ``fuzz()`` is the core, used by ``tests/test_fuzz_smoke.py``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

TARGETS = ("mac", "phy", "receiver", "link")
CHUNK = 5_000
MAX_FAILURES = 5  # tracebacks kept (per worker, then overall)


@dataclass
class Report:
    tried: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: dict[str, Counter[str]] = field(default_factory=dict)
    unexpected: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # tracebacks with the input

    def reject(self, target: str, reason: str) -> None:
        self.rejected.setdefault(target, Counter())[reason] += 1

    def fail(self, target: str, data: bytes, what: str) -> None:
        self.unexpected[target] += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(
                f"target {target}, input ({len(data)} octets) {data.hex()}\n{what}"
            )

    def merge(self, other: Report) -> None:
        self.tried.update(other.tried)
        self.accepted.update(other.accepted)
        for t, c in other.rejected.items():
            self.rejected.setdefault(t, Counter()).update(c)
        self.unexpected.update(other.unexpected)
        self.failures.extend(other.failures[: max(0, MAX_FAILURES - len(self.failures))])

    @property
    def total_unexpected(self) -> int:
        return sum(self.unexpected.values())

    def lines(self) -> Iterator[str]:
        for t in TARGETS:
            yield (
                f"{t}: tried {self.tried[t]}, accepted {self.accepted[t]}, "
                f"rejected {sum(self.rejected.get(t, Counter()).values())}, "
                f"unexpected {self.unexpected[t]}"
            )
            for reason, k in sorted(self.rejected.get(t, Counter()).items(), key=lambda x: -x[1]):
                yield f"    {k:>9}  {reason}"


_NUMBERS = re.compile(r"0x[0-9A-Fa-f]+|\d+")


def reason_class(reason: str) -> str:
    return _NUMBERS.sub("#", reason)


# --- valid frames --------------------------------------------------------------------------


@dataclass
class Corpus:
    mpdus: list[bytes]  # MPDUs without FCS: every type and option, plaintext and secured
    secured: list[Any]  # (plaintext MacFrame, src EUI-64) to secure again with new counters
    ppdus: list[bytes]
    messages: list[bytes]  # link (pairing) messages, plaintext MAC payloads
    keys: Any  # the KeyTable every secured frame's key is in
    short_to_ext: dict[tuple[int | None, int], int]


PAN, OTHER_PAN = 0x1D1D, 0xBEEF
METER_EXT = 0x0249484400010001
OTHER_EXT = 0xACDE480000000001
SHORT_METER = 0x0042


def build_corpus() -> Corpus:
    from ihd.smwap.fcs import compute_fcs
    from ihd.smwap.link import (
        JoinAccept,
        JoinConfirm,
        JoinReject,
        JoinRequest,
        KeyTransport,
        MeterUtility,
    )
    from ihd.smwap.mac import (
        BROADCAST,
        Address,
        AuxSecurityHeader,
        FrameType,
        FrameVersion,
        HeaderIE,
        MacFrame,
        MpxIE,
        MpxTransferType,
        PayloadIE,
    )
    from ihd.smwap.phy import SFD_UNCODED_1, build_ppdu
    from ihd.smwap.security import Key, KeyTable, secure

    key = Key(bytes(range(16)))
    keys = KeyTable()
    keys.add_implicit(key)
    for idx in (1, 5):
        keys.add_index(idx, key)
    keys.add_source(b"\x01\x02\x03\x04", 7, key)
    keys.add_source(bytes(range(8)), 9, key)

    ext, short = Address.ext(METER_EXT), Address.short(SHORT_METER)
    addrs = (None, Address.short(0x0001), BROADCAST, ext, Address.ext(OTHER_EXT), short)
    payload_for = {
        FrameType.BEACON: b"\xff\xcf\x00\x00",  # superframe spec, GTS, pending addresses
        FrameType.DATA: bytes.fromhex("0f00000001020304050607") + b"meter push",
        FrameType.COMMAND: b"\x04",  # data request
    }
    hies = ((), (HeaderIE(0x1A, b"\x01\x02"),), (HeaderIE(0x00, b""), HeaderIE(0x2A, b"x" * 9)))
    mpx = MpxIE(MpxTransferType.FULL_FRAME, 3, multiplex_id=1, data=b"\x08kmp").to_payload_ie()
    frag = MpxIE(
        MpxTransferType.NON_LAST_FRAGMENT, 4, fragment_number=0, total_size=300, multiplex_id=2
    ).to_payload_ie()
    pies = ((), (PayloadIE(0x1, b"\x00\x01mlme"),), (mpx, frag, PayloadIE(0x2, b"vendor")))

    plain: list[Any] = []

    def add(make: Callable[..., Any], **kw: Any) -> None:
        """Keep ``make(**kw)`` if that combination is a valid frame."""
        try:
            f = make(**kw)
            f.to_bytes()
        except ValueError:
            return
        plain.append(f)

    for version in FrameVersion:
        v2 = version == FrameVersion.V2015
        for ftype, payload in payload_for.items():
            for dst in addrs:
                for src in addrs:
                    for dst_pan, src_pan in (
                        (PAN, None),
                        (PAN, OTHER_PAN),
                        (None, PAN),
                        (None, None),
                    ):
                        for seq in (0x2A, None) if v2 else (0x2A,):
                            add(
                                MacFrame.data,
                                src=src,
                                dst=dst,
                                dst_pan=dst_pan,
                                src_pan=src_pan,
                                seq=seq,
                                payload=payload,
                                version=version,
                                frame_type=ftype,
                                ack_request=dst is not None and dst != BROADCAST,
                            )
        if v2:
            for h in hies:
                for p in pies:
                    for payload in (b"", b"data"):
                        add(
                            MacFrame.data,
                            src=ext,
                            dst=Address.short(1),
                            dst_pan=PAN,
                            seq=7,
                            payload=payload,
                            version=version,
                            header_ies=h,
                            payload_ies=p,
                        )
    for version in (FrameVersion.V2006, FrameVersion.V2015):
        for pending in (False, True):
            add(MacFrame.ack, seq=0x55, frame_pending=pending, version=version)
    for dst in addrs:
        for src in addrs:
            for pan in (None, PAN):
                for seq in (9, None):
                    add(MacFrame.multipurpose, src=src, dst=dst, pan=pan, seq=seq, payload=b"mp")
    for h in hies:
        for p in pies:
            add(
                MacFrame.multipurpose,
                src=ext,
                dst=None,
                pan=PAN,
                seq=3,
                payload=b"mp!",
                header_ies=h,
                payload_ies=p,
            )

    # Link messages, and a few of them as unsecured data frames (the "link" outcome).
    nd, nm = bytes(range(8)), bytes(range(8, 16))
    messages = [
        JoinRequest(METER_EXT, nd).to_bytes(),
        KeyTransport(nd, nm, key, 1, PAN, MeterUtility.GAS, b"SYSTITLE", key, key).to_bytes(),
        JoinConfirm(nm).to_bytes(),
        JoinReject(2).to_bytes(),
        JoinAccept(nd, nm).to_bytes(),
    ]
    for m in messages:
        add(MacFrame.data, src=ext, dst=BROADCAST, dst_pan=PAN, seq=1, payload=m)

    # Secured frames: every level and key identifier mode, 2006 and 2015 (with IEs).
    key_ids = ((None, b""), (1, b""), (7, b"\x01\x02\x03\x04"), (9, bytes(range(8))))
    auxes = [
        AuxSecurityHeader(level, 1000 + level, key_index, key_source)
        for level in range(1, 8)
        for key_index, key_source in key_ids
    ]
    secured_plain: list[Any] = []
    for aux in auxes:
        for version, h, p in (
            (FrameVersion.V2006, (), ()),
            (FrameVersion.V2015, (), ()),
            (FrameVersion.V2015, hies[1], pies[1]),
            (FrameVersion.V2015, (), pies[2]),
        ):
            for ftype, payload in payload_for.items():
                for src in (ext, short):
                    f = MacFrame.data(
                        src=src,
                        dst=Address.short(1) if ftype != FrameType.BEACON else None,
                        dst_pan=PAN if ftype != FrameType.BEACON else None,
                        src_pan=None if ftype != FrameType.BEACON else PAN,
                        seq=0x2A,
                        payload=payload,
                        version=version,
                        frame_type=ftype,
                        aux=aux,
                        header_ies=h,
                        payload_ies=p,
                    )
                    secured_plain.append(f)
    secured_plain.append(
        MacFrame.multipurpose(
            src=ext, dst=Address.short(1), pan=PAN, seq=4, payload=b"mp", aux=auxes[4 * 4 + 1]
        )
    )
    mpdus = [f.to_bytes() for f in plain]
    secured = []
    for f in secured_plain:
        mpdus.append(secure(f, key, src_ext=METER_EXT))
        secured.append((f, METER_EXT))

    ppdus = []
    for i, mpdu in enumerate(mpdus[:: max(1, len(mpdus) // 60)]):
        for fcs_len in (2, 4):
            psdu = mpdu + compute_fcs(mpdu, fcs_len)
            ppdus.append(build_ppdu(psdu, fcs_len=fcs_len, whitened=bool(i & 1)))
            ppdus.append(
                build_ppdu(
                    psdu, fcs_len=fcs_len, whitened=not i & 1, sfd=SFD_UNCODED_1, preamble_octets=8
                )
            )
    coded = [m + compute_fcs(m, 4) for m in mpdus[:: max(1, len(mpdus) // 4)] if len(m) < 40]
    for psdu in coded[:4]:
        ppdus.append(build_ppdu(psdu, fcs_len=4, fec="nrnsc"))
        ppdus.append(build_ppdu(psdu, fcs_len=4, fec="rsc", whitened=False))
        ppdus.append(build_ppdu(psdu, fcs_len=4, fec="rsc", fec_interleaving=False))

    return Corpus(
        mpdus=mpdus,
        secured=secured,
        ppdus=ppdus,
        messages=messages,
        keys=keys,
        short_to_ext={(PAN, SHORT_METER): METER_EXT},
    )


# --- mutations -----------------------------------------------------------------------------

_EDGE = (0x00, 0x01, 0x7E, 0x7F, 0x80, 0xFE, 0xFF, 0x3F, 0xF8, 0x55)


def random_bytes(rng: random.Random) -> bytes:
    n = rng.choice((rng.randrange(4), rng.randrange(32), rng.randrange(128), rng.randrange(300)))
    return rng.randbytes(n)


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(9)
        n = len(b)
        if op <= 1 and n:  # bit flips (twice as likely)
            for _ in range(rng.choice((1, 1, 2, 3, 8))):
                i = rng.randrange(8 * n)
                b[i >> 3] ^= 1 << (i & 7)
        elif op == 2:  # truncation
            del b[rng.randrange(n + 1) :]
        elif op == 3:  # insertion
            i = rng.randrange(n + 1)
            b[i:i] = rng.randbytes(rng.choice((1, 1, 2, 4, 16)))
        elif op == 4 and n:  # deletion
            i = rng.randrange(n)
            del b[i : i + rng.choice((1, 1, 2, 4, 16))]
        elif op == 5 and n:  # an edge value
            b[rng.randrange(n)] = rng.choice(_EDGE)
        elif op == 6 and n:  # a chunk duplicated
            i = rng.randrange(n)
            j = min(n, i + rng.randrange(1, 17))
            b[j:j] = b[i:j]
        elif op == 7 and n >= 2:  # any frame control
            b[0], b[1] = rng.randrange(256), rng.randrange(256)
        else:  # spliced with another frame
            other = rng.choice(pool)
            b = b[: rng.randrange(n + 1)] + other[rng.randrange(len(other) + 1) :]
    return bytes(b)


def pick(rng: random.Random, pool: list[bytes]) -> bytes:
    r = rng.random()
    if r < 0.15:
        return random_bytes(rng)
    if r < 0.18:
        return rng.choice(pool)
    return mutate(rng, rng.choice(pool), pool)


# --- the targets ---------------------------------------------------------------------------


class Fuzzer:
    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus

    def run_chunk(self, seed: int, chunk: int, count: int) -> Report:
        from ihd.smwap.errors import FrameError, PhyError
        from ihd.smwap.fcs import compute_fcs
        from ihd.smwap.link import LinkMessageError, decode_message
        from ihd.smwap.mac import AuxSecurityHeader, parse_mpdu, parse_mpdu_unchecked
        from ihd.smwap.phy import parse_ppdu
        from ihd.smwap.receiver import Receiver
        from ihd.smwap.security import SecurityPolicy, secure

        rng = random.Random(f"{seed}:{chunk}")
        rep = Report()
        c = self.corpus
        receivers = [
            Receiver(keys=c.keys),
            Receiver(keys=c.keys, policy=SecurityPolicy(0)),
            Receiver(keys=c.keys, policy=SecurityPolicy(1)),
        ]
        for r in receivers:
            r.short_to_ext.update(c.short_to_ext)
        counter = 1_000_000

        for _ in range(count):
            # mac -----------------------------------------------------------------------
            data = pick(rng, c.mpdus)
            rep.tried["mac"] += 1
            how = rng.random()
            try:
                if how < 0.7:
                    frame = parse_mpdu_unchecked(data)
                else:
                    fcs_len = rng.choice((2, 4))
                    fcs = compute_fcs(data, fcs_len) if how < 0.9 else rng.randbytes(fcs_len)
                    data += fcs
                    frame = parse_mpdu(data, fcs_len)
            except FrameError as e:
                rep.reject("mac", reason_class(e.reason))
            except Exception:
                rep.fail("mac", data, traceback.format_exc())
            else:
                rep.accepted["mac"] += 1
                try:
                    again = parse_mpdu_unchecked(frame.to_bytes())
                    if again != frame:
                        rep.fail("mac", data, f"parse(build(frame)) != frame:\n{again}\n{frame}")
                except Exception:
                    rep.fail("mac", data, "frame does not build again:\n" + traceback.format_exc())

            # phy -----------------------------------------------------------------------
            data = pick(rng, c.ppdus)
            rep.tried["phy"] += 1
            scheme = rng.choice((None, None, None, "nrnsc", "rsc"))
            try:
                ppdu = parse_ppdu(data, fec_scheme=scheme, fec_interleaving=rng.random() < 0.8)
            except PhyError as e:
                rep.reject("phy", reason_class(e.reason))
            except Exception:
                rep.fail("phy", data, traceback.format_exc())
            else:
                rep.accepted["phy"] += 1
                if len(ppdu.psdu) != ppdu.phr.frame_length:
                    rep.fail("phy", data, f"PSDU of {len(ppdu.psdu)} octets, PHR says {ppdu.phr}")

            # receiver ------------------------------------------------------------------
            if rng.random() < 0.3:  # a fresh frame: a counter above every mark
                plain, src = rng.choice(c.secured)
                counter += 1
                aux = plain.aux
                fresh = AuxSecurityHeader(aux.level, counter, aux.key_index, aux.key_source)
                data = secure(replace(plain, aux=fresh), c.keys.lookup(fresh, src), src_ext=src)
                if rng.random() < 0.8:
                    data = mutate(rng, data, c.mpdus)
            else:
                data = pick(rng, c.mpdus)
            fcs_len = rng.choice((2, 4))
            r = rng.random()
            psdu = data + (compute_fcs(data, fcs_len) if r < 0.9 else rng.randbytes(fcs_len))
            rep.tried["receiver"] += 1
            receiver = rng.choice(receivers)
            try:
                got = receiver.receive(
                    psdu,
                    fcs_len,
                    fcs_ok=rng.choice((None, None, None, True, False)),
                    rssi_dbm=rng.choice((None, -70.0)),
                    lqi=rng.choice((None, 200)),
                    now=float(counter),
                )
            except Exception:
                rep.fail("receiver", psdu, traceback.format_exc())
            else:
                if got.outcome == "ok":
                    rep.accepted["receiver"] += 1
                else:
                    rep.reject("receiver", got.outcome)

            # link ----------------------------------------------------------------------
            data = pick(rng, c.messages)
            rep.tried["link"] += 1
            try:
                msg = decode_message(data)
            except LinkMessageError as e:
                rep.reject("link", reason_class(str(e)))
            except Exception:
                rep.fail("link", data, traceback.format_exc())
            else:
                rep.accepted["link"] += 1
                if msg.to_bytes() != data:
                    rep.fail("link", data, f"decoded message encodes differently: {msg!r}")
        return rep


_WORKER: Fuzzer | None = None


def _init_worker() -> None:
    global _WORKER
    _WORKER = Fuzzer(build_corpus())


def _run(job: tuple[int, int, int]) -> Report:
    assert _WORKER is not None
    return _WORKER.run_chunk(*job)


def fuzz(count: int, seed: int = 0, jobs: int = 1) -> Report:
    """Feed ``count`` inputs to each target; ``jobs`` > 1 uses that many processes."""
    chunks = [(seed, i, min(CHUNK, count - i * CHUNK)) for i in range(-(-count // CHUNK))]
    report = Report()
    if jobs <= 1 or len(chunks) == 1:
        fuzzer = Fuzzer(build_corpus())
        for job in chunks:
            report.merge(fuzzer.run_chunk(*job))
        return report
    with multiprocessing.Pool(min(jobs, len(chunks)), initializer=_init_worker) as pool:
        # In chunk order, so the failures kept are the same whatever the number of jobs.
        for rep in pool.imap(_run, chunks):
            report.merge(rep)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="inputs per target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument(
        "--failures",
        type=Path,
        default=Path("fuzz_smwap_failures.txt"),
        help="where tracebacks go when there are unexpected exceptions",
    )
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    rep = fuzz(args.count, args.seed, args.jobs)
    wall = time.monotonic() - t0
    for line in rep.lines():
        print(line)
    total = sum(rep.tried.values())
    print(
        f"fuzz: {total} inputs ({args.count} per target, seed {args.seed}, {args.jobs} jobs) "
        f"in {wall:.1f} s: {rep.total_unexpected} unexpected"
    )
    if rep.total_unexpected:
        args.failures.write_text("\n\n".join(rep.failures) + "\n")
        for f in rep.failures[:2]:
            print(f, file=sys.stderr)
        print(f"fuzz: first {len(rep.failures)} failures in {args.failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
