"""The receive side of SMWAP in one place: PSDU in, one outcome out.

Like h11's ``Connection``, ``Receiver.receive`` takes octets and returns an event; it holds
the state that decides what a frame means (keys, frame-counter marks, the neighbour table)
and does no I/O. Every frame ends in exactly one outcome, named by the diagnostics counter
it increments:

=====================  ===========================================================
outcome                when
=====================  ===========================================================
``fcs_error``          the FCS does not check (the radio's own verdict or ours)
``frame_error``        not a parseable 802.15.4 frame
``ack``                an acknowledgement (the radio matched it; nothing to do)
``link``               an unsecured pairing message (dispatch 0xA5): for pairing
``downgrade``          unsecured, or secured below the policy's minimum level
``no_source``          secured but no extended source we can map (nonce needs it)
``unknown_key``        no key for this source and key identifier
``replay``             frame counter at or below the source's mark
``duplicate``          a MAC retransmission of the last accepted frame
``mic_failure``        the MIC does not verify (tampered, or the wrong key)
``unsupported``        TSCH security (ASN in the nonce) that we do not implement
``bad_frame``          decrypted, but the plaintext does not parse (payload IEs, or a
                       2006 MAC command without its Command ID)
``ok``                 authentic, fresh: ``Received.frame`` is the plaintext
=====================  ===========================================================

Order matters and follows 802.15.4's incoming-frame procedure: the cheap policy and replay
checks run before any cryptography, and a frame moves its source's replay mark only after
its MIC verified, so a forged frame can never advance (or poison) a mark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ihd.smwap.errors import FrameError
from ihd.smwap.fcs import check_fcs
from ihd.smwap.mac import AddrMode, FrameType, MacFrame, parse_mpdu_unchecked
from ihd.smwap.neighbours import NeighbourTable, Outcome
from ihd.smwap.replay import ReplayGuard
from ihd.smwap.security import (
    DEFAULT_POLICY,
    KeyTable,
    SecurityError,
    SecurityPolicy,
    key_id,
    unsecure,
)

LINK_DISPATCH = 0xA5  # first payload octet of our (project-defined) pairing messages


@dataclass(frozen=True, slots=True)
class Received:
    outcome: str  # see the table above
    reason: str = ""
    frame: MacFrame | None = None  # plaintext when outcome == "ok", as parsed otherwise
    raw: bytes = b""  # the MPDU without FCS, as received
    src_ext: int | None = None  # the sender's EUI-64, when known

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def src_eui64(self) -> str | None:
        return None if self.src_ext is None else f"{self.src_ext:016X}"


_NEIGHBOUR_OUTCOME = {
    "ok": Outcome.OK,
    "downgrade": Outcome.DOWNGRADE,
    "unknown_key": Outcome.UNKNOWN_KEY,
    "replay": Outcome.REPLAY,
    "duplicate": Outcome.DUPLICATE,
    "mic_failure": Outcome.MIC_FAILURE,
    "unsupported": Outcome.UNSUPPORTED,
    "bad_frame": Outcome.BAD_FRAME,
}


class Receiver:
    def __init__(
        self,
        *,
        keys: KeyTable | None = None,
        guard: ReplayGuard | None = None,
        policy: SecurityPolicy = DEFAULT_POLICY,
        neighbours: NeighbourTable | None = None,
        link_frame: Callable[[MacFrame], bool] | None = None,
    ) -> None:
        self.keys = keys or KeyTable()
        # Secured pairing messages are under a link key only the pairing session holds: it
        # tells which frames are its own, so they end as "link", not "unknown_key".
        self.link_frame = link_frame
        self.guard = guard or ReplayGuard()
        self.policy = policy
        self.neighbours = neighbours or NeighbourTable()
        self.short_to_ext: dict[tuple[int | None, int], int] = {}  # (PAN, short) -> EUI-64

    def receive(
        self,
        psdu: bytes,
        fcs_len: int,
        *,
        fcs_ok: bool | None = None,
        rssi_dbm: float | None = None,
        lqi: int | None = None,
        now: float = 0.0,
    ) -> Received:
        if len(psdu) <= fcs_len:
            return Received("frame_error", f"frame shorter than its {fcs_len}-octet FCS")
        if fcs_ok is False or not check_fcs(psdu, fcs_len):
            return Received("fcs_error", "bad FCS")
        raw = psdu[:-fcs_len]
        try:
            frame = parse_mpdu_unchecked(raw)
        except FrameError as e:
            return Received("frame_error", str(e), raw=raw)
        if frame.frame_type is FrameType.ACK:
            return Received("ack", frame=frame, raw=raw)
        src_ext = self._source(frame)
        result = self._secure_checks(raw, frame, src_ext)
        if src_ext is not None and result.outcome in _NEIGHBOUR_OUTCOME:
            self.neighbours.note(src_ext, _NEIGHBOUR_OUTCOME[result.outcome], rssi_dbm, lqi, now)
        return result

    def _source(self, frame: MacFrame) -> int | None:
        src = frame.src
        if src is None:
            return None
        if src.mode is AddrMode.EXTENDED:
            return src.value
        return self.short_to_ext.get((frame.src_pan, src.value))

    def _secure_checks(self, raw: bytes, frame: MacFrame, src_ext: int | None) -> Received:
        aux = frame.aux
        if aux is None:
            if frame.frame_type is FrameType.DATA and frame.payload[:1] == bytes([LINK_DISPATCH]):
                return Received("link", frame=frame, raw=raw, src_ext=src_ext)
            if self.policy.min_level == 0:
                return Received("ok", frame=frame, raw=raw, src_ext=src_ext)
            return Received("downgrade", "unsecured frame", frame, raw, src_ext)
        try:
            if not self.policy.accepts(aux.level):
                raise SecurityError(
                    f"security level {aux.level} below the minimum {self.policy.min_level}",
                    "downgrade",
                )
            if src_ext is None:
                return Received("no_source", "no extended source address for the nonce", frame, raw)
            kid = key_id(aux)
            key = self.keys.lookup(aux, src_ext)
            if key is None and self.link_frame is not None and self.link_frame(frame):
                return Received("link", frame=frame, raw=raw, src_ext=src_ext)
            if key is None:
                raise SecurityError(f"no key {kid} for {src_ext:016X}", "unknown_key")
            self.guard.check(src_ext, kid, aux.frame_counter, frame.seq)
            plain = unsecure(raw, frame, key, src_ext=src_ext)
            self.guard.accept(src_ext, kid, aux.frame_counter, frame.seq)
        except SecurityError as e:
            return Received(e.counter, e.reason, frame, raw, src_ext)
        return Received("ok", frame=plain, raw=raw, src_ext=src_ext)
