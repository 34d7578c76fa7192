"""The body of a DATA-NOTIFICATION: A-XDR data in, (OBIS, value, scaler, unit) items out.

The A-XDR data is parsed by dlms-cosem's ``DlmsDataParser``, in a strict subclass (see
:class:`_StrictParser`). What the parsed tree *means* depends on the meter; every layout
seen in the public HAN test suites is one of these (``Body.layout`` names it):

``entries``
    A structure or array of structures ``{OBIS, value[, {scaler, unit}]}`` (Aidon, Iskra,
    Kaifa in Austria, Landis+Gyr ZMF100, the simulated meter).
``flat``
    One structure of interleaved ``OBIS, value[, {scaler, unit}]`` elements, possibly with
    a bare list identifier, date-time or meter number outside the pairs, and null-data
    fillers (Kamstrup, Swedish Kaifa, Netz NÖ, Landis+Gyr E450).
``kaifa_list1``, ``kaifa_list2``, ``kaifa_list3`` (``_1p`` for single phase)
    Norwegian Kaifa (``KFM_001``): values by position, no OBIS codes at all; the layouts
    below are Kaifa's HAN list definitions as implemented and tested by amshan
    (toreamun/amshan ``kaifa.py``/``tests/test_kaifa.py``).
``descriptors``
    ``structure {enum, array of structure {class id (2), OBIS (6), attribute (1), value}}``
    with the 9 descriptor octets written raw, not A-XDR (Czech Sagemcom XT211 / EGD).

Values without a scaler-unit take a scaler from the meter's *profile* when its list
identifier names one (Kaifa sends currents in mA and voltages in dV; Kamstrup currents in
cA and energy in 10 Wh, per amshan's decoders and the amsreader samples), else 0, and the
register's own unit.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from dlms_cosem.dlms_data import (
    BCDData,
    BitStringData,
    BooleanData,
    CompactArrayData,
    DataArray,
    DataStructure,
    DateData,
    DateTimeData,
    DlmsDataParser,
    DontCareData,
    DoubleLongData,
    DoubleLongUnsignedData,
    EnumData,
    Float32Data,
    Float64Data,
    IntegerData,
    Long64Data,
    LongData,
    NullData,
    OctetStringData,
    TimeData,
    UnsignedIntegerData,
    UnsignedLong64Data,
    UnsignedLongData,
    UTF8StringData,
    VisibleStringData,
)

from ihd.meter.errors import MeterDecodeError
from ihd.meter.obis import ObisCode

__all__ = ["Body", "Item", "parse_body"]

DATE_TIME_LEN = 12

INTEGER_TYPES = frozenset(
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
# Also numbers to us, as codes: enums, booleans, bit strings (status words), BCD.
_CODE_TYPES = frozenset({EnumData, BooleanData, BitStringData, BCDData})
_TEXT_TYPES = frozenset({OctetStringData, VisibleStringData, UTF8StringData})
_FLOAT_TYPES = frozenset({Float32Data, Float64Data})


@dataclass(frozen=True, slots=True)
class Item:
    """One value of the push."""

    obis: ObisCode
    raw: int
    scaler: int
    unit: int | None  # DLMS unit code; None when the meter sent none


@dataclass(slots=True)
class Body:
    layout: str
    items: list[Item] = field(default_factory=list)
    texts: list[tuple[ObisCode | None, str]] = field(default_factory=list)
    clock: bytes | None = None  # 12 date-time octets of the meter clock object, if sent
    skipped: list[ObisCode] = field(default_factory=list)  # OBIS with no numeric value
    profile: str = ""  # the list identifier that chose implied scalers, if any


# ----------------------------------------------------------------------------- parser


class _StrictParser(DlmsDataParser):  # type: ignore[misc]  # dlms-cosem is untyped
    """DlmsDataParser that refuses to read past the end of its buffer, and reads the types
    the stock parser gets wrong.

    * The stock ``get_bytes`` returns short slices and moves the pointer beyond the end;
      ``parse`` then never sees the buffer empty and spins, appending NullData for ever.
    * A bit-string's length counts bits; the stock parser reads that many octets.
    * float32/float64, UTF-8 strings and BCD have no ``from_bytes`` (NotImplementedError);
      visible strings must be ASCII (a Latin-1 octet raises); date-time, date and time are
      parsed into datetimes eagerly and raise on the wildcard fields meters do send. We keep
      those octets raw and judge them later.
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

    def decode_data(self, data_class: Any) -> Any:
        special = _SPECIAL.get(data_class)
        if special is not None:
            return special(self)
        if data_class.LENGTH == _VARIABLE_LENGTH:
            return data_class.from_bytes(self.get_bytes(self.decode_variable_integer()))
        return data_class.from_bytes(self.get_bytes(data_class.LENGTH))


