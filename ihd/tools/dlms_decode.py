"""``ihd decode --dlms HEX``: print the readings in one DLMS push, one per line.

Input is a push as any tool or capture shows it: a bare APDU (what SMWAP carries), with an
LLC header, in HDLC frames (several, when segmented), in M-Bus long frames, in a DLMS/UDP
wrapper, in general block transfer; plain or general-glo-ciphered. Hex digits, with spaces,
``:`` or ``-`` between them allowed.

Output (stdout): one line per reading, ``OBIS value unit``::

    1-0:1.8.0.255 79591144 Wh
    1-0:32.7.0.255 219.3 V

then one line per text value (meter id, list version), ``OBIS "text"`` (``-`` for a text
sent with no OBIS code). What the push is (time, layout, wrappers, security, how many
codes were unknown) goes to stderr, so stdout stays one reading per line.

Keys: ``--dlms-key`` (encryption key, the GUEK), ``--dlms-auth-key`` (the GAK; without it
a tag is not checked and the output says "not authenticated"), ``--system-title`` (refuse
pushes from another meter). 32 hex digits each (64 for security suite 2), 16 for the title.
Keys are never printed, not even in errors.

Exit status: 0 decoded; 1 the input or a key is not hex, or the push does not decode (or
no key for a ciphered push); 4 authentication failed. 2 is argparse's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

from ihd.meter.cipher import DlmsKeys
from ihd.meter.dlms import Push, decode_push
from ihd.meter.errors import MeterAuthError, MeterDecodeError
from ihd.meter.reading import Reading, Utility

__all__ = ["EXIT_AUTH", "EXIT_INPUT", "EXIT_OK", "add_arguments", "format_push", "main", "run"]

EXIT_OK, EXIT_INPUT, EXIT_AUTH = 0, 1, 4


def _hex(text: str) -> bytes:
    digits = "".join(text.split()).replace(":", "").replace("-", "")
    if digits.lower().startswith("0x"):
        digits = digits[2:]
    if not digits or len(digits) % 2:
        raise ValueError("an even number of hex digits is needed")
    return bytes.fromhex(digits)  # ValueError names the position, never the key


def _key(text: str, option: str) -> bytes:
    try:
        raw = _hex(text)
    except ValueError:
        raise ValueError(f"{option}: a key needs 32 (or 64) hex digits") from None
    if len(raw) not in (16, 32):
        raise ValueError(f"{option}: a key needs 32 (or 64) hex digits")
    return raw


def _value(r: Reading) -> str:
    return f"{r.value:f}"  # plain notation: 77452500, not 7.745250E+7


def format_push(push: Push) -> list[str]:
    """The stdout lines for a push: readings, then text values."""
    lines = [f"{r.obis} {_value(r)} {r.unit}" for r in push.readings]
    lines += [f'{obis or "-"} "{text}"' for obis, text in push.texts]
    return lines


def _summary(push: Push) -> str:
    when = dt.datetime.fromtimestamp(push.timestamp, dt.UTC).isoformat(timespec="seconds")
    parts = [
        f"time {when.replace('+00:00', 'Z')}",
        f"layout {push.layout}",
        f"framing {'+'.join(push.framing)}",
        f"{len(push.readings)} readings",
    ]
    if push.unknown:
        parts.append(f"{len(push.unknown)} unknown OBIS (raw)")
    if push.system_title is not None:
        security = "authenticated" if push.authenticated else "not authenticated"
        parts.append(
            f"ciphered: system title {push.system_title.hex().upper()}, "
            f"invocation counter {push.invocation_counter}, "
            f"security control 0x{push.security_control or 0:02X}, {security}"
        )
    return "; ".join(parts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--dlms`` arguments of ``ihd decode``."""
    p.add_argument(
        "--dlms",
        metavar="HEX",
        help="decode a DLMS push (bare APDU, LLC, HDLC, M-Bus, DLMS/UDP, block transfer; "
        "plain or ciphered) and print its readings: OBIS code, value, unit",
    )
    p.add_argument("--dlms-key", metavar="HEX", help="the DLMS encryption key (32 hex digits)")
    p.add_argument(
        "--dlms-auth-key",
        metavar="HEX",
        help="the DLMS authentication key (32 hex digits): check the GCM tag",
    )
    p.add_argument(
        "--system-title",
        metavar="HEX",
        help="the meter's system title (16 hex digits): refuse pushes from another",
    )


def run(args: argparse.Namespace) -> int:
    """Decode ``args.dlms`` and print it; one line on stderr and non-zero if it fails."""
    try:
        data = _hex(args.dlms or "")
    except ValueError as e:
        return _fail(EXIT_INPUT, f"the push is not hex: {e}")
    keys = None
    try:
        title = None
        if getattr(args, "system_title", None):
            title = _hex(args.system_title)
            if len(title) != 8:
                raise ValueError("--system-title: a system title needs 16 hex digits")
        if getattr(args, "dlms_key", None):
            ak = args.dlms_auth_key
            keys = DlmsKeys(
                _key(args.dlms_key, "--dlms-key"),
                _key(ak, "--dlms-auth-key") if ak else None,
                system_title=title,
            )
        elif getattr(args, "dlms_auth_key", None) or title is not None:
            raise ValueError("--dlms-auth-key and --system-title need --dlms-key")
    except ValueError as e:
        return _fail(EXIT_INPUT, str(e))
    try:
        push = decode_push(
            data, meter="unknown", utility=Utility.ELECTRICITY, received_at=0.0, keys=keys
        )
    except MeterAuthError as e:
        return _fail(EXIT_AUTH, e.reason)
    except MeterDecodeError as e:
        return _fail(EXIT_INPUT, e.reason)
    try:
        for line in format_push(push):
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        return EXIT_OK
    print(_summary(push), file=sys.stderr)
    return EXIT_OK


def _fail(status: int, reason: str) -> int:
    print(f"ihd decode: {reason}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ihd decode", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
