"""DLMS/COSEM DATA-NOTIFICATION pushes: APDU bytes in, typed readings out (and back).

Why this layer exists. The meter pushes its registers as an xDLMS DATA-NOTIFICATION
(IEC 62056-5-3, "Green Book"). The APDU and A-XDR data codecs are dlms-cosem's; this
module is only the glue that (1) guards the library, which was written for trusted
input, (2) maps the push body onto ``ihd.meter.obis`` and (3) builds the same pushes
for the simulated meter, so the demo runs through the real decoder.

Body layout, sent and accepted: a structure (or array) of entries, each
``structure {octet-string OBIS (6), value, structure {integer scaler, enum unit}}``, the
"OBIS, value, scaler-unit" form of real HAN pushes (Aidon sends exactly this). The
two-element ``{OBIS, value}`` form is accepted too, with scaler 0 and the table's unit.
Entries whose value is not an integer (ids, version strings) are well formed but carry
no reading: their OBIS codes are listed in ``Push.skipped``. Positional layouts (Kaifa's
bare value lists, Kamstrup's interleaved OBIS/value lists) need a per-meter profile that
says what each value is and how it is scaled; they raise ``MeterDecodeError``.

Time. ``build_push`` sends the push time as UTC (deviation 0) with the day of week
filled in. On decode, a date-time with no zone (deviation 0x8000 "not specified", or 0,
which dlms-cosem returns as a naive datetime) is taken as UTC. A date-time with
"not specified" date or time fields, or the "invalid" clock-status bit, is no point in
time: the push then takes the meter clock object (``0-0:1.0.0.255``) if the body has
one, as Aidon's hourly list does, or else ``received_at``. Other bad date-times raise.

Errors. For any input bytes, ``decode_push`` returns a ``Push`` or raises
``MeterDecodeError`` (a ValueError): every exception dlms-cosem throws is wrapped. The
data parser is run in a strict subclass, because the stock one reads past the end of a
truncated buffer and then loops for ever.

Ciphering. ``decode_apdu`` dispatches on the APDU tag. general-glo-ciphering (0xDB) and
the other ciphered forms raise ``MeterDecodeError("ciphered APDU: no DLMS key
configured")`` today; decryption slots in there as one more entry in ``_DECODERS``.

Speed: this imports ``dlms_cosem.protocol.xdlms`` and ``dlms_data`` only, never
``dlms_cosem.connection`` (structlog; ~0.3 s to import).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dlms_cosem import time as dlms_time
from dlms_cosem.dlms_data import (
    DataArray,
    DataStructure,
    DlmsDataParser,
    DoubleLongData,
    DoubleLongUnsignedData,
    EnumData,
    IntegerData,
    Long64Data,
    LongData,
    OctetStringData,
    UnsignedIntegerData,
    UnsignedLong64Data,
    UnsignedLongData,
)
from dlms_cosem.protocol.xdlms.data_notification import (
    DataNotification,
    LongInvokeIdAndPriority,
)

from ihd.meter.obis import COUNT, ObisCode, Register, format_obis, lookup, resolve
from ihd.meter.reading import Reading, Utility

# xDLMS APDU tags (Green Book, "xDLMS APDU" CHOICE).
TAG_DATA_NOTIFICATION = 0x0F
TAG_GENERAL_GLO_CIPHERING = 0xDB
TAG_GENERAL_DED_CIPHERING = 0xDC
TAG_GENERAL_CIPHERING = 0xDD

DATE_TIME_LEN = 12  # octets in a COSEM date-time
CLOCK_OBIS: ObisCode = (0, 0, 1, 0, 0, 255)  # the meter's Clock object
MAX_INVOKE_ID = (1 << 24) - 1  # long-invoke-id is 24 bits

_INTEGER_TYPES = frozenset(
    {
        IntegerData,
        LongData,
        DoubleLongData,
        DoubleLongUnsignedData,
        UnsignedIntegerData,
        UnsignedLongData,
        Long64Data,
        UnsignedLong64Data,
    }
)


class MeterDecodeError(ValueError):
    """A push could not be decoded. ``reason`` says why, for logs and diagnostics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Push:
    invoke_id: int
    timestamp: float  # POSIX seconds UTC: meter clock, or received_at
    readings: tuple[Reading, ...]
    skipped: tuple[str, ...] = ()  # OBIS codes of entries with no numeric value


@dataclass(frozen=True, slots=True)
class Notification:
    """A DATA-NOTIFICATION with its body still A-XDR encoded."""

    invoke_id: int
    date_time: bytes | None  # the 12 date-time octets, None if absent
    body: bytes


# ---------------------------------------------------------------------------- decode


def decode_push(apdu: bytes, *, meter: str, utility: Utility, received_at: float) -> Push:
    """Decode one push APDU into readings.

    ``utility`` is the device's utility from pairing. It applies to values whose OBIS
    code does not say otherwise; a gas register in an electricity meter's push stays gas.
    """
    try:
        return _decode_push(apdu, meter, utility, received_at)
    except MeterDecodeError:
        raise
    except Exception as exc:  # dlms-cosem raises ValueError, KeyError, IndexError, ...
        raise MeterDecodeError(f"malformed push: {type(exc).__name__}: {exc}") from exc


