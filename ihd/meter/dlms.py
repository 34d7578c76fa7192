"""DLMS/COSEM DATA-NOTIFICATION pushes: bytes in, typed readings out (and back).

Why this layer exists. The meter pushes its registers as an xDLMS DATA-NOTIFICATION
(IEC 62056-5-3, "Green Book"). The APDU and A-XDR data codecs are dlms-cosem's; this
module is the glue that (1) guards the library, which was written for trusted input,
(2) takes off the wrappers pushes arrive in (:mod:`ihd.meter.link`), (3) deciphers
general-glo-ciphering (:mod:`ihd.meter.cipher`) with an invocation-counter replay guard
(:mod:`ihd.meter.replay`), (4) maps the body (:mod:`ihd.meter.body`) onto
:mod:`ihd.meter.obis`, and (5) builds the same pushes for the simulated meter, so the demo
runs through the real decoder.

One entry point: ``decode_push(data, meter=, utility=, received_at=, keys=, guard=)``
takes a bare APDU (what SMWAP carries), or one in an LLC header, in HDLC frames
(segmented or not), in M-Bus long frames, in a DLMS/UDP wrapper, in general block
transfer, ciphered or plain, and returns a :class:`Push` or raises
:class:`MeterDecodeError` (or a subclass: :class:`MeterKeyError`,
:class:`MeterAuthError`, :class:`MeterReplayError`; ``outcome`` names each).

Body layouts (see :mod:`ihd.meter.body`): ``{OBIS, value[, scaler-unit]}`` entries, flat
``OBIS, value`` lists, the positional Norwegian Kaifa lists and the Czech descriptor
lists. Numeric values become readings; text values (meter ids, list versions)
go to ``Push.texts`` and their OBIS codes to ``Push.skipped``; codes missing from the OBIS
table become raw readings (``raw_<obis>_<unit>``), listed in ``Push.unknown`` for the
diagnostics counter, never dropped.

Time. ``build_push`` sends the push time as UTC (deviation 0) with the day of week
filled in. On decode, a date-time with no zone (deviation 0x8000 "not specified", or 0,
which dlms-cosem returns as a naive datetime) is taken as UTC. A date-time with
"not specified" date or time fields, or the "invalid" clock-status bit, is no point in
time: the push then takes the meter clock object (``0-0:1.0.0.255``) if the body has
one, as Aidon's hourly list does, or else ``received_at``. Other bad date-times raise.
Some meters (Kaifa, older Kamstrup) send the notification date-time as a Data CHOICE
(``09 0C`` + 12 octets) instead of an A-XDR octet string; dlms-cosem then fails with
"month must be in 1..12", so the header is split here.

Errors. For any input bytes, ``decode_push`` returns a ``Push`` or raises
``MeterDecodeError`` (a ValueError): every exception dlms-cosem throws is wrapped.

Speed: this imports ``dlms_cosem.protocol.xdlms``, ``dlms_data``, ``security`` and
``protocol.wrappers`` only, never ``dlms_cosem.connection`` (structlog; ~0.3 s to import).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dlms_cosem import time as dlms_time
from dlms_cosem.dlms_data import (
    DataStructure,
    DoubleLongData,
    DoubleLongUnsignedData,
    EnumData,
    IntegerData,
    OctetStringData,
)
from dlms_cosem.protocol.xdlms.data_notification import (
    DataNotification,
    LongInvokeIdAndPriority,
)

from ihd.meter.body import DATE_TIME_LEN, parse_body
from ihd.meter.cipher import DlmsKeys, decipher, parse_ciphered
from ihd.meter.errors import MeterAuthError, MeterDecodeError, MeterKeyError, MeterReplayError
from ihd.meter.link import TAG_GBT, unwrap
from ihd.meter.obis import COUNT, ObisCode, Register, format_obis, lookup, raw_quantity, resolve
from ihd.meter.reading import Reading, Utility
from ihd.meter.replay import InvocationGuard

__all__ = [
    "CLOCK_OBIS",
    "TAG_DATA_NOTIFICATION",
    "TAG_GENERAL_GLO_CIPHERING",
    "MeterAuthError",
    "MeterDecodeError",
    "MeterKeyError",
    "MeterReplayError",
    "Notification",
    "Push",
    "PushValue",
    "build_push",
    "decode_apdu",
    "decode_push",
]

# xDLMS APDU tags (Green Book, "xDLMS APDU" CHOICE).
TAG_DATA_NOTIFICATION = 0x0F
TAG_GENERAL_GLO_CIPHERING = 0xDB
TAG_GENERAL_DED_CIPHERING = 0xDC
TAG_GENERAL_CIPHERING = 0xDD
TAG_GENERAL_SIGNING = 0xDF
_OTHER_CIPHERED = {
    TAG_GENERAL_DED_CIPHERING: "general-ded-ciphering",
    TAG_GENERAL_CIPHERING: "general-ciphering",
    TAG_GENERAL_SIGNING: "general-signing",
}

CLOCK_OBIS: ObisCode = (0, 0, 1, 0, 0, 255)  # the meter's Clock object
_BARE: tuple[str, ...] = ("apdu",)
MAX_INVOKE_ID = (1 << 24) - 1  # long-invoke-id is 24 bits


@dataclass(frozen=True, slots=True)
class Push:
    invoke_id: int
    timestamp: float  # POSIX seconds UTC: notification time, else meter clock, else received_at
    readings: tuple[Reading, ...]
    skipped: tuple[str, ...] = ()  # OBIS codes of entries with no numeric value
    texts: tuple[tuple[str, str], ...] = ()  # (OBIS code or "", text): ids, list versions
    unknown: tuple[str, ...] = ()  # OBIS codes not in the table, kept as raw readings
    meter_clock: float | None = None  # the body's clock object, POSIX seconds UTC
    layout: str = "entries"  # how the body was read (ihd.meter.body)
    framing: tuple[str, ...] = ("apdu",)  # wrappers taken off, outermost first
    system_title: bytes | None = None  # ciphered pushes only
    invocation_counter: int | None = None
    security_control: int | None = None
    authenticated: bool = False  # a GCM tag verified with our authentication key


@dataclass(frozen=True, slots=True)
class Notification:
    """A DATA-NOTIFICATION with its body still A-XDR encoded."""

    invoke_id: int
    date_time: bytes | None  # the 12 date-time octets, None if absent
    body: bytes


# ---------------------------------------------------------------------------- decode


def decode_push(
    apdu: bytes,
    *,
    meter: str,
    utility: Utility,
    received_at: float,
    keys: DlmsKeys | None = None,
    guard: InvocationGuard | None = None,
) -> Push:
    """Decode one push (any wrapper; see the module docstring) into readings.

    ``utility`` is the device's utility from pairing. It applies to values whose OBIS
    code does not say otherwise; a gas register in an electricity meter's push stays gas.
    ``keys`` decipher general-glo-ciphering. ``guard``, if given, refuses ciphered pushes
    whose invocation counter is not above its mark for their system title, and moves the
    mark when one decodes (the caller commits ``guard.pending()`` with the readings).
    """
    try:
        return _decode_push(apdu, meter, utility, received_at, keys, guard)
    except MeterDecodeError:
        raise
    except Exception as exc:  # dlms-cosem raises ValueError, KeyError, IndexError, ...
        raise MeterDecodeError(f"malformed push: {type(exc).__name__}: {exc}") from exc


def decode_apdu(apdu: bytes, *, keys: DlmsKeys | None = None) -> Notification:
    """Unwrap (and decipher) one push to the DATA-NOTIFICATION it carries."""
    try:
        return _decode_apdu(bytes(apdu), keys, None)[0]
    except MeterDecodeError:
        raise
    except Exception as exc:
        raise MeterDecodeError(f"malformed APDU: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Security:
    system_title: bytes
    invocation_counter: int
    security_control: int
    authenticated: bool


def _decode_apdu(
    data: bytes, keys: DlmsKeys | None, guard: InvocationGuard | None
) -> tuple[Notification, tuple[str, ...], _Security | None]:
    if not data:
        raise MeterDecodeError("empty APDU")
    tag = data[0]
    if tag in (TAG_GENERAL_GLO_CIPHERING, *_OTHER_CIPHERED) and keys is None:
        raise MeterKeyError("ciphered APDU: no DLMS key configured")
    if tag in (TAG_DATA_NOTIFICATION, TAG_GENERAL_GLO_CIPHERING):
        apdu, framing = data, _BARE  # the SMWAP case: nothing to take off
    else:
        unwrapped = unwrap(data)
        apdu, framing = unwrapped.apdu, unwrapped.framing
        tag = apdu[0]
    security = None
    if tag == TAG_GENERAL_GLO_CIPHERING:
        if keys is None:
            raise MeterKeyError("ciphered APDU: no DLMS key configured")
        if guard is not None:
            c = parse_ciphered(apdu)
            guard.check(c.system_title, c.invocation_counter)  # before any AES
        d = decipher(apdu, keys)
        security = _Security(
            d.system_title, d.invocation_counter, d.security_control, d.authenticated
        )
        apdu = d.apdu
        if not apdu:
            raise MeterDecodeError("ciphered APDU holds nothing")
        tag = apdu[0]
        if tag in (TAG_GBT, TAG_GENERAL_GLO_CIPHERING):
            raise MeterDecodeError(f"ciphered APDU holds tag 0x{tag:02X}, not a push")
    elif tag in _OTHER_CIPHERED:
        if keys is None:
            raise MeterKeyError("ciphered APDU: no DLMS key configured")
        raise MeterDecodeError(f"{_OTHER_CIPHERED[tag]} is not supported")
    if tag != TAG_DATA_NOTIFICATION:
        raise MeterDecodeError(f"unsupported APDU tag 0x{tag:02X}")
    if security is None and keys is not None and keys.require_authentication:
        raise MeterAuthError(
            "plain push refused: the keys require authentication", "unauthenticated"
        )
    return _decode_data_notification(apdu), framing, security


def _decode_data_notification(apdu: bytes) -> Notification:
    # Header: tag, long-invoke-id-and-priority (4), date-time as an A-XDR octet string:
    # length 0 (absent) or 12. Some meters (Kaifa, older Kamstrup) send the date-time as
    # a Data CHOICE instead (09 0C + 12 octets), which dlms-cosem cannot parse.
    if len(apdu) < 6:
        raise MeterDecodeError(f"DATA-NOTIFICATION too short ({len(apdu)} octets)")
    n = apdu[5]
    if n == 0:
        date_time, rest = None, apdu[6:]
    elif n == DATE_TIME_LEN:
        date_time, rest = apdu[6:18], apdu[18:]
    elif n == 0x09 and len(apdu) > 6 and apdu[6] == DATE_TIME_LEN:
        date_time, rest = apdu[7:19], apdu[19:]
    else:
        raise MeterDecodeError(f"date-time field of length {n}; expected 0 or 12")
    if date_time is not None and len(date_time) != DATE_TIME_LEN:
        raise MeterDecodeError("DATA-NOTIFICATION truncated in its date-time")
    # The library parses the invoke id and hands back the body; the date-time we keep.
    dn = DataNotification.from_bytes(apdu[:5] + b"\x00" + rest)
    return Notification(
        int(dn.long_invoke_id_and_priority.long_invoke_id), date_time, bytes(dn.body)
    )


def _decode_push(
    data: bytes,
    meter: str,
    utility: Utility,
    received_at: float,
    keys: DlmsKeys | None,
    guard: InvocationGuard | None,
) -> Push:
    note, framing, security = _decode_apdu(bytes(data), keys, guard)
    timestamp = _date_time_to_posix(note.date_time) if note.date_time is not None else None
    body = parse_body(note.body)
    clock = _date_time_to_posix(body.clock) if body.clock is not None else None
    if timestamp is None:
        timestamp = clock if clock is not None else received_at

    readings = []
    unknown = []
    seen: set[str] = set()
    for item in body.items:
        r = resolve(item.obis, item.scaler, item.unit)
        obis = format_obis(item.obis)
        quantity, scaler = r.quantity, r.scaler
        if r.register is None:
            unknown.append(obis)
        elif quantity in seen:
            # Two codes for one quantity (1-0:1.8.0 and, by the channel fallback, 1-1:1.8.0):
            # the second stays raw, so a push never holds one quantity twice.
            quantity, scaler = raw_quantity(item.obis, item.unit), item.scaler
            unknown.append(obis)
        seen.add(quantity)
        readings.append(
            Reading(
                meter=meter,
                utility=r.utility or utility,
                quantity=quantity,
                raw=item.raw,
                scaler=scaler,
                timestamp=timestamp,
                obis=obis,
            )
        )
    if security is not None and guard is not None:
        guard.accept(security.system_title, security.invocation_counter)
    return Push(
        invoke_id=note.invoke_id,
        timestamp=timestamp,
        readings=tuple(readings),
        skipped=tuple(format_obis(o) for o in body.skipped),
        texts=tuple(("" if o is None else format_obis(o), t) for o, t in body.texts),
        unknown=tuple(unknown),
        meter_clock=clock,
        layout=body.layout,
        framing=framing,
        system_title=None if security is None else security.system_title,
        invocation_counter=None if security is None else security.invocation_counter,
        security_control=None if security is None else security.security_control,
        authenticated=security is not None and security.authenticated,
    )


def _date_time_to_posix(raw: bytes) -> float | None:
    """COSEM date-time (12 octets) -> POSIX seconds, or None if it names no instant."""
    year = int.from_bytes(raw[0:2], "big")
    month, day, hour, minute, second, status = raw[2], raw[3], raw[5], raw[6], raw[7], raw[11]
    if (
        year == 0xFFFF
        or month >= 0xFD
        or day >= 0xE0
        or 0xFF in (hour, minute, second)
        or (status != 0xFF and status & 0x01)
    ):
        return None  # wildcards, or clock status "invalid"
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if deviation != -0x8000 and not -720 <= deviation <= 720:
        raise MeterDecodeError(f"date-time deviation {deviation} min is out of range")
    hundredths = raw[8]
    try:
        # dlms-cosem's datetime_from_bytes (7 µs) returns a naive datetime for deviation 0
        # and needs fixing up anyway; the fields are plain, so we convert them here.
        dt = datetime(
            year,
            month,
            day,
            hour,
            minute,
            second,
            0 if hundredths == 0xFF else hundredths * 10_000,
            tzinfo=UTC,
        )
    except (ValueError, OverflowError) as exc:
        raise MeterDecodeError(f"bad date-time {raw.hex()}: {exc}") from exc
    # Blue Book: deviation is minutes from local time to UTC (CET is -60); 0x8000 is "not
    # specified", taken as UTC like deviation 0.
    return dt.timestamp() + (0 if deviation == -0x8000 else deviation * 60)


# ---------------------------------------------------------------------------- build

PushValue = tuple[Register | ObisCode, int, int]
"""(register or OBIS code, raw value, scaler): value = raw * 10**scaler in its unit."""


def build_push(values: Sequence[PushValue], *, timestamp: float, invoke_id: int) -> bytes:
    """Build a DATA-NOTIFICATION APDU, as a meter would push it.

    Cumulative registers go as double-long-unsigned, instantaneous ones as (signed)
    double-long, each with its table unit. A bare OBIS code that is not in the table goes
    as a double-long with unit 255 ("count"). Raises ValueError for values that do not fit.
    """
    if not 0 <= invoke_id <= MAX_INVOKE_ID:
        raise ValueError(f"invoke_id must be 0..{MAX_INVOKE_ID}, got {invoke_id}")
    entries = []
    for target, raw, scaler in values:
        if isinstance(target, Register):
            reg: Register | None = target
            obis = target.obis
        else:
            obis = target
            format_obis(obis)  # validates
            reg = lookup(obis)
        if not -128 <= scaler <= 127:
            raise ValueError(f"scaler {scaler} does not fit a DLMS integer")
        cumulative = reg is not None and reg.cumulative
        if cumulative:
            if not 0 <= raw < 1 << 32:
                raise ValueError(f"{format_obis(obis)}: {raw} does not fit double-long-unsigned")
            value: Any = DoubleLongUnsignedData(raw)
        else:
            if not -(1 << 31) <= raw < 1 << 31:
                raise ValueError(f"{format_obis(obis)}: {raw} does not fit double-long")
            value = DoubleLongData(raw)
        unit = reg.dlms_unit if reg is not None else COUNT
        entries.append(
            DataStructure(
                [
                    OctetStringData(bytes(obis)),
                    value,
                    DataStructure([IntegerData(scaler), EnumData(unit)]),
                ]
            )
        )
    body: bytes = DataStructure(entries).to_bytes()
    # DataNotification.to_bytes() writes the date-time's presence as 0x01 rather than its
    # A-XDR length 0x0C, so the header is put together here from the library's parts.
    header: bytes = LongInvokeIdAndPriority(long_invoke_id=invoke_id).to_bytes()
    date_time = _posix_to_date_time(timestamp)
    return bytes([TAG_DATA_NOTIFICATION]) + header + bytes([len(date_time)]) + date_time + body


def _posix_to_date_time(timestamp: float) -> bytes:
    if not math.isfinite(timestamp):
        raise ValueError(f"timestamp must be finite, got {timestamp}")
    dt = datetime.fromtimestamp(timestamp, UTC)
    raw = bytearray(dlms_time.datetime_to_bytes(dt))
    raw[4] = dt.isoweekday()  # the library leaves day-of-week "not specified" (0xFF)
    return bytes(raw)
