"""The key file: the secrets of every paired meter, in one small JSON file only we can read.

Why a file of its own (not the config, not the history database): keys have a different life.
The config is shared and edited by hand, the database is backed up and copied around for
support; the keys must never be. Unpairing drops a meter's keys here and nothing else: its
readings stay in the history.

Format (JSON, UTF-8, written by :meth:`KeyFile.save`; hex is case-insensitive)::

    {"format": "ihd-keys", "version": 1, "meters": [
      {"eui64": "ACDE480000000001", "utility": "electricity", "label": "House meter",
       "pan_id": 7453, "network_key": "<32 hex>", "key_index": 1, "key_source": "",
       "dlms_system_title": "<16 hex>", "dlms_encryption_key": "<32 hex>",
       "dlms_authentication_key": null}]}

``key_index`` null means an implicit key (key identifier mode 0); ``key_source`` (optional,
4 or 8 octets) selects key identifier mode 2/3. The DLMS fields are optional (null or absent).

Rules:

* **Permissions.** The file is written with mode 0600 (created with ``os.open(..., 0o600)``
  and ``fchmod``) and a file readable or writable by group or others (``mode & 0o077``) is
  refused on load with a :class:`KeyFileError` naming the path, its mode and the ``chmod``
  to run. The check uses ``fstat`` on the opened file, so it is about the file actually read.
* **Atomic saves.** Write a temporary file in the same directory, fsync it, rename it over
  the old file, fsync the directory. A crash leaves the old or the new file, never half of one,
  and no temporary file is left behind on errors.
* **No secrets in errors.** A corrupt file gives a :class:`KeyFileError` with the path and
  what is wrong (a JSON position, a field name), never file content. Keys are
  :class:`~ihd.smwap.security.Key` objects, whose ``repr`` hides them. Nothing here logs.
* A missing file is an empty key file (nothing paired yet).

Not done: system keyring support (Secret Service / libsecret), optional per the issue. The
key file in the user's config directory, mode 0600, is the baseline it would replace.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ihd.smwap.security import Key, KeyTable

__all__ = ["FORMAT", "VERSION", "KeyFile", "KeyFileError", "PairedKeys", "PairedMeter"]

FORMAT = "ihd-keys"
VERSION = 1
_MAX_SIZE = 1 << 20  # a key file is a few hundred octets per meter
_SAFE_NAME = re.compile(r"(?![a-fA-F]{16})[a-z_]{1,40}")  # shown in errors; no digits, no hex


class KeyFileError(Exception):
    """The key file cannot be read or written. ``str()`` names the path and the reason, and
    never contains key material or file content."""

    path: Path
    reason: str

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"key file {path}: {reason}")
        self.path = Path(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type[KeyFileError], tuple[Path, str]]:
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True, slots=True, repr=False)
class PairedMeter:
    """One paired meter and its keys. ``repr`` shows identifiers only."""

    eui64: int
    utility: str
    label: str
    pan_id: int
    network_key: Key
    key_index: int | None = None  # None: implicit key (key identifier mode 0)
    key_source: bytes = b""  # 4 or 8 octets: key identifier mode 2 or 3
    dlms_system_title: bytes | None = None
    dlms_encryption_key: Key | None = None
    dlms_authentication_key: Key | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.eui64 <= 0xFFFF_FFFF_FFFF_FFFF:
            raise ValueError("eui64 is not a 64-bit value")
        if not 0 <= self.pan_id <= 0xFFFF:
            raise ValueError("pan_id not in 0..0xFFFF")
        if self.key_index is not None and not 0 <= self.key_index <= 0xFF:
            raise ValueError("key_index not in 0..255")
        if self.key_source and (self.key_index is None or len(self.key_source) not in (4, 8)):
            raise ValueError("key_source must be 4 or 8 octets, with a key_index")
        if self.dlms_system_title is not None and len(self.dlms_system_title) != 8:
            raise ValueError("dlms_system_title must be 8 octets")
        for name in ("network_key", "dlms_encryption_key", "dlms_authentication_key"):
            value = getattr(self, name)
            if not isinstance(value, Key) and not (value is None and name != "network_key"):
                raise TypeError(f"{name} must be a Key")

    @property
    def eui64_text(self) -> str:
        return f"{self.eui64:016X}"

    def __repr__(self) -> str:
        dlms = "+".join(
            n
            for n, k in (
                ("enc", self.dlms_encryption_key),
                ("auth", self.dlms_authentication_key),
            )
            if k is not None
        )
        return (
            f"PairedMeter(eui64={self.eui64_text!r}, utility={self.utility!r}, "
            f"label={self.label!r}, pan_id=0x{self.pan_id:04X}, key_index={self.key_index!r}, "
            f"dlms_keys={dlms or 'none'!r})"
        )


@dataclass(frozen=True, slots=True)
class PairedKeys:
    """Every paired meter, in file order; at most one entry per EUI-64."""

    meters: tuple[PairedMeter, ...] = field(default=())

    def __post_init__(self) -> None:
        seen: set[int] = set()
        for m in self.meters:
            if m.eui64 in seen:
                raise ValueError(f"meter {m.eui64_text} is listed twice")
            seen.add(m.eui64)

    def get(self, eui64: int) -> PairedMeter | None:
        return next((m for m in self.meters if m.eui64 == eui64), None)

    def with_meter(self, meter: PairedMeter) -> PairedKeys:
        """Add ``meter``, or replace the entry with the same EUI-64 (keeping its place)."""
        if self.get(meter.eui64) is None:
            return replace(self, meters=(*self.meters, meter))
        return replace(
            self, meters=tuple(meter if m.eui64 == meter.eui64 else m for m in self.meters)
        )

    def without(self, eui64: int) -> PairedKeys:
        return replace(self, meters=tuple(m for m in self.meters if m.eui64 != eui64))

    def key_table(self) -> KeyTable:
        """A link-layer key table with each meter's network key bound to its EUI-64."""
        table = KeyTable()
        for m in self.meters:
            if m.key_index is None:
                table.add_implicit(m.network_key, src_ext=m.eui64)
            elif m.key_source:
                table.add_source(m.key_source, m.key_index, m.network_key, src_ext=m.eui64)
            else:
                table.add_index(m.key_index, m.network_key, src_ext=m.eui64)
        return table

    def __iter__(self) -> Iterator[PairedMeter]:
        return iter(self.meters)

    def __len__(self) -> int:
        return len(self.meters)