def decode_apdu(apdu: bytes) -> Notification:
    """Unwrap one xDLMS APDU to the DATA-NOTIFICATION it carries."""
    try:
        return _decode_apdu(bytes(apdu))
    except MeterDecodeError:
        raise
    except Exception as exc:
        raise MeterDecodeError(f"malformed APDU: {type(exc).__name__}: {exc}") from exc


def _decode_apdu(apdu: bytes) -> Notification:
    if not apdu:
        raise MeterDecodeError("empty APDU")
    decoder = _DECODERS.get(apdu[0])
    if decoder is None:
        raise MeterDecodeError(f"unsupported APDU tag 0x{apdu[0]:02X}")
    return decoder(apdu)


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


def _ciphered(apdu: bytes) -> Notification:
    raise MeterDecodeError("ciphered APDU: no DLMS key configured")


_DECODERS: dict[int, Callable[[bytes], Notification]] = {
    TAG_DATA_NOTIFICATION: _decode_data_notification,
    TAG_GENERAL_GLO_CIPHERING: _ciphered,
    TAG_GENERAL_DED_CIPHERING: _ciphered,
    TAG_GENERAL_CIPHERING: _ciphered,
}


def _decode_push(apdu: bytes, meter: str, utility: Utility, received_at: float) -> Push:
    note = _decode_apdu(bytes(apdu))
    timestamp = _date_time_to_posix(note.date_time) if note.date_time is not None else None
    entries = _parse_body(note.body)

    found: list[tuple[ObisCode, int, int, int | None]] = []
    skipped: list[str] = []
    clock: float | None = None
    for index, entry in enumerate(entries):
        if type(entry) is not DataStructure:
            raise MeterDecodeError(
                f"entry {index} is {_describe(entry)}, not a structure "
                "{OBIS, value[, scaler-unit]}: positional layouts are not supported"
            )
        if len(entry.value) not in (2, 3):
            raise MeterDecodeError(
                f"entry {index} is a structure of {len(entry.value)}, "
                "not {OBIS, value[, scaler-unit]}"
            )
        obis_item, value = entry.value[0], entry.value[1]
        if type(obis_item) is not OctetStringData or len(obis_item.value) != 6:
            raise MeterDecodeError(f"entry {index}: first element is not a 6-octet OBIS code")
        a, b, c, d, e, f = obis_item.value
        obis = (a, b, c, d, e, f)
        scaler, unit = (0, None) if len(entry.value) == 2 else _scaler_unit(entry.value[2], index)
        if type(value) in _INTEGER_TYPES:
            found.append((obis, int(value.value), scaler, unit))
        elif (
            obis == CLOCK_OBIS
            and type(value) is OctetStringData
            and len(value.value) == DATE_TIME_LEN
        ):
            clock = _date_time_to_posix(bytes(value.value))
        else:
            skipped.append(format_obis(obis))

    if timestamp is None:
        timestamp = clock if clock is not None else received_at
    readings = []
    for obis, raw, scaler, unit in found:
        r = resolve(obis, scaler, unit)
        readings.append(
            Reading(
                meter=meter,
                utility=r.utility or utility,
                quantity=r.quantity,
                raw=raw,
                scaler=r.scaler,
                timestamp=timestamp,
                obis=format_obis(obis),
            )
        )
    return Push(note.invoke_id, timestamp, tuple(readings), tuple(skipped))


class _StrictParser(DlmsDataParser):  # type: ignore[misc]  # dlms-cosem is untyped
    """DlmsDataParser that refuses to read past the end of its buffer.

    The stock ``get_bytes`` returns short slices and moves the pointer beyond the end;
    ``parse`` then never sees the buffer empty and spins, appending NullData for ever.
    """

    buffer: bytearray
    pointer: int

    def get_bytes(self, length: int) -> bytearray:
        start = self.pointer
        end = start + length
        if end > len(self.buffer):
            raise MeterDecodeError("truncated A-XDR data in push body")
        self.pointer = end
        return self.buffer[start:end]


def _parse_body(body: bytes) -> list[Any]:
    if not body:
        raise MeterDecodeError("DATA-NOTIFICATION has no body")
    parser = _StrictParser()
    items = parser.parse(body, limit=1)
    if parser.pointer != len(body):
        raise MeterDecodeError(f"{len(body) - parser.pointer} octets after the push body")
    top = items[0]
    if type(top) not in (DataStructure, DataArray):
        raise MeterDecodeError(f"push body is {_describe(top)}, not a structure or array")
    entries: list[Any] = top.value
    return entries


def _scaler_unit(item: Any, index: int) -> tuple[int, int]:
    if type(item) is not DataStructure or len(item.value) != 2:
        raise MeterDecodeError(f"entry {index}: third element is not {{scaler, unit}}")
    scaler, unit = item.value
    if type(scaler) not in _INTEGER_TYPES or not -128 <= scaler.value <= 127:
        raise MeterDecodeError(f"entry {index}: scaler is {_describe(scaler)}")
    if type(unit) not in (EnumData, UnsignedIntegerData):
        raise MeterDecodeError(f"entry {index}: unit is {_describe(unit)}")
    return int(scaler.value), int(unit.value)


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
    try:
        dt, _status = dlms_time.datetime_from_bytes(raw)
    except (ValueError, TypeError, OverflowError) as exc:
        raise MeterDecodeError(f"bad date-time {raw.hex()}: {exc}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # deviation 0 or "not specified": UTC
    return float(dt.timestamp())


def _describe(item: Any) -> str:
    return type(item).__name__


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
