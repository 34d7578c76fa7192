"""Pairing a display with a meter: a PROJECT-DEFINED key transport handshake, sans I/O.

Why project-defined: SMWAP's own joining and key management (ETSI TS 102 887-2, said to use
IEEE 802.15.9 KMP) are not available to this project. So that the display can pair for real,
with the simulated meter today and with a real meter once the ETSI procedure is known, we
define a small handshake of our own and specify it byte by byte in ``docs/smwap-pairing.md``.
It is **not** taken from ETSI and a real SMWAP meter will not speak it.

The shape, in one line: the display asks in clear; the meter answers with its keys,
encrypted under a link key both derive from the install code; the display proves it got them;
the meter confirms.

=========  ================  =========================================  ==================
type       direction         security                                   content
=========  ================  =========================================  ==================
0x01       display -> meter  none (nothing secret in it)                JOIN_REQUEST
0x02       meter -> display  level 6, link key, key id mode 0           KEY_TRANSPORT
0x03       display -> meter  level 5, network key, key id mode 1        JOIN_CONFIRM
0x04       meter -> display  none                                       JOIN_REJECT
0x05       meter -> display  level 6, link key, key id mode 0           JOIN_ACCEPT
=========  ================  =========================================  ==================

Every message is the MAC payload of an IEEE 802.15.4-2006 data frame with extended source
and destination addresses: dispatch octet ``0xA5`` ("ihd link"), message type, version 1,
then the fields. The link key is the AES-MMO hash of the install code (:mod:`.installcode`).
The CCM* work is :mod:`ihd.smwap.security`'s; this module only builds plaintext frames.

**Display side** (:class:`DisplayPairing`): a state machine whose whole rule is the
``_TRANSITIONS`` table below. ``receive()`` and ``tick()`` first turn a frame or the time
into one of a few *inputs* (the guards: addressing, decryption, nonce echo); then the table
says, for (state, input), the next state and the action, which returns events. A pair not
in the table is ignored, so nothing can happen in ``PAIRED`` or ``FAILED``. The display may
know the meter's EUI-64 (then it asks the meter directly and reports outcomes at once) or
only the install code (then it broadcasts and takes the first KEY_TRANSPORT that decrypts
with the link key; outcomes that could come from a neighbour's meter wait for the end of the
window).

**Meter side** (:class:`MeterLink`): used by the simulated meter, so the demo pairs through
this same code and the real CCM*.

No clocks, threads or randomness inside: ``now`` (seconds, any monotonic origin) and an
``rng(n) -> bytes`` source are passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum, StrEnum
from typing import ClassVar

from ihd.smwap.installcode import link_key, parse_install_code
from ihd.smwap.mac import (
    BROADCAST,
    BROADCAST_PAN,
    Address,
    AddrMode,
    AuxSecurityHeader,
    FrameType,
    MacFrame,
)
from ihd.smwap.security import Key, SecurityError, secure, unsecure

__all__ = [
    "CAP_RX_ON_WHEN_IDLE",
    "DISPATCH",
    "VERSION",
    "DisplayPairing",
    "Event",
    "Failed",
    "JoinAccept",
    "JoinConfirm",
    "JoinReject",
    "JoinRequest",
    "KeyTransport",
    "LinkMessageError",
    "Message",
    "MessageType",
    "MeterLink",
    "MeterUtility",
    "Paired",
    "PairedMeter",
    "PairingFailure",
    "PairingState",
    "Progress",
    "RejectReason",
    "Send",
    "decode_message",
]

DISPATCH = 0xA5
"""First MAC payload octet of every pairing message ("ihd link")."""
VERSION = 1
CAP_RX_ON_WHEN_IDLE = 0x01
"""Capabilities bit 0: the display's receiver is on when idle (mains powered)."""

LINK_LEVEL = 6  # ENC-MIC-64 under the link key (KEY_TRANSPORT, JOIN_ACCEPT)
CONFIRM_LEVEL = 5  # ENC-MIC-32 under the network key (JOIN_CONFIRM)
NONCE_LEN = 8


# --- display side: the whole rule of its state machine -------------------------------------


class PairingState(Enum):
    IDLE = "idle"
    REQUESTING = "requesting"  # JOIN_REQUEST sent (and repeated), waiting for KEY_TRANSPORT
    CONFIRMING = "confirming"  # keys received, JOIN_CONFIRM sent, waiting for JOIN_ACCEPT
    PAIRED = "paired"
    FAILED = "failed"


