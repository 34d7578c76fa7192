"""OBIS codes to readings: one declarative table, no if-chains.

A DLMS push names every value by an OBIS code (``1-0:1.8.0.255`` = active energy
import) and, usually, sends a scaler and a DLMS unit beside it. This module is the one
place that knows what those codes mean to us: which utility they belong to, which
quantity name (with its unit in the name) they become, and whether their deltas are
usage (a cumulative register) or the value is instantaneous. Adding a register is
adding a line to ``_TABLE``.

Units. DLMS has no kWh: a meter that counts in kWh sends unit 30 (Wh) with scaler +3, so
kWh needs no conversion. (Unit 32 is varh, not kWh.) The only conversions a meter can
force on us are between different DLMS units of the same dimension, such as litres
(19) for a register we keep in m³ (13); ``_CONVERSIONS`` lists them, each as a change of
decimal scaler so that ``raw * 10**scaler`` stays exact and lands in the unit named by
the quantity. Unit codes come from the DLMS UA Blue Book (IEC 62056-6-2), "Enumerated
values for physical units".

Unknown codes are never dropped. A code missing from the table, or a known code sent in
a unit we cannot convert, becomes a ``raw_<a>_<b>_<c>_<d>_<e>_<f>_<unit>`` reading,
where ``<unit>`` is the lower-case DLMS unit symbol the meter sent (``count`` for 255,
``other`` for 254, ``unitN`` for codes we do not list, ``unknown`` when it sent no
unit at all). Its raw value and scaler are kept as sent, so the reading can be mapped
properly later without loss. A raw reading takes its utility from the OBIS medium (A
field: 1 electricity, 7 gas, 8/9 water), or the device's utility for abstract (A=0) and
other media.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from ihd.meter.reading import Utility

ObisCode = tuple[int, int, int, int, int, int]


# -- DLMS units (Blue Book "Enumerated values for physical units"), the subset meters push --
WH = 30  # active energy, watt-hour
VARH = 32  # reactive energy, var-hour
W = 27  # active power
VAR = 29  # reactive power
V = 35  # voltage
A = 33  # current
HZ = 44  # frequency
M3 = 13  # volume, cubic metre
M3_CORRECTED = 14  # volume corrected to base conditions, cubic metre
LITRE = 19  # volume, litre (10**-3 m³)
CURRENCY = 10  # local currency
OTHER = 254  # "other unit"
COUNT = 255  # "count": no unit, unitless

#: DLMS unit code -> symbol, as the Blue Book writes it.
DLMS_UNIT_SYMBOLS: Mapping[int, str] = MappingProxyType(
    {
        1: "a",
        2: "mo",
        3: "wk",
        4: "d",
        5: "h",
        6: "min",
        7: "s",
        8: "deg",
        9: "degC",
        CURRENCY: "currency",
        11: "m",
        12: "m/s",
        M3: "m3",
        M3_CORRECTED: "m3",
        15: "m3/h",
        16: "m3/h",
        17: "m3/d",
        18: "m3/d",
        LITRE: "l",
        20: "kg",
        21: "N",
        22: "Nm",
        23: "Pa",
        24: "bar",
        25: "J",
        26: "J/h",
        W: "W",
        28: "VA",
        VAR: "var",
        WH: "Wh",
        31: "VAh",
        VARH: "varh",
        A: "A",
        34: "C",
        V: "V",
        36: "V/m",
        37: "F",
        38: "Ohm",
        39: "Ohm m2/m",
        40: "Wb",
        41: "T",
        42: "A/m",
        43: "H",
        HZ: "Hz",
        45: "1/Wh",
        46: "1/varh",
        47: "1/VAh",
        48: "V2h",
        49: "A2h",
        50: "kg/s",
        51: "S",
        52: "K",
        53: "1/V2h",
        54: "1/A2h",
        55: "1/m3",
        56: "%",
        57: "Ah",
        60: "Wh/m3",
        61: "J/m3",
        62: "mol%",
        63: "g/m3",
        64: "Pa s",
        OTHER: "other",
        COUNT: "count",
    }
)

#: (unit sent, unit of the register) -> change of decimal scaler. Same unit needs no entry.
_CONVERSIONS: Mapping[tuple[int, int], int] = MappingProxyType(
    {
        (LITRE, M3): -3,
    }
)

#: OBIS value group A (medium) -> utility, for codes the table does not know.
_MEDIUM: Mapping[int, Utility] = MappingProxyType(
    {
        1: Utility.ELECTRICITY,
        7: Utility.GAS,
        8: Utility.WATER,  # cold water
        9: Utility.WATER,  # hot water
    }
)


@dataclass(frozen=True, slots=True)
class Register:
    """What one OBIS code means to us. ``quantity`` ends in ``_<unit lower-cased>``.

    Abstract registers (A = 0: status, prepayment) list ``Utility.ELECTRICITY`` here but
    resolve to the utility of the device that sends them."""

    obis: ObisCode
    utility: Utility
    quantity: str  # "energy_import_wh": the unit is in the name
    cumulative: bool  # True: a counter whose deltas are usage; False: instantaneous
    unit: str  # symbol of the unit the quantity is in ("Wh", "W", "m3")
    dlms_unit: int  # Blue Book unit code of that unit (30 = Wh)
    description: str = ""


def _e(
    c: int, d: int, e: int, quantity: str, unit: int, cumulative: bool, description: str
) -> Register:
    return Register(
        (1, 0, c, d, e, 255),
        Utility.ELECTRICITY,
        quantity,
        cumulative,
        DLMS_UNIT_SYMBOLS[unit],
        unit,
        description,
    )


def _a(
    c: int, d: int, e: int, quantity: str, unit: str, dlms_unit: int, description: str
) -> Register:
    """An abstract (A = 0) register: it takes the utility of the device that sends it."""
    return Register(
        (0, 0, c, d, e, 255), Utility.ELECTRICITY, quantity, False, unit, dlms_unit, description
    )


_TABLE: tuple[Register, ...] = (
    # Electricity: energy registers (cumulative, Wh / varh). IEC 62056-6-1 value group C:
    # 1 = +A (import), 2 = -A (export), 3/4 = +R/-R; 21/41/61 and 22/42/62 = per phase;
    # D = 8 (time integral 1); E = rate (0 = total).
    _e(1, 8, 0, "energy_import_wh", WH, True, "active energy import (+A), total"),
    _e(1, 8, 1, "energy_import_rate1_wh", WH, True, "active energy import (+A), rate 1"),
    _e(1, 8, 2, "energy_import_rate2_wh", WH, True, "active energy import (+A), rate 2"),
    _e(1, 8, 3, "energy_import_rate3_wh", WH, True, "active energy import (+A), rate 3"),
    _e(1, 8, 4, "energy_import_rate4_wh", WH, True, "active energy import (+A), rate 4"),
    _e(2, 8, 0, "energy_export_wh", WH, True, "active energy export (-A), total"),
    _e(2, 8, 1, "energy_export_rate1_wh", WH, True, "active energy export (-A), rate 1"),
    _e(2, 8, 2, "energy_export_rate2_wh", WH, True, "active energy export (-A), rate 2"),
    _e(2, 8, 3, "energy_export_rate3_wh", WH, True, "active energy export (-A), rate 3"),
    _e(2, 8, 4, "energy_export_rate4_wh", WH, True, "active energy export (-A), rate 4"),
    _e(21, 8, 0, "energy_import_l1_wh", WH, True, "active energy import (+A), phase L1"),
    _e(41, 8, 0, "energy_import_l2_wh", WH, True, "active energy import (+A), phase L2"),
    _e(61, 8, 0, "energy_import_l3_wh", WH, True, "active energy import (+A), phase L3"),
    _e(22, 8, 0, "energy_export_l1_wh", WH, True, "active energy export (-A), phase L1"),
    _e(42, 8, 0, "energy_export_l2_wh", WH, True, "active energy export (-A), phase L2"),
    _e(62, 8, 0, "energy_export_l3_wh", WH, True, "active energy export (-A), phase L3"),
    _e(3, 8, 0, "reactive_energy_import_varh", VARH, True, "reactive energy import (+R)"),
    _e(4, 8, 0, "reactive_energy_export_varh", VARH, True, "reactive energy export (-R)"),
    _e(3, 8, 1, "reactive_energy_import_rate1_varh", VARH, True, "reactive energy import, rate 1"),
    _e(3, 8, 2, "reactive_energy_import_rate2_varh", VARH, True, "reactive energy import, rate 2"),
    _e(4, 8, 1, "reactive_energy_export_rate1_varh", VARH, True, "reactive energy export, rate 1"),
    _e(4, 8, 2, "reactive_energy_export_rate2_varh", VARH, True, "reactive energy export, rate 2"),
    # Electricity: instantaneous values (D = 7).
    _e(1, 7, 0, "power_import_w", W, False, "active power import (+P)"),
    _e(2, 7, 0, "power_export_w", W, False, "active power export (-P)"),
    _e(16, 7, 0, "power_net_w", W, False, "active power import minus export, signed"),
    _e(21, 7, 0, "power_import_l1_w", W, False, "active power import (+P), phase L1"),
    _e(41, 7, 0, "power_import_l2_w", W, False, "active power import (+P), phase L2"),
    _e(61, 7, 0, "power_import_l3_w", W, False, "active power import (+P), phase L3"),
    _e(22, 7, 0, "power_export_l1_w", W, False, "active power export (-P), phase L1"),
    _e(42, 7, 0, "power_export_l2_w", W, False, "active power export (-P), phase L2"),
    _e(62, 7, 0, "power_export_l3_w", W, False, "active power export (-P), phase L3"),
    _e(3, 7, 0, "reactive_power_import_var", VAR, False, "reactive power import (+Q)"),
    _e(4, 7, 0, "reactive_power_export_var", VAR, False, "reactive power export (-Q)"),
    _e(32, 7, 0, "voltage_l1_v", V, False, "voltage, phase L1"),
    _e(52, 7, 0, "voltage_l2_v", V, False, "voltage, phase L2"),
    _e(72, 7, 0, "voltage_l3_v", V, False, "voltage, phase L3"),
    _e(31, 7, 0, "current_l1_a", A, False, "current, phase L1"),
    _e(51, 7, 0, "current_l2_a", A, False, "current, phase L2"),
    _e(71, 7, 0, "current_l3_a", A, False, "current, phase L3"),
    _e(90, 7, 0, "current_sum_a", A, False, "current, sum over all phases"),
    _e(91, 7, 0, "current_neutral_a", A, False, "current, neutral"),
    _e(14, 7, 0, "frequency_hz", HZ, False, "supply frequency"),
    # Gas: meter volume, forward, undisturbed (uncorrected; see ihd.meter.gas for kWh), and
    # the volume a converter corrected to base conditions.
    Register(
        (7, 0, 3, 0, 0, 255),
        Utility.GAS,
        "volume_m3",
        True,
        "m3",
        M3,
        "gas volume, forward, at metering conditions",
    ),
    Register(
        (7, 0, 13, 0, 0, 255),
        Utility.GAS,
        "volume_corrected_m3",
        True,
        "m3",
        M3_CORRECTED,
        "gas volume, forward, corrected to base conditions",
    ),
    # Water: accumulated volume (A = 8 cold, 9 hot).
    Register(
        (8, 0, 1, 0, 0, 255),
        Utility.WATER,
        "volume_m3",
        True,
        "m3",
        M3,
        "cold water volume, accumulated",
    ),
    Register(
        (9, 0, 1, 0, 0, 255),
        Utility.WATER,
        "volume_hot_m3",
        True,
        "m3",
        M3,
        "hot water volume, accumulated",
    ),
    # Payment metering (IEC 62056-6-1 value group C = 19, the Blue Book's payment metering
    # objects: Credit 0-0:19.10.e, Charge 0-0:19.20.e). The E instance per kind is our
    # assumption (none of the test suites carries prepayment); the amount is in the
    # currency of the meter's Account object, DLMS unit 10.
    _a(19, 10, 0, "prepay_credit_currency", "currency", CURRENCY, "available (token) credit"),
    _a(19, 10, 1, "prepay_emergency_credit_currency", "currency", CURRENCY, "emergency credit"),
    _a(19, 20, 0, "prepay_debt_currency", "currency", CURRENCY, "debt to recover"),
    # Meter status (IEC 62056-6-1 abstract objects): codes and bit fields, no unit.
    _a(96, 5, 0, "status_code", "code", COUNT, "internal operating status, global"),
    _a(97, 97, 0, "error_register_code", "code", COUNT, "error register"),
    _a(96, 14, 0, "active_rate_code", "code", COUNT, "currently active tariff rate"),
    _a(96, 3, 10, "disconnect_state_code", "code", COUNT, "disconnect control state"),
)

#: Every known register, by OBIS code.
REGISTERS: Mapping[ObisCode, Register] = MappingProxyType({r.obis: r for r in _TABLE})


_CUMULATIVE_QUANTITIES = frozenset(r.quantity for r in _TABLE if r.cumulative)


def is_cumulative(quantity: str) -> bool:
    """True if ``quantity`` is a counter whose deltas are usage (``energy_import_wh``,
    ``volume_m3``). Raw quantities are not: we do not know what they count."""
    return quantity in _CUMULATIVE_QUANTITIES


def lookup(obis: ObisCode) -> Register | None:
    """The register for ``obis``, or None.

    Value group B is the channel. Meters that number their only channel 1 (``1-1:1.8.0``,
    Kamstrup) rather than 0 find the B=0 entry when there is no exact one. Abstract codes
    (A = 0) do not fall back: there B numbers instances (relays, M-Bus channels).
    """
    reg = REGISTERS.get(obis)
    if reg is None and obis[1] == 1 and obis[0] != 0:
        reg = REGISTERS.get((obis[0], 0, obis[2], obis[3], obis[4], obis[5]))
    return reg


@dataclass(frozen=True, slots=True)
class Resolved:
    """How one pushed value becomes a reading."""

    quantity: str
    utility: Utility | None  # None: use the device's utility
    scaler: int  # value = raw * 10**scaler, in the quantity's unit
    register: Register | None  # None for raw readings


def resolve(obis: ObisCode, scaler: int, dlms_unit: int | None) -> Resolved:
    """Map a pushed (OBIS, scaler, unit) to a quantity, normalising the scaler.

    ``dlms_unit`` is None when the meter sent no scaler-unit (the unit is then the
    table's, and the caller passes scaler 0).
    """
    return _resolve(obis, scaler, dlms_unit)


@lru_cache(maxsize=4096)  # pushes repeat the same few (OBIS, scaler, unit) triples
def _resolve(obis: ObisCode, scaler: int, dlms_unit: int | None) -> Resolved:
    reg = lookup(obis)
    if reg is not None:
        utility = None if reg.obis[0] == 0 else reg.utility  # abstract: the device's
        if dlms_unit is None or dlms_unit == reg.dlms_unit:
            return Resolved(reg.quantity, utility, scaler, reg)
        shift = _CONVERSIONS.get((dlms_unit, reg.dlms_unit))
        if shift is not None:
            return Resolved(reg.quantity, utility, scaler + shift, reg)
    return Resolved(raw_quantity(obis, dlms_unit), _MEDIUM.get(obis[0]), scaler, None)


def unit_name(dlms_unit: int | None) -> str:
    """Lower-case unit suffix for raw quantity names (no "/" or spaces)."""
    if dlms_unit is None:
        return "unknown"
    symbol = DLMS_UNIT_SYMBOLS.get(dlms_unit)
    if symbol is None:
        return f"unit{dlms_unit}"
    return symbol.lower().replace("/", "per").replace(" ", "").replace("%", "pct")


def raw_quantity(obis: ObisCode, dlms_unit: int | None) -> str:
    """``raw_1_0_96_50_1_255_count``: the name of a value we have no table entry for."""
    return "raw_" + "_".join(str(x) for x in obis) + "_" + unit_name(dlms_unit)


def format_obis(code: ObisCode) -> str:
    """``(1, 0, 1, 8, 0, 255)`` -> ``"1-0:1.8.0.255"`` (IEC 62056-6-1 reduced ID form)."""
    return _format_obis(code)


@lru_cache(maxsize=4096)
def _format_obis(code: ObisCode) -> str:
    _check(code)
    a, b, c, d, e, f = code
    return f"{a}-{b}:{c}.{d}.{e}.{f}"


def parse_obis(text: str) -> ObisCode:
    """Parse ``"1-0:1.8.0.255"``; also ``"1-0:1.8.0"`` (F = 255), ``"1-0:1.8.0*255"``
    and ``"1.0.1.8.0.255"``. Raises ValueError for anything else."""
    s = text.strip()
    try:
        if "-" in s or ":" in s:
            ab, _, cdef = s.partition(":")
            a, dash, b = ab.partition("-")
            if not dash or not cdef:
                raise ValueError
            rest = cdef.replace("*", ".").split(".")
            if len(rest) == 3:
                rest.append("255")
            parts = [a, b, *rest]
        else:
            parts = s.split(".")
        if len(parts) != 6 or not all(p.isdigit() for p in parts):
            raise ValueError
        a_, b_, c_, d_, e_, f_ = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"not an OBIS code: {text!r}") from None
    code = (a_, b_, c_, d_, e_, f_)
    _check(code)
    return code


def _check(code: tuple[int, ...]) -> None:
    if len(code) != 6 or not all(isinstance(x, int) and 0 <= x <= 255 for x in code):
        raise ValueError(f"an OBIS code is six integers 0..255, got {code!r}")