def _bit_string(p: _StrictParser) -> Any:
    bits = p.decode_variable_integer()
    return BitStringData(value=bytes(p.get_bytes((bits + 7) // 8)))


def _visible(p: _StrictParser) -> Any:
    return VisibleStringData(
        value=bytes(p.get_bytes(p.decode_variable_integer())).decode("latin-1")
    )


def _utf8(p: _StrictParser) -> Any:
    raw = bytes(p.get_bytes(p.decode_variable_integer()))
    return UTF8StringData(value=raw.decode("utf-8", "replace"))


def _compact_array(p: _StrictParser) -> Any:
    raise MeterDecodeError("compact-array in a push body is not supported")


_VARIABLE_LENGTH = OctetStringData.LENGTH  # dlms-cosem's marker for "a length follows"
_SPECIAL: dict[type, Any] = {
    BitStringData: _bit_string,
    Float32Data: lambda p: Float32Data(value=struct.unpack(">f", p.get_bytes(4))[0]),
    Float64Data: lambda p: Float64Data(value=struct.unpack(">d", p.get_bytes(8))[0]),
    VisibleStringData: _visible,
    UTF8StringData: _utf8,
    BCDData: lambda p: BCDData(value=p.get_bytes(1)[0]),
    DateTimeData: lambda p: DateTimeData(value=bytes(p.get_bytes(12))),
    DateData: lambda p: DateData(value=bytes(p.get_bytes(5))),
    TimeData: lambda p: TimeData(value=bytes(p.get_bytes(4))),
    DontCareData: lambda p: NullData(value=None),
    CompactArrayData: _compact_array,
}


def _parse_one(buf: bytes) -> tuple[Any, int]:
    parser = _StrictParser()
    try:
        items = parser.parse(buf, limit=1)
    except KeyError as exc:  # DlmsDataFactory.MAP has no such tag
        raise MeterDecodeError(f"unknown A-XDR type tag {exc} in push body") from None
    return items[0], parser.pointer


# ---------------------------------------------------------------------------- helpers


def _describe(item: Any) -> str:
    return type(item).__name__


def _as_obis(item: Any) -> ObisCode | None:
    if type(item) is OctetStringData and len(item.value) == 6:
        a, b, c, d, e, f = item.value
        return (a, b, c, d, e, f)
    return None


def _is_clock(obis: ObisCode) -> bool:
    return obis[0] == 0 and obis[2:] == (1, 0, 0, 255)


def _number(item: Any) -> tuple[int, int] | None:
    """(raw, extra decimal scaler) for a numeric value, else None."""
    kind = type(item)
    if kind in INTEGER_TYPES or kind is EnumData or kind is BCDData:
        return int(item.value), 0
    if kind is BooleanData:
        return int(bool(item.value)), 0
    if kind is BitStringData:
        return int.from_bytes(item.value, "big"), 0
    if kind in _FLOAT_TYPES:
        value = float(item.value)
        if value != value or value in (float("inf"), float("-inf")):
            return None
        sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
        assert isinstance(exponent, int)
        if not -128 <= exponent <= 127:
            return None
        raw = int("".join(map(str, digits)) or "0")
        return (-raw if sign else raw), exponent
    return None


def _text(item: Any) -> str | None:
    kind = type(item)
    if kind is VisibleStringData or kind is UTF8StringData:
        return str(item.value).rstrip("\x00")
    if kind is OctetStringData:
        raw = bytes(item.value).rstrip(b"\x00")
        if raw and all(0x20 <= b < 0x7F for b in raw):
            return raw.decode("ascii")
        return raw.hex().upper()
    return None


def _date_time(item: Any) -> bytes | None:
    if type(item) in (OctetStringData, DateTimeData) and len(item.value) == DATE_TIME_LEN:
        return bytes(item.value)
    return None


def _scaler_unit(item: Any, index: int, what: str = "entry") -> tuple[int, int]:
    if type(item) is not DataStructure or len(item.value) != 2:
        raise MeterDecodeError(f"{what} {index}: third element is not {{scaler, unit}}")
    scaler, unit = item.value
    if type(scaler) not in INTEGER_TYPES or not -128 <= scaler.value <= 127:
        raise MeterDecodeError(f"{what} {index}: scaler is {_describe(scaler)}")
    if type(unit) not in (EnumData, UnsignedIntegerData):
        raise MeterDecodeError(f"{what} {index}: unit is {_describe(unit)}")
    return int(scaler.value), int(unit.value)


def _looks_like_scaler_unit(item: Any) -> bool:
    if type(item) is not DataStructure or len(item.value) != 2:
        return False
    scaler, unit = item.value
    return type(scaler) in INTEGER_TYPES and type(unit) in (EnumData, UnsignedIntegerData)


# ---------------------------------------------------------------- profiles (no scaler)

_KAIFA_IMPLIED: Mapping[tuple[int, int, int], int] = MappingProxyType(
    {(31, 7, 0): -3, (51, 7, 0): -3, (71, 7, 0): -3, (32, 7, 0): -1, (52, 7, 0): -1, (72, 7, 0): -1}
)
_KAMSTRUP_IMPLIED: Mapping[tuple[int, int, int], int] = MappingProxyType(
    {
        (31, 7, 0): -2,
        (51, 7, 0): -2,
        (71, 7, 0): -2,
        (1, 8, 0): 1,
        (2, 8, 0): 1,
        (3, 8, 0): 1,
        (4, 8, 0): 1,
    }
)
#: List identifier -> scalers implied for (C, D, E) of electricity values sent bare.
PROFILES: Mapping[str, Mapping[tuple[int, int, int], int]] = MappingProxyType(
    {"KFM_001": _KAIFA_IMPLIED, "Kamstrup_V0001": _KAMSTRUP_IMPLIED}
)
_LIST_ID_OBIS = (0, 2, 129, 255)  # C-F of the list version identifier, x-x:0.2.129.255


def _implied_scaler(profile: str, obis: ObisCode) -> int:
    table = PROFILES.get(profile)
    if table is None or obis[0] != 1:
        return 0
    return table.get((obis[2], obis[3], obis[4]), 0)


# --------------------------------------------------------------------- the layouts


def _plausible_date_time(raw: bytes) -> bool:
    """True if 12 octets can be a COSEM date-time (a 12-digit meter number cannot)."""
    month, day, wday, hour, minute, second = raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]
    return (
        (1 <= month <= 12 or month >= 0xFD)
        and (1 <= day <= 31 or day >= 0xFD)
        and (1 <= wday <= 7 or wday == 0xFF)
        and (hour < 24 or hour == 0xFF)
        and (minute < 60 or minute == 0xFF)
        and (second < 60 or second == 0xFF)
    )


class _Collector:
    """Gathers items in the order sent; values without a scaler-unit get their implied
    scaler once the list identifier (the profile) is known."""

    def __init__(self, layout: str) -> None:
        self.body = Body(layout)
        self._values: list[tuple[ObisCode, int, int, tuple[int, int] | None]] = []

    def value(self, obis: ObisCode, item: Any, su: tuple[int, int] | None) -> None:
        body = self.body
        if _is_clock(obis):
            dt = _date_time(item)
            if dt is not None:
                body.clock = dt
                return
        number = _number(item)
        if number is None:
            text = _text(item)
            if text is not None:
                body.texts.append((obis, text))
                if obis[2:] == _LIST_ID_OBIS and not body.profile:
                    body.profile = text
            body.skipped.append(obis)
            return
        raw, extra = number
        self._values.append((obis, raw, extra, su))

    def loose(self, item: Any) -> None:
        """A value outside any OBIS pair: a list identifier, a meter number, a date-time."""
        dt = _date_time(item)
        if dt is not None and _plausible_date_time(dt):
            if self.body.clock is None:
                self.body.clock = dt
            return
        text = _text(item)
        if text is not None:
            self.body.texts.append((None, text))
            if not self.body.profile and text in PROFILES:
                self.body.profile = text

    def finish(self) -> Body:
        body = self.body
        for obis, raw, extra, su in self._values:
            if su is None:
                body.items.append(
                    Item(obis, raw, extra + _implied_scaler(body.profile, obis), None)
                )
            else:
                body.items.append(Item(obis, raw, su[0] + extra, su[1]))
        return body


def _entries(elements: list[Any]) -> Body:
    c = _Collector("entries")
    fast = c._values
    for index, entry in enumerate(elements):
        ev = entry.value
        n = len(ev)
        if n != 2 and n != 3:
            raise MeterDecodeError(
                f"entry {index} is a structure of {n}, not {{OBIS, value[, scaler-unit]}}"
            )
        first = ev[0]
        if type(first) is not OctetStringData or len(first.value) != 6:
            raise MeterDecodeError(f"entry {index}: first element is not a 6-octet OBIS code")
        a, b, cc, d, e, f = first.value
        obis = (a, b, cc, d, e, f)
        su = None if n == 2 else _scaler_unit(ev[2], index)
        value = ev[1]
        if type(value) in INTEGER_TYPES and not _is_clock(obis):
            fast.append((obis, int(value.value), 0, su))  # the common case, inline
        else:
            c.value(obis, value, su)
    return c.finish()


def _flat(elements: list[Any]) -> Body:
    """Interleaved ``OBIS, value[, {scaler, unit}]`` elements; entry structures, null-data
    fillers and loose values (list identifier, date-time, meter number) may be mixed in."""
    c = _Collector("flat")
    i, n = 0, len(elements)
    while i < n:
        item = elements[i]
        i += 1
        kind = type(item)
        if kind is DataStructure and item.value and _as_obis(item.value[0]) is not None:
            if len(item.value) in (2, 3):  # an entry, as in the "entries" layout
                su = None if len(item.value) == 2 else _scaler_unit(item.value[2], i - 1)
                c.value(_as_obis(item.value[0]), item.value[1], su)  # type: ignore[arg-type]
            continue
        obis = _as_obis(item)
        if obis is None or i >= n:
            if kind is not NullData:
                c.loose(item)
            continue
        value = elements[i]
        i += 1
        su = None
        if i < n and _looks_like_scaler_unit(elements[i]):
            su = _scaler_unit(elements[i], i, "element")
            i += 1
        c.value(obis, value, su)
    return c.finish()


# Norwegian Kaifa KFM_001 lists, by position. None: the list identifier.
_K = {
    "id": None,
    "meter_id": (0, 0, 96, 1, 0, 255),
    "meter_type": (0, 0, 96, 1, 7, 255),
    "p_imp": (1, 0, 1, 7, 0, 255),
    "p_exp": (1, 0, 2, 7, 0, 255),
    "q_imp": (1, 0, 3, 7, 0, 255),
    "q_exp": (1, 0, 4, 7, 0, 255),
    "i1": (1, 0, 31, 7, 0, 255),
    "i2": (1, 0, 51, 7, 0, 255),
    "i3": (1, 0, 71, 7, 0, 255),
    "u1": (1, 0, 32, 7, 0, 255),
    "u2": (1, 0, 52, 7, 0, 255),
    "u3": (1, 0, 72, 7, 0, 255),
    "clock": (0, 0, 1, 0, 0, 255),
    "a_imp": (1, 0, 1, 8, 0, 255),
    "a_exp": (1, 0, 2, 8, 0, 255),
    "r_imp": (1, 0, 3, 8, 0, 255),
    "r_exp": (1, 0, 4, 8, 0, 255),
}
_L2_3P = ["id", "meter_id", "meter_type", "p_imp", "p_exp", "q_imp", "q_exp"]
_L2_3P += ["i1", "i2", "i3", "u1", "u2", "u3"]
_L3_3P = [*_L2_3P, "clock", "a_imp", "a_exp", "r_imp", "r_exp"]
_L3_1P = _L3_3P[:8] + _L3_3P[10:11] + _L3_3P[13:]
_L2_1P = _L3_1P[:-5]
KAIFA_LAYOUTS: Mapping[int, tuple[str, tuple[ObisCode | None, ...]]] = MappingProxyType(
    {
        len(lay): (name, tuple(_K[k] for k in lay))
        for name, lay in (
            ("kaifa_list2_1p", _L2_1P),
            ("kaifa_list2", _L2_3P),
            ("kaifa_list3_1p", _L3_1P),
            ("kaifa_list3", _L3_3P),
        )
    }
)


def _positional(elements: list[Any]) -> Body:
    if len(elements) == 1 and _number(elements[0]) is not None:
        c = _Collector("kaifa_list1")  # Kaifa list 1: active power import alone
        c.value((1, 0, 1, 7, 0, 255), elements[0], None)
        return c.finish()
    first = _text(elements[0]) if elements else None
    layout = KAIFA_LAYOUTS.get(len(elements))
    if first != "KFM_001" or layout is None:
        raise MeterDecodeError(
            f"positional layout of {len(elements)} values (list identifier {first!r}) is not known"
        )
    name, codes = layout
    c = _Collector(name)
    c.body.profile = "KFM_001"
    for code, item in zip(codes, elements, strict=True):
        if code is None:
            c.loose(item)
        elif type(item) is not NullData:
            c.value(code, item, None)
    return c.finish()


def _descriptors(body: bytes) -> Body | None:
    """The Czech descriptor layout, or None if ``body`` does not start like it."""
    if len(body) < 8 or body[0:3] != b"\x02\x02\x16" or body[4] != 0x01:
        return None
    count, pos = body[5], 6
    if count & 0x80:
        return None
    c = _Collector("descriptors")
    for index in range(count):
        if body[pos : pos + 2] != b"\x02\x02" or pos + 11 > len(body):
            raise MeterDecodeError(
                f"descriptor entry {index} is not structure {{descriptor, value}}"
            )
        a, b, cc, d, e, f = body[pos + 4 : pos + 10]
        pos += 11  # 02 02, class id (2), OBIS (6), attribute (1)
        value, used = _parse_one(body[pos:])
        pos += used
        c.value((a, b, cc, d, e, f), value, None)
    if pos != len(body):
        raise MeterDecodeError(f"{len(body) - pos} octets after the push body")
    return c.finish()


def parse_body(body: bytes) -> Body:
    """Parse and interpret a DATA-NOTIFICATION body. Raises MeterDecodeError."""
    if not body:
        raise MeterDecodeError("DATA-NOTIFICATION has no body")
    described = _descriptors(body)
    if described is not None:
        return described
    top, used = _parse_one(body)
    if used != len(body):
        raise MeterDecodeError(f"{len(body) - used} octets after the push body")
    if type(top) not in (DataStructure, DataArray):
        raise MeterDecodeError(f"push body is {_describe(top)}, not a structure or array")
    elements: list[Any] = top.value
    if not elements:
        return Body("entries")
    if all(type(e) is DataStructure for e in elements):
        return _entries(elements)
    if any(_as_obis(e) is not None for e in elements[:3]):
        return _flat(elements)
    if type(top) is DataStructure:
        return _positional(elements)
    raise MeterDecodeError(
        "push body is an array of "
        + ", ".join(sorted({_describe(e) for e in elements}) or {"nothing"})
        + ", not of {OBIS, value[, scaler-unit]} structures"
    )