class _In(Enum):
    """What a frame or the clock amounts to, decided by the guards in ``receive``/``tick``."""

    START = "start"
    RETRY_DUE = "retry_due"  # the retry interval passed (and attempts are left)
    DEADLINE = "deadline"  # the overall window closed
    HEARD = "heard"  # first frame from the meter (or, broadcasting, a link frame to us)
    KEY_TRANSPORT = "key_transport"  # decrypted with the link key, echoes N_d
    WRONG_KEY = "wrong_key"  # the known meter's link frame failed the MIC
    WRONG_KEY_MAYBE = "wrong_key_maybe"  # same while broadcasting: maybe a neighbour's meter
    REJECT = "reject"  # JOIN_REJECT from the known meter
    REJECT_MAYBE = "reject_maybe"  # JOIN_REJECT while broadcasting
    ACCEPT = "accept"  # JOIN_ACCEPT, decrypted with the link key, echoes N_d and N_m


_S = PairingState

# Everything that moves the display's pairing state lives here:
# (state, input) -> (next state, action); action "x" is DisplayPairing._do_x, which returns
# the events. Pairs not listed are ignored, so PAIRED and FAILED are final.
_TRANSITIONS: dict[tuple[PairingState, _In], tuple[PairingState, str]] = {
    (_S.IDLE, _In.START): (_S.REQUESTING, "send_request"),
    (_S.REQUESTING, _In.RETRY_DUE): (_S.REQUESTING, "send_request"),
    (_S.REQUESTING, _In.HEARD): (_S.REQUESTING, "found"),
    (_S.REQUESTING, _In.KEY_TRANSPORT): (_S.CONFIRMING, "send_confirm"),
    (_S.REQUESTING, _In.WRONG_KEY): (_S.FAILED, "fail_wrong_code"),
    (_S.REQUESTING, _In.WRONG_KEY_MAYBE): (_S.REQUESTING, "note_wrong_key"),
    (_S.REQUESTING, _In.REJECT): (_S.FAILED, "fail_rejected"),
    (_S.REQUESTING, _In.REJECT_MAYBE): (_S.REQUESTING, "note_reject"),
    (_S.REQUESTING, _In.DEADLINE): (_S.FAILED, "fail_window_closed"),
    (_S.CONFIRMING, _In.RETRY_DUE): (_S.CONFIRMING, "resend_confirm"),
    (_S.CONFIRMING, _In.ACCEPT): (_S.PAIRED, "paired"),
    (_S.CONFIRMING, _In.REJECT): (_S.FAILED, "fail_rejected"),
    (_S.CONFIRMING, _In.DEADLINE): (_S.FAILED, "fail_timeout"),
}

_ACTIVE = (_S.REQUESTING, _S.CONFIRMING)


# --- messages ------------------------------------------------------------------------------


class MessageType(IntEnum):
    JOIN_REQUEST = 0x01
    KEY_TRANSPORT = 0x02
    JOIN_CONFIRM = 0x03
    JOIN_REJECT = 0x04
    JOIN_ACCEPT = 0x05


class MeterUtility(IntEnum):
    """What the meter measures (KEY_TRANSPORT utility octet)."""

    ELECTRICITY = 1
    GAS = 2
    WATER = 3


class RejectReason(IntEnum):
    NOT_ACCEPTING = 1  # the meter is not accepting joins now
    TOO_MANY_DISPLAYS = 2  # the meter already has its maximum number of displays


class LinkMessageError(ValueError):
    """A MAC payload that is not a well-formed pairing message (version 1)."""


def _header(t: MessageType) -> bytes:
    return bytes((DISPATCH, t, VERSION))


def _nonce(name: str, value: bytes) -> None:
    if len(value) != NONCE_LEN:
        raise ValueError(f"{name} is {NONCE_LEN} octets, not {len(value)}")


def _eui(value: int) -> None:
    if not 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
        raise ValueError(f"EUI-64 {value!r} out of range")


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """``A5 01 01 | display EUI-64 (8, as printed) | N_d (8) | capabilities (1)``."""

    TYPE: ClassVar[MessageType] = MessageType.JOIN_REQUEST
    LENGTH: ClassVar[int] = 20

    display_eui: int
    display_nonce: bytes
    capabilities: int = CAP_RX_ON_WHEN_IDLE

    def __post_init__(self) -> None:
        _eui(self.display_eui)
        _nonce("display_nonce", self.display_nonce)
        if not 0 <= self.capabilities <= 0xFF:
            raise ValueError("capabilities is one octet")

    def to_bytes(self) -> bytes:
        return (
            _header(self.TYPE)
            + self.display_eui.to_bytes(8, "big")
            + self.display_nonce
            + bytes((self.capabilities,))
        )

    @classmethod
    def _decode(cls, b: bytes) -> JoinRequest:
        return cls(int.from_bytes(b[3:11], "big"), b[11:19], b[19])


