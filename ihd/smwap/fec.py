"""MR-FSK forward error correction (IEEE 802.15.4g / 802.15.4-2015 SUN FSK), in pure Python.

Why this exists: radios such as the AT86RF215 code and decode FEC in hardware, but simpler
transceivers used in raw mode (CC1200, SX126x) and the simulated air hand the host the coded
bit stream. This module turns PHR + PSDU into that stream and back, correcting errors with a
Viterbi decoder. No I/O; :mod:`.phy` calls it for PPDUs with a coded SFD.

**The code.** Rate 1/2, constraint length K = 4 (three memory cells M0 M1 M2, newest first),
one of two encoders chosen by the PIB attribute phyFskFecScheme, which is not sent on air:

* NRNSC (non-recursive, non-systematic): ``u1 = NOT(b ^ M1 ^ M2)``, ``u0 = NOT(b ^ M0 ^ M1 ^
  M2)`` (generators 13 and 17 octal, both outputs inverted).
* RSC (recursive, systematic): feedback ``f = b ^ M0 ^ M1 ^ M2`` enters the register;
  ``u0 = b`` and ``u1 = f ^ M1 ^ M2``.

Each input bit gives one code symbol ``(u1, u0)``, sent ``u1`` first. The input is PHR (16
bits, MSB first) then PSDU (LSB first per octet), then three **tail** bits that return the
register to zero (zeros for NRNSC; ``M0 ^ M1 ^ M2`` for RSC), then **pad** bits so that the
symbol count is a multiple of 16: ``01011`` if PHR + PSDU is an odd number of octets, else
``0101100001011``. The pad bits go through the encoder too.

**Interleaver.** Blocks of 16 code symbols (32 bits); the symbol at position k moves to
``15 - 4 * (k mod 4) - floor(k / 4)``. The map is its own inverse. NRNSC frames are always
interleaved; for RSC it is optional (phyFskFecInterleavingRsc, also not sent on air).

**Whitening** with FEC on is applied *after* coding and interleaving, to every code bit after
the first 32 (the coded PHR is never whitened): PN9 (x^9 + x^5 + 1, seed all ones), one PN9
bit per code bit.

**Decoder.** Hard-decision Viterbi over the 8-state trellis, start state 0, end state 0 after
the tail (the pad carries no information and is not decoded). :func:`viterbi_decode` also
takes soft values in [0, 1]. The free distance of this code is 6, so any two code-bit errors
within a constraint span are corrected, and scattered errors anywhere; the interleaver spreads
a short burst on air over several spans. Speed (2-core x86_64, CPython 3.11): about 6 ms for a
100-octet PSDU; see ``tests/test_smwap_fec.py``.

**Where the details come from** (nothing here is from ETSI TS 102 887, which was not
available):

* Encoders, output order, tail, pad bits, interleaver, whitening after interleaving:
  [IEEE-confirmed via 802.15.4g-2012 Annex O examples 3 (RSC, interleaved, whitened) and 4
  (NRNSC, interleaved)], as transcribed into the public ``sun_phy`` project
  (SebastienDeriaz/sun_phy, ``tests/O.4.8.csv``, ``tables/O.5.6.csv``). Our encoder reproduces
  both full PPDU bit streams; ``tests/test_smwap_fec.py`` checks them.
* NRNSC encoder, pad bits and interleaver: also [src] gr-ieee802154g (dudmuck), written
  independently. Note that gr-ieee802154g whitens the PSDU *before* coding; the Annex O
  example whitens after, which is what we do.
* "NRNSC is always interleaved": [mem], consistent with both sources.
* The PHR decision: the receiver decodes the PHR from the first two interleaver blocks,
  trying both values of the DW bit (it decides whether block 2 is whitened), then decodes the
  whole frame. This is our design, not the standard's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import PhyError

__all__ = [
    "FEC_SCHEMES",
    "FecFrame",
    "FecScheme",
    "coded_octets",
    "decode_frame",
    "decode_phr",
    "deinterleave",
    "encode_bits",
    "encode_frame",
    "interleave",
    "viterbi_decode",
]

FecScheme = Literal["nrnsc", "rsc"]
FEC_SCHEMES: tuple[FecScheme, ...] = ("nrnsc", "rsc")

_PHR_DW = 0x0800  # the DW bit of the PHR value (decides whitening of the coded PSDU)
_MAX_PSDU = 2047
_INF = 1 << 30

_PAD_ODD = (0, 1, 0, 1, 1)  # PHR + PSDU octets odd
_PAD_EVEN = (0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1)

_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


# --- trellis tables ------------------------------------------------------------------------
# State s = M0 << 2 | M1 << 1 | M2. Every transition shifts the register right: the next
# state is (f << 2) | (s >> 1), where f is the bit entering M0 (the input for NRNSC, the
# feedback for RSC). So state ns has the two predecessors ((ns & 3) << 1) | x, x = 0 or 1.


def _parity(v: int) -> int:
    return bin(v).count("1") & 1


def _step(scheme: FecScheme, s: int, b: int) -> tuple[int, int]:
    """(next state, code symbol u1 << 1 | u0) for input bit b in state s."""
    m0, m1, m2 = s >> 2, (s >> 1) & 1, s & 1
    if scheme == "nrnsc":
        u1 = 1 ^ b ^ m1 ^ m2
        u0 = 1 ^ b ^ m0 ^ m1 ^ m2
        f = b
    else:
        f = b ^ m0 ^ m1 ^ m2
        u1 = f ^ m1 ^ m2
        u0 = b
    return (f << 2) | (s >> 1), (u1 << 1) | u0


@dataclass(frozen=True, slots=True)
class _Trellis:
    next_state: tuple[tuple[int, int], ...]  # [s][b]
    symbol: tuple[tuple[int, int], ...]  # [s][b]
    tail_bit: tuple[int, ...]  # [s]: the input that feeds a 0 into M0
    # For each next state ns: (p0, symbol p0->ns, p1, symbol p1->ns, input p0->ns, input p1->ns)
    into: tuple[tuple[int, int, int, int, int, int], ...]


def _trellis(scheme: FecScheme) -> _Trellis:
    steps = [(_step(scheme, s, 0), _step(scheme, s, 1)) for s in range(8)]
    nxt = tuple((z[0], o[0]) for z, o in steps)
    sym = tuple((z[1], o[1]) for z, o in steps)
    tail = tuple(0 if scheme == "nrnsc" else _parity(s) for s in range(8))
    into = []
    for ns in range(8):
        row: list[int] = []
        for p in (((ns & 3) << 1), ((ns & 3) << 1) | 1):
            b = nxt[p].index(ns)
            row += [p, sym[p][b]]
        b0, b1 = nxt[row[0]].index(ns), nxt[row[2]].index(ns)
        into.append((row[0], row[1], row[2], row[3], b0, b1))
    return _Trellis(nxt, sym, tail, tuple(into))


_TRELLIS: dict[str, _Trellis] = {s: _trellis(s) for s in FEC_SCHEMES}

# Hamming distance between a received hard symbol r and an expected symbol e: _HARD_BM[r][e].
_HARD_BM = tuple(tuple(bin(r ^ e).count("1") for e in range(4)) for r in range(4))
# The four 2-bit symbols of an octet, first sent first.
_SYMS = tuple((v >> 6, (v >> 4) & 3, (v >> 2) & 3, v & 3) for v in range(256))


def _check_scheme(scheme: str) -> _Trellis:
    try:
        return _TRELLIS[scheme]
    except KeyError:
        raise ValueError(f"FEC scheme must be 'nrnsc' or 'rsc', not {scheme!r}") from None


# --- encoder -------------------------------------------------------------------------------


def _pad(n_octets: int) -> tuple[int, ...]:
    return _PAD_ODD if n_octets & 1 else _PAD_EVEN


def encode_bits(bits: Sequence[int], scheme: FecScheme) -> list[int]:
    """Code ``bits`` (0/1, in transmit order) and append tail and pad: the code bits in
    transmit order, ``u1`` then ``u0`` per input bit. ``len(bits)`` must be a multiple of 8."""
    t = _check_scheme(scheme)
    if len(bits) % 8:
        raise ValueError("the coded PHR + PSDU is a whole number of octets")
    out: list[int] = []
    s = 0
    nxt, sym = t.next_state, t.symbol
    for b in bits:
        v = sym[s][b & 1]
        s = nxt[s][b & 1]
        out += (v >> 1, v & 1)
    for _ in range(3):
        b = t.tail_bit[s]
        v = sym[s][b]
        s = nxt[s][b]
        out += (v >> 1, v & 1)
    for b in _pad(len(bits) // 8):
        v = sym[s][b]
        s = nxt[s][b]
        out += (v >> 1, v & 1)
    return out


def _encode_octets(data: bytes, t: _Trellis) -> bytearray:
    """Code octets whose bits go MSB first (tail and pad included), packed MSB first."""
    out = bytearray()
    s = 0
    nxt, sym = t.next_state, t.symbol
    acc = 0
    n = 0

    def push(v: int) -> None:
        nonlocal acc, n
        acc = (acc << 2) | v
        n += 1
        if n == 4:
            out.append(acc)
            acc = n = 0

    for octet in data:
        for i in range(7, -1, -1):
            b = (octet >> i) & 1
            push(sym[s][b])
            s = nxt[s][b]
    for _ in range(3):
        b = t.tail_bit[s]
        push(sym[s][b])
        s = nxt[s][b]
    for b in _pad(len(data)):
        push(sym[s][b])
        s = nxt[s][b]
    assert n == 0  # the pad makes whole 32-bit blocks
    return out


# --- interleaver ---------------------------------------------------------------------------


def _interleave_tables() -> tuple[tuple[int, ...], ...]:
    # Block = 4 octets = 16 symbols, symbol k at bits (31 - 2k, 30 - 2k) of a 32-bit int.
    tables = []
    for j in range(4):
        row = []
        for v in range(256):
            word = 0
            for i, symbol in enumerate(_SYMS[v]):
                k = 4 * j + i
                t = 15 - 4 * (k % 4) - k // 4
                word |= symbol << (30 - 2 * t)
            row.append(word)
        tables.append(tuple(row))
    return tuple(tables)


_IL = _interleave_tables()


def _interleave_octets(data: bytes | bytearray) -> bytes:
    t0, t1, t2, t3 = _IL
    out = bytearray()
    for i in range(0, len(data), 4):
        word = t0[data[i]] | t1[data[i + 1]] | t2[data[i + 2]] | t3[data[i + 3]]
        out += word.to_bytes(4, "big")
    return bytes(out)


def interleave(code_bits: Sequence[int]) -> list[int]:
    """Interleave code bits (0/1, transmit order) in blocks of 16 symbols. The length must be
    a multiple of 32. Its own inverse (see :func:`deinterleave`)."""
    n = len(code_bits)
    if n % 32:
        raise ValueError(f"interleaving needs whole 32-bit blocks, not {n} bits")
    out = list(code_bits)
    for base in range(0, n, 32):
        for k in range(16):
            t = 15 - 4 * (k % 4) - k // 4
            out[base + 2 * t] = code_bits[base + 2 * k]
            out[base + 2 * t + 1] = code_bits[base + 2 * k + 1]
    return out


deinterleave = interleave
"""The inverse of :func:`interleave`, which is the same permutation."""


# --- whitening of the coded PSDU -----------------------------------------------------------


def _pn9_msb_first(n: int) -> bytes:
    # The PN9 bit sequence (same generator as phy.pn9_mask), packed MSB first: code bits are
    # not octets, so the first PN9 bit goes with the first code bit, the octet's MSB.
    reg, out = 0x1FF, bytearray()
    for _ in range(n):
        octet = 0
        for _ in range(8):
            fb = (reg ^ (reg >> 5)) & 1
            reg = (reg >> 1) | (fb << 8)
            octet = (octet << 1) | fb
        out.append(octet)
    return bytes(out)


_MAX_CODED = 2 * (16 + 8 * _MAX_PSDU + 16) // 8  # octets for the largest frame
_PN9_CODED = _pn9_msb_first(_MAX_CODED)


def _whiten_from(data: bytes | bytearray, start: int) -> bytes:
    """XOR the PN9 mask onto ``data[start:]`` (the mask starts at ``start``)."""
    n = len(data) - start
    if n <= 0:
        return bytes(data)
    x = int.from_bytes(data[start:], "big") ^ int.from_bytes(_PN9_CODED[:n], "big")
    return bytes(data[:start]) + x.to_bytes(n, "big")


# --- framing -------------------------------------------------------------------------------


def coded_octets(psdu_len: int) -> int:
    """Octets on air after the SFD for a coded PHR + PSDU of ``psdu_len`` octets (twice the
    16 + 8L + 3 + pad bits, which always fill whole 32-bit blocks)."""
    if not 0 <= psdu_len <= _MAX_PSDU:
        raise ValueError(f"PSDU length {psdu_len} not in 0..{_MAX_PSDU}")
    n_in = 8 * (2 + psdu_len) + 3 + len(_pad(2 + psdu_len))
    return 2 * n_in // 8


def _check_interleaving(scheme: FecScheme, interleaved: bool) -> None:
    if scheme == "nrnsc" and not interleaved:
        raise ValueError("NRNSC is always interleaved")


def encode_frame(
    phr: bytes, psdu: bytes, scheme: FecScheme, *, interleaved: bool = True, whitened: bool
) -> bytes:
    """The coded PHR + PSDU (tail and pad included) as sent after the SFD, packed MSB first.

    ``phr`` is the 2 PHR octets (sent MSB first), ``psdu`` the plain PSDU (octets sent LSB
    first). ``whitened`` must match the PHR's DW bit: PN9 goes over the code bits after the
    coded PHR.
    """
    t = _check_scheme(scheme)
    _check_interleaving(scheme, interleaved)
    if len(phr) != 2:
        raise ValueError("the PHR is 2 octets")
    if len(psdu) > _MAX_PSDU:
        raise ValueError(f"PSDU of {len(psdu)} octets is longer than {_MAX_PSDU}")
    coded: bytes | bytearray = _encode_octets(phr + psdu.translate(_BITREV), t)
    if interleaved:
        coded = _interleave_octets(coded)
    return _whiten_from(coded, 4) if whitened else bytes(coded)


def _symbols(data: bytes | bytearray) -> list[int]:
    syms = _SYMS
    return [s for octet in data for s in syms[octet]]


def _acs(
    symbols: Sequence[int], t: _Trellis, n_steps: int
) -> tuple[list[int], list[tuple[int, ...]]]:
    """Hard-decision add-compare-select over ``n_steps`` symbols from state 0: the final path
    metrics and, per step, the chosen predecessor index (0/1) of each state."""
    into = t.into
    bm_table = _HARD_BM
    pm = [0, _INF, _INF, _INF, _INF, _INF, _INF, _INF]
    decisions: list[tuple[int, ...]] = []
    append = decisions.append
    for i in range(n_steps):
        bm = bm_table[symbols[i]]
        new = []
        dec = []
        for p0, e0, p1, e1, _b0, _b1 in into:
            a = pm[p0] + bm[e0]
            b = pm[p1] + bm[e1]
            if b < a:
                new.append(b)
                dec.append(1)
            else:
                new.append(a)
                dec.append(0)
        pm = new
        append(tuple(dec))
    return pm, decisions


def _traceback(decisions: list[tuple[int, ...]], t: _Trellis, end: int) -> list[int]:
    into = t.into
    bits = [0] * len(decisions)
    s = end
    for i in range(len(decisions) - 1, -1, -1):
        row = into[s]
        if decisions[i][s]:
            bits[i] = row[5]
            s = row[2]
        else:
            bits[i] = row[4]
            s = row[0]
    return bits


def viterbi_decode(
    received: Sequence[float], scheme: FecScheme, n_bits: int, *, terminated: bool = True
) -> tuple[list[int], float]:
    """Maximum-likelihood input bits for ``received`` code bits (transmit order, already
    de-interleaved and de-whitened).

    ``received`` holds hard bits (0/1) or soft values in [0, 1] (the chance the bit is a 1,
    or a demodulator level scaled to that range); the branch metric is ``|r - expected|``, so
    for hard bits the returned metric is the number of code bits that differ from the decoded
    path. ``n_bits`` input bits are decoded from the first ``2 * n_bits`` code bits; with
    ``terminated`` the path must end in state 0 (include the three tail bits in ``n_bits``
    and drop them afterwards). Returns (bits, path metric).
    """
    t = _check_scheme(scheme)
    if not 0 <= n_bits <= len(received) // 2:
        raise ValueError(f"{len(received)} code bits cannot give {n_bits} input bits")
    if all(r == 0 or r == 1 for r in received[: 2 * n_bits]):
        symbols = [int(received[2 * i]) << 1 | int(received[2 * i + 1]) for i in range(n_bits)]
        pm_int, decisions = _acs(symbols, t, n_bits)
        pm: list[float] = [float(m) for m in pm_int]
    else:
        pm, decisions = _acs_soft(received, t, n_bits)
    end = 0 if terminated else min(range(8), key=pm.__getitem__)
    return _traceback(decisions, t, end), pm[end]


def _acs_soft(
    received: Sequence[float], t: _Trellis, n_steps: int
) -> tuple[list[float], list[tuple[int, ...]]]:
    inf = float(_INF)
    pm = [0.0] + [inf] * 7
    decisions: list[tuple[int, ...]] = []
    for i in range(n_steps):
        r1, r0 = float(received[2 * i]), float(received[2 * i + 1])
        if not (0.0 <= r1 <= 1.0 and 0.0 <= r0 <= 1.0):
            raise ValueError("soft values must lie in [0, 1]")
        bm = (r1 + r0, r1 + 1.0 - r0, 1.0 - r1 + r0, 2.0 - r1 - r0)
        new: list[float] = []
        dec = []
        for p0, e0, p1, e1, _b0, _b1 in t.into:
            a = pm[p0] + bm[e0]
            b = pm[p1] + bm[e1]
            if b < a:
                new.append(b)
                dec.append(1)
            else:
                new.append(a)
                dec.append(0)
        pm = new
        decisions.append(tuple(dec))
    return pm, decisions


def _bits_to_octets(bits: Sequence[int]) -> bytes:
    """Pack bits MSB first (len a multiple of 8)."""
    n = len(bits) // 8
    if not n:
        return b""
    return int("".join("1" if b else "0" for b in bits[: 8 * n]), 2).to_bytes(n, "big")


def _prepare(block: bytes, whitened: bool, interleaved: bool) -> bytes | bytearray:
    data: bytes | bytearray = _whiten_from(block, 4) if whitened else block
    return _interleave_octets(data) if interleaved else data


@dataclass(frozen=True, slots=True)
class FecFrame:
    """A decoded coded frame: the PHR octets, the PSDU and how many code bits (data and
    tail) the decoder changed."""

    phr: bytes
    psdu: bytes
    corrected_bits: int


def decode_phr(
    coded: bytes, scheme: FecScheme | None = None, *, interleaved: bool = True
) -> tuple[bytes, FecScheme]:
    """Decode the 2 PHR octets from the first 8 coded octets (two interleaver blocks).

    The second block is whitened only if the PHR's DW bit is set, so both cases are decoded
    and the one that agrees with its own DW bit and has the lower path metric wins. With
    ``scheme=None`` both codes are tried as well (the scheme is a PIB attribute, not sent on
    air); ``interleaved`` applies to RSC. Returns (PHR octets, scheme). Raises
    :class:`PhyError` if the octets are too short or no hypothesis is consistent.
    """
    if len(coded) < 8:
        raise PhyError(f"truncated coded PHR ({len(coded)} of 8 octets)", 0)
    schemes = FEC_SCHEMES if scheme is None else (scheme,)
    best: tuple[int, bytes, FecScheme] | None = None
    head = bytes(coded[:8])
    for sch in schemes:
        t = _check_scheme(sch)
        il = interleaved or sch == "nrnsc"
        for dw in (False, True):
            symbols = _symbols(_prepare(head, dw, il))
            pm, decisions = _acs(symbols, t, 32)
            end = min(range(8), key=pm.__getitem__)
            bits = _traceback(decisions, t, end)
            phr = _bits_to_octets(bits[:16])
            if bool(phr[0] << 8 & _PHR_DW) != dw:
                continue
            if best is None or pm[end] < best[0]:
                best = (pm[end], phr, sch)
    if best is None:
        raise PhyError("coded PHR cannot be decoded", 0)
    return best[1], best[2]


def decode_frame(
    coded: bytes,
    psdu_len: int,
    scheme: FecScheme,
    *,
    interleaved: bool = True,
    whitened: bool,
) -> FecFrame:
    """Decode a whole coded PHR + PSDU of ``psdu_len`` octets from ``coded`` (the octets after
    the SFD; extra octets are ignored). :class:`PhyError` if there are too few octets."""
    t = _check_scheme(scheme)
    _check_interleaving(scheme, interleaved)
    need = coded_octets(psdu_len)
    if len(coded) < need:
        raise PhyError(f"truncated coded PSDU ({len(coded)} of {need} octets)", len(coded))
    data = _prepare(bytes(coded[:need]), whitened, interleaved)
    n_bits = 16 + 8 * psdu_len + 3
    pm, decisions = _acs(_symbols(data), t, n_bits)
    bits = _traceback(decisions, t, 0)
    octets = _bits_to_octets(bits[: n_bits - 3])
    return FecFrame(octets[:2], octets[2:].translate(_BITREV), pm[0])
