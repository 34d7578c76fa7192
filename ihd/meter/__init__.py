"""Meter data: DLMS/COSEM pushes in, typed readings out. No Qt, no SQLite."""

from ihd.meter.dlms import (
    MeterDecodeError,
    Notification,
    Push,
    PushValue,
    build_push,
    decode_apdu,
    decode_push,
)
from ihd.meter.gas import volume_to_kwh, volume_to_kwh_exact
from ihd.meter.obis import (
    REGISTERS,
    ObisCode,
    Register,
    format_obis,
    is_cumulative,
    lookup,
    parse_obis,
    resolve,
)
from ihd.meter.reading import Reading, Utility

__all__ = [
    "REGISTERS",
    "MeterDecodeError",
    "Notification",
    "ObisCode",
    "Push",
    "PushValue",
    "Reading",
    "Register",
    "Utility",
    "build_push",
    "decode_apdu",
    "decode_push",
    "format_obis",
    "is_cumulative",
    "lookup",
    "parse_obis",
    "resolve",
    "volume_to_kwh",
    "volume_to_kwh_exact",
]