@dataclass(frozen=True, slots=True)
class KeyTransport:
    """``A5 02 01 | N_d (8) | N_m (8) | network key (16) | key index (1) | PAN ID (2, LE) |
    utility (1) | DLMS system title (8) | DLMS encryption key (16) | DLMS authentication key
    (16)``. Sent secured (level 6, link key). Keys never appear in ``repr``."""

    TYPE: ClassVar[MessageType] = MessageType.KEY_TRANSPORT
    LENGTH: ClassVar[int] = 79

    display_nonce: bytes
    meter_nonce: bytes
    network_key: Key = field(repr=False)
    network_key_index: int
    pan_id: int
    utility: MeterUtility
    dlms_system_title: bytes
    dlms_encryption_key: Key = field(repr=False)
    dlms_authentication_key: Key = field(repr=False)

    def __post_init__(self) -> None:
        _nonce("display_nonce", self.display_nonce)
        _nonce("meter_nonce", self.meter_nonce)
        if not 0 <= self.network_key_index <= 0xFF:
            raise ValueError("network_key_index is one octet")
        if not 0 <= self.pan_id <= 0xFFFE:
            raise ValueError("pan_id must be 0..0xFFFE (0xFFFF is the broadcast PAN)")
        if len(self.dlms_system_title) != 8:
            raise ValueError("a DLMS system title is 8 octets")

    def to_bytes(self) -> bytes:
        return (
            _header(self.TYPE)
            + self.display_nonce
            + self.meter_nonce
            + self.network_key.value
            + bytes((self.network_key_index,))
            + self.pan_id.to_bytes(2, "little")
            + bytes((self.utility,))
            + self.dlms_system_title
            + self.dlms_encryption_key.value
            + self.dlms_authentication_key.value
        )

    @classmethod
    def _decode(cls, b: bytes) -> KeyTransport:
        try:
            utility = MeterUtility(b[38])
        except ValueError:
            raise LinkMessageError(f"unknown utility {b[38]}") from None
        pan = int.from_bytes(b[36:38], "little")
        if pan == BROADCAST_PAN:
            raise LinkMessageError("PAN ID 0xFFFF in a key transport")
        return cls(
            b[3:11],
            b[11:19],
            Key(b[19:35]),
            b[35],
            pan,
            utility,
            b[39:47],
            Key(b[47:63]),
            Key(b[63:79]),
        )


@dataclass(frozen=True, slots=True)
class JoinConfirm:
    """``A5 03 01 | N_m (8)``. Sent secured (level 5, network key, key id mode 1)."""

    TYPE: ClassVar[MessageType] = MessageType.JOIN_CONFIRM
    LENGTH: ClassVar[int] = 11

    meter_nonce: bytes

    def __post_init__(self) -> None:
        _nonce("meter_nonce", self.meter_nonce)

    def to_bytes(self) -> bytes:
        return _header(self.TYPE) + self.meter_nonce

    @classmethod
    def _decode(cls, b: bytes) -> JoinConfirm:
        return cls(b[3:11])


@dataclass(frozen=True, slots=True)
class JoinReject:
    """``A5 04 01 | reason (1)``. Unsecured. Unknown reasons are kept as ints."""

    TYPE: ClassVar[MessageType] = MessageType.JOIN_REJECT
    LENGTH: ClassVar[int] = 4

    reason: int

    def __post_init__(self) -> None:
        if not 0 <= self.reason <= 0xFF:
            raise ValueError("reason is one octet")

    def to_bytes(self) -> bytes:
        return _header(self.TYPE) + bytes((self.reason,))

    @classmethod
    def _decode(cls, b: bytes) -> JoinReject:
        return cls(b[3])


@dataclass(frozen=True, slots=True)
class JoinAccept:
    """``A5 05 01 | N_d (8) | N_m (8)``. Sent secured (level 6, link key): the meter has
    recorded the display as joined."""

    TYPE: ClassVar[MessageType] = MessageType.JOIN_ACCEPT
    LENGTH: ClassVar[int] = 19

    display_nonce: bytes
    meter_nonce: bytes

    def __post_init__(self) -> None:
        _nonce("display_nonce", self.display_nonce)
        _nonce("meter_nonce", self.meter_nonce)

    def to_bytes(self) -> bytes:
        return _header(self.TYPE) + self.display_nonce + self.meter_nonce

    @classmethod
    def _decode(cls, b: bytes) -> JoinAccept:
        return cls(b[3:11], b[11:19])


Message = JoinRequest | KeyTransport | JoinConfirm | JoinReject | JoinAccept

_DECODERS: dict[int, type[Message]] = {
    m.TYPE: m for m in (JoinRequest, KeyTransport, JoinConfirm, JoinReject, JoinAccept)
}


