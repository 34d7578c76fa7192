"""The household's configuration: one TOML file, read once at start.

The schema is a table of typed fields, so that every key has one place that says its
type, default and meaning, and so that a mistake produces one line naming the file and
the key ("config.toml: tariff.electricity.unit_rate: expected a decimal number, got
'abc'") rather than a traceback. Unknown keys are errors too: a typo that silently falls
back to a default would mis-price a household for months.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ihd.meter.reading import Utility
from ihd.tariff.config import EXAMPLE as TARIFF_EXAMPLE
from ihd.tariff.config import SECTION_KEYS as TARIFF_SECTION_KEYS
from ihd.tariff.config import TariffConfigError, UtilityTariff, parse_tariff_section


class ConfigError(Exception):
    """A config problem, phrased for the householder. ``str()`` is the one-line message."""


# --- field types -------------------------------------------------------------------------

Parser = Callable[[Any], Any]


def _decimal(v: Any) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"expected a decimal number, got {v!r}")
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise ValueError(f"expected a decimal number, got {v!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"expected a non-negative number, got {v!r}")
    return d


def _number(lo: float, hi: float) -> Parser:
    def parse(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"expected a number, got {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}, got {v!r}")
        return float(v)

    return parse


def _integer(lo: int, hi: int) -> Parser:
    def parse(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected a whole number, got {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {v!r}")
        return v

    return parse


def _choice(*options: Any) -> Parser:
    def parse(v: Any) -> Any:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(map(repr, options))}, got {v!r}")
        return v

    return parse


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


def _timezone(v: Any) -> str:
    name = _string(v)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
        raise ValueError(
            f"unknown timezone {name!r} (use an IANA name like 'Europe/London')"
        ) from None
    return name


# --- the schema --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    parse: Parser
    default: Any
    doc: str


SCHEMA: dict[str, Field] = {
    "household.timezone": Field(
        _timezone, "Europe/London", "IANA timezone: days, bands and standing charges follow it"
    ),
    "household.currency": Field(_choice("GBP", "EUR"), "GBP", "currency of all prices"),
    "household.clock": Field(
        _choice("auto", "system", "meter"),
        "auto",
        "what 'now' and 'today' follow: auto (the system clock while NTP has set it or it "
        "agrees with the meters, else the meters' clock), system, or meter",
    ),
    "radio.type": Field(
        _choice("sim", "emulated", "at86rf215", "cc1200", "serial"),
        "sim",
        "the radio: at86rf215 (SPI), cc1200 (SPI, receive-only), serial (a USB stick), "
        "or sim / emulated (a simulated household; emulated runs the AT86RF215 driver on "
        "an emulated chip). Wiring: hw/README.md",
    ),
    "radio.channel": Field(_integer(0, 33), 0, "SUN FSK channel (EU 863 MHz mode #1)"),
    "radio.fcs_len": Field(_choice(2, 4), 4, "FCS octets the meters send (802.15.4g: 4)"),
    "radio.spi_device": Field(_string, "/dev/spidev0.0", "SPI device of an SPI radio"),
    "radio.spi_speed_hz": Field(_integer(100_000, 25_000_000), 5_000_000, "SPI clock"),
    "radio.gpio_chip": Field(
        _string, "", "GPIO chip device, e.g. /dev/gpiochip0 (empty: find the Pi's by label)"
    ),
    "radio.irq_line": Field(_integer(0, 63), 25, "GPIO line (BCM) of the radio's IRQ"),
    "radio.reset_line": Field(_integer(0, 63), 24, "GPIO line (BCM) of the radio's reset"),
    "radio.serial_port": Field(
        _string, "/dev/ttyACM0", "serial port of a radio stick (radio.type = serial)"
    ),
    "store.commit_interval_s": Field(
        _number(0.5, 600), 10.0, "seconds between history commits (SD card wear)"
    ),
    "store.retention_months": Field(
        _integer(1, 1200),
        13,
        "months of raw readings kept (hourly, daily and monthly totals are kept forever)",
    ),
    "tariff.electricity.unit_rate": Field(
        _decimal, Decimal("24.50"), "minor units (pence/cents) per kWh, VAT included"
    ),
    "tariff.electricity.standing_charge": Field(
        _decimal, Decimal("60.10"), "minor units per day, VAT included"
    ),
    "tariff.gas.unit_rate": Field(_decimal, Decimal("6.24"), "minor units per kWh"),
    "tariff.gas.standing_charge": Field(_decimal, Decimal("31.43"), "minor units per day"),
    "tariff.gas.calorific_value_mj_m3": Field(
        _number(30, 50), 39.5, "gas calorific value from your bill"
    ),
    "tariff.water.unit_rate": Field(_decimal, Decimal("215"), "minor units per m3"),
    "tariff.water.standing_charge": Field(_decimal, Decimal("0"), "minor units per day"),
}


@dataclass(frozen=True, slots=True)
class TariffConfig:
    unit_rate: Decimal
    standing_charge: Decimal


@dataclass(frozen=True, slots=True)
class Config:
    source: Path | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    # Built by parse() from the [tariff.<utility>] tables (ihd.tariff.config); empty for a
    # Config() made in code, which then gets flat tariffs from the flat keys.
    tariffs: Mapping[Utility, UtilityTariff] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key in self.values:
            return self.values[key]
        return SCHEMA[key].default

    @property
    def timezone(self) -> str:
        return str(self["household.timezone"])

    def tariff(self, utility: Utility) -> TariffConfig:
        return TariffConfig(
            self[f"tariff.{utility}.unit_rate"], self[f"tariff.{utility}.standing_charge"]
        )


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def parse(text: str, source: Path | None = None) -> Config:
    """Parse and validate TOML text. Raises ConfigError with a one-line reason."""
    where = str(source) if source else "<config>"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML: {e}{_quote_line(text, str(e))}") from None
    values: dict[str, Any] = {}
    for key, v in _flatten(raw).items():
        spec = SCHEMA.get(key)
        if spec is None and _is_tariff_key(key):
            continue  # validated with its whole table by ihd.tariff.config, below
        if spec is None:
            near = difflib.get_close_matches(key, [*SCHEMA, *_TARIFF_KEYS], n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            shown = key if key.isprintable() else repr(key)  # a quoted key may hold "\n"
            raise ConfigError(f"{where}: {shown}: unknown key{hint}")
        try:
            values[key] = spec.parse(v)
        except ValueError as e:
            raise ConfigError(f"{where}: {key}: {e}") from None
    return Config(source=source, values=values, tariffs=_tariffs(raw, values, source, where))


# Keys of a [tariff.<utility>] table beyond the flat ones above, for suggestions.
_TARIFF_KEYS = [f"tariff.{u}.{k}" for u in Utility for k in sorted(TARIFF_SECTION_KEYS)]


def _is_tariff_key(key: str) -> bool:
    parts = key.split(".")
    return (
        len(parts) >= 3
        and parts[0] == "tariff"
        and parts[1] in set(Utility)
        and parts[2] in TARIFF_SECTION_KEYS
    )


def _tariffs(
    raw: Mapping[str, Any], values: Mapping[str, Any], source: Path | None, where: str
) -> dict[Utility, UtilityTariff]:
    """Each utility's tariff, from its whole [tariff.<utility>] table (ihd.tariff.config)."""
    tables = raw.get("tariff", {})
    out: dict[Utility, UtilityTariff] = {}
    for utility in Utility:
        table = tables.get(str(utility), {})
        defaults = {
            k: SCHEMA[f"tariff.{utility}.{k}"].default for k in ("unit_rate", "standing_charge")
        }
        try:
            out[utility] = parse_tariff_section(
                utility,
                table,
                currency=str(
                    values.get("household.currency", SCHEMA["household.currency"].default)
                ),
                timezone=str(
                    values.get("household.timezone", SCHEMA["household.timezone"].default)
                ),
                base_dir=source.parent if source is not None else None,
                defaults=defaults,
            )
        except TariffConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return out


def _quote_line(text: str, message: str) -> str:
    """The offending line of a TOML error, so the message shows the key it is about."""
    m = re.search(r"\(at line (\d+), column \d+\)", message)
    lines = text.split("\n")  # tomllib counts "\n" only
    if m is None or not 1 <= int(m.group(1)) <= len(lines):
        return ""
    line = lines[int(m.group(1)) - 1].strip()
    return f": {line[:80]!r}" if line else ""


def load(path: Path, *, missing_ok: bool = True) -> Config:
    """Load the config file; a missing file means all defaults (when ``missing_ok``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return Config(source=None)
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    return parse(text, path)


def example() -> str:
    """A commented config file with every key at its default."""
    lines = ["# ihd configuration. Every key is optional; shown here at its default.", ""]
    section = None
    for key, spec in SCHEMA.items():
        head, name = key.rsplit(".", 1)
        if head != section:
            if section is not None:
                lines.append("")
            lines.append(f"[{head}]")
            section = head
        d = spec.default
        val = f'"{d}"' if isinstance(d, (str, Decimal)) else repr(d)
        lines.append(f"# {spec.doc}")
        lines.append(f"{name} = {val}")
    return "\n".join(lines) + "\n\n" + TARIFF_EXAMPLE