# --- JSON <-> values -------------------------------------------------------------------------

_FIELDS = (
    "eui64",
    "utility",
    "label",
    "pan_id",
    "network_key",
    "key_index",
    "key_source",
    "dlms_system_title",
    "dlms_encryption_key",
    "dlms_authentication_key",
)
_REQUIRED = frozenset(("eui64", "utility", "label", "pan_id", "network_key"))


class _Invalid(Exception):
    """A field that does not decode; the message names the field, never its value."""


def _hex_octets(value: Any, where: str, sizes: tuple[int, ...]) -> bytes:
    if not isinstance(value, str):
        raise _Invalid(f"{where}: expected a hex string")
    try:
        octets = bytes.fromhex(value)
    except ValueError:
        raise _Invalid(f"{where}: not hex") from None
    if len(octets) not in sizes:
        want = " or ".join(str(n) for n in sizes)
        raise _Invalid(f"{where}: expected {want} octets, got {len(octets)}")
    return octets


def _key(value: Any, where: str) -> Key:
    return Key(_hex_octets(value, where, (16,)))


def _int(value: Any, where: str, top: int) -> int:
    if type(value) is not int or not 0 <= value <= top:
        raise _Invalid(f"{where}: expected an integer in 0..{top}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{where}: expected text")
    return value


def _meter_from_json(obj: Any, i: int) -> PairedMeter:
    where = f"meters[{i}]"
    if not isinstance(obj, dict):
        raise _Invalid(f"{where}: expected an object")
    unknown = [k for k in obj if k not in _FIELDS]
    if unknown:
        names = ", ".join(k if _SAFE_NAME.fullmatch(k) else "(name not shown)" for k in unknown)
        raise _Invalid(f"{where}: unknown field(s) {names}")
    missing = sorted(_REQUIRED - obj.keys())
    if missing:
        raise _Invalid(f"{where}: missing field(s) {', '.join(missing)}")
    eui = _hex_octets(obj["eui64"], f"{where}.eui64", (8,))
    key_index = obj.get("key_index")
    title = obj.get("dlms_system_title")
    enc = obj.get("dlms_encryption_key")
    auth = obj.get("dlms_authentication_key")
    try:
        return PairedMeter(
            eui64=int.from_bytes(eui, "big"),
            utility=_text(obj["utility"], f"{where}.utility"),
            label=_text(obj["label"], f"{where}.label"),
            pan_id=_int(obj["pan_id"], f"{where}.pan_id", 0xFFFF),
            network_key=_key(obj["network_key"], f"{where}.network_key"),
            key_index=None if key_index is None else _int(key_index, f"{where}.key_index", 255),
            key_source=_hex_octets(obj.get("key_source") or "", f"{where}.key_source", (0, 4, 8)),
            dlms_system_title=(
                None if title is None else _hex_octets(title, f"{where}.dlms_system_title", (8,))
            ),
            dlms_encryption_key=None if enc is None else _key(enc, f"{where}.dlms_encryption_key"),
            dlms_authentication_key=(
                None if auth is None else _key(auth, f"{where}.dlms_authentication_key")
            ),
        )
    except (ValueError, TypeError) as e:  # PairedMeter's own checks name fields, not values
        raise _Invalid(f"{where}: {e}") from None