def decode_message(payload: bytes) -> Message:
    """Decode a plaintext MAC payload. Raises :class:`LinkMessageError` for anything that is
    not exactly one version-1 pairing message (wrong dispatch, type, version or length)."""
    if len(payload) < 3 or payload[0] != DISPATCH:
        raise LinkMessageError("not a pairing message (dispatch octet)")
    cls = _DECODERS.get(payload[1])
    if cls is None:
        raise LinkMessageError(f"unknown pairing message type {payload[1]:#04x}")
    if payload[2] != VERSION:
        raise LinkMessageError(f"pairing message version {payload[2]} (only 1 is known)")
    if len(payload) != cls.LENGTH:
        raise LinkMessageError(f"{cls.TYPE.name} is {cls.LENGTH} octets, not {len(payload)}")
    return cls._decode(payload)


# --- frames --------------------------------------------------------------------------------


def _frame(
    src: int,
    dst: Address,
    pan: int,
    seq: int,
    payload: bytes,
    aux: AuxSecurityHeader | None = None,
) -> MacFrame:
    return MacFrame.data(
        src=Address.ext(src),
        dst=dst,
        dst_pan=pan,
        seq=seq,
        payload=payload,
        ack_request=dst != BROADCAST,
        aux=aux,
    )


def _plain(raw: bytes, frame: MacFrame, key: Key, src_ext: int) -> bytes | None:
    """The decrypted MAC payload, or None if the MIC (or anything else) fails."""
    try:
        return unsecure(raw, frame, key, src_ext=src_ext).payload
    except SecurityError:
        return None


def _decode_or_none(payload: bytes) -> Message | None:
    try:
        return decode_message(payload)
    except LinkMessageError:
        return None


# --- display side: events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairedMeter:
    """What the display learned from a meter when pairing. Keys never appear in ``repr``.

    ``meter_frame_counter`` is the counter of the last link frame accepted from the meter:
    the meter uses one counter for all its frames, so frames it sends later must be above
    it (a floor for the replay guard).
    """

    eui64: int
    utility: MeterUtility
    network_key: Key = field(repr=False)
    network_key_index: int
    pan_id: int
    dlms_system_title: bytes
    dlms_encryption_key: Key = field(repr=False)
    dlms_authentication_key: Key = field(repr=False)
    meter_frame_counter: int
    rssi_dbm: float | None = None

    @property
    def address(self) -> Address:
        return Address.ext(self.eui64)


@dataclass(frozen=True, slots=True)
class Send:
    """Transmit this MPDU (without FCS: the radio or :func:`~ihd.smwap.mac.build_mpdu`'s
    FCS step adds it)."""

    mpdu: bytes


@dataclass(frozen=True, slots=True)
class Progress:
    """A step of pairing to show. ``step`` is stable for code ("searching", "found",
    "confirming"); ``message`` is for the householder."""

    step: str
    message: str


@dataclass(frozen=True, slots=True)
class Paired:
    meter: PairedMeter


class PairingFailure(StrEnum):
    WRONG_CODE = "wrong_code"  # a KEY_TRANSPORT failed the MIC with our link key
    TIMEOUT = "timeout"  # the meter was heard, but pairing did not finish in time
    OUT_OF_RANGE = "out_of_range"  # nothing heard from the meter in the whole window
    REJECTED = "rejected"  # the meter sent JOIN_REJECT


@dataclass(frozen=True, slots=True)
class Failed:
    reason: PairingFailure
    message: str


Event = Send | Progress | Paired | Failed

MSG_SEARCHING = "Looking for your meter…"
MSG_FOUND = "Meter found, exchanging keys…"
MSG_CONFIRMING = "Keys received, confirming with the meter…"

FAILURE_MESSAGES: dict[PairingFailure, str] = {
    PairingFailure.WRONG_CODE: (
        "The meter did not accept this install code. Check the code on the meter's label "
        "and enter it again."
    ),
    PairingFailure.TIMEOUT: (
        "The meter answered, but pairing did not finish in time. Keep the display near "
        "the meter and try again."
    ),
    PairingFailure.OUT_OF_RANGE: (
        "The display could not hear your meter. Move the display closer to the meter, "
        "check that the meter is ready to pair, and try again."
    ),
    PairingFailure.REJECTED: (
        "The meter refused to pair with this display. Contact your energy supplier."
    ),
}
REJECT_MESSAGES: dict[int, str] = {
    RejectReason.NOT_ACCEPTING: (
        "The meter is not accepting new displays at the moment. Ask your energy supplier "
        "to allow pairing, then try again."
    ),
    RejectReason.TOO_MANY_DISPLAYS: (
        "The meter already has as many displays as it allows. Ask your energy supplier "
        "to remove an old one, then try again."
    ),
}


# --- display side: the state machine ------------------------------------------------------


