"""Meter data: DLMS/COSEM pushes in, typed readings out. No Qt, no SQLite."""

from ihd.meter.cipher import DlmsKeys, cipher_apdu, decipher
from ihd.meter.dlms import (
    Notification,
    Push,
    PushValue,
    build_push,
    decode_apdu,
    decode_push,
)
from ihd.meter.errors import MeterAuthError, MeterDecodeError, MeterKeyError, MeterReplayError
from ihd.meter.gas import volume_to_kwh, volume_to_kwh_exact
from ihd.meter.link import Reassembler, Unwrapped, unwrap
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
from ihd.meter.registers import (
    Delta,
    Sample,
    classify_clock,
    classify_interval,
    register_delta,
    spread,
)
from ihd.meter.replay import InvocationGuard

__all__ = [
    "REGISTERS",
    "Delta",
    "DlmsKeys",
    "InvocationGuard",
    "MeterAuthError",
    "MeterDecodeError",
    "MeterKeyError",
    "MeterReplayError",
    "Notification",
    "ObisCode",
    "Push",
    "PushValue",
    "Reading",
    "Reassembler",
    "Register",
    "Sample",
    "Unwrapped",
    "Utility",
    "build_push",
    "cipher_apdu",
    "classify_clock",
    "classify_interval",
    "decipher",
    "decode_apdu",
    "decode_push",
    "format_obis",
    "is_cumulative",
    "lookup",
    "parse_obis",
    "register_delta",
    "resolve",
    "spread",
    "unwrap",
    "volume_to_kwh",
    "volume_to_kwh_exact",
]