def _keys_from_json(doc: Any) -> PairedKeys:
    if not isinstance(doc, dict):
        raise _Invalid("expected a JSON object")
    if doc.get("format") != FORMAT:
        raise _Invalid(f"not an ihd key file (format is not {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise _Invalid(f"unsupported version (this ihd reads version {VERSION})")
    meters = doc.get("meters", [])
    if not isinstance(meters, list):
        raise _Invalid("meters: expected a list")
    try:
        return PairedKeys(tuple(_meter_from_json(m, i) for i, m in enumerate(meters)))
    except ValueError as e:  # a duplicate EUI-64 (not secret)
        raise _Invalid(str(e)) from None


def _hex(octets: bytes | Key | None) -> str | None:
    if isinstance(octets, Key):
        octets = octets.value
    return None if octets is None else octets.hex().upper()


def _meter_to_json(m: PairedMeter) -> dict[str, Any]:
    return {
        "eui64": m.eui64_text,
        "utility": m.utility,
        "label": m.label,
        "pan_id": m.pan_id,
        "network_key": _hex(m.network_key),
        "key_index": m.key_index,
        "key_source": _hex(m.key_source),
        "dlms_system_title": _hex(m.dlms_system_title),
        "dlms_encryption_key": _hex(m.dlms_encryption_key),
        "dlms_authentication_key": _hex(m.dlms_authentication_key),
    }


# --- the file --------------------------------------------------------------------------------


class KeyFile:
    """The key file at ``path``; see the module docstring for its rules."""

    __slots__ = ("path",)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"KeyFile({str(self.path)!r})"

    def load(self) -> PairedKeys:
        """Read and check the file; an absent file is an empty :class:`PairedKeys`."""
        path = self.path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return PairedKeys()
        except OSError as e:
            raise KeyFileError(path, f"cannot be opened: {e.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise KeyFileError(path, "is not a regular file")
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                raise KeyFileError(
                    path,
                    f"has mode {mode:04o}, so other users may read the meter keys in it; "
                    f"ihd only uses a key file that only its owner can access: "
                    f"run `chmod 600 {path}`",
                )
            if st.st_size > _MAX_SIZE:
                raise KeyFileError(path, f"is {st.st_size} octets, too large for a key file")
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            data = b"".join(chunks)
        except OSError as e:
            raise KeyFileError(path, f"cannot be read: {e.strerror}") from None
        finally:
            os.close(fd)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyFileError(path, "is not UTF-8 text") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            # e.msg is the parser's message ("Expecting ',' delimiter"), not file content.
            raise KeyFileError(
                path, f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
            ) from None
        except RecursionError:
            raise KeyFileError(path, "is not valid JSON (nested too deeply)") from None
        try:
            return _keys_from_json(doc)
        except _Invalid as e:
            raise KeyFileError(path, str(e)) from None

    def save(self, keys: PairedKeys) -> None:
        """Write ``keys`` atomically with mode 0600 (creating the directory with 0700)."""
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "meters": [_meter_to_json(m) for m in keys.meters],
        }
        data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        path = self.path
        directory = path.parent
        tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise KeyFileError(path, f"cannot be written: {e.strerror}") from None
        try:
            try:
                os.fchmod(fd, 0o600)  # whatever the umask did
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise KeyFileError(path, f"cannot be written: {e.strerror}") from None
            raise
        _fsync_dir(directory)

    def add(self, meter: PairedMeter) -> PairedKeys:
        """Pair (or re-pair) ``meter``: load, add or replace it, save; returns the new keys."""
        keys = self.load().with_meter(meter)
        self.save(keys)
        return keys

    def remove(self, eui64: int) -> bool:
        """Drop the keys of one meter (unpairing; its history stays in the store).
        Returns False if it was not paired (the file is then left alone)."""
        keys = self.load()
        if keys.get(eui64) is None:
            return False
        self.save(keys.without(eui64))
        return True


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