class DisplayPairing:
    """The display side of pairing with one meter.

    ``meter_eui`` None means "only the install code is known": the JOIN_REQUEST is
    broadcast (PAN 0xFFFF, short address 0xFFFF, no ack) and the first KEY_TRANSPORT that
    decrypts with the link key names the meter. ``install_code`` is the text the householder
    typed (checked with :func:`~ihd.smwap.installcode.parse_install_code`, which may raise
    :class:`~ihd.smwap.installcode.InstallCodeError`) or the code octets with their CRC.

    Timing: ``attempts`` JOIN_REQUESTs ``retry_interval_s`` apart; once keys arrive, up to
    ``attempts`` JOIN_CONFIRMs at the same interval; the whole pairing must finish within
    ``timeout_s`` of ``start``. Call :meth:`tick` at :attr:`next_tick_at` (or more often).

    ``frame_counter`` is the display's next outgoing frame counter: the caller keeps it
    across runs (it must never repeat under one key) and reads it back afterwards.
    ``seq`` is the next MAC sequence number.
    """

    def __init__(
        self,
        display_eui: int,
        install_code: str | bytes,
        rng: Callable[[int], bytes],
        *,
        meter_eui: int | None = None,
        retry_interval_s: float = 2.0,
        attempts: int = 3,
        timeout_s: float = 15.0,
        frame_counter: int = 0,
        seq: int = 0,
        capabilities: int = CAP_RX_ON_WHEN_IDLE,
    ) -> None:
        _eui(display_eui)
        if meter_eui is not None:
            _eui(meter_eui)
        if attempts < 1 or retry_interval_s <= 0 or timeout_s <= 0:
            raise ValueError("attempts, retry_interval_s and timeout_s must be positive")
        code = parse_install_code(install_code) if isinstance(install_code, str) else install_code
        self._link_key = Key(link_key(code))
        self.display_eui = display_eui
        self.meter_eui = meter_eui
        self.broadcast = meter_eui is None
        self.retry_interval_s = retry_interval_s
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.frame_counter = frame_counter
        self.seq = seq & 0xFF
        self.capabilities = capabilities
        self._rng = rng
        self.state = PairingState.IDLE
        self.paired: PairedMeter | None = None
        self.failure: PairingFailure | None = None
        # session
        self._nonce_d = b""
        self._deadline = 0.0
        self._next_retry: float | None = None
        self._sent = 0  # JOIN_REQUESTs or JOIN_CONFIRMs sent in the current state
        self._heard = False
        self._wrong_key_seen = False
        self._reject_reason: int | None = None
        self._pan = BROADCAST_PAN
        self._rssi: float | None = None
        self._kt: KeyTransport | None = None
        self._meter_counter = -1  # last link frame counter accepted from the meter

    # -- public API -------------------------------------------------------------------------

    @property
    def next_tick_at(self) -> float | None:
        """When :meth:`tick` next has something to do (None when pairing is over)."""
        if self.state not in _ACTIVE:
            return None
        if self._next_retry is None:
            return self._deadline
        return min(self._next_retry, self._deadline)

    def start(self, now: float) -> list[Event]:
        """Begin pairing: a :class:`Progress` and the first JOIN_REQUEST (:class:`Send`)."""
        if self.state is not PairingState.IDLE:
            raise RuntimeError("pairing already started")
        self._nonce_d = self._rng(NONCE_LEN)
        _nonce("rng output", self._nonce_d)
        self._deadline = now + self.timeout_s
        return self._fire(_In.START, now)

    def tick(self, now: float) -> list[Event]:
        """Let time pass: retries, and the end of the window."""
        if self.state not in _ACTIVE:
            return []
        if now >= self._deadline:
            return self._fire(_In.DEADLINE, now)
        if self._next_retry is not None and now >= self._next_retry:
            return self._fire(_In.RETRY_DUE, now)
        return []

    def receive(
        self, raw: bytes, frame: MacFrame, rssi_dbm: float | None, now: float
    ) -> list[Event]:
        """A frame the radio heard: ``raw`` is the MPDU without FCS and ``frame`` is
        ``parse_mpdu_unchecked(raw)``. Any frame may be passed (the meter's data frames,
        neighbours' traffic): frames from the meter count as "heard" for the outcome."""
        if self.state not in _ACTIVE:
            return []
        src = frame.src
        from_meter = (
            not self.broadcast
            and src is not None
            and src.mode == AddrMode.EXTENDED
            and src.value == self.meter_eui
        )
        if now >= self._deadline:
            # Too late to use, but it shows the meter is in range: say TIMEOUT, not
            # OUT_OF_RANGE.
            self._heard = self._heard or from_meter
            return self._fire(_In.DEADLINE, now)
        events: list[Event] = []
        if from_meter:
            self._rssi = rssi_dbm if rssi_dbm is not None else self._rssi
            if frame.src_pan is not None and frame.src_pan != BROADCAST_PAN:
                self._pan = frame.src_pan  # learn the PAN for the next JOIN_REQUEST
            events += self._fire(_In.HEARD, now)
        inp = self._classify(raw, frame)
        if inp is not None:
            if self.broadcast:
                self._rssi = rssi_dbm if rssi_dbm is not None else self._rssi
                events += self._fire(_In.HEARD, now)
            events += self._fire(inp, now)
        return events

    # -- guards: what a frame amounts to ----------------------------------------------------

    def _classify(self, raw: bytes, frame: MacFrame) -> _In | None:
        src = frame.src
        if (
            frame.frame_type != FrameType.DATA
            or frame.dst != Address.ext(self.display_eui)
            or src is None
            or src.mode != AddrMode.EXTENDED
            or (self.meter_eui is not None and src.value != self.meter_eui)
        ):
            return None
        aux = frame.aux
        if aux is None:
            msg = _decode_or_none(frame.payload)
            if not isinstance(msg, JoinReject):
                return None
            self._reject_reason = msg.reason
            return _In.REJECT_MAYBE if self.meter_eui is None else _In.REJECT
        if aux.level != LINK_LEVEL or aux.key_id_mode != 0 or aux.frame_counter is None:
            return None
        if aux.frame_counter <= self._meter_counter:
            return None  # a replay of a link frame already accepted in this session
        payload = _plain(raw, frame, self._link_key, src.value)
        if payload is None:
            return _In.WRONG_KEY_MAYBE if self.meter_eui is None else _In.WRONG_KEY
        msg = _decode_or_none(payload)
        if isinstance(msg, KeyTransport) and msg.display_nonce == self._nonce_d:
            if self.state is PairingState.REQUESTING:
                self._kt = msg
                self._meter_counter = aux.frame_counter
                self.meter_eui = src.value
            return _In.KEY_TRANSPORT
        if (
            isinstance(msg, JoinAccept)
            and self._kt is not None
            and msg.display_nonce == self._nonce_d
            and msg.meter_nonce == self._kt.meter_nonce
        ):
            self._meter_counter = aux.frame_counter
            return _In.ACCEPT
        return None  # stale (another session's nonce) or not for us

    # -- the machine ------------------------------------------------------------------------

    def _fire(self, inp: _In, now: float) -> list[Event]:
        step = _TRANSITIONS.get((self.state, inp))
        if step is None:
            return []
        next_state, action = step
        events: list[Event] = getattr(self, "_do_" + action)(now)
        self.state = next_state
        return events

    # -- actions ----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (seq + 1) & 0xFF
        return seq

    def _schedule(self, now: float) -> None:
        self._sent += 1
        self._next_retry = now + self.retry_interval_s if self._sent < self.attempts else None

    def _do_send_request(self, now: float) -> list[Event]:
        first = self.state is PairingState.IDLE
        msg = JoinRequest(self.display_eui, self._nonce_d, self.capabilities)
        if self.meter_eui is None:
            dst, pan = BROADCAST, BROADCAST_PAN
        else:
            dst, pan = Address.ext(self.meter_eui), self._pan
        mpdu = _frame(self.display_eui, dst, pan, self._next_seq(), msg.to_bytes()).to_bytes()
        self._schedule(now)
        events: list[Event] = [Send(mpdu)]
        if first:
            events.insert(0, Progress("searching", MSG_SEARCHING))
        return events

    def _do_found(self, now: float) -> list[Event]:
        if self._heard:
            return []
        self._heard = True
        return [Progress("found", MSG_FOUND)]

    def _confirm_frame(self) -> bytes:
        kt, meter = self._kt, self.meter_eui
        assert kt is not None and meter is not None
        counter = self.frame_counter
        if counter >= 0xFFFFFFFF:
            raise RuntimeError("the display's frame counter is exhausted")
        self.frame_counter = counter + 1
        aux = AuxSecurityHeader(CONFIRM_LEVEL, counter, key_index=kt.network_key_index)
        frame = _frame(
            self.display_eui,
            Address.ext(meter),
            kt.pan_id,
            self._next_seq(),
            JoinConfirm(kt.meter_nonce).to_bytes(),
            aux,
        )
        return secure(frame, kt.network_key, src_ext=self.display_eui)

    def _do_send_confirm(self, now: float) -> list[Event]:
        events = self._do_found(now)
        self._sent = 0
        self._schedule(now)
        events += [Send(self._confirm_frame()), Progress("confirming", MSG_CONFIRMING)]
        return events

    def _do_resend_confirm(self, now: float) -> list[Event]:
        self._schedule(now)
        return [Send(self._confirm_frame())]

    def _do_note_wrong_key(self, now: float) -> list[Event]:
        self._wrong_key_seen = True
        return []

    def _do_note_reject(self, now: float) -> list[Event]:
        return []  # the reason is kept in _reject_reason for the end of the window

    def _fail(self, reason: PairingFailure, message: str | None = None) -> list[Event]:
        self.failure = reason
        self._next_retry = None
        return [Failed(reason, message or FAILURE_MESSAGES[reason])]

    def _do_fail_wrong_code(self, now: float) -> list[Event]:
        return self._fail(PairingFailure.WRONG_CODE)

    def _do_fail_rejected(self, now: float) -> list[Event]:
        reason = self._reject_reason
        return self._fail(
            PairingFailure.REJECTED, REJECT_MESSAGES.get(reason) if reason is not None else None
        )

    def _do_fail_timeout(self, now: float) -> list[Event]:
        return self._fail(PairingFailure.TIMEOUT)

    def _do_fail_window_closed(self, now: float) -> list[Event]:
        # Broadcasting, a MIC failure or a reject may have come from a neighbour's meter, so
        # they decide the outcome only now, strongest evidence first.
        if self._wrong_key_seen:
            return self._do_fail_wrong_code(now)
        if self._reject_reason is not None:
            return self._do_fail_rejected(now)
        if self._heard:
            return self._do_fail_timeout(now)
        return self._fail(PairingFailure.OUT_OF_RANGE)

    def _do_paired(self, now: float) -> list[Event]:
        kt, meter = self._kt, self.meter_eui
        assert kt is not None and meter is not None
        self._next_retry = None
        self.paired = PairedMeter(
            eui64=meter,
            utility=kt.utility,
            network_key=kt.network_key,
            network_key_index=kt.network_key_index,
            pan_id=kt.pan_id,
            dlms_system_title=kt.dlms_system_title,
            dlms_encryption_key=kt.dlms_encryption_key,
            dlms_authentication_key=kt.dlms_authentication_key,
            meter_frame_counter=self._meter_counter,
            rssi_dbm=self._rssi,
        )
        return [Paired(self.paired)]


# --- meter side ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Session:
    display_nonce: bytes
    meter_nonce: bytes
    started: float
    confirm_counter: int = -1  # last JOIN_CONFIRM frame counter accepted
    confirmed: bool = False


class MeterLink:
    """The meter side of pairing (for the simulated meter).

    ``receive`` takes every frame the meter hears and returns the MPDUs (without FCS) to
    send back; frames that are not pairing messages give ``[]``. Rules:

    * JOIN_REQUEST, addressed to this meter (its PAN or the broadcast PAN) or broadcast:
      not ``accepting_joins``: JOIN_REJECT(1) if addressed to this meter, silence if
      broadcast (a meter not in pairing mode stays quiet to strangers). Already
      ``max_displays`` other displays joined: JOIN_REJECT(2). Otherwise a KEY_TRANSPORT. A
      repeated request with the same N_d gets the same N_m (the display may still be
      answering an earlier copy).
    * JOIN_CONFIRM (level 5, our network key index) from a display with a live session,
      echoing its N_m, counter above the last one: the display is added to :attr:`joined`
      and gets a JOIN_ACCEPT (again for every repeated confirm).
    * Sessions live ``session_lifetime_s``; at most ``max_sessions`` pending at once (the
      oldest is dropped), so a flood of requests cannot grow memory.

    ``frame_counter`` is the meter's outgoing frame counter, shared by all its frames: the
    simulated meter reads and advances the same attribute for its data frames.
    """

    def __init__(
        self,
        eui64: int,
        install_code: str | bytes,
        rng: Callable[[int], bytes],
        *,
        network_key: Key,
        network_key_index: int,
        pan_id: int,
        utility: MeterUtility,
        dlms_system_title: bytes,
        dlms_encryption_key: Key,
        dlms_authentication_key: Key,
        accepting_joins: bool = True,
        max_displays: int = 4,
        frame_counter: int = 0,
        seq: int = 0,
        session_lifetime_s: float = 60.0,
        max_sessions: int = 8,
    ) -> None:
        _eui(eui64)
        code = parse_install_code(install_code) if isinstance(install_code, str) else install_code
        self._link_key = Key(link_key(code))
        self.eui64 = eui64
        self._rng = rng
        self.network_key = network_key
        self.network_key_index = network_key_index
        self.pan_id = pan_id
        self.utility = utility
        self.dlms_system_title = dlms_system_title
        self.dlms_encryption_key = dlms_encryption_key
        self.dlms_authentication_key = dlms_authentication_key
        self.accepting_joins = accepting_joins
        self.max_displays = max_displays
        self.frame_counter = frame_counter
        self.seq = seq & 0xFF
        self.session_lifetime_s = session_lifetime_s
        self.max_sessions = max_sessions
        self.joined: set[int] = set()
        self._sessions: dict[int, _Session] = {}
        # Check the key material now, not at the first request.
        self._key_transport(bytes(NONCE_LEN), bytes(NONCE_LEN))

    def receive(self, raw: bytes, frame: MacFrame, now: float) -> list[bytes]:
        """A frame the meter heard (``raw`` without FCS, ``frame`` parsed from it): the
        MPDUs to send in reply, ``[]`` for anything that is not a pairing message to it."""
        src = frame.src
        if frame.frame_type != FrameType.DATA or src is None or src.mode != AddrMode.EXTENDED:
            return []
        self._expire(now)
        if frame.aux is None:
            return self._on_request(frame, src.value, now)
        return self._on_confirm(raw, frame, src.value)

    def forget(self, display_eui: int) -> None:
        """Unpair a display (it no longer counts towards ``max_displays``)."""
        self.joined.discard(display_eui)
        self._sessions.pop(display_eui, None)

    def _key_transport(self, nonce_d: bytes, nonce_m: bytes) -> KeyTransport:
        return KeyTransport(
            nonce_d,
            nonce_m,
            self.network_key,
            self.network_key_index,
            self.pan_id,
            self.utility,
            self.dlms_system_title,
            self.dlms_encryption_key,
            self.dlms_authentication_key,
        )

    def _expire(self, now: float) -> None:
        old = [d for d, s in self._sessions.items() if now - s.started > self.session_lifetime_s]
        for d in old:
            del self._sessions[d]

    def _to_me(self, frame: MacFrame) -> bool:
        return frame.dst == Address.ext(self.eui64) and frame.dst_pan in (
            self.pan_id,
            BROADCAST_PAN,
        )

    def _on_request(self, frame: MacFrame, display: int, now: float) -> list[bytes]:
        msg = _decode_or_none(frame.payload)
        if not isinstance(msg, JoinRequest) or msg.display_eui != display:
            return []
        unicast = self._to_me(frame)
        if not unicast and not (
            frame.dst == BROADCAST and frame.dst_pan in (BROADCAST_PAN, self.pan_id)
        ):
            return []
        if not self.accepting_joins:
            return [self._reject(display, RejectReason.NOT_ACCEPTING)] if unicast else []
        if display not in self.joined and len(self.joined) >= self.max_displays:
            return [self._reject(display, RejectReason.TOO_MANY_DISPLAYS)]
        session = self._sessions.get(display)
        if session is None or session.display_nonce != msg.display_nonce:
            session = _Session(msg.display_nonce, self._rng(NONCE_LEN), now)
            _nonce("rng output", session.meter_nonce)
            self._sessions.pop(display, None)
            self._sessions[display] = session
            while len(self._sessions) > self.max_sessions:
                del self._sessions[next(iter(self._sessions))]
        kt = self._key_transport(session.display_nonce, session.meter_nonce)
        return [self._secured(display, kt.to_bytes())]

    def _on_confirm(self, raw: bytes, frame: MacFrame, display: int) -> list[bytes]:
        aux = frame.aux
        session = self._sessions.get(display)
        if (
            aux is None
            or session is None
            or aux.level != CONFIRM_LEVEL
            or aux.key_id_mode != 1
            or aux.key_index != self.network_key_index
            or aux.frame_counter is None
            or aux.frame_counter <= session.confirm_counter
            or frame.dst != Address.ext(self.eui64)
            or frame.dst_pan != self.pan_id
        ):
            return []
        payload = _plain(raw, frame, self.network_key, display)
        if payload is None:
            return []
        msg = _decode_or_none(payload)
        if not isinstance(msg, JoinConfirm) or msg.meter_nonce != session.meter_nonce:
            return []
        session.confirm_counter = aux.frame_counter
        session.confirmed = True
        self.joined.add(display)
        accept = JoinAccept(session.display_nonce, session.meter_nonce)
        return [self._secured(display, accept.to_bytes())]

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (seq + 1) & 0xFF
        return seq

    def _secured(self, display: int, payload: bytes) -> bytes:
        counter = self.frame_counter
        if counter >= 0xFFFFFFFF:
            raise RuntimeError("the meter's frame counter is exhausted")
        self.frame_counter = counter + 1
        aux = AuxSecurityHeader(LINK_LEVEL, counter)
        # To PAN 0xFFFF: a display that is not yet in our PAN filters on that (802.15.4
        # frame filtering: destination PAN = its own or the broadcast PAN).
        frame = _frame(
            self.eui64, Address.ext(display), BROADCAST_PAN, self._next_seq(), payload, aux
        )
        return secure(frame, self._link_key, src_ext=self.eui64)

    def _reject(self, display: int, reason: RejectReason) -> bytes:
        frame = _frame(
            self.eui64,
            Address.ext(display),
            BROADCAST_PAN,
            self._next_seq(),
            JoinReject(reason).to_bytes(),
        )
        return frame.to_bytes()
